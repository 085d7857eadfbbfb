"""The index manager: watches the partitions and splits the ones that grow or run hot.

One per cluster, running in the scrubber's process (it keeps no state a
restart would lose: the map lives on the metadata processes). Every
``index.check_every_s`` it

1. asks every metadata process for its partitions' counters (``/index/stats``)
   and the newest partition map any of them has;
2. lets :class:`minis3.meta.policy.SplitPolicy` decide (keys, bytes, or a
   sustained request rate);
3. for the first decision, asks a replica where to cut (``/index/split-key``:
   the median key, or the median of recently asked-for keys for a hot
   partition, at a folder boundary), makes the next map version and sends it
   to every metadata process (``POST /index/map``). Each replica cuts its own
   copy in place when it adopts that version (a moment's pause of that
   partition's writes); one that is down learns the map from its peers when
   it returns, and cuts then.

It is the map's only writer, so versions never race. If it is down, nothing
splits, and nothing else changes: every request is still served.
"""
from __future__ import annotations

import asyncio
import logging
import time

import aiohttp

from .pmap import MapError, PartitionMap, newest
from .policy import SplitPolicy

log = logging.getLogger("minis3.index")


class IndexManager:
    def __init__(self, topo, session: aiohttp.ClientSession):
        self.topo = topo
        self.session = session
        self.policy = SplitPolicy.from_spec(topo.index)
        self.map: PartitionMap | None = None
        self.reports: list[dict] = []
        self.last_check: float | None = None
        self.splits: list[dict] = []               # splits this manager made, newest last
        self.error: str | None = None

    async def _get(self, url: str, path: str, **params) -> dict | None:
        try:
            async with self.session.get(url + path, params=params, timeout=aiohttp.ClientTimeout(total=5)) as r:
                return await r.json() if r.status == 200 else None
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
            return None

    async def look(self) -> None:
        """Every metadata process's counters, and the newest map among them."""
        metas = self.topo.metas
        stats = await asyncio.gather(*(self._get(m.url, "/index/stats") for m in metas))
        self.reports = [s for s in stats if s is not None]
        best = max(self.reports, key=lambda s: s["map_version"], default=None)
        if best is None:
            return
        if self.map is None or self.map.version < best["map_version"]:
            url = next(m.url for m, s in zip(metas, stats) if s is best)
            got = await self._get(url, "/index/map")
            if got is not None:
                self.map = newest([self.map, PartitionMap.from_doc(got["map"])])

    async def publish(self, new: PartitionMap) -> int:
        """Send a map version to every metadata process; how many adopted it (or had it)."""
        async def one(url: str) -> bool:
            try:
                async with self.session.post(url + "/index/map", json={"map": new.doc()},
                                             timeout=aiohttp.ClientTimeout(total=60)) as r:
                    return r.status == 200 and (await r.json())["version"] >= new.version
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError, KeyError):
                return False
        return sum(await asyncio.gather(*(one(m.url) for m in self.topo.metas)))

    async def check(self) -> dict | None:
        """One look; at most one split. Returns the split made, if any."""
        await self.look()
        self.last_check = time.time()
        if self.map is None or len(self.reports) < 2:
            return None                           # no quorum of the index in sight: change nothing
        decisions = self.policy.observe(time.monotonic(), self.reports, {p.id for p in self.map.partitions})
        for d in decisions:
            entry = self.map.get(d.partition)
            holders = [r for r in self.reports if any(p["id"] == d.partition for p in r["partitions"])]
            if not holders:
                continue
            source = max(holders, key=lambda r: next(p["keys"] for p in r["partitions"] if p["id"] == d.partition))
            meta = next(m for m in self.topo.metas if m.id == source["id"])
            got = await self._get(meta.url, "/index/split-key", partition=d.partition, by=d.by)
            key = got and got.get("key")
            if not key:
                continue
            try:
                new = self.map.split(d.partition, key, reason=d.reason, at_ms=int(time.time() * 1000))
            except MapError as exc:
                log.warning("cannot split %s at %r: %s", d.partition, key, exc)
                continue
            started = time.monotonic()
            adopted = await self.publish(new)
            self.map = new
            self.policy.split_done(d.partition)
            ev = {**new.events[-1], "adopted_by": adopted, "seconds": round(time.monotonic() - started, 3),
                  "range": [entry.lo, entry.hi]}
            self.splits.append(ev)
            del self.splits[:-100]
            log.info("split %s [%r, %r) at %r into %s (%s); map version %d, adopted by %d of %d metadata "
                     "processes in %.2f s", d.partition, entry.lo, entry.hi, key, " and ".join(ev["into"]),
                     d.reason, new.version, adopted, len(self.topo.metas), ev["seconds"])
            return ev
        return None

    async def loop(self) -> None:
        while True:
            try:
                await self.check()
                self.error = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep managing: a failed look is retried next time
                self.error = repr(exc)
                log.exception("index manager check failed")
            await asyncio.sleep(self.topo.index.check_every_s)

    def status(self) -> dict:
        return {"map_version": self.map.version if self.map else None, "last_check_unix": self.last_check,
                "rates": {k: round(v, 1) for k, v in self.policy.rates.items()}, "splits": self.splits[-20:],
                "error": self.error, "settings": {k: getattr(self.topo.index, k) for k in (
                    "split_keys", "split_bytes", "split_ops_per_s", "hot_seconds", "write_ops_per_s",
                    "read_ops_per_s", "max_inflight_writes")}}
