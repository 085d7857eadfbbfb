"""A metadata process's copy of the partition map: kept durably, synced from peers, and split in place.

The map itself, and what a split or a move does to it, is ``meta/pmap.py``;
the index manager (``meta/manager.py``) makes every new version. Here is how
one process keeps up with it:

* it keeps the newest version it has seen in ``map.json`` (written durably
  before it is used), whether the manager pushed it (``POST /index/map``), a
  peer had it, or a move's fence brought it;
* every ``MAP_SYNC_S`` seconds it asks its peers for a newer one (a process
  that was away learns what changed meanwhile);
* when a version shows one of its partitions cut into several held here, it
  splits its own copy in place (``reconcile``), so a replica that missed a
  split, or crashed in the middle of one, finishes it;
* it answers the manager's questions: the partitions' counters
  (``GET /index/stats``) and where to cut one (``GET /index/split-key``).
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from ..fsutil import write_json_durably
from ..rpc import fastjson
from ..rpc.worker import Worker
from .metrics import REGISTRY
from .pmap import PartitionMap, choose_split_key
from .responses import json_response, refuse

if TYPE_CHECKING:
    from .server import MetaService

log = logging.getLogger("minis3.meta")

MAP_SYNC_S = 2.0          # how often a metadata process asks its peers for a newer partition map


class MapSync:
    """The partition map of one metadata process (``svc``): ``pmap``, the newest version it has seen."""

    def __init__(self, svc: MetaService, path: str, bounds: tuple[str, ...], replicas: dict[str, str]):
        """``path``: where the map is kept (``map.json``); without one there
        yet, the first version: ``bounds`` with the ``replicas`` {az: meta id}."""
        self.svc = svc
        self.path = path
        try:
            with open(path) as f:
                self.pmap = PartitionMap.from_doc(json.load(f))
        except FileNotFoundError:
            self.pmap = PartitionMap.initial(bounds, replicas)
        self.splits: list[dict] = []            # splits done here: partition, key, pause
        self._reconciling = asyncio.Lock()
        self._adopting = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None
        self.worker = Worker("map-sync", self.sync_round, MAP_SYNC_S, registry=REGISTRY)

    async def adopt(self, new: PartitionMap) -> bool:
        """Keep ``new`` if it is newer than this process's map (durably), then
        cut this process's own partitions to match it."""
        async with self._adopting:          # one at a time: an older map never lands after a newer one
            if new.version <= self.pmap.version:
                return False
            await asyncio.to_thread(write_json_durably, Path(self.path), new.doc())
            self.pmap = new
        await self.reconcile()
        return True

    async def reconcile(self) -> None:
        """Split each local partition that the map shows cut into several held
        here. A replica that missed a split (its AZ was down) does it when it
        learns the map; one that crashed mid-split finishes it at start.
        One at a time (the start, a peer's map and the manager's may race)."""
        async with self._reconciling:
            await self._reconcile()

    async def _reconcile(self) -> None:
        svc = self.svc
        for local in list(svc.objects.partitions):
            mine = [e for e in self.pmap.covering(local.lo, local.hi) if svc.id in dict(e.replicas).values()]
            if len(mine) < 2 or mine[0].lo != local.lo or mine[-1].hi != local.hi:
                continue
            cur = local.id
            for j in range(len(mine) - 1, 0, -1):          # from the right, so each split is one cut
                left_id = mine[0].id if j == 1 else f"{local.id}.{j}"
                took = await svc.objects.split(cur, mine[j].lo, left_id, mine[j].id)
                svc.set_budgets(svc.objects.by_id[left_id])
                svc.set_budgets(svc.objects.by_id[mine[j].id])
                log.info("split %s at %r into %s and %s (map version %d): writes paused %.3f s (%s)",
                         cur, mine[j].lo, left_id, mine[j].id, self.pmap.version, took["pause_s"],
                         ", ".join(f"{k} {v}" for k, v in took.items() if k != "pause_s"))
                self.splits.append({"partition": cur, "key": mine[j].lo, "into": [left_id, mine[j].id],
                                    "map_version": self.pmap.version, **took, "at_ms": int(time.time() * 1000)})
                cur = left_id

    # -- the index manager's requests -------------------------------------------------------
    async def get_map(self, request):
        newer_than = int(request.query.get("newer_than", -1))
        if self.pmap.version <= newer_than:
            return web.Response(status=204)
        return json_response({"map": self.pmap.doc()})

    async def put_map(self, request):
        """A new map version (the index manager's, or a peer's)."""
        body = await request.json(loads=fastjson.loads)
        try:
            new = PartitionMap.from_doc(body["map"])
        except (KeyError, ValueError) as exc:
            return refuse(400, f"BadMap: {exc}")
        applied = await self.adopt(new)
        return json_response({"applied": applied, "version": self.pmap.version})

    async def index_stats(self, request):
        """Each local partition's counters (cheap: no walk over the records)."""
        svc = self.svc
        return json_response({
            "id": svc.id, "az": svc.az, "home": svc.home, "map_version": self.pmap.version,
            "serving": svc.serving, "time": time.time(),
            "partitions": [p.stats(live=False) for p in svc.objects.partitions],
            "splits": self.splits[-50:], "moves": svc.moves.steps[-50:]})

    async def split_key(self, request):
        """Where to split a partition: the median of its keys (``by=keys``) or
        of the keys recently asked for (``by=load``), moved to a folder boundary."""
        p = self.svc.objects.by_id.get(request.query.get("partition", ""))
        if p is None:
            return refuse(404, "NoSuchPartition")
        keys = sorted(p.recent) if request.query.get("by") == "load" else p.median_key()
        return json_response({"key": choose_split_key(keys, p.lo, p.hi), "keys": len(p)})

    # -- keeping up with peers ---------------------------------------------------------------
    async def _sync_from_peers(self, session: aiohttp.ClientSession) -> None:
        """Adopt any newer map a peer has (one pushed while this process was away)."""
        for peer in self.svc.peers:
            try:
                async with session.get(f"{peer}/index/map", params={"newer_than": self.pmap.version},
                                       timeout=aiohttp.ClientTimeout(total=2)) as r:
                    if r.status != 200:
                        continue
                    new = PartitionMap.from_doc((await r.json(loads=fastjson.loads))["map"])
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError, KeyError):
                continue
            await self.adopt(new)

    async def sync_round(self) -> None:
        """A round of the map sync (every ``MAP_SYNC_S``): a peer's newer map, the
        splits it asks for, an extra process's missed bucket changes, and the GC
        freezer's check. The first round finishes a split a crash cut short."""
        svc = self.svc
        await self._sync_from_peers(self._session)
        await self.reconcile()        # also finishes what a failed attempt left
        if not svc.home:
            await svc.catchup.sync_buckets(self._session)
        svc.freezer.maybe(sum(len(p) for p in svc.objects.partitions))

    async def start(self, app: web.Application) -> None:
        self._session = self.svc.peer_session(timeout_s=10)
        self.worker.start()

    async def stop(self, app: web.Application) -> None:
        await self.worker.stop()
        if self._session is not None:
            await self._session.close()
