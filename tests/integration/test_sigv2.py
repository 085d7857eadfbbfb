"""SigV2 (``Authorization: AWS AKID:signature``) and presigned-URL expiry, on
the wire.

Requests go out through http.client exactly as built here; SigV2 signatures
come from botocore's own signers (HmacV1Auth for the header form,
HmacV1QueryAuth for URLs, S3SigV4QueryAuth for SigV4 URLs with an
X-Amz-Expires of our choosing), so the server is checked against an
independent implementation, not against its own code. Every refusal must be
S3's XML error body carrying the response's request id.
"""
from __future__ import annotations

import base64
import hashlib
import http.client
import os
import time
import xml.etree.ElementTree as ET
from email.utils import formatdate
from urllib.parse import urlsplit

import pytest
from botocore.auth import HmacV1Auth, HmacV1QueryAuth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from .cluster import ACCESS_KEY, SECRET_KEY

CREDS = Credentials(ACCESS_KEY, SECRET_KEY)
KiB = 1024


def send(cluster, method: str, path_qs: str, headers: dict[str, str], body: bytes = b"",
         host: str | None = None) -> tuple[int, dict[str, str], bytes]:
    u = urlsplit(cluster.endpoint)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.putrequest(method, path_qs, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host or u.netloc)
        for k, v in headers.items():
            if k.lower() != "host":
                conn.putheader(k, v)
        if body or method in ("PUT", "POST"):
            if not any(k.lower() == "content-length" for k in headers):
                conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def v2_signed(cluster, method: str, path: str, headers: dict[str, str] | None = None,
              date: str | None = None, vhost_bucket: str | None = None) -> dict[str, str]:
    """Headers signed by botocore's HmacV1Auth (Date set to ``date`` or now)."""
    u = urlsplit(cluster.endpoint)
    if vhost_bucket:
        url = f"http://{vhost_bucket}.localhost:{u.port}{path}"
    else:
        url = cluster.endpoint + path
    req = AWSRequest(method=method, url=url, headers=dict(headers or {}))
    if vhost_bucket:
        req.auth_path = "/" + vhost_bucket + urlsplit(url).path
    signer = HmacV1Auth(CREDS)
    if date is not None:
        signer._get_date = lambda: date
    signer.add_auth(req)
    out = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in req.headers.items()}
    if vhost_bucket:
        out["Host"] = f"{vhost_bucket}.localhost:{u.port}"
    return out


def path_qs(url: str) -> str:
    p = urlsplit(url)
    return p.path + ("?" + p.query if p.query else "")


def assert_error(resp, code: str, status: int) -> dict[str, str]:
    got_status, headers, body = resp
    assert got_status == status, (got_status, body[:2000])
    root = ET.fromstring(body)
    assert root.tag == "Error", body
    x = {child.tag: (child.text or "") for child in root}
    assert x["Code"] == code, body
    assert x.get("Message") and x.get("Resource"), body
    assert x.get("RequestId") and x["RequestId"] == headers["x-amz-request-id"], body
    assert headers.get("content-type", "").startswith("application/xml")
    return x


def absent(s3, bucket: str, key: str) -> bool:
    with pytest.raises(ClientError) as ei:
        s3.head_object(Bucket=bucket, Key=key)
    return ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


# ----------------------------------------------------------------------------- SigV2 header

def test_sigv2_header_put_then_get(cluster, s3, bucket):
    data = os.urandom(300 * KiB + 7)          # erasure-coded, not inline
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    h = v2_signed(cluster, "PUT", f"/{bucket}/dir/v2 obj.bin".replace(" ", "%20"),
                  {"Content-Type": "application/x-test", "Content-MD5": md5, "x-amz-meta-who": "sigv2"})
    r = send(cluster, "PUT", f"/{bucket}/dir/v2%20obj.bin", h, data)
    assert r[0] == 200, r[2]
    assert r[1]["etag"] == f'"{hashlib.md5(data).hexdigest()}"'

    h = v2_signed(cluster, "GET", f"/{bucket}/dir/v2%20obj.bin")
    status, headers, body = send(cluster, "GET", f"/{bucket}/dir/v2%20obj.bin", h)
    assert status == 200 and body == data
    assert headers["content-type"] == "application/x-test" and headers["x-amz-meta-who"] == "sigv2"
    # The same object through a SigV4 client.
    assert s3.get_object(Bucket=bucket, Key="dir/v2 obj.bin")["Body"].read() == data

    # Virtual-hosted: the bucket from the Host header is part of the resource.
    h = v2_signed(cluster, "GET", "/dir/v2%20obj.bin", vhost_bucket=bucket)
    status, _, body = send(cluster, "GET", "/dir/v2%20obj.bin", h, host=h["Host"])
    assert status == 200 and body == data

    # A bucket-level request with a sub-resource (botocore signs "/bucket/?...").
    h = v2_signed(cluster, "GET", f"/{bucket}?prefix=dir%2F")
    status, _, body = send(cluster, "GET", f"/{bucket}?prefix=dir%2F", h)
    assert status == 200 and b"<Key>dir/v2 obj.bin</Key>" in body


def test_sigv2_header_body_is_unsigned_but_content_md5_still_checked(cluster, s3, bucket):
    """SigV2 does not sign the body: any body goes, but a Content-MD5 must match it."""
    h = v2_signed(cluster, "PUT", f"/{bucket}/k", {"x-amz-content-sha256": "0" * 64})
    r = send(cluster, "PUT", f"/{bucket}/k", h, b"not the hash above")
    assert r[0] == 200, r[2]
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"not the hash above"
    wrong_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    h = v2_signed(cluster, "PUT", f"/{bucket}/k2", {"Content-MD5": wrong_md5})
    assert_error(send(cluster, "PUT", f"/{bucket}/k2", h, b"data"), "BadDigest", 400)
    assert absent(s3, bucket, "k2")


def test_sigv2_header_bad_signature(cluster, s3, bucket):
    h = v2_signed(cluster, "PUT", f"/{bucket}/evil", {"Content-Type": "text/plain"})
    h["Content-Type"] = "text/html"                       # signed as text/plain
    x = assert_error(send(cluster, "PUT", f"/{bucket}/evil", h, b"x"), "SignatureDoesNotMatch", 403)
    assert x["StringToSign"] == f"PUT\n\ntext/html\n{h['Date']}\n/{bucket}/evil"
    assert x["AWSAccessKeyId"] == ACCESS_KEY and x["SignatureProvided"]
    assert SECRET_KEY not in str(x)
    assert absent(s3, bucket, "evil")

    wrong = HmacV1Auth(Credentials(ACCESS_KEY, "not-the-secret"))
    req = AWSRequest(method="GET", url=f"{cluster.endpoint}/{bucket}/evil")
    wrong.add_auth(req)
    assert_error(send(cluster, "GET", f"/{bucket}/evil", dict(req.headers.items())),
                 "SignatureDoesNotMatch", 403)


def test_sigv2_header_unknown_key(cluster, bucket):
    req = AWSRequest(method="GET", url=f"{cluster.endpoint}/{bucket}/k")
    HmacV1Auth(Credentials("NOSUCHKEY", SECRET_KEY)).add_auth(req)
    x = assert_error(send(cluster, "GET", f"/{bucket}/k", dict(req.headers.items())), "InvalidAccessKeyId", 403)
    assert x["AWSAccessKeyId"] == "NOSUCHKEY"


def test_sigv2_header_missing_date(cluster, s3, bucket):
    h = v2_signed(cluster, "PUT", f"/{bucket}/nodate")
    del h["Date"]
    x = assert_error(send(cluster, "PUT", f"/{bucket}/nodate", h, b"x"), "AccessDenied", 403)
    assert x["Message"] == "AWS authentication requires a valid Date or x-amz-date header"
    assert absent(s3, bucket, "nodate")


def test_sigv2_header_skewed_date(cluster, bucket):
    skewed = formatdate(time.time() - 20 * 60, usegmt=True)
    h = v2_signed(cluster, "GET", f"/{bucket}?prefix=a", date=skewed)
    x = assert_error(send(cluster, "GET", f"/{bucket}?prefix=a", h), "RequestTimeTooSkewed", 403)
    assert x["RequestTime"] == skewed and x["MaxAllowedSkewMilliseconds"] == "900000"
    # Ten minutes off is within the allowed skew.
    h = v2_signed(cluster, "GET", f"/{bucket}?prefix=a", date=formatdate(time.time() - 600, usegmt=True))
    assert send(cluster, "GET", f"/{bucket}?prefix=a", h)[0] == 200


def test_sigv2_header_with_x_amz_date(cluster, s3, bucket):
    """x-amz-date instead of Date: signed as an amz header, with an empty Date line."""
    xdate = formatdate(time.time(), usegmt=True)
    sts = f"PUT\n\n\n\nx-amz-date:{xdate}\n/{bucket}/xd"
    sig = HmacV1Auth(CREDS).sign_string(sts)
    r = send(cluster, "PUT", f"/{bucket}/xd", {"x-amz-date": xdate, "Authorization": f"AWS {ACCESS_KEY}:{sig}"},
             b"dated")
    assert r[0] == 200, r[2]
    assert s3.get_object(Bucket=bucket, Key="xd")["Body"].read() == b"dated"


# ----------------------------------------------------------------------------- presigned expiry

def v4_presigned(cluster, method: str, path: str, expires: int) -> str:
    """A SigV4 URL signed by botocore with any X-Amz-Expires (its signer does not check it)."""
    req = AWSRequest(method=method, url=cluster.endpoint + path)
    S3SigV4QueryAuth(CREDS, "s3", "us-east-1", expires=expires).add_auth(req)
    return req.url


def test_presigned_v4_expires_zero_is_expired(cluster, s3, bucket):
    s3.put_object(Bucket=bucket, Key="z", Body=b"zero")
    x = assert_error(send(cluster, "GET", path_qs(v4_presigned(cluster, "GET", f"/{bucket}/z", 0)), {}),
                     "AccessDenied", 403)
    assert x["Message"] == "Request has expired" and x["X-Amz-Expires"] == "0"
    x = assert_error(send(cluster, "PUT", path_qs(v4_presigned(cluster, "PUT", f"/{bucket}/z0", 0)), {},
                          b"body"), "AccessDenied", 403)
    assert x["Message"] == "Request has expired"
    assert absent(s3, bucket, "z0")


@pytest.mark.parametrize("expires,message", [
    (-1, "X-Amz-Expires must be non-negative"),
    (604801, "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires "
             "must be less than 604800 seconds"),
])
def test_presigned_v4_expires_out_of_range(cluster, s3, bucket, expires, message):
    """S3 answers these 400 AuthorizationQueryParametersError, with these messages."""
    for method, key in (("GET", "r"), ("PUT", "r-put")):
        url = v4_presigned(cluster, method, f"/{bucket}/{key}", expires)
        x = assert_error(send(cluster, method, path_qs(url), {}, b"body" if method == "PUT" else b""),
                         "AuthorizationQueryParametersError", 400)
        assert x["Message"] == message
    assert absent(s3, bucket, "r-put")


def test_presigned_v4_expires_must_be_ascii_digits(cluster, bucket):
    url = v4_presigned(cluster, "GET", f"/{bucket}/u", 120)
    assert "X-Amz-Expires=120&" in url
    bad = url.replace("X-Amz-Expires=120&", "X-Amz-Expires=%D9%A1%D9%A2%D9%A0&")   # Arabic-Indic 120
    x = assert_error(send(cluster, "GET", path_qs(bad), {}), "AuthorizationQueryParametersError", 400)
    assert x["Message"] == "X-Amz-Expires should be a number"


def test_presigned_put_expired(cluster, s3, bucket):
    """An expired presigned PUT is refused on its headers (403), never by reading the body."""
    s3v4_url = v4_presigned(cluster, "PUT", f"/{bucket}/late", 1)
    req = AWSRequest(method="PUT", url=f"{cluster.endpoint}/{bucket}/late2")
    HmacV1QueryAuth(CREDS, expires=1).add_auth(req)
    time.sleep(2.1)
    for url in (s3v4_url, req.url):
        x = assert_error(send(cluster, "PUT", path_qs(url), {}, os.urandom(200 * KiB)), "AccessDenied", 403)
        assert x["Message"] == "Request has expired"
    assert absent(s3, bucket, "late") and absent(s3, bucket, "late2")


def test_presigned_v2_expires_more_than_a_week_ahead(cluster, s3, bucket):
    s3.put_object(Bucket=bucket, Key="far", Body=b"far")
    for method, key in (("GET", "far"), ("PUT", "far-put")):
        req = AWSRequest(method=method, url=f"{cluster.endpoint}/{bucket}/{key}")
        HmacV1QueryAuth(CREDS, expires=8 * 86400).add_auth(req)
        x = assert_error(send(cluster, method, path_qs(req.url), {}, b"body" if method == "PUT" else b""),
                         "AccessDenied", 403)
        assert "7 days" in x["Message"]
    assert absent(s3, bucket, "far-put")
    # Six days ahead is fine.
    req = AWSRequest(method="GET", url=f"{cluster.endpoint}/{bucket}/far")
    HmacV1QueryAuth(CREDS, expires=6 * 86400).add_auth(req)
    status, _, body = send(cluster, "GET", path_qs(req.url), {})
    assert status == 200 and body == b"far"
