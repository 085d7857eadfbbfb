"""The metadata service: buckets, object records and the GC queue, durable.

Three kinds of table, all :class:`Partition` (SortedDict + WAL + snapshots):

* ``buckets``: bucket name → {ts, created_ms, region, owner, deleted?}
* object partitions: "bucket/key" → object record (or tombstone), split into
  key ranges by the topology's ``partition_bounds``
* ``gc``: fragments no committed record points to any more (replaced, deleted
  or failed writes), for the scrubber to remove.

Commit is the one moment an object version becomes visible: ``/object/put``
checks the bucket and any If-Match / If-None-Match condition against the newest
record (including writes still being made durable), appends to the WAL, waits
for fdatasync, applies, and only then answers.

HTTP API (JSON bodies, HMAC-signed; errors as {"code", "message"} with S3's code):
    GET  /buckets                     POST /bucket/create   POST /bucket/delete
    GET  /bucket?name=                GET  /object?bucket=&key=
    POST /object/put                  POST /object/delete
    GET  /list?bucket=&prefix=&delimiter=&marker=&max_keys=
    POST /gc/add                      GET  /gc      GET /status   GET /health
"""
from __future__ import annotations

import argparse
import logging
import os

from aiohttp import web

from ..core import errors as E
from ..core.conditions import check_write
from ..core.hlc import HLC, physical_ms
from ..rpc.http import auth_middleware, use_fast_event_loop
from .listing import list_page
from .partition import Partition, PartitionSet

log = logging.getLogger("minis3.meta")
LIST_FIELDS = ("size", "etag", "mtime", "checksum")


def _err(exc: E.S3Error) -> web.Response:
    return web.json_response({"code": exc.code, "message": exc.message}, status=exc.status)


class MetaService:
    def __init__(self, meta_id: str, az: str, data_dir, bounds: tuple[str, ...], snapshot_every: int = 50_000):
        self.id, self.az = meta_id, az
        root = os.path.abspath(data_dir)
        self.hlc = HLC()
        self.buckets = Partition("buckets", "", None, os.path.join(root, "buckets"), snapshot_every)
        self.gc = Partition("gc", "", None, os.path.join(root, "gc"), snapshot_every)
        self.objects = PartitionSet(bounds, os.path.join(root, "objects"), snapshot_every)
        for p in [self.buckets, self.gc, *self.objects.partitions]:
            for v in p.table.values():
                if "ts" in v:
                    self.hlc.observe(v["ts"])

    def _stamp(self, ts: int | None) -> int:
        if ts:
            self.hlc.observe(int(ts))
        return self.hlc.now()

    def _live_bucket(self, name: str) -> dict | None:
        b = self.buckets.latest(name)
        return None if b is None or b.get("deleted") else b

    def _owned_bucket(self, name: str, owner: str | None) -> dict:
        """The bucket, if it exists and ``owner`` (the caller's account) owns it."""
        b = self._live_bucket(name)
        if b is None:
            raise E.NoSuchBucket()
        if owner is not None and b.get("owner") != owner:
            raise E.AccessDenied()
        return b

    # -- buckets ---------------------------------------------------------------
    async def list_buckets(self, request):
        owner = request.query.get("owner")
        out = [{"name": k, **v} for k, v in self.buckets.table.items()
               if not v.get("deleted") and (owner is None or v.get("owner") == owner)]
        return web.json_response({"buckets": out})

    async def get_bucket(self, request):
        return web.json_response(self._owned_bucket(request.query.get("name", ""), request.query.get("owner")))

    async def create_bucket(self, request):
        body = await request.json()
        name = body["name"]
        cur = self._live_bucket(name)
        if cur is not None:
            if cur.get("owner") == body.get("owner"):
                return _err(E.BucketAlreadyOwnedByYou())
            return _err(E.BucketAlreadyExists())
        ts = self._stamp(body.get("ts"))
        rec = {"ts": ts, "created_ms": physical_ms(ts), "region": body.get("region", "us-east-1"),
               "owner": body.get("owner")}
        await self.buckets.write(name, rec)
        return web.json_response(rec)

    async def delete_bucket(self, request):
        body = await request.json()
        name = body["name"]
        self._owned_bucket(name, body.get("owner"))
        part_base = name + "/"
        for p in self.objects.partitions:
            if any(k.startswith(part_base) and not v.get("deleted") for k, v in p.pending.items()):
                return _err(E.BucketNotEmpty())
        for k, v in self.objects.scan(part_base, True):
            if not k.startswith(part_base):
                break
            if not v.get("deleted"):
                return _err(E.BucketNotEmpty())
        await self.buckets.write(name, {"ts": self._stamp(body.get("ts")), "deleted": True})
        return web.Response(status=204)

    # -- objects -----------------------------------------------------------------
    async def get_object(self, request):
        self._owned_bucket(request.query["bucket"], request.query.get("owner"))
        key = request.query["bucket"] + "/" + request.query["key"]
        rec = self.objects.for_key(key).get(key)
        if rec is None or rec.get("deleted"):
            return _err(E.NoSuchKey())
        return web.json_response(rec)

    async def put_object(self, request):
        body = await request.json()
        bucket, key, rec = body["bucket"], body["key"], body["record"]
        self._owned_bucket(bucket, body.get("owner"))
        ikey = bucket + "/" + key
        part = self.objects.for_key(ikey)
        cur = part.latest(ikey)
        cur_live = None if cur is None or cur.get("deleted") else cur
        try:
            # The condition and the write below happen with no await between
            # them: nothing can slip in (the If-* of a conditional PUT is atomic).
            check_write(body.get("conditions") or {}, f'"{cur_live["etag"]}"' if cur_live else None)
        except E.S3Error as exc:
            return _err(exc)
        rec = dict(rec, ts=self._stamp(rec.get("ts")))
        rec["mtime"] = physical_ms(rec["ts"])
        await part.write(ikey, rec)
        if cur_live and cur_live.get("ec") and cur_live["ec"]["id"] != (rec.get("ec") or {}).get("id"):
            await self._collect(cur_live["ec"], "replaced")
        return web.json_response({"record": rec})

    async def delete_object(self, request):
        body = await request.json()
        bucket, key = body["bucket"], body["key"]
        self._owned_bucket(bucket, body.get("owner"))
        ikey = bucket + "/" + key
        part = self.objects.for_key(ikey)
        cur = part.latest(ikey)
        if cur is None or cur.get("deleted"):
            return web.json_response({"deleted": False})
        await part.write(ikey, {"ts": self._stamp(body.get("ts")), "deleted": True})
        if cur.get("ec"):
            await self._collect(cur["ec"], "deleted")
        return web.json_response({"deleted": True})

    async def list_objects(self, request):
        q = request.query
        bucket = q["bucket"]
        self._owned_bucket(bucket, q.get("owner"))
        page = list_page(self.objects.scan, bucket, q.get("prefix", ""), q.get("delimiter", ""),
                         q.get("marker", ""), int(q.get("max_keys", 1000)))
        # A listing needs only these fields: never ship inline payloads or layouts.
        entries = [(k, {f: r.get(f) for f in LIST_FIELDS}) for k, r in page.entries]
        return web.json_response({"entries": entries, "prefixes": page.prefixes,
                                  "truncated": page.truncated, "next_marker": page.next_marker})

    # -- garbage -------------------------------------------------------------------
    async def _collect(self, ec: dict, reason: str) -> None:
        """Queue an object's fragments for removal (the scrubber deletes them)."""
        ts = self.hlc.now()
        await self.gc.write(f"{ts:020d}-{ec['id']}", {"ts": ts, "reason": reason, "ec": ec})

    async def gc_add(self, request):
        body = await request.json()
        await self._collect(body["ec"], body.get("reason", "failed-write"))
        return web.json_response({"ok": True})

    async def gc_list(self, request):
        return web.json_response({"items": [{"id": k, **v} for k, v in self.gc.table.items()]})

    # -- status ----------------------------------------------------------------------
    async def status(self, request):
        disk = 0
        for dirpath, _d, files in os.walk(os.path.dirname(self.buckets.wal.dir)):
            disk += sum(os.path.getsize(os.path.join(dirpath, f)) for f in files)
        return web.json_response({
            "id": self.id, "az": self.az, "role": "meta", "pid": os.getpid(), "disk_bytes": disk,
            "buckets": sum(1 for v in self.buckets.table.values() if not v.get("deleted")),
            "gc_queue": len(self.gc.table),
            "partitions": [p.stats() for p in self.objects.partitions]})

    async def health(self, request):
        return web.json_response({"ok": True, "id": self.id})

    def app(self, secret: str) -> web.Application:
        app = web.Application(middlewares=[auth_middleware(secret)], client_max_size=64 << 20)
        r = app.router
        r.add_get("/buckets", self.list_buckets)
        r.add_get("/bucket", self.get_bucket)
        r.add_post("/bucket/create", self.create_bucket)
        r.add_post("/bucket/delete", self.delete_bucket)
        r.add_get("/object", self.get_object)
        r.add_post("/object/put", self.put_object)
        r.add_post("/object/delete", self.delete_object)
        r.add_get("/list", self.list_objects)
        r.add_post("/gc/add", self.gc_add)
        r.add_get("/gc", self.gc_list)
        r.add_get("/status", self.status)
        r.add_get("/health", self.health)
        return app


def main(argv: list[str] | None = None) -> None:
    from ..cluster import topology as topo_mod
    from ..cluster.logs import setup_logging
    p = argparse.ArgumentParser(prog="minis3 meta")
    p.add_argument("--topology")
    p.add_argument("--data-dir")
    p.add_argument("--az", required=True)
    a = p.parse_args(argv)
    topo = topo_mod.load(a.topology, data_dir=a.data_dir)
    spec = next(az.meta for az in topo.azs if az.name == a.az)
    setup_logging(spec.id)
    svc = MetaService(spec.id, spec.az, spec.data_dir, topo.partition_bounds)
    log.info("metadata %s on %s, data in %s, %d partitions (%s)", spec.id, spec.url, spec.data_dir,
             len(svc.objects.partitions), use_fast_event_loop())
    web.run_app(svc.app(topo.cluster_secret), host=spec.host, port=spec.port,
                print=None, access_log=None, handle_signals=True)

