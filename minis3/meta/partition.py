"""One key-range partition of the index: a SortedDict in memory, a WAL on disk.

Keys are ``bucket + "/" + key`` strings (bucket names cannot contain "/", so
each bucket's keys are one contiguous run in sort order). Values are records
that always carry ``ts``, a hybrid logical clock timestamp: a write replaces a
record only if its timestamp is not older (last writer wins, as in S3), and a
delete writes a tombstone (``{"ts": ..., "deleted": true}``) instead of
removing the key, so that replicas (a later issue) can merge by timestamp.
"""
from __future__ import annotations

from bisect import bisect_right
from pathlib import Path
from typing import Iterator

from sortedcontainers import SortedDict

from .wal import WAL


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
    def __init__(self, pid: str, lo: str, hi: str | None, directory: Path, snapshot_every: int = 50_000):
        self.id, self.lo, self.hi = pid, lo, hi
        self.table: SortedDict = SortedDict()
        # Writes accepted but not yet durable. Conditional checks look here
        # first, so two conditional writers can't both pass; readers never do.
        self.pending: dict[str, dict] = {}
        self.wal = WAL(directory, self._apply, self._rows, snapshot_every)
        self.recovered = self.wal.recover()
        self.wal.open()
        self.writes = 0
        self.reads = 0

    def _apply(self, entry: dict) -> None:
        key, value = entry["k"], entry["v"]
        if value is None:                       # hard removal (GC queue entries only)
            self.table.pop(key, None)
            return
        if version(value) >= version(self.table.get(key)):
            self.table[key] = value

    def _rows(self) -> list[dict]:
        return [{"k": k, "v": v} for k, v in self.table.items()]

    def contains(self, key: str) -> bool:
        return key >= self.lo and (self.hi is None or key < self.hi)

    def get(self, key: str) -> dict | None:
        self.reads += 1
        return self.table.get(key)

    def latest(self, key: str) -> dict | None:
        """The newest record including not-yet-durable writes (for conditions)."""
        return self.pending.get(key) or self.table.get(key)

    async def write(self, key: str, value: dict | None) -> None:
        # Everything up to the first await runs atomically with the caller's check.
        if value is not None:
            self.pending[key] = value
        self.writes += 1
        try:
            await self.wal.append({"k": key, "v": value})
        finally:
            if value is not None and self.pending.get(key) is value:
                del self.pending[key]

    def iter_from(self, start: str, inclusive: bool) -> Iterator[tuple[str, dict]]:
        for k in self.table.irange(minimum=start, inclusive=(inclusive, True)):
            if self.hi is not None and k >= self.hi:
                return
            yield k, self.table[k]

    def stats(self) -> dict:
        live = sum(1 for v in self.table.values() if not v.get("deleted"))
        return {"id": self.id, "lo": self.lo, "hi": self.hi, "keys": len(self.table), "live_keys": live,
                "reads": self.reads, "writes": self.writes, "wal_syncs": self.wal.syncs,
                "wal_generation": self.wal.generation}


class PartitionSet:
    """The partitions of one metadata process, in key order."""

    def __init__(self, bounds: tuple[str, ...], root: Path, snapshot_every: int = 50_000):
        edges = [""] + sorted(set(b for b in bounds if b))
        self.partitions = []
        for i, lo in enumerate(edges):
            hi = edges[i + 1] if i + 1 < len(edges) else None
            self.partitions.append(Partition(f"p{i:03d}", lo, hi, Path(root) / f"p{i:03d}", snapshot_every))
        self._los = [p.lo for p in self.partitions]

    def for_key(self, key: str) -> Partition:
        return self.partitions[bisect_right(self._los, key) - 1]

    def scan(self, start: str, inclusive: bool = True) -> Iterator[tuple[str, dict]]:
        """Every (key, record) from ``start`` on, in key order, across partitions."""
        i = bisect_right(self._los, start) - 1
        for p in self.partitions[i:]:
            yield from p.iter_from(start, inclusive)
