"""Versioning through boto3 and the aws CLI against a real cluster:
bucket states, versions made by every write, reads by version id, delete
markers, removal of versions, ListObjectVersions, tags and attributes per
version, multipart retries, and GC of removed versions' fragments."""
from __future__ import annotations

import json
import botocore.exceptions
import pytest

from .s3helpers import empty_every_version

MiB = 1024 * 1024


def _code(exc_info) -> str:
    return exc_info.value.response["Error"]["Code"]


def _status(exc_info) -> int:
    return exc_info.value.response["ResponseMetadata"]["HTTPStatusCode"]


def _headers(resp) -> dict:
    return resp["ResponseMetadata"]["HTTPHeaders"]


@pytest.fixture
def vbucket(s3, request):
    name = "v-" + request.node.name.lower().replace("_", "-").replace("[", "-").replace("]", "")[:40].rstrip("-")
    name = "".join(c for c in name if c.isalnum() or c == "-")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    yield name
    empty_every_version(s3, name)
    s3.delete_bucket(Bucket=name)


def _versions(s3, bucket, **kw) -> list[tuple[str, str, bool, bool]]:
    """(key, version id, is latest, is a delete marker), in S3's order."""
    page = s3.list_object_versions(Bucket=bucket, **kw)
    out = [(v["Key"], v["VersionId"], v["IsLatest"], False) for v in page.get("Versions", [])]
    out += [(m["Key"], m["VersionId"], m["IsLatest"], True) for m in page.get("DeleteMarkers", [])]
    # boto3 splits the two kinds apart; S3's order is key, then newest first.
    order = {vid: i for i, vid in enumerate(_raw_order(page))}
    return sorted(out, key=lambda t: order[t[1]])


def _raw_order(page) -> list[str]:
    """Version ids in the order the XML listed them (boto3 keeps each list's order,
    and within a key a newer version always comes first)."""
    items = [(v["Key"], v["LastModified"], v["VersionId"]) for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
    return [vid for _, _, vid in sorted(items, key=lambda t: (t[0], -t[1].timestamp(), t[2]))]


# ----------------------------------------------------------------------------- bucket state
def test_bucket_versioning_states(s3, bucket):
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="before", Body=b"unversioned")
    assert "x-amz-version-id" not in _headers(s3.head_object(Bucket=bucket, Key="before"))
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    with pytest.raises(botocore.exceptions.ClientError) as e:     # MFA delete: refused, never ignored
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled", "MFADelete": "Enabled"})
    assert _status(e) == 501 and _code(e) == "NotImplemented"
    # The object from before is the null version.
    vs = _versions(s3, bucket)
    assert vs == [("before", "null", True, False)]
    assert s3.get_object(Bucket=bucket, Key="before", VersionId="null")["Body"].read() == b"unversioned"
    empty_every_version(s3, bucket)


def test_put_versioning_bad_status(s3, bucket):
    with pytest.raises(botocore.exceptions.ClientError) as e:       # (botocore does not check enums)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "On"})
    assert _status(e) == 400 and _code(e) == "IllegalVersioningConfigurationException"
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)


# ----------------------------------------------------------------------------- writes and reads
def test_every_write_makes_a_version(s3, vbucket):
    ids = []
    for i in range(3):
        r = s3.put_object(Bucket=vbucket, Key="k", Body=f"v{i}".encode())
        ids.append(r["VersionId"])
    assert len(set(ids)) == 3 and "null" not in ids
    assert s3.get_object(Bucket=vbucket, Key="k")["Body"].read() == b"v2"
    for i, vid in enumerate(ids):
        got = s3.get_object(Bucket=vbucket, Key="k", VersionId=vid)
        assert got["Body"].read() == f"v{i}".encode() and got["VersionId"] == vid
        assert s3.head_object(Bucket=vbucket, Key="k", VersionId=vid)["ContentLength"] == 2
    # ranges, conditions and checksums on an old version
    assert s3.get_object(Bucket=vbucket, Key="k", VersionId=ids[0], Range="bytes=1-1")["Body"].read() == b"0"
    etag0 = s3.head_object(Bucket=vbucket, Key="k", VersionId=ids[0])["ETag"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket=vbucket, Key="k", VersionId=ids[0], IfNoneMatch=etag0)
    assert _status(e) == 304
    got = s3.get_object(Bucket=vbucket, Key="k", VersionId=ids[1], ChecksumMode="ENABLED")
    assert got["Body"].read() == b"v1" and any(k.startswith("Checksum") for k in got)
    # copy from a version; copy onto the key restores an old version as a new one
    c = s3.copy_object(Bucket=vbucket, Key="copy", CopySource={"Bucket": vbucket, "Key": "k", "VersionId": ids[0]})
    assert c["CopySourceVersionId"] == ids[0] and c["VersionId"] not in ids
    assert s3.get_object(Bucket=vbucket, Key="copy")["Body"].read() == b"v0"
    r = s3.copy_object(Bucket=vbucket, Key="k", CopySource={"Bucket": vbucket, "Key": "k", "VersionId": ids[0]})
    assert s3.get_object(Bucket=vbucket, Key="k")["Body"].read() == b"v0"
    assert [v[1] for v in _versions(s3, vbucket, Prefix="k")] == [r["VersionId"], ids[2], ids[1], ids[0]]
    # bad and unknown version ids
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket=vbucket, Key="k", VersionId="not-a-version")
    assert _status(e) == 400 and _code(e) == "InvalidArgument"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket=vbucket, Key="k", VersionId="0" * 28)
    assert _status(e) == 404 and _code(e) == "NoSuchVersion"


def test_delete_markers_and_removing_versions(s3, vbucket):
    v1 = s3.put_object(Bucket=vbucket, Key="d", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=vbucket, Key="d", Body=b"two")["VersionId"]
    r = s3.delete_object(Bucket=vbucket, Key="d")
    assert r["DeleteMarker"] is True and r["VersionId"] not in (v1, v2)
    marker = r["VersionId"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket=vbucket, Key="d")
    assert _status(e) == 404 and _code(e) == "NoSuchKey"
    assert _headers(e.value.response)["x-amz-delete-marker"] == "true"
    assert _headers(e.value.response)["x-amz-version-id"] == marker
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.head_object(Bucket=vbucket, Key="d")
    assert _status(e) == 404
    with pytest.raises(botocore.exceptions.ClientError) as e:      # a marker by its id: 405
        s3.get_object(Bucket=vbucket, Key="d", VersionId=marker)
    assert _status(e) == 405 and _code(e) == "MethodNotAllowed"
    assert _headers(e.value.response)["x-amz-delete-marker"] == "true"
    # the key is not listed, its versions are
    assert "Contents" not in s3.list_objects_v2(Bucket=vbucket, Prefix="d")
    assert _versions(s3, vbucket, Prefix="d") == [("d", marker, True, True), ("d", v2, False, False),
                                                  ("d", v1, False, False)]
    # removing the marker "undeletes" the key
    r = s3.delete_object(Bucket=vbucket, Key="d", VersionId=marker)
    assert r["DeleteMarker"] is True and r["VersionId"] == marker
    assert s3.get_object(Bucket=vbucket, Key="d")["Body"].read() == b"two"
    # removing the current version makes the one before current
    r = s3.delete_object(Bucket=vbucket, Key="d", VersionId=v2)
    assert r["VersionId"] == v2 and "DeleteMarker" not in r
    assert s3.get_object(Bucket=vbucket, Key="d")["Body"].read() == b"one"
    assert _versions(s3, vbucket, Prefix="d") == [("d", v1, True, False)]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket=vbucket, Key="d", VersionId=v2)
    assert _code(e) == "NoSuchVersion"
    s3.delete_object(Bucket=vbucket, Key="d", VersionId=v1)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket=vbucket, Key="d")
    assert _code(e) == "NoSuchKey" and "x-amz-delete-marker" not in _headers(e.value.response)
    assert _versions(s3, vbucket, Prefix="d") == []


def test_delete_objects_with_version_ids(s3, vbucket):
    a1 = s3.put_object(Bucket=vbucket, Key="a", Body=b"a1")["VersionId"]
    s3.put_object(Bucket=vbucket, Key="a", Body=b"a2")
    s3.put_object(Bucket=vbucket, Key="b", Body=b"b1")
    r = s3.delete_objects(Bucket=vbucket, Delete={"Objects": [{"Key": "a", "VersionId": a1}, {"Key": "b"}]})
    got = {d["Key"]: d for d in r["Deleted"]}
    assert got["a"]["VersionId"] == a1 and "DeleteMarker" not in got["a"]
    assert got["b"]["DeleteMarker"] is True and got["b"]["DeleteMarkerVersionId"]
    assert s3.get_object(Bucket=vbucket, Key="a")["Body"].read() == b"a2"
    with pytest.raises(botocore.exceptions.ClientError):
        s3.get_object(Bucket=vbucket, Key="b")
    r = s3.delete_objects(Bucket=vbucket, Delete={"Objects": [{"Key": "b", "VersionId": got["b"]["DeleteMarkerVersionId"]}]})
    assert r["Deleted"][0]["DeleteMarker"] is True
    assert s3.get_object(Bucket=vbucket, Key="b")["Body"].read() == b"b1"


def test_suspended_bucket_writes_the_null_version(s3, bucket):
    s3.put_object(Bucket=bucket, Key="n", Body=b"null 1")                # before versioning: null
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v = s3.put_object(Bucket=bucket, Key="n", Body=b"real")["VersionId"]
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    r = s3.put_object(Bucket=bucket, Key="n", Body=b"null 2")
    assert r.get("VersionId") == "null"
    # the null version was replaced (not kept): the one real version remains
    assert [(x[1], x[2]) for x in _versions(s3, bucket, Prefix="n")] == [("null", True), (v, False)]
    assert s3.get_object(Bucket=bucket, Key="n", VersionId="null")["Body"].read() == b"null 2"
    r = s3.put_object(Bucket=bucket, Key="n", Body=b"null 3")
    assert [(x[1], x[2]) for x in _versions(s3, bucket, Prefix="n")] == [("null", True), (v, False)]
    # a delete in a suspended bucket: a null delete marker
    r = s3.delete_object(Bucket=bucket, Key="n")
    assert r["DeleteMarker"] is True and r["VersionId"] == "null"
    assert _versions(s3, bucket, Prefix="n") == [("n", "null", True, True), ("n", v, False, False)]
    assert s3.get_object(Bucket=bucket, Key="n", VersionId=v)["Body"].read() == b"real"
    empty_every_version(s3, bucket)


# ----------------------------------------------------------------------------- listing
def test_list_object_versions_paging_prefixes_and_encoding(s3, vbucket):
    made = {}
    for key in ("a/1", "a/2", "b", "c d"):
        made[key] = [s3.put_object(Bucket=vbucket, Key=key, Body=f"{key}{i}".encode())["VersionId"]
                     for i in range(3)]
    s3.delete_object(Bucket=vbucket, Key="b")
    everything = _versions(s3, vbucket)
    assert len(everything) == 13
    assert [x[0] for x in everything] == ["a/1"] * 3 + ["a/2"] * 3 + ["b"] * 4 + ["c d"] * 3
    # newest first within a key, latest flagged once per key
    assert [x[1] for x in everything if x[0] == "a/1"] == made["a/1"][::-1]
    assert sum(1 for x in everything if x[2]) == 4
    # paging by key-marker and version-id-marker, max-keys 2
    seen, kw = [], {}
    while True:
        page = s3.list_object_versions(Bucket=vbucket, MaxKeys=2, **kw)
        seen += _raw_order(page)
        assert len(page.get("Versions", []) + page.get("DeleteMarkers", [])) <= 2
        if not page["IsTruncated"]:
            break
        kw = {"KeyMarker": page["NextKeyMarker"], "VersionIdMarker": page["NextVersionIdMarker"]}
    assert seen == [x[1] for x in everything]
    # a key marker alone starts after every version of that key
    assert {x[0] for x in _versions(s3, vbucket, KeyMarker="b")} == {"c d"}
    # delimiter
    page = s3.list_object_versions(Bucket=vbucket, Delimiter="/")
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["a/"]
    assert {v["Key"] for v in page["Versions"]} == {"b", "c d"}
    # ListObjects shows current versions only, never markers
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=vbucket)["Contents"]] == ["a/1", "a/2", "c d"]
    assert [o["Key"] for o in s3.list_objects(Bucket=vbucket)["Contents"]] == ["a/1", "a/2", "c d"]


def test_version_listing_encodes_keys(s3, vbucket):
    s3.put_object(Bucket=vbucket, Key="sp ace+plus", Body=b"x")
    bodies = []

    def keep(response_dict, **_):
        bodies.append(response_dict["body"])
    s3.meta.events.register("before-parse.s3.ListObjectVersions", keep)
    try:
        s3.list_object_versions(Bucket=vbucket, EncodingType="url")
        s3.list_object_versions(Bucket=vbucket)
    finally:
        s3.meta.events.unregister("before-parse.s3.ListObjectVersions", keep)
    assert b"<Key>sp%20ace%2Bplus</Key>" in bodies[0] and b"<EncodingType>url</EncodingType>" in bodies[0]
    # (boto3 asks for url encoding itself when not told to, and decodes it back)
    assert s3.list_object_versions(Bucket=vbucket)["Versions"][0]["Key"] == "sp ace+plus"


# ----------------------------------------------------------------------------- tags and attributes
def test_tags_and_attributes_per_version(s3, vbucket):
    v1 = s3.put_object(Bucket=vbucket, Key="t", Body=b"first", Tagging="gen=1")["VersionId"]
    v2 = s3.put_object(Bucket=vbucket, Key="t", Body=b"second!", Tagging="gen=2")["VersionId"]
    assert s3.get_object_tagging(Bucket=vbucket, Key="t", VersionId=v1)["TagSet"] == [{"Key": "gen", "Value": "1"}]
    assert s3.get_object_tagging(Bucket=vbucket, Key="t")["TagSet"] == [{"Key": "gen", "Value": "2"}]
    r = s3.put_object_tagging(Bucket=vbucket, Key="t", VersionId=v1, Tagging={"TagSet": [{"Key": "old", "Value": "y"}]})
    assert r["VersionId"] == v1
    assert s3.get_object_tagging(Bucket=vbucket, Key="t", VersionId=v1)["TagSet"] == [{"Key": "old", "Value": "y"}]
    assert s3.get_object_tagging(Bucket=vbucket, Key="t")["TagSet"] == [{"Key": "gen", "Value": "2"}]
    s3.delete_object_tagging(Bucket=vbucket, Key="t", VersionId=v2)
    assert s3.get_object_tagging(Bucket=vbucket, Key="t", VersionId=v2)["TagSet"] == []
    # a tag change makes no version
    assert len(_versions(s3, vbucket, Prefix="t")) == 2
    a = s3.get_object_attributes(Bucket=vbucket, Key="t", VersionId=v1, ObjectAttributes=["ObjectSize", "ETag"])
    assert a["ObjectSize"] == 5 and a["VersionId"] == v1
    assert s3.get_object_attributes(Bucket=vbucket, Key="t", ObjectAttributes=["ObjectSize"])["ObjectSize"] == 7


# ----------------------------------------------------------------------------- multipart
def test_multipart_versions_and_a_retried_complete(s3, vbucket):
    up = s3.create_multipart_upload(Bucket=vbucket, Key="mp")
    parts = []
    for n in (1, 2):
        body = bytes([n]) * (5 * MiB if n == 1 else 1000)
        parts.append({"PartNumber": n, "ETag": s3.upload_part(Bucket=vbucket, Key="mp", UploadId=up["UploadId"],
                                                              PartNumber=n, Body=body)["ETag"]})
    done = s3.complete_multipart_upload(Bucket=vbucket, Key="mp", UploadId=up["UploadId"],
                                        MultipartUpload={"Parts": parts})
    assert done["VersionId"]
    again = s3.complete_multipart_upload(Bucket=vbucket, Key="mp", UploadId=up["UploadId"],
                                         MultipartUpload={"Parts": parts})
    assert again["ETag"] == done["ETag"] and again["VersionId"] == done["VersionId"]
    assert [x[1] for x in _versions(s3, vbucket, Prefix="mp")] == [done["VersionId"]]
    s3.put_object(Bucket=vbucket, Key="mp", Body=b"newer")           # the multipart one is now old
    part = s3.get_object(Bucket=vbucket, Key="mp", VersionId=done["VersionId"], PartNumber=2)
    assert part["ContentLength"] == 1000 and part["PartsCount"] == 2 and part["VersionId"] == done["VersionId"]
    # a part copied from an old version
    old = s3.put_object(Bucket=vbucket, Key="src", Body=b"old" * 2000)["VersionId"]
    s3.put_object(Bucket=vbucket, Key="src", Body=b"new")
    up2 = s3.create_multipart_upload(Bucket=vbucket, Key="mp2")
    r = s3.upload_part_copy(Bucket=vbucket, Key="mp2", UploadId=up2["UploadId"], PartNumber=1,
                            CopySource={"Bucket": vbucket, "Key": "src", "VersionId": old})
    assert r["CopySourceVersionId"] == old
    s3.complete_multipart_upload(Bucket=vbucket, Key="mp2", UploadId=up2["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": r["CopyPartResult"]["ETag"]}]})
    assert s3.get_object(Bucket=vbucket, Key="mp2")["Body"].read() == b"old" * 2000


def test_a_versioned_bucket_is_empty_only_without_any_version(s3):
    s3.create_bucket(Bucket="v-empty-check")
    s3.put_bucket_versioning(Bucket="v-empty-check", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="v-empty-check", Key="x", Body=b"x")
    s3.delete_object(Bucket="v-empty-check", Key="x")           # a marker: still not empty
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.delete_bucket(Bucket="v-empty-check")
    assert _code(e) == "BucketNotEmpty"
    empty_every_version(s3, "v-empty-check")
    s3.delete_bucket(Bucket="v-empty-check")


# ----------------------------------------------------------------------------- the aws CLI
def test_versioning_with_the_aws_cli(aws, s3, bucket, tmp_path):
    aws("s3api", "put-bucket-versioning", "--bucket", bucket, "--versioning-configuration", "Status=Enabled")
    assert json.loads(aws("s3api", "get-bucket-versioning", "--bucket", bucket).stdout)["Status"] == "Enabled"
    f = tmp_path / "body"
    ids = []
    for i in range(2):
        f.write_bytes(f"cli {i}".encode())
        ids.append(json.loads(aws("s3api", "put-object", "--bucket", bucket, "--key", "c", "--body", str(f)).stdout)
                   ["VersionId"])
    listed = json.loads(aws("s3api", "list-object-versions", "--bucket", bucket).stdout)
    assert [v["VersionId"] for v in listed["Versions"]] == ids[::-1]
    out = tmp_path / "out"
    aws("s3api", "get-object", "--bucket", bucket, "--key", "c", "--version-id", ids[0], str(out))
    assert out.read_bytes() == b"cli 0"
    aws("s3api", "delete-object", "--bucket", bucket, "--key", "c", "--version-id", ids[1])
    assert s3.get_object(Bucket=bucket, Key="c")["Body"].read() == b"cli 0"
    empty_every_version(s3, bucket)


def test_removing_the_two_newest_versions_at_once_leaves_the_third_current(s3, vbucket, cluster):
    """Two removals racing (the current version and the one below it, which
    the first removal would make current): neither removed version may stay
    or come back as current."""
    import threading
    from .conftest import make_client
    other = make_client(cluster.endpoint)
    for round_ in range(8):
        key = f"race{round_}"
        ids = [s3.put_object(Bucket=vbucket, Key=key, Body=f"{round_}-{i}".encode())["VersionId"] for i in range(4)]
        barrier = threading.Barrier(2)

        def remove(client, vid):
            barrier.wait()
            client.delete_object(Bucket=vbucket, Key=key, VersionId=vid)
        threads = [threading.Thread(target=remove, args=(c, v)) for c, v in ((s3, ids[3]), (other, ids[2]))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert s3.get_object(Bucket=vbucket, Key=key)["Body"].read() == f"{round_}-1".encode()
        assert [(v[1], v[2]) for v in _versions(s3, vbucket, Prefix=key)] == [(ids[1], True), (ids[0], False)]
