"""Object versions: how a version id is made and ordered, where each version
lives in the index, and how a key's versions are listed (pure: no I/O).

In the sorted index (``bucket/key`` → record), a key of a bucket that has had
versioning on holds a run of rows that sort together (the ``\\x00`` a key can
never hold sorts before every character a key can):

    bucket/key                  the **head**: the current version (an object or
                                a delete marker), what GET, HEAD and LIST read
    bucket/key\\x00              the ``null`` version, once it is not current
    bucket/key\\x00<version id>  every other version that is not current, newest
                                first (a version id starts with its inverted stamp)

A version is written to its row when a newer one replaces it as the head (the
row first, then the head: a crash between leaves it in both places, never in
none), so the head costs one lookup however many versions a key has, a LIST
page reads heads only (a partition keeps its rows in a sorted map apart from
its heads, meta/partition.py), and a partition split, which cuts only at a
head key, never separates a key's versions.
"""
from __future__ import annotations

import re
from typing import Iterable, Iterator

from . import errors as E

NULL = "null"
SEP = "\x00"
_INV = (1 << 64) - 1
_ID = re.compile(r"^[0-9a-f]{16}[0-9a-f]{12}$")

ENABLED, SUSPENDED = "Enabled", "Suspended"


def make_id(ts: int, vid: str) -> str:
    """A version id: the version's stamp inverted (16 hex digits, so newer
    versions sort first) then the write's random id (12 hex digits)."""
    return f"{_INV - int(ts):016x}{vid[:12]:0>12}"


def parse_id(raw: str) -> str:
    """A version id from a request: ``null`` or one minis3 made (else 400, as S3)."""
    if raw == NULL or _ID.match(raw or ""):
        return raw
    raise E.InvalidArgument("Invalid version id specified", ArgumentName="versionId", ArgumentValue=raw)


def stamp_of(version_id: str) -> int:
    return _INV - int(version_id[:16], 16)


def row_key(key: str, version_id: str) -> str:
    """Where a version that is not current lives (the key within the bucket)."""
    return key + SEP + ("" if version_id == NULL else version_id)


def rows_after(key: str, rec: dict) -> str:
    """A position just before the rows of versions made before ``rec`` (to seek to)."""
    return key + SEP + f"{_INV - vts(rec):016x}"


def is_row(ikey: str) -> bool:
    """Is an index key a version row (not a head)? (Raw key spaces, which
    start with ``\x00`` and sort before every bucket, are not.)"""
    return SEP in ikey and not ikey.startswith(SEP)


def head_of_row(ikey: str) -> str:
    return ikey.split(SEP, 1)[0]


def id_of(rec: dict | None) -> str:
    """A record's version id (records from before versioning are ``null``)."""
    return (rec or {}).get("version_id") or NULL


def vts(rec: dict) -> int:
    """When the version was made (a tag change re-stamps ``ts``, not this)."""
    return int(rec.get("vts", rec["ts"]))


def header(rec: dict) -> dict[str, str]:
    """``x-amz-version-id`` for a version made in a bucket that keeps versions
    (an object from before versioning has none, as in S3)."""
    return {"x-amz-version-id": rec["version_id"]} if rec.get("version_id") else {}


def is_version(rec: dict | None) -> bool:
    """An object or a delete marker (not a removal's tombstone, not nothing)."""
    return rec is not None and (not rec.get("deleted") or bool(rec.get("marker")))


def is_marker(rec: dict | None) -> bool:
    return rec is not None and bool(rec.get("marker"))


def key_versions(head: dict | None, rows: Iterable[tuple[str, dict]]) -> Iterator[tuple[dict, bool]]:
    """Every version of one key, newest first, as (record, is latest).

    ``head``: the key's head record; ``rows``: its version rows in index order
    (the null row first, then the others newest first). A version in both the
    head and a row (it was being replaced, or was made current again when a
    newer one was deleted) is listed once, from the head. Removed versions
    (tombstones) are not listed."""
    latest = id_of(head) if is_version(head) else None
    waiting: list[dict] = [head] if latest is not None else []
    for _, rec in rows:
        if not is_version(rec):
            continue                      # a removed version (a tombstone)
        if latest is not None and id_of(rec) == latest:
            continue
        if id_of(rec) == NULL:
            waiting.append(rec)           # placed among the others by when it was made
            waiting.sort(key=vts, reverse=True)
            continue
        # With one stamp (two frontends' clocks can give one), the head first:
        # it is the version the replicas kept last.
        while waiting and vts(waiting[0]) >= vts(rec):
            w = waiting.pop(0)
            yield w, id_of(w) == latest
        yield rec, False
    for w in waiting:
        yield w, id_of(w) == latest
