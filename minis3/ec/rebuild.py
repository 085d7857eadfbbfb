"""Rebuilding lost fragments from k others, with no I/O: the pure core of a repair.

A *rebuild job* names one erasure-coded fragment set (an object's, or one
part's of a multipart object), the k present fragments to read (index and the
node holding each) and the fragment indexes to write on the node that runs the
job. The storage node that receives the rebuilt fragments runs the jobs
(storage/rebuild.py); the scrubber makes them (scrub/repair.py). Both use
this module, which imports no aiohttp and opens no file.

Invariant 10 holds here: every segment the k sources decode to is checked
against the segment checksum recorded in the object's metadata before any
fragment is computed from it (:func:`rebuild_segment`); a source that was
changed (on disk, or on the way) yields a segment that does not match, and the
job fails instead of writing a wrong fragment.
"""
from __future__ import annotations

import base64
import binascii
import re
import struct
from dataclasses import dataclass
from typing import Sequence

import xxhash

from . import layout
from .codec import Codec

OBJECT_ID = re.compile(r"^[0-9a-f]{32}$")
MAX_WIDTH = 255            # fragment indexes fit in a byte (storage/blocks.py)


class InvalidRebuildJob(ValueError):
    """A rebuild job that does not describe a fragment set (a bad field)."""


class SegmentMismatch(Exception):
    """The k sources of a segment decode to bytes that do not match the
    segment's recorded checksum: one of them is wrong, nothing is written."""

    def __init__(self, object_id: str, segment: int):
        super().__init__(f"segment {segment} of {object_id} does not match its recorded checksum")
        self.object_id, self.segment = object_id, segment


def segment_checksum(data: bytes | memoryview) -> bytes:
    """The checksum the PUT path records for each segment (8 bytes, xxh3_64)."""
    return struct.pack(">Q", xxhash.xxh3_64_intdigest(data))


def _checksum_of_pieces(pieces: Sequence[memoryview]) -> bytes:
    h = xxhash.xxh3_64()
    for p in pieces:
        h.update(p)
    return struct.pack(">Q", h.intdigest())


def rebuild_segment(codec: Codec, got: list[bytes], missing: list[int], expected: bytes,
                    have: Sequence[int] | None = None) -> list[bytes] | None:
    """One segment's lost fragments (``missing`` indexes) from the k fragments
    ``got`` (whose indexes are ``have``, when known), or None if the segment
    they decode to does not match its recorded checksum ``expected``: a
    fragment is rebuilt only from a segment proven whole (invariant 10).

    The segment is checked where it lies, without joining it: when every data
    fragment is among the sources, in their payloads; otherwise the data
    fragments that are not are reconstructed along with the missing ones (one
    pyeclib call instead of a decode and a reconstruct), and checked with the
    sources'. Any wrong source makes the data fragments disagree with the
    checksum, so a fragment computed from it is never returned."""
    pieces = codec.data_pieces(got)
    if pieces is not None:
        if _checksum_of_pieces(pieces) != expected:
            return None
        return _reconstruct(codec, got, missing)
    if have is not None:
        extra = [i for i in range(codec.k) if i not in have and i not in missing]
        rebuilt = _reconstruct(codec, got, list(missing) + extra)
        pieces = codec.data_pieces(list(got) + rebuilt)
        if pieces is not None:
            return rebuilt[:len(missing)] if _checksum_of_pieces(pieces) == expected else None
    if segment_checksum(codec.decode(list(got))) != expected:
        return None
    return _reconstruct(codec, got, missing)


def _reconstruct(codec: Codec, got: list[bytes], indexes: list[int]) -> list[bytes]:
    """The fragments ``indexes``, in that order (pyeclib returns them in its own)."""
    if not indexes:
        return []
    by_index = {fragment_index(f): f for f in codec.reconstruct(list(got), list(indexes))}
    return [by_index[i] for i in indexes]


def fragment_index(fragment: bytes) -> int:
    """The index a fragment's liberasurecode header records (its first field)."""
    return struct.unpack_from("<I", fragment)[0]


@dataclass(frozen=True)
class RebuildJob:
    """Fragments ``indexes`` of one fragment set, to be written on the node
    that runs the job, from the k fragments ``sources`` ((index, node) each)."""
    object_id: str
    k: int
    m: int
    backend: str
    segment_size: int
    size: int                         # bytes of the object (or part) the fragments encode
    segment_sums: bytes               # 8 bytes a segment: the recorded checksums
    sources: tuple[tuple[int, str], ...]
    indexes: tuple[int, ...]

    @property
    def segments(self) -> int:
        return layout.segment_count(self.size, self.segment_size)

    @property
    def missing(self) -> list[int]:
        """The indexes to compute (the others are copied from a source as they are)."""
        have = {i for i, _ in self.sources}
        return [i for i in self.indexes if i not in have]

    def to_wire(self) -> dict:
        return {"object_id": self.object_id, "k": self.k, "m": self.m, "backend": self.backend,
                "segment_size": self.segment_size, "size": self.size,
                "segment_sums": base64.b64encode(self.segment_sums).decode(),
                "sources": [[i, n] for i, n in self.sources], "indexes": list(self.indexes)}

    @classmethod
    def from_wire(cls, d: dict) -> "RebuildJob":
        """A job from its JSON form, every field checked (InvalidRebuildJob)."""
        try:
            oid = str(d["object_id"])
            k, m, seg, size = int(d["k"]), int(d["m"]), int(d["segment_size"]), int(d["size"])
            backend = str(d["backend"])
            sums = base64.b64decode(d["segment_sums"], validate=True)
            sources = tuple((int(i), str(n)) for i, n in d["sources"])
            indexes = tuple(int(i) for i in d["indexes"])
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise InvalidRebuildJob(f"bad rebuild job: {exc.__class__.__name__}: {exc}") from exc
        job = cls(oid, k, m, backend, seg, size, sums, sources, indexes)
        job.check()
        return job

    @classmethod
    def for_fixes(cls, ec: dict, size: int, sources: list[int], indexes: list[int]) -> "RebuildJob":
        """The job that writes ``indexes`` of the fragment set ``ec`` (a record's
        ``ec``) from the present fragments ``sources`` (plan.sources_for)."""
        return cls(ec["id"], int(ec["k"]), int(ec["m"]), ec.get("backend", "isa_l_rs_vand"), int(ec["seg"]),
                   int(size), base64.b64decode(ec["segsums"]), tuple((i, ec["nodes"][i]) for i in sources),
                   tuple(indexes))

    def check(self) -> None:
        def bad(why: str) -> InvalidRebuildJob:
            return InvalidRebuildJob(f"bad rebuild job for {self.object_id!r}: {why}")
        if not OBJECT_ID.match(self.object_id):
            raise bad("object id is not 32 hex digits")
        if not (1 <= self.k and 0 <= self.m and self.k + self.m <= MAX_WIDTH):
            raise bad("k and m out of range")
        if self.segment_size < 1 or self.size < 0:
            raise bad("sizes out of range")
        if len(self.segment_sums) != 8 * self.segments:
            raise bad(f"{len(self.segment_sums) // 8} segment checksums for {self.segments} segments")
        idx = [i for i, _ in self.sources]
        if len(idx) != self.k or len(set(idx)) != self.k:
            raise bad(f"needs exactly k = {self.k} distinct sources")
        width = self.k + self.m
        if not self.indexes or len(set(self.indexes)) != len(self.indexes):
            raise bad("indexes to write must be distinct, at least one")
        if any(not 0 <= i < width for i in list(self.indexes) + idx):
            raise bad(f"a fragment index outside 0..{width - 1}")

    def source_bytes(self, codec: Codec, first: int = 0, last: int | None = None) -> int:
        """The fragment bytes the k sources hold for segments first..last."""
        return self.k * self.fragment_bytes(codec, first, last)

    def fragment_bytes(self, codec: Codec, first: int = 0, last: int | None = None) -> int:
        """One fragment's bytes for segments first..last (the whole fragment by default)."""
        n = self.segments
        last = n - 1 if last is None else last
        if n == 0 or last < first:
            return 0
        frag, last_frag, _ = codec.fragment_sizes(self.size, self.segment_size)
        return (last - first + 1) * frag - (frag - last_frag if last == n - 1 else 0)


def rebuild_segments(codec: Codec, job: RebuildJob, first: int, got: dict[int, list[bytes]]
                     ) -> dict[int, list[bytes]]:
    """The fragments ``job.indexes`` for the segments first..first+n-1, from
    the sources' fragment data for those segments (``got``: source index →
    one bytes a segment, n each). Raises SegmentMismatch at the first segment
    that does not match its recorded checksum, ValueError if the sources do
    not hold the same number of segments. No I/O: run it in a worker thread."""
    src = [i for i, _ in job.sources]
    counts = {len(got[i]) for i in src}
    if len(counts) != 1:
        raise ValueError(f"the sources of {job.object_id} hold different numbers of segments")
    n = counts.pop()
    missing = job.missing
    out: dict[int, list[bytes]] = {i: [] for i in job.indexes}
    for s in range(n):
        seg = first + s
        pieces = [got[i][s] for i in src]
        rebuilt = rebuild_segment(codec, pieces, missing, job.segment_sums[8 * seg:8 * seg + 8], src)
        if rebuilt is None:
            raise SegmentMismatch(job.object_id, seg)
        frags = dict(zip(src, pieces))
        frags.update(zip(missing, rebuilt))
        for i in job.indexes:
            out[i].append(frags[i])
    return out


@dataclass(frozen=True)
class Window:
    """Segments first..last of job number ``job`` in a batch."""
    job: int
    first: int
    last: int


def windows(jobs: Sequence[RebuildJob], codecs: Sequence[Codec], max_source_bytes: int) -> list[list[Window]]:
    """Cut a batch of jobs into windows of at most ``max_source_bytes`` of
    source fragments each (the memory a rebuild holds at once): small jobs
    share a window whole; a job larger than a window is cut into segment
    ranges, one window each, in order (at least one segment a window, so a
    segment larger than the cap gets a window of its own). A job with no
    segments gets an empty range (first > last)."""
    out: list[list[Window]] = []
    cur: list[Window] = []
    used = 0
    for j, (job, codec) in enumerate(zip(jobs, codecs)):
        n = job.segments
        whole = job.source_bytes(codec)
        if whole <= max_source_bytes:
            if cur and used + whole > max_source_bytes:
                out.append(cur)
                cur, used = [], 0
            cur.append(Window(j, 0, n - 1))
            used += whole
            continue
        if cur:
            out.append(cur)
            cur, used = [], 0
        per_seg = max(1, job.source_bytes(codec, 0, 0))
        step = max(1, max_source_bytes // per_seg)
        for first in range(0, n, step):
            out.append([Window(j, first, min(n, first + step) - 1)])
    if cur:
        out.append(cur)
    return out
