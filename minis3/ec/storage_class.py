"""Storage classes as placement: what ``x-amz-storage-class`` changes in how
an object's fragments are stored. Pure functions, no I/O.

    STANDARD            the topology's scheme (k+m, 4+2 by default) over every AZ,
                        round-robin: losing any one AZ leaves k fragments
    REDUCED_REDUNDANCY  k+(m-1) (4+1 by default) over every AZ, at most one
                        fragment a node: cheaper (1.25x the bytes, not 1.5x); it
                        survives one lost node, not one lost AZ (an AZ holds 2 of 5)
    ONEZONE_IA          the topology's scheme with every fragment in one AZ (the
                        record's ``ec.zone``): losing that AZ makes it unreadable

The other names S3 accepts on a general purpose bucket (STANDARD_IA,
INTELLIGENT_TIERING, GLACIER_IR, GLACIER, DEEP_ARCHIVE) are recorded and
returned, and placed like STANDARD (minis3 has no archive tier: a GLACIER
object is readable at once, with no RestoreObject). The names S3 keeps for
other kinds of bucket (OUTPOSTS, SNOW, EXPRESS_ONEZONE, FSX_OPENZFS,
FSX_ONTAP) and any other value are refused: 400 InvalidStorageClass.

Which AZ a ONEZONE_IA object lives in is chosen by its object id (like the
first AZ of a STANDARD placement), among the AZs whose nodes are all up, and
kept in the record: the scrubber rebuilds it there, never elsewhere.
"""
from __future__ import annotations

import xxhash

from ..core import errors as E
from .placement import place

STANDARD = "STANDARD"
REDUCED_REDUNDANCY = "REDUCED_REDUNDANCY"
ONEZONE_IA = "ONEZONE_IA"
#: What S3 accepts on a general purpose bucket (the S3 API reference's
#: StorageClass values less the ones for Outposts, Snow, directory buckets and FSx).
ACCEPTED = frozenset({STANDARD, REDUCED_REDUNDANCY, "STANDARD_IA", ONEZONE_IA, "INTELLIGENT_TIERING",
                      "GLACIER", "DEEP_ARCHIVE", "GLACIER_IR"})


def parse(value: str | None, default: str = STANDARD) -> str:
    """The class an ``x-amz-storage-class`` header asks for (none: ``default``,
    the bucket's default from the topology, STANDARD unless set there).
    Names are case-sensitive, as S3's are."""
    if value is None:
        return default
    if value not in ACCEPTED:
        raise E.InvalidStorageClass(StorageClassRequested=value)
    return value


def of(record: dict) -> str:
    """An object record's class (records keep it only when not STANDARD)."""
    return record.get("storage_class") or STANDARD


def record_field(storage_class: str) -> dict:
    """What a record stores for a class: nothing for STANDARD (so records
    written before classes existed read the same)."""
    return {} if storage_class == STANDARD else {"storage_class": storage_class}


def scheme(storage_class: str, k: int, m: int) -> tuple[int, int, bool]:
    """(k, m, one zone?) of a class, given the topology's k+m."""
    if storage_class == REDUCED_REDUNDANCY:
        return k, max(1, m - 1), False
    return k, m, storage_class == ONEZONE_IA


def zone_for(object_id: str, azs: list[tuple[str, list[str]]], up: set[str]) -> str:
    """The AZ a one-zone object goes to: chosen by its id among the AZs whose
    nodes are all up (all AZs with nodes if none is whole)."""
    whole = [az for az, nodes in azs if nodes and all(n in up for n in nodes)]
    pool = whole or [az for az, nodes in azs if nodes]
    return pool[xxhash.xxh3_64_intdigest(object_id.encode()) % len(pool)]


def home_azs(ec: dict, azs: list[tuple[str, list[str]]]) -> list[tuple[str, list[str]]]:
    """The AZs an object's fragments belong in: its zone alone, or all."""
    zone = ec.get("zone")
    return [(az, nodes) for az, nodes in azs if az == zone] if zone else azs


def home(ec: dict, azs: list[tuple[str, list[str]]]) -> list[str]:
    """Where every fragment of an object belongs (``placement.place`` over its AZs)."""
    return place(ec["id"], home_azs(ec, azs), len(ec["nodes"]))


def max_per_node(ec: dict, azs: list[tuple[str, list[str]]]) -> int:
    """The most fragments of one object a node may hold: m (so losing a node
    leaves k), except in one zone with fewer nodes than that needs: there as
    many as the zone's nodes must each take (3 of 6 on each of 2 nodes)."""
    m, width = int(ec["m"]), len(ec["nodes"])
    if not ec.get("zone"):
        return m
    n = sum(len(nodes) for _, nodes in home_azs(ec, azs))
    return max(m, -(-width // n)) if n else m


def describe(record: dict) -> str:
    """One line: the class, its scheme and where its fragments go."""
    sc = of(record)
    ec = record.get("ec") or ((record.get("parts") or [{}])[0].get("ec"))
    if not ec:
        return f"{sc} (inline: the bytes are in the metadata replicas)"
    where = f"all in {ec['zone']}" if ec.get("zone") else "over every AZ"
    return f"{sc}: EC {ec['k']}+{ec['m']}, {where}"
