"""Storage classes as placement (ec/storage_class.py), on a real cluster.

STANDARD is 4+2 over the three AZs, REDUCED_REDUNDANCY 4+1 over them, and
ONEZONE_IA 4+2 with every fragment in one AZ: that AZ killed, a ONEZONE_IA
object cannot be read while a STANDARD one still can. The class is honoured
on PutObject, CopyObject (in place too: that re-encodes) and multipart, and
shown by HEAD/GET, the listings, GetObjectAttributes and `minis3 inspect`.
This module kills an AZ: it runs a cluster of its own.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from minis3.cluster import chaos

from .cluster import ACCESS_KEY, SECRET_KEY, TestCluster
from .conftest import make_client

MiB = 1024 * 1024
BUCKET = "classes"
ONEZONE_BUCKET = "scratch.one-zone"     # its default class is ONEZONE_IA (the topology's [storage_class])
CLASSES = ["STANDARD", "REDUCED_REDUNDANCY", "ONEZONE_IA", "STANDARD_IA", "GLACIER_IR"]


@pytest.fixture(scope="module")
def sc(tmp_path_factory):
    # The scrubber runs only when asked; no background audit.
    c = TestCluster(tmp_path_factory.mktemp("classes"), scrub={"interval_s": 3600, "audit_mb_per_s": 0},
                    storage_class={"buckets": {ONEZONE_BUCKET: "ONEZONE_IA"}}).start()
    c.s3 = make_client(c.endpoint)
    c.s3.create_bucket(Bucket=BUCKET)
    yield c
    c.discard()


def body(n: int, seed: int) -> bytes:
    return bytes((i * 7 + seed) & 0xFF for i in range(256)) * (n // 256) + b"x" * (n % 256)


def put(c, key: str, data: bytes, storage_class: str | None = None) -> dict:
    extra = {"StorageClass": storage_class} if storage_class else {}
    c.s3.put_object(Bucket=BUCKET, Key=key, Body=data, **extra)
    return c.records(BUCKET)[key]


def az_of(c, node: str) -> str:
    return c.topo.node(node).az


def code(exc: ClientError) -> tuple[int, str]:
    return exc.response["ResponseMetadata"]["HTTPStatusCode"], exc.response["Error"]["Code"]


def test_each_class_round_trips_in_head_get_listings_and_attributes(sc):
    s3 = sc.s3
    data = {cls: body(MiB + 100_000, i) for i, cls in enumerate(CLASSES)}
    for cls in CLASSES:
        put(sc, f"rt/{cls}", data[cls], cls)
    put(sc, "rt/default", b"d" * 5000)                       # no header: STANDARD
    put(sc, "rt/small-onezone", b"s" * 5000, "ONEZONE_IA")    # inline: the class is only recorded
    expect = dict({c: c for c in CLASSES}, default="STANDARD", **{"small-onezone": "ONEZONE_IA"})
    for name, cls in expect.items():
        key = f"rt/{name}"
        head = s3.head_object(Bucket=BUCKET, Key=key)
        got = s3.get_object(Bucket=BUCKET, Key=key)
        # S3 sends x-amz-storage-class for every class but STANDARD.
        assert head.get("StorageClass") == (None if cls == "STANDARD" else cls), key
        assert got.get("StorageClass") == head.get("StorageClass")
        if name in data:
            assert got["Body"].read() == data[name]
        attrs = s3.get_object_attributes(Bucket=BUCKET, Key=key, ObjectAttributes=["StorageClass", "ObjectSize"])
        assert attrs["StorageClass"] == cls
    v2 = {o["Key"]: o["StorageClass"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="rt/")["Contents"]}
    v1 = {o["Key"]: o["StorageClass"] for o in s3.list_objects(Bucket=BUCKET, Prefix="rt/")["Contents"]}
    vs = {o["Key"]: o["StorageClass"] for o in s3.list_object_versions(Bucket=BUCKET, Prefix="rt/")["Versions"]}
    want = {f"rt/{k}": v for k, v in expect.items()}
    assert v2 == want and v1 == want and vs == want
    assert "storage_class" not in sc.records(BUCKET)["rt/default"]      # STANDARD is not written


@pytest.mark.parametrize("value", ["FOO", "standard", "EXPRESS_ONEZONE", "OUTPOSTS"])
def test_an_unknown_class_is_invalid_storage_class(sc, value):
    s3 = sc.s3
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=BUCKET, Key="bad", Body=b"x" * 100_000, StorageClass=value)
    assert code(e.value) == (400, "InvalidStorageClass")
    with pytest.raises(ClientError) as e:
        s3.create_multipart_upload(Bucket=BUCKET, Key="bad", StorageClass=value)
    assert code(e.value) == (400, "InvalidStorageClass")
    s3.put_object(Bucket=BUCKET, Key="src", Body=b"y")
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=BUCKET, Key="bad", CopySource={"Bucket": BUCKET, "Key": "src"}, StorageClass=value)
    assert code(e.value) == (400, "InvalidStorageClass")
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=BUCKET, Key="bad")
    assert code(e.value)[0] == 404


def test_each_class_places_its_fragments_as_its_scheme_says(sc):
    azs = {az.name for az in sc.topo.azs}
    std = put(sc, "pl/standard", body(MiB, 1))["ec"]
    assert (std["k"], std["m"]) == (4, 2) and "zone" not in std
    assert Counter(az_of(sc, n) for n in std["nodes"]) == {az: 2 for az in azs}
    rrs = put(sc, "pl/rrs", body(MiB, 2), "REDUCED_REDUNDANCY")["ec"]
    assert (rrs["k"], rrs["m"]) == (4, 1) and "zone" not in rrs
    assert len(set(rrs["nodes"])) == 5 and {az_of(sc, n) for n in rrs["nodes"]} == azs
    for i in range(6):
        oz = put(sc, f"pl/onezone-{i}", body(MiB, 3 + i), "ONEZONE_IA")["ec"]
        assert (oz["k"], oz["m"]) == (4, 2) and oz["zone"] in azs
        assert {az_of(sc, n) for n in oz["nodes"]} == {oz["zone"]}
        assert max(Counter(oz["nodes"]).values()) == 3      # 6 fragments on the zone's 2 nodes
    # The AZ is chosen by the object id: over a few objects, more than one AZ.
    zones = {sc.records(BUCKET)[f"pl/onezone-{i}"]["ec"]["zone"] for i in range(6)}
    assert len(zones) >= 2
    assert sc.s3.get_object(Bucket=BUCKET, Key="pl/rrs")["Body"].read() == body(MiB, 2)
    assert sc.s3.get_object(Bucket=BUCKET, Key="pl/onezone-0")["Body"].read() == body(MiB, 3)


def inspect(c, key: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "minis3", "inspect", f"s3://{BUCKET}/{key}", *args,
                           "--topology", str(c.topo_path)], capture_output=True, text=True, timeout=120)


def test_inspect_shows_the_class_its_scheme_and_its_zone(sc):
    rec = put(sc, "in/onezone", body(MiB, 9), "ONEZONE_IA")
    zone = rec["ec"]["zone"]
    out = inspect(sc, "in/onezone")
    assert out.returncode == 0, out.stderr
    assert f"class       ONEZONE_IA: EC 4+2, all in {zone}; unreadable while {zone} is down" in out.stdout
    d = json.loads(inspect(sc, "in/onezone", "--json").stdout)
    assert d["storage_class"] == "ONEZONE_IA" and d["sets"][0]["zone"] == zone
    put(sc, "in/rrs", body(MiB, 10), "REDUCED_REDUNDANCY")
    assert "class       REDUCED_REDUNDANCY: EC 4+1, over every AZ" in inspect(sc, "in/rrs").stdout


def test_multipart_upload_with_a_class(sc):
    s3 = sc.s3
    up = s3.create_multipart_upload(Bucket=BUCKET, Key="mp/onezone", StorageClass="ONEZONE_IA")
    uid = up["UploadId"]
    parts = [body(5 * MiB, 20), body(MiB + 100_005, 21)]
    etags = [s3.upload_part(Bucket=BUCKET, Key="mp/onezone", UploadId=uid, PartNumber=n + 1, Body=p)["ETag"]
             for n, p in enumerate(parts)]
    listed = s3.list_parts(Bucket=BUCKET, Key="mp/onezone", UploadId=uid)
    assert listed["StorageClass"] == "ONEZONE_IA"
    uploads = s3.list_multipart_uploads(Bucket=BUCKET, Prefix="mp/")["Uploads"]
    assert [u["StorageClass"] for u in uploads] == ["ONEZONE_IA"]
    s3.complete_multipart_upload(Bucket=BUCKET, Key="mp/onezone", UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": n + 1, "ETag": e} for n, e in enumerate(etags)]})
    assert s3.head_object(Bucket=BUCKET, Key="mp/onezone")["StorageClass"] == "ONEZONE_IA"
    assert s3.get_object(Bucket=BUCKET, Key="mp/onezone")["Body"].read() == b"".join(parts)
    rec = sc.records(BUCKET)["mp/onezone"]
    assert rec["storage_class"] == "ONEZONE_IA"
    for p in rec["parts"]:
        assert {az_of(sc, n) for n in p["ec"]["nodes"]} == {p["ec"]["zone"]}


def test_copy_in_place_with_a_new_class_re_encodes(sc):
    s3 = sc.s3
    data = body(MiB + 100_003, 30)
    before = put(sc, "cp/obj", data)["ec"]
    src = {"Bucket": BUCKET, "Key": "cp/obj"}
    with pytest.raises(ClientError) as e:                   # nothing changes: S3 refuses it
        s3.copy_object(Bucket=BUCKET, Key="cp/obj", CopySource=src)
    assert code(e.value) == (400, "InvalidRequest")
    with pytest.raises(ClientError) as e:                   # the class it has already: the same
        s3.copy_object(Bucket=BUCKET, Key="cp/obj", CopySource=src, StorageClass="STANDARD")
    assert code(e.value) == (400, "InvalidRequest")
    s3.copy_object(Bucket=BUCKET, Key="cp/obj", CopySource=src, StorageClass="ONEZONE_IA")
    after = sc.records(BUCKET)["cp/obj"]
    assert after["storage_class"] == "ONEZONE_IA"
    assert after["ec"]["id"] != before["id"] and {az_of(sc, n) for n in after["ec"]["nodes"]} == \
        {after["ec"]["zone"]}
    assert s3.head_object(Bucket=BUCKET, Key="cp/obj")["StorageClass"] == "ONEZONE_IA"
    assert s3.get_object(Bucket=BUCKET, Key="cp/obj")["Body"].read() == data
    s3.copy_object(Bucket=BUCKET, Key="cp/obj", CopySource=src, StorageClass="REDUCED_REDUNDANCY")
    assert sc.records(BUCKET)["cp/obj"]["ec"]["m"] == 1
    # A copy with no class is STANDARD, whatever the source's (S3's CopyObject).
    s3.copy_object(Bucket=BUCKET, Key="cp/other", CopySource=src)
    assert "StorageClass" not in s3.head_object(Bucket=BUCKET, Key="cp/other")
    assert sc.records(BUCKET)["cp/other"]["ec"]["m"] == 2
    assert s3.get_object(Bucket=BUCKET, Key="cp/other")["Body"].read() == data


def test_a_buckets_default_class_from_the_topology_applies_when_a_request_names_none(sc):
    s3, data = sc.s3, body(MiB + 7, 40)
    s3.create_bucket(Bucket=ONEZONE_BUCKET)
    s3.put_object(Bucket=ONEZONE_BUCKET, Key="plain", Body=data)              # no class named
    s3.put_object(Bucket=ONEZONE_BUCKET, Key="std", Body=data, StorageClass="STANDARD")
    s3.copy_object(Bucket=ONEZONE_BUCKET, Key="copied", CopySource={"Bucket": BUCKET, "Key": "cp/other"})
    up = s3.create_multipart_upload(Bucket=ONEZONE_BUCKET, Key="mp")
    etag = s3.upload_part(Bucket=ONEZONE_BUCKET, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=data)["ETag"]
    s3.complete_multipart_upload(Bucket=ONEZONE_BUCKET, Key="mp", UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    recs = sc.records(ONEZONE_BUCKET)
    for key in ("plain", "copied", "mp"):
        assert s3.head_object(Bucket=ONEZONE_BUCKET, Key=key)["StorageClass"] == "ONEZONE_IA", key
        ec = recs[key].get("ec") or recs[key]["parts"][0]["ec"]
        assert {az_of(sc, n) for n in ec["nodes"]} == {ec["zone"]}, key
    # A class named in the request wins over the bucket's default.
    assert "StorageClass" not in s3.head_object(Bucket=ONEZONE_BUCKET, Key="std")
    assert len({az_of(sc, n) for n in recs["std"]["ec"]["nodes"]}) == 3
    listed = {o["Key"]: o["StorageClass"] for o in s3.list_objects_v2(Bucket=ONEZONE_BUCKET)["Contents"]}
    assert listed == {"copied": "ONEZONE_IA", "mp": "ONEZONE_IA", "plain": "ONEZONE_IA", "std": "STANDARD"}
    # Other buckets keep STANDARD (the topology's default).
    s3.put_object(Bucket=BUCKET, Key="plain-elsewhere", Body=b"x")
    assert "StorageClass" not in s3.head_object(Bucket=BUCKET, Key="plain-elsewhere")
    assert s3.get_object(Bucket=ONEZONE_BUCKET, Key="mp")["Body"].read() == data


def test_the_scrubber_rebuilds_other_schemes_where_they_belong(sc):
    s3 = sc.s3
    data = {"sb/rrs": body(2 * MiB + 100_000, 40), "sb/onezone": body(2 * MiB + 100_001, 41)}
    recs = {"sb/rrs": put(sc, "sb/rrs", data["sb/rrs"], "REDUCED_REDUNDANCY"),
            "sb/onezone": put(sc, "sb/onezone", data["sb/onezone"], "ONEZONE_IA")}
    written = time.time()
    files = sc.fragment_files()
    lost = set()
    for key, rec in recs.items():
        ec = rec["ec"]
        files[(ec["id"], 1)].unlink()                       # one fragment lost (m >= 1)
        lost.add((key, 1))
    for key in data:                                        # GET decodes around it, each its own scheme
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data[key]
    time.sleep(max(0.0, written + 1.5 - time.time()))
    rep = sc.scrub_now()["pass"]
    assert rep["phase"] == "done", rep
    fixed = {(k.partition("/")[2], idx) for k, idx, why, node in rep["fixed"]}
    assert lost <= fixed, json.dumps(rep)
    assert not rep["unrepairable"], rep["unrepairable"]
    now = sc.records(BUCKET)
    oz = now["sb/onezone"]["ec"]
    assert oz["zone"] == recs["sb/onezone"]["ec"]["zone"]
    assert {az_of(sc, n) for n in oz["nodes"]} == {oz["zone"]}            # rebuilt in its zone
    files = sc.fragment_files()
    for key in data:
        ec = now[key]["ec"]
        assert all((ec["id"], i) in files for i in range(len(ec["nodes"])))
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data[key]
    again = sc.scrub_now()["pass"]
    assert not again["damaged"] and not again["rebuilt"] and again["not_full"] == 0, again


def test_losing_its_zone_makes_a_onezone_object_unreadable_not_a_standard_one(sc):
    s3 = sc.s3
    std, oz = body(MiB, 50), body(MiB, 51)
    put(sc, "az/standard", std)
    zone = put(sc, "az/onezone", oz, "ONEZONE_IA")["ec"]["zone"]
    once = boto3.client("s3", endpoint_url=sc.endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY, config=Config(retries={"max_attempts": 1}))
    print(chaos.kill_az(sc.topo, zone))
    try:
        time.sleep(1.0)                                    # let the frontend's prober see it
        assert s3.get_object(Bucket=BUCKET, Key="az/standard")["Body"].read() == std
        with pytest.raises(ClientError) as e:
            once.get_object(Bucket=BUCKET, Key="az/onezone")
        # What minis3 answers when too few fragments can be read (datapath: InternalError).
        assert code(e.value) == (500, "InternalError")
        # Its record is still there: HEAD answers from the metadata replicas.
        assert s3.head_object(Bucket=BUCKET, Key="az/onezone")["StorageClass"] == "ONEZONE_IA"
        # A new ONEZONE_IA object goes to a whole AZ.
        rec = put(sc, "az/onezone-new", oz, "ONEZONE_IA")
        assert rec["ec"]["zone"] != zone
    finally:
        print(chaos.revive_az(sc.topo, zone))
        sc.wait_healthy()
    assert s3.get_object(Bucket=BUCKET, Key="az/onezone")["Body"].read() == oz
