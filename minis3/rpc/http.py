"""aiohttp glue shared by the internal services (I/O shell around rpc.auth)."""
from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from ..core.errors import S3Error
from . import auth

log = logging.getLogger(__name__)


def auth_middleware(secret: str, open_paths: tuple[str, ...] = ("/health",)):
    @web.middleware
    async def mw(request: web.Request, handler):
        if request.path not in open_paths and not auth.check(
                secret, request.method, request.raw_path, request.headers.get(auth.HEADER),
                body_sha256=request.headers.get(auth.BODY_HEADER)):
            return web.json_response({"code": "AccessDenied", "message": "bad cluster signature"}, status=403)
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


def internal_app(secret: str, open_paths: tuple[str, ...] = ("/health", "/metrics"), **kw) -> web.Application:
    """An internal service's aiohttp app: requests signed with the cluster
    secret (``open_paths`` excepted), spans recorded for requests that carry
    a trace (``traceparent``), and ``GET /trace`` for ``minis3 trace``."""
    from . import tracing
    app = web.Application(middlewares=[auth_middleware(secret, open_paths=open_paths), tracing.middleware()], **kw)
    app.router.add_get("/trace", tracing.trace_handler)
    return app


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
        params.headers[auth.HEADER] = auth.sign(secret, params.method, path_qs,
                                                body_sha256=params.headers.get(auth.BODY_HEADER))
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
    return aiohttp.ClientSession(connector=conn, trace_configs=[trace], json_serialize=fastjson.dumps,
                                 timeout=aiohttp.ClientTimeout(total=None, sock_connect=2, sock_read=timeout_s),
                                 auto_decompress=False, read_bufsize=1 << 20)


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
