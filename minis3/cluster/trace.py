"""`minis3 trace`: one request's journey through the processes, as a waterfall.

    minis3 trace REQUEST_ID        the spans of one request (its x-amz-request-id)
    minis3 trace --last            the frontend's most recent request
    minis3 trace --follow          each request as it finishes (Ctrl-C to stop)

Every process keeps its recent spans in memory (``minis3/rpc/tracing.py``);
this asks each of them for one trace's spans (frontends at
``/_minis3/trace``, the others at ``/trace``, signed with the cluster secret)
and draws them with :func:`minis3.core.trace.waterfall`.
"""
from __future__ import annotations

import asyncio
import json
import sys

import aiohttp

from ..core.trace import Span, new_span_id, request_id_of, trace_id_of, waterfall
from ..frontend.routing import split_host
from ..rpc.http import client_session
from ..config import tls
from ..config import Topology

FOLLOW_EVERY_S = 0.5
SETTLE_S = 0.3            # a finished request's last spans (background replica writes) arrive a little later


def _endpoints(topo: Topology) -> list[str]:
    return ([f.url + "/_minis3/trace" for f in topo.frontends]
            + [n.url + "/trace" for n in topo.nodes] + [m.url + "/trace" for m in topo.all_metas]
            + [topo.scrub.url + "/trace"])


async def _get(session: aiohttp.ClientSession, url: str, params: dict, ssl=True) -> dict | None:
    """``ssl``: what an https url's certificate is checked against (a frontend's, with --tls: tls.client_context)."""
    try:
        async with session.get(url, params=params, timeout=aiohttp.ClientTimeout(total=3), ssl=ssl) as r:
            return await r.json() if r.status == 200 else None
    except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
        return None


async def gather_spans(topo: Topology, request_id: str, session: aiohttp.ClientSession | None = None) -> list[Span]:
    """Every process's spans of one request."""
    own = session is None
    session = session or client_session(topo.cluster_secret, timeout_s=5)
    try:
        tid = trace_id_of(request_id) if len(request_id) <= 16 else request_id.lower()
        ctx = tls.client_context(topo) or True
        got = await asyncio.gather(*(_get(session, u, {"id": tid}, ctx) for u in _endpoints(topo)))
        spans = [Span.from_doc(d) for body in got if body for d in body.get("spans", [])]
        dns = await dns_span(topo, spans, session)
    finally:
        if own:
            await session.close()
    return ([dns] if dns else []) + spans


async def dns_span(topo: Topology, spans: list[Span], session: aiohttp.ClientSession) -> Span | None:
    """The DNS answer the client used, when it reached the frontend through a
    name of minis3's DNS zone: the DNS server's last answer for the request's
    Host before the request began (a client caches it for the TTL, so that
    answer may be seconds older than the request). As a span of the trace."""
    if topo.world is None or topo.world.dns is None:
        return None
    root = next((s for s in spans if s.parent_span_id is None and s.attributes.get("host")), None)
    if root is None:
        return None
    name = split_host(root.attributes["host"])
    zone = topo.world.dns.domain
    if not (name == zone or name.endswith("." + zone)):
        return None                         # the client used an address, not DNS
    got = await _get(session, topo.world.dns.url + "/answers",
                     {"name": name, "before_ms": root.start_ns / 1e6, "limit": 1})
    if not got:
        return None
    a = got[0]
    start = int(a["t_ms"] * 1e6)
    return Span(trace_id=root.trace_id, span_id=new_span_id(), parent_span_id=None,
                name=f"DNS {a.get('qtype') or 'A'} {name} → {a.get('answer') or a.get('rcode')}", service="dns",
                start_ns=start, end_ns=start + int(a.get("duration_ms", 0) * 1e6),
                attributes={**{k: a.get(k) for k in ("answer", "rcode", "kind", "region", "bucket", "client")},
                            "ttl_s": topo.world.dns.ttl},
                status="OK" if a.get("rcode") == "NOERROR" else "ERROR")


async def recent(topo: Topology, n: int = 20, session: aiohttp.ClientSession | None = None) -> list[dict]:
    """The frontends' latest finished requests, oldest first."""
    own = session is None
    session = session or client_session(topo.cluster_secret, timeout_s=5)
    try:
        ctx = tls.client_context(topo) or True
        got = await asyncio.gather(*(_get(session, f.url + "/_minis3/trace", {"recent": n}, ctx)
                                     for f in topo.frontends))
    finally:
        if own:
            await session.close()
    out = [dict(r, frontend=body["service"]) for body in got if body for r in body.get("recent", [])]
    return sorted(out, key=lambda r: r["start_ns"])[-n:]


def _print(spans: list[Span], as_json: bool, out=sys.stdout) -> None:
    if as_json:
        print(json.dumps([s.doc() for s in spans]), file=out, flush=True)
        return
    if spans and spans[0].service == "dns":
        # Shown on a line of its own: it may be seconds before the request (the
        # client reuses an answer for its TTL), which would squash the waterfall.
        d, spans = spans[0], spans[1:]
        first = min((s.start_ns for s in spans), default=d.start_ns)
        a, age_ms = d.attributes, (first - d.start_ns) / 1e6
        stale = (f"; older than its {a['ttl_s']} s TTL: the client may have kept a connection open since, "
                 f"or not asked DNS at all" if a.get("ttl_s") is not None and age_ms > a["ttl_s"] * 1000 else "")
        print(f"DNS  {d.name}  (region {a.get('region')}; answered by minis3 dns in {d.duration_ms:.2f} ms, "
              f"{age_ms:.1f} ms before the request reached the frontend{stale})", file=out)
    for line in waterfall(spans):
        print(line, file=out)
    root = next((s for s in spans if s.parent_span_id is None), None)
    if root is not None and "StringToSign" in root.attributes:
        print("\nthe signature did not match. What the server computed (compare with your client's):", file=out)
        print("canonical request:\n" + root.attributes.get("CanonicalRequest", "(not available)"), file=out)
        print("string to sign:\n" + root.attributes["StringToSign"], file=out)
    decided = [s.attributes for s in spans if s.name == "authorize"]
    if decided or (root is not None and "authorize" in root.attributes):
        print("\nwho may do what (frontend/authorize.py):", file=out)
    for a in decided:
        what = f"{a.get('action')} on {a.get('resource')}" if a.get("action") else "the request"
        print(f"  {a.get('decision', '?').upper()}: {what} for {a.get('principal')}, by {a.get('by')}", file=out)
    if not decided and root is not None and "authorize" in root.attributes:     # a request not sampled
        print(f"  {root.attributes['authorize']}", file=out)
    print(file=out, flush=True)


async def run(topo: Topology, request_id: str | None, last: bool, follow: bool, as_json: bool) -> int:
    session = client_session(topo.cluster_secret, timeout_s=5)
    try:
        if follow:
            seen: set[str] = {r["trace_id"] for r in await recent(topo, 200, session)}
            while True:
                await asyncio.sleep(FOLLOW_EVERY_S)
                new = [r for r in await recent(topo, 200, session) if r["trace_id"] not in seen]
                if new:
                    await asyncio.sleep(SETTLE_S)
                for r in new:
                    seen.add(r["trace_id"])
                    _print(await gather_spans(topo, r["trace_id"], session), as_json)
        if last:
            rs = await recent(topo, 1, session)
            if not rs:
                print("no request recorded yet (the frontend keeps its latest 200)", file=sys.stderr)
                return 1
            request_id = request_id_of(rs[-1]["trace_id"])
        spans = await gather_spans(topo, request_id, session)
        if not spans:
            print(f"no spans for request {request_id}: the processes keep only their recent traces "
                  f"(or it went to another frontend)", file=sys.stderr)
            return 1
        _print(spans, as_json)
        if any(s.parent_span_id is None and s.attributes.get("sampled") is False for s in spans):
            print(f"request {request_id} has only its frontend span: the frontend traces at most "
                  f"MINIS3_TRACE_RATE requests a second fully (default 20), and every request for a minute "
                  f"after anyone looks (this command did: repeat the request to see all its steps)",
                  file=sys.stderr)
        return 0
    finally:
        await session.close()


def main(topo: Topology, request_id: str | None, last: bool, follow: bool, as_json: bool) -> int:
    if not (request_id or last or follow):
        print("minis3 trace: give a REQUEST_ID, --last or --follow", file=sys.stderr)
        return 2
    try:
        return asyncio.run(run(topo, request_id, last, follow, as_json))
    except KeyboardInterrupt:
        return 0

