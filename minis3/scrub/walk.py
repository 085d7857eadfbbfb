"""One pass's walk over the objects table: every key checked, its damage repaired.

The three AZs' replicas of the objects table are scanned together in key
order (scrub/scan.py, at most ``scrub.meta_keys_per_s`` keys a second). For
each key :class:`ObjectWalk`:

* writes the newest version to a replica that lacks it (anti-entropy,
  scrub/metadata.py);
* notes the fragments every replica's version points at (what the GC must
  keep, scrub/gc.py);
* keeps track of multipart uploads: part records of uploads that are gone,
  and uploads in deleted buckets, are tombstoned;
* plans the newest version's fragments against the inventories and queues
  its repair (scrub/repair.py), ``REPAIR_CONCURRENCY`` objects at once.

A version stamped after the inventories were taken (less ``FRESH_MS``) is
left to the next pass: the inventories may not show its fragments yet.
"""
from __future__ import annotations

import asyncio
import logging

from ..core.hlc import physical_ms
from ..meta.client import PARTS, UPLOADS
from .metadata import MetadataRepair
from .repair import Repairer
from .report import PassReport
from .scan import ec_units, merged_scan

log = logging.getLogger("minis3.scrub")

FRESH_MS = 1_000          # versions stamped after the inventories began, less this (clock skew), wait for the next pass


class ObjectWalk:
    """The walk of one pass. ``inv``: node → {(oid, idx): (size, age)} of
    the nodes that answered; ``quarantined``: node → its quarantined
    fragments; ``referenced``: node → the fragments some version points at,
    filled in by the walk; ``buckets``: the live bucket names (None: not
    known); ``gone``: the nodes down long enough that their fragments are lost."""

    def __init__(self, metadata: MetadataRepair, repairer: Repairer, keys_per_s: float, rep: PassReport,
                 inv, quarantined, referenced, buckets: set[str] | None, gone: set[str] = frozenset()) -> None:
        self.metadata, self.repairer, self.keys_per_s, self.rep = metadata, repairer, keys_per_s, rep
        self.inv, self.quarantined, self.referenced = inv, quarantined, referenced
        self.buckets, self.gone = buckets, gone
        self.part_records: dict[str, list[tuple[str, dict]]] = {}      # upload id → its live part records
        self.live_uploads: set[str] = set()
        self.fresh_ms = rep.inventory_unix * 1000 - FRESH_MS

    async def run(self) -> bool:
        """Walk every key; True if every replica was scanned to its end."""
        rep = self.rep
        sem = asyncio.Semaphore(self.repairer.concurrency(rep))
        batcher = self.repairer.batcher(rep)
        repairs: set[asyncio.Task] = set()
        failed: list[bool] = []
        async for ikey, versions, alive in merged_scan(self.metadata.replicas, "objects", failed,
                                                       self.metadata.router, self.keys_per_s):
            rep.keys_done += 1
            newest = await self._visit(ikey, versions, alive)
            todo = self._todo(ikey, newest) if newest is not None else None
            if not todo:
                continue
            await sem.acquire()
            bucket, _, key = ikey.partition("/")
            task = asyncio.ensure_future(self.repairer.repair_guarded(rep, bucket, key, newest, todo, sem, batcher))
            repairs.add(task)
            task.add_done_callback(repairs.discard)
        if repairs:
            await asyncio.gather(*repairs)
        await batcher.close()
        rep.replicas_scanned = failed.count(False)
        complete = not any(failed)          # (a replica whose scan broke off stays failed)
        if complete:
            await self.metadata.clean_parts(rep, self.part_records, self.live_uploads)
        return complete

    async def _visit(self, ikey: str, versions, alive) -> dict | None:
        """Anti-entropy, references and uploads of one key; its newest
        version if its fragments are to be checked in this pass."""
        bucket, _, key = ikey.partition("/")
        newest = await self.metadata.anti_entropy(self.rep, "/v/object", {"bucket": bucket, "key": key}, versions,
                                                  alive, ikey)
        for v in versions:                      # every replica's version keeps its fragments
            for _, ec, _ in ec_units(v):
                for idx, node in enumerate(ec["nodes"]):
                    if node in self.referenced:
                        self.referenced[node].add((ec["id"], idx))
        if not newest or newest.get("deleted"):
            return None
        if ikey.startswith(PARTS):
            self.part_records.setdefault(key.partition("/")[0], []).append((key, newest))
        elif ikey.startswith(UPLOADS):
            if self.buckets is not None and key.partition("/")[0] not in self.buckets:
                # Its bucket was deleted: S3 drops incomplete uploads with it.
                await self.metadata.tombstone(self.rep, ikey, newest)
            else:
                self.live_uploads.add(key[-32:])
        if physical_ms(int(newest["ts"])) > self.fresh_ms:
            return None           # committed after the inventories were taken: the next pass looks
        return newest

    def _todo(self, ikey: str, newest: dict) -> list:
        """The fragment sets of ``newest`` with fixes to make (Repairer.plan)."""
        rep = self.rep
        try:
            return self.repairer.plan(rep, ikey, newest, self.inv, self.quarantined, self.referenced, self.gone)
        except Exception as exc:          # an odd record never stops the pass
            log.warning("cannot check %s: %s", ikey, exc)
            rep.not_full += 1
            if len(rep.unrepairable) < 50:
                rep.unrepairable.append([ikey, f"cannot check: {exc.__class__.__name__}: {exc}"])
            return []
