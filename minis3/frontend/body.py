"""An upload's body: decode its transfer framing, hash it, verify it at the end.

Handles every ``x-amz-content-sha256`` mode S3 accepts:

* a hex SHA-256 of the payload — verified (XAmzContentSHA256Mismatch);
* ``UNSIGNED-PAYLOAD``;
* ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD`` — aws-chunked, each chunk signed;
* ``STREAMING-UNSIGNED-PAYLOAD-TRAILER`` / ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER``
  — aws-chunked with a trailing checksum (and a trailer signature when signed).

plus ``Content-MD5`` and any ``x-amz-checksum-*`` header or trailer (BadDigest).
The body is never held whole: :meth:`IncomingBody.chunks` yields decoded pieces, the
data path hashes each segment once (:meth:`IncomingBody.hash`, in a worker thread),
and :meth:`IncomingBody.verify` runs after the last byte but before anything is
acknowledged.
"""
from __future__ import annotations

import asyncio
import os
from typing import AsyncIterator

from aiohttp import web

from ..core import checksums
from ..core import errors as E
from ..core.chunked import AwsChunkedDecoder
from ..core.numbers import parse_int
from ..core.sigv4 import AuthResult

MAX_OBJECT_SIZE = 5 * 1024 ** 3
READ_SIZE = 256 * 1024
#: A body that sends no byte for this long is given up: 400 RequestTimeout, as
#: S3 answers after about 20 s of silence (MINIS3_BODY_IDLE_S).
BODY_IDLE_S = float(os.environ.get("MINIS3_BODY_IDLE_S", "20"))

STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
UNSIGNED = "UNSIGNED-PAYLOAD"


def send_continue(request: web.Request) -> None:
    """Answer ``Expect: 100-continue`` now that the request passed every
    check that needs only its headers (see app._defer_continue)."""
    if (request.version >= (1, 1) and request.headers.get("Expect", "").lower() == "100-continue"
            and not request.get("continued") and request.transport is not None):
        request["continued"] = True
        request.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")


def _is_hex_sha256(v: str) -> bool:
    return len(v) == 64 and all(c in "0123456789abcdef" for c in v.lower())


class DigestedBody:
    """What a body's digests give: each segment hashed as it is stored (:meth:`hash`), then the
    object's ETag and its stored checksum. A body sets ``digests`` and ``stored_alg``: a PUT's
    (:class:`IncomingBody`), a form upload's file (frontend/postobject.FormFile)."""
    digests: checksums.BodyDigests
    stored_alg: str

    def hash(self, data: bytes) -> None:
        self.digests.update(data)

    def etag(self) -> str:
        return self.digests.results()["md5"].hex()

    def stored_checksum(self) -> dict:
        return {"alg": self.stored_alg, "value": self.digests.b64()[self.stored_alg]}


class IncomingBody(DigestedBody):
    """An object's body as it arrives (a PUT's, or an UploadPart's): decoded, hashed and,
    after its last byte, verified against what the client declared."""

    def __init__(self, request: web.Request, auth: AuthResult, *, required_alg: str | None = None,
                 extra_alg: str | None = None, checksum_headers: bool = True):
        """``required_alg``: the checksum algorithm every part of a multipart
        upload uses (computed here when the client sends none; another
        algorithm from the client is refused). ``extra_alg``: one more
        checksum to compute (``digests.b64()``), whatever the client sends.
        ``checksum_headers`` False: x-amz-checksum-* headers are not about
        this body (CompleteMultipartUpload's are the whole object's)."""
        self.request = request
        self._read_framing(request, auth)
        self._read_checksums(request.headers, auth.payload_hash, required_alg, extra_alg, checksum_headers)
        self.received = 0

    def _read_framing(self, request: web.Request, auth: AuthResult) -> None:
        """How the body is framed and what it declares: aws-chunked (signed or not, with a
        trailer or not) with its decoded length, or plain with its SHA-256 (or UNSIGNED)."""
        h = request.headers
        mode = auth.payload_hash
        self.decoder: AwsChunkedDecoder | None = None
        self.expected_sha256: str | None = None
        if mode in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER):
            signed = mode != STREAMING_UNSIGNED_TRAILER
            self.decoder = AwsChunkedDecoder(
                signed=signed, trailer=mode != STREAMING_SIGNED,
                signing_key=auth.signing_key if signed else None,
                seed_signature=auth.seed_signature if signed else None,
                amz_date=auth.amz_date, scope=auth.scope)
            dl = h.get("x-amz-decoded-content-length")
            self.declared_length = parse_int(dl.strip()) if dl is not None else None
            if dl is not None and (self.declared_length is None or self.declared_length < 0
                                   or not dl.strip()[0].isdigit()):
                raise E.InvalidArgument("x-amz-decoded-content-length must be a number",
                                        ArgumentName="x-amz-decoded-content-length", ArgumentValue=dl)
        elif mode.startswith("STREAMING-"):
            raise E.NotImplemented_(f"x-amz-content-sha256 mode {mode} is not supported")
        else:
            if mode != UNSIGNED:
                if not _is_hex_sha256(mode):
                    raise E.InvalidArgument("x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a STREAMING- "
                                            "value or the hex SHA-256 of the payload")
                self.expected_sha256 = mode.lower()
            self.declared_length = request.content_length
        if request.content_length is None and "chunked" not in h.get("transfer-encoding", "").lower():
            raise E.MissingContentLength()
        if self.declared_length is not None and self.declared_length > MAX_OBJECT_SIZE:
            raise E.EntityTooLarge()

    def _read_checksums(self, h, mode: str, required_alg: str | None, extra_alg: str | None,
                        checksum_headers: bool) -> None:
        """Which checksum the client promises (a header now, or a trailer later), which one
        is stored with the object, and the digests to compute as the body arrives."""
        self.header_checksums = checksums.parse_checksum_headers(h) if checksum_headers else {}
        self.trailer_alg: str | None = None
        trailer = h.get("x-amz-trailer", "").strip().lower()
        if trailer:
            if self.decoder is None or mode == STREAMING_SIGNED:
                raise E.InvalidRequest("x-amz-trailer needs a STREAMING-...-TRAILER payload")
            if not trailer.startswith(checksums.HEADER_PREFIX):
                raise E.InvalidRequest(f"unsupported trailer {trailer}")
            self.trailer_alg = checksums.normalize_algorithm(trailer[len(checksums.HEADER_PREFIX):])
        sdk_alg = (h.get("x-amz-sdk-checksum-algorithm") or h.get("x-amz-checksum-algorithm")) if checksum_headers \
            else None
        self.algorithm = (next(iter(self.header_checksums), None) or self.trailer_alg
                          or (checksums.normalize_algorithm(sdk_alg) if sdk_alg else None))
        if required_alg and self.algorithm and self.algorithm != required_alg:
            raise E.InvalidRequest(f"Checksum Type mismatch occurred, expected checksum Type: {required_alg}, "
                                   f"actual checksum Type: {self.algorithm}")
        # With no checksum from the client, S3 computes CRC64NVME itself.
        self.stored_alg = self.algorithm or required_alg or "crc64nvme"
        self.content_md5 = checksums.content_md5(h["content-md5"]) if "content-md5" in h else None
        wanted = {self.stored_alg} | ({extra_alg} if extra_alg else set())
        if self.expected_sha256:
            wanted.add("sha256")
        self.digests = checksums.BodyDigests(wanted)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The decoded payload, piece by piece."""
        content = self.request.content
        send_continue(self.request)
        while True:
            try:
                # What has arrived already is taken without a timer; only a
                # wait for more bytes is bounded (a timer armed on every read
                # looked to cost small PUTs a few percent: 4 KiB A/B runs).
                raw = content.read_nowait(READ_SIZE)
                if not raw and not content.at_eof():
                    async with asyncio.timeout(BODY_IDLE_S):
                        raw = await content.read(READ_SIZE)
            except TimeoutError:           # a stalled client holds memory and node connections: let go
                raise E.RequestTimeout() from None
            except Exception as exc:       # client went away mid-body
                raise E.IncompleteBody() from exc
            if not raw:
                break
            pieces = self.decoder.feed(raw) if self.decoder else [raw]
            for p in pieces:
                if p:
                    self.received += len(p)
                    if self.received > MAX_OBJECT_SIZE:
                        raise E.EntityTooLarge()
                    if self.declared_length is not None and self.received > self.declared_length:
                        # (aws-chunked: more than x-amz-decoded-content-length.) Raised
                        # before the piece goes on: the data path may rely on the length.
                        raise E.IncompleteBody()
                    yield p
        if self.decoder:
            self.decoder.finish()
        if self.declared_length is not None and self.received != self.declared_length:
            raise E.IncompleteBody()

    async def verify(self) -> None:
        """Every promise the client made about the body, checked before any ack."""
        got = self.digests.results()
        if self.expected_sha256 and got["sha256"].hex() != self.expected_sha256:
            raise E.XAmzContentSHA256Mismatch(ClientComputedContentSHA256=self.expected_sha256,
                                              S3ComputedContentSHA256=got["sha256"].hex())
        if self.content_md5 is not None and got["md5"] != self.content_md5:
            raise E.BadDigest("The Content-MD5 you specified did not match what we received.")
        claimed = dict(self.header_checksums)
        if self.trailer_alg:
            value = (self.decoder.trailers or {}).get(checksums.header_name(self.trailer_alg))
            if not value:
                raise E.InvalidRequest(f"The {checksums.header_name(self.trailer_alg)} trailer is missing")
            claimed[self.trailer_alg] = value
        check_claimed(claimed, got)


def check_claimed(claimed: dict[str, str], got: dict[str, bytes]) -> None:
    """Each checksum the client sent (``{alg: base64}``) against the one computed (BadDigest)."""
    for alg, b64 in claimed.items():
        if checksums.decode_checksum(alg, b64) != got[alg]:
            raise E.BadDigest(f"The {checksums.API_NAMES[alg]} you specified did not match the calculated checksum.")


async def read_small_body(request: web.Request, auth: AuthResult, limit: int = 2 * 1024 * 1024,
                          checksum_headers: bool = True) -> bytes:
    """Read a small request document (XML) through the same decoding and checks."""
    if not request.content_length and "chunked" not in request.headers.get("transfer-encoding", "").lower():
        return b""
    up = IncomingBody(request, auth, checksum_headers=checksum_headers)
    buf = bytearray()
    async for piece in up.chunks():
        buf += piece
        if len(buf) > limit:
            raise E.MalformedXML("request body too large")
    up.hash(bytes(buf))
    await up.verify()
    return bytes(buf)

