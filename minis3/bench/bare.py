"""Bare aiohttp servers: the most Python's HTTP stack can do on this machine.

Origin (``python -m minis3.bench.bare PORT``): ``GET /`` answers 200 with no
body; ``GET /stream/N`` sends N bytes; ``PUT /sink`` reads the body and drops it.

Relay (``python -m minis3.bench.bare PORT --relay P1,P2,…[/K]``): the same
routes, but every byte crosses a second hop, as it does in minis3 (client ⇄
frontend ⇄ storage nodes), with none of minis3's work on it: no signature,
no hash, no erasure code, no disk. ``GET /stream/N`` reads N/K bytes from each
of the first K origins, a 1 MiB segment's K pieces at a time, and sends them
on in order; ``PUT /sink`` cuts the body into 1 MiB segments and sends K
pieces and len(origins)−K "parity" pieces (copies: no encode) a segment to the
origins' sinks, six streams for 4+2. So the relay's MB/s is the ceiling of a
two-hop design on this machine, before any of the work an object store must
do on the bytes. No storage: the benchmark drives it with the same client as
the S3 workloads, so the ratio of the two is what minis3's own work costs.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import time

import aiohttp
from aiohttp import web

from ..rpc.http import use_fast_event_loop

_BUF = b"\0" * (1 << 20)
SEGMENT = 1 << 20


def wait_port(port: int, timeout: float = 30) -> None:
    """Block until a server listens on 127.0.0.1:``port`` (TimeoutError after ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port}")


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


class Relay:
    """The second hop: fan a download in from K origins, an upload out to all."""

    def __init__(self, origins: list[int], k: int):
        self.origins, self.k = origins, k
        self.piece = SEGMENT // k
        self.session: aiohttp.ClientSession | None = None

    async def start(self, app: web.Application) -> None:
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), read_bufsize=1 << 20)

    async def stop(self, app: web.Application) -> None:
        await self.session.close()

    async def stream(self, request: web.Request) -> web.StreamResponse:
        n = int(request.match_info["n"]) // SEGMENT * SEGMENT
        resp = web.StreamResponse(headers={"Content-Length": str(n)})
        await resp.prepare(request)
        share = n // self.k
        origins = [await self.session.get(f"http://127.0.0.1:{p}/stream/{share}") for p in self.origins[:self.k]]
        try:
            for _ in range(n // SEGMENT):
                for o in origins:
                    await resp.write(await o.content.readexactly(self.piece))
        finally:
            for o in origins:
                o.release()
        return resp

    async def sink(self, request: web.Request) -> web.Response:
        queues = [asyncio.Queue(4) for _ in self.origins]

        async def body(q: asyncio.Queue):
            while (piece := await q.get()) is not None:
                yield piece

        async def upload(port: int, q: asyncio.Queue) -> None:
            async with self.session.put(f"http://127.0.0.1:{port}/sink", data=body(q)) as r:
                r.raise_for_status()

        uploads = [asyncio.ensure_future(upload(p, q)) for p, q in zip(self.origins, queues)]
        try:
            while True:
                try:
                    segment = await request.content.readexactly(SEGMENT)
                except asyncio.IncompleteReadError as e:
                    segment = e.partial
                if not segment:
                    break
                pieces = [segment[i:i + self.piece] for i in range(0, len(segment), self.piece)]
                for i, q in enumerate(queues):
                    await q.put(pieces[i] if i < len(pieces) else pieces[0])
                if len(segment) < SEGMENT:
                    break
            for q in queues:
                await q.put(None)
            await asyncio.gather(*uploads)
        finally:
            for u in uploads:
                u.cancel()
        return web.Response()


def make_app(relay: Relay | None = None) -> web.Application:
    app = web.Application(client_max_size=0)
    app.router.add_get("/", ok)
    app.router.add_get("/stream/{n:[0-9]+}", relay.stream if relay else stream)
    app.router.add_put("/sink", relay.sink if relay else sink)
    if relay:
        app.on_startup.append(relay.start)
        app.on_cleanup.append(relay.stop)
    return app


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m minis3.bench.bare")
    p.add_argument("port", type=int)
    p.add_argument("--relay", metavar="P1,P2,…[/K]", help="relay to these origin ports, reading from the first K")
    a = p.parse_args(argv)
    relay = None
    if a.relay:
        ports, _, k = a.relay.partition("/")
        origins = [int(x) for x in ports.split(",")]
        relay = Relay(origins, int(k) if k else len(origins))
    use_fast_event_loop()        # as minis3's own processes do
    web.run_app(make_app(relay), host="127.0.0.1", port=a.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
