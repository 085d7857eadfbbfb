"""Tests for minis3.core.sigv4.

Known answers come from the S3 API reference:
* "Signature Calculations for the Authorization Header: Transferring Payload in
  a Single Chunk" -> "Examples: Signature Calculations" (GET Object with Range,
  PUT Object, GET Bucket Lifecycle, GET Bucket (List Objects));
* "Authenticating Requests: Using Query Parameters" (presigned GET test.txt);
* "... Transferring Payload in Multiple Chunks" (seed signature of the chunked
  PUT example);
* "Signing and Authenticating REST Requests" (SigV2: the Object GET and the
  Delete-with-x-amz-date examples).
The rest cross-checks against botocore's own signers and against real boto3
clients whose requests are captured before they leave the process.
"""
from __future__ import annotations

import hashlib
import io
from datetime import datetime, timedelta, timezone
from unittest import mock
from urllib.parse import parse_qsl, urlsplit

import boto3
import pytest
from botocore.auth import HmacV1Auth, HmacV1QueryAuth, S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.config import Config
from botocore.credentials import Credentials

from minis3.core import errors as E
from minis3.core import signing, sigv2
from minis3.core import sigv4 as S

AK = "AKIAIOSFODNN7EXAMPLE"
SK = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SECRETS = {AK: SK}
AWS_NOW = datetime(2013, 5, 24, 0, 0, 0, tzinfo=timezone.utc)
AWS_AMZ_DATE = "20130524T000000Z"
AWS_HOST = "examplebucket.s3.amazonaws.com"
EMPTY = S.EMPTY_SHA256


def aws_headers(**extra: str) -> dict[str, str]:
    h = {"host": AWS_HOST, "x-amz-date": AWS_AMZ_DATE, "x-amz-content-sha256": EMPTY}
    h.update(extra)
    return h


def sign_steps(method, path, query, headers, payload_hash):
    """Run the documented steps with every header signed; return (creq, sts, sig)."""
    names = sorted(headers)
    creq = S.canonical_request(method, S.canonical_uri(path), S.canonical_query(query, exclude=()),
                               S.canonical_headers(headers, names), names, payload_hash)
    sts = S.string_to_sign(AWS_AMZ_DATE, S.scope("20130524", "us-east-1"), creq)
    return creq, sts, S.signature(S.signing_key(SK, "20130524", "us-east-1"), sts)


def auth_header(names, sig):
    return (f"AWS4-HMAC-SHA256 Credential={AK}/20130524/us-east-1/s3/aws4_request,"
            f"SignedHeaders={';'.join(names)},Signature={sig}")


# --------------------------------------------------------------------------
# AWS published examples
# --------------------------------------------------------------------------

WELCOME = b"Welcome to Amazon S3."
WELCOME_SHA = hashlib.sha256(WELCOME).hexdigest()

AWS_EXAMPLES = [
    pytest.param("GET", "/test.txt", [], aws_headers(range="bytes=0-9"), EMPTY,
                 "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
                 "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41", id="get-object-range"),
    pytest.param("PUT", "/test%24file.text", [],
                 aws_headers(**{"date": "Fri, 24 May 2013 00:00:00 GMT",
                                "x-amz-storage-class": "REDUCED_REDUNDANCY",
                                "x-amz-content-sha256": WELCOME_SHA}), WELCOME_SHA,
                 "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d",
                 "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd", id="put-object"),
    pytest.param("GET", "/", [("lifecycle", "")], aws_headers(), EMPTY,
                 "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca",
                 "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543", id="get-lifecycle"),
    pytest.param("GET", "/", [("max-keys", "2"), ("prefix", "J")], aws_headers(), EMPTY,
                 "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7",
                 "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7", id="list-objects"),
]


@pytest.mark.parametrize("method,path,query,headers,payload,creq_hash,expected", AWS_EXAMPLES)
def test_aws_header_examples_step_by_step(method, path, query, headers, payload, creq_hash, expected):
    creq, sts, sig = sign_steps(method, path, query, headers, payload)
    assert hashlib.sha256(creq.encode()).hexdigest() == creq_hash
    assert sts == f"AWS4-HMAC-SHA256\n{AWS_AMZ_DATE}\n20130524/us-east-1/s3/aws4_request\n{creq_hash}"
    assert sig == expected


@pytest.mark.parametrize("method,path,query,headers,payload,creq_hash,expected", AWS_EXAMPLES)
def test_aws_header_examples_verify(method, path, query, headers, payload, creq_hash, expected):
    hdrs = dict(headers, authorization=auth_header(sorted(headers), expected))
    res = S.verify(S.SigningInput(method, path, query, hdrs), SECRETS, AWS_NOW)
    assert (res.access_key, res.mode, res.payload_hash) == (AK, "header", payload)
    assert res.seed_signature == expected
    assert res.scope == "20130524/us-east-1/s3/aws4_request" and res.region == "us-east-1"
    assert res.amz_date == AWS_AMZ_DATE
    assert res.signing_key == S.signing_key(SK, "20130524", "us-east-1")
    # Query order on the wire does not matter.
    res2 = S.verify(S.SigningInput(method, path, list(reversed(query)), hdrs), SECRETS, AWS_NOW)
    assert res2.access_key == AK


def test_aws_get_object_canonical_request_text():
    creq, _, _ = sign_steps("GET", "/test.txt", [], aws_headers(range="bytes=0-9"), EMPTY)
    assert creq == ("GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
                    f"x-amz-content-sha256:{EMPTY}\nx-amz-date:20130524T000000Z\n\n"
                    f"host;range;x-amz-content-sha256;x-amz-date\n{EMPTY}")


AWS_PRESIGNED_QUERY = [
    ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
    ("X-Amz-Credential", f"{AK}/20130524/us-east-1/s3/aws4_request"),
    ("X-Amz-Date", AWS_AMZ_DATE),
    ("X-Amz-Expires", "86400"),
    ("X-Amz-SignedHeaders", "host"),
    ("X-Amz-Signature", "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"),
]


def test_aws_presigned_example_verify():
    req = S.SigningInput("GET", "/test.txt", AWS_PRESIGNED_QUERY, {"host": AWS_HOST})
    res = S.verify(req, SECRETS, AWS_NOW + timedelta(hours=23))
    assert (res.access_key, res.mode, res.payload_hash) == (AK, "presigned", "UNSIGNED-PAYLOAD")
    assert res.seed_signature == "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"


def test_aws_presigned_example_presign_url():
    url = signing.presign_url("GET", f"https://{AWS_HOST}/test.txt", AK, SK, "us-east-1", AWS_NOW, 86400)
    assert url == (
        "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")


def test_aws_presigned_example_expired():
    req = S.SigningInput("GET", "/test.txt", AWS_PRESIGNED_QUERY, {"host": AWS_HOST})
    with pytest.raises(E.AccessDenied) as ei:
        S.verify(req, SECRETS, AWS_NOW + timedelta(seconds=86401))
    assert ei.value.message == "Request has expired"
    assert ei.value.extra["Expires"] == "2013-05-25T00:00:00Z"
    assert ei.value.extra["ServerTime"] == "2013-05-25T00:00:01Z"


def test_aws_chunked_example_seed_signature():
    headers = {
        "host": "s3.amazonaws.com", "x-amz-date": AWS_AMZ_DATE,
        "x-amz-storage-class": "REDUCED_REDUNDANCY", "x-amz-content-sha256": S.STREAMING_SIGNED,
        "content-encoding": "aws-chunked", "x-amz-decoded-content-length": "66560",
        "content-length": "66824",
    }
    seed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    headers["authorization"] = auth_header(
        ["content-encoding", "content-length", "host", "x-amz-content-sha256", "x-amz-date",
         "x-amz-decoded-content-length", "x-amz-storage-class"], seed)
    res = S.verify(S.SigningInput("PUT", "/examplebucket/chunkObject.txt", [], headers), SECRETS, AWS_NOW)
    assert res.seed_signature == seed
    assert res.payload_hash == S.STREAMING_SIGNED


# --------------------------------------------------------------------------
# Step functions
# --------------------------------------------------------------------------

def test_parse_authorization_variants():
    for value in (
        f"AWS4-HMAC-SHA256 Credential={AK}/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=abc",
        f"AWS4-HMAC-SHA256 Credential={AK}/20130524/us-east-1/s3/aws4_request,"
        "SignedHeaders=host;x-amz-date,Signature=abc",
        f"  AWS4-HMAC-SHA256 Signature=abc ,SignedHeaders=host;x-amz-date , "
        f"Credential={AK}/20130524/us-east-1/s3/aws4_request",
    ):
        ah = S.parse_authorization(value)
        assert (ah.access_key, ah.date, ah.region, ah.service) == (AK, "20130524", "us-east-1", "s3")
        assert ah.signed_headers == ["host", "x-amz-date"] and ah.signature == "abc"
        assert ah.scope == "20130524/us-east-1/s3/aws4_request"


def test_parse_sigv2_authorization():
    value = f"AWS {AK}:frJIUN8DYpKDtOLCwo//yllqDzg="
    assert sigv2.is_sigv2_authorization(value) and sigv2.is_sigv2_authorization("  AWS")
    assert not sigv2.is_sigv2_authorization("AWS4-HMAC-SHA256 Credential=x")
    assert sigv2.parse_sigv2_authorization(value) == (AK, "frJIUN8DYpKDtOLCwo//yllqDzg=")
    for bad in ("AWS", "AWS ", f"AWS {AK}", f"AWS {AK}:", "AWS :sig"):
        with pytest.raises(E.InvalidArgument, match="Expected AwsAccessKeyId:signature"):
            sigv2.parse_sigv2_authorization(bad)
    # The SigV4 parser does not take a SigV2 header.
    with pytest.raises(E.InvalidArgument, match="Unsupported Authorization Type"):
        S.parse_authorization(value)


@pytest.mark.parametrize("value", [
    "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=host",
    "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3, SignedHeaders=host, Signature=x",
    "AWS4-HMAC-SHA256 Credential=AK/2013052/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=x",
    "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws5_request, SignedHeaders=host, Signature=x",
    "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=x",
    "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=, Signature=x",
    "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;;a, Signature=x",
    "AWS4-HMAC-SHA256 Credential, SignedHeaders=host, Signature=x",
    "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, Credential=B, "
    "SignedHeaders=host, Signature=x",
    "AWS4-HMAC-SHA256",
])
def test_parse_authorization_malformed(value):
    with pytest.raises(E.AuthorizationHeaderMalformed):
        S.parse_authorization(value)


def test_parse_authorization_unsupported_algorithm():
    with pytest.raises(E.InvalidArgument):
        S.parse_authorization("AWS4-ECDSA-P256-SHA256 Credential=AK/20130524/s3/aws4_request, "
                              "SignedHeaders=host, Signature=x")


@pytest.mark.parametrize("raw,expected", [
    ("", "/"),
    ("/", "/"),
    ("/test.txt", "/test.txt"),
    ("/test%24file.text", "/test%24file.text"),
    ("/test$file.text", "/test%24file.text"),
    ("/a%20b/c%2Bd", "/a%20b/c%2Bd"),
    ("/a+b", "/a%2Bb"),                        # a literal '+' is not a space in paths
    ("/%7euser/~x", "/~user/~x"),              # unreserved bytes are never encoded
    ("/%c3%bc", "/%C3%BC"),                    # upper-case hex
    ("/ü", "/%C3%BC"),
    ("//a/./b/../c//", "//a/./b/../c//"),      # S3: no normalisation
    ("/a%2Fb", "/a/b"),                        # decoded once, '/' kept
    ("/%2541", "/%2541"),                      # no double decoding
])
def test_canonical_uri(raw, expected):
    assert S.canonical_uri(raw) == expected


def test_canonical_query():
    pairs = [("prefix", "a b/c"), ("list-type", "2"), ("X-Amz-Signature", "sig"),
             ("b", "2"), ("b", "1"), ("é", "~*'"), ("acl", "")]
    # Sorted by the *encoded* name: "%" sorts before letters.
    assert S.canonical_query(pairs) == \
        "%C3%A9=~%2A%27&acl=&b=1&b=2&list-type=2&prefix=a%20b%2Fc"
    assert "X-Amz-Signature=sig" in S.canonical_query(pairs, exclude=())


def test_canonical_headers_trim_and_host_port():
    block = S.canonical_headers({"host": "localhost:9000", "x-amz-meta-a": "  a   b \t c  "},
                                ["host", "x-amz-meta-a", "x-amz-missing"])
    assert block == "host:localhost:9000\nx-amz-meta-a:a b c\nx-amz-missing:\n"


def test_signing_key_known_answer():
    # AWS general reference "Examples of how to derive a signing key for SigV4".
    key = S.signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam")
    assert key.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"


def test_chunk_and_trailer_strings_to_sign():
    sc = "20130524/us-east-1/s3/aws4_request"
    assert S.chunk_string_to_sign(AWS_AMZ_DATE, sc, "prev", "abc") == \
        f"AWS4-HMAC-SHA256-PAYLOAD\n{AWS_AMZ_DATE}\n{sc}\nprev\n{EMPTY}\nabc"
    assert S.trailer_string_to_sign(AWS_AMZ_DATE, sc, "prev", b"x-amz-checksum-crc32:AAAAAA==\n") == \
        (f"AWS4-HMAC-SHA256-TRAILER\n{AWS_AMZ_DATE}\n{sc}\nprev\n"
         + hashlib.sha256(b"x-amz-checksum-crc32:AAAAAA==\n").hexdigest())


# --------------------------------------------------------------------------
# Against botocore's signers
# --------------------------------------------------------------------------

NOW = datetime(2024, 3, 1, 12, 30, 45, tzinfo=timezone.utc)
CREDS = Credentials(AK, SK)
ENDPOINT = "http://localhost:9000"

# (url path as botocore sends it, query string as botocore sends it)
PATHS = [
    ("/bucket/plain.txt", ""),
    ("/bucket/with%20space.txt", ""),
    ("/bucket/a%2Bb%3Dc%26d", ""),
    ("/bucket/tilde~x/%21%2A%27%28%29", ""),
    ("/bucket/%C3%BCn%C3%AFc%C3%B6d%C3%A9/%D0%BA%D0%BB%D1%8E%D1%87", ""),
    ("/bucket", "list-type=2&prefix=a%20b%2Fc&delimiter=%2F&encoding-type=url"),
    ("/bucket/key", "uploads"),
    ("/bucket/key", "partNumber=3&uploadId=abc%2Bdef~"),
    ("/bucket/key", "versionId=x%2By&response-content-type=text%2Fplain%3B%20charset%3Dutf-8"),
    ("/", ""),
]


def _botocore_now():
    return mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None))


def _to_input(method: str, url: str, headers, host: str | None = None,
              virtual_host_bucket: str | None = None) -> S.SigningInput:
    parts = urlsplit(url)
    hdrs = {k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in headers.items()}
    hdrs.setdefault("host", host or parts.netloc)
    return S.SigningInput(method, parts.path, parse_qsl(parts.query, keep_blank_values=True), hdrs,
                          virtual_host_bucket)


def botocore_header_sign(method, url, headers=None, body=b""):
    req = AWSRequest(method=method, url=url, headers=dict(headers or {}), data=body)
    with _botocore_now():
        S3SigV4Auth(CREDS, "s3", "eu-west-3").add_auth(req)
    return req


def _flip(s: str, i: int) -> str:
    """Change the character at index i."""
    i %= len(s)
    c = s[i]
    return s[:i] + ("B" if c != "B" else "C") + s[i + 1:]


@pytest.mark.parametrize("path,query", PATHS)
def test_botocore_header_auth(path, query):
    url = ENDPOINT + path + ("?" + query if query else "")
    body = b"some body"
    req = botocore_header_sign("PUT", url, {"Content-Type": "text/plain", "x-amz-meta-k": "  v  1 "},
                               body)
    inp = _to_input("PUT", req.url, req.headers)
    res = S.verify(inp, SECRETS, NOW + timedelta(minutes=3))
    assert res.access_key == AK and res.mode == "header" and res.region == "eu-west-3"
    assert res.payload_hash == hashlib.sha256(body).hexdigest()

    # Our signer produces the same headers as botocore for the same inputs.
    ours = signing.sign_request("PUT", url, {"Content-Type": "text/plain", "x-amz-meta-k": "  v  1 "},
                          hashlib.sha256(body).hexdigest(), AK, SK, "eu-west-3", NOW)
    for name in ("Authorization", "X-Amz-Date", "X-Amz-Content-SHA256"):
        assert ours[name] == req.headers[name]

    # One changed byte anywhere is refused.
    tampered = [
        S.SigningInput("PUT", _flip(inp.raw_path, len(inp.raw_path) - 1), inp.query, inp.headers),
        S.SigningInput("POST", inp.raw_path, inp.query, inp.headers),
        S.SigningInput("PUT", inp.raw_path, inp.query + [("x", "1")], inp.headers),
        S.SigningInput("PUT", inp.raw_path, inp.query, dict(inp.headers, **{"content-type": "text/plaiN"})),
        S.SigningInput("PUT", inp.raw_path, inp.query, dict(inp.headers, host="localhost:9001")),
        S.SigningInput("PUT", inp.raw_path, inp.query,
                       dict(inp.headers, authorization=_flip(inp.headers["authorization"], -1))),
        S.SigningInput("PUT", inp.raw_path, inp.query,
                       dict(inp.headers, **{"x-amz-content-sha256": EMPTY})),
    ]
    for bad in tampered:
        with pytest.raises(E.SignatureDoesNotMatch) as ei:
            S.verify(bad, SECRETS, NOW)
        extra = ei.value.extra
        assert extra["AWSAccessKeyId"] == AK and "CanonicalRequest" in extra
        assert extra["StringToSign"].startswith("AWS4-HMAC-SHA256\n")
        assert SK not in repr(extra)


def test_botocore_header_auth_whitespace_and_case_in_values():
    req = botocore_header_sign("GET", ENDPOINT + "/bucket/k",
                               {"X-Amz-Meta-Spaced": "a    b", "Range": "bytes=0-1"})
    inp = _to_input("GET", req.url, req.headers)
    # Extra spaces inside a value are collapsed on both sides.
    inp.headers["x-amz-meta-spaced"] = "  a b  "
    assert S.verify(inp, SECRETS, NOW).access_key == AK


@pytest.mark.parametrize("path,query", PATHS)
def test_botocore_presigned(path, query):
    url = ENDPOINT + path + ("?" + query if query else "")
    req = AWSRequest(method="GET", url=url, headers={})
    with _botocore_now():
        S3SigV4QueryAuth(CREDS, "s3", "us-east-1", expires=600).add_auth(req)
    assert signing.presign_url("GET", url, AK, SK, "us-east-1", NOW, 600) == req.url

    inp = _to_input("GET", req.url, {})
    res = S.verify(inp, SECRETS, NOW + timedelta(seconds=599))
    assert (res.access_key, res.mode, res.payload_hash) == (AK, "presigned", "UNSIGNED-PAYLOAD")

    with pytest.raises(E.AccessDenied, match="expired"):
        S.verify(inp, SECRETS, NOW + timedelta(seconds=601))
    bad_sig = [(k, _flip(v, 3) if k == "X-Amz-Signature" else v) for k, v in inp.query]
    with pytest.raises(E.SignatureDoesNotMatch):
        S.verify(S.SigningInput("GET", inp.raw_path, bad_sig, inp.headers), SECRETS, NOW)
    with pytest.raises(E.SignatureDoesNotMatch):
        S.verify(S.SigningInput("PUT", inp.raw_path, inp.query, inp.headers), SECRETS, NOW)
    with pytest.raises(E.SignatureDoesNotMatch):
        S.verify(S.SigningInput("GET", inp.raw_path + "x", inp.query, inp.headers), SECRETS, NOW)
    longer = [(k, "601" if k == "X-Amz-Expires" else v) for k, v in inp.query]
    with pytest.raises(E.SignatureDoesNotMatch):
        S.verify(S.SigningInput("GET", inp.raw_path, longer, inp.headers), SECRETS, NOW)


def test_presigned_unsigned_amz_header_refused():
    url = signing.presign_url("PUT", ENDPOINT + "/bucket/key", AK, SK, "us-east-1", NOW, 600)
    inp = _to_input("PUT", url, {"x-amz-copy-source": "/other/secret"})
    with pytest.raises(E.AccessDenied) as ei:
        S.verify(inp, SECRETS, NOW)
    assert ei.value.extra["HeadersNotSigned"] == "x-amz-copy-source"


def test_header_unsigned_amz_header_refused():
    req = botocore_header_sign("GET", ENDPOINT + "/bucket/k")
    inp = _to_input("GET", req.url, dict(req.headers, **{"x-amz-acl": "public-read"}))
    with pytest.raises(E.AccessDenied):
        S.verify(inp, SECRETS, NOW)


@pytest.mark.parametrize("path,query", PATHS)
@pytest.mark.parametrize("virtual", [False, True])
def test_botocore_sigv2_presigned(path, query, virtual):
    expires = int(NOW.timestamp()) + 900
    if virtual and path.startswith("/bucket"):
        url = "http://bucket.localhost:9000" + (path[len("/bucket"):] or "/")
        auth_path = path if path != "/bucket" else "/bucket/"
        bucket = "bucket"
    else:
        url, auth_path, bucket = ENDPOINT + path, None, None
    url += "?" + query if query else ""
    req = AWSRequest(method="GET", url=url, headers={})
    req.auth_path = auth_path
    with mock.patch.object(HmacV1QueryAuth, "_get_date", return_value=str(expires)):
        HmacV1QueryAuth(CREDS, expires=900).add_auth(req)
    inp = _to_input("GET", req.url, {}, virtual_host_bucket=bucket)
    res = S.verify(inp, SECRETS, NOW)
    assert (res.access_key, res.mode, res.payload_hash) == (AK, "sigv2-presigned", "UNSIGNED-PAYLOAD")

    with pytest.raises(E.AccessDenied, match="expired"):
        S.verify(inp, SECRETS, NOW + timedelta(seconds=901))
    with pytest.raises(E.SignatureDoesNotMatch):
        S.verify(S.SigningInput("DELETE", inp.raw_path, inp.query, inp.headers, bucket), SECRETS, NOW)
    with pytest.raises(E.SignatureDoesNotMatch):
        S.verify(S.SigningInput("GET", inp.raw_path + "x", inp.query, inp.headers, bucket), SECRETS, NOW)
    later = [(k, str(expires + 1) if k == "Expires" else v) for k, v in inp.query]
    with pytest.raises(E.SignatureDoesNotMatch):
        S.verify(S.SigningInput("GET", inp.raw_path, later, inp.headers, bucket), SECRETS, NOW)


def test_sigv2_signed_headers_via_query_and_headers():
    """botocore moves signed Content-Type / x-amz-* headers into the query."""
    expires = int(NOW.timestamp()) + 60
    req = AWSRequest(method="PUT", url=ENDPOINT + "/bucket/k",
                     headers={"Content-Type": "text/plain", "x-amz-acl": "private"})
    with mock.patch.object(HmacV1QueryAuth, "_get_date", return_value=str(expires)):
        HmacV1QueryAuth(CREDS, expires=60).add_auth(req)
    inp = _to_input("PUT", req.url, {})
    assert S.verify(inp, SECRETS, NOW).mode == "sigv2-presigned"
    # The client may also send them as headers.
    inp2 = _to_input("PUT", req.url, {"Content-Type": "text/plain", "x-amz-acl": "private"})
    assert S.verify(inp2, SECRETS, NOW).mode == "sigv2-presigned"
    inp3 = _to_input("PUT", req.url, {"Content-Type": "text/html"})
    with pytest.raises(E.SignatureDoesNotMatch):
        S.verify(inp3, SECRETS, NOW)


def test_sigv2_plus_left_unescaped_in_signature():
    expires = int(NOW.timestamp()) + 60
    for i in range(200):   # find a key whose signature has a '+'
        url = ENDPOINT + f"/bucket/k{i}"
        req = AWSRequest(method="GET", url=url, headers={})
        with mock.patch.object(HmacV1QueryAuth, "_get_date", return_value=str(expires)):
            HmacV1QueryAuth(CREDS, expires=60).add_auth(req)
        inp = _to_input("GET", req.url, {})
        sig = dict(inp.query)["Signature"]
        if "+" in sig:
            break
    else:
        pytest.skip("no signature with '+'")
    spaced = [(k, v.replace("+", " ") if k == "Signature" else v) for k, v in inp.query]
    assert S.verify(S.SigningInput("GET", inp.raw_path, spaced, inp.headers), SECRETS, NOW).access_key == AK


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------

def _signed_get(now=NOW, region="us-east-1", extra=None):
    headers = signing.sign_request("GET", ENDPOINT + "/bucket/key", dict(extra or {}), EMPTY, AK, SK, region, now)
    h = {k.lower(): v for k, v in headers.items()}
    h.update({k.lower(): v for k, v in (extra or {}).items()})
    h["host"] = "localhost:9000"
    return S.SigningInput("GET", "/bucket/key", [], h)


def test_skew():
    inp = _signed_get()
    assert S.verify(inp, SECRETS, NOW + timedelta(minutes=14)).access_key == AK
    assert S.verify(inp, SECRETS, NOW - timedelta(minutes=14)).access_key == AK
    for delta in (timedelta(minutes=16), -timedelta(minutes=16)):
        with pytest.raises(E.RequestTimeTooSkewed) as ei:
            S.verify(inp, SECRETS, NOW + delta)
        assert ei.value.extra["RequestTime"] == "20240301T123045Z"
        assert ei.value.extra["MaxAllowedSkewMilliseconds"] == "900000"
        assert ei.value.extra["ServerTime"] == (NOW + delta).strftime("%Y-%m-%dT%H:%M:%SZ")
    with pytest.raises(E.RequestTimeTooSkewed):
        S.verify(inp, SECRETS, NOW + timedelta(minutes=2), max_skew=timedelta(minutes=1))


def test_naive_now_is_utc():
    assert S.verify(_signed_get(), SECRETS, NOW.replace(tzinfo=None)).access_key == AK


def test_unknown_access_key():
    with pytest.raises(E.InvalidAccessKeyId) as ei:
        S.verify(_signed_get(), {"OTHER": "x"}, NOW)
    assert ei.value.extra == {"AWSAccessKeyId": AK}
    url = signing.presign_url("GET", ENDPOINT + "/b/k", AK, SK, "us-east-1", NOW, 60)
    with pytest.raises(E.InvalidAccessKeyId):
        S.verify(_to_input("GET", url, {}), {}, NOW)


def test_wrong_secret():
    with pytest.raises(E.SignatureDoesNotMatch):
        S.verify(_signed_get(), {AK: SK + "x"}, NOW)


def test_any_region_is_accepted_and_reported():
    res = S.verify(_signed_get(region="ap-southeast-2"), SECRETS, NOW)
    assert res.region == "ap-southeast-2" and res.scope.endswith("/ap-southeast-2/s3/aws4_request")


def test_missing_content_sha256():
    inp = _signed_get()
    del inp.headers["x-amz-content-sha256"]
    with pytest.raises(E.InvalidRequest, match="x-amz-content-sha256"):
        S.verify(inp, SECRETS, NOW)


def test_bad_content_sha256():
    inp = _signed_get()
    inp.headers["x-amz-content-sha256"] = "nothex"
    with pytest.raises(E.InvalidArgument):
        S.verify(inp, SECRETS, NOW)


def test_missing_or_bad_date():
    inp = _signed_get()
    del inp.headers["x-amz-date"]
    with pytest.raises(E.AccessDenied, match="Date"):
        S.verify(inp, SECRETS, NOW)
    inp.headers["x-amz-date"] = "2024-03-01T12:30:45Z"
    with pytest.raises(E.AccessDenied, match="Date"):
        S.verify(inp, SECRETS, NOW)


def test_scope_date_must_match_request_date():
    inp = _signed_get()
    inp.headers["authorization"] = inp.headers["authorization"].replace("/20240301/", "/20240302/")
    with pytest.raises(E.AuthorizationHeaderMalformed):
        S.verify(inp, SECRETS, NOW)


def test_date_header_instead_of_x_amz_date():
    # Sign with a Date header only (as botocore does when given 'Date').
    req = AWSRequest(method="GET", url=ENDPOINT + "/bucket/k",
                     headers={"Date": "Fri, 01 Mar 2024 12:30:45 GMT"})
    with _botocore_now():
        S3SigV4Auth(CREDS, "s3", "us-east-1").add_auth(req)
    assert "X-Amz-Date" not in req.headers
    res = S.verify(_to_input("GET", req.url, req.headers), SECRETS, NOW)
    assert res.amz_date == "20240301T123045Z"


def test_streaming_payload_hashes_pass_through():
    for value in (S.STREAMING_SIGNED, S.STREAMING_SIGNED_TRAILER, S.STREAMING_UNSIGNED_TRAILER,
                  S.UNSIGNED_PAYLOAD):
        hdrs = signing.sign_request("PUT", ENDPOINT + "/bucket/k", {"Content-Encoding": "aws-chunked"},
                              value, AK, SK, "us-east-1", NOW)
        inp = _to_input("PUT", ENDPOINT + "/bucket/k", dict(hdrs, **{"Content-Encoding": "aws-chunked"}))
        res = S.verify(inp, SECRETS, NOW)
        assert res.payload_hash == value
        assert hdrs["Authorization"].endswith("Signature=" + res.seed_signature)


def test_anonymous():
    res = S.verify(S.SigningInput("GET", "/bucket/key", [("versionId", "1")], {"host": "h"}), SECRETS, NOW)
    assert res == S.AuthResult(access_key=None, mode="anonymous", payload_hash="UNSIGNED-PAYLOAD")


def test_two_mechanisms_refused():
    inp = _signed_get()
    url = signing.presign_url("GET", ENDPOINT + "/bucket/key", AK, SK, "us-east-1", NOW, 60)
    both = S.SigningInput("GET", "/bucket/key", _to_input("GET", url, {}).query, inp.headers)
    with pytest.raises(E.InvalidArgument):
        S.verify(both, SECRETS, NOW)


# --------------------------------------------------------------------------
# SigV2 in the Authorization header ("Signing and Authenticating REST Requests")
# --------------------------------------------------------------------------

def _v2(method, path, headers, bucket=None, query=()):
    return S.SigningInput(method, path, list(query), {k.lower(): v for k, v in headers.items()}, bucket)


# (method, path as sent, virtual-host bucket, headers, StringToSign, signature) from the guide's
# "Authentication examples"; the Delete example signs the x-amz-date value on the Date line.
AWS_V2_EXAMPLES = [
    ("GET", "/photos/puppy.jpg", "awsexamplebucket1",
     {"Host": "awsexamplebucket1.us-west-1.s3.amazonaws.com", "Date": "Tue, 27 Mar 2007 19:36:42 +0000"},
     "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/awsexamplebucket1/photos/puppy.jpg",
     "qgk2+6Sv9/oM7G3qLEjTH1a1l1g="),
    ("GET", "/photos/puppy.jpg", "johnsmith",
     {"Host": "johnsmith.s3.amazonaws.com", "Date": "Tue, 27 Mar 2007 19:36:42 +0000"},
     "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/johnsmith/photos/puppy.jpg",
     "bWq2s1WEIj+Ydj0vQ697zp+IXMU="),
    ("PUT", "/photos/puppy.jpg", "johnsmith",
     {"Host": "johnsmith.s3.amazonaws.com", "Date": "Tue, 27 Mar 2007 21:15:45 +0000",
      "Content-Type": "image/jpeg", "Content-Length": "94328"},
     "PUT\n\nimage/jpeg\nTue, 27 Mar 2007 21:15:45 +0000\n/johnsmith/photos/puppy.jpg",
     "MyyxeRY7whkBe+bq8fHCL/2kKUg="),
]


@pytest.mark.parametrize("method,path,bucket,headers,sts,sig", AWS_V2_EXAMPLES)
def test_aws_sigv2_header_examples(method, path, bucket, headers, sts, sig):
    inp = _v2(method, path, headers, bucket)
    assert sigv2.sigv2_string_to_sign(inp, headers["Date"], query_auth=False) == sts
    assert sigv2.sigv2_signature(SK, sts) == sig
    inp.headers["authorization"] = f"AWS {AK}:{sig}"
    now = S.parse_http_date(headers["Date"]) + timedelta(minutes=3)
    res = S.verify(inp, SECRETS, now)
    assert res == S.AuthResult(access_key=AK, mode="sigv2-header", payload_hash="UNSIGNED-PAYLOAD")
    # The same signature does not verify for another key, method or bucket.
    for other in (_v2(method, path + "x", inp.headers, bucket), _v2("DELETE", path, inp.headers, bucket),
                  _v2(method, path, inp.headers, "otherbucket")):
        with pytest.raises(E.SignatureDoesNotMatch):
            S.verify(other, SECRETS, now)


def test_aws_sigv2_header_delete_example_with_x_amz_date():
    headers = {"Host": "s3.us-west-1.amazonaws.com", "Date": "Tue, 27 Mar 2007 21:20:27 +0000",
               "x-amz-date": "Tue, 27 Mar 2007 21:20:26 +0000",
               "Authorization": f"AWS {AK}:lx3byBScXR6KzyMaifNkardMwNk="}
    inp = _v2("DELETE", "/johnsmith/photos/puppy.jpg", headers)
    assert S.verify(inp, SECRETS, datetime(2007, 3, 27, 21, 25, tzinfo=timezone.utc)).mode == "sigv2-header"


def test_sigv2_header_x_amz_date_signed_as_amz_header_with_empty_date_line():
    """The "Time stamp requirement": with x-amz-date, the Date line is empty
    (a Date header, if any, is ignored) and x-amz-date signs as an amz header."""
    xdate = "Fri, 01 Mar 2024 12:30:45 GMT"
    sts = f"PUT\n\ntext/plain\n\nx-amz-date:{xdate}\nx-amz-meta-a:1,2\n/bucket/k"
    headers = {"Host": "h", "Content-Type": "text/plain", "x-amz-date": xdate, "x-amz-meta-a": "1,2",
               "Date": "Thu, 01 Jan 1970 00:00:00 GMT",
               "Authorization": f"AWS {AK}:{sigv2.sigv2_signature(SK, sts)}"}
    assert S.verify(_v2("PUT", "/bucket/k", headers), SECRETS, NOW).mode == "sigv2-header"
    # The ISO 8601 basic form of x-amz-date is taken too.
    sts = "GET\n\n\n\nx-amz-date:20240301T123045Z\n/bucket/k"
    headers = {"x-amz-date": "20240301T123045Z", "Authorization": f"AWS {AK}:{sigv2.sigv2_signature(SK, sts)}"}
    assert S.verify(_v2("GET", "/bucket/k", headers), SECRETS, NOW).access_key == AK


def _hmacv1_sign(method, url, headers=None, auth_path=None):
    req = AWSRequest(method=method, url=url, headers=dict(headers or {}), data=b"body")
    req.auth_path = auth_path
    with mock.patch.object(HmacV1Auth, "_get_date", return_value="Fri, 01 Mar 2024 12:30:45 GMT"):
        HmacV1Auth(CREDS).add_auth(req)
    return req


@pytest.mark.parametrize("path,query", PATHS)
@pytest.mark.parametrize("virtual", [False, True])
def test_botocore_sigv2_header(path, query, virtual):
    """botocore's HmacV1Auth (what boto3 uses for signature_version="s3")."""
    if virtual and path.startswith("/bucket"):
        url, auth_path, bucket = "http://bucket.localhost:9000" + (path[len("/bucket"):] or "/"), \
            (path if path != "/bucket" else "/bucket/"), "bucket"
    else:
        url, auth_path, bucket = ENDPOINT + path, None, None
    url += "?" + query if query else ""
    extra = {"Content-Type": "text/plain", "Content-MD5": "XrY7u+Ae7tCTyyK7j1rNww==",
             "x-amz-meta-k": "  v 1 ", "x-amz-acl": "private"}
    req = _hmacv1_sign("PUT", url, extra, auth_path)
    assert req.headers["Authorization"].startswith(f"AWS {AK}:")
    inp = _to_input("PUT", req.url, req.headers, virtual_host_bucket=bucket)
    res = S.verify(inp, SECRETS, NOW)
    assert (res.access_key, res.mode, res.payload_hash) == (AK, "sigv2-header", "UNSIGNED-PAYLOAD")
    assert res.region is None and res.signing_key is None
    # Every signed part matters.
    for name, value in (("content-type", "text/html"), ("content-md5", "AAAAAAAAAAAAAAAAAAAAAA=="),
                        ("x-amz-meta-k", "v 2"), ("x-amz-acl", "public-read"),
                        ("x-amz-meta-new", "1"), ("date", "Fri, 01 Mar 2024 12:30:46 GMT")):
        changed = _to_input("PUT", req.url, dict(req.headers, **{name: value}), virtual_host_bucket=bucket)
        with pytest.raises(E.SignatureDoesNotMatch):
            S.verify(changed, SECRETS, NOW)
    # Headers that SigV2 does not sign (Host, Content-Length, any other) may change.
    loose = _to_input("PUT", req.url, dict(req.headers, **{"x-other": "1", "content-length": "9"}),
                      virtual_host_bucket=bucket)
    assert S.verify(loose, SECRETS, NOW).access_key == AK


def test_sigv2_header_does_not_read_signed_values_from_the_query():
    """Only the presigned form takes Content-Type / x-amz-* from the query."""
    req = _hmacv1_sign("PUT", ENDPOINT + "/bucket/k", {"Content-Type": "text/plain", "x-amz-acl": "private"})
    headers = {k: v for k, v in req.headers.items() if k.lower() not in ("content-type", "x-amz-acl")}
    inp = _to_input("PUT", ENDPOINT + "/bucket/k?Content-Type=text%2Fplain&x-amz-acl=private", headers)
    with pytest.raises(E.SignatureDoesNotMatch):
        S.verify(inp, SECRETS, NOW)


def test_sigv2_header_wrong_secret_reports_string_to_sign():
    req = _hmacv1_sign("GET", ENDPOINT + "/bucket/k?acl")
    inp = _to_input("GET", req.url, req.headers)
    with pytest.raises(E.SignatureDoesNotMatch) as ei:
        S.verify(inp, {AK: SK + "x"}, NOW)
    x = ei.value.extra
    assert x["StringToSign"] == "GET\n\n\nFri, 01 Mar 2024 12:30:45 GMT\n/bucket/k?acl"
    assert x["StringToSignBytes"].split() == [f"{b:02x}" for b in x["StringToSign"].encode()]
    assert x["AWSAccessKeyId"] == AK and x["SignatureProvided"] == req.headers["Authorization"].split(":")[1]
    assert ei.value.status == 403 and SK not in str(x)


def test_sigv2_header_errors():
    req = _hmacv1_sign("GET", ENDPOINT + "/bucket/k")
    inp = _to_input("GET", req.url, req.headers)
    with pytest.raises(E.InvalidAccessKeyId) as ei:
        S.verify(inp, {"OTHER": SK}, NOW)
    assert ei.value.status == 403 and ei.value.extra == {"AWSAccessKeyId": AK}
    # No date, an empty one, or one that is no date: 403 AccessDenied.
    for change in ({"date": None}, {"date": ""}, {"date": "yesterday"}, {"date": None, "x-amz-date": ""},
                   {"x-amz-date": "2024-03-01T12:30:45Z"}):
        h = {k: v for k, v in inp.headers.items()}
        for k, v in change.items():
            h.pop(k, None) if v is None else h.__setitem__(k, v)
        with pytest.raises(E.AccessDenied, match="AWS authentication requires a valid Date or x-amz-date header"):
            S.verify(S.SigningInput("GET", inp.raw_path, inp.query, h), SECRETS, NOW)
    # More than 15 minutes either way: RequestTimeTooSkewed.
    assert S.verify(inp, SECRETS, NOW + timedelta(minutes=14)).access_key == AK
    for delta in (timedelta(minutes=16), -timedelta(minutes=16)):
        with pytest.raises(E.RequestTimeTooSkewed) as ei:
            S.verify(inp, SECRETS, NOW + delta)
        assert ei.value.status == 403 and ei.value.extra["RequestTime"] == "Fri, 01 Mar 2024 12:30:45 GMT"
    # Malformed header: 400 InvalidArgument.
    bad = S.SigningInput("GET", inp.raw_path, inp.query, dict(inp.headers, authorization=f"AWS {AK}"))
    with pytest.raises(E.InvalidArgument):
        S.verify(bad, SECRETS, NOW)
    # A SigV2 header together with a presigned query is two mechanisms.
    both = S.SigningInput("GET", inp.raw_path, _sigv2_presigned_input(int(NOW.timestamp()) + 60).query,
                          inp.headers)
    with pytest.raises(E.InvalidArgument, match="Only one auth mechanism"):
        S.verify(both, SECRETS, NOW)


def test_boto3_sigv2_client_requests_verify():
    client, captured = _capture_client(signature_version="s3", s3={"addressing_style": "path"})
    now = datetime.now(timezone.utc)
    client.put_object(Bucket="bkt", Key="dir/a b+c ü~.txt", Body=b"hello", ContentType="text/plain",
                      Metadata={"k": "v"})
    client.get_object_acl(Bucket="bkt", Key="k")
    client.list_objects(Bucket="bkt", Prefix="a b/")
    client.create_multipart_upload(Bucket="bkt", Key="mp")
    assert captured
    for p in captured:
        assert p.headers["Authorization"].startswith(b"AWS ")
        res = S.verify(_from_prepared(p), SECRETS, now)
        assert res.access_key == AK and res.mode == "sigv2-header"
    # Presigned bucket-level URLs: botocore signs "/bkt/" for the path "/bkt".
    url = client.generate_presigned_url("list_objects", Params={"Bucket": "bkt", "Prefix": "a"})
    assert urlsplit(url).path == "/bkt"
    assert S.verify(_to_input("GET", url, {}), SECRETS, now).mode == "sigv2-presigned"


def _presigned_query(**override):
    """The query of a fresh presigned URL with some parameters replaced (None = removed)."""
    url = signing.presign_url("GET", ENDPOINT + "/bucket/key", AK, SK, "us-east-1", NOW, 600)
    out = []
    for k, v in _to_input("GET", url, {}).query:
        if k not in override:
            out.append((k, v))
        elif override[k] is not None:
            out.append((k, override[k]))
    return out


@pytest.mark.parametrize("override", [
    {"X-Amz-Expires": "604801"},
    {"X-Amz-Expires": "-1"},
    {"X-Amz-Expires": "abc"},
    {"X-Amz-Expires": "\u0661\u0662\u0660"},     # Arabic-Indic "120": \\d and int() take it
    {"X-Amz-Expires": "\u00b2"},                    # str.isdigit() takes it
    {"X-Amz-Expires": "+60"},
    {"X-Amz-Expires": " 60"},
    {"X-Amz-Expires": ""},
    {"X-Amz-Algorithm": "AWS4-HMAC-SHA1"},
    {"X-Amz-Date": "20240301"},
    {"X-Amz-Date": "20240302T123045Z"},
    {"X-Amz-Credential": "AKIAIOSFODNN7EXAMPLE/20240301/us-east-1/s3"},
    {"X-Amz-Credential": "AKIAIOSFODNN7EXAMPLE/20240301/us-east-1/sqs/aws4_request"},
    {"X-Amz-SignedHeaders": ""},
    {"X-Amz-Signature": None},
])
def test_presigned_query_errors(override):
    q = _presigned_query(**override)
    with pytest.raises(E.AuthorizationQueryParametersError):
        S.verify(S.SigningInput("GET", "/bucket/key", q, {"host": "localhost:9000"}), SECRETS, NOW)


@pytest.mark.parametrize("raw,message", [
    ("abc", "X-Amz-Expires should be a number"),
    ("\u0661\u0662\u0660", "X-Amz-Expires should be a number"),
    ("-1", "X-Amz-Expires must be non-negative"),
    ("-99999999999999999999999", "X-Amz-Expires must be non-negative"),
    ("604801", "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires "
               "must be less than 604800 seconds"),
    ("9" * 5000, "X-Amz-Expires must be less than a week"),
])
def test_presigned_expires_messages_as_s3(raw, message):
    """S3's own answers (400 AuthorizationQueryParametersError) for a bad X-Amz-Expires."""
    q = _presigned_query(**{"X-Amz-Expires": raw})
    with pytest.raises(E.AuthorizationQueryParametersError) as ei:
        S.verify(S.SigningInput("GET", "/bucket/key", q, {"host": "localhost:9000"}), SECRETS, NOW)
    assert ei.value.message.startswith(message) and ei.value.status == 400


def test_presigned_expires_zero_is_expired():
    """X-Amz-Expires=0 is well-formed and already expired: 403 AccessDenied, as S3 answers."""
    url = signing.presign_url("GET", ENDPOINT + "/bucket/key", AK, SK, "us-east-1", NOW, 60)
    q = [(k, "0" if k == "X-Amz-Expires" else v) for k, v in _to_input("GET", url, {}).query]
    for now in (NOW, NOW + timedelta(seconds=1)):
        with pytest.raises(E.AccessDenied, match="Request has expired") as ei:
            S.verify(S.SigningInput("GET", "/bucket/key", q, {"host": "localhost:9000"}), SECRETS, now)
        assert ei.value.status == 403 and ei.value.extra["X-Amz-Expires"] == "0"


def test_presigned_expired_put():
    url = signing.presign_url("PUT", ENDPOINT + "/bucket/key", AK, SK, "us-east-1", NOW, 60)
    inp = _to_input("PUT", url, {"content-length": "5"})
    assert S.verify(inp, SECRETS, NOW + timedelta(seconds=60)).mode == "presigned"
    with pytest.raises(E.AccessDenied, match="Request has expired"):
        S.verify(inp, SECRETS, NOW + timedelta(seconds=61))


def test_parse_int_ascii_only():
    assert S.parse_int("604800") == 604800 and S.parse_int("-7") == -7 and S.parse_int("007") == 7
    for bad in ("\u00b2", "\u0661", "1\u0661", "+1", " 1", "1 ", "", "-", "1e3", "0x10"):
        assert S.parse_int(bad) is None, bad
    assert S.parse_int("1" * 5000) == 10 ** 18 and S.parse_int("-" + "1" * 5000) == -10 ** 18


def test_presigned_max_expiry_accepted_and_future_date_skew():
    url = signing.presign_url("GET", ENDPOINT + "/bucket/key", AK, SK, "us-east-1", NOW, 604800)
    inp = _to_input("GET", url, {})
    assert S.verify(inp, SECRETS, NOW + timedelta(days=6, hours=23)).access_key == AK
    with pytest.raises(E.RequestTimeTooSkewed):
        S.verify(inp, SECRETS, NOW - timedelta(minutes=16))
    assert S.verify(inp, SECRETS, NOW - timedelta(minutes=14)).access_key == AK


def test_presigned_with_content_sha256_param():
    base = ENDPOINT + "/bucket/key?X-Amz-Content-Sha256=" + "a" * 64
    url = signing.presign_url("PUT", base, AK, SK, "us-east-1", NOW, 60)
    res = S.verify(_to_input("PUT", url, {}), SECRETS, NOW)
    # The hash that was signed is what the body has to match.
    assert res.payload_hash == "a" * 64


def test_sigv2_errors():
    for raw in ("abc", "-5", "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0660", "+1709296245"):
        q = [("AWSAccessKeyId", AK), ("Expires", raw), ("Signature", "x")]
        with pytest.raises(E.AccessDenied, match="Invalid date"):
            S.verify(S.SigningInput("GET", "/b/k", q, {}), SECRETS, NOW)
    with pytest.raises(E.AccessDenied):
        S.verify(S.SigningInput("GET", "/b/k", [("AWSAccessKeyId", AK)], {}), SECRETS, NOW)
    q = [("AWSAccessKeyId", "NOPE"), ("Expires", str(int(NOW.timestamp()) + 5)), ("Signature", "x")]
    with pytest.raises(E.InvalidAccessKeyId):
        S.verify(S.SigningInput("GET", "/b/k", q, {}), SECRETS, NOW)


def _sigv2_presigned_input(expires: int, method="GET") -> S.SigningInput:
    req = AWSRequest(method=method, url=ENDPOINT + "/bucket/k", headers={})
    with mock.patch.object(HmacV1QueryAuth, "_get_date", return_value=str(expires)):
        HmacV1QueryAuth(CREDS, expires=1).add_auth(req)
    return _to_input(method, req.url, {})


def test_sigv2_presigned_expires_capped_at_a_week():
    now_ts = int(NOW.timestamp())
    week = S.MAX_PRESIGN_EXPIRES
    # A week ahead (plus the clock skew allowed to the signer) is fine ...
    for expires in (now_ts + week, now_ts + week + 15 * 60):
        assert S.verify(_sigv2_presigned_input(expires), SECRETS, NOW).mode == "sigv2-presigned"
    # ... beyond it, 403 AccessDenied, before the signature is even looked at.
    for expires in (now_ts + week + 15 * 60 + 1, now_ts + 8 * 86400, 2 ** 31, 10 ** 30):
        with pytest.raises(E.AccessDenied, match="7 days") as ei:
            S.verify(_sigv2_presigned_input(expires, "PUT"), SECRETS, NOW)
        assert ei.value.status == 403
    q = [("AWSAccessKeyId", AK), ("Expires", str(now_ts + 8 * 86400)), ("Signature", "junk")]
    with pytest.raises(E.AccessDenied, match="7 days"):
        S.verify(S.SigningInput("GET", "/b/k", q, {}), SECRETS, NOW)


# --------------------------------------------------------------------------
# Real boto3 clients (requests captured before they are sent)
# --------------------------------------------------------------------------

class _Raw:
    def stream(self, **kw):
        yield b""

    def read(self, *a, **k):
        return b""


def _capture_client(**config):
    client = boto3.client("s3", endpoint_url="https://s3.example.test", region_name="us-east-1",
                          aws_access_key_id=AK, aws_secret_access_key=SK,
                          config=Config(retries={"max_attempts": 1}, **config))
    captured = []

    def before_send(request, **kw):
        captured.append(request)
        return AWSResponse(request.url, 200, {}, _Raw())

    client.meta.events.register("before-send.s3.*", before_send)
    return client, captured


def _from_prepared(p, virtual_host_bucket=None) -> S.SigningInput:
    return _to_input(p.method, p.url, p.headers, virtual_host_bucket=virtual_host_bucket)


@pytest.mark.parametrize("style", ["path", "virtual"])
def test_boto3_client_requests_verify(style):
    client, captured = _capture_client(s3={"addressing_style": style})
    now = datetime.now(timezone.utc)
    client.put_object(Bucket="bkt", Key="dir/a b+c ü~.txt", Body=io.BytesIO(b"hello" * 100))
    client.put_object(Bucket="bkt", Key="small", Body=b"x")
    client.list_objects_v2(Bucket="bkt", Prefix="a b/", Delimiter="/")
    client.delete_objects(Bucket="bkt", Delete={"Objects": [{"Key": "a"}, {"Key": "b"}]})
    client.create_multipart_upload(Bucket="bkt", Key="mp")
    assert len(captured) == 5
    for p in captured:
        res = S.verify(_from_prepared(p), SECRETS, now)
        assert res.access_key == AK and res.mode == "header"


@pytest.mark.parametrize("style", ["path", "virtual"])
def test_boto3_generate_presigned_url_default_is_sigv2(style):
    client, _ = _capture_client(s3={"addressing_style": style})
    url = client.generate_presigned_url("get_object", Params={"Bucket": "bkt", "Key": "a b+c/ü~"},
                                        ExpiresIn=300)
    assert "AWSAccessKeyId=" in url
    bucket = "bkt" if style == "virtual" else None
    res = S.verify(_to_input("GET", url, {}, virtual_host_bucket=bucket), SECRETS, datetime.now(timezone.utc))
    assert res.mode == "sigv2-presigned" and res.access_key == AK
    url = client.generate_presigned_url("put_object", Params={"Bucket": "bkt", "Key": "k", "ContentType": "a/b"})
    res = S.verify(_to_input("PUT", url, {"Content-Type": "a/b"}, virtual_host_bucket=bucket), SECRETS,
                   datetime.now(timezone.utc))
    assert res.mode == "sigv2-presigned"


def test_boto3_generate_presigned_url_sigv4():
    client, _ = _capture_client(signature_version="s3v4", s3={"addressing_style": "path"})
    url = client.generate_presigned_url("get_object", Params={"Bucket": "bkt", "Key": "a b+c/ü~",
                                                              "ResponseContentType": "text/plain"})
    res = S.verify(_to_input("GET", url, {}), SECRETS, datetime.now(timezone.utc))
    assert res.mode == "presigned" and res.access_key == AK
    url = client.generate_presigned_url("upload_part", Params={"Bucket": "bkt", "Key": "k",
                                                               "UploadId": "u/+=", "PartNumber": 2})
    res = S.verify(_to_input("PUT", url, {}), SECRETS, datetime.now(timezone.utc))
    assert res.mode == "presigned"


def _sign_without_host(url: str) -> dict[str, str]:
    """A header signature over x-amz-date and x-amz-content-sha256 only: valid,
    but it binds the request to no host (so to no bucket, virtual-hosted)."""
    amz_date, payload = NOW.strftime(S.AMZ_DATE_FORMAT), S.UNSIGNED_PAYLOAD
    hdrs = {"x-amz-content-sha256": payload, "x-amz-date": amz_date}
    names = sorted(hdrs)
    parts = urlsplit(url)
    creq = S.canonical_request("GET", S.canonical_uri(parts.path), S.canonical_query([], exclude=()),
                               S.canonical_headers(hdrs, names), names, payload)
    sc = S.scope(amz_date[:8], "us-east-1")
    sig = S.signature(S.signing_key(SK, amz_date[:8], "us-east-1"), S.string_to_sign(amz_date, sc, creq))
    return dict(hdrs, authorization=f"{S.ALGORITHM} Credential={AK}/{sc}, SignedHeaders={';'.join(names)}, "
                                    f"Signature={sig}")


def test_host_must_be_signed():
    """AWS: 403 AccessDenied, HeadersNotSigned=host (else one signature replays
    against any bucket by its virtual host)."""
    url = "http://victim.localhost:9000/key"
    inp = _to_input("GET", url, _sign_without_host(url), virtual_host_bucket="victim")
    with pytest.raises(E.AccessDenied) as ei:
        S.verify(inp, SECRETS, NOW)
    assert ei.value.extra["HeadersNotSigned"] == "host"
    # The signature itself is right: only the unsigned Host is refused.
    no_host = {k: v for k, v in inp.headers.items() if k != "host"}
    assert S.verify(S.SigningInput("GET", inp.raw_path, inp.query, no_host, "victim"), SECRETS, NOW).access_key == AK


def test_amz_dates_are_parsed_by_position_and_checked():
    from minis3.core.sigv4 import parse_amz_date
    assert parse_amz_date("20261206T183000Z").isoformat() == "2026-12-06T18:30:00+00:00"
    for bad in ("20261306T183000Z", "20260229T000000Z", "20261206T183060Z", "20261206T183000z",
                "2026120\uff16T183000Z", "2026120\u0666T183000Z", "20261206183000Z", ""):
        assert parse_amz_date(bad) is None, bad
