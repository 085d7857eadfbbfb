"""The scrubber's garbage collection: fragments no metadata points at, removed after a grace period.

Run at the end of a pass whose metadata scan was complete (every replica
scanned to its end), with the fragments every replica's versions reference:
a fragment in a node's inventory that none references and that is older than
the grace period (``plan.orphans``, ``plan.gc_min_age``) is deleted, and the
node checks its age again (``DELETE ?min_age_s``). Why this never races a
write: docs/ARCHITECTURE.md, "Garbage collection".
"""
from __future__ import annotations

import asyncio
import time

from ..core.hlc import physical_ms
from ..meta.replica import Replica, ReplicaError
from ..storage.client import StorageClient
from . import plan as P
from .report import ORPHAN_BYTES, ORPHANS, PassReport


class GarbageCollector:
    """``replicas``: each AZ's home metadata process (they keep the GC
    notes); ``grace``: seconds an unreferenced fragment is kept."""

    def __init__(self, storage: StorageClient, replicas: list[Replica], grace: float) -> None:
        self.storage, self.replicas, self.grace = storage, replicas, grace

    async def collect(self, rep: PassReport, inv, received, referenced, t0: float) -> None:
        """Delete every node's unreferenced fragments older than the grace
        period (``inv``: the inventories, ``received``: when each came,
        ``referenced``: node → the fragments some version points at;
        ``t0``: when the pass began)."""
        async def one(node: str) -> None:
            min_age = P.gc_min_age(self.grace, t0, received[node])
            entries = [(oid, idx, size, age) for (oid, idx), (size, age) in inv[node].items()]
            refs = referenced[node]
            for oid, idx in P.orphans(entries, lambda o, i: (o, i) in refs, min_age):
                removed = await self.storage.delete(node, oid, idx, min_age_s=self.grace)
                if removed:
                    size = inv[node][(oid, idx)][0]
                    rep.orphans_removed += 1
                    rep.orphan_bytes += size
                    ORPHANS.inc()
                    ORPHAN_BYTES.inc(size)
        await asyncio.gather(*(one(n) for n in sorted(inv)))
        await self._forget_gc_notes()

    async def _forget_gc_notes(self) -> None:
        """The replicas' GC notes (why a fragment became garbage) are history
        once older than the grace period: the inventory GC has dealt with them."""
        cutoff_ms = (time.time() - self.grace) * 1000
        for r in self.replicas:
            try:
                items = (await r.call("GET", "/gc"))["items"]
                old = [it["id"] for it in items if physical_ms(int(it.get("ts", 0))) < cutoff_ms]
                if old:
                    await r.call("POST", "/gc/forget", json={"ids": old})
            except ReplicaError:
                continue
