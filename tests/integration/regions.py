"""Two real regions for tests (the `world` fixture in conftest.py): us-east-1
(6 nodes, EC 4+2) and eu-west-1 (3 nodes, EC 2+1), each frontend on its own
loopback address and the same port, and minis3's DNS server."""
from __future__ import annotations

from pathlib import Path

import boto3
import dns.flags
import dns.message
import dns.query
import dns.rdatatype
from botocore.config import Config

from minis3 import config
from minis3.cluster.supervisor import Regions

from .cluster import ACCESS_KEY, SECOND_ACCESS_KEY, SECOND_SECRET_KEY, SECRET_KEY

US, EU = "us-east-1", "eu-west-1"


class TwoRegions:
    def __init__(self, root: Path):
        self.base = config.free_base_port(regions=2)
        self.path = root / "regions.toml"
        self.path.write_text(config.regions_toml(
            self.base, root / "data", (US, EU), cluster_secret="test-cluster-secret",
            credentials=[(ACCESS_KEY, SECRET_KEY), (SECOND_ACCESS_KEY, SECOND_SECRET_KEY)]))
        self.us = config.load(self.path, region=US)
        self.eu = config.load(self.path, region=EU)
        self.world = self.us.world
        self.dns = self.world.dns
        self.regions = Regions(self.us)

    def ip(self, region: str) -> str:
        return self.world.region(region).frontend.host

    def client(self, endpoint_host: str, region: str, *, virtual: bool = False, access=(ACCESS_KEY, SECRET_KEY),
               seen: list | None = None, follow: bool = True):
        """boto3 at http://ENDPOINT_HOST:PORT signing for ``region``; ``seen``
        collects (operation, status, error code) of every response it got,
        redirected ones included; ``follow=False``: no retry and no region
        redirect (boto3's needs-retry handlers removed), so the first answer shows."""
        c = boto3.client("s3", endpoint_url=f"http://{endpoint_host}:{self.base}", region_name=region,
                         aws_access_key_id=access[0], aws_secret_access_key=access[1],
                         config=Config(retries={"max_attempts": 2, "mode": "standard"},
                                       s3={"addressing_style": "virtual" if virtual else "path"}))
        if not follow:
            for h in list(c.meta.events._emitter._handlers.prefix_search("needs-retry.s3")):
                c.meta.events.unregister("needs-retry.s3", h)
        if seen is not None:
            c.meta.events.register("needs-retry.s3", lambda response, operation, **kw: seen.append(
                (operation.name, response[0].status_code, response[1].get("Error", {}).get("Code")))
                if response else None, unique_id="minis3-seen")
        return c

    def dns_a(self, name: str) -> tuple[list[str], int, bool]:
        """(A records, rcode, authoritative?) from minis3's DNS server, asked with dnspython."""
        reply = dns.query.udp(dns.message.make_query(name, dns.rdatatype.A), self.dns.host, port=self.dns.port,
                              timeout=3)
        ips = [r.address for rrset in reply.answer if rrset.rdtype == dns.rdatatype.A for r in rrset]
        return ips, reply.rcode(), bool(reply.flags & dns.flags.AA)
