"""One metadata process: replicas of buckets, object records and a GC queue, durable, last writer wins.

Each AZ runs one or more metadata processes. The object index is cut into
key-range partitions, each with one replica per AZ; the partition map
(``meta/pmap.py``) says which process of the AZ holds it. An AZ's first
metadata process (its *home*) starts with every partition; an extra one
starts with none and receives partitions when the index manager moves them
to it (``meta/manager.py``). Every process keeps the buckets table. A
request for a key range this process does not hold is answered 421
WrongPartition with its map, so the caller can ask the right one.

A replica has no opinion about S3's rules (ownership, conditions, empty
buckets): the frontend is the coordinator that reads and writes quorums of
replicas and applies those rules (``meta/client.py``). A replica only

* stores versions by key, keeping the newest: a version is ordered by its
  hybrid-logical-clock ``ts`` (assigned by the coordinator), then its ``vid``
  (a random id, so two coordinators' equal timestamps still order the same way
  everywhere); a delete is a tombstone version;
* makes each accepted version durable (WAL, fdatasync) before it answers;
* keeps the promises that make a conditional write a compare-and-set
  (``meta/promises.py``);
* notes, when an object version replaces or tombstones one that had
  fragments, those fragments as GC candidates (the scrubber checks a quorum
  before deleting anything);
* catches up when it starts: it pulls every version from its peers and merges
  them before it serves reads (it answers 503 ``CatchingUp`` until then), so a
  replica that was down never answers with what it missed.

Tables (all :class:`Partition`: SortedDict + WAL + snapshots):

* ``buckets``: bucket name → {ts, vid, created_ms, region, owner} or a tombstone
* object partitions: "bucket/key" → object record or tombstone, split into key
  ranges (at first the topology's ``partition_bounds``; the index manager
  splits a partition that grows or runs hot), only those this process holds
* ``gc``: fragments no version points to any more.

HTTP API (JSON, HMAC-signed):
    GET  /v/bucket?name=             GET  /v/buckets
    POST /v/bucket  {name, record}    → {"applied": bool}
    GET  /v/object?bucket=&key=[&payload=0] → {"bucket": version|null, "object": version|null}
                                       (payload=0: an inline payload kept in the blob log as its marker)
    POST /v/objects {bucket, items: [[key, record], ...][, owner]} → {"applied": n} (bulk load)
    POST /v/object  {bucket, key, record[, owner][, commit][, cas]} → {"applied": bool}; with ``owner``
                    refused (404 NoSuchBucket / 403 AccessDenied) unless this replica
                    sees the bucket live and the owner's; with ``commit`` (a new
                    version, not a repair) refused (409 StaleCommit) if it has
                    fragments and its timestamp is older than the commit window;
                    with ``cas`` {expect, wid} (a conditional write's accept round)
                    refused (409 ConditionalRequestConflict) unless promised (meta/promises.py)
    POST /v/prepare {bucket, key, ballot[, owner]} → {"bucket": version|null, "object": version|null}
                    a conditional write's first round: a promise, or 409 ConditionalRequestConflict
    GET  /v/scan?table=&start=&inclusive=&end=&limit=&fields=&inline=   (raw versions, tombstones too)
    POST /v/batch   several of the calls above in one request (meta/batch.py)
    POST /gc/add    GET /gc    POST /gc/forget {ids}    GET /status    GET /health    GET /metrics
    GET  /index/map  POST /index/map  GET /index/stats  GET /index/split-key   (the partition map, splits)
    POST /index/receive  /index/fence  /index/finish  /index/release   (a partition replica's move)
"""
from __future__ import annotations

import argparse
import asyncio
import gc
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
from ..rpc import tracing
from ..rpc.http import client_session, internal_app, use_fast_event_loop
from ..config import IndexSpec
from ..fsutil import write_json_durably
from ..rpc import fastjson
from . import batch, blobs
from .gcfreeze import Freezer
from ..core.ratelimit import request_budget
from .partition import Partition, PartitionSet, overlaps, version
from .pmap import PartitionMap, choose_split_key
from .promises import Promises

log = logging.getLogger("minis3.meta")


def _dumps(doc) -> str:
    return fastjson.dumps(doc, blobs.as_payload)


def _dumps_markers(doc) -> str:
    return fastjson.dumps(doc, blobs.as_marker)


def _json_response(doc, *, status: int = 200, dumps=_dumps, **kw) -> web.Response:
    """A JSON answer, encoded with orjson (rpc/fastjson); inline payloads kept
    in the blob log are read back into it (meta/blobs.py)."""
    return web.json_response(doc, status=status, dumps=dumps, **kw)
#: What a listing needs of an object version (never inline payloads or layouts).
LIST_FIELDS = ("ts", "vid", "deleted", "size", "etag", "mtime", "checksum", "version_id", "vts", "marker",
               "storage_class")
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
CAS_REFUSED = prometheus_client.Counter("minis3_meta_conditional_refused",
                                        "conditional-write rounds refused (another write of the key won or raced)",
                                        ["round"], registry=REGISTRY)
WRITES = prometheus_client.Counter("minis3_meta_versions_written", "versions this replica kept", ["table"],
                                   registry=REGISTRY)
STALE_COMMITS = prometheus_client.Counter("minis3_meta_stale_commits_refused",
                                          "new versions refused for arriving after the commit window",
                                          registry=REGISTRY)


def _refuse(status: int, code: str, **extra) -> web.Response:
    return _json_response({"code": code, "message": code, **extra}, status=status)


SLOWDOWNS = prometheus_client.Counter("minis3_meta_slowdowns", "requests refused with SlowDown",
                                      ["partition", "kind"], registry=REGISTRY)


def _slow_down(part: Partition, kind: str) -> web.Response:
    """503 SlowDown: this partition replica is over its request budget or its
    WAL queue is full. Refusing at once keeps queues (and latency) bounded;
    the client's retries, with back-off, then succeed."""
    SLOWDOWNS.labels(part.id, kind).inc()
    part.refused += 1
    return _json_response({"code": "SlowDown", "message": f"partition {part.id} is over its {kind} budget"},
                             status=503)


class CatchingUp(web.HTTPServiceUnavailable):
    def __init__(self):
        super().__init__(text='{"code": "CatchingUp", "message": "replica is catching up"}',
                         content_type="application/json")


class _NoSource(Exception):
    """No peer could send a range (catch-up tries again)."""


class WrongPartition(web.HTTPMisdirectedRequest):
    """421: this process does not hold the key's partition (its replica moved,
    or was never here). The body carries this process's partition map, so the
    caller can learn where the range went and ask there."""
    def __init__(self, pmap: PartitionMap):
        super().__init__(text=json.dumps({"code": "WrongPartition", "message": "this process does not hold "
                                          "that key range", "map": pmap.doc()}),
                         content_type="application/json")


class MetaService:
    def __init__(self, meta_id: str, az: str, data_dir, bounds: tuple[str, ...], snapshot_every: int = 50_000,
                 peers: dict[str, str] | None = None, secret: str | None = None, commit_window_s: float = 150.0,
                 rpc_options: dict | None = None, index: IndexSpec | None = None,
                 replicas: dict[str, str] | None = None, home: bool = True, region: str | None = None):
        """``replicas``: the initial replica of every partition, per AZ ({az: meta id});
        ``index``: the partitions' request budgets; ``home``: the AZ's first
        metadata process, which starts with every partition (an extra one
        starts with none). ``peers``: every other metadata process's URL, as
        {url: az}."""
        self.id, self.az = meta_id, az
        self.index = index or IndexSpec()
        self.rpc_options = rpc_options or {}       # client_session's source_host and delay, for catch-up
        self.commit_window_ms = int(commit_window_s * 1000)
        self.region = region                # a bucket of another region is not here (None: any region)
        self.freezer = Freezer()            # the records out of the cyclic GC's walks (meta/gcfreeze.py)
        root = os.path.abspath(data_dir)
        self.hlc = HLC()
        self.buckets = Partition("buckets", "", None, os.path.join(root, "buckets"), snapshot_every)
        self.gc = Partition("gc", "", None, os.path.join(root, "gc"), snapshot_every)
        self.home = home
        # Inline payloads live in the blob log, not in the tables (meta/blobs.py).
        self.blobs = blobs.BlobStore(os.path.join(root, "blobs"))
        self.objects = PartitionSet(bounds if home else None, os.path.join(root, "objects"), snapshot_every,
                                    blob_store=self.blobs)
        for p in [self.buckets, self.gc, *self.objects.partitions]:
            for v in [*p.table.values(), *p.rows.values()]:
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
        self.promises = Promises()              # conditional writes in progress (meta/promises.py)
        self._reconciling = asyncio.Lock()
        self._adopting = asyncio.Lock()
        self.peers = dict(peers or {})              # url → az
        self.moves: list[dict] = []                 # replicas moved here or away: steps and numbers
        self.secret = secret
        self.serving = not self.peers          # a lone replica has nobody to catch up from
        self.catch_up_stats: dict = {}
        self.started = time.time()
        self.batches = {"requests": 0, "calls": 0}      # POST /v/batch received (meta/batch.py)

    def _budget(self, p: Partition) -> None:
        p.write_budget, p.read_budget = request_budget(self.index.write_ops_per_s), request_budget(self.index.read_ops_per_s)

    def _holds(self, ikey: str) -> bool:
        """Does the partition map give this process its AZ's replica of ``ikey``?"""
        return self.pmap.locate(ikey).replica_in(self.az) == self.id

    def _object_partition(self, ikey: str, *, peer: bool = False) -> Partition:
        """The partition holding ``ikey`` (the caller then writes with no
        await: a split switches to its halves between two event-loop steps).

        421 WrongPartition unless the map gives this process the key's
        replica, or its partition is incoming (moving here: it takes writes
        before the map names it). A ``peer`` (catch-up, a move) may write to
        any local partition. Checked after the last await, so once a move's
        fence has adopted the new map, no write slips into the old replica."""
        part = self.objects.for_key(ikey)
        if not (peer and part is not None) and not self._takes_writes(part, ikey):
            raise WrongPartition(self.pmap)
        return part

    def _takes_writes(self, part: Partition | None, ikey: str) -> bool:
        """A client's write of ``ikey`` may land in local ``part``: the map gives
        this process the key's replica, or the partition is moving here."""
        return part is not None and (part.state == "incoming" or self._holds(ikey))

    # -- versions ----------------------------------------------------------------------
    async def _put_version(self, part: Partition, key: str, rec: dict) -> tuple[bool, dict | None]:
        """Keep `rec` if it is newer than what this replica has. Check and
        write happen with no await between them."""
        cur = part.latest(key)
        if version(rec) <= version(cur):
            return False, cur
        self.hlc.observe(int(rec["ts"]))
        with tracing.TRACER.span("WAL append + fdatasync (group commit)", partition=part.id):
            await part.write(key, rec)
        WRITES.labels(part.id if part is self.buckets else "objects").inc()
        return True, cur

    def _require_serving(self, request: web.Request) -> None:
        if not self.serving and request.query.get("peer") != "1":
            raise CatchingUp()

    # -- buckets ---------------------------------------------------------------------
    async def get_bucket(self, request):
        self._require_serving(request)
        return _json_response({"record": self.buckets.latest(request.query.get("name", ""))})

    async def list_buckets(self, request):
        self._require_serving(request)
        return _json_response({"buckets": dict(self.buckets.table.items())})

    async def put_bucket(self, request):
        body = await request.json(loads=fastjson.loads)
        applied, _ = await self._put_version(self.buckets, body["name"], body["record"])
        return _json_response({"applied": applied})

    # -- objects -----------------------------------------------------------------------
    async def get_object(self, request):
        self._require_serving(request)
        bucket, key = request.query["bucket"], request.query["key"]
        ikey = bucket + "/" + key
        part = self.objects.for_key(ikey)
        if request.query.get("peer") != "1":
            if part is None or not self._holds(ikey):
                raise WrongPartition(self.pmap)
            if part.state == "incoming":
                raise CatchingUp()          # a replica moving here answers reads once caught up
            if not part.read_budget.try_take():
                return _slow_down(part, "read")
        elif part is None:
            raise WrongPartition(self.pmap)
        # ``payload=0``: an inline payload as its marker (length, xxh3), not its bytes: the
        # second replica of a read quorum needs only to say which version it holds.
        return _json_response({"bucket": self.buckets.latest(bucket), "object": part.get(ikey)},
                              dumps=_dumps_markers if request.query.get("payload") == "0" else _dumps)

    async def put_object(self, request):
        body = await request.json(loads=fastjson.loads)
        ikey = body["bucket"] + "/" + body["key"]
        rec = body["record"]
        if blobs.is_marker(rec.get("inline")):
            return _refuse(400, "InlineMarker")     # a scan's marker, never a payload (meta/blobs.py)
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
            if not body.get("versioned") and self._keeps_versions(body["bucket"]):
                # A write that would replace the key's version in a bucket that
                # keeps versions: the coordinator must take the versioned path
                # (core/versions.py), which keeps the one it replaces.
                return _refuse(409, "VersionedBucket")
        part = self._object_partition(ikey)
        if part.inflight >= self.index.max_inflight_writes or not part.write_budget.try_take():
            return _slow_down(part, "write")
        cas = body.get("cas")
        if cas is not None:
            # A conditional write's accept: under this replica's promise, and
            # only if nothing the coordinator did not judge has landed since.
            # Checked and written with no await between.
            cur = part.latest(ikey)
            if not self.promises.accept(ikey, version(rec), version(cur), tuple(cas["expect"]),
                                        current_is_ours=cur is not None and cur.get("wid") == cas["wid"]):
                CAS_REFUSED.labels("accept").inc()
                return self._cas_refusal(ikey, cur)
        return _json_response({"applied": await self._keep_object(part, ikey, rec)})

    async def prepare(self, request):
        """A conditional write's first round (meta/promises.py): promise the
        ballot and answer this replica's current version of the key."""
        self._require_serving(request)
        body = await request.json(loads=fastjson.loads)
        bucket, ikey = body["bucket"], body["bucket"] + "/" + body["key"]
        if "owner" in body:
            refused = self._bucket_refusal(bucket, body["owner"])
            if refused:
                return refused
        part = self._object_partition(ikey)
        if part.state == "incoming":
            raise CatchingUp()             # its versions may not all be here yet
        cur = part.latest(ikey)
        if not self.promises.prepare(ikey, (*body["ballot"], 0), version(cur)):
            CAS_REFUSED.labels("prepare").inc()
            return self._cas_refusal(ikey, cur)
        return _json_response({"bucket": self.buckets.latest(bucket), "object": cur})

    def _cas_refusal(self, ikey: str, cur: dict | None) -> web.Response:
        """409, with the newest stamp this replica knows of the key (its version
        or a promised ballot): the coordinator's clock moves past it."""
        seen = max(version(cur)[0], self.promises.newest_stamp(ikey) or -1)
        return _refuse(409, "ConditionalRequestConflict", seen_ts=seen)

    def _bucket_refusal(self, bucket: str, owner: str | None) -> web.Response | None:
        """404 NoSuchBucket unless this replica sees the bucket live; 403
        AccessDenied unless it is ``owner``'s (None: anyone's)."""
        b = self.buckets.latest(bucket)
        if b is None or b.get("deleted") or (self.region is not None and b.get("region", self.region) != self.region):
            return _refuse(404, "NoSuchBucket")   # (the global region's table also lists other regions' buckets)
        if owner is not None and b.get("owner") != owner:
            return _refuse(403, "AccessDenied")
        return None

    def _keeps_versions(self, bucket: str) -> bool:
        """Has the bucket's record (in this replica's view) had versioning turned on?"""
        return bool((self.buckets.latest(bucket) or {}).get("versioning"))

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
        body = await request.json(loads=fastjson.loads)
        refused = self._bucket_refusal(body["bucket"], body.get("owner"))
        if refused:
            return refused
        if self._keeps_versions(body["bucket"]):
            return _refuse(409, "VersionedBucket")      # a bulk load would replace versions, not keep them

        async def one(key: str, rec: dict) -> bool:
            ikey = body["bucket"] + "/" + key
            return await self._keep_object(self._object_partition(ikey), ikey, rec)
        for key, _ in body["items"]:                 # refuse the batch before keeping any of it
            ikey = body["bucket"] + "/" + key
            if not self._takes_writes(self.objects.for_key(ikey), ikey):
                raise WrongPartition(self.pmap)
        results = await asyncio.gather(*(one(k, r) for k, r in body["items"]))
        return _json_response({"applied": sum(results)})

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
            peer = q.get("peer") == "1"
            if not self.objects.covers(start, end) or not (peer or self.pmap.holds(self.id, self.az, start, end)):
                raise WrongPartition(self.pmap)
            if not peer and any(p.state == "incoming" for p in self.objects.partitions
                                if (p.hi is None or p.hi > start) and (end is None or p.lo < end)):
                raise CatchingUp()
            # heads=1 (a LIST of current versions): the partitions' heads
            # only; version rows (core/versions.py) live in a sorted map of
            # their own, so a page costs a page however many old versions
            # its keys have.
            source = self.objects.scan(start, inclusive, heads=q.get("heads") == "1")
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
        # inline=marker (the scrubber, which compares replicas and fetches a
        # record to repair it): each inline payload as its length and xxh3
        # only, not the bytes (meta/blobs.py).
        return _json_response({"items": items, "exhausted": exhausted, "last": last},
                              dumps=_dumps_markers if q.get("inline") == "marker" else _dumps)

    async def batch(self, request):
        """``POST /v/batch``: several calls in one request (meta/batch.py), run
        concurrently as if each had come alone; one answer with each's status and body."""
        raw = await request.read()        # (its SHA-256 checked by the auth middleware, rpc/http.py)
        calls = fastjson.loads(raw)["calls"]
        self.batches["requests"] += 1
        self.batches["calls"] += len(calls)
        results = await asyncio.gather(*(batch.run(self._batch_handlers, c) for c in calls))
        return web.Response(body=batch.encode_results(results), content_type="application/json")

    # -- catching up -------------------------------------------------------------------
    async def catch_up(self, app: web.Application) -> None:
        """Pull from peers the versions this replica may have missed and keep
        the newer ones; serve reads once every range it holds has been merged
        from one replica in another AZ. Runs at start.

        One replica per range is enough: a write acknowledged while this
        replica was down is on both others (W = 2 of the two left), and one
        acknowledged before is in this replica's own WAL. With data of its
        own, only the versions stamped since its newest (minus
        ``CATCH_UP_MARGIN_MS``) are sent; an empty replica pulls everything."""
        started, merged = time.monotonic(), 0
        newest_ms = physical_ms(self.max_ts())
        since = (newest_ms - CATCH_UP_MARGIN_MS) << 16 if newest_ms else None
        session = client_session(self.secret, timeout_s=30, **self.rpc_options)
        try:
            while not self.serving:
                try:
                    merged += await self._catch_up_once(session, since)
                    self.serving = True
                except _NoSource as exc:
                    log.info("catch-up: %s; trying again", exc)
                    await asyncio.sleep(0.5)
        finally:
            await session.close()
        self.catch_up_stats = {"versions_merged": merged, "seconds": round(time.monotonic() - started, 3),
                               "since_ms": since >> 16 if since else None}
        log.info("caught up from peers: %d newer versions merged in %.2f s (%s)", merged,
                 self.catch_up_stats["seconds"],
                 "everything" if since is None else f"versions stamped since {CATCH_UP_MARGIN_MS // 60000} min "
                                                    "before this replica's newest")

    async def _catch_up_once(self, session: aiohttp.ClientSession, since: int | None) -> int:
        merged = await self._pull_from_any(session, list(self.peers), "buckets", "", None, None)
        others = [u for u, az in self.peers.items() if az != self.az]
        if not others:
            return merged                     # the only AZ: nobody else holds these ranges
        for part in list(self.objects.partitions):
            merged += await self._pull_from_any(session, others, "objects", part.lo, part.hi, since)
        return merged

    async def _pull_from_any(self, session, peers: list[str], table: str, lo: str, hi: str | None,
                             since: int | None) -> int:
        """Merge [lo, hi) of ``table`` from the first of ``peers`` that holds all of it."""
        for peer in peers:
            try:
                return await self._pull(session, peer, table, lo, hi, since)
            except (aiohttp.ClientError, OSError, TimeoutError, KeyError, ValueError) as exc:
                log.debug("catch-up of %s [%r, %r) from %s failed: %s", table, lo, hi, peer, exc)
        raise _NoSource(f"no peer could send {table} [{lo!r}, {hi!r})")

    async def _pull(self, session: aiohttp.ClientSession, peer: str, table: str, lo: str = "",
                    hi: str | None = None, since: int | None = None) -> int:
        """Merge one peer's versions of ``table`` in [lo, hi) (those stamped since ``since``)."""
        merged, start, inclusive = 0, lo, True
        while True:
            params = {"table": table, "peer": "1", "limit": str(SCAN_LIMIT), "inclusive": str(int(inclusive)),
                      "start": start}
            if hi is not None:
                params["end"] = hi
            if since is not None:
                params["since_ts"] = str(since)
            async with session.get(f"{peer}/v/scan", params=params) as r:
                if r.status != 200:
                    raise ValueError(f"status {r.status}")
                body = await r.json(loads=fastjson.loads)
            merged += sum(await asyncio.gather(*(self._merge(table, k, v) for k, v in body["items"])))
            if body["exhausted"] or body.get("last") is None:
                return merged
            start, inclusive = body["last"], False

    async def _merge(self, table: str, k: str, v: dict) -> bool:
        """Keep a peer's version if newer (a page's versions are merged together,
        so they share the WAL's group commits)."""
        if table == "buckets":
            part = self.buckets
        else:
            try:
                part = self._object_partition(k, peer=True)
            except web.HTTPException:
                return False                      # no longer held here (moved away meanwhile)
        applied, _ = await self._put_version(part, k, v)
        return applied

    # -- moving a replica here (meta/manager.py runs the steps) ---------------------------
    def _move_log(self, step: str, pid: str, **numbers) -> dict:
        entry = {"step": step, "partition": pid, "at_ms": int(time.time() * 1000), **numbers}
        self.moves.append(entry)
        del self.moves[:-100]
        log.info("move of %s: %s %s", pid, step, " ".join(f"{k}={v}" for k, v in numbers.items()))
        return entry

    async def receive(self, request):
        """Step 1 (on the new holder): list the partition as incoming, then copy
        every version of its range from ``source`` (the current holder in this
        AZ), which goes on serving meanwhile."""
        body = await request.json(loads=fastjson.loads)
        e = body["partition"]
        try:
            part = await self.objects.add(e["id"], e["lo"], e.get("hi"))
        except ValueError as exc:
            return _refuse(409, f"Overlap: {exc}")
        self._budget(part)
        t0 = time.monotonic()
        session = client_session(self.secret, timeout_s=60, **self.rpc_options)
        try:
            copied = await self._pull(session, body["source"], "objects", part.lo, part.hi)
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            return _refuse(503, f"CopyFailed: {exc.__class__.__name__}")
        finally:
            await session.close()
        return _json_response(self._move_log("copied", part.id, versions=copied, keys=len(part),
                                                seconds=round(time.monotonic() - t0, 3)))

    async def fence(self, request):
        """Step 3 (on the old holder): adopt the map that gives the range away
        (from now on its writes are refused with WrongPartition), then wait
        for the writes already accepted to be durable. After this, nothing
        new lands here, so the new holder's last pull misses nothing."""
        body = await request.json(loads=fastjson.loads)
        await self.adopt_map(PartitionMap.from_doc(body["map"]))
        e = self.pmap.get(body["partition"])
        if e.replica_in(self.az) == self.id:
            return _refuse(409, "StillHolder")
        t0 = time.monotonic()
        for p in list(self.objects.partitions):
            if overlaps(p.lo, p.hi, e.lo, e.hi):
                while p.landing():
                    await asyncio.sleep(0.001)
        return _json_response(self._move_log("fenced", e.id, map_version=self.pmap.version,
                                                drained_s=round(time.monotonic() - t0, 4)))

    async def finish(self, request):
        """Step 4 (on the new holder): pull from the fenced old holder every
        version stamped since the copy began (minus the catch-up margin), then
        serve reads."""
        body = await request.json(loads=fastjson.loads)
        part = self.objects.by_id.get(body["partition"])
        if part is None:
            return _refuse(404, "NoSuchPartition")
        since = (int(body["since_ms"]) - CATCH_UP_MARGIN_MS) << 16
        t0 = time.monotonic()
        session = client_session(self.secret, timeout_s=60, **self.rpc_options)
        try:
            merged = await self._pull(session, body["source"], "objects", part.lo, part.hi, since)
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            return _refuse(503, f"CatchUpFailed: {exc.__class__.__name__}")
        finally:
            await session.close()
        await self.objects.set_state(part.id, "serving")
        return _json_response(self._move_log("caught-up", part.id, versions=merged, keys=len(part),
                                                seconds=round(time.monotonic() - t0, 3)))

    async def release(self, request):
        """Step 5 (on the old holder): forget the range (the new holder serves it)."""
        body = await request.json(loads=fastjson.loads)
        e = self.pmap.get(body["partition"])
        if e.replica_in(self.az) == self.id:
            return _refuse(409, "StillHolder")
        gone = [p for p in list(self.objects.partitions)
                if p.lo >= e.lo and (e.hi is None or (p.hi is not None and p.hi <= e.hi))]
        for p in gone:
            await self.objects.drop(p.id)
        return _json_response(self._move_log("released", e.id, dropped=[p.id for p in gone]))

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
        async with self._adopting:          # one at a time: an older map never lands after a newer one
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
                took = await self.objects.split(cur, mine[j].lo, left_id, mine[j].id)
                self._budget(self.objects.by_id[left_id])
                self._budget(self.objects.by_id[mine[j].id])
                log.info("split %s at %r into %s and %s (map version %d): writes paused %.3f s (%s)",
                         cur, mine[j].lo, left_id, mine[j].id, self.pmap.version, took["pause_s"],
                         ", ".join(f"{k} {v}" for k, v in took.items() if k != "pause_s"))
                self.splits.append({"partition": cur, "key": mine[j].lo, "into": [left_id, mine[j].id],
                                    "map_version": self.pmap.version, **took, "at_ms": int(time.time() * 1000)})
                cur = left_id

    async def get_map(self, request):
        newer_than = int(request.query.get("newer_than", -1))
        if self.pmap.version <= newer_than:
            return web.Response(status=204)
        return _json_response({"map": self.pmap.doc()})

    async def put_map(self, request):
        """A new map version (the index manager's, or a peer's)."""
        body = await request.json(loads=fastjson.loads)
        try:
            new = PartitionMap.from_doc(body["map"])
        except (KeyError, ValueError) as exc:
            return _refuse(400, f"BadMap: {exc}")
        applied = await self.adopt_map(new)
        return _json_response({"applied": applied, "version": self.pmap.version})

    async def index_stats(self, request):
        """Each local partition's counters (cheap: no walk over the records)."""
        return _json_response({
            "id": self.id, "az": self.az, "home": self.home, "map_version": self.pmap.version,
            "serving": self.serving, "time": time.time(),
            "partitions": [p.stats(live=False) for p in self.objects.partitions],
            "splits": self.splits[-50:], "moves": self.moves[-50:]})

    async def split_key(self, request):
        """Where to split a partition: the median of its keys (``by=keys``) or
        of the keys recently asked for (``by=load``), moved to a folder boundary."""
        p = self.objects.by_id.get(request.query.get("partition", ""))
        if p is None:
            return _refuse(404, "NoSuchPartition")
        keys = sorted(p.recent) if request.query.get("by") == "load" else p.median_key()
        return _json_response({"key": choose_split_key(keys, p.lo, p.hi), "keys": len(p)})

    async def _sync_buckets(self, session: aiohttp.ClientSession) -> None:
        """An extra metadata process keeps a copy of the buckets table (to check a
        write's bucket and owner, as a home replica does): frontends send it
        bucket changes as they happen; this pulls any it missed."""
        newest_ms = physical_ms(max((v.get("ts", 0) for v in self.buckets.table.values()), default=0))
        since = (newest_ms - CATCH_UP_MARGIN_MS) << 16 if newest_ms else None
        try:
            await self._pull_from_any(session, list(self.peers), "buckets", "", None, since)
        except _NoSource:
            pass

    async def _sync_map(self, session: aiohttp.ClientSession) -> None:
        """Adopt any newer map a peer has (one pushed while this process was away)."""
        for peer in self.peers:
            try:
                async with session.get(f"{peer}/index/map", params={"newer_than": self.pmap.version},
                                       timeout=aiohttp.ClientTimeout(total=2)) as r:
                    if r.status != 200:
                        continue
                    new = PartitionMap.from_doc((await r.json(loads=fastjson.loads))["map"])
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
                    if not self.home:
                        await self._sync_buckets(session)
                    self.freezer.maybe(sum(len(p) for p in self.objects.partitions))
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
        body = await request.json(loads=fastjson.loads)
        await self._collect(body["ec"], body.get("reason", "failed-write"))
        return _json_response({"ok": True})

    async def gc_list(self, request):
        return _json_response({"items": [{"id": k, **v} for k, v in self.gc.table.items()]})

    async def gc_forget(self, request):
        """Drop GC notes the scrubber has dealt with (its inventory-based GC
        removes every unreferenced fragment; the notes only say why)."""
        body = await request.json(loads=fastjson.loads)
        n = 0
        for k in body.get("ids", []):
            if k in self.gc.table:
                await self.gc.write(k, None)
                n += 1
        return _json_response({"forgotten": n})

    async def metrics(self, request):
        """Prometheus text format (unauthenticated: counts only, never keys)."""
        return web.Response(body=prometheus_client.generate_latest(REGISTRY),
                            headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST})

    # -- status --------------------------------------------------------------------------
    def max_ts(self) -> int:
        return max((v.get("ts", 0) for p in [self.buckets, *self.objects.partitions]
                    for t in (p.table, p.rows) for v in t.values()), default=0)

    async def status(self, request):
        disk = 0
        for dirpath, _d, files in os.walk(os.path.dirname(self.buckets.wal.dir)):
            disk += sum(os.path.getsize(os.path.join(dirpath, f)) for f in files)
        return _json_response({
            "id": self.id, "az": self.az, "role": "meta", "pid": os.getpid(), "disk_bytes": disk,
            "state": "serving" if self.serving else "catching-up", "catch_up": self.catch_up_stats,
            "buckets": sum(1 for v in self.buckets.table.values() if not v.get("deleted")),
            "gc_queue": len(self.gc.table), "max_ts": self.max_ts() if request.query.get("ts") else None,
            "blob_log": self.blobs.stats(), "batches": self.batches,
            "gc_freezes": {"count": self.freezer.freezes, "last_ms": round(self.freezer.last_ms, 1),
                           "frozen_objects": gc.get_freeze_count()},
            "partitions": [p.stats() for p in self.objects.partitions]})

    async def health(self, request):
        """200 once serving reads; 503 while catching up (so `minis3 up` waits for it)."""
        return _json_response({"ok": self.serving, "id": self.id, "serving": self.serving},
                                 status=200 if self.serving else 503)

    def app(self, secret: str) -> web.Application:
        self.secret = self.secret or secret
        app = internal_app(secret, client_max_size=64 << 20, registry=REGISTRY)
        r = app.router
        r.add_get("/v/bucket", self.get_bucket)
        r.add_get("/v/buckets", self.list_buckets)
        r.add_post("/v/bucket", self.put_bucket)
        r.add_get("/v/object", self.get_object)
        r.add_post("/v/object", self.put_object)
        r.add_post("/v/objects", self.put_objects)
        r.add_post("/v/prepare", self.prepare)
        r.add_post(batch.PATH, self.batch)
        r.add_get("/v/scan", self.scan)
        r.add_post("/gc/add", self.gc_add)
        r.add_get("/gc", self.gc_list)
        r.add_post("/gc/forget", self.gc_forget)
        r.add_get("/metrics", self.metrics)
        r.add_get("/index/map", self.get_map)
        r.add_post("/index/map", self.put_map)
        r.add_get("/index/stats", self.index_stats)
        r.add_get("/index/split-key", self.split_key)
        r.add_post("/index/receive", self.receive)
        r.add_post("/index/fence", self.fence)
        r.add_post("/index/finish", self.finish)
        r.add_post("/index/release", self.release)
        r.add_get("/status", self.status)
        r.add_get("/health", self.health)
        self._batch_handlers = {(rt.method, rt.resource.canonical): rt.handler for rt in r.routes()
                                if (rt.method, rt.resource.canonical) in batch.BATCHABLE}
        app.on_startup.append(self._start_catch_up)
        app.on_startup.append(self._start_map_loop)
        app.on_cleanup.append(self._stop_catch_up)
        app.on_cleanup.append(self._stop_map_loop)
        return app


def main(argv: list[str] | None = None) -> None:
    from .. import config
    from ..rpc.logs import setup_logging
    p = argparse.ArgumentParser(prog="minis3 meta")
    config.add_arguments(p)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--az", help="run this AZ's home metadata process")
    which.add_argument("--id", help="run the metadata process with this id (e.g. an extra one, meta-az-a-2)")
    a = p.parse_args(argv)
    topo = config.from_args(a)
    spec = topo.meta(a.id) if a.id else next(az.meta for az in topo.azs if az.name == a.az)
    setup_logging(spec.id)
    config.warn_if_demo_secret(topo, log)
    tracing.configure(spec.id)
    peers = {m.url: m.az for m in topo.all_metas if m.id != spec.id}
    svc = MetaService(spec.id, spec.az, spec.data_dir, topo.partition_bounds, peers=peers,
                      secret=topo.cluster_secret, commit_window_s=topo.scrub.commit_window_s,
                      index=topo.index, replicas={az.name: az.meta.id for az in topo.azs},
                      home=spec in topo.metas,
                      rpc_options={"source_host": spec.host, "delay": InterAZDelay.for_topology(topo, spec.az)},
                      region=topo.region)
    log.info("metadata %s %s on %s, data in %s, %d partitions, peers %s (%s)", "replica" if svc.home else
             "process (extra)", spec.id, spec.url, spec.data_dir, len(svc.objects.partitions),
             ", ".join(peers) or "none", use_fast_event_loop())
    web.run_app(svc.app(topo.cluster_secret), host=spec.host, port=spec.port,
                print=None, access_log=None, handle_signals=True)
