"""The load generator's S3 client: aiohttp, many requests in flight, our own SigV4.

It speaks to any S3 endpoint (minis3, moto_server, AWS) with path-style URLs
and signs every request with :func:`minis3.core.signing.sign_request`, which a
unit test holds byte for byte to botocore's ``S3SigV4Auth``. Payloads are
signed (``x-amz-content-sha256`` is the body's SHA-256), as boto3 does over
plain http; the benchmark precomputes those hashes so the client does not
hash while it is being timed.

Every call returns a :class:`Result`; an S3 error is not an exception but a
result with ``error`` set to the S3 code from the XML body (or ``HTTP <status>``
when the body has none), so a run counts and reports errors instead of dying.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from urllib.parse import quote

import aiohttp
import xxhash

from ..core.signing import sign_request

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
STREAM_CHUNK = 1 << 20
_CODE = re.compile(rb"<Code>([^<]{1,128})</Code>")


@dataclass
class Result:
    status: int
    nbytes: int = 0                  # payload bytes moved (sent or received)
    error: str | None = None         # S3 error code, or "HTTP 5xx", or the exception's name
    digest: int | None = None        # xxh3_64 of a GET's body, when asked for
    body: bytes = b""                # small response bodies (LIST), when asked for
    etag: str | None = None


@dataclass(frozen=True)
class Payload:
    """A request body with its SHA-256 computed once, outside the timed loop."""
    data: bytes
    sha256: str
    xxh3: int

    @classmethod
    def of(cls, data: bytes) -> "Payload":
        return cls(data, hashlib.sha256(data).hexdigest(), xxhash.xxh3_64_intdigest(data))


def body_of(data: bytes):
    """A request body aiohttp sends fast. Handed one large bytes object, Python
    3.11's asyncio transport buffers it in a bytearray and deletes each sent
    piece from its front, a memmove of the rest every time: measured here,
    a 256 MiB body went at 120 MB/s. Fed 1 MiB at a time (each awaiting
    drain) the same body goes at ~1,000 MB/s."""
    if len(data) <= STREAM_CHUNK:
        return data

    async def pieces():
        view = memoryview(data)
        for i in range(0, len(data), STREAM_CHUNK):
            yield view[i:i + STREAM_CHUNK]
    return pieces()


def error_code(status: int, body: bytes) -> str:
    m = _CODE.search(body or b"")
    return m.group(1).decode("ascii", "replace") if m else f"HTTP {status}"


class S3Client:
    def __init__(self, endpoint: str, access_key: str, secret_key: str, region: str = "us-east-1",
                 *, max_connections: int = 64, timeout: float = 300):
        self.endpoint = endpoint.rstrip("/")
        self.access_key, self.secret_key, self.region = access_key, secret_key, region
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_connections, force_close=False),
            timeout=aiohttp.ClientTimeout(total=timeout),
            skip_auto_headers=("User-Agent", "Content-Type"),
            auto_decompress=False)

    async def close(self) -> None:
        await self._session.close()

    async def __aenter__(self) -> "S3Client":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    def url(self, bucket: str, key: str | None = None, query: str = "") -> str:
        path = "/" + bucket + ("/" + quote(key, safe="/~") if key is not None else "")
        return self.endpoint + path + ("?" + query if query else "")

    def _signed(self, method: str, url: str, payload_sha256: str, headers: dict | None = None) -> dict:
        h = dict(headers or {})
        h.update(sign_request(method, url, h, payload_sha256, self.access_key, self.secret_key,
                              self.region, dt.datetime.now(dt.timezone.utc)))
        return h

    async def request(self, method: str, url: str, *, body=None, sha256: str = EMPTY_SHA256,
                      headers: dict | None = None, want_body: bool = False,
                      digest: bool = False) -> Result:
        h = self._signed(method, url, sha256, headers)
        try:
            async with self._session.request(method, url, data=body, headers=h) as resp:
                if resp.status >= 300:
                    return Result(resp.status, error=error_code(resp.status, await resp.read()))
                if want_body:
                    data = await resp.read()
                    return Result(resp.status, len(data), body=data, etag=resp.headers.get("ETag"))
                n, hasher = 0, xxhash.xxh3_64() if digest else None
                async for chunk in resp.content.iter_chunked(1 << 20):
                    n += len(chunk)
                    if hasher:
                        hasher.update(chunk)
                return Result(resp.status, n, digest=hasher.intdigest() if hasher else None,
                              etag=resp.headers.get("ETag"))
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return Result(0, error=type(exc).__name__)

    # -- the S3 operations the workloads use ------------------------------------------
    async def put(self, bucket: str, key: str, payload: Payload) -> Result:
        r = await self.request("PUT", self.url(bucket, key), body=body_of(payload.data), sha256=payload.sha256,
                               headers={"Content-Length": str(len(payload.data))})
        if not r.error:
            r.nbytes = len(payload.data)
        return r

    async def get(self, bucket: str, key: str, *, digest: bool = True) -> Result:
        return await self.request("GET", self.url(bucket, key), digest=digest)

    async def head(self, bucket: str, key: str) -> Result:
        return await self.request("HEAD", self.url(bucket, key))

    async def delete(self, bucket: str, key: str) -> Result:
        return await self.request("DELETE", self.url(bucket, key))

    async def list_page(self, bucket: str, *, prefix: str = "", start_after: str = "",
                        max_keys: int = 1000) -> Result:
        q = [("list-type", "2"), ("max-keys", str(max_keys))]
        if prefix:
            q.append(("prefix", prefix))
        if start_after:
            q.append(("start-after", start_after))
        query = "&".join(f"{k}={quote(v, safe='-_.~')}" for k, v in sorted(q))
        return await self.request("GET", self.url(bucket, query=query), want_body=True)

    # -- multipart ----------------------------------------------------------------------
    async def create_multipart(self, bucket: str, key: str) -> tuple[Result, str | None]:
        r = await self.request("POST", self.url(bucket, key, "uploads="), want_body=True)
        m = re.search(rb"<UploadId>([^<]+)</UploadId>", r.body or b"")
        return r, (m.group(1).decode() if m else None)

    async def upload_part(self, bucket: str, key: str, upload_id: str, n: int, payload: Payload) -> Result:
        q = f"partNumber={n}&uploadId={quote(upload_id, safe='')}"
        r = await self.request("PUT", self.url(bucket, key, q), body=body_of(payload.data), sha256=payload.sha256,
                               headers={"Content-Length": str(len(payload.data))})
        if not r.error:
            r.nbytes = len(payload.data)
        return r

    async def complete_multipart(self, bucket: str, key: str, upload_id: str, etags: list[str]) -> Result:
        doc = "<CompleteMultipartUpload>" + "".join(
            f"<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>" for n, e in enumerate(etags, 1)
        ) + "</CompleteMultipartUpload>"
        body = doc.encode()
        return await self.request("POST", self.url(bucket, key, f"uploadId={quote(upload_id, safe='')}"),
                                  body=body, sha256=hashlib.sha256(body).hexdigest(), want_body=True)

    async def get_range(self, bucket: str, key: str, first: int, last: int) -> Result:
        return await self.request("GET", self.url(bucket, key), headers={"Range": f"bytes={first}-{last}"},
                                  digest=True)

    async def create_bucket(self, bucket: str) -> Result:
        r = await self.request("PUT", self.url(bucket))
        if r.error in ("BucketAlreadyOwnedByYou",):
            return Result(200)
        return r

    async def put_bucket_versioning(self, bucket: str, status: str = "Enabled") -> Result:
        body = (f'<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                f"<Status>{status}</Status></VersioningConfiguration>").encode()
        return await self.request("PUT", self.url(bucket, query="versioning="), body=body,
                                  sha256=hashlib.sha256(body).hexdigest())

    async def delete_bucket(self, bucket: str) -> Result:
        return await self.request("DELETE", self.url(bucket))

    async def list_all_keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every key under a prefix (for clean-up), page by page."""
        keys, after = [], ""
        while True:
            r = await self.list_page(bucket, prefix=prefix, start_after=after)
            if r.error:
                return keys
            page = [k.decode() for k in re.findall(rb"<Key>([^<]*)</Key>", r.body)]
            keys += page
            if b"<IsTruncated>true</IsTruncated>" not in r.body or not page:
                return keys
            after = page[-1]
