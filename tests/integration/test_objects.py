"""Objects through boto3 against the real cluster: round trips, headers,
ranges, conditions, checksums, copy, delete — and their S3 errors."""
import base64
import hashlib
import os
import time
import zlib
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

MiB = 1 << 20
INLINE = 65536  # the default inline threshold (topology.ErasureSpec)


def err(exc_info) -> tuple[str, int]:
    e = exc_info.value.response
    return e["Error"]["Code"], e["ResponseMetadata"]["HTTPStatusCode"]


@pytest.mark.parametrize("size", [0, 1, INLINE - 1, INLINE, INLINE + 1, MiB - 1, MiB, MiB + 1, 3 * MiB + 17])
def test_round_trip_sizes(s3, bucket, size):
    data = os.urandom(size)
    put = s3.put_object(Bucket=bucket, Key=f"obj-{size}", Body=data)
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key=f"obj-{size}")
    assert got["Body"].read() == data
    assert got["ContentLength"] == size
    assert got["ETag"] == put["ETag"]
    assert got["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]


def test_round_trip_100_mib(s3, bucket):
    # Deterministic pseudo-random content, compared by digest to keep the test's own memory small.
    block = hashlib.sha256(b"seed").digest() * (MiB // 32)
    data = b"".join(bytes([i]) + block[1:] for i in range(100))
    s3.put_object(Bucket=bucket, Key="big", Body=data)
    got = s3.get_object(Bucket=bucket, Key="big")
    h = hashlib.md5()
    for chunk in got["Body"].iter_chunks(MiB):
        h.update(chunk)
    assert h.hexdigest() == hashlib.md5(data).hexdigest()
    assert got["ETag"] == f'"{h.hexdigest()}"'


def test_standard_headers_and_user_metadata(s3, bucket):
    expires = datetime(2030, 1, 1, tzinfo=timezone.utc)
    s3.put_object(Bucket=bucket, Key="h", Body=b"x" * 10, ContentType="text/plain; charset=utf-8",
                  ContentEncoding="identity", ContentDisposition='attachment; filename="h.txt"',
                  ContentLanguage="en", CacheControl="max-age=60", Expires=expires,
                  Metadata={"colour": "blue", "Mixed-Case": "Value"})
    for resp in (s3.head_object(Bucket=bucket, Key="h"), s3.get_object(Bucket=bucket, Key="h")):
        assert resp["ContentType"] == "text/plain; charset=utf-8"
        assert resp["ContentEncoding"] == "identity"
        assert resp["ContentDisposition"] == 'attachment; filename="h.txt"'
        assert resp["ContentLanguage"] == "en"
        assert resp["CacheControl"] == "max-age=60"
        assert resp["Metadata"] == {"colour": "blue", "mixed-case": "Value"}
        assert resp["ContentLength"] == 10
        assert resp["AcceptRanges"] == "bytes"
        assert isinstance(resp["LastModified"], datetime)
    assert s3.head_object(Bucket=bucket, Key="h")["ResponseMetadata"]["HTTPHeaders"]["expires"].startswith(
        "Tue, 01 Jan 2030")
    # Default content type, as S3.
    s3.put_object(Bucket=bucket, Key="plain", Body=b"1")
    assert s3.head_object(Bucket=bucket, Key="plain")["ContentType"] == "binary/octet-stream"
    # response-* overrides on GET
    r = s3.get_object(Bucket=bucket, Key="h", ResponseContentType="application/json",
                      ResponseContentDisposition="inline")
    assert r["ContentType"] == "application/json" and r["ContentDisposition"] == "inline"


def test_overwrite_replaces_atomically(s3, bucket):
    a, b = os.urandom(2 * MiB), os.urandom(MiB + 5)
    s3.put_object(Bucket=bucket, Key="k", Body=a)
    s3.put_object(Bucket=bucket, Key="k", Body=b)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b
    s3.put_object(Bucket=bucket, Key="k", Body=b"small")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"small"


@pytest.mark.parametrize("size", [10, 3 * MiB + 5])
def test_ranges(s3, bucket, size):
    data = os.urandom(size)
    s3.put_object(Bucket=bucket, Key="r", Body=data)
    cases = {"bytes=0-0": data[0:1], "bytes=3-7": data[3:8], f"bytes={size - 4}-": data[-4:],
             "bytes=-3": data[-3:], f"bytes=2-{size + 100}": data[2:], "bytes=-100000000": data}
    if size > MiB:
        cases[f"bytes={MiB - 2}-{2 * MiB + 1}"] = data[MiB - 2:2 * MiB + 2]
    for rng, want in cases.items():
        r = s3.get_object(Bucket=bucket, Key="r", Range=rng)
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 206, rng
        assert r["Body"].read() == want, rng
        assert r["ContentRange"].endswith(f"/{size}")
        assert r["ContentLength"] == len(want)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="r", Range=f"bytes={size}-")
    assert err(e) == ("InvalidRange", 416)
    assert e.value.response["ResponseMetadata"]["HTTPHeaders"]["content-range"] == f"bytes */{size}"
    # A malformed Range is ignored, as S3 does: whole object, 200.
    r = s3.get_object(Bucket=bucket, Key="r", Range="bytes=abc")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200 and r["Body"].read() == data


def test_conditional_get_and_head(s3, bucket):
    s3.put_object(Bucket=bucket, Key="c", Body=b"conditional")
    h = s3.head_object(Bucket=bucket, Key="c")
    etag, lm = h["ETag"], h["LastModified"]
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"conditional"
    for kwargs, code in [({"IfMatch": '"0000"'}, "412"), ({"IfNoneMatch": etag}, "304"),
                         ({"IfModifiedSince": lm + timedelta(seconds=5)}, "304"),
                         ({"IfUnmodifiedSince": lm - timedelta(days=1)}, "412")]:
        with pytest.raises(ClientError) as e:
            s3.head_object(Bucket=bucket, Key="c", **kwargs)
        assert str(e.value.response["ResponseMetadata"]["HTTPStatusCode"]) == code, kwargs
        with pytest.raises(ClientError) as e:
            s3.get_object(Bucket=bucket, Key="c", **kwargs)
        assert str(e.value.response["ResponseMetadata"]["HTTPStatusCode"]) == code, kwargs
        if code == "412":
            assert e.value.response["Error"]["Code"] == "PreconditionFailed"
    # If-Match true + If-Unmodified-Since false → 200 (S3's documented precedence)
    r = s3.get_object(Bucket=bucket, Key="c", IfMatch=etag, IfUnmodifiedSince=lm - timedelta(days=1))
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_conditional_put(s3, bucket):
    s3.put_object(Bucket=bucket, Key="once", Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="once", Body=b"second", IfNoneMatch="*")
    assert err(e) == ("PreconditionFailed", 412)
    etag = s3.head_object(Bucket=bucket, Key="once")["ETag"]
    s3.put_object(Bucket=bucket, Key="once", Body=b"third", IfMatch=etag)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="once", Body=b"fourth", IfMatch=etag)
    assert err(e) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="missing", Body=b"x", IfMatch=etag)
    assert err(e) == ("NoSuchKey", 404)
    assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"third"


def test_concurrent_if_none_match_has_one_winner(cluster, bucket):
    from concurrent.futures import ThreadPoolExecutor

    from .conftest import make_client
    clients = [make_client(cluster.endpoint) for _ in range(8)]

    def attempt(i):
        try:
            clients[i].put_object(Bucket=bucket, Key="race", Body=os.urandom(MiB + i), IfNoneMatch="*")
            return True
        except ClientError as e:
            assert e.response["Error"]["Code"] == "PreconditionFailed"
            return False
    with ThreadPoolExecutor(8) as pool:
        wins = list(pool.map(attempt, range(8)))
    assert wins.count(True) == 1


@pytest.mark.parametrize("alg", ["CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"])
def test_flexible_checksums(s3, bucket, alg):
    data = os.urandom(MiB + 3)
    put = s3.put_object(Bucket=bucket, Key=f"ck-{alg}", Body=data, ChecksumAlgorithm=alg)
    value = put[f"Checksum{alg}"]
    head = s3.head_object(Bucket=bucket, Key=f"ck-{alg}", ChecksumMode="ENABLED")
    assert head[f"Checksum{alg}"] == value
    got = s3.get_object(Bucket=bucket, Key=f"ck-{alg}", ChecksumMode="ENABLED")
    assert got[f"Checksum{alg}"] == value
    assert got["Body"].read() == data          # botocore validates the checksum while reading
    rng = s3.get_object(Bucket=bucket, Key=f"ck-{alg}", ChecksumMode="ENABLED", Range="bytes=0-9")
    assert f"Checksum{alg}" not in rng and rng["Body"].read() == data[:10]
    if alg == "SHA256":
        assert base64.b64decode(value) == hashlib.sha256(data).digest()
    if alg == "CRC32":
        assert base64.b64decode(value) == zlib.crc32(data).to_bytes(4, "big")


def test_default_checksum_is_crc64nvme_when_none_sent(cluster, bucket):
    from .conftest import make_client
    s3 = make_client(cluster.endpoint, request_checksum_calculation="when_required")
    s3.put_object(Bucket=bucket, Key="nock", Body=b"hello")
    h = s3.head_object(Bucket=bucket, Key="nock", ChecksumMode="ENABLED")
    from awscrt import checksums
    want = base64.b64encode(checksums.crc64nvme(b"hello").to_bytes(8, "big")).decode()
    assert h["ChecksumCRC64NVME"] == want


def test_bad_checksums_store_nothing(s3, bucket):
    wrong_crc = base64.b64encode(b"\0\0\0\0").decode()
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="bad", Body=b"payload" * 1000, ChecksumCRC32=wrong_crc)
    assert err(e) == ("BadDigest", 400)
    wrong_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="bad", Body=os.urandom(2 * MiB), ContentMD5=wrong_md5)
    assert err(e) == ("BadDigest", 400)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="bad")
    assert err(e) == ("404", 404)
    good_md5 = base64.b64encode(hashlib.md5(b"fine").digest()).decode()
    s3.put_object(Bucket=bucket, Key="good", Body=b"fine", ContentMD5=good_md5)


def test_delete_is_idempotent(s3, bucket):
    s3.put_object(Bucket=bucket, Key="d", Body=os.urandom(MiB))
    assert s3.delete_object(Bucket=bucket, Key="d")["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3.delete_object(Bucket=bucket, Key="d")["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="d")
    assert err(e) == ("NoSuchKey", 404)
    assert e.value.response["Error"]["Message"]


def test_delete_objects_batch_and_quiet(s3, bucket):
    keys = [f"batch/{i}" for i in range(30)]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[:20]] + [{"Key": "nope"}]})
    assert sorted(d["Key"] for d in r["Deleted"]) == sorted(keys[:20] + ["nope"])
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[20:]], "Quiet": True})
    assert "Deleted" not in r and "Errors" not in r
    assert s3.list_objects_v2(Bucket=bucket, Prefix="batch/")["KeyCount"] == 0


def test_copy_object(s3, bucket):
    data = os.urandom(2 * MiB + 9)
    s3.put_object(Bucket=bucket, Key="src", Body=data, ContentType="image/png", Metadata={"a": "1"})
    s3.create_bucket(Bucket=bucket + "-dst")
    try:
        r = s3.copy_object(Bucket=bucket + "-dst", Key="copy", CopySource={"Bucket": bucket, "Key": "src"})
        assert r["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
        got = s3.get_object(Bucket=bucket + "-dst", Key="copy")
        assert got["Body"].read() == data and got["ContentType"] == "image/png" and got["Metadata"] == {"a": "1"}
        r = s3.copy_object(Bucket=bucket, Key="src2", CopySource=f"{bucket}/src", MetadataDirective="REPLACE",
                           ContentType="text/plain", Metadata={"b": "2"})
        got = s3.head_object(Bucket=bucket, Key="src2")
        assert got["ContentType"] == "text/plain" and got["Metadata"] == {"b": "2"}
        # Copy a small (inline) object with a unicode key.
        s3.put_object(Bucket=bucket, Key="ünï cødé", Body=b"tiny")
        s3.copy_object(Bucket=bucket, Key="tiny-copy", CopySource={"Bucket": bucket, "Key": "ünï cødé"})
        assert s3.get_object(Bucket=bucket, Key="tiny-copy")["Body"].read() == b"tiny"
        with pytest.raises(ClientError) as e:
            s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"})
        assert err(e) == ("InvalidRequest", 400)
        with pytest.raises(ClientError) as e:
            s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "missing"})
        assert err(e) == ("NoSuchKey", 404)
        with pytest.raises(ClientError) as e:
            s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "src"},
                           CopySourceIfMatch='"nomatch"')
        assert err(e) == ("PreconditionFailed", 412)
    finally:
        s3.delete_object(Bucket=bucket + "-dst", Key="copy")
        s3.delete_bucket(Bucket=bucket + "-dst")


def test_object_errors(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="nope")
    assert err(e) == ("NoSuchKey", 404)
    assert e.value.response["Error"]["Resource"] == f"/{bucket}/nope" if "Resource" in \
        e.value.response["Error"] else True
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="no-such-bucket-here", Key="k")
    assert err(e) == ("NoSuchBucket", 404)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket="no-such-bucket-here", Key="k", Body=b"x")
    assert err(e) == ("NoSuchBucket", 404)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k" * 1025, Body=b"x")
    assert err(e) == ("KeyTooLongError", 400)
    s3.put_object(Bucket=bucket, Key="é" * 512, Body=b"x")          # 1024 UTF-8 bytes: allowed
    assert s3.get_object(Bucket=bucket, Key="é" * 512)["Body"].read() == b"x"
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="m", Body=b"x", Metadata={"big": "v" * 3000})
    assert err(e) == ("MetadataTooLarge", 400)


def test_last_modified_moves_forward(s3, bucket):
    s3.put_object(Bucket=bucket, Key="t", Body=b"1")
    t1 = s3.head_object(Bucket=bucket, Key="t")["LastModified"]
    time.sleep(1.1)
    s3.put_object(Bucket=bucket, Key="t", Body=b"2")
    assert s3.head_object(Bucket=bucket, Key="t")["LastModified"] > t1


def _requests_counted(cluster) -> dict[tuple[str, str, str], float]:
    """The frontend's ``minis3_requests`` counter: (operation, method, status) → requests answered."""
    return {(s.labels["operation"], s.labels["method"], s.labels["status"]): s.value
            for s in cluster.frontend_samples("minis3_requests_total")}


def test_the_frontends_metrics_name_each_requests_s3_operation(cluster, s3, bucket):
    """``minis3_requests`` and ``minis3_request_seconds`` carry S3's operation
    (the console's live charts draw it); "-" for a request refused before it was known."""
    import urllib.error
    import urllib.request
    before = _requests_counted(cluster)
    s3.put_object(Bucket=bucket, Key="counted", Body=b"x")
    s3.head_object(Bucket=bucket, Key="counted")
    with pytest.raises(ClientError):
        s3.get_object(Bucket=bucket, Key="not-there")
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(f"{cluster.endpoint}/{bucket}/counted", timeout=5)     # anonymous: refused
    with pytest.raises(urllib.error.HTTPError):     # a signature that cannot be read: refused before the operation
        urllib.request.urlopen(urllib.request.Request(f"{cluster.endpoint}/{bucket}/counted",
                                                      headers={"Authorization": "AWS4-HMAC-SHA256 nonsense"}), timeout=5)
    with urllib.request.urlopen(f"{cluster.endpoint}/_minis3/health", timeout=5) as r:   # a probe: not counted
        assert (r.status, r.read()) == (200, b"ok\n")
    after = _requests_counted(cluster)
    grew = {k: v - before.get(k, 0.0) for k, v in after.items() if v > before.get(k, 0.0)}
    assert grew == {("PutObject", "PUT", "200"): 1, ("HeadObject", "HEAD", "200"): 1,
                    ("GetObject", "GET", "404"): 1, ("GetObject", "GET", "403"): 1,
                    ("-", "GET", "400"): 1}
