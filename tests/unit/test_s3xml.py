"""S3 XML documents, checked against boto3's own request serializer and
response parser (a ``before-send`` hook answers each call with our XML, so
the whole botocore pipeline -- including its automatic encoding-type=url and
the decoding that goes with it -- runs on what we produce)."""
from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

import botocore.parsers
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minis3.core import errors as E
from minis3.core import s3xml as X
from minis3.core import xmldoc

from .fake_s3 import TRICKY_KEYS, FakeS3

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
T0 = 1255369830000  # 2009-10-12T17:50:30.000Z
OWNER = ("75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a", "webfile")


@pytest.fixture(scope="module")
def s3() -> FakeS3:
    return FakeS3()


def raw_parse(op: str, xml: bytes, client=None) -> dict:
    """botocore's RestXMLParser alone (no handlers: nothing is URL-decoded)."""
    client = client or FakeS3().client
    om = client.meta.service_model.operation_model(op)
    parser = botocore.parsers.RestXMLParser()
    return parser.parse({"body": xml, "headers": {}, "status_code": 200}, om.output_shape)


def _ts(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc)


# ------------------------------------------------------------------ helpers

def test_iso8601_ms():
    assert X.iso8601_ms(T0) == "2009-10-12T17:50:30.000Z"
    assert X.iso8601_ms(T0 + 7) == "2009-10-12T17:50:30.007Z"
    assert X.iso8601_ms(0) == "1970-01-01T00:00:00.000Z"
    assert X.iso8601_ms(1_700_000_000_999) == "2023-11-14T22:13:20.999Z"


def test_url_encode_form():
    assert X.url_encode("a b") == "a%20b"           # %20, not "+": any URL decoder gets the space back
    assert X.url_encode("a+b") == "a%2Bb"
    assert X.url_encode("100%.csv") == "100%25.csv"
    assert X.url_encode("한글/x.txt") == "%ED%95%9C%EA%B8%80/x.txt"
    assert X.url_encode("a/b*c~d-e_f.g") == "a/b*c%7Ed-e_f.g"
    assert X.url_encode("\x01\n") == "%01%0A"


def test_declaration_and_namespace():
    body = X.location_xml("eu-west-1")
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    root = ET.fromstring(body)
    assert root.tag == NS + "LocationConstraint"
    assert root.text == "eu-west-1"


# ------------------------------------------------------------------ errors

def test_error_xml_layout_and_boto(s3):
    body = X.error_xml("NoSuchKey", "The specified key does not exist.", resource="/b/k&1",
                       request_id="4442587FB7D0A2F9", host_id="host/id=",
                       extra={"Key": "k&1"})
    root = ET.fromstring(body)
    assert root.tag == "Error"
    assert [c.tag for c in root] == ["Code", "Message", "Key", "Resource", "RequestId", "HostId"]
    s3.answer(body, 404)
    with pytest.raises(ClientError) as ei:
        s3.client.get_object(Bucket="b", Key="k&1")
    err = ei.value.response["Error"]
    assert err["Code"] == "NoSuchKey"
    assert err["Message"] == "The specified key does not exist."
    assert err["Key"] == "k&1"
    # botocore takes the ids from the x-amz-* headers and drops them from Error
    assert "RequestId" not in err and "HostId" not in err
    assert root.find("RequestId").text == "4442587FB7D0A2F9"
    assert root.find("HostId").text == "host/id="
    assert root.find("Resource").text == "/b/k&1"


def test_error_xml_without_resource_and_from_exception(s3):
    exc = E.InvalidRange(RangeRequested="bytes=10-", ActualObjectSize="3")
    body = X.error_xml(exc.code, exc.message, request_id="R", extra=exc.extra)
    root = ET.fromstring(body)
    assert [c.tag for c in root] == ["Code", "Message", "RangeRequested", "ActualObjectSize",
                                     "RequestId", "HostId"]
    s3.answer(body, 416)
    with pytest.raises(ClientError) as ei:
        s3.client.get_object(Bucket="b", Key="k", Range="bytes=10-")
    assert ei.value.response["Error"]["Code"] == "InvalidRange"
    assert ei.value.response["Error"]["ActualObjectSize"] == "3"


# ------------------------------------------------------------------ buckets

def test_list_buckets(s3):
    body = X.list_buckets_xml([("alpha", T0), ("beta.b", T0 + 1500)], OWNER[0], OWNER[1])
    s3.answer(body)
    resp = s3.client.list_buckets()
    assert resp["Owner"] == {"ID": OWNER[0], "DisplayName": OWNER[1]}
    assert [b["Name"] for b in resp["Buckets"]] == ["alpha", "beta.b"]
    assert resp["Buckets"][0]["CreationDate"] == _ts(T0)
    assert resp["Buckets"][1]["CreationDate"] == _ts(T0 + 1500)


def test_list_buckets_empty_and_no_display_name(s3):
    s3.answer(X.list_buckets_xml([], "id", ""))
    resp = s3.client.list_buckets()
    assert resp["Buckets"] == []
    assert resp["Owner"] == {"ID": "id"}


@pytest.mark.parametrize("region, expected", [("us-east-1", None), ("eu-west-1", "eu-west-1"),
                                              ("ap-northeast-2", "ap-northeast-2")])
def test_location(s3, region, expected):
    body = X.location_xml(region)
    assert ET.fromstring(body).text == expected
    s3.answer(body)
    assert s3.client.get_bucket_location(Bucket="b").get("LocationConstraint") == expected


def test_parse_create_bucket_from_boto(s3):
    s3.answer(b"")
    s3.client.create_bucket(Bucket="bkt",
                            CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert X.parse_create_bucket(s3.last_body) == "eu-west-1"
    s3.client.create_bucket(Bucket="bkt")
    assert X.parse_create_bucket(s3.last_body or b"") is None


@pytest.mark.parametrize("body, expected", [
    (b"", None),
    (b"  \n", None),
    (b"<CreateBucketConfiguration/>", None),
    (b"<CreateBucketConfiguration><LocationConstraint></LocationConstraint>"
     b"</CreateBucketConfiguration>", None),
    (b"<CreateBucketConfiguration><LocationConstraint> us-west-2 </LocationConstraint>"
     b"</CreateBucketConfiguration>", "us-west-2"),
    (b'<?xml version="1.0" encoding="UTF-8"?><CreateBucketConfiguration '
     b'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>sa-east-1'
     b"</LocationConstraint><Tags/></CreateBucketConfiguration>", "sa-east-1"),
])
def test_parse_create_bucket(body, expected):
    assert X.parse_create_bucket(body) == expected


@pytest.mark.parametrize("body", [
    b"<CreateBucketConfiguration>",
    b"not xml",
    b"<Other><LocationConstraint>x</LocationConstraint></Other>",
    b'<CreateBucketConfiguration xmlns="urn:other"><LocationConstraint>x</LocationConstraint>'
    b"</CreateBucketConfiguration>",
    b"<CreateBucketConfiguration><LocationConstraint>a</LocationConstraint>"
    b"<LocationConstraint>b</LocationConstraint></CreateBucketConfiguration>",
    b'<!DOCTYPE x [<!ENTITY a "aaaa">]><CreateBucketConfiguration><LocationConstraint>&a;'
    b"</LocationConstraint></CreateBucketConfiguration>",
    b'<!DOCTYPE x SYSTEM "http://example.com/x.dtd"><CreateBucketConfiguration/>',
    b"<CreateBucketConfiguration>" + b" " * (X.MAX_CREATE_BUCKET_BODY + 1)
    + b"</CreateBucketConfiguration>",
])
def test_parse_create_bucket_malformed(body):
    with pytest.raises(E.MalformedXML):
        X.parse_create_bucket(body)


# ------------------------------------------------------------------ listings

def _entries(keys, **kw):
    return [X.ListEntry(key=k, last_modified_ms=T0 + i, etag=f"{i:032x}", size=i, **kw)
            for i, k in enumerate(keys)]


def _v2(keys, prefixes=(), **kw):
    args = dict(bucket="bkt", prefix="", delimiter=None, max_keys=1000, is_truncated=False,
                entries=_entries(keys), common_prefixes=list(prefixes),
                continuation_token=None, next_continuation_token=None, start_after=None,
                key_count=len(keys) + len(prefixes), encoding_type=None, fetch_owner=False,
                owner=OWNER)
    args.update(kw)
    return X.list_objects_v2_xml(**args)


def _v1(keys, prefixes=(), **kw):
    args = dict(bucket="bkt", prefix="", marker="", delimiter=None, max_keys=1000,
                is_truncated=False, entries=_entries(keys), common_prefixes=list(prefixes),
                next_marker=None, encoding_type=None, owner=OWNER)
    args.update(kw)
    return X.list_objects_v1_xml(**args)


def test_v2_fields_through_boto(s3):
    entries = [X.ListEntry("a/1", T0, "d41d8cd98f00b204e9800998ecf8427e", 0),
               X.ListEntry("a/2", T0 + 1, "0123456789abcdef0123456789abcdef-3", 15 << 20,
                           storage_class="STANDARD_IA", checksum_algorithm="crc64nvme",
                           checksum_type="FULL_OBJECT")]
    body = X.list_objects_v2_xml(
        bucket="bkt", prefix="a/", delimiter="/", max_keys=2, is_truncated=True,
        entries=entries, common_prefixes=["a/sub/"], continuation_token="tok-1",
        next_continuation_token="tok-2", start_after="a/0", key_count=3,
        encoding_type="url", fetch_owner=True, owner=OWNER)
    s3.answer(body)
    resp = s3.client.list_objects_v2(Bucket="bkt", Prefix="a/", Delimiter="/", MaxKeys=2,
                                     StartAfter="a/0", ContinuationToken="tok-1",
                                     FetchOwner=True)
    assert s3.last_query["encoding-type"] == ["url"]  # boto3 asked for it by itself
    assert resp["Name"] == "bkt"
    assert resp["Prefix"] == "a/"
    assert resp["Delimiter"] == "/"
    assert resp["MaxKeys"] == 2
    assert resp["KeyCount"] == 3
    assert resp["IsTruncated"] is True
    assert resp["ContinuationToken"] == "tok-1"
    assert resp["NextContinuationToken"] == "tok-2"
    assert resp["StartAfter"] == "a/0"
    assert resp["EncodingType"] == "url"
    c0, c1 = resp["Contents"]
    assert c0["Key"] == "a/1"
    assert c0["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'
    assert c0["Size"] == 0
    assert c0["LastModified"] == _ts(T0)
    assert c0["StorageClass"] == "STANDARD"
    assert c0["Owner"] == {"ID": OWNER[0], "DisplayName": OWNER[1]}
    assert "ChecksumAlgorithm" not in c0
    assert c1["ETag"] == '"0123456789abcdef0123456789abcdef-3"'
    assert c1["Size"] == 15 << 20
    assert c1["StorageClass"] == "STANDARD_IA"
    assert c1["ChecksumAlgorithm"] == ["CRC64NVME"]
    assert c1["ChecksumType"] == "FULL_OBJECT"
    assert resp["CommonPrefixes"] == [{"Prefix": "a/sub/"}]


def test_v2_element_order():
    body = _v2(["k"], ["p/"], prefix="p", delimiter="/", start_after="a",
               continuation_token="t", next_continuation_token="n", encoding_type="url",
               is_truncated=True)
    tags = [c.tag.removeprefix(NS) for c in ET.fromstring(body)]
    assert tags == ["Name", "Prefix", "StartAfter", "ContinuationToken",
                    "NextContinuationToken", "KeyCount", "MaxKeys", "Delimiter",
                    "EncodingType", "IsTruncated", "Contents", "CommonPrefixes"]
    contents = ET.fromstring(body).find(NS + "Contents")
    assert [c.tag.removeprefix(NS) for c in contents] == [
        "Key", "LastModified", "ETag", "Size", "StorageClass"]


def test_v2_minimal_omits_optional_elements(s3):
    body = _v2([])
    tags = [c.tag.removeprefix(NS) for c in ET.fromstring(body)]
    assert tags == ["Name", "Prefix", "KeyCount", "MaxKeys", "IsTruncated"]
    assert b"<Prefix></Prefix>" in body
    s3.answer(body)
    resp = s3.client.list_objects_v2(Bucket="bkt")
    assert "Contents" not in resp
    assert resp["KeyCount"] == 0
    assert resp["IsTruncated"] is False


def test_v2_owner_only_with_fetch_owner():
    without = ET.fromstring(_v2(["k"]))
    assert without.find(f"{NS}Contents/{NS}Owner") is None
    entries = [X.ListEntry("k", T0, "e", 1, owner=("other-id", "other"))]
    with_ = ET.fromstring(_v2([], entries=entries, fetch_owner=True))
    assert with_.find(f"{NS}Contents/{NS}Owner/{NS}ID").text == "other-id"


def test_v2_quoted_etag_not_double_quoted():
    body = _v2([], entries=[X.ListEntry("k", T0, '"abc"', 1)])
    assert ET.fromstring(body).find(f"{NS}Contents/{NS}ETag").text == '"abc"'


def test_v1_fields_through_boto(s3):
    body = X.list_objects_v1_xml(
        bucket="bkt", prefix="p/", marker="p/0", delimiter="/", max_keys=2, is_truncated=True,
        entries=_entries(["p/1", "p/2"]), common_prefixes=["p/q/"], next_marker="p/q/",
        encoding_type="url", owner=OWNER)
    s3.answer(body)
    resp = s3.client.list_objects(Bucket="bkt", Prefix="p/", Marker="p/0", Delimiter="/",
                                  MaxKeys=2)
    assert s3.last_query["encoding-type"] == ["url"]
    assert resp["Marker"] == "p/0"
    assert resp["NextMarker"] == "p/q/"
    assert resp["Prefix"] == "p/"
    assert resp["Delimiter"] == "/"
    assert resp["IsTruncated"] is True
    assert resp["MaxKeys"] == 2
    assert [c["Key"] for c in resp["Contents"]] == ["p/1", "p/2"]
    assert all(c["Owner"] == {"ID": OWNER[0], "DisplayName": OWNER[1]}
               for c in resp["Contents"])
    assert resp["CommonPrefixes"] == [{"Prefix": "p/q/"}]


def test_v1_element_order_and_defaults():
    body = _v1(["k"], ["p/"], delimiter="/", is_truncated=True, next_marker="p/",
               encoding_type="url")
    tags = [c.tag.removeprefix(NS) for c in ET.fromstring(body)]
    assert tags == ["Name", "Prefix", "Marker", "NextMarker", "MaxKeys", "Delimiter",
                    "EncodingType", "IsTruncated", "Contents", "CommonPrefixes"]
    contents = ET.fromstring(body).find(NS + "Contents")
    assert [c.tag.removeprefix(NS) for c in contents] == [
        "Key", "LastModified", "ETag", "Size", "Owner", "StorageClass"]
    plain = ET.fromstring(_v1([], prefix=None, marker=None))
    assert [c.tag.removeprefix(NS) for c in plain] == [
        "Name", "Prefix", "Marker", "MaxKeys", "IsTruncated"]
    assert plain.find(NS + "Prefix").text is None and plain.find(NS + "Marker").text is None


@pytest.mark.parametrize("delimiter, truncated, shown", [
    ("/", True, True), (None, True, False), ("/", False, False), ("", True, False)])
def test_v1_next_marker_only_with_delimiter_and_truncation(delimiter, truncated, shown):
    body = _v1(["k"], delimiter=delimiter, is_truncated=truncated, next_marker="k")
    assert (ET.fromstring(body).find(NS + "NextMarker") is not None) is shown


@pytest.mark.parametrize("key", TRICKY_KEYS)
def test_v2_url_encoding_round_trips_through_boto(s3, key):
    prefix = key[:3]
    body = _v2([key], [key + "/"], prefix=prefix, delimiter="/", start_after=key[:1],
               encoding_type="url")
    root = ET.fromstring(body)
    # what S3 sends: encoded, so no raw space/plus survives in the Key
    raw_key = root.find(f"{NS}Contents/{NS}Key").text
    assert " " not in raw_key and ("+" not in key or "%2B" in raw_key)
    s3.answer(body)
    resp = s3.client.list_objects_v2(Bucket="bkt", Prefix=prefix, Delimiter="/",
                                     StartAfter=key[:1])
    assert resp["Contents"][0]["Key"] == key
    assert resp["CommonPrefixes"] == [{"Prefix": key + "/"}]
    assert resp["Prefix"] == prefix
    assert resp["StartAfter"] == key[:1]
    assert resp["Delimiter"] == "/"


@pytest.mark.parametrize("key", TRICKY_KEYS)
def test_v1_url_encoding_round_trips_through_boto(s3, key):
    body = _v1([key], [key + "|"], prefix="", marker=key, delimiter="|",
               is_truncated=True, next_marker=key + "|", encoding_type="url")
    s3.answer(body)
    resp = s3.client.list_objects(Bucket="bkt", Marker=key, Delimiter="|")
    assert resp["Contents"][0]["Key"] == key
    assert resp["CommonPrefixes"] == [{"Prefix": key + "|"}]
    assert resp["Marker"] == key
    assert resp["NextMarker"] == key + "|"
    assert resp["Delimiter"] == "|"


def test_v1_prefix_is_encoded_like_s3_though_botocore_leaves_it(s3):
    body = _v1(["a b/c"], prefix="a b/", encoding_type="url")
    assert ET.fromstring(body).find(NS + "Prefix").text == "a%20b/"
    s3.answer(body)
    resp = s3.client.list_objects(Bucket="bkt", Prefix="a b/")
    assert resp["Contents"][0]["Key"] == "a b/c"
    assert resp["Prefix"] == "a%20b/"  # botocore's decode_list_object skips V1 Prefix


def test_user_requested_encoding_is_left_encoded(s3):
    s3.answer(_v2(["a b+c"], encoding_type="url"))
    resp = s3.client.list_objects_v2(Bucket="bkt", EncodingType="url")
    assert resp["Contents"][0]["Key"] == "a%20b%2Bc"


def test_tokens_not_url_encoded():
    body = _v2([], continuation_token="a b+/=", next_continuation_token="c d+/=",
               encoding_type="url")
    root = ET.fromstring(body)
    assert root.find(NS + "ContinuationToken").text == "a b+/="
    assert root.find(NS + "NextContinuationToken").text == "c d+/="


# keys of any Unicode (no lone surrogates), control characters included
_any_key = st.text(alphabet=st.characters(exclude_categories=("Cs",)), min_size=1,
                   max_size=40)
# keys made of characters XML 1.0 can carry
_xml_key = st.text(alphabet=st.characters(exclude_categories=("Cs",),
                                          exclude_characters="\ufffe\uffff"
                                          + "".join(map(chr, range(32)))) | st.sampled_from(
    ["\t", "\n", "\r", " "]), min_size=1, max_size=40)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(keys=st.lists(_any_key, min_size=1, max_size=4))
def test_property_any_key_round_trips_with_url_encoding(s3, keys):
    body = _v2(keys, [k + "/" for k in keys], prefix=keys[0], encoding_type="url",
               start_after=keys[-1], delimiter="/")
    s3.answer(body)
    resp = s3.client.list_objects_v2(Bucket="bkt")
    assert [c["Key"] for c in resp["Contents"]] == keys
    assert [p["Prefix"] for p in resp["CommonPrefixes"]] == [k + "/" for k in keys]
    assert resp["Prefix"] == keys[0]
    assert resp["StartAfter"] == keys[-1]


@settings(max_examples=150, deadline=None)
@given(keys=st.lists(_xml_key, min_size=1, max_size=4))
def test_property_xml_legal_key_round_trips_without_encoding(keys):
    body = _v2(keys, prefix=keys[0])
    parsed = raw_parse("ListObjectsV2", body, _CLIENT)
    assert [c["Key"] for c in parsed["Contents"]] == keys
    assert parsed["Prefix"] == keys[0]
    parsed1 = raw_parse("ListObjects", _v1(keys, marker=keys[-1]), _CLIENT)
    assert [c["Key"] for c in parsed1["Contents"]] == keys
    assert parsed1["Marker"] == keys[-1]


_CLIENT = FakeS3().client


def test_illegal_xml_chars_become_char_refs():
    body = _v2(["a\x01b\x1f\ufffe\r"])
    assert b"<Key>a&#x1;b&#x1F;&#xFFFE;&#xD;</Key>" in body
    # a lone surrogate can't crash serialization either
    body = _v2(["x\udc80y"])
    assert b"x&#xDC80;y" in body
    # url-encoded: plain ASCII, well-formed
    body = _v2(["a\x01b"], encoding_type="url")
    assert ET.fromstring(body).find(f"{NS}Contents/{NS}Key").text == "a%01b"


def test_xml_special_chars_escaped():
    body = _v2(["<a>&\"'"], prefix="&")
    assert b"<Key>&lt;a&gt;&amp;\"'</Key>" in body
    assert ET.fromstring(body).find(f"{NS}Contents/{NS}Key").text == "<a>&\"'"


# ------------------------------------------------------------------ copy

def test_copy_object_result(s3):
    body = X.copy_object_result_xml("9b2cf535f27731c974343645a3985328", T0,
                                    {"crc32": "y/Q5Jg==", "sha256": "A" * 43 + "="},
                                    checksum_type="FULL_OBJECT")
    tags = [c.tag.removeprefix(NS) for c in ET.fromstring(body)]
    assert tags == ["ETag", "LastModified", "ChecksumType", "ChecksumCRC32", "ChecksumSHA256"]
    s3.answer(body)
    resp = s3.client.copy_object(Bucket="b", Key="k", CopySource="src/k")
    r = resp["CopyObjectResult"]
    assert r["ETag"] == '"9b2cf535f27731c974343645a3985328"'
    assert r["LastModified"] == _ts(T0)
    assert r["ChecksumCRC32"] == "y/Q5Jg=="
    assert r["ChecksumSHA256"] == "A" * 43 + "="
    assert r["ChecksumType"] == "FULL_OBJECT"


@pytest.mark.parametrize("alg, element", [
    ("crc32", "ChecksumCRC32"), ("crc32c", "ChecksumCRC32C"),
    ("crc64nvme", "ChecksumCRC64NVME"), ("sha1", "ChecksumSHA1"), ("sha256", "ChecksumSHA256")])
def test_copy_object_result_each_checksum(alg, element):
    parsed = raw_parse("CopyObject", X.copy_object_result_xml('"e"', T0, {alg: "v"}), _CLIENT)
    assert parsed["CopyObjectResult"][element] == "v"
    assert parsed["CopyObjectResult"]["ETag"] == '"e"'


def test_copy_object_result_plain():
    root = ET.fromstring(X.copy_object_result_xml("e", T0))
    assert [c.tag.removeprefix(NS) for c in root] == ["ETag", "LastModified"]


# ------------------------------------------------------------------ delete

@pytest.mark.parametrize("quiet", [False, True])
def test_parse_delete_objects_from_boto(s3, quiet):
    keys = TRICKY_KEYS + ["dup", "dup"]
    s3.answer(X.delete_result_xml(keys, [], quiet))
    s3.client.delete_objects(Bucket="b", Delete={
        "Objects": [{"Key": k} for k in keys[:-1]] + [{"Key": keys[-1], "VersionId": "v1"}],
        "Quiet": quiet})
    assert X.parse_delete_objects(s3.last_body) == ([(k, None) for k in keys[:-1]] + [(keys[-1], "v1")], quiet)


def test_delete_result_through_boto(s3):
    body = X.delete_result_xml(["a b", "c&d"], [("e+f", "AccessDenied", "Access Denied")],
                               quiet=False)
    s3.answer(body)
    resp = s3.client.delete_objects(Bucket="b", Delete={"Objects": [{"Key": "x"}]})
    assert [d["Key"] for d in resp["Deleted"]] == ["a b", "c&d"]
    assert resp["Errors"] == [{"Key": "e+f", "Code": "AccessDenied", "Message": "Access Denied"}]


def test_delete_result_quiet_omits_deleted(s3):
    body = X.delete_result_xml(["a"], [("b", "InternalError", "oops")], quiet=True)
    assert b"Deleted" not in body
    s3.answer(body)
    resp = s3.client.delete_objects(Bucket="b", Delete={"Objects": [{"Key": "x"}]})
    assert "Deleted" not in resp
    assert resp["Errors"][0]["Key"] == "b"
    empty = ET.fromstring(X.delete_result_xml([], [], quiet=True))
    assert empty.tag == NS + "DeleteResult" and len(empty) == 0


def _delete_body(n: int, quiet: str | None = None) -> bytes:
    objs = "".join(f"<Object><Key>k{i}</Key></Object>" for i in range(n))
    q = f"<Quiet>{quiet}</Quiet>" if quiet is not None else ""
    return f'<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{q}{objs}</Delete>'.encode()


def test_parse_delete_objects_limits():
    keys, quiet = X.parse_delete_objects(_delete_body(1000))
    assert len(keys) == 1000 and keys[0] == ("k0", None) and quiet is False
    with pytest.raises(E.MalformedXML):
        X.parse_delete_objects(_delete_body(1001))
    with pytest.raises(E.MalformedXML):
        X.parse_delete_objects(_delete_body(0))


@pytest.mark.parametrize("q, expected", [("true", True), ("false", False), (" TRUE ", True)])
def test_parse_delete_objects_quiet(q, expected):
    assert X.parse_delete_objects(_delete_body(1, q)) == ([("k0", None)], expected)


@pytest.mark.parametrize("body", [
    b"",
    b"<Delete>",
    b"<Delete><Object><VersionId>1</VersionId></Object></Delete>",
    b"<Delete><Object><Key></Key></Object></Delete>",
    b"<Delete><Object><Key>a</Key><Key>b</Key></Object></Delete>",
    b"<Delete><Object><Key>a<x/></Key></Object></Delete>",
    b"<Delete><Quiet>maybe</Quiet><Object><Key>a</Key></Object></Delete>",
    b"<Delete><Quiet>true</Quiet><Quiet>true</Quiet><Object><Key>a</Key></Object></Delete>",
    b"<NotDelete><Object><Key>a</Key></Object></NotDelete>",
    b'<!DOCTYPE Delete [<!ENTITY e "x">]><Delete><Object><Key>&e;</Key></Object></Delete>',
    b'<!DOCTYPE Delete [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
    b"<Delete><Object><Key>&b;</Key></Object></Delete>",
    b'<!DOCTYPE Delete [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b"<Delete><Object><Key>&x;</Key></Object></Delete>",
    b"\xff\xfe<garbage",
    b"<Delete><Object><Key>" + b"a" * X.MAX_DELETE_BODY + b"</Key></Object></Delete>",
])
def test_parse_delete_objects_malformed(body):
    with pytest.raises(E.MalformedXML):
        X.parse_delete_objects(body)


def test_parse_delete_objects_keeps_whitespace_and_entities():
    body = (b"<Delete><Object><Key>  a &amp; b&#13;\t</Key><VersionId>x</VersionId></Object>"
            b"<Object><Key>\xed\x95\x9c</Key></Object></Delete>")
    assert X.parse_delete_objects(body) == ([("  a & b\r\t", "x"), ("한", None)], False)


# The hand-written serializer writes exactly what ElementTree wrote before it.
def _et_serialize(tree) -> bytes:
    import xml.etree.ElementTree as _ET

    def build(el, parent=None):
        node = (_ET.Element(el.tag, {"xmlns": xmldoc.NS} if el.namespace else {}) if parent is None
                else _ET.SubElement(parent, el.tag))
        if el.text is not None:
            node.text = el.text
        for c in el.children:
            build(c, node)
        return node
    text = _ET.tostring(build(tree), encoding="unicode", short_empty_elements=False)
    text = xmldoc._NON_XML_CHARS.sub(xmldoc._char_ref, text)
    return xmldoc.XML_DECLARATION + text.encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=30), max_size=6), st.text(max_size=30))
def test_serializer_matches_elementtree(texts, root_text):
    root = xmldoc.root("ListBucketResult")
    for i, t in enumerate(texts):
        c = xmldoc.sub(root, "Contents")
        xmldoc.sub(c, "Key", t)
        xmldoc.sub(c, "Size", i)
        xmldoc.sub(c, "Empty")
    xmldoc.sub(root, "Prefix", root_text)
    assert xmldoc.serialize(root) == _et_serialize(root)
