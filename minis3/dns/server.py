"""minis3's authoritative DNS server: tells clients which region's frontend to talk to.

``dns/names.py`` decides what a name means; this module is the I/O around it.
A query's life: ``parse`` (dnslib reads the wire format; nothing else of dnslib
is used) → ``classify`` the name → find the region (for a global
virtual-hosted bucket name, ask ``lookup`` where the bucket lives) → build the
reply → ``record`` it. The socket is an asyncio ``DatagramProtocol`` on UDP;
every datagram is answered in its own task, so a slow bucket lookup holds up
only its own query.

The answers follow S3's DNS: every name of the zone gets the AA flag (we are
its authority); a bucket that does not exist still resolves (to the global
region), because S3 never tells DNS which buckets exist; an A query for a name
that exists gets its address and any other type gets NODATA (NOERROR, no
answer), so a client asking AAAA then A works; a name in the zone that means
nothing is NXDOMAIN; a name outside it is REFUSED. Negative answers carry the
zone's SOA, whose last field tells resolvers how long to cache them.
"""
from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections import deque
from typing import Awaitable, Callable

import prometheus_client
from dnslib import A, NS, OPCODE, QTYPE, RCODE, RR, SOA, DNSBuffer, DNSHeader, DNSLabel, DNSRecord

from minis3.dns.names import Name, Zone, classify, normalise

log = logging.getLogger(__name__)

QUERIES = prometheus_client.Counter("minis3_dns_queries", "DNS queries answered, by the kind of name and the rcode",
                                    ["kind", "rcode"])


class LookupFailed(Exception):
    """The bucket's region could not be found: the query is answered SERVFAIL."""


class DNSResolver:
    """Answers DNS query packets for ``zone``.

    ``lookup(bucket)`` returns the region a bucket lives in, or None if there
    is no such bucket. At most ``max_lookups`` run at once and each may take
    ``lookup_timeout`` seconds; beyond either, or if it raises, the query gets
    SERVFAIL (a resolver retries) rather than a wrong address.
    """
    lookup_timeout = 2.0
    max_lookups = 64
    history = 2000            # answers kept for ``answers()``

    def __init__(self, zone: Zone, lookup: Callable[[str], Awaitable[str | None]], ttl: int = 5) -> None:
        self.zone, self.lookup, self.ttl = zone, lookup, ttl
        self.lookups_in_flight = 0
        self.ring: deque[dict] = deque(maxlen=self.history)
        self.ns_name = "ns." + zone.domain

    async def answer(self, packet: bytes, client: tuple[str, int]) -> bytes | None:
        """The reply to one query packet, or None if no reply should be sent."""
        arrived_ms, started = time.time() * 1000, time.perf_counter()
        try:
            request = DNSRecord.parse(packet)
        except Exception:                     # not DNS: FORMERR if we can say to whom, else silence
            return self.malformed(packet, arrived_ms, started, client)
        if request.header.qr:                 # a response, not a query: answering could start a loop
            return None
        if len(request.questions) != 1:
            return self.malformed(packet, arrived_ms, started, client)
        q = request.questions[0]
        name = classify(str(q.qname), self.zone)
        reply = DNSRecord(DNSHeader(id=request.header.id, opcode=request.header.opcode, qr=1, aa=1, ra=0,
                                    rd=request.header.rd), q=q)
        region, address = name.region, None
        if request.header.opcode != OPCODE.QUERY:    # not NOTIFY, UPDATE, ...
            reply.header.rcode = RCODE.NOTIMP
        elif name.kind == "outside":
            reply.header.rcode = RCODE.REFUSED
        elif name.kind == "nxdomain":
            reply.header.rcode = RCODE.NXDOMAIN
        elif name.kind == "apex" and q.qtype in (QTYPE.SOA, QTYPE.NS):
            reply.add_answer(self.soa() if q.qtype == QTYPE.SOA else self.ns())
        elif name.kind != "apex" and q.qtype == QTYPE.A:
            try:
                region = await self.bucket_region(name.bucket) if name.kind == "bucket" else name.region
                address = self.zone.regions[region]
                reply.add_answer(RR(q.qname, QTYPE.A, rdata=A(address), ttl=self.ttl))
            except LookupFailed as e:
                log.warning("SERVFAIL for %s: %s", q.qname, e)
                reply.header.rcode = RCODE.SERVFAIL
        if not reply.rr and reply.header.rcode in (RCODE.NOERROR, RCODE.NXDOMAIN):
            reply.add_auth(self.soa())        # NODATA and NXDOMAIN: the SOA says how long to cache "no"
        self.record(arrived_ms, started, client, str(q.qname), QTYPE[q.qtype], reply.header.rcode, address,
                    name, region)
        return reply.pack()

    async def bucket_region(self, bucket: str) -> str:
        """The region whose frontend serves ``bucket``: where it lives, or the
        global region if it does not exist (S3's global endpoint then answers
        NoSuchBucket itself)."""
        if self.lookups_in_flight >= self.max_lookups:
            raise LookupFailed(f"{self.lookups_in_flight} lookups already in flight")
        self.lookups_in_flight += 1
        try:
            region = await asyncio.wait_for(self.lookup(bucket), self.lookup_timeout)
        except Exception as e:                # TimeoutError included
            raise LookupFailed(f"lookup of bucket {bucket!r} failed: {e!r}") from e
        finally:
            self.lookups_in_flight -= 1
        if region is None:
            return self.zone.global_region
        if region not in self.zone.regions:
            raise LookupFailed(f"bucket {bucket!r} is in region {region!r}, which this zone does not know")
        return region

    def soa(self) -> RR:
        """The zone's SOA record. The serial never changes (the zone's records
        are computed, never transferred); the last field, the negative-caching
        TTL, is kept as short as the answers' TTL."""
        t = self.ttl
        return RR(self.zone.domain, QTYPE.SOA, ttl=t,
                  rdata=SOA(self.ns_name, "hostmaster." + self.zone.domain, (1, 3600, 600, 86400, t)))

    def ns(self) -> RR:
        return RR(self.zone.domain, QTYPE.NS, ttl=self.ttl, rdata=NS(DNSLabel(self.ns_name)))

    def malformed(self, packet: bytes, arrived_ms: float, started: float, client: tuple[str, int]) -> bytes | None:
        """FORMERR for a packet whose 12-byte header reads but whose rest does not;
        None (drop it) if not even the header reads or it is itself a response."""
        try:
            header = DNSHeader.parse(DNSBuffer(packet))
        except Exception:
            return None
        if header.qr:
            return None
        reply = DNSRecord(DNSHeader(id=header.id, opcode=header.opcode, qr=1, aa=1, ra=0, rcode=RCODE.FORMERR))
        self.record(arrived_ms, started, client, "", None, RCODE.FORMERR, None, Name("malformed"), None)
        return reply.pack()

    def record(self, arrived_ms: float, started: float, client: tuple[str, int], qname: str, qtype: str | None,
               rcode: int, address: str | None, name: Name, region: str | None) -> None:
        """Keep one answer in the ring (the last ``history``) and count it.
        ``region`` is the region whose address was given (for an unknown bucket, the global one)."""
        self.ring.append({
            "t_ms": arrived_ms, "duration_ms": (time.perf_counter() - started) * 1000,
            "name": normalise(qname), "qtype": qtype, "rcode": RCODE[rcode], "answer": address,
            "kind": name.kind, "region": region, "bucket": name.bucket,
            "client": f"{client[0]}:{client[1]}"})
        QUERIES.labels(name.kind, RCODE[rcode]).inc()

    def answers(self, name: str | None = None, before_ms: float | None = None, limit: int = 50) -> list[dict]:
        """The newest ``limit`` answers (newest first), for ``name`` if given, that
        arrived before ``before_ms`` if given (to page back: pass the last one's t_ms).
        Sorted by arrival, not by completion: a slow lookup finishes after later queries."""
        want = normalise(name) if name else None
        matching = (r for r in self.ring
                    if (want is None or r["name"] == want) and (before_ms is None or r["t_ms"] < before_ms))
        return [dict(r) for r in heapq.nlargest(limit, matching, key=lambda r: r["t_ms"])]


class _DNSProtocol(asyncio.DatagramProtocol):
    """The UDP socket: one task per datagram, the reply sent back to where it came from."""

    def __init__(self, resolver: DNSResolver) -> None:
        self.resolver = resolver
        self.transport: asyncio.DatagramTransport | None = None
        self.tasks: set[asyncio.Task] = set()       # held so a running answer is not garbage-collected

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        task = asyncio.get_running_loop().create_task(self.reply(data, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def reply(self, data: bytes, addr) -> None:
        try:
            out = await self.resolver.answer(data, addr)
        except Exception:                             # a bug: log it, keep serving everyone else
            log.exception("DNS query from %s failed", addr)
            return
        if out is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(out, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("DNS socket error (a client gone away?): %r", exc)


async def serve_udp(resolver: DNSResolver, host: str, port: int) -> asyncio.DatagramTransport:
    """Answer DNS over UDP on ``host:port`` (port 0: any free port; read it with
    ``transport.get_extra_info("sockname")``). Close the transport to stop."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: _DNSProtocol(resolver), local_addr=(host, port))
    return transport


def http_routes(app, resolver: DNSResolver) -> None:
    """Add ``GET /answers?name=&before_ms=&limit=`` (the recent answers, JSON, newest
    first) to an aiohttp ``app``. aiohttp is imported here, in the HTTP shell only."""
    from aiohttp import web

    async def answers(request: web.Request) -> web.Response:
        q = request.query
        try:
            limit = max(1, min(int(q.get("limit", "50")), resolver.history))
            before_ms = float(q["before_ms"]) if q.get("before_ms") else None
        except ValueError:
            raise web.HTTPBadRequest(text="limit must be an integer and before_ms a number") from None
        return web.json_response(resolver.answers(q.get("name") or None, before_ms, limit))

    app.router.add_get("/answers", answers)
