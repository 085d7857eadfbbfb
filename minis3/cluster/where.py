"""Where an object is: its metadata record, and which node holds each fragment.

`minis3 demo` prints this; a `minis3 inspect` is meant to build on it. Two halves:

* pure (no I/O): :func:`fragment_sets` cuts a record into what is stored
  where (inline bytes, or one erasure-coded fragment set per object or per
  part of a multipart object); :func:`placement` turns one fragment set, the
  topology and what the nodes answered into one :class:`Fragment` per index
  (its node, AZ, home node, the file size it must have and the size the node
  reports); :func:`table` lays those out as text, one column per AZ.
* I/O: :func:`locate` reads the record through the metadata replicas'
  internal API (:class:`~minis3.meta.client.MetaClient`: a quorum read, as the
  frontend does, so it works with an AZ down) and asks each node of the
  placement which of the object's fragments it holds (one inventory request
  per node, :meth:`~minis3.storage.client.StorageClient.fragments_of`).
"""
from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass

from ..ec import storage_class as SC
from ..storage import blocks
from ..config import Topology

OK, MISSING, WRONG_SIZE, UNREACHABLE = "ok", "missing", "wrong size", "unreachable"

#: what the nodes answered, for one object: node id → {fragment index: file
#: size} it holds, or None when the node did not answer (a node absent from
#: the mapping counts as not answering too).
Held = dict[str, "dict[int, int] | None"]


# ----------------------------------------------------------------------------- pure
@dataclass(frozen=True)
class FragmentSet:
    """One piece of a record's data: an object's bytes, or one part's."""
    label: str                 # "object", or "part 2" of a multipart object
    size: int                  # bytes of object data it holds
    ec: dict | None = None     # its erasure-coding record (id, k, m, seg, nodes, ...)
    inline: bytes | None = None  # or the bytes themselves, kept in the metadata record


def fragment_sets(record: dict) -> list[FragmentSet]:
    """What a (live) object record stores where: its inline bytes, its one
    fragment set, or, for a multipart object, each part's inline bytes or
    fragment set, in part order."""
    if "parts" in record:
        out = []
        for i, p in enumerate(record["parts"]):
            label = f"part {p.get('part', i + 1)}"
            if p.get("ec"):
                out.append(FragmentSet(label, int(p["size"]), ec=p["ec"]))
            else:
                out.append(FragmentSet(label, int(p["size"]), inline=base64.b64decode(p.get("inline", ""))))
        return out
    if record.get("ec"):
        return [FragmentSet("object", int(record["size"]), ec=record["ec"])]
    return [FragmentSet("object", int(record.get("size", 0)), inline=base64.b64decode(record.get("inline", "")))]


@dataclass(frozen=True)
class Fragment:
    index: int
    kind: str                  # "data" (index < k: a slice of the segment) or "parity"
    node: str                  # where the record says it is
    az: str                    # that node's AZ ("?" for a node the topology does not know)
    home: str                  # where placement puts it when every node is up
    expected_size: int         # bytes a whole fragment file has
    size: int | None           # bytes the node reports (None: it holds none, or did not answer)
    state: str                 # OK, MISSING, WRONG_SIZE or UNREACHABLE

    @property
    def handoff(self) -> bool:
        """Stored away from its home node (written while home was down)."""
        return self.node != self.home


@dataclass(frozen=True)
class Placement:
    """One fragment set of an object, fragment by fragment."""
    label: str
    object_id: str
    size: int
    k: int
    m: int
    segment_size: int
    segments: int
    azs: tuple[str, ...]       # the topology's AZs, in order (the table's columns)
    fragments: tuple[Fragment, ...]

    def count(self, state: str) -> int:
        return sum(f.state == state for f in self.fragments)

    @property
    def readable(self) -> bool:
        """At least k fragments are there whole: every segment can be decoded."""
        return self.count(OK) >= self.k

    @property
    def full(self) -> bool:
        """Every fragment there, whole, on its home node (full redundancy)."""
        return all(f.state == OK and not f.handoff for f in self.fragments)



def placement(fs: FragmentSet, topo: Topology, held: Held) -> Placement:
    """One erasure-coded fragment set → a :class:`Placement`: for each
    fragment index, its node and AZ, its home node (``ec.placement.place``
    over the topology), the exact size its file must have
    (``storage.blocks.expected_file_size``) and what the node said."""
    ec = fs.ec
    if ec is None:
        raise ValueError(f"{fs.label} is stored inline: it has no fragments")
    k, m, seg = int(ec["k"]), int(ec["m"]), int(ec["seg"])
    oid, nodes = ec["id"], list(ec["nodes"])
    node_az = {n.id: n.az for n in topo.nodes}
    home = SC.home(ec, [(az.name, [n.id for n in az.nodes]) for az in topo.azs])   # a one-zone object: its zone
    from ..ec.codec import codec_for
    frag, last, n_seg = codec_for(k, m, ec.get("backend", topo.erasure.backend)).fragment_sizes(fs.size, seg)
    out = []
    for idx, node in enumerate(nodes):
        want = blocks.expected_file_size(oid, idx, node, frag, last, n_seg)
        answer = held.get(node)
        size = None if answer is None else answer.get(idx)
        if answer is None:
            state = UNREACHABLE
        elif size is None:
            state = MISSING
        else:
            state = OK if size == want else WRONG_SIZE
        out.append(Fragment(index=idx, kind="data" if idx < k else "parity", node=node,
                            az=node_az.get(node, "?"), home=home[idx], expected_size=want, size=size, state=state))
    return Placement(label=fs.label, object_id=oid, size=fs.size, k=k, m=m, segment_size=seg, segments=n_seg,
                     azs=tuple(az.name for az in topo.azs), fragments=tuple(out))


def human(n: int) -> str:
    """Bytes for a person: 17 B, 4.0 KiB, 1.3 MiB."""
    if n < 1024:
        return f"{n} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}"
    raise AssertionError("unreachable")


def cell(f: Fragment) -> str:
    """One fragment as a table cell: ``b1 #4 parity 1.0 MiB`` and what is wrong, if anything."""
    text = f"{f.node} #{f.index} {f.kind}"
    if f.state == OK:
        text += f" {human(f.size)}"
    elif f.state == UNREACHABLE:
        text += " (node down)"
    elif f.state == MISSING:
        text += " MISSING"
    else:
        text += f" WRONG SIZE ({f.size} B, not {f.expected_size})"
    if f.handoff:
        text += f" [handoff; home {f.home}]"
    return text


def rows(p: Placement) -> tuple[list[str], list[list[Fragment | None]]]:
    """The table's columns (the topology's AZs, then "?" if a node is
    unknown) and its rows: row i holds the i-th fragment of each AZ (by node
    id, then index), or None where an AZ holds fewer."""
    columns = list(p.azs) + (["?"] if any(f.az not in p.azs for f in p.fragments) else [])
    per_az = {az: sorted((f for f in p.fragments if f.az == az), key=lambda f: (f.node, f.index))
              for az in columns}
    height = max((len(v) for v in per_az.values()), default=0)
    return columns, [[per_az[az][i] if i < len(per_az[az]) else None for az in columns] for i in range(height)]


def table(p: Placement, indent: str = "  ", cell=cell) -> str:
    """The placement as text, one column per AZ (``cell`` writes each fragment)::

        az-a                     az-b                   az-c
        ----------------------   --------------------   ----------------------
        a1 #5 parity 896.5 KiB   b1 #3 data 896.5 KiB   c1 #1 data 896.5 KiB
        a2 #2 data 896.5 KiB     b2 #0 data 896.5 KiB   c2 #4 parity 896.5 KiB
    """
    columns, body = rows(p)
    cells = [[cell(f) if f is not None else "" for f in row] for row in body]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    rule = ["-" * w for w in widths]
    lines = ["   ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [columns, rule] + cells]
    return "\n".join(indent + line for line in lines)


def describe(p: Placement) -> str:
    """One line on how the set was cut: size, segments, k + m (and which part)."""
    segs = f"{p.segments} segment{'s' if p.segments != 1 else ''} of up to {human(p.segment_size)}"
    return ("" if p.label == "object" else f"{p.label}: ") + \
        f"{human(p.size)} ({p.size:,} bytes) in {segs}, each coded into {p.k} data + {p.m} parity fragments"


# ----------------------------------------------------------------------------- I/O
@dataclass
class Location:
    bucket: str
    key: str
    record: dict
    sets: list[FragmentSet]
    placements: list[Placement]        # one per erasure-coded set, in order

    @property
    def inline(self) -> bool:
        return not self.placements


async def holdings(storage, ec: dict) -> Held:
    """Ask each node of a fragment set's placement which of its fragments it holds."""
    import aiohttp
    from ..storage.client import FragmentError

    async def ask(node: str) -> tuple[str, dict[int, int] | None]:
        if node not in storage.urls:
            return node, None
        try:
            return node, await storage.fragments_of(node, ec["id"], len(ec["nodes"]))
        except (FragmentError, aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError):
            return node, None
    return dict(await asyncio.gather(*(ask(n) for n in sorted(set(ec["nodes"])))))


async def locate(topo: Topology, session, bucket: str, key: str) -> Location | None:
    """The object's newest live record (a quorum read of the metadata
    replicas) and where each of its fragments is, or None if it does not
    exist. ``session``: an internal-API session
    (:func:`minis3.rpc.http.client_session` with the cluster secret)."""
    from ..meta.client import MetaClient
    record = await MetaClient.for_topology(session, topo).get_record(f"{bucket}/{key}")
    if record is None:
        return None
    return await locate_record(topo, session, bucket, key, record)


async def locate_record(topo: Topology, session, bucket: str, key: str, record: dict) -> Location:
    """Where the fragments of one (live) record are: of the current version,
    or of any version of a key (``minis3 inspect`` lists them all)."""
    from ..storage.client import StorageClient
    storage = StorageClient(session, {n.id: n.url for n in topo.nodes})
    sets = fragment_sets(record)
    placements = [placement(fs, topo, await holdings(storage, fs.ec)) for fs in sets if fs.ec is not None]
    return Location(bucket, key, record, sets, placements)


def locate_all(topo: Topology, bucket: str, keys: list[str], timeout_s: float = 5.0) -> dict[str, Location | None]:
    """:func:`locate` for several keys of a bucket, from synchronous code."""
    from ..rpc.http import client_session

    async def run() -> dict[str, Location | None]:
        async with client_session(topo.cluster_secret, timeout_s=timeout_s) as session:
            return {key: await locate(topo, session, bucket, key) for key in keys}
    return asyncio.run(run())
