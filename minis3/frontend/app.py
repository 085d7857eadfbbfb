"""The S3 frontend: an aiohttp app that authenticates, routes and answers.

Every request gets an ``x-amz-request-id``; every failure becomes S3's XML
error with that id (one place: :func:`error_response`); no traceback ever
reaches a client. The handlers live one module per S3 resource:
``service`` (ListBuckets), ``bucket``, ``object``.
"""
from __future__ import annotations

import asyncio
import datetime as dt
from collections import ChainMap
import gc
import logging
import os
import time
from urllib.parse import parse_qsl

import prometheus_client
from aiohttp import web

from ..config import Topology
from ..core import errors as E
from ..core import s3xml
from ..core.hlc import HLC
from ..core.sigv4 import SigningInput, claimed_access_key, verify
from ..core.trace import Span, trace_id_of
from ..ec.codec import Codec, give_back_memory, tune_malloc
from ..meta.client import MetaClient
from ..meta.users import REFRESH_S, UserTable
from ..rpc import auth, clock, listener
from ..rpc.delay import InterAZDelay
from ..rpc.http import (client_session, count_refusals, failpoints_get, failpoints_post, refusal,
                        refused_response, use_fast_event_loop)
from ..rpc.process import begin, process_args, serve
from ..rpc.tracing import TRACER, trace_handler
from ..rpc.worker import Worker
from ..storage.client import StorageClient
from . import cors
from .authorize import AccessStore
from .context import Context
from .datapath import DataPath
from .encryption import sse_c_over_http
from .keys import KeyService, key_dir
from .namespace import BucketNamespace
from .node_health import NodeHealth
from .routing import route

log = logging.getLogger("minis3.frontend")
access_log = logging.getLogger("minis3.access")

#: Where the frontend serves its Prometheus metrics. No bucket name can start
#: with "_", so the path can never be a path-style S3 request.
METRICS_PATH = "/_minis3/metrics"
#: After this long with no request in flight the frontend gives its free heap back (RSS to baseline).
IDLE_TRIM_S = 2.0
#: Requests handled at once, per client address and in all; past either, 503 SlowDown.
MAX_REQUESTS_PER_CLIENT = int(os.environ.get("MINIS3_MAX_REQUESTS_PER_CLIENT", "256"))
MAX_REQUESTS = int(os.environ.get("MINIS3_MAX_REQUESTS", "1024"))
TRACE_PATH = "/_minis3/trace"
CLOCK_PATH = "/_minis3/clock"
FAILPOINTS_PATH = "/_minis3/failpoints"
HEALTH_PATH = "/_minis3/health"
#: A request's S3 operation (PutObject, GetObject, …: minis3/core/operations.py), or NO_OPERATION
#: for one refused before its operation was known (over the limits, an unparsable URI, a bad
#: signature, another region's, a method the resource has not).
NO_OPERATION = "-"
REQUESTS = prometheus_client.Counter("minis3_requests", "S3 requests answered, by HTTP method, status and S3 "
                                     f"operation ({NO_OPERATION!r}: refused before the operation was known)",
                                     ["method", "status", "operation"])
TASKS = prometheus_client.Gauge("minis3_frontend_asyncio_tasks", "asyncio tasks alive in the frontend (one per "
                                "open connection, request stage and fragment upload, and a few of its own)")


def _asyncio_tasks() -> float:
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:                  # no loop running: not rendered by the frontend's own loop
        return float("nan")


TASKS.set_function(_asyncio_tasks)
LATENCY = prometheus_client.Histogram("minis3_request_seconds", "S3 request latency to the response head, by "
                                      f"HTTP method and S3 operation ({NO_OPERATION!r}: refused before it was known)",
                                      ["method", "operation"], buckets=(.001, .0025, .005, .01, .025, .05, .1, .25,
                                                           .5, 1, 2.5, 5, 10, 30))


class Frontend:
    def __init__(self, topo: Topology, az: str | None = None):
        self.topo = topo
        self.az = az                      # the AZ this frontend runs in (None: the main frontend)
        self.hlc = HLC(clock.wall_ms)        # the process's clock, skewed by `minis3 chaos clock-skew`
        self.verifier = auth.Verifier(topo.cluster_secret)   # internal calls (GET /_minis3/trace)
        count_refusals(prometheus_client.REGISTRY, self.verifier)
        self.codec = Codec(topo.erasure.k, topo.erasure.m, topo.erasure.backend)
        self.session = None
        self.probe_session = None
        self.inflight = 0                 # requests being handled now
        self.per_client: dict[str, int] = {}   # client address → its requests being handled now
        self.busy_at = time.monotonic()   # when the last one ended
        self._trimmed_after: float | None = None
        self.trimmer = Worker("memory-trim", self._give_back_memory_when_idle, IDLE_TRIM_S / 2)
        self.health: NodeHealth | None = None
        self.meta: MetaClient | None = None
        self.buckets: BucketNamespace | None = None
        self.access: AccessStore | None = None
        self.users: UserTable | None = None
        self.user_sync = Worker("user-sync", self._sync_users, REFRESH_S)
        self.datapath: DataPath | None = None
        # Encryption at rest: the master key and the local KMS (frontend/keys.py).
        self.keys = KeyService(key_dir(topo.data_dir, topo.world is not None), topo.region)
        self.sse_c_over_http = sse_c_over_http(topo.frontend)

    async def start(self, app: web.Application) -> None:
        # A per-AZ frontend sends from its AZ's address, so partitioning the AZ cuts it off too.
        session_args = dict(source_host=self.topo.az_frontend(self.az).host if self.az else None,
                            delay=InterAZDelay.for_topology(self.topo, self.az), peer_names=self.topo.process_names())
        self.session = client_session(self.topo.cluster_secret, **session_args)
        # Health probes have a pool of their own: a probe never waits behind data
        # transfers (stalled uploads filling the data pool once made every node
        # look down to every client).
        self.probe_session = client_session(self.topo.cluster_secret, limit_per_host=2, **session_args)
        # The coordinator of the metadata replicas (one per AZ): quorum reads and writes.
        self.meta = MetaClient.for_topology(self.session, self.topo, hlc=self.hlc)
        self.buckets = BucketNamespace(self.topo, self.session, self.meta, self.hlc)
        self.access = AccessStore(self.meta)       # buckets' owners and access settings (frontend/authorize.py)
        self.users = UserTable(self.buckets.registry, self.topo.cluster_secret)   # `minis3 user add`'s keys
        self.user_sync.start()
        storage = StorageClient(self.session, {n.id: n.url for n in self.topo.nodes})
        azs = [(az.name, [n.id for n in az.nodes]) for az in self.topo.azs]
        self.health = NodeHealth(self.probe_session, {n.id: n.url for n in self.topo.nodes})
        self.health.start()
        self.trimmer.start()
        self.datapath = DataPath(codec=self.codec, storage=storage, meta=self.meta, azs=azs,
                                 segment_size=self.topo.erasure.segment_size,
                                 inline_threshold=self.topo.erasure.inline_threshold, health=self.health,
                                 commit_window_s=self.topo.scrub.commit_window_s)

    @property
    def secrets(self) -> ChainMap:
        """Every access key's secret key: the topology's, then the user table's."""
        return ChainMap(self.topo.credentials, self.users.secrets)

    def identity(self, access_key: str) -> tuple[str, str | None]:
        """(account, user or None) of an access key (the topology's, else the user table's)."""
        if access_key in self.topo.credentials:
            return self.topo.accounts.get(access_key, access_key), self.topo.users.get(access_key)
        u = self.users.users.get(access_key)
        return (u.account, u.user) if u is not None else (access_key, None)

    async def know(self, access_key: str | None) -> None:
        """Before a signature made with ``access_key`` is checked: if it is not the topology's,
        make sure the user table's copy has it when the table does (meta/users.py)."""
        if access_key and access_key not in self.topo.credentials:
            await self.users.ensure(access_key)

    async def _sync_users(self) -> None:
        """A round of the user-sync worker: the user table, fresh (a removed key stops working)."""
        await self.users.refresh()

    async def _internal(self, request: web.Request, handler, *, own_path_only: bool = True) -> web.StreamResponse:
        """An internal route beside the S3 API (``/_minis3/trace``, ``clock``,
        ``failpoints``): signed with the cluster secret (with its body's SHA-256
        and a nonce), like every internal call. A request without the signature
        (or, with ``own_path_only``, one on a virtual-hosted bucket's path) is an
        S3 request, say for a key named ``_minis3/clock``; a bad signature is refused."""
        if auth.HEADER not in request.headers or (own_path_only and not self._own_path(request)):
            return await self.handle(request)
        why = await refusal(self.verifier, request)
        if why is not None:
            return refused_response(request, why)
        return await handler(request)

    async def trace(self, request: web.Request) -> web.StreamResponse:
        """This frontend's spans of one request (``?id=``), or its latest requests
        (``?recent=N``): for ``minis3 trace`` and the console. Signed: spans name
        buckets and keys."""
        return await self._internal(request, trace_handler, own_path_only=False)

    async def clock(self, request: web.Request) -> web.StreamResponse:
        """``GET``/``POST /_minis3/clock``: this frontend's clock offset (rpc/clock.py),
        for ``minis3 chaos clock-skew``. The frontend stamps every object version, so
        it is the process whose clock matters most."""
        return await self._internal(request, clock.clock_post if request.method == "POST" else clock.clock_get)

    async def failpoints(self, request: web.Request) -> web.StreamResponse:
        """``GET``/``POST /_minis3/failpoints``: this frontend's failpoints (rpc/failpoints.py),
        as every internal app's ``/failpoints``, for ``minis3 chaos failpoints`` and
        ``crash-at``: a PUT's commit (``frontend.put.*``) and a multipart upload's
        completion (``frontend.multipart.*``) are steps of the frontend's own."""
        return await self._internal(request, failpoints_post if request.method == "POST" else failpoints_get)

    async def stop(self, app: web.Application) -> None:
        if self.health is not None:
            await self.health.stop()
        await self.trimmer.stop()
        await self.user_sync.stop()
        for session in (self.session, self.probe_session):
            if session:
                await session.close()

    # -- the request pipeline ------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        request_id = os.urandom(8).hex().upper()      # (a uuid4 made and cut: ~1% of the CPU of a PUT)
        addr = request.remote or "?"
        mine = self.per_client.get(addr, 0)
        self.per_client[addr] = mine + 1
        self.inflight += 1
        # Past the caps, 503 SlowDown at once, before any byte of the body:
        # one client (or all) cannot hold every connection and buffer.
        over = mine >= MAX_REQUESTS_PER_CLIENT or self.inflight > MAX_REQUESTS
        try:
            with TRACER.request(f"{request.method} {request.path[:120]}", trace_id=trace_id_of(request_id),
                                request_id=request_id, host=request.headers.get("Host", "")[:200]) as root:
                resp = await self._handle(request, request_id, root, over_limit=over)
                root.attributes["status"] = resp.status
                if resp.status >= 500:
                    root.status = "ERROR"
                return resp
        finally:
            self.inflight -= 1
            self.busy_at = time.monotonic()
            if self.per_client[addr] > 1:
                self.per_client[addr] -= 1
            else:
                del self.per_client[addr]

    async def _give_back_memory_when_idle(self) -> None:
        """A round of the memory trimmer: once a burst of requests is over (none in
        flight for IDLE_TRIM_S), give the heap's free pages back to the system, once:
        RSS returns to its baseline after, say, stalled uploads that timed out.

        A full garbage collection first (~15 ms): an aborted PUT leaves its
        stages' and fragment PUTs' tasks in reference cycles (each task's
        CancelledError holds its frames, which hold the ECWrite that holds the
        tasks), and with them the segments they were coding: ~2.5 MiB each,
        ~180 MiB after 70 stalled uploads. An idle process allocates nothing,
        so Python's collector, driven by allocations, would not run to free
        them (measured in docs/security.md, "Limits and timeouts")."""
        if (self.inflight == 0 and self.busy_at != self._trimmed_after
                and time.monotonic() - self.busy_at >= IDLE_TRIM_S):
            self._trimmed_after = self.busy_at
            gc.collect()                # on the loop: finalizers of asyncio objects must run here
            await asyncio.to_thread(give_back_memory)

    async def _handle(self, request: web.Request, request_id: str, root: Span,
                      over_limit: bool = False) -> web.StreamResponse:
        ctx = None
        try:
            if over_limit:
                raise E.SlowDown()
            raw_path, _, raw_query = request.raw_path.partition("?")
            try:
                target = route(request.headers.get("Host", ""), raw_path, self.topo.frontend.virtual_host_domains)
                pairs = parse_qsl(raw_query, keep_blank_values=True, errors="strict")
            except (UnicodeDecodeError, ValueError):
                raise E.InvalidURI("Couldn't parse the specified URI.")
            if request.method == "OPTIONS":          # a browser's CORS preflight: unsigned, by design
                return self._finish(request, request_id, None, await cors.preflight(self, target.bucket, request))
            headers = {k.lower(): v for k, v in request.headers.items()}
            await self.know(claimed_access_key(headers, pairs))
            sig_in = SigningInput(method=request.method, raw_path=raw_path, query=pairs, headers=headers,
                                  virtual_host_bucket=target.bucket if target.virtual_host else None)
            with TRACER.span("verify signature (SigV4)") as s:
                auth = verify(sig_in, self.secrets, dt.datetime.now(dt.timezone.utc))
                if s is not None:
                    s.attributes.update(mode=auth.mode, access_key=auth.access_key)
            root.attributes.update(bucket=target.bucket, key=target.key, access_key=auth.access_key,
                                   region=self.topo.region, signed_for=auth.region)
            ctx = Context(request, request_id, target, dict(pairs), auth, self, root=root)
            if auth.region and auth.region != self.topo.region:
                raise await self.buckets.misdirected(target, auth)
            from . import dispatch
            try:
                resp = await dispatch.dispatch(ctx)
            except E.NoSuchBucket as exc:
                # Not in this region: in another one (a redirect), or nowhere. (With
                # one region there is no other one to ask about.)
                if target.bucket is None or self.topo.world is None:
                    raise
                raise (await self.buckets.misdirected(target, auth)) or exc
        except E.S3Error as exc:
            root.attributes["code"] = exc.code
            if isinstance(exc, E.SignatureDoesNotMatch):
                # What the server computed (never a secret): what a client author needs.
                root.attributes.update({k: v for k, v in (exc.extra or {}).items()
                                        if k in ("CanonicalRequest", "StringToSign", "AWSAccessKeyId")})
            resp = error_response(exc, request_id, resource=(ctx.resource if ctx else request.path),
                                  head=request.method == "HEAD")
            if isinstance(exc, E.RequestTimeout):
                listener.close_when_answered(request, resp)    # a stalled body: closed, as S3 does
        except Exception:
            log.exception("unhandled error (request %s)", request_id)
            resp = error_response(E.InternalError(), request_id, resource=request.path,
                                  head=request.method == "HEAD")
        return self._finish(request, request_id, ctx, resp)

    def _finish(self, request: web.Request, request_id: str, ctx: Context | None,
                resp: web.StreamResponse) -> web.StreamResponse:
        """What every answer gets, error or not: its request id, the access log line and
        the request metrics."""
        if (not request.get("continued") and request.body_exists
                and request.headers.get("Expect", "").lower() == "100-continue"):
            # We never asked for the body; the client may send it anyway after
            # its wait. Close the connection so those bytes are not read as
            # the next request.
            resp.force_close()
        if not resp.prepared:
            resp.headers["x-amz-request-id"] = request_id
            resp.headers["x-amz-id-2"] = request_id
            resp.headers.setdefault("Server", "minis3")
        elapsed = time.monotonic() - (ctx.started if ctx else time.monotonic())
        access_log.info("%s %s %s %s %d %.1fms", request_id, request.method, request.path_qs[:200],
                        ctx.auth.access_key if ctx else "-", resp.status, elapsed * 1000)
        op = (ctx.operation if ctx else None) or NO_OPERATION
        REQUESTS.labels(request.method, str(resp.status), op).inc()
        LATENCY.labels(request.method, op).observe(elapsed)
        return resp

    def _own_path(self, request: web.Request) -> bool:
        """Is this ``/_minis3/…`` path the frontend's own, not a key of a virtual-hosted
        bucket? (No bucket name starts with ``_``, so a path-style one is never a key.)"""
        try:
            target = route(request.headers.get("Host", ""), request.raw_path.partition("?")[0],
                           self.topo.frontend.virtual_host_domains)
        except E.S3Error:
            return False
        return target is not None and not target.virtual_host

    async def health_probe(self, request: web.Request) -> web.StreamResponse:
        """``GET /_minis3/health``: 200 while this frontend's event loop answers. What
        `minis3 status`, `minis3 health` and the console probe, so that probing is not an
        S3 request refused (it never shows in ``minis3_requests``)."""
        if not self._own_path(request):
            return await self.handle(request)
        return web.Response(text="ok\n")

    async def metrics(self, request: web.Request) -> web.StreamResponse:
        """Prometheus text format: request counts and latency, and the
        process's own CPU seconds and resident memory (what `minis3 bench`
        samples to report the frontend's peak RSS, asking for just those two
        with ``?name[]=…``: the whole page costs ~10 ms to render). Unauthenticated, as a
        scrape endpoint usually is; it holds counts, never names or keys."""
        if not self._own_path(request):
            return await self.handle(request)        # e.g. a key named _minis3/metrics in a bucket
        names = request.query.getall("name[]", [])     # Prometheus' own filter parameter
        registry = prometheus_client.REGISTRY.restricted_registry(names) if names else prometheus_client.REGISTRY
        return web.Response(body=prometheus_client.generate_latest(registry),
                            headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST})


def error_response(exc: E.S3Error, request_id: str, *, resource: str, head: bool = False) -> web.Response:
    """The one place an S3 error becomes an HTTP response."""
    if exc.status == 304:
        resp = web.Response(status=304)
    else:
        body = b"" if head else s3xml.error_xml(exc.code, exc.message, resource=resource,
                                                 request_id=request_id, extra=exc.extra or None)
        resp = web.Response(status=exc.status, body=body,
                            content_type="application/xml" if not head else None)
    for k, v in exc.headers.items():
        resp.headers[k] = v
    return resp


async def _defer_continue(request: web.Request):
    """Don't answer ``Expect: 100-continue`` yet: a request refused on its
    headers (signature, bucket, conditions) must not make the client send its
    body. body.send_continue() answers it when the body is really wanted."""
    return None


async def _server_header(request: web.Request, resp: web.StreamResponse) -> None:
    resp.headers["Server"] = "minis3"


def make_app(topo: Topology, az: str | None = None) -> web.Application:
    fe = Frontend(topo, az)
    # No size limit here: bodies are streamed by the handlers, never read whole.
    # The head's limits are S3's (listener.PARSER_LIMITS), answered in S3's XML.
    app = web.Application(client_max_size=0, handler_args={**listener.PARSER_LIMITS, "read_bufsize": 1 << 20})
    listener.install(app, error_response)              # header timeout, per-address cap, S3 errors
    app.on_startup.append(fe.start)
    app.on_cleanup.append(fe.stop)
    app.on_response_prepare.append(_server_header)        # streamed responses too
    app.on_response_prepare.append(cors.add_headers)      # a browser's request: what CORS allows
    app.router.add_route("GET", METRICS_PATH, fe.metrics)
    app.router.add_route("GET", TRACE_PATH, fe.trace)
    app.router.add_route("GET", HEALTH_PATH, fe.health_probe)
    app.router.add_route("GET", CLOCK_PATH, fe.clock)
    app.router.add_route("POST", CLOCK_PATH, fe.clock)
    app.router.add_route("GET", FAILPOINTS_PATH, fe.failpoints)
    app.router.add_route("POST", FAILPOINTS_PATH, fe.failpoints)
    # [\s\S], not ".": a key may hold a newline (or any control character),
    # and "." would leave such a path to aiohttp's plain-text 404.
    app.router.add_route("*", r"/{tail:[\s\S]*}", fe.handle, expect_handler=_defer_continue)
    app["frontend"] = fe
    return app


def main(argv: list[str] | None = None) -> None:
    a, topo = process_args("minis3 frontend", argv,
                           lambda p: p.add_argument("--az", help="run this AZ's frontend (topology frontend.per_az)"))
    spec = topo.az_frontend(a.az) if a.az else topo.frontend
    name = f"frontend-{a.az}" if a.az else "frontend"
    begin(name, topo, log, trace_name=name)
    tuned = tune_malloc(one_arena=True)        # its idle trim gives back every thread's memory too
    loop = use_fast_event_loop()
    log.info("frontend on %s (%s, malloc tuned: %s, pid %d)", spec.url, loop, tuned, os.getpid())
    from ..config import tls                       # HTTPS: `minis3 up --tls` (config/tls.py)
    serve(make_app(topo, a.az), spec.host, spec.port, tls.server_context(topo) if spec.tls else None)
