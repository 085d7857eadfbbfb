"""Which S3 endpoint a DNS name asks for: the pure core of minis3's DNS server.

S3 tells clients where to go with DNS, before any HTTP is spoken. With a zone
for ``minis3.test`` and regions us-east-1 (the global one) and eu-west-1:

=====================================  =========  ==========================================
name asked for                         kind       answered with the frontend address of
=====================================  =========  ==========================================
``minis3.test``                        apex       nobody (SOA and NS only: the zone itself)
``s3.minis3.test``                     global     the global region (like s3.amazonaws.com)
``s3.eu-west-1.minis3.test``           region     eu-west-1
``photos.s3.eu-west-1.minis3.test``    region     eu-west-1, whatever the bucket
``photos.s3.minis3.test``              bucket     the region the bucket lives in (a lookup);
                                                  the global region if there is no such bucket
``www.minis3.test``                    nxdomain   nobody: no such name in the zone
``example.com``                        outside    nobody: not our zone, so the query is refused
=====================================  =========  ==========================================

``kind`` says what decides the answer: only a global virtual-hosted name
(``bucket``) needs to know where a bucket lives; a regional one is answered by
its region alone, so it is a ``region`` name that also carries its bucket.

Bucket names may hold dots (``my.bucket.s3.minis3.test`` is bucket
``my.bucket``), which is why the name is read from the right: the zone, then
``s3``, then perhaps a region, and everything left of that is the bucket.
DNS names are case-insensitive and may end in a dot; both are normalised here.
This module imports no I/O library: the server (``dns/server.py``) calls it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# Loosely S3's bucket rules (minis3/core/names.py has the full ones): 3 to 63
# lowercase letters, digits, dots and hyphens, starting and ending with a
# letter or digit. Loose is enough here: the name only picks an address, and
# the frontend rejects a bad bucket name with S3's own error.
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", re.ASCII)

KINDS = ("apex", "global", "region", "bucket", "nxdomain", "outside")


def normalise(name: str) -> str:
    """``"My.Bucket.S3.minis3.test."`` → ``"my.bucket.s3.minis3.test"``."""
    return name.lower().rstrip(".")


@dataclass(frozen=True)
class Zone:
    """The DNS zone minis3 answers for.

    ``regions`` maps each region to the IPv4 address of its S3 frontend (every
    frontend listens on the same port, so an address is all DNS has to give);
    ``global_region`` is the region behind ``s3.<domain>``.
    """
    domain: str
    regions: dict[str, str]
    global_region: str

    def __post_init__(self) -> None:
        # A frozen dataclass can still normalise itself once, while being built.
        object.__setattr__(self, "domain", normalise(self.domain))
        if not self.domain:
            raise ValueError("a zone needs a domain")
        if self.global_region not in self.regions:
            raise ValueError(f"global region {self.global_region!r} is not one of {sorted(self.regions)}")


@dataclass(frozen=True)
class Name:
    """What a DNS name means: its ``kind`` (one of ``KINDS``) and, where the
    name says them, the region and the bucket. A ``global`` name carries the
    global region; a ``bucket`` name carries no region (a lookup finds it)."""
    kind: str
    region: str | None = None
    bucket: str | None = None


def is_bucket_name(label: str) -> bool:
    """True if ``label`` (already lower-case) could be an S3 bucket name."""
    return _BUCKET_RE.fullmatch(label) is not None and ".." not in label


def classify(qname: str, zone: Zone) -> Name:
    """Say what ``qname`` asks for in ``zone`` (see the table at the top)."""
    name = normalise(qname)
    if name == zone.domain:
        return Name("apex")
    suffix = "." + zone.domain
    if not name.endswith(suffix):
        return Name("outside")
    labels = name[: -len(suffix)].split(".")     # left of the zone, e.g. ["my", "bucket", "s3"]

    if labels[-1] == "s3":                        # s3.<domain>, BUCKET.s3.<domain>
        if len(labels) == 1:
            return Name("global", region=zone.global_region)
        bucket = ".".join(labels[:-1])
        return Name("bucket", bucket=bucket) if is_bucket_name(bucket) else Name("nxdomain")

    if len(labels) >= 2 and labels[-2] == "s3" and labels[-1] in zone.regions:
        region = labels[-1]                       # s3.REGION.<domain>, BUCKET.s3.REGION.<domain>
        if len(labels) == 2:
            return Name("region", region=region)
        bucket = ".".join(labels[:-2])
        return Name("region", region=region, bucket=bucket) if is_bucket_name(bucket) else Name("nxdomain")

    return Name("nxdomain")                       # www.<domain>, s3.no-such-region.<domain>, ...
