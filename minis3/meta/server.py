"""One metadata process: replicas of buckets, object records and GC notes, durable, last writer wins.

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
  fragments, those fragments as GC candidates (``meta/gcnotes.py``; the
  scrubber checks a quorum before deleting anything);
* catches up when it starts (``meta/catchup.py``): it pulls from its peers
  the versions it may have missed (all of them, if it starts empty) and
  merges them before it serves reads (it answers 503 ``CatchingUp`` until
  then), so a replica that was down never answers with what it missed.

This module holds the process (:class:`MetaService`, its HTTP app, ``main``)
and the handlers of its record store. The service owns collaborators for the
rest: the pulls from peers (``meta/catchup.py``), a replica's move to or from
this process (``meta/move.py``), its copy of the partition map and the
splits it makes in place (``meta/mapsync.py``), and the GC notes
(``meta/gcnotes.py``). Its answers and refusals are ``meta/responses.py``.

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
    POST /v/objects {bucket, items: [[key, record], ...][, owner]} → {"applied": n, "newer": {key: ts}} (bulk load)
    POST /v/object  {bucket, key, record[, owner][, commit][, cas]} → {"applied": bool[, "newer_ts": ts]}
                    (``newer_ts``: this replica holds a newer version, stamped ts: meta/lww.py); with ``owner``
                    refused (404 NoSuchBucket / 403 AccessDenied) unless this replica
                    sees the bucket live and the owner's; with ``commit`` (a new
                    version, not a repair) refused (409 StaleCommit, with this
                    replica's clock as ``now_ts``) if it has fragments and its timestamp
                    is older than the commit window;
                    with ``cas`` {expect, wid} (a conditional write's accept round)
                    refused (409 ConditionalRequestConflict) unless promised (meta/promises.py)
    POST /v/prepare {bucket, key, ballot[, owner]} → {"bucket": version|null, "object": version|null}
                    a conditional write's first round: a promise, or 409 ConditionalRequestConflict
    GET  /v/scan?table=&start=&inclusive=&end=&limit=&fields=&inline=   (raw versions, tombstones too)
    POST /v/batch   several of the calls above in one request (meta/batch.py)
    GET  /v/channel a channel (rpc/channel.py): batches of those calls as WebSocket messages
    POST /gc/add    GET /gc    POST /gc/forget {ids}    GET /status    GET /health    GET /metrics
    GET  /index/map  POST /index/map  GET /index/stats  GET /index/split-key   (the partition map, splits)
    POST /index/receive  /index/fence  /index/finish  /index/release   (a partition replica's move)
"""
from __future__ import annotations

import asyncio
import gc
import logging
import os
import time

import aiohttp
from aiohttp import web

import prometheus_client

from ..core.hlc import HLC, physical_ms
from ..rpc.delay import InterAZDelay
from ..rpc import channel as rpc_channel
from ..rpc import clock, failpoints
from ..rpc import tracing
from ..rpc.http import VERIFIER, client_session, internal_app, use_fast_event_loop
from ..rpc.process import begin, process_args, serve
from ..config import IndexSpec
from ..rpc import fastjson
from . import batch, blobs, lww
from .catchup import CatchUp
from .gcfreeze import Freezer
from .gcnotes import GCNotes
from .mapsync import MapSync
from .metrics import CAS_REFUSED, REGISTRY, STALE_COMMITS, WRITES
from .move import ReplicaMoves
from ..core.ratelimit import request_budget
from .partition import Partition, PartitionSet, version
from .pmap import PartitionMap
from .promises import Promises
from .responses import (SCAN_LIMIT, CatchingUp, WrongPartition, dumps_markers, dumps_payloads, json_response,
                        refuse, slow_down)

log = logging.getLogger("minis3.meta")

#: What a listing needs of an object version (never inline payloads or layouts).
LIST_FIELDS = ("ts", "vid", "deleted", "size", "etag", "mtime", "checksum", "version_id", "vts", "marker",
               "storage_class")
SCAN_WALK = 200_000       # most keys one scan request walks (with since_ts, most are not sent)


class MetaService:
    """One metadata process: its tables and the request handlers of its record
    store; the collaborators it owns do the rest (``catchup``, ``moves``,
    ``maps``, ``gc_notes``)."""

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
        self.rpc_options = rpc_options or {}       # client_session's source_host and delay, for pulls from peers
        self.commit_window_ms = int(commit_window_s * 1000)
        self.region = region                # a bucket of another region is not here (None: any region)
        self.freezer = Freezer()            # the records out of the cyclic GC's walks (meta/gcfreeze.py)
        root = os.path.abspath(data_dir)
        self.hlc = HLC(clock.wall_ms)        # the process's clock, skewed by `minis3 chaos clock-skew`
        self.buckets = Partition("buckets", "", None, os.path.join(root, "buckets"), snapshot_every)
        self.gc = Partition("gc", "", None, os.path.join(root, "gc"), snapshot_every)
        self.gc_notes = GCNotes(self.gc, self.hlc)      # meta/gcnotes.py
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
            self.set_budgets(p)
        # The partition map: the newest version this process has seen (meta/mapsync.py).
        self.maps = MapSync(self, os.path.join(root, "map.json"), bounds, replicas or {az: meta_id})
        self.promises = Promises()              # conditional writes in progress (meta/promises.py)
        self.peers = dict(peers or {})              # url → az
        self.moves = ReplicaMoves(self)             # replicas moved here or away (meta/move.py)
        self.catchup = CatchUp(self)                # pulls from peers (meta/catchup.py)
        self.secret = secret
        self.serving = not self.peers          # a lone replica has nobody to catch up from
        self.started = time.time()
        # POST /v/batch requests and channel messages received, and the calls in them (meta/batch.py)
        self.batches = {"requests": 0, "messages": 0, "calls": 0}
        self.channels = 0                                # channels opened to it (rpc/channel.py)

    @property
    def pmap(self) -> PartitionMap:
        """The newest partition map this process has seen."""
        return self.maps.pmap

    def peer_session(self, timeout_s: float) -> aiohttp.ClientSession:
        """A session for requests to peer metadata processes (catch-up, moves, map sync)."""
        return client_session(self.secret, timeout_s=timeout_s, **self.rpc_options)

    def set_budgets(self, p: Partition) -> None:
        p.write_budget, p.read_budget = request_budget(self.index.write_ops_per_s), request_budget(self.index.read_ops_per_s)

    def _holds(self, ikey: str) -> bool:
        """Does the partition map give this process its AZ's replica of ``ikey``?"""
        return self.pmap.locate(ikey).replica_in(self.az) == self.id

    def object_partition(self, ikey: str, *, peer: bool = False) -> Partition:
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
    async def put_version(self, part: Partition, key: str, rec: dict) -> tuple[bool, dict | None]:
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
        return json_response({"record": self.buckets.latest(request.query.get("name", ""))})

    async def list_buckets(self, request):
        self._require_serving(request)
        return json_response({"buckets": dict(self.buckets.table.items())})

    async def put_bucket(self, request):
        body = await request.json(loads=fastjson.loads)
        applied, _ = await self.put_version(self.buckets, body["name"], body["record"])
        return json_response({"applied": applied})

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
                return slow_down(part, "read")
        elif part is None:
            raise WrongPartition(self.pmap)
        # ``payload=0``: an inline payload as its marker (length, xxh3), not its bytes: the
        # second replica of a read quorum needs only to say which version it holds.
        return json_response({"bucket": self.buckets.latest(bucket), "object": part.get(ikey)},
                             dumps=dumps_markers if request.query.get("payload") == "0" else dumps_payloads)

    async def put_object(self, request):
        body = await request.json(loads=fastjson.loads)
        ikey = body["bucket"] + "/" + body["key"]
        rec = body["record"]
        if blobs.is_marker(rec.get("inline")):
            return refuse(400, "InlineMarker")     # a scan's marker, never a payload (meta/blobs.py)
        if body.get("commit") and (rec.get("ec") or rec.get("parts")) and physical_ms(int(rec["ts"])) < clock.wall_ms() - self.commit_window_ms:
            # A new version that took too long to get here (a frozen replica
            # thawed, a request stuck in a socket): its fragments may already
            # be judged garbage by the scrubber, so it must never be kept.
            # The refusal says this replica's clock: a coordinator whose clock
            # is behind moves past it and stamps the version again, if its own
            # commit deadline allows (meta/client.py, _write_fresh).
            STALE_COMMITS.inc()
            return refuse(409, "StaleCommit", now_ts=self.hlc.now())
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
                return refuse(409, "VersionedBucket")
        part = self.object_partition(ikey)
        if part.inflight >= self.index.max_inflight_writes or not part.write_budget.try_take():
            return slow_down(part, "write")
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
        applied, held = await self._keep_object(part, ikey, rec)
        # A version older than the one held is not kept, and the answer says
        # so with the newer stamp: the coordinator stamps it again (meta/lww.py).
        return json_response(lww.write_answer(rec, held, applied))

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
        part = self.object_partition(ikey)
        if part.state == "incoming":
            raise CatchingUp()             # its versions may not all be here yet
        cur = part.latest(ikey)
        if not self.promises.prepare(ikey, (*body["ballot"], 0), version(cur)):
            CAS_REFUSED.labels("prepare").inc()
            return self._cas_refusal(ikey, cur)
        return json_response({"bucket": self.buckets.latest(bucket), "object": cur})

    def _cas_refusal(self, ikey: str, cur: dict | None) -> web.Response:
        """409, with the newest stamp this replica knows of the key (its version
        or a promised ballot): the coordinator's clock moves past it."""
        seen = max(version(cur)[0], self.promises.newest_stamp(ikey) or -1)
        return refuse(409, "ConditionalRequestConflict", seen_ts=seen)

    def _bucket_refusal(self, bucket: str, owner: str | None) -> web.Response | None:
        """404 NoSuchBucket unless this replica sees the bucket live; 403
        AccessDenied unless it is ``owner``'s (None: anyone's)."""
        b = self.buckets.latest(bucket)
        if b is None or b.get("deleted") or (self.region is not None and b.get("region", self.region) != self.region):
            return refuse(404, "NoSuchBucket")   # (the global region's table also lists other regions' buckets)
        if owner is not None and b.get("owner") != owner:
            return refuse(403, "AccessDenied")
        return None

    def _keeps_versions(self, bucket: str) -> bool:
        """Has the bucket's record (in this replica's view) had versioning turned on?"""
        return bool((self.buckets.latest(bucket) or {}).get("versioning"))

    async def _keep_object(self, part: Partition, ikey: str, rec: dict) -> tuple[bool, dict | None]:
        """Keep an object version if it is newer; note the fragments of the one
        it replaces (or deletes) as GC candidates. (Kept?, the version held before.)"""
        applied, cur = await self.put_version(part, ikey, rec)
        if applied and cur and cur.get("ec") and cur["ec"]["id"] != (rec.get("ec") or {}).get("id"):
            await self.gc_notes.note(cur["ec"], "deleted" if rec.get("deleted") else "replaced")
        return applied, cur

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
            return refuse(409, "VersionedBucket")      # a bulk load would replace versions, not keep them

        async def one(key: str, rec: dict) -> dict:
            ikey = body["bucket"] + "/" + key
            applied, held = await self._keep_object(self.object_partition(ikey), ikey, rec)
            return lww.write_answer(rec, held, applied)
        for key, _ in body["items"]:                 # refuse the batch before keeping any of it
            ikey = body["bucket"] + "/" + key
            if not self._takes_writes(self.objects.for_key(ikey), ikey):
                raise WrongPartition(self.pmap)
        results = await asyncio.gather(*(one(k, r) for k, r in body["items"]))
        # The keys held newer than the version sent (meta/lww.py), to be stamped again.
        newer = {k: a["newer_ts"] for (k, _), a in zip(body["items"], results) if "newer_ts" in a}
        return json_response({"applied": sum(a["applied"] for a in results), "newer": newer})

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
        return json_response({"items": items, "exhausted": exhausted, "last": last},
                             dumps=dumps_markers if q.get("inline") == "marker" else dumps_payloads)

    async def batch(self, request):
        """``POST /v/batch``: several calls in one request (meta/batch.py), run
        concurrently as if each had come alone; one answer with each's status and body."""
        raw = await request.read()        # (its SHA-256 checked by the auth middleware, rpc/http.py)
        body = await self._run_batch(fastjson.loads(raw)["calls"], "requests")
        return web.Response(body=body, content_type="application/json")

    async def channel(self, request):
        """``GET /v/channel``: a channel (rpc/channel.py) carrying the calls a
        batch may carry, as messages: each message is a batch, answered as one."""
        self.channels += 1
        return await rpc_channel.accept(request, self.secret, self._serve_message,
                                        request.app[VERIFIER].count)

    async def _serve_message(self, payload) -> bytes:
        try:
            calls = fastjson.loads(payload)["calls"]
        except (ValueError, KeyError, TypeError):
            return batch.encode_results([(400, fastjson.dumpb({"code": "MalformedBatch", "message": "not a batch"}))])
        return await self._run_batch(calls, "messages")

    async def _run_batch(self, calls: list, came_as: str) -> bytes:
        """A batch's calls run concurrently, as if each had come alone, and
        counted (``came_as``: "requests" or "messages"); the encoded results."""
        self.batches[came_as] += 1
        self.batches["calls"] += len(calls)
        return batch.encode_results(await asyncio.gather(*(batch.run(self._batch_handlers, c) for c in calls)))

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
        return json_response({
            "id": self.id, "az": self.az, "role": "meta", "pid": os.getpid(), "disk_bytes": disk,
            "state": "serving" if self.serving else "catching-up", "catch_up": self.catchup.stats,
            "buckets": sum(1 for v in self.buckets.table.values() if not v.get("deleted")),
            "gc_queue": len(self.gc.table), "max_ts": self.max_ts() if request.query.get("ts") else None,
            "blob_log": self.blobs.stats(), "batches": self.batches, "channels": self.channels,
            "gc_freezes": {"count": self.freezer.freezes, "last_ms": round(self.freezer.last_ms, 1),
                           "frozen_objects": gc.get_freeze_count()},
            "partitions": [p.stats() for p in self.objects.partitions],
            "disk": failpoints.disk_faults().describe(),
            "workers": [self.maps.worker.status()]})

    async def health(self, request):
        """200 once serving reads; 503 while catching up (so `minis3 up` waits for it)."""
        return json_response({"ok": self.serving, "id": self.id, "serving": self.serving},
                         status=200 if self.serving else 503)

    def app(self, secret: str) -> web.Application:
        self.secret = self.secret or secret
        routes = [web.get("/v/bucket", self.get_bucket), web.get("/v/buckets", self.list_buckets),
                  web.post("/v/bucket", self.put_bucket), web.get("/v/object", self.get_object),
                  web.post("/v/object", self.put_object), web.post("/v/objects", self.put_objects),
                  web.post("/v/prepare", self.prepare), web.post(batch.PATH, self.batch),
                  web.get(rpc_channel.PATH, self.channel),
                  web.get("/v/scan", self.scan), web.post("/gc/add", self.gc_notes.add),
                  web.get("/gc", self.gc_notes.list_notes),
                  web.post("/gc/forget", self.gc_notes.forget), web.get("/metrics", self.metrics),
                  web.get("/index/map", self.maps.get_map), web.post("/index/map", self.maps.put_map),
                  web.get("/index/stats", self.maps.index_stats),
                  web.get("/index/split-key", self.maps.split_key),
                  web.post("/index/receive", self.moves.receive),
                  web.post("/index/fence", self.moves.fence),
                  web.post("/index/finish", self.moves.finish),
                  web.post("/index/release", self.moves.release), web.get("/status", self.status),
                  web.get("/health", self.health)]
        app = internal_app(secret, client_max_size=64 << 20, registry=REGISTRY, routes=routes,
                           on_startup=[self.catchup.start, self.maps.start],
                           on_cleanup=[self.catchup.stop, self.maps.stop])
        self._batch_handlers = {(rt.method, rt.resource.canonical): rt.handler for rt in app.router.routes()
                                if (rt.method, rt.resource.canonical) in batch.BATCHABLE}
        return app


def main(argv: list[str] | None = None) -> None:
    def which(p):
        group = p.add_mutually_exclusive_group(required=True)
        group.add_argument("--az", help="run this AZ's home metadata process")
        group.add_argument("--id", help="run the metadata process with this id (e.g. an extra one, meta-az-a-2)")
    a, topo = process_args("minis3 meta", argv, which)
    spec = topo.meta(a.id) if a.id else next(az.meta for az in topo.azs if az.name == a.az)
    begin(spec.id, topo, log, trace_name=spec.id)
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
    serve(svc.app(topo.cluster_secret), spec.host, spec.port)
