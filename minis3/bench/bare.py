"""A bare aiohttp server: the most a Python HTTP server can do on this machine.

``GET /`` answers 200 with no body; ``GET /stream/N`` sends N bytes;
``PUT /sink`` reads the body and drops it. No signature check, no storage:
the benchmark drives it with the same client and concurrency as the S3
workloads, so the ratio of the two is what minis3's own work costs.
Run: ``python -m minis3.bench.bare PORT``.
"""
from __future__ import annotations

import sys

from aiohttp import web

_BUF = b"\0" * (1 << 20)


async def ok(request: web.Request) -> web.Response:
    return web.Response()


async def stream(request: web.Request) -> web.StreamResponse:
    n = int(request.match_info["n"])
    resp = web.StreamResponse(headers={"Content-Length": str(n)})
    await resp.prepare(request)
    while n > 0:
        chunk = _BUF[:min(n, len(_BUF))]
        await resp.write(chunk)
        n -= len(chunk)
    return resp


async def sink(request: web.Request) -> web.Response:
    async for _ in request.content.iter_chunked(1 << 20):
        pass
    return web.Response()


def make_app() -> web.Application:
    app = web.Application(client_max_size=0)
    app.router.add_get("/", ok)
    app.router.add_get("/stream/{n:[0-9]+}", stream)
    app.router.add_put("/sink", sink)
    return app


if __name__ == "__main__":
    web.run_app(make_app(), host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
