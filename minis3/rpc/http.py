"""aiohttp glue shared by the internal services (I/O shell around rpc.auth)."""
from __future__ import annotations

import asyncio
import hashlib
import logging
import weakref

from aiohttp import web

from ..core.errors import S3Error
from . import auth, channel, clock, failpoints, listener

log = logging.getLogger(__name__)
#: An internal app's auth.Verifier (its replay guard and refusal counts).
VERIFIER = web.AppKey("verifier", auth.Verifier)


def auth_middleware(verifier: "auth.Verifier", open_paths: tuple[str, ...] = ("/health",),
                    sealed_paths: tuple[str, ...] = ()):
    """Refuse (403) every request not signed with the cluster secret (rpc.auth),
    except to ``open_paths``. A request with a body must name its SHA-256 and
    the body must match; ``sealed_paths`` (path prefixes of PUT handlers that
    check a sealed block stream themselves) may instead say ``sealed-blocks``."""
    @web.middleware
    async def mw(request: web.Request, handler):
        if request.path not in open_paths:
            why = await refusal(verifier, request, sealed_paths)
            if why is not None:
                return refused_response(request, why)
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except S3Error as exc:             # a definite answer in S3's terms
            return web.json_response({"code": exc.code, "message": exc.message}, status=exc.status)
        except Exception as exc:  # never a traceback on the wire
            log.exception("internal error in %s %s", request.method, request.path)
            return web.json_response({"code": "InternalError", "message": repr(exc)}, status=500)
    return mw


async def refusal(verifier: "auth.Verifier", request: web.Request, sealed_paths: tuple[str, ...] = ()) -> str | None:
    """Why this internal request is refused (its headers, then its body), or None."""
    digest = request.headers.get(auth.BODY_HEADER)
    why = verifier.refusal(request.method, request.raw_path, request.headers.get(auth.HEADER),
                           request.headers.get(auth.NONCE_HEADER), digest)
    if why is not None:
        return why
    if digest is None:
        if request.body_exists:               # a body nobody signed
            verifier.count("body")
            return "body"
    elif digest == auth.SEALED:
        if request.method != "PUT" or not any(request.path.startswith(p) for p in sealed_paths):
            verifier.count("body")
            return "body"
    elif hashlib.sha256(await request.read()).hexdigest() != digest:
        verifier.count("body")
        return "body"
    return None


def json_body(doc) -> dict:
    """The keyword arguments of a session request that sends ``doc`` as JSON
    with its SHA-256 (which the signature then covers: every internal body
    must be signed, see rpc/auth.py)."""
    from . import fastjson
    raw = fastjson.dumpb(doc)
    return {"data": raw, "headers": {"Content-Type": "application/json",
                                     auth.BODY_HEADER: hashlib.sha256(raw).hexdigest()}}


def refused_response(request: web.Request, why: str) -> web.Response:
    """The answer to an internal request ``refusal`` turned down (and its WARNING line)."""
    log.warning("refused internal %s %s from %s: %s", request.method, request.path, request.remote, why)
    return web.json_response({"code": "AccessDenied", "message": f"cluster signature: {why}"}, status=403)


class RefusedCollector:
    """``minis3_rpc_refused_total{reason}``: internal requests refused, by why
    (for a process's own Prometheus registry), summed over ``verifiers``."""

    def __init__(self, verifiers=()):
        self.verifiers = weakref.WeakSet(verifiers)

    def collect(self):
        from prometheus_client.core import CounterMetricFamily
        fam = CounterMetricFamily("minis3_rpc_refused", "Internal requests refused by the cluster "
                                  "authentication, by reason", labels=["reason"])
        for reason in auth.REASONS:
            fam.add_metric([reason], sum(v.refused[reason] for v in list(self.verifiers)))
        yield fam


_COLLECTORS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def count_refusals(registry, verifier: "auth.Verifier") -> None:
    """Show ``verifier``'s refusals in ``registry`` (one collector per
    registry, summing every verifier of the process: a test may run several
    apps of one kind in one process)."""
    collector = _COLLECTORS.get(registry)
    if collector is None:
        collector = _COLLECTORS[registry] = RefusedCollector()
        registry.register(collector)
    collector.verifiers.add(verifier)


def internal_app(secret: str, open_paths: tuple[str, ...] = ("/health", "/metrics"), *,
                 registry=None, sealed_paths: tuple[str, ...] = (), routes=(), on_startup=(), on_cleanup=(),
                 **kw) -> web.Application:
    """An internal service's aiohttp app: requests signed with the cluster
    secret (``open_paths`` excepted), spans recorded for requests that carry
    a trace (``traceparent``), and ``GET /trace`` for ``minis3 trace``; the
    service's own ``routes`` (``web.get(...)``...) and its start and stop hooks;
    ``GET``/``POST /failpoints`` to see and arm this process's failpoints
    (rpc/failpoints.py) and ``GET``/``POST /clock`` its clock offset
    (rpc/clock.py), signed like every route.
    Refusals are counted in ``registry`` (a prometheus CollectorRegistry);
    the verifier is ``app[VERIFIER]``."""
    from . import tracing
    verifier = auth.Verifier(secret)
    if registry is not None:
        count_refusals(registry, verifier)
    app = web.Application(middlewares=[auth_middleware(verifier, open_paths=open_paths, sealed_paths=sealed_paths),
                                       tracing.middleware()], **kw)
    app[VERIFIER] = verifier
    app.router.add_get("/trace", tracing.trace_handler)
    app.router.add_get("/failpoints", failpoints_get)
    app.router.add_post("/failpoints", failpoints_post)
    app.router.add_get("/clock", clock.clock_get)          # the clock offset (rpc/clock.py)
    app.router.add_post("/clock", clock.clock_post)
    app.router.add_routes(routes)
    app.on_startup.extend(on_startup)
    app.on_cleanup.extend(on_cleanup)
    listener.install(app)              # the request-head timeout and per-address cap (plain-text errors)
    return app


async def failpoints_get(request: web.Request) -> web.Response:
    """Every failpoint of this process: what it means, how it is armed, how often it fired."""
    return web.json_response(failpoints.status())


async def failpoints_post(request: web.Request) -> web.Response:
    """Arm failpoints in this process: body ``{"spec": SPEC, "replace": false}``
    (core/failpoints.py has the language; ``replace`` disarms every point the
    spec does not name), and/or set its disk faults: ``{"disk": {"full": true,
    "errors": 0.1, "slow_ms": 200}}`` (the keys given change, the others stay;
    ``{"disk": null}`` heals the disk). Answers as GET does; 400 for a spec or a
    fault that does not parse (nothing changes then)."""
    try:
        doc = await request.json()
        if not isinstance(doc, dict) or not isinstance(doc.get("spec", ""), str) \
                or not isinstance(doc.get("disk") or {}, dict):
            raise ValueError('expected {"spec": "NAME=ACTION;...", "replace": false} or {"disk": {...}}')
        if "disk" in doc:
            faults = doc["disk"]
            failpoints.set_disk(faults, replace=faults is None)
        if "spec" in doc or doc.get("replace"):
            failpoints.arm(doc.get("spec", ""), replace=bool(doc.get("replace")))
    except ValueError as exc:              # bad JSON, or core.FailpointSpecError
        return web.json_response({"code": "InvalidFailpointSpec", "message": str(exc)}, status=400)
    return web.json_response(failpoints.status())


def client_session(secret: str, *, limit_per_host: int = 64, timeout_s: float = 60.0,
                   source_host: str | None = None, delay=None, peer_names: dict | None = None):
    """A pooled keep-alive client session that signs every request.

    ``source_host``: the address outgoing connections come from. A process in
    an AZ sends from its AZ's own address, so that cutting the AZ off
    (``minis3 chaos partition-az``, which drops packets to and from that
    address) cuts its outgoing traffic too; without it Linux would send from
    127.0.0.1. ``delay``: an :class:`minis3.rpc.delay.InterAZDelay`, slept
    before each request that crosses a delayed AZ's boundary. Calls made
    inside a trace record a client span (``peer_names``: (host, port) → the
    process's name, for the spans) and pass the trace on.
    """
    import aiohttp
    from . import fastjson, tracing

    async def on_request_start(session, ctx, params):
        u = params.url
        path_qs = u.raw_path + (("?" + u.raw_query_string) if u.raw_query_string else "")
        nonce = auth.new_nonce()
        params.headers[auth.NONCE_HEADER] = nonce
        params.headers[auth.HEADER] = auth.sign(secret, params.method, path_qs, nonce,
                                                body_sha256=params.headers.get(auth.BODY_HEADER))
        if isinstance(ctx.trace_request_ctx, auth.Seal):     # a sealed fragment body (storage/client.py)
            ctx.trace_request_ctx.arm(secret, nonce)
        if delay is not None:
            wait = delay.seconds(u.host, u.port)
            if wait:
                await asyncio.sleep(wait)

    trace = aiohttp.TraceConfig()
    on_start, on_end, on_exception = tracing.client_hooks(peer_names)
    trace.on_request_start.append(on_start)          # (traceparent is not part of the cluster signature)
    trace.on_request_start.append(on_request_start)
    trace.on_request_end.append(on_end)
    trace.on_request_exception.append(on_exception)
    conn = aiohttp.TCPConnector(limit=0, limit_per_host=limit_per_host, keepalive_timeout=30,
                                local_addr=(source_host, 0) if source_host else None)
    session = aiohttp.ClientSession(connector=conn, trace_configs=[trace], json_serialize=fastjson.dumps,
                                    timeout=aiohttp.ClientTimeout(total=None, sock_connect=2, sock_read=timeout_s),
                                    auto_decompress=False, read_bufsize=1 << 20)
    channel.register_session(session, secret, delay, timeout_s)      # its channels sign and wait as it does
    return session


def use_fast_event_loop() -> str:
    """Run this process on uvloop (libuv) when it is installed: its socket
    transports cost far less CPU per byte and per request than asyncio's
    selector loop. Returns the loop's name, for the start-up log line."""
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"
