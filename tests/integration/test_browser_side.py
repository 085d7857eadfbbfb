"""The browser side of S3, over HTTP against a real cluster: presigned POST form uploads
(PostObject) made with boto3's generate_presigned_post, and CORS (Put/Get/DeleteBucketCors, a
preflight OPTIONS, Access-Control-* headers on actual answers). test_browser.py drives the
same in a real browser."""
from __future__ import annotations

import base64
import hashlib
import json
import uuid
import zlib
from xml.etree import ElementTree as ET

import pytest
import urllib3
from botocore.exceptions import ClientError

from .s3helpers import remove_bucket
from .cluster import SECOND_ACCESS_KEY
from minis3.core.access import account_id

HTTP = urllib3.PoolManager(retries=False)


@pytest.fixture(scope="module")
def s3(cluster):
    """boto3 signing its POST policies with SigV4 (generate_presigned_post's default is still
    SigV2: test_a_sigv2_signed_form covers that)."""
    from .conftest import make_client
    return make_client(cluster.endpoint, signature_version="s3v4")


@pytest.fixture
def site(s3):
    name = f"web-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    yield name
    remove_bucket(s3, name)


def post(form: dict, fields: dict | None = None, body: bytes = b"hello form", filename: str = "hello.txt",
         extra_after: dict | None = None):
    """POST ``form`` (generate_presigned_post's url and fields) with ``fields`` added, the file last."""
    parts = list({**form["fields"], **(fields or {})}.items())
    parts.append(("file", (filename, body, "text/plain")))
    parts += list((extra_after or {}).items())
    return HTTP.request("POST", form["url"], fields=parts)


def code(r) -> str:
    return ET.fromstring(r.data).findtext("Code")


def message(r) -> str:
    return ET.fromstring(r.data).findtext("Message")


# ----------------------------------------------------------------------------- PostObject
def test_a_presigned_post_uploads_a_file_streamed_and_stored_as_any_object(s3, site):
    form = s3.generate_presigned_post(site, "uploads/a.txt", ExpiresIn=300)
    r = post(form, body=b"hello form")
    assert r.status == 204, r.data
    assert r.headers["ETag"] == f'"{hashlib.md5(b"hello form").hexdigest()}"'
    got = s3.get_object(Bucket=site, Key="uploads/a.txt")
    assert got["Body"].read() == b"hello form" and got["ETag"] == r.headers["ETag"]
    big = bytes(range(256)) * (12 * 1024 * 1024 // 256 + 7)               # 12 MiB: erasure-coded, several segments
    form = s3.generate_presigned_post(site, "uploads/big.bin", ExpiresIn=300)
    assert post(form, body=big).status == 204
    assert s3.get_object(Bucket=site, Key="uploads/big.bin")["Body"].read() == big


def test_a_sigv2_signed_form(cluster, site):
    from .conftest import make_client
    v2 = make_client(cluster.endpoint)                      # botocore's default for presigned POST: SigV2
    form = v2.generate_presigned_post(site, "v2.txt", ExpiresIn=300)
    assert set(form["fields"]) == {"key", "AWSAccessKeyId", "policy", "signature"}
    assert post(form).status == 204
    assert v2.get_object(Bucket=site, Key="v2.txt")["Body"].read() == b"hello form"
    bad = dict(form, fields=dict(form["fields"], signature=base64.b64encode(b"x" * 20).decode()))
    r = post(bad)
    assert (r.status, code(r)) == (403, "SignatureDoesNotMatch")


def test_the_forms_fields_become_the_objects_headers_metadata_and_tags(s3, site):
    fields = {"Content-Type": "text/html", "x-amz-meta-owner": "ada", "success_action_status": "201",
              "tagging": "<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>",
              "x-amz-checksum-crc32": base64.b64encode(zlib.crc32(b"<p>hi</p>").to_bytes(4, "big")).decode()}
    conditions = [{"Content-Type": "text/html"}, {"x-amz-meta-owner": "ada"}, {"success_action_status": "201"},
                  ["starts-with", "$tagging", ""], ["starts-with", "$x-amz-checksum-crc32", ""]]
    form = s3.generate_presigned_post(site, "page.html", Fields=fields, Conditions=conditions, ExpiresIn=300)
    r = post(form, body=b"<p>hi</p>")
    assert r.status == 201, r.data
    doc = ET.fromstring(r.data)
    assert doc.tag == "PostResponse" and doc.findtext("Key") == "page.html" and doc.findtext("Bucket") == site
    head = s3.head_object(Bucket=site, Key="page.html", ChecksumMode="ENABLED")
    assert head["ContentType"] == "text/html" and head["Metadata"] == {"owner": "ada"}
    assert head["ChecksumCRC32"] == fields["x-amz-checksum-crc32"]
    assert s3.get_object_tagging(Bucket=site, Key="page.html")["TagSet"] == [{"Key": "k", "Value": "v"}]
    fields["x-amz-checksum-crc32"] = base64.b64encode(b"\0\0\0\0").decode()
    form = s3.generate_presigned_post(site, "bad.html", Fields=fields, Conditions=conditions, ExpiresIn=300)
    r = post(form, body=b"<p>hi</p>")
    assert (r.status, code(r)) == (400, "BadDigest")
    assert "Contents" not in s3.list_objects_v2(Bucket=site, Prefix="bad")


def test_filename_redirect_and_starts_with(s3, site):
    form = s3.generate_presigned_post(site, "users/ada/${filename}",
                                      Fields={"success_action_redirect": "https://app.example/done?x=1"},
                                      Conditions=[["starts-with", "$success_action_redirect", "https://app.example/"]],
                                      ExpiresIn=300)
    r = post(form, filename="cv.pdf", body=b"%PDF")
    assert r.status == 303, r.data
    loc = r.headers["Location"]
    assert loc.startswith("https://app.example/done?x=1&bucket=" + site) and "key=users%2Fada%2Fcv.pdf" in loc
    assert s3.get_object(Bucket=site, Key="users/ada/cv.pdf")["Body"].read() == b"%PDF"
    # The policy says the key starts with users/ada/: another key is refused.
    r = post(form, fields={"key": "users/bob/cv.pdf"})
    assert (r.status, code(r)) == (403, "AccessDenied") and "Policy Condition failed" in message(r)


def test_the_policy_is_enforced(s3, site):
    form = s3.generate_presigned_post(site, "f", Conditions=[["content-length-range", 5, 10]], ExpiresIn=300)
    assert post(form, body=b"12345678").status == 204
    r = post(form, body=b"x" * 11)
    assert (r.status, code(r)) == (400, "EntityTooLarge")
    r = post(form, body=b"1234")
    assert (r.status, code(r)) == (400, "EntityTooSmall")
    r = post(form, fields={"x-amz-meta-sneaky": "1"})
    assert (r.status, code(r)) == (403, "AccessDenied") and "Extra input fields: x-amz-meta-sneaky" in message(r)
    assert post(form, fields={"x-ignore-note": "fine"}, body=b"123456").status == 204
    bad = dict(form, fields=dict(form["fields"], **{"x-amz-signature": "0" * 64}))
    r = post(bad)
    assert (r.status, code(r)) == (403, "SignatureDoesNotMatch")
    expired = s3.generate_presigned_post(site, "g", ExpiresIn=-10)
    r = post(expired)
    assert (r.status, code(r)) == (403, "AccessDenied") and "Policy expired" in message(r)
    r = post(form, fields={"policy": "bm90IGpzb24="})
    assert r.status in (400, 403), r.data
    no_key = dict(form, fields={k: v for k, v in form["fields"].items() if k != "key"})
    r = post(no_key)
    assert r.status in (400, 403) and code(r) in ("InvalidArgument", "AccessDenied")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=site)["Contents"]] == ["f"]


def test_a_bucket_policy_decides_a_form_upload_like_a_put(s3, site):
    """The signer must be allowed s3:PutObject on the form's key: a policy that denies a
    prefix refuses the form; anonymous forms need a policy that lets anybody put."""
    s3.put_bucket_policy(Bucket=site, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{site}/locked/*"}]}))
    form = s3.generate_presigned_post(site, "locked/x", ExpiresIn=300)
    r = post(form)
    assert (r.status, code(r)) == (403, "AccessDenied")
    anonymous = {"url": form["url"], "fields": {"key": "drop/x"}}
    r = post(anonymous)
    assert (r.status, code(r)) == (403, "AccessDenied")
    s3.delete_public_access_block(Bucket=site)
    s3.put_bucket_policy(Bucket=site, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{site}/drop/*"}]}))
    assert post(anonymous).status == 204
    assert s3.get_object(Bucket=site, Key="drop/x")["Body"].read() == b"hello form"


def test_the_fields_before_the_file_are_bounded(s3, site):
    form = s3.generate_presigned_post(site, "f", ExpiresIn=300)
    r = post(form, fields={"x-ignore-pad": "x" * (70 * 1024)})
    assert (r.status, code(r)) == (400, "MaxPostPreDataLengthExceededError")
    r = HTTP.request("POST", form["url"], fields=list(form["fields"].items()))       # no file at all
    assert (r.status, code(r)) == (400, "InvalidArgument")


# ----------------------------------------------------------------------------- CORS
RULES = {"CORSRules": [
    {"ID": "app", "AllowedOrigins": ["https://app.example"], "AllowedMethods": ["GET", "PUT", "POST"],
     "AllowedHeaders": ["content-type", "x-amz-*"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 600},
    {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]}


def preflight(endpoint, path, origin, method, headers=""):
    h = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        h["Access-Control-Request-Headers"] = headers
    return HTTP.request("OPTIONS", endpoint + path, headers=h)


def test_cors_configuration_round_trip(s3, site):
    with pytest.raises(ClientError) as e:
        s3.get_bucket_cors(Bucket=site)
    assert e.value.response["Error"]["Code"] == "NoSuchCORSConfiguration"
    s3.put_bucket_cors(Bucket=site, CORSConfiguration=RULES)
    assert s3.get_bucket_cors(Bucket=site)["CORSRules"] == RULES["CORSRules"]
    with pytest.raises(ClientError) as e:
        s3.put_bucket_cors(Bucket=site, CORSConfiguration={"CORSRules": [
            {"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}]})
    assert e.value.response["Error"]["Code"] == "InvalidRequest"
    s3.delete_bucket_cors(Bucket=site)
    with pytest.raises(ClientError):
        s3.get_bucket_cors(Bucket=site)


def test_preflight_and_actual_requests(cluster, s3, site):
    ep = cluster.endpoint
    r = preflight(ep, f"/{site}/k", "https://app.example", "PUT")
    assert (r.status, code(r)) == (403, "AccessForbidden") and "not enabled" in message(r)
    s3.put_bucket_cors(Bucket=site, CORSConfiguration=RULES)
    r = preflight(ep, f"/{site}/k", "https://app.example", "PUT", "Content-Type, x-amz-meta-a")
    assert r.status == 200, r.data
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert r.headers["Access-Control-Allow-Methods"] == "GET, PUT, POST"
    assert r.headers["Access-Control-Allow-Headers"] == "content-type, x-amz-meta-a"
    assert r.headers["Access-Control-Max-Age"] == "600" and "Origin" in r.headers["Vary"]
    for origin, method, hdrs in (("https://evil.example", "PUT", ""), ("https://app.example", "DELETE", ""),
                                 ("https://app.example", "PUT", "authorization")):
        r = preflight(ep, f"/{site}/k", origin, method, hdrs)
        assert (r.status, code(r)) == (403, "AccessForbidden"), (origin, method, hdrs)
    r = preflight(ep, f"/{site}/k", "https://other.example", "GET")
    assert r.status == 200 and r.headers["Access-Control-Allow-Origin"] == "*"
    r = HTTP.request("OPTIONS", f"{ep}/{site}/k", headers={"Origin": "https://app.example"})
    assert (r.status, code(r)) == (400, "BadRequest")
    # The actual request's answer carries them too, errors included; no Origin, none.
    s3.put_object(Bucket=site, Key="k", Body=b"v")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": site, "Key": "k"}, ExpiresIn=300)
    r = HTTP.request("GET", url, headers={"Origin": "https://app.example"})
    assert r.status == 200 and r.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert r.headers["Access-Control-Expose-Headers"] == "ETag"
    assert "Access-Control-Allow-Origin" not in HTTP.request("GET", url).headers
    missing = s3.generate_presigned_url("get_object", Params={"Bucket": site, "Key": "nope"}, ExpiresIn=300)
    r = HTTP.request("GET", missing, headers={"Origin": "https://app.example"})
    assert r.status == 404 and r.headers["Access-Control-Allow-Origin"] == "https://app.example"
    r = HTTP.request("GET", url, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in r.headers or r.headers["Access-Control-Allow-Origin"] == "*"


def test_cross_account_cors_calls_need_a_policy(s3, site):
    """PutBucketCors is an action like any other: another account needs s3:PutBucketCORS."""
    import boto3
    from botocore.config import Config
    from .cluster import SECOND_SECRET_KEY
    other = boto3.client("s3", endpoint_url=s3.meta.endpoint_url, region_name="us-east-1",
                         aws_access_key_id=SECOND_ACCESS_KEY, aws_secret_access_key=SECOND_SECRET_KEY,
                         config=Config(retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as e:
        other.put_bucket_cors(Bucket=site, CORSConfiguration=RULES)
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    s3.put_bucket_policy(Bucket=site, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": account_id(SECOND_ACCESS_KEY)}, "Action": "s3:PutBucketCORS",
         "Resource": f"arn:aws:s3:::{site}"}]}))
    other.put_bucket_cors(Bucket=site, CORSConfiguration=RULES)
    assert s3.get_bucket_cors(Bucket=site)["CORSRules"][0]["ID"] == "app"


@pytest.mark.parametrize("content_type,body", [
    ("multipart/form-data", b"--x\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk\r\n--x--\r\n"),
    ("multipart/form-data; boundary=x", b""),
    ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk"),
    ("multipart/form-data; boundary=x", b"--x\r\nno headers at all\r\n--x--\r\n"),
    ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n"
                                        b"\r\nabc\r\n--x--\r\n"),                                 # no key, no policy
    ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\n\xff\xfe\r\n"
                                        b"--x\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc\r\n--x--\r\n"),
    ("application/x-www-form-urlencoded", b"key=k&file=abc"),
    ("text/plain", b"hello"),
])
def test_broken_forms_get_s3_errors_never_a_500(cluster, site, content_type, body):
    r = HTTP.request("POST", f"{cluster.endpoint}/{site}", body=body, headers={"Content-Type": content_type})
    assert 400 <= r.status < 500, (r.status, r.data[:300])
    assert code(r) and r.headers.get("x-amz-request-id")
