"""``minis3 dns``: the authoritative DNS server of a topology with several regions.

Started by ``minis3 up`` when the topology has a ``[dns]`` table. It answers
on UDP at ``dns.host:dns.port`` (``dig @127.0.0.1 -p 9053 s3.eu-west-1.minis3.test``),
and serves ``/health``, ``/metrics`` and ``/answers`` (its recent answers,
signed with the cluster secret, for ``minis3 trace``) over HTTP one port up.
Where a bucket lives it asks the bucket registry: the global region's
metadata service, with a quorum read, as a frontend does.
"""
from __future__ import annotations

import logging

import prometheus_client
from aiohttp import web

from .. import config
from ..meta.client import MetaClient
from ..rpc.http import client_session, internal_app
from ..rpc.process import begin, process_args, serve
from .names import Zone
from .server import DNSResolver, http_routes, serve_udp

log = logging.getLogger("minis3.dns")


def make_app(topo: config.Topology) -> web.Application:
    world = topo.world
    zone = Zone(world.dns.domain, {r.region: r.frontend.host for r in world.regions}, world.global_region)
    app = internal_app(topo.cluster_secret, registry=prometheus_client.REGISTRY)
    state: dict = {}

    async def lookup(bucket: str) -> str | None:
        # No quorum of the registry raises: the resolver answers SERVFAIL, never a guess.
        rec = await state["registry"].bucket_record(bucket)
        return rec.get("region", world.global_region) if rec else None

    resolver = DNSResolver(zone, lookup, ttl=world.dns.ttl)

    async def start(app: web.Application) -> None:
        state["session"] = client_session(topo.cluster_secret, timeout_s=5)
        state["registry"] = MetaClient.for_topology(state["session"], world.region(world.global_region))
        state["udp"] = await serve_udp(resolver, world.dns.host, world.dns.port)

    async def stop(app: web.Application) -> None:
        if "udp" in state:
            state["udp"].close()
        if "session" in state:
            await state["session"].close()

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "zone": zone.domain, "regions": zone.regions})

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=prometheus_client.generate_latest(),
                            headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST})

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    http_routes(app, resolver)
    return app


def main(argv: list[str] | None = None) -> None:
    _, topo = process_args("minis3 dns", argv)
    if topo.world is None or topo.world.dns is None:
        raise SystemExit("minis3 dns: the topology has no [dns] table (one region needs no DNS server)")
    begin("dns", topo, log)
    d = topo.world.dns
    log.info("DNS for %s on %s:%d (udp), http on %s", d.domain, d.host, d.port, d.url)
    serve(make_app(topo), d.host, d.port + 1)
