"""Splitting a partition in place, while it serves reads and writes (``PartitionSet.split``).

Partition ``pid`` is cut at ``key`` into ``left_id`` [lo, key) and ``right_id`` [key, hi).
What it took (seconds, keys) is returned: ``pause_s`` is the one moment writes to the range
cannot go on (the event loop copies the last changes to the halves and switches to them,
with no await). The halves get no request budgets: the caller sets them.

On disk a split copies nothing: the partition's WAL stays in its generation from the start
(no snapshot), so its files only grow, and each half gets hard links to them and a WAL
generation of its own. Every write the partition acknowledges from then on is in a file (the
same file) that each half recovers from, keeping only its range. So the new partition list
can replace the old (the moment of the split on disk) while the partition still takes
writes, and a crash at any point recovers either the partition or both halves, with every
acknowledged write (the failpoints ``meta.split.before_manifest`` and ``after_manifest``,
core/failpoints.py, are either side of that moment). A split that fails instead puts the
list naming the partition back (if the failed write may have replaced it) before it removes
the halves' directories. Each half's own snapshot replaces the linked files once the partition's
last writes have landed.

In memory: the table is copied to the halves (in a thread), which then copy again the keys
changed meanwhile (``catch_up``, in rounds); after the list is durable, the last such copy
and the switch. Writes already queued for the partition's WAL are not waited for: they land
in its (linked) file and are applied to the halves' tables too (``landing``).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import time
from bisect import bisect_left
from pathlib import Path

from sortedcontainers import SortedDict

from ..fsutil import fsync_dir, write_json_durably
from ..rpc.failpoints import failpoint
from .blobs import BlobStore
from .partition import MANIFEST, Partition, PartitionSet

log = logging.getLogger("minis3.meta")


async def split_partition(ps: PartitionSet, pid: str, key: str, left_id: str, right_id: str) -> dict:
    """Cut partition ``pid`` of ``ps`` at ``key`` into ``left_id`` [lo, key) and ``right_id``
    [key, hi) (module doc). Returns what it took (seconds, keys): ``pause_s`` is the one
    moment writes to the range cannot go on."""

    p = ps.by_id[pid]
    if not (key > p.lo and (p.hi is None or key < p.hi)):
        raise ValueError(f"split key {key!r} outside {pid}")
    if p.splitting or p.parent is not None:
        raise RuntimeError(f"{pid} is being split")
    took: dict = {"keys": len(p)}
    lap = _Laps(took)
    ranges = ((left_id, p.lo, key), (right_id, key, p.hi))
    halves: list[Partition] = []
    p.splitting = True
    p.wal.hold_snapshots(True)
    cut = listing = False
    try:
        halves = await _prepare_halves(ps, p, ranges)
        for h in halves:
            h.state = p.state
            h.wal.hold_snapshots(True)      # the partition's WAL (their linked file) may still grow
        lap("prepare_s")
        took["caught_up"] = await _catch_up(p, halves, key)
        lap("catch_up_s")
        after = [x for x in ps.partitions if x is not p] + halves
        listing = True                         # from here the list on disk may name the halves
        await asyncio.to_thread(_list, ps.root / MANIFEST, ps._manifest(after))
        lap("manifest_s")
        # The new list is durable: the halves are the partition. No await
        # from here on: the halves get what changed during the write of the
        # list, then every change the partition applies, and take its writes.
        changed, p.changed = p.changed, None
        _copy(p, changed, halves, key)
        took["caught_up"] += len(changed)
        p.successors = halves
        for h in halves:
            h.parent = p
        ps.partitions = after
        ps._reindex()
        cut = True
        lap("pause_s")
    finally:
        p.splitting = False
        if not cut:                            # the partition goes on as it was
            p.changed = None
            for h in halves:
                h.wal.close()
            # The list on disk names the partition again before the halves'
            # directories go: a write of the new list that failed may still
            # have renamed it into place (only the directory's fsync failed,
            # say), and a list naming halves with no files would lose the
            # range on this replica at the next start.
            if not listing or await _list_again(ps.root / MANIFEST, pid, ps._manifest(ps.partitions)):
                for d in (left_id, right_id):
                    shutil.rmtree(ps.root / d, ignore_errors=True)
            p.wal.hold_snapshots(False)
    await _land(p, halves)
    lap("landing_s")
    await asyncio.to_thread(shutil.rmtree, ps.root / pid, True)
    return took


async def _prepare_halves(ps: PartitionSet, p: Partition, ranges) -> list[Partition]:
    """The halves of ``p``, made from its files (hard links) and from its table as of
    now; the keys changed from now on are noted in ``p.changed``."""
    await p.wal.snapshot_written()       # one under way would remove files while they are linked
    gen = p.wal.generation
    for hid, _, _ in ranges:
        await asyncio.to_thread(_link_files, ps.root / p.id, ps.root / hid)
    # Keys and records at C speed (records are replaced, never changed in
    # place), made into the halves' tables in a thread.
    keys, rkeys = list(p.table), list(p.rows)
    records, rrecords = list(map(p.table.__getitem__, keys)), list(map(p.rows.__getitem__, rkeys))
    p.changed = set()
    return await asyncio.to_thread(_halves, (keys, records), (rkeys, rrecords), ranges, ps.root,
                                   ps.snapshot_every, gen + 1, ps.blob_store)


def _list(path: Path, doc: dict) -> None:
    """Write the partition list naming the halves (in a thread): the moment of
    the split on disk, between its two failpoints."""
    failpoint("meta.split.before_manifest")
    write_json_durably(path, doc)
    failpoint("meta.split.after_manifest")


async def _list_again(path: Path, pid: str, doc: dict) -> bool:
    """After a split failed at or after the write of its list: make sure the
    list on disk names partition ``pid`` again (``doc``, written durably if
    it does not). False if that failed too: the halves' directories then stay
    (the next start removes whichever the list on disk does not name)."""
    def put_back() -> None:
        try:
            listed = {d["id"] for d in json.loads(path.read_text())["partitions"]}
        except (OSError, ValueError, KeyError):
            listed = set()
        if pid not in listed:
            write_json_durably(path, doc)
    try:
        await asyncio.to_thread(put_back)
        return True
    except OSError as exc:
        log.error("a split of %s failed and the partition list could not be written back (%s): the halves' "
                  "directories stay until the next start", pid, exc)
        return False


def _link_files(src: Path, dst: Path) -> None:
    """Give ``dst`` (a new half of a split) hard links to every snapshot and WAL
    file of ``src`` (the partition being split, quiet and closed): the half
    recovers from them, keeping only its own range, until its first snapshot
    of its own replaces them. No record is copied, so a split costs the same
    whatever the partition's size."""
    if dst.exists():
        shutil.rmtree(dst)                 # a leftover of a split that crashed
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if f.name.startswith(("snapshot-", "wal-")) and f.name.endswith((".jsonl", ".log")):
            os.link(f, dst / f.name)
    fsync_dir(dst)
    fsync_dir(dst.parent)


class _Laps:
    """Records, by phase name, the seconds since the previous lap."""

    def __init__(self, into: dict):
        self.into, self.t = into, time.monotonic()

    def __call__(self, phase: str) -> None:
        now = time.monotonic()
        self.into[phase] = round(now - self.t, 4)
        self.t = now


async def _catch_up(p: Partition, halves: list[Partition], key: str) -> int:
    """Copy to the halves the keys ``p`` changed since they were made, in rounds (so that
    the event loop is held briefly) until a round finds fewer than 1000: how many."""
    copied = 0
    while True:
        changed, p.changed = p.changed, set()
        _copy(p, changed, halves, key)
        copied += len(changed)
        if len(changed) < 1000:
            return copied
        await asyncio.sleep(0)


async def _land(p: Partition, halves: list[Partition]) -> None:
    """After the cut: writes ``p`` accepted before it land in its WAL and in the halves'
    tables too; then each half's own snapshot replaces the linked files."""
    while p.inflight or p.wal.writing:
        await asyncio.sleep(0.001)
    p.wal.close()
    p.successors = []
    for h in halves:
        h.parent = None
        h.wal.hold_snapshots(False)
        h.wal.request_snapshot()             # own files, only its own range


def _halves(heads: tuple[list, list], rows: tuple[list, list], ranges, root: Path, snapshot_every: int,
            generation: int, blob_store: BlobStore | None = None) -> list[Partition]:
    """The two halves of a split (in a thread: O(keys)), each with the slice
    of the heads and of the version rows (each (sorted keys, records)) in its
    range and WAL ``generation`` opened in its directory."""
    def cut(keys: list[str], records: list[dict], lo: str, hi: str | None) -> SortedDict:
        i, j = bisect_left(keys, lo), (len(keys) if hi is None else bisect_left(keys, hi))
        return SortedDict(zip(keys[i:j], records[i:j]))
    return [Partition(hid, lo, hi, root / hid, snapshot_every, table=cut(*heads, lo, hi), rows=cut(*rows, lo, hi),
                      generation=generation, blob_store=blob_store) for hid, lo, hi in ranges]


def _copy(src: Partition, keys: set[str], halves: list[Partition], cut: str) -> None:
    """Make the halves hold what ``src`` holds for each of ``keys``."""
    for k in keys:
        h = (halves[0] if k < cut else halves[1]).store(k)
        v = src.store(k).get(k)
        if v is None:
            h.pop(k, None)
        else:
            h[k] = v
