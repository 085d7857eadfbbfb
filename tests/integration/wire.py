"""Raw HTTP and SigV4 by hand, for tests that need the wire byte by byte.

Requests are sent on raw sockets (the request line and headers exactly as
written here), responses parsed by http.client. Signatures are computed with
this module's own HMAC chain following the AWS documentation; the seed
signature is computed by botocore's S3SigV4Auth *and* by minis3.core.sigv4
and the two must agree, so a test does not only trust the server's own code.
aws-chunked bodies (every x-amz-content-sha256 mode, trailers, trailer
signatures) are built here too, with knobs to corrupt each part.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import socket
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import quote, urlsplit

import pytest
from awscrt import checksums as crt
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from minis3.core import signing, sigv4

from .cluster import ACCESS_KEY, SECRET_KEY

KiB, MiB = 1024, 1 << 20
CHUNK = 64 * KiB
REGION = "us-east-1"
# The payload keywords a client puts in x-amz-content-sha256 (the server's own names).
EMPTY_SHA256 = sigv4.EMPTY_SHA256
SIGNED, SIGNED_TRAILER = sigv4.STREAMING_SIGNED, sigv4.STREAMING_SIGNED_TRAILER
UNSIGNED_TRAILER, UNSIGNED = sigv4.STREAMING_UNSIGNED_TRAILER, sigv4.UNSIGNED_PAYLOAD


# ----------------------------------------------------------------------------- HTTP plumbing

@dataclass
class Resp:
    status: int
    headers: dict[str, str]     # lower-case names
    body: bytes

    def xml(self) -> dict[str, str]:
        root = ET.fromstring(self.body)
        assert root.tag == "Error", self.body
        return {child.tag: (child.text or "") for child in root}

    @property
    def code(self) -> str:
        return self.xml()["Code"]


def netloc(cluster) -> str:
    return urlsplit(cluster.endpoint).netloc          # 127.0.0.1:PORT


def port(cluster) -> int:
    return urlsplit(cluster.endpoint).port


def connect(cluster, timeout: float = 30) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port(cluster)), timeout=timeout)


def recv_until(sock: socket.socket, marker: bytes) -> bytes:
    """What the socket gives until ``marker`` has arrived, or until it closes."""
    got = b""
    while marker not in got:
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def head_bytes(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def read_response(sock: socket.socket, method: str) -> Resp:
    r = http.client.HTTPResponse(sock, method=method)
    r.begin()                    # skips any interim 100 Continue
    body = r.read()
    return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, body)


def send(cluster, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> Resp:
    """One request on a fresh connection; the server may answer an error
    before the whole body is sent, so a failed send still reads the answer."""
    with connect(cluster) as sock:
        try:
            sock.sendall(head_bytes(method, path, headers) + body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return read_response(sock, method)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def sign(method: str, host: str, path: str, headers: dict[str, str] | None = None,
         payload_hash: str = UNSIGNED, *, now: datetime | None = None,
         access_key: str = ACCESS_KEY, secret: str = SECRET_KEY) -> dict[str, str]:
    """Headers (Host first) signed with SigV4 in the Authorization header."""
    h = {"Host": host, **(headers or {})}
    h.update(signing.sign_request(method, f"http://{host}{path}", h, payload_hash, access_key, secret,
                                REGION, now or utcnow()))
    return h


def signed(cluster, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
           payload_hash: str | None = None, *, host: str | None = None, **kw) -> Resp:
    h = dict(headers or {})
    if body or method in ("PUT", "POST"):
        h.setdefault("Content-Length", str(len(body)))
    ph = payload_hash or hashlib.sha256(body).hexdigest()
    return send(cluster, method, path, sign(method, host or netloc(cluster), path, h, ph, **kw), body)


def assert_error(resp: Resp, code: str, status: int) -> dict[str, str]:
    assert resp.status == status, (resp.status, resp.body[:2000])
    x = resp.xml()
    assert x["Code"] == code, resp.body[:2000]
    assert x.get("Message"), resp.body
    assert x.get("Resource"), resp.body
    assert x.get("RequestId") == resp.headers["x-amz-request-id"]
    assert "HostId" in x
    return x


def err(exc_info) -> tuple[str, int]:
    e = exc_info.value.response
    return e["Error"]["Code"], e["ResponseMetadata"]["HTTPStatusCode"]


def absent(s3, bucket: str, key: str) -> bool:
    with pytest.raises(ClientError) as ei:
        s3.head_object(Bucket=bucket, Key=key)
    return err(ei) == ("404", 404)


def content(s3, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


# ----------------------------------------------------------------------------- checksums & signing

def checksum_b64(alg: str, data: bytes) -> str:
    if alg == "crc32":
        raw = zlib.crc32(data).to_bytes(4, "big")
    elif alg == "crc32c":
        raw = crt.crc32c(data).to_bytes(4, "big")
    elif alg == "crc64nvme":
        raw = crt.crc64nvme(data).to_bytes(8, "big")
    elif alg == "sha256":
        raw = hashlib.sha256(data).digest()
    else:
        raise ValueError(alg)
    return base64.b64encode(raw).decode()


BOTO_FIELD = {"crc32": "ChecksumCRC32", "crc32c": "ChecksumCRC32C", "sha256": "ChecksumSHA256",
              "crc64nvme": "ChecksumCRC64NVME"}


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def derive_key(secret: str, date: str) -> bytes:
    """The SigV4 signing key, written out here (not taken from the server's code)."""
    return _hmac(_hmac(_hmac(_hmac(b"AWS4" + secret.encode(), date), REGION), "s3"), "aws4_request")


@dataclass
class Signer:
    """The chain of chunk signatures after the seed ("Transferring Payload in
    Multiple Chunks", "Including Trailing Headers")."""
    key: bytes
    amz_date: str
    scope: str
    prev: str

    def chunk(self, data: bytes) -> str:
        sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", self.amz_date, self.scope, self.prev, EMPTY_SHA256,
                         hashlib.sha256(data).hexdigest()])
        self.prev = hmac.new(self.key, sts.encode(), hashlib.sha256).hexdigest()
        return self.prev

    def trailer(self, trailer_lines: bytes) -> str:
        sts = "\n".join(["AWS4-HMAC-SHA256-TRAILER", self.amz_date, self.scope, self.prev,
                         hashlib.sha256(trailer_lines).hexdigest()])
        self.prev = hmac.new(self.key, sts.encode(), hashlib.sha256).hexdigest()
        return self.prev


def flip_signature(sig: str) -> str:
    """The same signature with its last hex digit changed."""
    return sig[:-1] + ("0" if sig[-1] != "0" else "1")


def aws_chunked(data: bytes, *, signer: Signer | None, trailers: list[tuple[str, str]] | None,
                chunk: int = CHUNK, corrupt_chunk: int | None = None, corrupt_trailer_sig: bool = False,
                stop_before_final: bool = False) -> bytes:
    """Encode ``data`` as an aws-chunked body. ``signer`` None = unsigned
    chunks; ``trailers`` None = no trailer section."""
    pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)]
    out = bytearray()
    for n, p in enumerate(pieces + [b""]):
        if not p and stop_before_final:
            return bytes(out)
        if signer:
            sig = signer.chunk(p)
            out += f"{len(p):x};chunk-signature={flip_signature(sig) if n == corrupt_chunk else sig}\r\n".encode()
        else:
            out += f"{len(p):x}\r\n".encode()
        if p:
            out += p + b"\r\n"
    if trailers is None:
        out += b"\r\n"
        return bytes(out)
    lines = b"".join(f"{k}:{v}\n".encode() for k, v in trailers)
    out += lines.replace(b"\n", b"\r\n")
    if signer:
        sig = signer.trailer(lines)
        out += f"x-amz-trailer-signature:{flip_signature(sig) if corrupt_trailer_sig else sig}\r\n".encode()
    out += b"\r\n"
    return bytes(out)


class _PayloadAuth(S3SigV4Auth):
    """botocore's S3 signer with the payload hash fixed (it would otherwise
    hash the body, or say UNSIGNED-PAYLOAD)."""

    def __init__(self, payload_hash: str):
        super().__init__(Credentials(ACCESS_KEY, SECRET_KEY), "s3", REGION)
        self._payload_hash = payload_hash

    def payload(self, request):
        return self._payload_hash


def seed_sign(method: str, host: str, path: str, headers: dict[str, str], payload_hash: str) -> dict[str, str]:
    """Sign with botocore, then again with minis3.core.sigv4 at the same
    instant: both must produce the same Authorization header."""
    req = AWSRequest(method=method, url=f"http://{host}{path}", headers=dict(headers), data=b"")
    _PayloadAuth(payload_hash).add_auth(req)
    boto = dict(req.headers.items())
    amz_date = boto["X-Amz-Date"]
    now = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    ours = sign(method, host, path, headers, payload_hash, now=now)
    assert ours["Authorization"] == boto["Authorization"]
    assert boto["X-Amz-Content-SHA256"] == payload_hash
    return ours


def build_chunked(cluster, bucket: str, key: str, data: bytes, mode: str, alg: str | None = "crc32", *,
                  checksum: str | None = None, decoded_length: int | None = None,
                  extra_headers: dict[str, str] | None = None, **encode_kw) -> tuple[str, dict, bytes]:
    """(path, headers, body) of a PUT of ``data`` as aws-chunked in ``mode``;
    ``checksum`` overrides the trailer's value, ``decoded_length`` the
    x-amz-decoded-content-length."""
    signed_mode = mode != UNSIGNED_TRAILER
    with_trailer = mode != SIGNED
    trailers = [(f"x-amz-checksum-{alg}", checksum or checksum_b64(alg, data))] if with_trailer else None
    path = f"/{bucket}/{quote(key)}"
    headers = {"Content-Encoding": "aws-chunked",
               "x-amz-decoded-content-length": str(len(data) if decoded_length is None else decoded_length),
               **(extra_headers or {})}
    if with_trailer:
        headers["x-amz-trailer"] = f"x-amz-checksum-{alg}"
    # The encoded length does not depend on the signatures' values: measure it
    # with a dummy chain, sign the seed over it, then encode for real.
    dummy = Signer(b"k", "d", "s", "0" * 64) if signed_mode else None
    headers["Content-Length"] = str(len(aws_chunked(data, signer=dummy, trailers=trailers, **encode_kw)))
    h = seed_sign("PUT", netloc(cluster), path, headers, mode)
    signer = None
    if signed_mode:
        amz_date = h["X-Amz-Date"]
        seed = h["Authorization"].rsplit("Signature=", 1)[1]
        signer = Signer(derive_key(SECRET_KEY, amz_date[:8]), amz_date,
                        f"{amz_date[:8]}/{REGION}/s3/aws4_request", seed)
    body = aws_chunked(data, signer=signer, trailers=trailers, **encode_kw)
    assert len(body) == int(headers["Content-Length"])
    return path, h, body


def chunked_put(cluster, *args, **kw) -> Resp:
    return send(cluster, "PUT", *build_chunked(cluster, *args, **kw))
