"""Regions and DNS: two real regions (us-east-1: 6 nodes, EC 4+2;
eu-west-1: 3 nodes, EC 2+1), each with its own frontend on its own loopback
address (same port), AZs and metadata, the bucket registry in us-east-1, and
minis3's DNS server. Every client here is unmodified boto3 (or dnspython for
DNS); names under the zone are resolved by minis3's DNS server
(minis3.dns.resolve.using_dns, a real UDP query per lookup)."""
from __future__ import annotations

import json
import shutil
import os
import subprocess
import sys
import time
import uuid

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
from botocore.exceptions import ClientError

from minis3.cluster.supervisor import wait_healthy

from .cluster import SECOND_ACCESS_KEY, SECOND_SECRET_KEY
from .regions import EU, US


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_dns_answers_region_endpoints_and_bucket_names(world):
    d = world.dns.domain
    assert world.dns_a(f"s3.{US}.{d}") == ([world.ip(US)], dns.rcode.NOERROR, True)
    assert world.dns_a(f"s3.{EU}.{d}") == ([world.ip(EU)], dns.rcode.NOERROR, True)
    assert world.dns_a(f"s3.{d}")[0] == [world.ip(US)]                   # the global endpoint
    assert world.dns_a(f"anything.s3.{EU}.{d}")[0] == [world.ip(EU)]     # regional virtual host
    assert world.dns_a(f"s3.ap-south-9.{d}")[1] == dns.rcode.NXDOMAIN
    name = _name("dns")
    host = f"{name}.s3.{d}"
    assert world.dns_a(host)[0] == [world.ip(US)]         # no such bucket: the global region, as S3
    us = world.client(f"s3.{US}.{d}", US)
    us.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": EU})
    assert world.dns_a(host)[0] == [world.ip(EU)]         # the bucket's region decides
    world.client(f"s3.{EU}.{d}", EU).delete_bucket(Bucket=name)
    assert world.dns_a(host)[0] == [world.ip(US)]


def test_bucket_created_in_eu_through_the_us_endpoint(world):
    d = world.dns.domain
    us = world.client(f"s3.{US}.{d}", US)
    eu = world.client(f"s3.{EU}.{d}", EU)
    name = _name("made-in-us")
    us.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": EU})
    # Any region's endpoint says where it lives.
    assert us.get_bucket_location(Bucket=name)["LocationConstraint"] == EU
    assert eu.get_bucket_location(Bucket=name)["LocationConstraint"] == EU
    assert eu.head_bucket(Bucket=name)["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == EU
    listed = {b["Name"]: b.get("BucketRegion") for b in eu.list_buckets()["Buckets"]}
    assert listed[name] == EU
    body = os.urandom(300_000)                            # erasure-coded (EC 2+1 in eu-west-1)
    eu.put_object(Bucket=name, Key="k", Body=body)
    assert eu.get_object(Bucket=name, Key="k")["Body"].read() == body
    # The bytes live on eu-west-1's nodes only.
    eu_frags = [p for n in world.eu.nodes for p in (n.data_dir / "fragments").glob("*/*")]
    assert len(eu_frags) >= 3
    # Names are global: taken in eu-west-1 means taken everywhere.
    with pytest.raises(ClientError) as e:
        us.create_bucket(Bucket=name)
    assert e.value.response["Error"]["Code"] == "BucketAlreadyOwnedByYou"
    other = world.client(f"s3.{US}.{d}", US, access=(SECOND_ACCESS_KEY, SECOND_SECRET_KEY))
    with pytest.raises(ClientError) as e:
        other.create_bucket(Bucket=name)
    assert e.value.response["Error"]["Code"] == "BucketAlreadyExists"
    eu.delete_object(Bucket=name, Key="k")
    eu.delete_bucket(Bucket=name)
    assert name not in {b["Name"] for b in us.list_buckets()["Buckets"]}
    us.create_bucket(Bucket=name)                        # the name is free again, in any region
    us.delete_bucket(Bucket=name)


def test_location_constraint_rules_follow_s3(world):
    d = world.dns.domain
    eu = world.client(f"s3.{EU}.{d}", EU)
    us = world.client(f"s3.{US}.{d}", US)
    for client, cfg, code in [
        (eu, None, "IllegalLocationConstraintException"),                 # unspecified means us-east-1
        (us, {"LocationConstraint": US}, "InvalidLocationConstraint"),
        (us, {"LocationConstraint": "ap-south-9"}, "InvalidLocationConstraint"),
    ]:
        with pytest.raises(ClientError) as e:
            client.create_bucket(Bucket=_name("rule"), **({"CreateBucketConfiguration": cfg} if cfg else {}))
        assert e.value.response["Error"]["Code"] == code
    name = _name("eu-own")
    eu.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": EU})
    assert us.get_bucket_location(Bucket=name)["LocationConstraint"] == EU
    eu.delete_bucket(Bucket=name)


def test_wrong_region_answers_are_s3s(world):
    """What the first, unredirected answer looks like (boto3's retries and
    redirects off: a raw botocore call)."""
    d = world.dns.domain
    name = _name("answers")
    world.client(f"s3.{US}.{d}", US).create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": EU})
    world.client(f"s3.{EU}.{d}", EU).put_object(Bucket=name, Key="k", Body=b"x")
    raw = world.client(f"s3.{US}.{d}", US, follow=False)
    with pytest.raises(ClientError) as e:
        raw.get_object(Bucket=name, Key="k")
    r = e.value.response
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 301
    assert r["Error"]["Code"] == "PermanentRedirect"
    assert r["Error"]["Endpoint"] == f"s3.{EU}.{d}"
    assert r["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == EU
    signed_us_at_eu = world.client(f"s3.{EU}.{d}", US, follow=False)
    with pytest.raises(ClientError) as e:
        signed_us_at_eu.get_object(Bucket=name, Key="k")
    r = e.value.response
    assert (r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"]["Region"]) == \
        (400, "AuthorizationHeaderMalformed", EU)
    assert "the region 'us-east-1' is wrong; expecting 'eu-west-1'" in r["Error"]["Message"]


@pytest.mark.parametrize("how", ["global-virtual-host", "eu-endpoint", "head-only"])
def test_clients_configured_for_the_wrong_region_follow(world, how):
    """boto3 set to us-east-1 reads and writes a bucket of eu-west-1: DNS sends
    it to eu-west-1, which answers 400 AuthorizationHeaderMalformed naming
    eu-west-1 (or, for HEAD, no body: boto3 asks HeadBucket's
    x-amz-bucket-region), and boto3 signs again for it, by itself."""
    d = world.dns.domain
    name = _name("follow")
    world.client(f"s3.{US}.{d}", US).create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": EU})
    seen: list = []
    if how == "global-virtual-host":
        c = world.client(f"s3.{d}", US, virtual=True, seen=seen)
    else:
        c = world.client(f"s3.{EU}.{d}", US, seen=seen)
    if how == "head-only":
        world.client(f"s3.{EU}.{d}", EU).put_object(Bucket=name, Key="h", Body=b"head")
        assert c.head_object(Bucket=name, Key="h")["ContentLength"] == 4
        assert ("HeadObject", 400, "400") in seen
    else:
        c.put_object(Bucket=name, Key="a/b", Body=b"hello")
        assert ("PutObject", 400, "AuthorizationHeaderMalformed") in seen
        assert c.get_object(Bucket=name, Key="a/b")["Body"].read() == b"hello"
        assert [o["Key"] for o in c.list_objects_v2(Bucket=name)["Contents"]] == ["a/b"]
        c.delete_object(Bucket=name, Key="a/b")
    # What it wrote is in eu-west-1, read by a client configured right.
    eu = world.client(f"s3.{EU}.{d}", EU)
    for o in eu.list_objects_v2(Bucket=name).get("Contents", []):
        eu.delete_object(Bucket=name, Key=o["Key"])
    eu.delete_bucket(Bucket=name)


def test_registry_survives_the_loss_of_an_az(world):
    """kill -9 one AZ of us-east-1 (where the registry's replicas are): buckets
    are still created in eu-west-1 through it, located, resolved and listed."""
    d = world.dns.domain
    us = world.client(f"s3.{US}.{d}", US)
    before = _name("before")
    us.create_bucket(Bucket=before, CreateBucketConfiguration={"LocationConstraint": EU})
    def chaos(*args):
        subprocess.run([sys.executable, "-m", "minis3", "chaos", *args, "--topology", str(world.path), "--region", US],
                       check=True, capture_output=True, timeout=60)
    chaos("kill-az", "az-a")                     # kill -9 of the AZ's whole process group
    try:
        time.sleep(0.5)
        after = _name("after")
        us.create_bucket(Bucket=after, CreateBucketConfiguration={"LocationConstraint": EU})
        for n in (before, after):
            assert world.client(f"s3.{EU}.{d}", EU).get_bucket_location(Bucket=n)["LocationConstraint"] == EU
            assert world.dns_a(f"{n}.s3.{d}")[0] == [world.ip(EU)]
        names = {b["Name"] for b in world.client(f"s3.{EU}.{d}", EU).list_buckets()["Buckets"]}
        assert {before, after} <= names
    finally:
        chaos("revive-az", "az-a")
        wait_healthy(world.us, 60)
    for n in (before, after):
        world.client(f"s3.{EU}.{d}", EU).delete_bucket(Bucket=n)


def test_trace_starts_with_the_dns_answer(world):
    d = world.dns.domain
    name = _name("traced")
    world.client(f"s3.{US}.{d}", US).create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": EU})
    c = world.client(f"s3.{d}", EU, virtual=True)
    rid = c.put_object(Bucket=name, Key="t", Body=b"trace me")["ResponseMetadata"]["RequestId"]
    time.sleep(0.5)
    out = subprocess.run([sys.executable, "-m", "minis3", "trace", rid, "--topology", str(world.path),
                          "--region", EU], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    first = out.stdout.strip().splitlines()[0]
    assert first.startswith("DNS") and f"{name}.s3.{d}" in first and world.ip(EU) in first, out.stdout
    js = subprocess.run([sys.executable, "-m", "minis3", "trace", rid, "--json", "--topology", str(world.path),
                         "--region", EU], capture_output=True, text=True, timeout=60)
    spans = json.loads(js.stdout)
    assert spans[0]["service"] == "dns" and spans[0]["attributes"]["answer"] == world.ip(EU)
    c.delete_object(Bucket=name, Key="t")
    c.delete_bucket(Bucket=name)


@pytest.mark.skipif(shutil.which("dig") is None, reason="dig (Debian's bind9-dnsutils) is not installed")
def test_dig_shows_it(world):
    """What docs/regions.md tells a learner to type."""
    d = world.dns.domain
    name = _name("dig")

    def dig(*args):
        r = subprocess.run(["dig", f"@{world.dns.host}", "-p", str(world.dns.port), "+short", *args],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 0, r.stderr
        return r.stdout.split()
    assert dig(f"s3.{EU}.{d}") == [world.ip(EU)]
    assert dig(f"{name}.s3.{d}") == [world.ip(US)]
    world.client(f"s3.{US}.{d}", US).create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": EU})
    assert dig(f"{name}.s3.{d}") == [world.ip(EU)]
    assert dig(f"{name}.s3.{d}", "AAAA") == []          # NODATA: no IPv6 address
    world.client(f"s3.{EU}.{d}", EU).delete_bucket(Bucket=name)
    assert dig(f"{name}.s3.{d}") == [world.ip(US)]
