"""The DNS server (minis3/dns/server.py) on a real UDP socket, asked by dnspython:
an independent implementation of the wire format, so a mistake in ours shows."""
from __future__ import annotations

import asyncio
import socket
import struct
import time
from types import SimpleNamespace

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import prometheus_client
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from minis3.dns.names import Zone
from minis3.dns.server import DNSResolver, http_routes, serve_udp

ZONE = Zone("minis3.test", {"us-east-1": "127.0.0.2", "eu-west-1": "127.0.0.3"}, "us-east-1")
GLOBAL, EU = "127.0.0.2", "127.0.0.3"


class Buckets(dict):
    """bucket → region, as the metadata service would say; a value may instead be an
    exception (the lookup raises it) or an asyncio.Event (the lookup waits for it)."""
    calls = 0

    async def lookup(self, bucket: str) -> str | None:
        self.calls += 1
        where = self.get(bucket)
        if isinstance(where, Exception):
            raise where
        if isinstance(where, asyncio.Event):
            await where.wait()
            return "eu-west-1"
        return where


@pytest.fixture
async def server():
    buckets = Buckets(photos="eu-west-1", archive="us-east-1")
    resolver = DNSResolver(ZONE, buckets.lookup)
    transport = await serve_udp(resolver, "127.0.0.1", 0)
    yield SimpleNamespace(resolver=resolver, buckets=buckets, port=transport.get_extra_info("sockname")[1])
    transport.close()


async def ask(server, name: str, rdtype: str = "A") -> dns.message.Message:
    return await dns.asyncquery.udp(dns.message.make_query(name, rdtype), "127.0.0.1", port=server.port, timeout=3)


def addresses(reply: dns.message.Message) -> list[str]:
    return [rd.address for rrset in reply.answer for rd in rrset]


async def test_an_a_query_for_each_kind_of_name(server):
    for name, address in [("s3.minis3.test", GLOBAL),
                          ("s3.eu-west-1.minis3.test", EU),
                          ("s3.us-east-1.minis3.test", GLOBAL),
                          ("photos.s3.eu-west-1.minis3.test", EU),
                          ("no-such-bucket.s3.eu-west-1.minis3.test", EU),   # regional: whatever the bucket
                          ("photos.s3.minis3.test", EU),                      # global: where the bucket lives
                          ("archive.s3.minis3.test", GLOBAL),
                          ("no-such-bucket.s3.minis3.test", GLOBAL)]:         # S3 never says NXDOMAIN for a bucket
        reply = await ask(server, name)
        assert reply.rcode() == dns.rcode.NOERROR, name
        assert reply.flags & dns.flags.AA and reply.flags & dns.flags.QR, name
        assert not reply.flags & dns.flags.RA, name                           # authoritative, not recursive
        assert addresses(reply) == [address], name
        rrset = reply.answer[0]
        assert rrset.name.to_text() == name + "." and rrset.ttl == 5


async def test_names_are_case_insensitive_and_the_question_is_echoed(server):
    reply = await ask(server, "My.Photos.S3.MINIS3.test.")
    assert reply.rcode() == dns.rcode.NOERROR and addresses(reply) == [GLOBAL]   # no bucket my.photos
    reply = await ask(server, "PHOTOS.S3.minis3.test")
    assert addresses(reply) == [EU]


async def test_the_bucket_answer_follows_the_bucket(server):
    assert addresses(await ask(server, "new.bucket.s3.minis3.test")) == [GLOBAL]
    server.buckets["new.bucket"] = "eu-west-1"                                  # created in eu-west-1
    assert addresses(await ask(server, "new.bucket.s3.minis3.test")) == [EU]
    del server.buckets["new.bucket"]                                            # deleted
    assert addresses(await ask(server, "new.bucket.s3.minis3.test")) == [GLOBAL]


async def test_a_name_in_the_zone_that_means_nothing_is_nxdomain_with_the_soa(server):
    for name in ("www.minis3.test", "s3.ap-south-1.minis3.test", "x_y.s3.minis3.test"):
        reply = await ask(server, name)
        assert reply.rcode() == dns.rcode.NXDOMAIN and reply.flags & dns.flags.AA, name
        assert reply.answer == []
        [soa] = reply.authority
        assert soa.rdtype == dns.rdatatype.SOA and soa.name.to_text() == "minis3.test."
        assert soa[0].minimum == 5                                              # negative answers cached 5 s
    assert server.buckets.calls == 0                                            # no lookup for a bad bucket name


async def test_a_name_outside_the_zone_is_refused(server):
    reply = await ask(server, "example.com")
    assert reply.rcode() == dns.rcode.REFUSED and reply.answer == []


async def test_aaaa_and_other_types_get_nodata(server):
    for name, rdtype in [("s3.minis3.test", "AAAA"), ("photos.s3.minis3.test", "AAAA"),
                         ("s3.eu-west-1.minis3.test", "TXT"), ("minis3.test", "A")]:
        reply = await ask(server, name, rdtype)
        assert reply.rcode() == dns.rcode.NOERROR and reply.flags & dns.flags.AA, name
        assert reply.answer == [], name
        assert [r.rdtype for r in reply.authority] == [dns.rdatatype.SOA], name
    assert server.buckets.calls == 0                                            # AAAA needs no lookup


async def test_the_apex_has_an_soa_and_an_ns(server):
    reply = await ask(server, "minis3.test", "SOA")
    [soa] = reply.answer
    assert soa.rdtype == dns.rdatatype.SOA and soa[0].mname.to_text() == "ns.minis3.test."
    reply = await ask(server, "minis3.test.", "NS")
    assert [rd.target.to_text() for rd in reply.answer[0]] == ["ns.minis3.test."]


async def test_a_failing_lookup_is_servfail_and_the_server_carries_on(server):
    server.buckets["broken"] = RuntimeError("metadata service down")
    server.buckets["elsewhere"] = "ap-south-1"                                  # a region the zone lacks
    for name in ("broken.s3.minis3.test", "elsewhere.s3.minis3.test"):
        reply = await ask(server, name)
        assert reply.rcode() == dns.rcode.SERVFAIL and reply.answer == [], name
    assert addresses(await ask(server, "photos.s3.minis3.test")) == [EU]


async def test_a_lookup_that_takes_too_long_is_servfail(server):
    server.resolver.lookup_timeout = 0.2
    server.buckets["stuck"] = asyncio.Event()                                   # never set
    reply = await ask(server, "stuck.s3.minis3.test")
    assert reply.rcode() == dns.rcode.SERVFAIL
    assert server.resolver.lookups_in_flight == 0


async def test_a_slow_lookup_does_not_hold_up_other_queries(server):
    release = server.buckets["slow"] = asyncio.Event()
    slow = asyncio.create_task(ask(server, "slow.s3.minis3.test"))
    await asyncio.sleep(0.05)
    assert addresses(await ask(server, "s3.minis3.test")) == [GLOBAL]
    assert addresses(await ask(server, "photos.s3.minis3.test")) == [EU]        # another lookup meanwhile
    assert not slow.done()
    release.set()
    assert addresses(await slow) == [EU]


async def test_lookups_beyond_the_cap_are_servfail(server):
    server.resolver.max_lookups = 1
    release = server.buckets["slow"] = asyncio.Event()
    slow = asyncio.create_task(ask(server, "slow.s3.minis3.test"))
    await asyncio.sleep(0.05)
    assert (await ask(server, "photos.s3.minis3.test")).rcode() == dns.rcode.SERVFAIL
    assert addresses(await ask(server, "s3.minis3.test")) == [GLOBAL]           # no lookup: not capped
    release.set()
    assert addresses(await slow) == [EU]
    assert addresses(await ask(server, "photos.s3.minis3.test")) == [EU]


async def send_raw(server, packet: bytes, wait: float = 0.5) -> bytes | None:
    """Send one datagram as is; the reply, or None if none came within ``wait`` seconds."""
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        s.connect(("127.0.0.1", server.port))
        await loop.sock_sendall(s, packet)
        try:
            return await asyncio.wait_for(loop.sock_recv(s, 4096), wait)
        except TimeoutError:
            return None


async def test_garbage_is_formerr_or_dropped_and_the_server_carries_on(server):
    assert await send_raw(server, b"\x01\x02\x03") is None                       # not even a header: dropped
    header = struct.pack("!HHHHHH", 0xBEEF, 0x0100, 1, 0, 0, 0)                  # one question promised...
    reply = dns.message.from_wire(await send_raw(server, header + b"\x05abc"))  # ...and cut short
    assert reply.id == 0xBEEF and reply.rcode() == dns.rcode.FORMERR and reply.flags & dns.flags.QR
    response = struct.pack("!HHHHHH", 7, 0x8400, 0, 0, 0, 0)                     # a response, not a query
    assert await send_raw(server, response) is None
    two = struct.pack("!HHHHHH", 8, 0x0100, 2, 0, 0, 0) + (b"\x02s3\x06minis3\x04test\x00\x00\x01\x00\x01" * 2)
    assert dns.message.from_wire(await send_raw(server, two)).rcode() == dns.rcode.FORMERR
    assert addresses(await ask(server, "s3.minis3.test")) == [GLOBAL]


async def test_answers_are_recorded_newest_first(server):
    before = time.time() * 1000
    await ask(server, "Photos.S3.minis3.test.")
    await ask(server, "www.minis3.test")
    await ask(server, "photos.s3.minis3.test", "AAAA")
    newest, middle, oldest = server.resolver.answers()
    assert newest["qtype"] == "AAAA" and newest["answer"] is None and newest["rcode"] == "NOERROR"
    assert middle == {**middle, "name": "www.minis3.test", "rcode": "NXDOMAIN", "kind": "nxdomain", "answer": None}
    assert oldest == {**oldest, "name": "photos.s3.minis3.test", "qtype": "A", "rcode": "NOERROR",
                      "answer": EU, "kind": "bucket", "region": "eu-west-1", "bucket": "photos"}
    assert before <= oldest["t_ms"] <= middle["t_ms"] <= newest["t_ms"] and oldest["duration_ms"] >= 0
    assert oldest["client"].startswith("127.0.0.1:")
    assert [r["qtype"] for r in server.resolver.answers("PHOTOS.s3.minis3.test.")] == ["AAAA", "A"]
    assert server.resolver.answers(limit=1) == [newest]
    assert server.resolver.answers(before_ms=middle["t_ms"]) == [oldest]        # paging back


async def test_answers_over_http(server):
    await ask(server, "photos.s3.minis3.test")
    await ask(server, "s3.minis3.test")
    app = web.Application()
    http_routes(app, server.resolver)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/answers", params={"name": "photos.s3.minis3.test", "limit": "5"})
        assert resp.status == 200
        [one] = await resp.json()
        assert one["answer"] == EU and one["kind"] == "bucket"
        assert len(await (await client.get("/answers?limit=1")).json()) == 1
        assert (await client.get("/answers?limit=many")).status == 400


async def test_queries_are_counted_by_kind_and_rcode(server):
    def count() -> float:
        labels = {"kind": "outside", "rcode": "REFUSED"}
        return prometheus_client.REGISTRY.get_sample_value("minis3_dns_queries_total", labels) or 0.0
    start = count()
    await ask(server, "example.com")
    assert count() == start + 1
