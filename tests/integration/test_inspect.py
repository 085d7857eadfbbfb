"""`minis3 inspect`: inline, erasure-coded, multipart and degraded objects, checked live."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import boto3
import pytest

from minis3.cluster import chaos

from .cluster import ACCESS_KEY, SECRET_KEY, TestCluster


@pytest.fixture(scope="module")
def ic(tmp_path_factory):
    # No background audit: a corrupt fragment is found by inspect's own read.
    c = TestCluster(tmp_path_factory.mktemp("inspect"), scrub={"audit_mb_per_s": 0}).start()
    c.s3 = boto3.client("s3", endpoint_url=c.endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY)
    c.s3.create_bucket(Bucket="seen")
    yield c
    c.discard()


def inspect(c, url: str, *args: str) -> tuple[int, str, str]:
    r = subprocess.run([sys.executable, "-m", "minis3", "inspect", url, *args, "--topology", str(c.topo_path)],
                       capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout, r.stderr


def doc(c, url: str, *args: str) -> dict:
    rc, out, err = inspect(c, url, "--json", *args)
    assert rc == 0, err
    return json.loads(out)


def test_an_inline_object_shows_its_record_and_partition(ic):
    ic.s3.put_object(Bucket="seen", Key="notes/a.txt", Body=b"hello", ContentType="text/plain",
                     Metadata={"author": "ada"})
    d = doc(ic, "s3://seen/notes/a.txt")
    assert d["stored"] == "inline" and d["size"] == 5 and d["sets"] == [{"label": "object", "size": 5,
                                                                           "inline": True}]
    assert d["content_type"] == "text/plain" and d["user_metadata"] == {"author": "ada"}
    assert d["etag"] == "5d41402abc4b2a76b9719d911017c592" and d["version"]["vid"]
    pmap = ic.partition_map()
    e = pmap.locate("seen/notes/a.txt")
    assert d["partition"]["id"] == e.id and d["partition"]["replicas"] == dict(e.replicas)
    rc, text, _ = inspect(ic, "s3://seen/notes/a.txt")
    assert rc == 0 and "inline in the metadata record" in text and f"partition   {e.id}" in text
    # A bucket that never kept versions: the key has one version, null, the latest.
    assert d["version_id"] == "null" and d["is_latest"] and not d["delete_marker"] and d["versioning"] is None
    assert [(v["version_id"], v["latest"], v["size"], v["stored"]) for v in d["versions"]] == \
        [("null", True, 5, "inline")]
    assert "versions    1, newest first (bucket versioning: never enabled" in text


def test_an_erasure_coded_object_shows_its_fragments_one_column_per_az_and_their_bytes(ic):
    data = os.urandom((2 << 20) + 12345)
    ic.s3.put_object(Bucket="seen", Key="big.bin", Body=data)
    d = doc(ic, "s3://seen/big.bin", "--segment", "1", "--bytes", "--count", "32")
    (s,) = d["sets"]
    assert d["stored"] == "erasure-coded" and s["segments"] == 3 and s["k"] == 4 and s["m"] == 2
    assert [f["check"] for f in s["fragments"]] == ["verified"] * 6 and s["readable"] and s["full"]
    per_az = {}
    for f in s["fragments"]:
        per_az[f["az"]] = per_az.get(f["az"], 0) + 1
    assert per_az == {"az-a": 2, "az-b": 2, "az-c": 2}
    import base64
    rows = d["segment_bytes"]
    assert d["encryption"]["alg"] == "AES256"
    for r in rows:
        got = base64.b64decode(r["first_bytes"])
        if r["kind"] == "data":          # a data fragment is a slice of the sealed segment: ciphertext...
            plain = data[r["object_offset"]:r["object_offset"] + 32]
            assert got != plain and base64.b64decode(r["plain_bytes"]) == plain    # ... which the data key opens
        else:                            # a parity fragment is no copy of any slice
            assert "plain_bytes" not in r
            assert all(got != base64.b64decode(x["first_bytes"]) for x in rows if x["kind"] == "data")
    rc, text, _ = inspect(ic, "s3://seen/big.bin")
    header = next(ln for ln in text.splitlines() if ln.strip().startswith("az-a"))
    assert rc == 0 and header.split() == ["az-a", "az-b", "az-c"] and "6 of 6 fragments verified" in text


def test_a_multipart_object_shows_each_part(ic):
    up = ic.s3.create_multipart_upload(Bucket="seen", Key="mp.bin")["UploadId"]
    p1 = ic.s3.upload_part(Bucket="seen", Key="mp.bin", UploadId=up, PartNumber=1, Body=os.urandom(5 << 20))
    p2 = ic.s3.upload_part(Bucket="seen", Key="mp.bin", UploadId=up, PartNumber=2, Body=b"tail")
    ic.s3.complete_multipart_upload(Bucket="seen", Key="mp.bin", UploadId=up, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": p1["ETag"]}, {"PartNumber": 2, "ETag": p2["ETag"]}]})
    d = doc(ic, "s3://seen/mp.bin")
    assert d["stored"] == "multipart" and d["etag"].endswith("-2")
    first, second = d["sets"]
    assert first["label"] == "part 1" and first["segments"] == 5 and len(first["fragments"]) == 6
    assert second == {"label": "part 2", "size": 4, "inline": True}


def test_a_killed_node_and_a_corrupt_fragment_show_as_such(ic):
    ic.s3.put_object(Bucket="seen", Key="hurt.bin", Body=os.urandom(3 << 20))
    (s,) = doc(ic, "s3://seen/hurt.bin")["sets"]
    down, bad = s["fragments"][0], s["fragments"][3]
    assert down["node"] != bad["node"]
    path = next(p for (oid, idx), p in ic.fragment_files().items() if oid == s["object_id"] and idx == bad["index"])
    raw = bytearray(path.read_bytes())
    raw[-100] ^= 0xFF                                    # one flipped bit in the last block's data
    path.write_bytes(bytes(raw))
    print(chaos.kill_node(ic.topo, down["node"]))
    try:
        (s,) = doc(ic, "s3://seen/hurt.bin")["sets"]
        f = {x["index"]: x for x in s["fragments"]}
        assert f[down["index"]]["state"] == "unreachable"
        assert f[bad["index"]]["check"] == "corrupt"        # its node refused it on the read
        assert s["readable"] and not s["full"]
        # The node moved it to quarantine: the next look says so.
        rc, text, _ = inspect(ic, "s3://seen/hurt.bin")
        assert rc == 0 and "(node down)" in text and "CORRUPT (quarantined by read" in text
        assert "4 of 6 fragments verified; readable" in text and "NOT at full redundancy" in text
    finally:
        print(chaos.revive_node(ic.topo, down["node"]))
        ic.wait_healthy()


def test_every_version_is_listed_one_is_inspected_by_id_and_a_current_delete_marker_says_so(ic):
    ic.s3.create_bucket(Bucket="kept")
    ic.s3.put_bucket_versioning(Bucket="kept", VersioningConfiguration={"Status": "Enabled"})
    big = os.urandom((1 << 20) + 5)
    v1 = ic.s3.put_object(Bucket="kept", Key="doc", Body=big)["VersionId"]
    v2 = ic.s3.put_object(Bucket="kept", Key="doc", Body=b"small")["VersionId"]
    ic.s3.put_object(Bucket="kept", Key="doc/other", Body=b"x")     # "doc" is its prefix: not one of doc's
    d = doc(ic, "s3://kept/doc")
    assert (d["version_id"], d["is_latest"], d["delete_marker"], d["stored"], d["versioning"]) == \
        (v2, True, False, "inline", "Enabled")
    assert [(v["version_id"], v["latest"], v["delete_marker"], v["size"], v["stored"]) for v in d["versions"]] == \
        [(v2, True, False, 5, "inline"), (v1, False, False, len(big), "erasure-coded")]
    assert d["versions"][0]["sets"] == [{"label": "object", "size": 5, "inline": True}]
    assert d["versions"][0]["time"].endswith(" UTC") and d["versions"][0]["mtime_ms"] >= d["versions"][1]["mtime_ms"]
    (old,) = d["versions"][1]["sets"]                    # the old version's fragments: node and AZ of each
    assert len(old["fragments"]) == 6 and all(f["state"] == "ok" for f in old["fragments"])
    assert sorted(f["az"] for f in old["fragments"]) == ["az-a", "az-a", "az-b", "az-b", "az-c", "az-c"]

    # --version-id: that version in full, its fragments read back.
    d1 = doc(ic, "s3://kept/doc", "--version-id", v1)
    assert (d1["version_id"], d1["is_latest"], d1["stored"], d1["size"]) == (v1, False, "erasure-coded", len(big))
    (s,) = d1["sets"]
    assert s["object_id"] == old["object_id"] and [f["check"] for f in s["fragments"]] == ["verified"] * 6
    rc, text, _ = inspect(ic, "s3://kept/doc", "--version-id", v1)
    assert rc == 0 and f"versionId   {v1} (not the latest)" in text and "6 of 6 fragments verified" in text
    shown = next(ln for ln in text.splitlines() if v1 in ln and ln.strip().startswith("*"))
    assert "az-a: " in shown and "az-b: " in shown and "az-c: " in shown

    # A delete marker is current: GET says NoSuchKey, and inspect still shows the key, saying so.
    m = ic.s3.delete_object(Bucket="kept", Key="doc")["VersionId"]
    d = doc(ic, "s3://kept/doc")
    assert (d["version_id"], d["is_latest"], d["delete_marker"], d["stored"], d["sets"]) == \
        (m, True, True, "delete marker", [])
    assert [(v["version_id"], v["latest"], v["delete_marker"], v["size"]) for v in d["versions"]] == \
        [(m, True, True, None), (v2, False, False, 5), (v1, False, False, len(big))]
    rc, text, _ = inspect(ic, "s3://kept/doc")
    assert rc == 0 and "DELETE MARKER (the current version" in text and "versions    3, newest first" in text
    marker_line = next(ln for ln in text.splitlines() if m in ln and ln.strip().startswith("*"))
    assert "latest" in marker_line and "delete marker" in marker_line
    rc, _, err = inspect(ic, "s3://kept/doc", "--segment", "0", "--bytes")
    assert rc == 2 and "delete marker" in err

    # A version id that is not there, or that minis3 never makes.
    rc, _, err = inspect(ic, "s3://kept/doc", "--version-id", "f" * 28)
    assert rc == 1 and "NoSuchVersion" in err
    rc, _, err = inspect(ic, "s3://kept/doc", "--version-id", "v1")
    assert rc == 2 and "Invalid version id" in err


def test_a_missing_object_and_a_bad_url_are_errors(ic):
    rc, _, err = inspect(ic, "s3://seen/nope")
    assert rc == 1 and "no object" in err
    rc, _, err = inspect(ic, "seen/nope")
    assert rc == 2 and "s3://BUCKET/KEY" in err
