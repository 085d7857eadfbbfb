"""Tagging, GetObjectAttributes and CompleteMultipartUpload as application
code uses them, through boto3 and the aws CLI against a real cluster."""
from __future__ import annotations

import base64
import hashlib
import json

import botocore.exceptions
import pytest

from .cluster import ACCESS_KEY

MiB = 1024 * 1024


def _code(exc_info) -> str:
    return exc_info.value.response["Error"]["Code"]


def _status(exc_info) -> int:
    return exc_info.value.response["ResponseMetadata"]["HTTPStatusCode"]


def _tags(d: dict) -> list[tuple[str, str]]:
    return [(t["Key"], t["Value"]) for t in d["TagSet"]]


# ----------------------------------------------------------------------------- object tagging
def test_object_tags_on_put_and_by_tagging_calls_without_touching_the_bytes(s3, bucket, cluster):
    body = b"tagged bytes " * 5000
    s3.put_object(Bucket=bucket, Key="t", Body=body, Tagging="team=storage&cost%20centre=42&empty=")
    assert sorted(_tags(s3.get_object_tagging(Bucket=bucket, Key="t"))) == \
        [("cost centre", "42"), ("empty", ""), ("team", "storage")]
    head = s3.head_object(Bucket=bucket, Key="t")
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-tagging-count"] == "3"
    got = s3.get_object(Bucket=bucket, Key="t")
    assert got["TagCount"] == 3 and got["Body"].read() == body
    before = head["ETag"], head["LastModified"]

    s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [{"Key": "é/ü", "Value": "v" * 256}]})
    assert _tags(s3.get_object_tagging(Bucket=bucket, Key="t")) == [("é/ü", "v" * 256)]
    head = s3.head_object(Bucket=bucket, Key="t")
    assert (head["ETag"], head["LastModified"]) == before       # tags are not a new object
    assert s3.get_object(Bucket=bucket, Key="t")["Body"].read() == body
    # The record points at the same fragments: `minis3 inspect` shows the tags.
    out = cluster_inspect(cluster, bucket, "t")
    assert "é/ü" in out

    s3.delete_object_tagging(Bucket=bucket, Key="t")
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == []
    assert "x-amz-tagging-count" not in s3.head_object(Bucket=bucket, Key="t")["ResponseMetadata"]["HTTPHeaders"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object_tagging(Bucket=bucket, Key="missing")
    assert _code(e) == "NoSuchKey"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object_tagging(Bucket=bucket, Key="missing", Tagging={"TagSet": []})
    assert _code(e) == "NoSuchKey"


def cluster_inspect(cluster, bucket: str, key: str) -> str:
    import subprocess
    import sys
    from pathlib import Path
    p = subprocess.run([str(Path(sys.executable).parent / "minis3"), "inspect", "--topology", str(cluster.topo_path),
                        f"s3://{bucket}/{key}"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


@pytest.mark.parametrize("tagset, code", [
    ([{"Key": f"k{i}", "Value": "v"} for i in range(11)], "BadRequest"),
    ([{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}], "InvalidTag"),
    ([{"Key": "k" * 129, "Value": "v"}], "InvalidTag"),
    ([{"Key": "k", "Value": "v" * 257}], "InvalidTag"),
    ([{"Key": "aws:reserved", "Value": "v"}], "InvalidTag"),
    ([{"Key": "k", "Value": "a#b"}], "InvalidTag"),           # not a character AWS's tag pattern allows
])
def test_object_tag_limits_are_s3s(s3, bucket, tagset, code):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": tagset})
    assert _code(e) == code and _status(e) == 400


def test_tagging_header_on_put_copy_and_multipart(s3, bucket):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object(Bucket=bucket, Key="dup", Body=b"x", Tagging="a=1&a=2")
    assert _code(e) == "InvalidArgument"
    s3.put_object(Bucket=bucket, Key="src", Body=b"source", Tagging="colour=blue")
    s3.copy_object(Bucket=bucket, Key="copied", CopySource={"Bucket": bucket, "Key": "src"})
    assert _tags(s3.get_object_tagging(Bucket=bucket, Key="copied")) == [("colour", "blue")]
    s3.copy_object(Bucket=bucket, Key="replaced", CopySource={"Bucket": bucket, "Key": "src"},
                   TaggingDirective="REPLACE", Tagging="colour=red&size=L")
    assert _tags(s3.get_object_tagging(Bucket=bucket, Key="replaced")) == [("colour", "red"), ("size", "L")]
    up = s3.create_multipart_upload(Bucket=bucket, Key="mpu", Tagging="stage=upload")
    etag = s3.upload_part(Bucket=bucket, Key="mpu", UploadId=up["UploadId"], PartNumber=1, Body=b"p")["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="mpu", UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert _tags(s3.get_object_tagging(Bucket=bucket, Key="mpu")) == [("stage", "upload")]


def test_a_tagging_change_never_undoes_a_put_that_landed_meanwhile(s3, bucket):
    """Tagging is a compare-and-set on the key's current version: however
    PUTs and tag changes interleave, the last PUT's bytes stay the object."""
    import threading
    stop = threading.Event()
    last = {}

    def writer():
        i = 0
        while not stop.is_set() and i < 40:
            s3.put_object(Bucket=bucket, Key="busy", Body=f"version {i}".encode())
            last["body"] = f"version {i}".encode()
            i += 1
    s3.put_object(Bucket=bucket, Key="busy", Body=b"start")
    t = threading.Thread(target=writer)
    t.start()
    for i in range(30):
        s3.put_object_tagging(Bucket=bucket, Key="busy", Tagging={"TagSet": [{"Key": "n", "Value": str(i)}]})
    stop.set()
    t.join()
    assert s3.get_object(Bucket=bucket, Key="busy")["Body"].read() == last["body"]


# ----------------------------------------------------------------------------- bucket tagging
def test_bucket_tagging(s3, bucket, aws):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_bucket_tagging(Bucket=bucket)
    assert _code(e) == "NoSuchTagSet" and _status(e) == 404
    tags = [{"Key": f"k{i}", "Value": f"v{i}"} for i in range(50)]
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags})
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == tags
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags + [{"Key": "k50", "Value": "x"}]})
    assert _code(e) == "InvalidTag"
    out = json.loads(aws("s3api", "get-bucket-tagging", "--bucket", bucket).stdout)
    assert out["TagSet"][0] == {"Key": "k0", "Value": "v0"}
    s3.delete_bucket_tagging(Bucket=bucket)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_bucket_tagging(Bucket=bucket)
    assert _code(e) == "NoSuchTagSet"


# ----------------------------------------------------------------------------- GetObjectAttributes
ALL = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]


def test_get_object_attributes_single_part(s3, bucket, aws):
    body = b"attributes " * 1000
    put = s3.put_object(Bucket=bucket, Key="one", Body=body, ChecksumAlgorithm="SHA256")
    a = s3.get_object_attributes(Bucket=bucket, Key="one", ObjectAttributes=ALL)
    assert a["ETag"] == put["ETag"].strip('"')
    assert a["ObjectSize"] == len(body) and a["StorageClass"] == "STANDARD"
    assert a["Checksum"]["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert a["Checksum"]["ChecksumType"] == "FULL_OBJECT"
    assert "ObjectParts" not in a and "LastModified" in a
    only = s3.get_object_attributes(Bucket=bucket, Key="one", ObjectAttributes=["ObjectSize"])
    assert only["ObjectSize"] == len(body) and "ETag" not in only
    out = json.loads(aws("s3api", "get-object-attributes", "--bucket", bucket, "--key", "one",
                         "--object-attributes", "ETag", "ObjectSize").stdout)
    assert out["ObjectSize"] == len(body) and out["ETag"] == a["ETag"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object_attributes(Bucket=bucket, Key="missing", ObjectAttributes=["ETag"])
    assert _code(e) == "NoSuchKey"


def _sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _composite_upload(s3, bucket: str, key: str, parts: list[bytes]) -> tuple[str, list[dict], str]:
    up = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256")
    listed = []
    for n, data in enumerate(parts, 1):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=up["UploadId"], PartNumber=n, Body=data,
                           ChecksumAlgorithm="SHA256")
        listed.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumSHA256": r["ChecksumSHA256"]})
    whole = base64.b64encode(hashlib.sha256(b"".join(hashlib.sha256(p).digest() for p in parts)).digest()).decode()
    return up["UploadId"], listed, f"{whole}-{len(parts)}"


def test_multipart_attributes_composite_checksum_and_a_retried_complete(s3, bucket):
    parts = [b"a" * (5 * MiB), b"b" * (5 * MiB), b"c" * 1000]
    uid, listed, composite = _composite_upload(s3, bucket, "mp", parts)
    wrong = _sha256_b64(b"nope") + "-3"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, ChecksumSHA256=wrong,
                                     MultipartUpload={"Parts": listed})
    assert _code(e) == "BadDigest"
    # The whole-object value of a COMPOSITE upload, as SDKs send it: base64-N.
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, ChecksumSHA256=composite,
                                        MultipartUpload={"Parts": listed})
    assert done["ChecksumSHA256"] == composite
    # The client never heard the answer and sends Complete again: the same object, 200.
    again = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": listed})
    assert again["ETag"] == done["ETag"]
    with pytest.raises(botocore.exceptions.ClientError) as e:       # not the parts it was completed with
        s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": listed[:2]})
    assert _code(e) == "NoSuchUpload"

    a = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=ALL, MaxParts=2)
    assert a["ETag"] == done["ETag"].strip('"') and a["ObjectSize"] == sum(map(len, parts))
    assert a["Checksum"] == {"ChecksumSHA256": composite, "ChecksumType": "COMPOSITE"}
    op = a["ObjectParts"]
    assert op["TotalPartsCount"] == 3 and op["IsTruncated"] and op["MaxParts"] == 2
    assert [(p["PartNumber"], p["Size"], p["ChecksumSHA256"]) for p in op["Parts"]] == \
        [(1, 5 * MiB, _sha256_b64(parts[0])), (2, 5 * MiB, _sha256_b64(parts[1]))]
    rest = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=["ObjectParts"],
                                    PartNumberMarker=op["NextPartNumberMarker"])["ObjectParts"]
    assert [p["PartNumber"] for p in rest["Parts"]] == [3] and not rest["IsTruncated"]


def _bring_back_upload_record(cluster, bucket: str, key: str, uid: str) -> None:
    """Write a completed upload's record again, through the metadata service's own client."""
    import asyncio
    from minis3.frontend.multipart import upload_ikey
    from minis3.meta.client import MetaClient
    from minis3.rpc.http import client_session

    async def put():
        session = client_session(cluster.topo.cluster_secret)
        try:
            meta = MetaClient.for_topology(session, cluster.topo)
            await meta.put_record(upload_ikey(bucket, key, uid), {
                "upload_id": uid, "bucket": bucket, "key": key, "headers": {}, "meta": {},
                "owner": ACCESS_KEY, "checksum": None, "initiated": 0})
        finally:
            await session.close()
    asyncio.run(put())


def test_conditional_complete_multipart_upload(s3, bucket, cluster):
    def upload(key):
        up = s3.create_multipart_upload(Bucket=bucket, Key=key)
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=up["UploadId"], PartNumber=1, Body=b"part")["ETag"]
        return up["UploadId"], {"Parts": [{"PartNumber": 1, "ETag": etag}]}
    uid, mpu = upload("c")
    with pytest.raises(botocore.exceptions.ClientError) as e:        # If-Match on a missing key
        s3.complete_multipart_upload(Bucket=bucket, Key="c", UploadId=uid, MultipartUpload=mpu, IfMatch='"abc"')
    assert _code(e) == "NoSuchKey" and _status(e) == 404
    first = s3.put_object(Bucket=bucket, Key="c", Body=b"there first")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="c", UploadId=uid, MultipartUpload=mpu, IfNoneMatch="*")
    assert _code(e) == "PreconditionFailed" and _status(e) == 412
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="c", UploadId=uid, MultipartUpload=mpu, IfMatch='"0123"')
    assert _code(e) == "PreconditionFailed"
    assert s3.get_object(Bucket=bucket, Key="c")["Body"].read() == b"there first"
    s3.complete_multipart_upload(Bucket=bucket, Key="c", UploadId=uid, MultipartUpload=mpu, IfMatch=first["ETag"])
    assert s3.get_object(Bucket=bucket, Key="c")["Body"].read() == b"part"
    uid, mpu = upload("fresh")
    s3.complete_multipart_upload(Bucket=bucket, Key="fresh", UploadId=uid, MultipartUpload=mpu, IfNoneMatch="*")
    assert s3.get_object(Bucket=bucket, Key="fresh")["Body"].read() == b"part"
    # Its upload record outlives the commit (as when deleting it failed): a
    # conditional retry is still answered 200 with the object it made.
    _bring_back_upload_record(cluster, bucket, "fresh", uid)
    again = s3.complete_multipart_upload(Bucket=bucket, Key="fresh", UploadId=uid, MultipartUpload=mpu,
                                         IfNoneMatch="*")
    assert again["ETag"] == s3.head_object(Bucket=bucket, Key="fresh")["ETag"]
    # Uploaded with no checksum algorithm: S3 gives the parts count, and no Part elements.
    parts = s3.get_object_attributes(Bucket=bucket, Key="fresh", ObjectAttributes=["ObjectParts"])["ObjectParts"]
    assert parts["TotalPartsCount"] == 1 and "Parts" not in parts


def test_presigned_create_and_delete_bucket(s3, bucket):
    """A presigned URL's own query parameters are not a bucket sub-resource."""
    import urllib.error
    import urllib.request
    name = bucket + "-presigned"
    for op, method, status in (("create_bucket", "PUT", 200), ("delete_bucket", "DELETE", 204)):
        url = s3.generate_presigned_url(op, Params={"Bucket": name}, ExpiresIn=300)
        req = urllib.request.Request(url, method=method, data=b"" if method == "PUT" else None)
        req.add_header("Content-Type", "")          # urllib would add one, which the URL did not sign
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                assert r.status == status
        except urllib.error.HTTPError as exc:
            raise AssertionError(exc.read()) from exc
        if op == "create_bucket":
            s3.head_bucket(Bucket=name)
    with pytest.raises(botocore.exceptions.ClientError):
        s3.head_bucket(Bucket=name)


def test_every_operation_minis3_lacks_answers_not_implemented_naming_it(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    for op, call, kw in [
            ("GetBucketReplication", s3.get_bucket_replication, {}),
            ("PutBucketLogging", s3.put_bucket_logging, {"BucketLoggingStatus": {}}),
            ("GetBucketLogging", s3.get_bucket_logging, {}),
            ("PutBucketWebsite", s3.put_bucket_website, {"WebsiteConfiguration": {
                "IndexDocument": {"Suffix": "index.html"}}})]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call(Bucket=bucket, **kw)
        assert _code(e) == "NotImplemented" and _status(e) == 501, op
        assert e.value.response["Error"]["Message"] == f"{op} is not implemented by minis3"
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 1          # nothing was changed
