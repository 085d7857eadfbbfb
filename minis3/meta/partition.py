"""One key-range partition of the index: a SortedDict in memory, a WAL on disk.

Keys are ``bucket + "/" + key`` strings (bucket names cannot contain "/", so
each bucket's keys are one contiguous run in sort order). Values are records
that always carry ``ts``, a hybrid logical clock timestamp: a write replaces a
record only if its timestamp is not older (last writer wins, as in S3), and a
delete writes a tombstone (``{"ts": ..., "deleted": true}``) instead of
removing the key, so that replicas can merge by timestamp (a delete that one
replica missed is not brought back by another's older copy).
"""
from __future__ import annotations

import asyncio
import heapq
import json
import random
import shutil
from bisect import bisect_right
from collections import deque
from pathlib import Path
from typing import Iterator

from sortedcontainers import SortedDict

from ..core import versions
from ..core.ratelimit import request_budget
from ..fsutil import write_json_durably
from .blobs import BlobStore, externalize
from .wal import WAL, encode_line

#: How many recently asked-for keys a partition remembers: a hot partition is
#: split at the median of these, so each half gets about half of the load.
RECENT_KEYS = 512


def version(rec: dict | None) -> tuple[int, str, int]:
    """The order of versions: later timestamp wins; equal ones by version id
    (``vid``, random per write, so every replica breaks a tie the same way);
    then by placement epoch (``pe``): the scrubber moves a version's fragments
    (rebuilt, or back home from a handoff node) by writing the same version
    with ``pe`` + 1, which replaces it but can never replace a newer write."""
    if rec is None:
        return (-1, "", 0)
    return (int(rec["ts"]), str(rec.get("vid", "")), int(rec.get("pe", 0)))


class Partition:
    def __init__(self, pid: str, lo: str, hi: str | None, directory: Path, snapshot_every: int = 50_000,
                 *, table: SortedDict | None = None, rows: SortedDict | None = None, generation: int = 0,
                 blob_store: BlobStore | None = None):
        """Open (and recover) the partition stored in ``directory``; or, with
        ``table`` and ``rows`` (a half of a split, whose directory holds links
        to its parent's files), adopt them and start WAL ``generation``.
        ``blob_store``: where inline payloads go instead of memory (meta/blobs.py)."""
        self.id, self.lo, self.hi = pid, lo, hi
        self.blob_store = blob_store
        # "serving", or "incoming": a replica being moved here, which takes
        # writes but answers no reads until it has caught up (meta/server.py).
        self.state = "serving"
        self.table: SortedDict = SortedDict()
        # Version rows (``bucket/key\0<version id>``, core/versions.py) in a
        # sorted map of their own: a LIST of current versions walks ``table``
        # only and never meets them; a raw scan merges the two.
        self.rows: SortedDict = SortedDict()
        # Writes accepted but not yet durable. Conditional checks look here
        # first, so two conditional writers can't both pass; readers never do.
        self.pending: dict[str, dict] = {}
        # While a split prepares its halves: the keys changed here since it
        # copied the table (it copies them again before the cut).
        self.changed: set[str] | None = None
        # After the cut, until this partition's last accepted writes have
        # landed: its halves (every change applied here is applied there too),
        # and in each half, the partition it was cut from.
        self.successors: list[Partition] = []
        self.parent: Partition | None = None
        self.wal = WAL(directory, self._apply, self._rows, snapshot_every, blob_store=blob_store)
        if table is None:
            self.recovered = self.wal.recover()
        else:
            self.table, self.rows, self.wal.generation = table, rows if rows is not None else SortedDict(), generation
            self.recovered = len(self.table) + len(self.rows)
        self.wal.open()
        self.writes = 0
        self.reads = 0
        self._line_bytes: float | None = None    # estimated_bytes' sampled mean, at `writes` = _sampled_at
        self._sampled_at = 0
        self.refused = 0                    # requests answered SlowDown (demand it did not serve)
        self.inflight = 0                   # writes waiting for their WAL sync
        self.splitting = False              # a split of it is under way (writes go on)
        self.recent: deque[str] = deque(maxlen=RECENT_KEYS)
        self.write_budget = request_budget(0)
        self.read_budget = request_budget(0)

    def _apply(self, entry: dict) -> None:
        key, value = entry["k"], entry["v"]
        if not self.contains(key):              # a half of a split recovering its parent's files
            return
        if self.blob_store is not None and value is not None and "inline" in value:
            # The payload to the blob log, a ref to it in memory (meta/blobs.py).
            value = externalize(self.blob_store, value)
            entry = {"k": key, "v": value}
        if self.changed is not None:
            self.changed.add(key)
        for h in self.successors:               # a write accepted before a split lands after the cut
            h._apply(entry)
        store = self.store(key)
        if value is None:                       # hard removal (GC queue entries only)
            store.pop(key, None)
            return
        if version(value) >= version(store.get(key)):
            store[key] = value

    def _rows(self) -> Iterator[dict]:
        """The table as snapshot entries, frozen now but made later, by the
        thread that writes the snapshot: only the key list and the records
        are copied here (at C speed; records are replaced, never changed in
        place), so a snapshot of 100,000 keys holds the event loop for
        milliseconds, not the 0.1 s (seconds under load) of building every
        entry here."""
        keys, rows = list(self.table), list(self.rows)
        records = list(map(self.table.__getitem__, keys)) + list(map(self.rows.__getitem__, rows))
        return ({"k": k, "v": v} for k, v in zip(keys + rows, records))

    def store(self, key: str) -> SortedDict:
        """The sorted map ``key`` lives in: ``rows`` for a version row, else ``table``."""
        return self.rows if versions.is_row(key) else self.table

    def __len__(self) -> int:
        return len(self.table) + len(self.rows)

    def contains(self, key: str) -> bool:
        return key >= self.lo and (self.hi is None or key < self.hi)

    def get(self, key: str) -> dict | None:
        self.reads += 1
        self.recent.append(key)
        return self.store(key).get(key)

    def latest(self, key: str) -> dict | None:
        """The newest record including not-yet-durable writes (for conditions),
        also those the partition this was just cut from accepted."""
        cur = self.pending.get(key) or self.store(key).get(key)
        if self.parent is not None:
            theirs = self.parent.latest(key)
            if version(theirs) > version(cur):
                return theirs
        return cur

    def landing(self) -> bool:
        """Are writes accepted here not yet durable (or, just after a split,
        writes the partition this was cut from accepted)?"""
        return bool(self.inflight or self.wal.writing or (self.parent is not None and self.parent.landing()))

    async def write(self, key: str, value: dict | None) -> None:
        # Everything up to the first await runs atomically with the caller's check.
        if value is not None:
            self.pending[key] = value
        self.writes += 1
        self.recent.append(key)
        self.inflight += 1
        try:
            await self.wal.append({"k": key, "v": value})
        finally:
            self.inflight -= 1
            if value is not None and self.pending.get(key) is value:
                del self.pending[key]

    def iter_from(self, start: str, inclusive: bool) -> Iterator[tuple[str, dict]]:
        """Every record from ``start`` on, heads and version rows merged in key order."""
        if not self.rows:
            yield from self.iter_heads_from(start, inclusive)
            return
        heads = self.table.irange(minimum=start, inclusive=(inclusive, True))
        rows = self.rows.irange(minimum=start, inclusive=(inclusive, True))
        for k in heapq.merge(heads, rows):
            if self.hi is not None and k >= self.hi:
                return
            yield k, self.store(k)[k]

    def iter_heads_from(self, start: str, inclusive: bool) -> Iterator[tuple[str, dict]]:
        """Every record from ``start`` on but version rows: a LIST of current versions."""
        for k in self.table.irange(minimum=start, inclusive=(inclusive, True)):
            if self.hi is not None and k >= self.hi:
                return
            yield k, self.table[k]

    def estimated_bytes(self, sample: int = 200) -> int:
        """The size of the partition's records as stored (a WAL line each):
        the keys times the mean size of a random sample of them. The sample is
        taken again only after writes amounting to a tenth of the keys (or
        ``sample``): the index manager asks for every partition's stats every
        few seconds, and encoding 200 records of each partition each time held
        the event loop for 0.1-0.4 s at a million keys."""
        n = len(self)
        if n == 0:
            return 0
        if self._line_bytes is None or self.writes - self._sampled_at >= max(sample, n // 10):
            idx = range(n) if n <= sample else random.sample(range(n), sample)
            heads, rows, nh = self.table.items(), self.rows.items(), len(self.table)

            def item(i: int):
                return heads[i] if i < nh else rows[i - nh]
            total = sum(len(encode_line({"k": item(i)[0], "v": item(i)[1]}, refs=True)) for i in idx)
            self._line_bytes, self._sampled_at = total / len(idx), self.writes
        return int(self._line_bytes * n)

    def stats(self, *, live: bool = True) -> dict:
        out = {"id": self.id, "lo": self.lo, "hi": self.hi, "keys": len(self), "version_rows": len(self.rows),
               "reads": self.reads, "writes": self.writes, "refused": self.refused, "wal_syncs": self.wal.syncs,
               "wal_syncs_on_loop": self.wal.syncs_on_loop,
               "wal_generation": self.wal.generation, "bytes": self.estimated_bytes(),
               "inflight": self.inflight, "splitting": self.splitting, "state": self.state}
        if live:          # a walk over every record: for status pages, not for the split check
            out["live_keys"] = sum(1 for v in self.table.values() if not v.get("deleted")) + \
                sum(1 for v in self.rows.values() if not v.get("deleted"))
        return out

    def median_key(self) -> list[str]:
        """Keys around the middle of the partition (for the split key): heads
        only, since a split never separates a key's versions."""
        n = len(self.table)
        if n < 2:
            return list(self.table.keys())
        keys = self.table.keys()
        span = max(1, n // 10)
        return [keys[i] for i in range(max(0, n // 2 - span), min(n, n // 2 + span + 1))]


MANIFEST = "partitions.json"


def overlaps(lo1: str, hi1: str | None, lo2: str, hi2: str | None) -> bool:
    """Do the key ranges [lo1, hi1) and [lo2, hi2) share a key (None: to the end)?"""
    return (hi2 is None or lo1 < hi2) and (hi1 is None or lo2 < hi1)


class PartitionSet:
    """The partitions one metadata process holds, in key order.

    ``<root>/partitions.json`` (written atomically) lists them: id, lo, hi.
    Each has its own directory (``<root>/<id>``: snapshot + WAL). A split
    makes the two halves' directories (hard links to the old partition's
    files), then writes the new list, then removes the old directory, so a
    crash at any point leaves either the old partition or the two new ones
    (directories not on the list are half-built leftovers, removed at start).
    """

    def __init__(self, bounds: tuple[str, ...] | None, root: Path, snapshot_every: int = 50_000,
                 blob_store: BlobStore | None = None):
        """``bounds``: the topology's initial cut, for a new home replica (which
        holds every partition); None for a new extra metadata process, which
        holds none until one is moved to it. ``blob_store``: every
        partition's inline payloads (meta/blobs.py)."""
        self.blob_store = blob_store
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.snapshot_every = snapshot_every
        try:
            listed = json.loads((self.root / MANIFEST).read_text())["partitions"]
        except FileNotFoundError:
            # A new replica (or one from before the manifest).
            listed = []
            if bounds is not None:
                edges = [""] + sorted(set(b for b in bounds if b))
                listed = [{"id": f"p{i:03d}", "lo": lo, "hi": edges[i + 1] if i + 1 < len(edges) else None}
                          for i, lo in enumerate(edges)]
            write_json_durably(self.root / MANIFEST, {"partitions": listed})
        self.partitions = [Partition(d["id"], d["lo"], d["hi"], self.root / d["id"], snapshot_every,
                                     blob_store=blob_store) for d in listed]
        for p, d in zip(self.partitions, listed):
            p.state = d.get("state", "serving")
        keep = {d["id"] for d in listed}
        for child in self.root.iterdir():
            if child.is_dir() and child.name not in keep:
                shutil.rmtree(child, ignore_errors=True)
        self._reindex()

    def _reindex(self) -> None:
        self.partitions.sort(key=lambda p: p.lo)
        self._los = [p.lo for p in self.partitions]
        self.by_id = {p.id: p for p in self.partitions}

    def for_key(self, key: str) -> Partition | None:
        """The local partition holding ``key``; None if this process holds none."""
        i = bisect_right(self._los, key) - 1
        p = self.partitions[i] if i >= 0 else None
        return p if p is not None and p.contains(key) else None

    def covers(self, start: str, end: str | None) -> bool:
        """Do the local partitions hold every key in [start, end), with no gap?"""
        pos = start
        while True:
            p = self.for_key(pos)
            if p is None:
                return False
            if p.hi is None or (end is not None and p.hi >= end):
                return True
            pos = p.hi

    def scan(self, start: str, inclusive: bool = True, *, heads: bool = False) -> Iterator[tuple[str, dict]]:
        """Every (key, record) from ``start`` on, in key order, across the local
        partitions (the caller checks they cover the range it reads);
        ``heads``: no version rows."""
        i = max(0, bisect_right(self._los, start) - 1)
        for p in self.partitions[i:]:
            yield from (p.iter_heads_from if heads else p.iter_from)(start, inclusive)

    def _manifest(self, partitions: list[Partition]) -> dict:
        return {"partitions": sorted(({"id": x.id, "lo": x.lo, "hi": x.hi,
                                       **({"state": x.state} if x.state != "serving" else {})}
                                      for x in partitions), key=lambda d: d["lo"])}

    async def add(self, pid: str, lo: str, hi: str | None) -> Partition:
        """A new, empty, incoming partition [lo, hi) (a replica moving here),
        listed durably before it takes any write. Idempotent."""
        if pid in self.by_id:
            return self.by_id[pid]
        for p in self.partitions:
            if overlaps(p.lo, p.hi, lo, hi):
                raise ValueError(f"{pid} [{lo!r}, {hi!r}) overlaps local partition {p.id}")
        d = self.root / pid
        if d.exists():
            await asyncio.to_thread(shutil.rmtree, d)          # a leftover of an abandoned move
        part = Partition(pid, lo, hi, d, self.snapshot_every, blob_store=self.blob_store)
        part.state = "incoming"
        after = self.partitions + [part]
        await asyncio.to_thread(write_json_durably, self.root / MANIFEST, self._manifest(after))
        self.partitions = after
        self._reindex()
        return part

    async def set_state(self, pid: str, state: str) -> None:
        p = self.by_id[pid]
        if p.state != state:
            p.state = state
            await asyncio.to_thread(write_json_durably, self.root / MANIFEST, self._manifest(self.partitions))

    async def drop(self, pid: str) -> None:
        """Forget a partition this process no longer holds (its replica moved
        away and the new holder has caught up): off the list, then its files."""
        p = self.by_id[pid]
        while p.landing():
            await asyncio.sleep(0.001)
        after = [x for x in self.partitions if x is not p]
        await asyncio.to_thread(write_json_durably, self.root / MANIFEST, self._manifest(after))
        self.partitions = after
        self._reindex()
        p.wal.close()
        await p.wal.snapshot_written()
        await asyncio.to_thread(shutil.rmtree, self.root / pid, True)

    async def split(self, pid: str, key: str, left_id: str, right_id: str) -> dict:
        """Cut partition ``pid`` at ``key`` into ``left_id`` [lo, key) and ``right_id``
        [key, hi), while it serves reads and writes: meta/split.py says how, on disk and
        in memory. Returns what it took (seconds, keys)."""
        from .split import split_partition     # split.py builds on this module's Partition
        return await split_partition(self, pid, key, left_id, right_id)
