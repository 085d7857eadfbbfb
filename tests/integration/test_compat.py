"""Behaviours where minis3 once differed from S3, through real clients."""
import email.header
import json
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.handlers import validate_ascii_metadata

from .cluster import SECOND_ACCESS_KEY, SECOND_SECRET_KEY
from .conftest import make_client
from .s3helpers import raw_query_client


def err(exc_info) -> tuple[str, int]:
    e = exc_info.value.response
    return e["Error"]["Code"], e["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture(scope="module")
def shared(s3):
    """One bucket for the tests that only add their own keys."""
    name = f"compat-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    yield name
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for o in page.get("Contents", []):     # one by one: some keys can't be written in XML
            s3.delete_object(Bucket=name, Key=o["Key"])
    for u in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=name, Key=u["Key"], UploadId=u["UploadId"])
    s3.delete_bucket(Bucket=name)


# -- 1. encoding-type=url: a space is %20, a plus %2B ------------------------------------
def test_url_encoding_writes_space_as_percent_20(cluster, s3, shared):
    keys = ["enc/quux ab/thud", "enc/a+b", "enc/plain"]
    for k in keys:
        s3.put_object(Bucket=shared, Key=k, Body=b"")
    p = s3.list_objects_v2(Bucket=shared, Prefix="enc/", Delimiter="/", EncodingType="url")   # left encoded
    assert [o["Key"] for o in p["Contents"]] == ["enc/a%2Bb", "enc/plain"]
    assert [c["Prefix"] for c in p["CommonPrefixes"]] == ["enc/quux%20ab/"]
    v1 = s3.list_objects(Bucket=shared, Prefix="enc/q", EncodingType="url")
    assert [o["Key"] for o in v1["Contents"]] == ["enc/quux%20ab/thud"]
    # boto3's own encoding-type=url (decoded by botocore) gives every key back.
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket=shared, Prefix="enc/")["Contents"]) == sorted(keys)
    # Without encoding-type, keys and prefixes are written as they are.
    raw = raw_query_client(cluster, "ListObjectsV2", **{"encoding-type": None})
    p = raw.list_objects_v2(Bucket=shared, Prefix="enc/", Delimiter="/")
    assert "EncodingType" not in p
    assert [o["Key"] for o in p["Contents"]] == ["enc/a+b", "enc/plain"]
    assert [c["Prefix"] for c in p["CommonPrefixes"]] == ["enc/quux ab/"]
    uid = s3.create_multipart_upload(Bucket=shared, Key="enc/up load")["UploadId"]
    try:
        up = s3.list_multipart_uploads(Bucket=shared, Prefix="enc/", EncodingType="url")
        assert [u["Key"] for u in up["Uploads"]] == ["enc/up%20load"]
    finally:
        s3.abort_multipart_upload(Bucket=shared, Key="enc/up load", UploadId=uid)


# -- 2. non-ASCII user metadata: RFC 2047, as S3 documents ---------------------------------
def _decoded(value: str) -> str:
    return str(email.header.make_header(email.header.decode_header(value)))


def test_non_ascii_metadata_is_returned_as_rfc2047(cluster, s3, shared):
    c = make_client(cluster.endpoint)
    # boto3 refuses non-ASCII metadata itself; without that check it sends the str as UTF-8.
    c.meta.events.unregister("before-parameter-build.s3.PutObject", validate_ascii_metadata)
    c.put_object(Bucket=shared, Key="meta/cafe", Body=b"x", Metadata={"k": "café", "j": "日本", "a": "plain"})
    for meta in (s3.head_object(Bucket=shared, Key="meta/cafe")["Metadata"],
                 s3.get_object(Bucket=shared, Key="meta/cafe")["Metadata"]):
        assert meta["k"] == "=?UTF-8?B?Y2Fmw6k=?="
        assert _decoded(meta["k"]) == "café" and _decoded(meta["j"]) == "日本"
        assert meta["a"] == "plain"
    # An encoded-word sent by the client is decoded before it is stored.
    s3.put_object(Bucket=shared, Key="meta/word", Body=b"x", Metadata={"w": "=?utf-8?q?caf=C3=A9?="})
    assert s3.head_object(Bucket=shared, Key="meta/word")["Metadata"]["w"] == "=?UTF-8?B?Y2Fmw6k=?="


# -- 3. Content-Encoding: aws-chunked removed, the rest as written --------------------------
def test_content_encoding_keeps_the_rest_byte_for_byte(s3, shared):
    s3.put_object(Bucket=shared, Key="ce/1", Body=b"x", ContentEncoding="aws-chunked, deflate, gzip")
    assert s3.head_object(Bucket=shared, Key="ce/1")["ContentEncoding"] == "deflate, gzip"
    s3.put_object(Bucket=shared, Key="ce/2", Body=b"x", ContentEncoding="gzip,aws-chunked")
    assert s3.head_object(Bucket=shared, Key="ce/2")["ContentEncoding"] == "gzip"


# -- 4. UploadPartCopy's x-amz-copy-source-range ---------------------------------------------
def test_upload_part_copy_range_errors(s3, shared):
    s3.put_object(Bucket=shared, Key="upc/src", Body=b"0123456789")
    uid = s3.create_multipart_upload(Bucket=shared, Key="upc/dst")["UploadId"]
    try:
        def copy(rng):
            return s3.upload_part_copy(Bucket=shared, Key="upc/dst", UploadId=uid, PartNumber=1,
                                       CopySource={"Bucket": shared, "Key": "upc/src"}, CopySourceRange=rng)
        for rng in ("bytes=0-10", "bytes=5-4"):            # S3: InvalidArgument naming the size
            with pytest.raises(ClientError) as e:
                copy(rng)
            assert err(e) == ("InvalidArgument", 400)
            assert e.value.response["Error"]["Message"] == "Range specified is not valid for source object of size: 10"
        for rng in ("bytes=0-", "0-5", "bytes=0-١", "bytes=a-b"):   # malformed: S3's own message
            with pytest.raises(ClientError) as e:
                copy(rng)
            assert err(e) == ("InvalidArgument", 400)
            assert "must be of the form bytes=first-last" in e.value.response["Error"]["Message"]
        assert copy("bytes=2-4")["CopyPartResult"]["ETag"]
    finally:
        s3.abort_multipart_upload(Bucket=shared, Key="upc/dst", UploadId=uid)


# -- 5. CreateBucket again, in us-east-1 ------------------------------------------------------
def test_create_bucket_again_in_us_east_1(cluster, s3):
    name = f"again-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    try:
        created = {b["Name"]: b["CreationDate"] for b in s3.list_buckets()["Buckets"]}[name]
        r = s3.create_bucket(Bucket=name)                       # S3's legacy us-east-1 answer
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert {b["Name"]: b["CreationDate"] for b in s3.list_buckets()["Buckets"]}[name] == created
        other = boto3.client("s3", endpoint_url=cluster.endpoint, region_name="us-east-1",
                             aws_access_key_id=SECOND_ACCESS_KEY, aws_secret_access_key=SECOND_SECRET_KEY,
                             config=Config(retries={"max_attempts": 1}))
        with pytest.raises(ClientError) as e:
            other.create_bucket(Bucket=name)
        assert err(e) == ("BucketAlreadyExists", 409)
    finally:
        s3.delete_bucket(Bucket=name)


# -- 6. ListBuckets pages ------------------------------------------------------------------
@pytest.fixture(scope="module")
def three_buckets(s3):
    prefix = f"lb-{uuid.uuid4().hex[:6]}-"
    names = [prefix + s for s in ("a", "b", "c")]
    for n in names:
        s3.create_bucket(Bucket=n)
    yield prefix, names
    for n in names:
        s3.delete_bucket(Bucket=n)


def test_list_buckets_pages(s3, three_buckets):
    prefix, names = three_buckets
    everything = s3.list_buckets()
    assert "ContinuationToken" not in everything and "Prefix" not in everything
    assert set(names) <= {b["Name"] for b in everything["Buckets"]}
    first = s3.list_buckets(MaxBuckets=1, Prefix=prefix)
    assert [b["Name"] for b in first["Buckets"]] == names[:1]
    assert first["Prefix"] == prefix and first["ContinuationToken"]
    assert first["Buckets"][0]["BucketRegion"] == "us-east-1"
    rest = s3.list_buckets(MaxBuckets=5, Prefix=prefix, ContinuationToken=first["ContinuationToken"])
    assert [b["Name"] for b in rest["Buckets"]] == names[1:]
    assert "ContinuationToken" not in rest
    pages = list(s3.get_paginator("list_buckets").paginate(Prefix=prefix, PaginationConfig={"PageSize": 2}))
    assert [[b["Name"] for b in p["Buckets"]] for p in pages] == [names[:2], names[2:]]
    assert [b["Name"] for b in s3.list_buckets(Prefix=prefix, BucketRegion="us-east-1")["Buckets"]] == names
    assert s3.list_buckets(Prefix=prefix, BucketRegion="eu-west-1")["Buckets"] == []


@pytest.mark.parametrize("value", ["0", "10001", "-1", "x", "²", "١"])
def test_list_buckets_max_buckets_out_of_range(cluster, value):
    c = raw_query_client(cluster, "ListBuckets", **{"max-buckets": value})
    with pytest.raises(ClientError) as e:
        c.list_buckets()
    assert err(e) == ("InvalidArgument", 400)


def test_list_buckets_with_the_cli(aws, three_buckets):
    prefix, names = three_buckets
    out = json.loads(aws("s3api", "list-buckets", "--max-buckets", "1", "--prefix", prefix).stdout)
    assert [b["Name"] for b in out["Buckets"]] == names[:1]
    assert out["ContinuationToken"] and out["Prefix"] == prefix
    out = json.loads(aws("s3api", "list-buckets", "--prefix", prefix).stdout)
    assert [b["Name"] for b in out["Buckets"]] == names


# -- 7. keys with control characters -------------------------------------------------------
def test_keys_with_control_characters(s3, shared):
    keys = ["ctl/line\nbreak", "ctl/cr\rhere", "ctl/bell\x07", "ctl/tab\tx", "ctl/\x01start"]
    for k in keys:
        s3.put_object(Bucket=shared, Key=k, Body=k.encode())
    for k in keys:
        assert s3.get_object(Bucket=shared, Key=k)["Body"].read() == k.encode()
        assert s3.head_object(Bucket=shared, Key=k)["ContentLength"] == len(k.encode())
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=shared, Prefix="ctl/")["Contents"]]  # encoding-type=url
    assert listed == sorted(keys)
    assert [o["Key"] for o in s3.list_objects(Bucket=shared, Prefix="ctl/line\n")["Contents"]] == ["ctl/line\nbreak"]
    s3.delete_object(Bucket=shared, Key="ctl/line\nbreak")
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=shared, Key="ctl/line\nbreak")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert e.value.response["ResponseMetadata"]["HTTPHeaders"].get("x-amz-request-id")


# -- 8. numbers are ASCII digits -------------------------------------------------------------
@pytest.mark.parametrize("value", ["²", "١", "1_0", " 1", "+", "1.0"])
def test_unicode_digits_are_not_numbers(cluster, s3, shared, value):
    uid = s3.create_multipart_upload(Bucket=shared, Key="num/k")["UploadId"]
    try:
        calls = [
            ("UploadPart", "partNumber", lambda c: c.upload_part(Bucket=shared, Key="num/k", UploadId=uid,
                                                                PartNumber=1, Body=b"x")),
            ("ListParts", "max-parts", lambda c: c.list_parts(Bucket=shared, Key="num/k", UploadId=uid)),
            ("ListParts", "part-number-marker", lambda c: c.list_parts(Bucket=shared, Key="num/k", UploadId=uid)),
            ("ListMultipartUploads", "max-uploads", lambda c: c.list_multipart_uploads(Bucket=shared)),
            ("ListObjectsV2", "max-keys", lambda c: c.list_objects_v2(Bucket=shared)),
            ("ListObjects", "max-keys", lambda c: c.list_objects(Bucket=shared)),
            ("GetObject", "partNumber", lambda c: c.get_object(Bucket=shared, Key="num/obj")),
        ]
        s3.put_object(Bucket=shared, Key="num/obj", Body=b"x")
        for op, name, call in calls:
            with pytest.raises(ClientError) as e:
                call(raw_query_client(cluster, op, **{name: value}))
            assert err(e) == ("InvalidArgument", 400), (op, name)
    finally:
        s3.abort_multipart_upload(Bucket=shared, Key="num/k", UploadId=uid)


# -- 9. prefixes at the ends of Unicode, and longer than a key ------------------------------
def test_prefixes_at_the_edges(cluster, s3, shared):
    keys = ["edge/\U0010ffff", "edge/\U0010ffff\U0010ffffz", "edge/a\U0010ffffb", "edge/b",
            "edge/\ud7ffx", "edge/\ue000y"]
    for k in keys:
        s3.put_object(Bucket=shared, Key=k, Body=b"")

    def listed(prefix, **kw):
        out = []
        for call in (s3.list_objects_v2, s3.list_objects):
            out.append([o["Key"] for o in call(Bucket=shared, Prefix=prefix, **kw).get("Contents", [])])
        assert out[0] == out[1]
        return out[0]
    assert listed("edge/\U0010ffff") == ["edge/\U0010ffff", "edge/\U0010ffff\U0010ffffz"]
    assert listed("edge/\U0010ffff\U0010ffff") == ["edge/\U0010ffff\U0010ffffz"]
    assert listed("edge/a\U0010ffff") == ["edge/a\U0010ffffb"]
    assert listed("edge/\ud7ff") == ["edge/\ud7ffx"]
    assert listed("\U0010ffff") == []
    assert listed("edge/" + "a" * 7000) == []                        # longer than any key: none starts with it
    assert listed("edge/\U0010ffff" * 300) == []
    assert listed("edge/", Delimiter="\U0010ffff") == ["edge/b", "edge/\ud7ffx", "edge/\ue000y"]
    # A marker longer than any key: the keys after it.
    after = s3.list_objects_v2(Bucket=shared, Prefix="edge/", StartAfter="edge/a" + "a" * 7000)
    assert [o["Key"] for o in after["Contents"]][:1] == ["edge/a\U0010ffffb"]
    up = s3.list_multipart_uploads(Bucket=shared, Prefix="x" * 7000)
    assert up.get("Uploads", []) == []


# -- 10. response-* overrides that no header can carry ----------------------------------
@pytest.mark.parametrize("param", ["ResponseContentType", "ResponseContentDisposition", "ResponseCacheControl"])
def test_response_override_with_crlf(s3, shared, param):
    s3.put_object(Bucket=shared, Key="resp/k", Body=b"x")
    for call in (s3.get_object, s3.head_object):
        with pytest.raises(ClientError) as e:
            call(Bucket=shared, Key="resp/k", **{param: "text/plain\r\nx-evil: 1"})
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        if call is s3.get_object:
            assert err(e) == ("InvalidArgument", 400)
    assert s3.get_object(Bucket=shared, Key="resp/k", ResponseContentType="text/x")["ContentType"] == "text/x"


@pytest.mark.parametrize("value", ["\u0661\u0662", "1\u00b2", "+12"])
def test_decoded_content_length_is_ascii_digits(cluster, bucket, value):
    """x-amz-decoded-content-length (an aws-chunked PUT, raw HTTP: boto3 sends
    it only over TLS) with Unicode digits or a sign is InvalidArgument; it was
    a 500 or taken as a number."""
    from .wire import SIGNED, assert_error, build_chunked, send
    path, h, body = build_chunked(cluster, bucket, "k", b"x" * 12, SIGNED,
                                  extra_headers={"x-amz-decoded-content-length": value})
    # Signed as the server reads it (UTF-8); sent as those bytes.
    h["x-amz-decoded-content-length"] = value.encode("utf-8").decode("latin-1")
    assert_error(send(cluster, "PUT", path, h, body), "InvalidArgument", 400)
