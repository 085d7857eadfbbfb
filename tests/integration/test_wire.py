"""The HTTP wire, byte by byte: aws-chunked uploads built by hand (every
x-amz-content-sha256 mode, trailers, trailer signatures), the AWS JS SDK v3's
aws-chunked-inside-Transfer-Encoding form with Expect: 100-continue, plain
payload hashes, presigned URLs driven by curl, authentication errors,
virtual-hosted requests, request ids on every response, and keys that look
like paths.

Requests are sent on raw sockets (the request line and headers exactly as
written), responses parsed by http.client. Signatures are computed with the
tests' own HMAC chain following the AWS documentation; the seed signature is
computed by botocore's S3SigV4Auth *and* by minis3.core.sigv4 and the two
must agree, so the test does not only trust the server's own code. The
plumbing for both is in wire.py.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import os
import re
import socket
import subprocess
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from minis3.core import signing, sigv4

from .cluster import ACCESS_KEY, SECRET_KEY
from .conftest import make_client
from .wire import (
    absent, assert_error, aws_chunked, BOTO_FIELD, build_chunked, checksum_b64, CHUNK, chunked_put,
    connect, content, derive_key, EMPTY_SHA256, err, flip_signature, head_bytes, KiB, MiB, netloc, port,
    read_response, recv_until, REGION, Resp, seed_sign, send, sign, SIGNED, signed, SIGNED_TRAILER, Signer,
    UNSIGNED, UNSIGNED_TRAILER, utcnow,
)

BIG = int(2.5 * MiB) + 777      # erasure-coded; 40 full 64 KiB chunks + a smaller one + final
SMALL = 1000                    # inline (threshold 4096); one short chunk + final


def test_step_functions_match_aws_documented_example():
    """The worked example of "Signature Calculations ... Transferring Payload
    in Multiple Chunks" (S3 API reference): seed and chunk signatures, computed
    by minis3.core.sigv4 and by this file's own chain."""
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    now = datetime(2013, 5, 24, tzinfo=timezone.utc)
    h = signing.sign_request("PUT", "https://s3.amazonaws.com/examplebucket/chunkObject.txt",
                           {"Content-Encoding": "aws-chunked", "Content-Length": "66824",
                            "x-amz-decoded-content-length": "66560",
                            "x-amz-storage-class": "REDUCED_REDUNDANCY"},
                           SIGNED, "AKIAIOSFODNN7EXAMPLE", secret, REGION, now)
    seed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    assert h["Authorization"].endswith("Signature=" + seed)
    scope = "20130524/us-east-1/s3/aws4_request"
    s = Signer(derive_key(secret, "20130524"), "20130524T000000Z", scope, seed)
    ours = [s.chunk(b"a" * 65536), s.chunk(b"a" * 1024), s.chunk(b"")]
    assert ours == ["ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
                    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
                    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"]
    assert sigv4.signing_key(secret, "20130524", REGION) == derive_key(secret, "20130524")
    prev = seed
    for d, want in zip((b"a" * 65536, b"a" * 1024, b""), ours):
        prev = sigv4.signature(sigv4.signing_key(secret, "20130524", REGION),
                               sigv4.chunk_string_to_sign("20130524T000000Z", scope, prev,
                                                          hashlib.sha256(d).hexdigest()))
        assert prev == want


# ----------------------------------------------------------------------------- 1. aws-chunked

CHUNKED_CASES = [
    (SIGNED, None),
    (UNSIGNED_TRAILER, "crc32"), (UNSIGNED_TRAILER, "crc32c"), (UNSIGNED_TRAILER, "sha256"),
    (SIGNED_TRAILER, "crc32"), (SIGNED_TRAILER, "crc32c"), (SIGNED_TRAILER, "sha256"),
]
_SHORT = {SIGNED: "signed", UNSIGNED_TRAILER: "unsigned-trailer", SIGNED_TRAILER: "signed-trailer"}


@pytest.mark.parametrize("size", [BIG, SMALL], ids=["big", "small"])
@pytest.mark.parametrize("mode,alg", CHUNKED_CASES, ids=[f"{_SHORT[m]}-{a or 'none'}" for m, a in CHUNKED_CASES])
def test_aws_chunked_put(cluster, s3, bucket, mode, alg, size):
    data = os.urandom(size)
    r = chunked_put(cluster, bucket, "obj", data, mode, alg)
    assert r.status == 200, r.body
    assert r.headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert r.headers["x-amz-request-id"]
    got = s3.get_object(Bucket=bucket, Key="obj")
    assert got["Body"].read() == data
    assert got["ContentLength"] == size
    assert "ContentEncoding" not in got or got["ContentEncoding"] != "aws-chunked"
    head = s3.head_object(Bucket=bucket, Key="obj", ChecksumMode="ENABLED")
    # With no checksum from the client S3 computes CRC64NVME itself.
    stored_alg = alg or "crc64nvme"
    assert head[BOTO_FIELD[stored_alg]] == checksum_b64(stored_alg, data)
    if alg:
        assert r.headers[f"x-amz-checksum-{alg}"] == checksum_b64(alg, data)


def _bad_put_stores_nothing(cluster, s3, bucket, data, send_bad, code, status):
    """``send_bad(key)`` must be refused with (code, status) both for a new
    key (which stays absent) and an existing one (which keeps its content)."""
    old = os.urandom(5000)
    s3.put_object(Bucket=bucket, Key="old", Body=old)
    for key in ("new", "old"):
        r = send_bad(key)
        assert_error(r, code, status)
    assert absent(s3, bucket, "new")
    assert content(s3, bucket, "old") == old


def test_chunked_wrong_middle_chunk_signature(cluster, s3, bucket):
    data = os.urandom(BIG)
    _bad_put_stores_nothing(cluster, s3, bucket, data, lambda k: chunked_put(
        cluster, bucket, k, data, SIGNED, corrupt_chunk=20), "SignatureDoesNotMatch", 403)


def test_chunked_wrong_final_chunk_signature(cluster, s3, bucket):
    data = os.urandom(BIG)
    n_chunks = -(-BIG // CHUNK)
    _bad_put_stores_nothing(cluster, s3, bucket, data, lambda k: chunked_put(
        cluster, bucket, k, data, SIGNED, corrupt_chunk=n_chunks), "SignatureDoesNotMatch", 403)


@pytest.mark.parametrize("mode", [UNSIGNED_TRAILER, SIGNED_TRAILER], ids=["unsigned", "signed"])
@pytest.mark.parametrize("size,alg", [(BIG, "crc32"), (SMALL, "crc32"), (SMALL, "crc32c"), (BIG, "sha256")],
                         ids=["big-crc32", "small-crc32", "small-crc32c", "big-sha256"])
def test_chunked_wrong_trailing_checksum(cluster, s3, bucket, mode, size, alg):
    data = os.urandom(size)
    wrong = checksum_b64(alg, data + b"x")
    _bad_put_stores_nothing(cluster, s3, bucket, data, lambda k: chunked_put(
        cluster, bucket, k, data, mode, alg, checksum=wrong), "BadDigest", 400)


def test_chunked_wrong_trailer_signature(cluster, s3, bucket):
    data = os.urandom(BIG)
    _bad_put_stores_nothing(cluster, s3, bucket, data, lambda k: chunked_put(
        cluster, bucket, k, data, SIGNED_TRAILER, "crc32c", corrupt_trailer_sig=True),
        "SignatureDoesNotMatch", 403)


@pytest.mark.parametrize("mode", [SIGNED, UNSIGNED_TRAILER, SIGNED_TRAILER],
                         ids=["signed", "unsigned-trailer", "signed-trailer"])
def test_chunked_body_ends_before_final_chunk(cluster, s3, bucket, mode):
    """A shorter body whose Content-Length matches what is sent: the stream is
    well-formed HTTP, but the aws-chunked framing never reaches its end."""
    data = os.urandom(BIG)
    _bad_put_stores_nothing(cluster, s3, bucket, data, lambda k: chunked_put(
        cluster, bucket, k, data, mode, "crc32", stop_before_final=True), "IncompleteBody", 400)


def test_chunked_client_closes_write_side_mid_body(cluster, s3, bucket):
    """The client announces the full Content-Length, sends half of it and
    shuts its write side: either an IncompleteBody answer or a closed
    connection, and in any case nothing stored."""
    data = os.urandom(BIG)
    old = os.urandom(5000)
    s3.put_object(Bucket=bucket, Key="old", Body=old)
    for key in ("new", "old"):
        path = f"/{bucket}/{key}"
        trailers = [("x-amz-checksum-crc32", checksum_b64("crc32", data))]
        body = aws_chunked(data, signer=None, trailers=trailers)
        h = sign("PUT", netloc(cluster), path, {
            "Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data)),
            "x-amz-trailer": "x-amz-checksum-crc32", "Content-Length": str(len(body))}, UNSIGNED_TRAILER)
        with connect(cluster, timeout=15) as sock:
            sock.sendall(head_bytes("PUT", path, h) + body[:len(body) // 2])
            sock.shutdown(socket.SHUT_WR)
            try:
                r = read_response(sock, "PUT")
            except (http.client.RemoteDisconnected, ConnectionResetError, http.client.BadStatusLine):
                r = None
        if r is not None:
            assert_error(r, "IncompleteBody", 400)
    time.sleep(0.5)     # a wrongly committing server would have done so by now
    assert absent(s3, bucket, "new")
    assert content(s3, bucket, "old") == old


@pytest.mark.parametrize("delta", [+1, -1], ids=["declared-longer", "declared-shorter"])
@pytest.mark.parametrize("mode", [SIGNED, UNSIGNED_TRAILER], ids=["signed", "unsigned-trailer"])
def test_chunked_decoded_length_mismatch(cluster, s3, bucket, mode, delta):
    """The decoded payload is one byte longer or shorter than declared."""
    data = os.urandom(BIG)
    _bad_put_stores_nothing(cluster, s3, bucket, data, lambda k: chunked_put(
        cluster, bucket, k, data, mode, "crc32", decoded_length=len(data) + delta), "IncompleteBody", 400)


def test_chunked_with_content_md5(cluster, s3, bucket):
    """Content-MD5 (of the decoded payload) next to an aws-chunked body."""
    data = os.urandom(BIG)
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    r = chunked_put(cluster, bucket, "ok", data, SIGNED, extra_headers={"Content-MD5": md5})
    assert r.status == 200, r.body
    assert content(s3, bucket, "ok") == data
    wrong = base64.b64encode(hashlib.md5(data + b"x").digest()).decode()
    _bad_put_stores_nothing(cluster, s3, bucket, data, lambda k: chunked_put(
        cluster, bucket, k, data, SIGNED_TRAILER, "crc32", extra_headers={"Content-MD5": wrong}),
        "BadDigest", 400)


def test_chunked_wrong_seed_signature(cluster, s3, bucket):
    data = os.urandom(SMALL)
    path = f"/{bucket}/k"
    s = Signer(derive_key(SECRET_KEY, "20000101"), "x", "y", "0" * 64)
    body = aws_chunked(data, signer=s, trailers=None)
    h = sign("PUT", netloc(cluster), path, {"Content-Encoding": "aws-chunked", "Content-Length": str(len(body)),
                                            "x-amz-decoded-content-length": str(len(data))}, SIGNED)
    h["Authorization"] = flip_signature(h["Authorization"])
    x = assert_error(send(cluster, "PUT", path, h, body), "SignatureDoesNotMatch", 403)
    assert "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" in x["CanonicalRequest"]
    assert absent(s3, bucket, "k")


def _crc(data: bytes) -> str:
    return checksum_b64("crc32", data)


_D = b"0123456789abcdef" * 4           # 64 bytes
MALFORMED = {
    # name: (x-amz-trailer, body)
    "bad-size": ("x-amz-checksum-crc32", b"zz\r\n" + _D + b"\r\n0\r\nx-amz-checksum-crc32:" + _crc(_D).encode()
                 + b"\r\n\r\n"),
    "data-longer-than-size": ("x-amz-checksum-crc32", b"20\r\n" + _D + b"\r\n0\r\nx-amz-checksum-crc32:"
                              + _crc(_D).encode() + b"\r\n\r\n"),
    "trailer-missing": ("x-amz-checksum-crc32", b"40\r\n" + _D + b"\r\n0\r\n\r\n"),
    "other-trailer-than-announced": ("x-amz-checksum-crc32", b"40\r\n" + _D + b"\r\n0\r\nx-amz-checksum-crc32c:"
                                     + checksum_b64("crc32c", _D).encode() + b"\r\n\r\n"),
    "trailer-not-base64": ("x-amz-checksum-crc32", b"40\r\n" + _D + b"\r\n0\r\nx-amz-checksum-crc32:%%%%\r\n\r\n"),
    "trailer-wrong-length": ("x-amz-checksum-crc32", b"40\r\n" + _D + b"\r\n0\r\nx-amz-checksum-crc32:"
                             + checksum_b64("sha256", _D).encode() + b"\r\n\r\n"),
    "unsupported-trailer": ("x-amz-checksum-md5", b"40\r\n" + _D + b"\r\n0\r\nx-amz-checksum-md5:"
                            + base64.b64encode(hashlib.md5(_D).digest()) + b"\r\n\r\n"),
    "data-after-end": ("x-amz-checksum-crc32", b"40\r\n" + _D + b"\r\n0\r\nx-amz-checksum-crc32:"
                       + _crc(_D).encode() + b"\r\n\r\nGARBAGE"),
    "huge-chunk-size": ("x-amz-checksum-crc32", b"ffffffffffffffff\r\n" + _D),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_aws_chunked_is_a_4xx(cluster, s3, bucket, name):
    """Broken framing is the client's fault: a 4xx S3 error, never a 500, and
    nothing stored."""
    trailer, body = MALFORMED[name]
    path = f"/{bucket}/m"
    h = sign("PUT", netloc(cluster), path, {
        "Content-Encoding": "aws-chunked", "Content-Length": str(len(body)),
        "x-amz-decoded-content-length": str(len(_D)), "x-amz-trailer": trailer}, UNSIGNED_TRAILER)
    r = send(cluster, "PUT", path, h, body)
    assert 400 <= r.status < 500, (r.status, r.body)
    assert_error(r, r.code, r.status)
    assert r.code in ("InvalidRequest", "InvalidArgument", "IncompleteBody", "BadDigest",
                      "MalformedTrailerError", "EntityTooLarge"), r.body
    assert absent(s3, bucket, "m")


def test_connection_reusable_after_rejected_upload(cluster, s3, bucket):
    """SDKs pool connections: after an upload refused mid-body or at its end,
    the next request on the same connection must be parsed as a request (the
    rest of the refused body drained), or the server must close."""
    s3.put_object(Bucket=bucket, Key="ok", Body=b"fine")
    data = os.urandom(BIG)
    bad_sha = hashlib.sha256(b"nope").hexdigest()
    cases = [
        (build_chunked(cluster, bucket, "x", data, SIGNED, corrupt_chunk=3), "SignatureDoesNotMatch"),
        (build_chunked(cluster, bucket, "x", data, UNSIGNED_TRAILER, checksum=checksum_b64("crc32", b"z")),
         "BadDigest"),
        ((f"/{bucket}/x", sign("PUT", netloc(cluster), f"/{bucket}/x", {"Content-Length": str(BIG)}, bad_sha), data),
         "XAmzContentSHA256Mismatch"),
    ]
    for (path, h, body), code in cases:
        with connect(cluster) as sock:
            sock.sendall(head_bytes("PUT", path, h) + body)
            r = read_response(sock, "PUT")
            assert r.code == code
            if r.headers.get("connection", "").lower() == "close":
                continue
            g = sign("GET", netloc(cluster), f"/{bucket}/ok", {}, EMPTY_SHA256)
            sock.sendall(head_bytes("GET", f"/{bucket}/ok", g))
            r2 = read_response(sock, "GET")
            assert (r2.status, r2.body) == (200, b"fine")
    assert absent(s3, bucket, "x")


# ----------------------------------------------------------------------------- 2. JS SDK v3 style

def _expect_100(sock: socket.socket) -> bytes:
    """Read the interim response; return it (must be 100 Continue)."""
    buf = recv_until(sock, b"\r\n\r\n")
    assert buf.startswith(b"HTTP/1.1 100 Continue\r\n"), buf
    assert buf.endswith(b"\r\n\r\n"), buf           # nothing else before the body is sent
    return buf


def _http_chunked(body: bytes, size: int) -> bytes:
    out = bytearray()
    for i in range(0, len(body), size):
        piece = body[i:i + size]
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    return bytes(out + b"0\r\n\r\n")


@pytest.mark.parametrize("declared", [True, False], ids=["with-decoded-length", "no-decoded-length"])
@pytest.mark.parametrize("size", [BIG, SMALL], ids=["big", "small"])
def test_js_sdk_v3_aws_chunked_in_transfer_encoding_chunked(cluster, s3, bucket, size, declared):
    data = os.urandom(size)
    path = f"/{bucket}/js"
    crc = checksum_b64("crc32", data)
    # The SDK's getAwsChunkedEncodingStream: unsigned chunks, then the trailer.
    body = aws_chunked(data, signer=None, trailers=[("x-amz-checksum-crc32", crc)], chunk=100_000)
    headers = {"Content-Encoding": "aws-chunked", "x-amz-trailer": "x-amz-checksum-crc32",
               "x-amz-sdk-checksum-algorithm": "CRC32"}
    if declared:
        headers["x-amz-decoded-content-length"] = str(size)
    h = sign("PUT", netloc(cluster), path, headers, UNSIGNED_TRAILER)
    h.update({"Transfer-Encoding": "chunked", "Expect": "100-continue"})
    assert "Content-Length" not in h
    with connect(cluster) as sock:
        sock.sendall(head_bytes("PUT", path, h))
        _expect_100(sock)
        # HTTP chunks not aligned with the aws-chunked ones.
        sock.sendall(_http_chunked(body, 65_000))
        r = read_response(sock, "PUT")
    assert r.status == 200, r.body
    assert r.headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert content(s3, bucket, "js") == data
    assert s3.head_object(Bucket=bucket, Key="js", ChecksumMode="ENABLED")["ChecksumCRC32"] == crc


# ----------------------------------------------------------------------------- 3. plain payload hashes

def test_plain_put_payload_hash_mismatch(cluster, s3, bucket):
    data = os.urandom(BIG)
    wrong = hashlib.sha256(data + b"!").hexdigest()

    def bad(key):
        r = signed(cluster, "PUT", f"/{bucket}/{key}", data, payload_hash=wrong)
        x = assert_error(r, "XAmzContentSHA256Mismatch", 400)
        assert x["ClientComputedContentSHA256"] == wrong
        assert x["S3ComputedContentSHA256"] == hashlib.sha256(data).hexdigest()
        return r
    _bad_put_stores_nothing(cluster, s3, bucket, data, bad, "XAmzContentSHA256Mismatch", 400)


@pytest.mark.parametrize("size", [BIG, SMALL], ids=["big", "small"])
def test_plain_put_payload_hash_modes(cluster, s3, bucket, size):
    data = os.urandom(size)
    r = signed(cluster, "PUT", f"/{bucket}/unsigned", data, payload_hash=UNSIGNED)
    assert r.status == 200, r.body
    assert content(s3, bucket, "unsigned") == data
    r = signed(cluster, "PUT", f"/{bucket}/hashed", data)
    assert r.status == 200, r.body
    assert content(s3, bucket, "hashed") == data


def test_put_without_content_length_or_transfer_encoding(cluster, s3, bucket):
    path = f"/{bucket}/nolen"
    h = sign("PUT", netloc(cluster), path, {}, UNSIGNED)
    assert "Content-Length" not in h and "Transfer-Encoding" not in h
    assert_error(send(cluster, "PUT", path, h), "MissingContentLength", 411)
    assert absent(s3, bucket, "nolen")


# ----------------------------------------------------------------------------- 4. presigned URLs + curl

def curl(*args: str, tmp_path, data: bytes | None = None) -> tuple[int, bytes, dict[str, str]]:
    out, hdr = tmp_path / "curl.out", tmp_path / "curl.hdr"
    for p in (out, hdr):
        p.unlink(missing_ok=True)
    cmd = ["curl", "-s", "-S", "-o", str(out), "-D", str(hdr), "-w", "%{http_code}"]
    if data is not None:
        src = tmp_path / "curl.in"
        src.write_bytes(data)
        cmd += ["--data-binary", f"@{src}"]
    p = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    headers = {}
    # Last response block only (skip any 100 Continue).
    block = hdr.read_bytes().decode("latin-1").strip().split("\r\n\r\n")[-1]
    for line in block.split("\r\n")[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(p.stdout), out.read_bytes() if out.exists() else b"", headers


def curl_error(status_body_headers, code: str, status: int) -> dict[str, str]:
    got_status, body, headers = status_body_headers
    assert got_status == status, body
    return assert_error(Resp(got_status, headers, body), code, status)


@pytest.fixture(scope="module")
def s3v4(cluster):
    return make_client(cluster.endpoint, signature_version="s3v4")


@pytest.fixture(params=["sigv2", "sigv4"])
def presigner(request, s3, s3v4):
    client = s3 if request.param == "sigv2" else s3v4

    def presign(method, bucket, key, expires=300, **params):
        url = client.generate_presigned_url(method, Params={"Bucket": bucket, "Key": key, **params},
                                            ExpiresIn=expires)
        if request.param == "sigv2":
            assert "AWSAccessKeyId=" in url and "X-Amz-Algorithm" not in url, url
        else:
            assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url and "AWSAccessKeyId" not in url, url
        return url
    presign.kind = request.param
    return presign


def test_presigned_get_and_put_with_curl(s3, bucket, presigner, tmp_path):
    data = os.urandom(200 * KiB)
    s3.put_object(Bucket=bucket, Key="g", Body=data)
    status, body, headers = curl(presigner("get_object", bucket, "g"), tmp_path=tmp_path)
    assert status == 200 and body == data
    assert headers["x-amz-request-id"]

    # curl --data-binary sends Content-Type: application/x-www-form-urlencoded;
    # the URL was presigned without one, so drop it (SigV2 signs Content-Type).
    put_data = os.urandom(300 * KiB)
    url = presigner("put_object", bucket, "p")
    status, body, _ = curl("-X", "PUT", "-H", "Content-Type:", url, tmp_path=tmp_path, data=put_data)
    assert status == 200, body
    assert content(s3, bucket, "p") == put_data

    # Presigned with a Content-Type: the upload must send that one.
    url = presigner("put_object", bucket, "typed", ContentType="text/plain")
    status, body, _ = curl("-X", "PUT", "-H", "Content-Type: text/plain", url, tmp_path=tmp_path,
                           data=b"hello")
    assert status == 200, body
    got = s3.get_object(Bucket=bucket, Key="typed")
    assert got["Body"].read() == b"hello"
    if presigner.kind == "sigv2":
        # SigV2 signs the Content-Type: another one does not verify.
        r = curl("-X", "PUT", "-H", "Content-Type: text/html", url, tmp_path=tmp_path, data=b"evil")
        curl_error(r, "SignatureDoesNotMatch", 403)
        assert content(s3, bucket, "typed") == b"hello"


def test_presigned_get_response_content_disposition(s3, bucket, presigner, tmp_path):
    s3.put_object(Bucket=bucket, Key="d", Body=b"dispo", ContentType="text/plain")
    cd = 'attachment; filename="report 1.txt"'
    url = presigner("get_object", bucket, "d", ResponseContentDisposition=cd,
                    ResponseContentType="application/x-test")
    status, body, headers = curl(url, tmp_path=tmp_path)
    assert status == 200 and body == b"dispo"
    assert headers["content-disposition"] == cd
    assert headers["content-type"] == "application/x-test"


def test_presigned_expired_and_tampered(s3, s3v4, bucket, tmp_path):
    s3.put_object(Bucket=bucket, Key="e", Body=b"secret-ish")
    short = [c.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "e"}, ExpiresIn=1)
             for c in (s3, s3v4)]
    # Tampered signatures (checked while the expiring ones age).
    v2 = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "e"}, ExpiresIn=300)
    parts = urlsplit(v2)
    q = dict(parse_qsl(parts.query))
    sig = base64.b64decode(q["Signature"])
    q["Signature"] = base64.b64encode(bytes([sig[0] ^ 1]) + sig[1:]).decode()
    bad_v2 = urlunsplit(parts._replace(query=urlencode(q)))
    v4 = s3v4.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "e"}, ExpiresIn=300)
    bad_v4 = re.sub(r"X-Amz-Signature=([0-9a-f]+)", lambda m: "X-Amz-Signature=" + flip_signature(m.group(1)), v4)
    assert bad_v4 != v4
    for url in (bad_v2, bad_v4):
        x = curl_error(curl(url, tmp_path=tmp_path), "SignatureDoesNotMatch", 403)
        assert x.get("StringToSign")
        assert SECRET_KEY not in str(x)
    # A different key under the same signature.
    curl_error(curl(v4.replace("/e?", "/other?"), tmp_path=tmp_path), "SignatureDoesNotMatch", 403)

    time.sleep(2.1)
    for url in short:
        x = curl_error(curl(url, tmp_path=tmp_path), "AccessDenied", 403)
        assert "expired" in x["Message"].lower()


# ----------------------------------------------------------------------------- 5. auth errors

def test_unknown_access_key(cluster, bucket):
    c = boto3.client("s3", endpoint_url=cluster.endpoint, region_name=REGION,
                     aws_access_key_id="NOSUCHKEY", aws_secret_access_key=SECRET_KEY,
                     config=Config(retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as ei:
        c.list_objects_v2(Bucket=bucket)
    assert err(ei) == ("InvalidAccessKeyId", 403)
    r = signed(cluster, "GET", f"/{bucket}?list-type=2", access_key="NOSUCHKEY")
    x = assert_error(r, "InvalidAccessKeyId", 403)
    assert x.get("AWSAccessKeyId") == "NOSUCHKEY"


def test_wrong_secret(cluster, bucket):
    c = boto3.client("s3", endpoint_url=cluster.endpoint, region_name=REGION,
                     aws_access_key_id=ACCESS_KEY, aws_secret_access_key="not-the-secret",
                     config=Config(retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as ei:
        c.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert err(ei) == ("SignatureDoesNotMatch", 403)
    r = signed(cluster, "PUT", f"/{bucket}/k", b"data", secret="WRONG-SECRET-abc")
    x = assert_error(r, "SignatureDoesNotMatch", 403)
    assert x["StringToSign"].startswith("AWS4-HMAC-SHA256\n")
    assert x["CanonicalRequest"].startswith(f"PUT\n/{bucket}/k\n")
    assert hashlib.sha256(x["CanonicalRequest"].encode()).hexdigest() == x["StringToSign"].split("\n")[-1]
    assert x.get("SignatureProvided") and x.get("AWSAccessKeyId") == ACCESS_KEY
    assert SECRET_KEY.encode() not in r.body and b"WRONG-SECRET-abc" not in r.body


def test_request_time_too_skewed(cluster, bucket):
    r = signed(cluster, "GET", f"/{bucket}?list-type=2", now=utcnow() - timedelta(minutes=20))
    x = assert_error(r, "RequestTimeTooSkewed", 403)
    assert x.get("RequestTime") and x.get("ServerTime")
    assert x.get("MaxAllowedSkewMilliseconds") == "900000"
    # Within the 15 minutes it is fine.
    assert signed(cluster, "GET", f"/{bucket}?list-type=2", now=utcnow() - timedelta(minutes=10)).status == 200


def test_anonymous_request(cluster, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    host = netloc(cluster)
    for method, path in (("GET", f"/{bucket}/k"), ("GET", "/"), ("GET", f"/{bucket}?list-type=2")):
        assert_error(send(cluster, method, path, {"Host": host}), "AccessDenied", 403)
    r = send(cluster, "PUT", f"/{bucket}/anon", {"Host": host, "Content-Length": "3"}, b"abc")
    assert_error(r, "AccessDenied", 403)
    assert absent(s3, bucket, "anon")


def test_sigv2_header_auth_is_verified(cluster, bucket):
    """SigV2 header authentication (older tools): a good signature gets in
    (here: 404 NoSuchKey), a wrong one 403 (tests/integration/test_sigv2.py has the rest)."""
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())
    sts = f"GET\n\n\n{date}\n/{bucket}/k"
    sig = base64.b64encode(hmac.new(SECRET_KEY.encode(), sts.encode(), hashlib.sha1).digest()).decode()
    r = send(cluster, "GET", f"/{bucket}/k", {"Host": netloc(cluster), "Date": date,
                                              "Authorization": f"AWS {ACCESS_KEY}:{sig}"})
    assert_error(r, "NoSuchKey", 404)
    r = send(cluster, "GET", f"/{bucket}/k", {"Host": netloc(cluster), "Date": date,
                                              "Authorization": f"AWS {ACCESS_KEY}:{sig[::-1]}"})
    assert_error(r, "SignatureDoesNotMatch", 403)


def test_two_auth_mechanisms_at_once(cluster, s3v4, bucket):
    url = s3v4.generate_presigned_url("list_objects_v2", Params={"Bucket": bucket}, ExpiresIn=300)
    parts = urlsplit(url)
    path = f"{parts.path}?{parts.query}"
    r = send(cluster, "GET", path, sign("GET", netloc(cluster), path, {}, EMPTY_SHA256))
    assert_error(r, "InvalidArgument", 400)


def test_presigned_with_unsigned_amz_header(s3, s3v4, bucket, tmp_path):
    """A presigned PUT cannot be given extra x-amz-* headers by whoever holds it."""
    for client, code in ((s3v4, "AccessDenied"), (s3, "SignatureDoesNotMatch")):
        url = client.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "u"}, ExpiresIn=300)
        r = curl("-X", "PUT", "-H", "Content-Type:", "-H", "x-amz-meta-evil: 1", url, tmp_path=tmp_path,
                 data=b"data")
        curl_error(r, code, 403)
    assert absent(s3, bucket, "u")


# ----------------------------------------------------------------------------- 6. virtual-hosted style

def test_virtual_hosted_raw_signed(cluster, s3, bucket):
    vhost = f"{bucket}.localhost:{port(cluster)}"
    data = os.urandom(BIG)
    r = signed(cluster, "PUT", "/dir/v.bin", data, host=vhost)
    assert r.status == 200, r.body
    assert content(s3, bucket, "dir/v.bin") == data          # same object, path style
    r = signed(cluster, "GET", "/dir/v.bin", host=vhost)
    assert r.status == 200 and r.body == data
    r = signed(cluster, "GET", "/?list-type=2", host=vhost)
    assert r.status == 200, r.body
    root = ET.fromstring(r.body)
    ns = root.tag[:root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    assert root.tag == ns + "ListBucketResult"
    assert root.findtext(ns + "Name") == bucket
    assert [e.text for e in root.iter(ns + "Key")] == ["dir/v.bin"]
    # aws-chunked works virtual-hosted too.
    small = os.urandom(SMALL)
    path = "/vchunk"
    trailers = [("x-amz-checksum-crc32", checksum_b64("crc32", small))]
    body = aws_chunked(small, signer=None, trailers=trailers)
    h = seed_sign("PUT", vhost, path, {"Content-Encoding": "aws-chunked", "Content-Length": str(len(body)),
                                       "x-amz-decoded-content-length": str(SMALL),
                                       "x-amz-trailer": "x-amz-checksum-crc32"}, UNSIGNED_TRAILER)
    assert send(cluster, "PUT", path, h, body).status == 200
    assert content(s3, bucket, "vchunk") == small


def test_virtual_hosted_host_is_signed_with_its_port(cluster, s3, bucket):
    vhost = f"{bucket}.localhost:{port(cluster)}"
    # Signed over "bucket.localhost" (no port), sent with the port.
    h = sign("PUT", f"{bucket}.localhost", "/k", {"Content-Length": "1"}, hashlib.sha256(b"x").hexdigest())
    h["Host"] = vhost
    r = send(cluster, "PUT", "/k", h, b"x")
    x = assert_error(r, "SignatureDoesNotMatch", 403)
    assert f"\nhost:{vhost}\n" in x["CanonicalRequest"]
    assert absent(s3, bucket, "k")


@pytest.mark.parametrize("sigver", [None, "s3v4"], ids=["sigv2", "sigv4"])
def test_virtual_hosted_presigned_with_curl(cluster, s3, bucket, sigver, tmp_path):
    p = port(cluster)
    kw = {"signature_version": sigver} if sigver else {}
    vc = make_client(f"http://localhost:{p}", s3={"addressing_style": "virtual"}, **kw)
    data = os.urandom(100 * KiB)
    put_url = vc.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "a/v"}, ExpiresIn=300)
    assert urlsplit(put_url).netloc == f"{bucket}.localhost:{p}", put_url
    assert ("AWSAccessKeyId=" in put_url) == (sigver is None)
    connect_to = ["--connect-to", f"{bucket}.localhost:{p}:127.0.0.1:{p}"]
    status, body, _ = curl(*connect_to, "-X", "PUT", "-H", "Content-Type:", put_url, tmp_path=tmp_path,
                           data=data)
    assert status == 200, body
    assert content(s3, bucket, "a/v") == data
    get_url = vc.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "a/v"}, ExpiresIn=300)
    status, body, _ = curl(*connect_to, get_url, tmp_path=tmp_path)
    assert status == 200 and body == data
    # The same URL sent to 127.0.0.1 with the Host header set by hand.
    direct = urlunsplit(urlsplit(get_url)._replace(netloc=f"127.0.0.1:{p}"))
    status, body, _ = curl("-H", f"Host: {bucket}.localhost:{p}", direct, tmp_path=tmp_path)
    assert status == 200 and body == data
    # Without the Host header the request is path style: another resource, refused.
    r = curl(direct, tmp_path=tmp_path)
    assert r[0] in (403, 404), r


# ----------------------------------------------------------------------------- 7. request ids, errors, 100-continue

def test_request_id_on_every_response(cluster, s3, bucket):
    host = netloc(cluster)
    r = signed(cluster, "PUT", f"/{bucket}/k", b"hello")
    assert r.status == 200 and r.headers["x-amz-request-id"]
    etag = r.headers["etag"]
    ids = {r.headers["x-amz-request-id"]}

    r = signed(cluster, "GET", f"/{bucket}/k")
    assert r.status == 200 and r.body == b"hello"
    ids.add(r.headers["x-amz-request-id"])

    r = signed(cluster, "GET", f"/{bucket}/k", headers={"If-None-Match": etag})
    assert r.status == 304 and r.body == b""
    assert r.headers["etag"] == etag
    ids.add(r.headers["x-amz-request-id"])

    r = signed(cluster, "GET", f"/{bucket}/missing")
    x = assert_error(r, "NoSuchKey", 404)
    assert x["Resource"] == f"/{bucket}/missing"
    assert r.headers["content-type"].startswith("application/xml")
    ids.add(r.headers["x-amz-request-id"])

    r = signed(cluster, "GET", "/no-such-bucket-here/k")
    x = assert_error(r, "NoSuchBucket", 404)
    assert x["Resource"] in ("/no-such-bucket-here/k", "/no-such-bucket-here")
    ids.add(r.headers["x-amz-request-id"])

    r = send(cluster, "GET", f"/{bucket}/k", {"Host": host})          # anonymous
    assert_error(r, "AccessDenied", 403)
    ids.add(r.headers["x-amz-request-id"])

    # HEAD errors: status and request id, no body at all (read to EOF on the raw socket).
    for path, status in ((f"/{bucket}/missing", 404), ("/no-such-bucket-here/k", 404), (f"/{bucket}/k", 403)):
        h = sign("HEAD", host, path, {}, EMPTY_SHA256) if status != 403 else {"Host": host}
        h["Connection"] = "close"
        with connect(cluster) as sock:
            sock.sendall(head_bytes("HEAD", path, h))
            raw = b""
            while chunk := sock.recv(65536):
                raw += chunk
        head, _, rest = raw.partition(b"\r\n\r\n")
        assert head.startswith(f"HTTP/1.1 {status} ".encode()), head
        assert rest == b"", rest
        lines = {ln.split(b":", 1)[0].strip().lower(): ln.split(b":", 1)[1].strip()
                 for ln in head.split(b"\r\n")[1:]}
        assert lines[b"x-amz-request-id"]
        assert lines.get(b"content-length", b"0") == b"0"
        ids.add(lines[b"x-amz-request-id"].decode())
    assert len(ids) == 9                                     # unique per request

    # And through boto3.
    with pytest.raises(ClientError) as ei:
        s3.head_object(Bucket=bucket, Key="missing")
    assert ei.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]


@pytest.mark.parametrize("size", [BIG, SMALL], ids=["big", "small"])
def test_expect_100_continue_plain_signed_put(cluster, s3, bucket, size):
    data = os.urandom(size)
    path = f"/{bucket}/e100"
    h = sign("PUT", netloc(cluster), path, {"Content-Length": str(size)}, hashlib.sha256(data).hexdigest())
    h["Expect"] = "100-continue"
    with connect(cluster) as sock:
        sock.sendall(head_bytes("PUT", path, h))
        _expect_100(sock)
        sock.sendall(data)
        r = read_response(sock, "PUT")
    assert r.status == 200, r.body
    assert content(s3, bucket, "e100") == data
    # boto3 sends Expect: 100-continue for bodies over 1 MiB.
    s3.put_object(Bucket=bucket, Key="boto", Body=data)
    assert content(s3, bucket, "boto") == data


@pytest.mark.parametrize("case", ["bad-signature", "anonymous", "no-such-bucket"])
def test_expect_100_continue_not_sent_for_request_rejected_on_headers(cluster, bucket, case):
    path = f"/{bucket}/e" if case != "no-such-bucket" else "/no-such-bucket-e100/e"
    headers = {"Content-Length": str(10 * MiB)}
    if case == "anonymous":
        h = {"Host": netloc(cluster), **headers}
    else:
        h = sign("PUT", netloc(cluster), path, headers, UNSIGNED,
                 secret="not-the-secret" if case == "bad-signature" else SECRET_KEY)
    h["Expect"] = "100-continue"
    with connect(cluster, timeout=10) as sock:
        sock.sendall(head_bytes("PUT", path, h))
        first = recv_until(sock, b"\r\n")
    status_line = first.split(b"\r\n", 1)[0]
    assert status_line.startswith((b"HTTP/1.1 403", b"HTTP/1.1 404")), status_line


# ----------------------------------------------------------------------------- 8. path-like keys

WEIRD_KEYS = ["../../etc/passwd", "..%2F..%2Fx", "/abs", "//double//slash", "a/./b", "a/../b", "..", ".",
              "\\..\\", "..\\..\\windows\\passwd", "a/b/../../../../passwd-escape", "~/x", "%2e%2e/y"]


def _data_dir_files(root) -> list:
    return [os.path.join(d, f) for d, _dirs, files in os.walk(root) for f in files]


def test_path_like_keys_stay_keys(cluster, s3, bucket):
    data_dir = cluster.topo.data_dir
    outside = data_dir.parent
    before_outside = set(os.listdir(outside))
    passwd_mtime = os.stat("/etc/passwd").st_mtime
    bodies = {}
    for i, key in enumerate(WEIRD_KEYS):
        # Every other one erasure-coded, so fragment files are written for it.
        bodies[key] = os.urandom(20_000 + i if i % 2 == 0 else 100 + i)
        s3.put_object(Bucket=bucket, Key=key, Body=bodies[key])
    for key, data in bodies.items():
        assert content(s3, bucket, key) == data, key
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(listed) == sorted(WEIRD_KEYS)

    # Raw requests with literal dot segments: S3 does not normalise the path.
    raw = os.urandom(10_000)
    r = signed(cluster, "PUT", f"/{bucket}/../../etc/passwd", raw)
    assert r.status == 200, r.body
    assert content(s3, bucket, "../../etc/passwd") == raw
    r = signed(cluster, "GET", f"/{bucket}/a/./b")
    assert r.status == 200 and r.body == bodies["a/./b"]
    r = signed(cluster, "GET", f"/{bucket}/%2E%2E/%2E%2E/etc/passwd")
    assert r.status == 200 and r.body == raw
    # Encoded slashes are part of the key ("..%2F..%2Fx" is sent as ..%252F..%252Fx).
    r = signed(cluster, "GET", f"/{bucket}/" + quote("..%2F..%2Fx"))
    assert r.status == 200 and r.body == bodies["..%2F..%2Fx"]

    # Nothing escaped the data directory.
    assert set(os.listdir(outside)) == before_outside
    assert os.stat("/etc/passwd").st_mtime == passwd_mtime
    files = _data_dir_files(data_dir)
    assert not [f for f in files if "passwd" in f or "windows" in f or "escape" in f]
    frags = [f for f in files if f"{os.sep}fragments{os.sep}" in f]
    assert frags, "the erasure-coded objects wrote no fragments?"
    for f in frags:
        assert re.fullmatch(r"[0-9a-f]{32}\.\d+", os.path.basename(f)), f
        assert os.path.basename(os.path.dirname(f)) == os.path.basename(f)[:2], f
    for f in files:
        assert os.path.realpath(f).startswith(str(data_dir.resolve()) + os.sep), f

