"""What a DNS name asks for (minis3/dns/names.py): pure, no sockets."""
from __future__ import annotations

import pytest

from minis3.dns.names import Name, Zone, classify

ZONE = Zone("minis3.test", {"us-east-1": "127.0.0.2", "eu-west-1": "127.0.0.3"}, "us-east-1")


@pytest.mark.parametrize("qname, expected", [
    ("minis3.test", Name("apex")),
    ("s3.minis3.test", Name("global", region="us-east-1")),
    ("s3.eu-west-1.minis3.test", Name("region", region="eu-west-1")),
    ("s3.us-east-1.minis3.test", Name("region", region="us-east-1")),
    ("photos.s3.eu-west-1.minis3.test", Name("region", region="eu-west-1", bucket="photos")),
    ("photos.s3.minis3.test", Name("bucket", bucket="photos")),
    ("www.minis3.test", Name("nxdomain")),
    ("eu-west-1.minis3.test", Name("nxdomain")),
    ("example.com", Name("outside")),
    ("s3.amazonaws.com", Name("outside")),
    ("notminis3.test", Name("outside")),          # a suffix of the string, not of the labels
    ("test", Name("outside")),
])
def test_every_kind(qname, expected):
    assert classify(qname, ZONE) == expected


def test_bucket_names_may_hold_dots_and_are_read_from_the_right():
    assert classify("my.bucket.s3.minis3.test", ZONE) == Name("bucket", bucket="my.bucket")
    assert classify("a.b.c.s3.eu-west-1.minis3.test", ZONE) == Name("region", region="eu-west-1", bucket="a.b.c")
    # a bucket whose name ends in "s3" or looks like a region is still a bucket
    assert classify("logs.s3.s3.minis3.test", ZONE) == Name("bucket", bucket="logs.s3")
    assert classify("eu-west-1.s3.minis3.test", ZONE) == Name("bucket", bucket="eu-west-1")


def test_case_and_a_trailing_dot_do_not_matter():
    assert classify("My.Bucket.S3.MINIS3.test.", ZONE) == Name("bucket", bucket="my.bucket")
    assert classify("S3.EU-WEST-1.minis3.TEST.", ZONE) == Name("region", region="eu-west-1")
    assert classify("MINIS3.TEST.", ZONE) == Name("apex")
    zone = Zone("Minis3.Test.", ZONE.regions, "us-east-1")       # the zone's own domain is normalised too
    assert zone.domain == "minis3.test"
    assert classify("s3.minis3.test", zone) == Name("global", region="us-east-1")


@pytest.mark.parametrize("qname", [
    "ab.s3.minis3.test",                          # too short
    ("x" * 64) + ".s3.minis3.test",               # too long
    "-photos.s3.minis3.test",                     # must start with a letter or digit
    "photos-.s3.minis3.test",                     # ... and end with one
    "pho_tos.s3.minis3.test",                     # no underscores
    "ab.s3.eu-west-1.minis3.test",                # the same rules for regional names
    "pho_tos.s3.eu-west-1.minis3.test",
])
def test_an_invalid_bucket_name_is_nxdomain(qname):
    assert classify(qname, ZONE) == Name("nxdomain")


def test_a_63_character_bucket_name_is_fine():
    assert classify(("x" * 63) + ".s3.minis3.test", ZONE) == Name("bucket", bucket="x" * 63)


def test_a_region_the_zone_does_not_know_is_nxdomain():
    assert classify("s3.ap-south-1.minis3.test", ZONE) == Name("nxdomain")
    assert classify("photos.s3.ap-south-1.minis3.test", ZONE) == Name("nxdomain")


def test_a_zone_needs_its_global_region_among_its_regions():
    with pytest.raises(ValueError):
        Zone("minis3.test", {"eu-west-1": "127.0.0.3"}, "us-east-1")
