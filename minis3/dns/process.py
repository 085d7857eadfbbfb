"""``minis3 dns``: the authoritative DNS server of a topology with several regions.

Started by ``minis3 up`` when the topology has a ``[dns]`` table. It answers
on UDP at ``dns.host:dns.port`` (``dig @127.0.0.1 -p 9053 s3.eu-west-1.minis3.test``),
and serves ``/health``, ``/metrics`` and ``/answers`` (its recent answers,
signed with the cluster secret, for ``minis3 trace``) over HTTP one port up.
Where a bucket lives it asks the bucket registry: the global region's
metadata service, with a quorum read, as a frontend does.
"""
from __future__ import annotations

import argparse
import logging

import prometheus_client
from aiohttp import web

from .. import config
from ..meta.client import MetaClient
from ..rpc.http import client_session, internal_app
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
    from ..rpc.logs import setup_logging
    p = argparse.ArgumentParser(prog="minis3 dns")
    config.add_arguments(p)
    a = p.parse_args(argv)
    topo = config.from_args(a)
    if topo.world is None or topo.world.dns is None:
        p.error("the topology has no [dns] table (one region needs no DNS server)")
    setup_logging("dns")
    d = topo.world.dns
    log.info("DNS for %s on %s:%d (udp), http on %s", d.domain, d.host, d.port, d.url)
    web.run_app(make_app(topo), host=d.host, port=d.port + 1, print=None, access_log=None, handle_signals=True)
