"""One metadata replica: buckets, object records and a GC queue, durable, last writer wins.

Every AZ runs one replica, and every replica holds every partition. A replica
has no opinion about S3's rules (ownership, conditions, empty buckets): the
frontend is the coordinator that reads and writes quorums of replicas and
applies those rules (``meta/quorum.py``). A replica only

* stores versions by key, keeping the newest: a version is ordered by its
  hybrid-logical-clock ``ts`` (assigned by the coordinator), then its ``vid``
  (a random id, so two coordinators' equal timestamps still order the same way
  everywhere); a delete is a tombstone version;
* makes each accepted version durable (WAL, fdatasync) before it answers;
* notes, when an object version replaces or tombstones one that had
  fragments, those fragments as GC candidates (the scrubber checks a quorum
  before deleting anything);
* catches up when it starts: it pulls every version from its peers and merges
  them before it serves reads (it answers 503 ``CatchingUp`` until then), so a
  replica that was down never answers with what it missed.

Tables (all :class:`Partition`: SortedDict + WAL + snapshots):

* ``buckets``: bucket name → {ts, vid, created_ms, region, owner} or a tombstone
* object partitions: "bucket/key" → object record or tombstone, split into key
  ranges by the topology's ``partition_bounds``
* ``gc``: fragments no version points to any more.

HTTP API (JSON, HMAC-signed):
    GET  /v/bucket?name=             GET  /v/buckets
    POST /v/bucket  {name, record}    → {"applied": bool}
    GET  /v/object?bucket=&key=      → {"bucket": version|null, "object": version|null}
    POST /v/objects {bucket, items: [[key, record], ...][, owner]} → {"applied": n} (bulk load)
    POST /v/object  {bucket, key, record[, owner][, commit]} → {"applied": bool}; with ``owner``
                    refused (404 NoSuchBucket / 403 AccessDenied) unless this replica
                    sees the bucket live and the owner's; with ``commit`` (a new
                    version, not a repair) refused (409 StaleCommit) if it has
                    fragments and its timestamp is older than the commit window
    GET  /v/scan?table=&start=&inclusive=&end=&limit=&fields=   (raw versions, tombstones too)
    POST /gc/add    GET /gc    POST /gc/forget {ids}    GET /status    GET /health    GET /metrics
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import time
from pathlib import Path

import aiohttp
from aiohttp import web

import prometheus_client

from ..core.hlc import HLC, physical_ms
from ..rpc.delay import InterAZDelay
from ..rpc.http import auth_middleware, client_session, use_fast_event_loop
from ..cluster.topology import IndexSpec
from ..fsutil import write_json_durably
from .partition import Partition, PartitionSet, TokenBucket, version
from .pmap import PartitionMap, choose_split_key

log = logging.getLogger("minis3.meta")
#: What a listing needs of an object version (never inline payloads or layouts).
LIST_FIELDS = ("ts", "vid", "deleted", "size", "etag", "mtime", "checksum")
SCAN_LIMIT = 5000
SCAN_WALK = 200_000       # most keys one scan request walks (with since_ts, most are not sent)
#: A restarting replica pulls the versions stamped since its own newest minus
#: this margin: longer than any write can take from its stamp to a replica
#: (request timeouts of 60 s, the commit window). A write older still that it
#: missed is on both other replicas, so every read quorum still sees it, and
#: the scrubber's anti-entropy brings it here too.
CATCH_UP_MARGIN_MS = 10 * 60 * 1000
MAP_SYNC_S = 2.0          # how often a metadata process asks its peers for a newer partition map
REGISTRY = prometheus_client.CollectorRegistry()
WRITES = prometheus_client.Counter("minis3_meta_versions_written", "versions this replica kept", ["table"],
                                   registry=REGISTRY)
STALE_COMMITS = prometheus_client.Counter("minis3_meta_stale_commits_refused",
                                          "new versions refused for arriving after the commit window",
                                          registry=REGISTRY)


def _refuse(status: int, code: str) -> web.Response:
    return web.json_response({"code": code, "message": code}, status=status)


SLOWDOWNS = prometheus_client.Counter("minis3_meta_slowdowns", "requests refused with SlowDown",
                                      ["partition", "kind"], registry=REGISTRY)


def _slow_down(part: Partition, kind: str) -> web.Response:
    """503 SlowDown: this partition replica is over its request budget or its
    WAL queue is full. Refusing at once keeps queues (and latency) bounded;
    the client's retries, with back-off, then succeed."""
    SLOWDOWNS.labels(part.id, kind).inc()
    part.refused += 1
    return web.json_response({"code": "SlowDown", "message": f"partition {part.id} is over its {kind} budget"},
                             status=503)


class CatchingUp(web.HTTPServiceUnavailable):
    def __init__(self):
        super().__init__(text='{"code": "CatchingUp", "message": "replica is catching up"}',
                         content_type="application/json")


class MetaService:
    def __init__(self, meta_id: str, az: str, data_dir, bounds: tuple[str, ...], snapshot_every: int = 50_000,
                 peers: list[str] | None = None, secret: str | None = None, commit_window_s: float = 150.0,
                 rpc_options: dict | None = None, index: IndexSpec | None = None,
                 replicas: dict[str, str] | None = None):
        """``replicas``: the initial replica of every partition, per AZ ({az: meta id});
        ``index``: the partitions' request budgets."""
        self.id, self.az = meta_id, az
        self.index = index or IndexSpec()
        self.rpc_options = rpc_options or {}       # client_session's source_host and delay, for catch-up
        self.commit_window_ms = int(commit_window_s * 1000)
        root = os.path.abspath(data_dir)
        self.hlc = HLC()
        self.buckets = Partition("buckets", "", None, os.path.join(root, "buckets"), snapshot_every)
        self.gc = Partition("gc", "", None, os.path.join(root, "gc"), snapshot_every)
        self.objects = PartitionSet(bounds, os.path.join(root, "objects"), snapshot_every)
        for p in [self.buckets, self.gc, *self.objects.partitions]:
            for v in p.table.values():
                if "ts" in v:
                    self.hlc.observe(v["ts"])
        for p in self.objects.partitions:
            self._budget(p)
        # The partition map: the newest version this process has seen.
        self.map_path = os.path.join(root, "map.json")
        try:
            with open(self.map_path) as f:
                self.pmap = PartitionMap.from_doc(json.load(f))
        except FileNotFoundError:
            self.pmap = PartitionMap.initial(bounds, replicas or {az: meta_id})
        self.splits: list[dict] = []            # splits done here: partition, key, pause
        self._reconciling = asyncio.Lock()
        self.peers = list(peers or [])
        self.secret = secret
        self.serving = not self.peers          # a lone replica has nobody to catch up from
        self.catch_up_stats: dict = {}
        self.started = time.time()

    def _budget(self, p: Partition) -> None:
        p.write_budget, p.read_budget = TokenBucket(self.index.write_ops_per_s), TokenBucket(self.index.read_ops_per_s)

    async def _object_partition(self, ikey: str) -> Partition:
        """The partition holding ``ikey``, once no split of it is under way
        (a split pauses its writes; the caller then writes with no await)."""
        part = self.objects.for_key(ikey)
        while part.splitting is not None:
            await part.splitting.wait()
            part = self.objects.for_key(ikey)
        return part

    # -- versions ----------------------------------------------------------------------
    async def _put_version(self, part: Partition, key: str, rec: dict) -> tuple[bool, dict | None]:
        """Keep `rec` if it is newer than what this replica has. Check and
        write happen with no await between them."""
        cur = part.latest(key)
        if version(rec) <= version(cur):
            return False, cur
        self.hlc.observe(int(rec["ts"]))
        await part.write(key, rec)
        WRITES.labels(part.id if part is self.buckets else "objects").inc()
        return True, cur

    def _require_serving(self, request: web.Request) -> None:
        if not self.serving and request.query.get("peer") != "1":
            raise CatchingUp()

    # -- buckets ---------------------------------------------------------------------
    async def get_bucket(self, request):
        self._require_serving(request)
        return web.json_response({"record": self.buckets.latest(request.query.get("name", ""))})

    async def list_buckets(self, request):
        self._require_serving(request)
        return web.json_response({"buckets": dict(self.buckets.table.items())})

    async def put_bucket(self, request):
        body = await request.json()
        applied, _ = await self._put_version(self.buckets, body["name"], body["record"])
        return web.json_response({"applied": applied})

    # -- objects -----------------------------------------------------------------------
    async def get_object(self, request):
        self._require_serving(request)
        bucket, key = request.query["bucket"], request.query["key"]
        ikey = bucket + "/" + key
        part = self.objects.for_key(ikey)
        if request.query.get("peer") != "1" and not part.read_budget.take():
            return _slow_down(part, "read")
        return web.json_response({"bucket": self.buckets.latest(bucket), "object": part.get(ikey)})

    async def put_object(self, request):
        body = await request.json()
        ikey = body["bucket"] + "/" + body["key"]
        rec = body["record"]
        if body.get("commit") and (rec.get("ec") or rec.get("parts")) and physical_ms(int(rec["ts"])) < time.time() * 1000 - self.commit_window_ms:
            # A new version that took too long to get here (a frozen replica
            # thawed, a request stuck in a socket): its fragments may already
            # be judged garbage by the scrubber, so it must never be kept.
            STALE_COMMITS.inc()
            return _refuse(409, "StaleCommit")
        if "owner" in body:
            # The coordinator's one-round write: refuse it unless this replica
            # sees the bucket live and owned by the caller.
            refused = self._bucket_refusal(body["bucket"], body["owner"])
            if refused:
                return refused
        part = await self._object_partition(ikey)
        if part.inflight >= self.index.max_inflight_writes or not part.write_budget.take():
            return _slow_down(part, "write")
        return web.json_response({"applied": await self._keep_object(part, ikey, rec)})

    def _bucket_refusal(self, bucket: str, owner: str | None) -> web.Response | None:
        """404 NoSuchBucket unless this replica sees the bucket live; 403
        AccessDenied unless it is ``owner``'s (None: anyone's)."""
        b = self.buckets.latest(bucket)
        if b is None or b.get("deleted"):
            return _refuse(404, "NoSuchBucket")
        if owner is not None and b.get("owner") != owner:
            return _refuse(403, "AccessDenied")
        return None

    async def _keep_object(self, part: Partition, ikey: str, rec: dict) -> bool:
        """Keep an object version if it is newer; note the fragments of the one
        it replaces (or deletes) as GC candidates."""
        applied, cur = await self._put_version(part, ikey, rec)
        if applied and cur and cur.get("ec") and cur["ec"]["id"] != (rec.get("ec") or {}).get("id"):
            await self._collect(cur["ec"], "deleted" if rec.get("deleted") else "replaced")
        return applied

    async def put_objects(self, request):
        """Many new versions of one bucket's keys in one request (``minis3
        bulk-load``): the bucket and owner check of POST /v/object once, then
        each version as for one PUT (kept only if newer, WAL, fdatasync); the
        versions share group commits. Not charged to the request budgets."""
        body = await request.json()
        refused = self._bucket_refusal(body["bucket"], body.get("owner"))
        if refused:
            return refused

        async def one(key: str, rec: dict) -> bool:
            ikey = body["bucket"] + "/" + key
            return await self._keep_object(await self._object_partition(ikey), ikey, rec)
        results = await asyncio.gather(*(one(k, r) for k, r in body["items"]))
        return web.json_response({"applied": sum(results)})

    async def scan(self, request):
        """Raw versions (tombstones too) from `start`, in key order, below `end`,
        at most `limit`: the coordinator merges two replicas' scans into a LIST
        page, and a replica that catches up pulls whole tables with it."""
        self._require_serving(request)
        q = request.query
        table = q.get("table", "objects")
        start, end = q.get("start", ""), q.get("end") or None
        inclusive = q.get("inclusive", "1") == "1"
        limit = min(int(q.get("limit", SCAN_LIMIT)), SCAN_LIMIT)
        fields = LIST_FIELDS if q.get("fields") == "list" else None
        if table == "objects":
            source = self.objects.scan(start, inclusive)
        else:
            source = {"buckets": self.buckets, "gc": self.gc}[table].iter_from(start, inclusive)
        # since_ts: only versions stamped at or after it (a catch-up after a short
        # absence); the scan still walks every key, but sends only those, and
        # says how far it walked ("last") so the next page starts there.
        since = int(q["since_ts"]) if q.get("since_ts") else None
        items, exhausted, last, walked = [], True, None, 0
        for k, v in source:
            if end is not None and k >= end:
                break
            if len(items) >= limit or walked >= SCAN_WALK:
                exhausted = False
                break
            walked += 1
            last = k
            if since is not None and int(v.get("ts", 0)) < since:
                continue
            items.append([k, {f: v[f] for f in fields if f in v} if fields else v])
        return web.json_response({"items": items, "exhausted": exhausted, "last": last})

    # -- catching up -------------------------------------------------------------------
    async def catch_up(self, app: web.Application) -> None:
        """Pull from a peer the versions this replica may have missed and keep
        the newer ones; serve reads once one peer has been merged completely.
        Runs at start.

        One peer is enough: a write acknowledged while this replica was down
        is on both others (W = 2 of the two left), and one acknowledged
        before is in this replica's own WAL. With data of its own, only the
        versions stamped since its newest (minus ``CATCH_UP_MARGIN_MS``) are
        sent; an empty replica pulls everything."""
        started, merged = time.monotonic(), 0
        newest_ms = physical_ms(self.max_ts())
        since = (newest_ms - CATCH_UP_MARGIN_MS) << 16 if newest_ms else None
        session = client_session(self.secret, timeout_s=30, **self.rpc_options)
        try:
            while not self.serving:
                for peer in self.peers:
                    try:
                        merged += await self._pull(session, peer, since)
                    except (aiohttp.ClientError, OSError, TimeoutError, KeyError, ValueError) as exc:
                        log.info("catch-up: peer %s not ready (%s)", peer, exc.__class__.__name__)
                        continue
                    self.serving = True
                    break
                if not self.serving:
                    await asyncio.sleep(0.5)
        finally:
            await session.close()
        self.catch_up_stats = {"versions_merged": merged, "seconds": round(time.monotonic() - started, 3),
                               "since_ms": since >> 16 if since else None}
        log.info("caught up from a peer: %d newer versions merged in %.2f s (%s)", merged,
                 self.catch_up_stats["seconds"],
                 "everything" if since is None else f"versions stamped since {CATCH_UP_MARGIN_MS // 60000} min "
                                                    "before this replica's newest")

    async def _pull(self, session: aiohttp.ClientSession, peer: str, since: int | None = None) -> int:
        merged = 0
        for table in ("buckets", "objects"):
            start, inclusive = "", True
            while True:
                url = f"{peer}/v/scan?table={table}&peer=1&limit={SCAN_LIMIT}&inclusive={int(inclusive)}"
                params = {"start": start}
                if since is not None and table == "objects":
                    params["since_ts"] = str(since)
                async with session.get(url, params=params) as r:
                    if r.status != 200:
                        raise ValueError(f"status {r.status}")
                    body = await r.json()
                for k, v in body["items"]:
                    part = self.buckets if table == "buckets" else await self._object_partition(k)
                    applied, _ = await self._put_version(part, k, v)
                    merged += applied
                if body["exhausted"] or body.get("last") is None:
                    break
                start, inclusive = body["last"], False
        return merged

    async def _start_catch_up(self, app: web.Application) -> None:
        if not self.serving:
            app["catch_up"] = asyncio.ensure_future(self.catch_up(app))

    async def _stop_catch_up(self, app: web.Application) -> None:
        task = app.get("catch_up")
        if task is not None and not task.done():
            task.cancel()

    # -- the partition map -----------------------------------------------------------------
    async def adopt_map(self, new: PartitionMap) -> bool:
        """Keep ``new`` if it is newer than this process's map (durably), then
        cut this process's own partitions to match it."""
        if new.version <= self.pmap.version:
            return False
        await asyncio.to_thread(write_json_durably, Path(self.map_path), new.doc())
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
        for local in list(self.objects.partitions):
            mine = [e for e in self.pmap.covering(local.lo, local.hi) if self.id in dict(e.replicas).values()]
            if len(mine) < 2 or mine[0].lo != local.lo or mine[-1].hi != local.hi:
                continue
            cur = local.id
            for j in range(len(mine) - 1, 0, -1):          # from the right, so each split is one cut
                left_id = mine[0].id if j == 1 else f"{local.id}.{j}"
                pause = await self.objects.split(cur, mine[j].lo, left_id, mine[j].id)
                self._budget(self.objects.by_id[left_id])
                self._budget(self.objects.by_id[mine[j].id])
                log.info("split %s at %r into %s and %s (map version %d): writes paused %.3f s",
                         cur, mine[j].lo, left_id, mine[j].id, self.pmap.version, pause)
                self.splits.append({"partition": cur, "key": mine[j].lo, "into": [left_id, mine[j].id],
                                    "map_version": self.pmap.version, "pause_s": round(pause, 4),
                                    "at_ms": int(time.time() * 1000)})
                cur = left_id

    async def get_map(self, request):
        newer_than = int(request.query.get("newer_than", -1))
        if self.pmap.version <= newer_than:
            return web.Response(status=204)
        return web.json_response({"map": self.pmap.doc()})

    async def put_map(self, request):
        """A new map version (the index manager's, or a peer's)."""
        body = await request.json()
        try:
            new = PartitionMap.from_doc(body["map"])
        except (KeyError, ValueError) as exc:
            return _refuse(400, f"BadMap: {exc}")
        applied = await self.adopt_map(new)
        return web.json_response({"applied": applied, "version": self.pmap.version})

    async def index_stats(self, request):
        """Each local partition's counters (cheap: no walk over the records)."""
        return web.json_response({
            "id": self.id, "az": self.az, "map_version": self.pmap.version, "serving": self.serving,
            "time": time.time(), "partitions": [p.stats(live=False) for p in self.objects.partitions],
            "splits": self.splits[-50:]})

    async def split_key(self, request):
        """Where to split a partition: the median of its keys (``by=keys``) or
        of the keys recently asked for (``by=load``), moved to a folder boundary."""
        p = self.objects.by_id.get(request.query.get("partition", ""))
        if p is None:
            return _refuse(404, "NoSuchPartition")
        keys = sorted(p.recent) if request.query.get("by") == "load" else p.median_key()
        return web.json_response({"key": choose_split_key(keys, p.lo, p.hi), "keys": len(p.table)})

    async def _sync_map(self, session: aiohttp.ClientSession) -> None:
        """Adopt any newer map a peer has (one pushed while this process was away)."""
        for peer in self.peers:
            try:
                async with session.get(f"{peer}/index/map", params={"newer_than": self.pmap.version},
                                       timeout=aiohttp.ClientTimeout(total=2)) as r:
                    if r.status != 200:
                        continue
                    new = PartitionMap.from_doc((await r.json())["map"])
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError, KeyError):
                continue
            await self.adopt_map(new)

    async def _map_loop(self, app: web.Application) -> None:
        session = client_session(self.secret, timeout_s=10, **self.rpc_options)
        try:
            while True:                           # the first round finishes a split a crash cut short
                try:
                    await self._sync_map(session)
                    await self.reconcile()        # also finishes what a failed attempt left
                except Exception:
                    log.exception("partition map sync failed; trying again")
                await asyncio.sleep(MAP_SYNC_S)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("partition map loop failed")
        finally:
            await session.close()

    async def _start_map_loop(self, app: web.Application) -> None:
        app["map_loop"] = asyncio.ensure_future(self._map_loop(app))

    async def _stop_map_loop(self, app: web.Application) -> None:
        app["map_loop"].cancel()

    # -- garbage -------------------------------------------------------------------------
    async def _collect(self, ec: dict, reason: str) -> None:
        """Note an object's fragments as garbage candidates (the scrubber removes them)."""
        ts = self.hlc.now()
        await self.gc.write(f"{ts:020d}-{ec['id']}", {"ts": ts, "reason": reason, "ec": ec})

    async def gc_add(self, request):
        body = await request.json()
        await self._collect(body["ec"], body.get("reason", "failed-write"))
        return web.json_response({"ok": True})

    async def gc_list(self, request):
        return web.json_response({"items": [{"id": k, **v} for k, v in self.gc.table.items()]})

    async def gc_forget(self, request):
        """Drop GC notes the scrubber has dealt with (its inventory-based GC
        removes every unreferenced fragment; the notes only say why)."""
        body = await request.json()
        n = 0
        for k in body.get("ids", []):
            if k in self.gc.table:
                await self.gc.write(k, None)
                n += 1
        return web.json_response({"forgotten": n})

    async def metrics(self, request):
        """Prometheus text format (unauthenticated: counts only, never keys)."""
        return web.Response(body=prometheus_client.generate_latest(REGISTRY),
                            headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST})

    # -- status --------------------------------------------------------------------------
    def max_ts(self) -> int:
        return max((v.get("ts", 0) for p in [self.buckets, *self.objects.partitions]
                    for v in p.table.values()), default=0)

    async def status(self, request):
        disk = 0
        for dirpath, _d, files in os.walk(os.path.dirname(self.buckets.wal.dir)):
            disk += sum(os.path.getsize(os.path.join(dirpath, f)) for f in files)
        return web.json_response({
            "id": self.id, "az": self.az, "role": "meta", "pid": os.getpid(), "disk_bytes": disk,
            "state": "serving" if self.serving else "catching-up", "catch_up": self.catch_up_stats,
            "buckets": sum(1 for v in self.buckets.table.values() if not v.get("deleted")),
            "gc_queue": len(self.gc.table), "max_ts": self.max_ts() if request.query.get("ts") else None,
            "partitions": [p.stats() for p in self.objects.partitions]})

    async def health(self, request):
        """200 once serving reads; 503 while catching up (so `minis3 up` waits for it)."""
        return web.json_response({"ok": self.serving, "id": self.id, "serving": self.serving},
                                 status=200 if self.serving else 503)

    def app(self, secret: str) -> web.Application:
        self.secret = self.secret or secret
        app = web.Application(middlewares=[auth_middleware(secret, open_paths=("/health", "/metrics"))],
                              client_max_size=64 << 20)
        r = app.router
        r.add_get("/v/bucket", self.get_bucket)
        r.add_get("/v/buckets", self.list_buckets)
        r.add_post("/v/bucket", self.put_bucket)
        r.add_get("/v/object", self.get_object)
        r.add_post("/v/object", self.put_object)
        r.add_post("/v/objects", self.put_objects)
        r.add_get("/v/scan", self.scan)
        r.add_post("/gc/add", self.gc_add)
        r.add_get("/gc", self.gc_list)
        r.add_post("/gc/forget", self.gc_forget)
        r.add_get("/metrics", self.metrics)
        r.add_get("/index/map", self.get_map)
        r.add_post("/index/map", self.put_map)
        r.add_get("/index/stats", self.index_stats)
        r.add_get("/index/split-key", self.split_key)
        r.add_get("/status", self.status)
        r.add_get("/health", self.health)
        app.on_startup.append(self._start_catch_up)
        app.on_startup.append(self._start_map_loop)
        app.on_cleanup.append(self._stop_catch_up)
        app.on_cleanup.append(self._stop_map_loop)
        return app


def main(argv: list[str] | None = None) -> None:
    from ..cluster import topology as topo_mod
    from ..cluster.logs import setup_logging
    p = argparse.ArgumentParser(prog="minis3 meta")
    topo_mod.add_arguments(p)
    p.add_argument("--az", required=True)
    a = p.parse_args(argv)
    topo = topo_mod.load(a.topology, data_dir=a.data_dir)
    spec = next(az.meta for az in topo.azs if az.name == a.az)
    setup_logging(spec.id)
    peers = [m.url for m in topo.metas if m.id != spec.id]
    svc = MetaService(spec.id, spec.az, spec.data_dir, topo.partition_bounds, peers=peers,
                      secret=topo.cluster_secret, commit_window_s=topo.scrub.commit_window_s,
                      index=topo.index, replicas={az.name: az.meta.id for az in topo.azs},
                      rpc_options={"source_host": spec.host, "delay": InterAZDelay.for_topology(topo, spec.az)})
    log.info("metadata replica %s on %s, data in %s, %d partitions, peers %s (%s)", spec.id, spec.url,
             spec.data_dir, len(svc.objects.partitions), ", ".join(peers) or "none", use_fast_event_loop())
    web.run_app(svc.app(topo.cluster_secret), host=spec.host, port=spec.port,
                print=None, access_log=None, handle_signals=True)
