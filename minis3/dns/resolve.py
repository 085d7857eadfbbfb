"""Resolve names under minis3's DNS zone with minis3's DNS server, in this process.

A program finds S3 through DNS: ``mybucket.s3.amazonaws.com`` resolves to an
address of the fleet of the region the bucket lives in. Your operating
system's resolver asks the DNS servers in ``/etc/resolv.conf``, on port 53;
minis3's DNS server listens on a loopback port of its own, so that starting
it needs no root and changes nothing on the machine. :func:`using_dns`
points this Python process's lookups of names under the zone (boto3's and
urllib3's included, which call :func:`socket.getaddrinfo`) at that server,
with a real DNS query over UDP for each; every other name resolves as before.
The lookups made are kept in :attr:`Lookups.seen`, so a lab can show them.
"""
from __future__ import annotations

import contextlib
import socket
import time
from dataclasses import dataclass, field

from dnslib import QTYPE, RCODE, DNSRecord


def query_a(name: str, server: str, port: int, timeout: float = 2.0) -> tuple[list[str], str]:
    """The A records the server answers for ``name``, and the answer's rcode."""
    reply = DNSRecord.parse(DNSRecord.question(name, "A").send(server, port, timeout=timeout))
    return [str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A], RCODE.get(reply.header.rcode)


@dataclass
class Lookups:
    server: str
    port: int
    domain: str
    seen: list[dict] = field(default_factory=list)   # {"name", "addresses", "rcode", "ms"}

    def covers(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return host == self.domain or host.endswith("." + self.domain)

    def resolve(self, host: str) -> list[str]:
        t0 = time.perf_counter()
        addrs, rcode = query_a(host, self.server, self.port)
        self.seen.append({"name": host, "addresses": addrs, "rcode": rcode,
                          "ms": round((time.perf_counter() - t0) * 1000, 2)})
        return addrs


@contextlib.contextmanager
def using_dns(server: str, port: int, domain: str):
    """While inside, names under ``domain`` are resolved by the DNS server at
    ``server:port`` (yields the :class:`Lookups` made)."""
    lookups = Lookups(server, port, domain.lower().rstrip("."))
    real = socket.getaddrinfo

    def getaddrinfo(host, port_, family=0, type=0, proto=0, flags=0):
        name = host.decode() if isinstance(host, bytes) else host
        if isinstance(name, str) and lookups.covers(name):
            addrs = lookups.resolve(name)
            if not addrs:
                raise socket.gaierror(socket.EAI_NONAME, f"{name}: no address (minis3 DNS)")
            return real(addrs[0], port_, socket.AF_INET, type, proto, flags)
        return real(host, port_, family, type, proto, flags)

    socket.getaddrinfo = getaddrinfo
    try:
        yield lookups
    finally:
        socket.getaddrinfo = real
