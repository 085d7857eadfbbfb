"""Encryption at rest in the request path: Put/Get/DeleteBucketEncryption, the
data key of a new object, and the data key of a stored one.

Where it sits in a PUT (docs/ARCHITECTURE.md): after the authoriser and before
the body is read, :func:`for_write` picks the encryption (the request's headers,
else the bucket's default; core/sse.py) and makes the object's data key
(frontend/keys.py); the data path seals each segment with it before erasure
coding (core/seal.py), and the record keeps the wrapped key (``sse``). A GET
opens the data key with :func:`for_read` before it reads a byte.

SSE-C over plain HTTP: S3 refuses it (a key sent in the clear must be
considered leaked). minis3 refuses it too, unless the frontend listens on a
loopback address, where nothing crosses a network (the local cluster of
``make run`` and the tests): there a developer's SSE-C code runs as it would
against S3 over HTTPS (``[frontend] sse_c_over_http`` in the topology decides,
and defaults to exactly that).
"""
from __future__ import annotations

import fnmatch
import ipaddress
import socket

from aiohttp import web

from ..config.specs import FrontendSpec
from ..core import access, seal, sse
from ..core import errors as E
from .body import read_small_body
from .context import Context


def bucket_default(ctx: Context, bucket: str) -> sse.BucketDefault:
    return sse.BucketDefault.from_record(ctx.buckets_seen[bucket].settings.get("encryption"))


def sse_c_over_http(spec: FrontendSpec) -> bool:
    """Whether this frontend takes SSE-C keys over plain HTTP: the topology's
    ``sse_c_over_http`` if it says, else only when it listens on a loopback address."""
    if spec.sse_c_over_http is not None:
        return spec.sse_c_over_http
    try:
        addrs = {a[4][0] for a in socket.getaddrinfo(spec.host, None)}
        return bool(addrs) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addrs)
    except (OSError, ValueError):
        return False


def _check_transport(ctx: Context) -> None:
    if not ctx.request.secure and not ctx.fe.sse_c_over_http:
        raise E.InvalidRequest("Requests specifying Server Side Encryption with Customer provided keys must be "
                               "made over a secure connection.")


def for_write(ctx: Context, bucket: str, key: str,
              headers: dict[str, str] | None = None) -> tuple[bytes | None, dict | None]:
    """A new object's data key and its record's ``sse`` (``headers``: a form upload's fields);
    (None, None) in a bucket the topology leaves in the clear (``plaintext_buckets``) when
    neither the request nor the bucket's configuration asks for encryption."""
    # (aiohttp's headers are case-insensitive: the core's lower-case lookups find them as they are)
    asked = sse.requested(ctx.request.headers if headers is None else headers)
    setting = ctx.buckets_seen[bucket].settings.get("encryption")
    if asked is None and setting is None and any(fnmatch.fnmatchcase(bucket, p)
                                                 for p in ctx.fe.topo.frontend.plaintext_buckets):
        return None, None
    enc = sse.choose(asked, sse.BucketDefault.from_record(setting))
    if enc.alg == sse.SSE_C:
        _check_transport(ctx)
    owner = ctx.buckets_seen[bucket].access.owner
    return ctx.fe.keys.new_data_key(enc, bucket, key, access.account_id(owner))


def check_key(ctx: Context, rec: dict, *, copy_source: bool = False) -> bytes | None:
    """The SSE-C key the request gives for a stored object, checked as S3 does: missing
    (400), wrong (403), or given for an object that has none (400); None for an object
    that is not SSE-C. What a HEAD needs: it reads no byte, so it opens no data key.
    ``copy_source``: the ``x-amz-copy-source-server-side-encryption-customer-*`` headers."""
    customer = sse.customer_key(ctx.request.headers, sse.COPY_SOURCE_CUSTOMER if copy_source else sse.CUSTOMER)
    info = rec.get("sse")
    if info is None or info["alg"] != sse.SSE_C:
        if customer is not None:
            raise E.InvalidRequest("The encryption parameters are not applicable to this object.")
        return None
    if customer is None:
        raise E.InvalidRequest("The object was stored using a form of Server Side Encryption. The correct "
                               "parameters must be provided to retrieve the object.")
    _check_transport(ctx)
    if not seal.key_matches(customer.key, info["salt"], info["hmac"]):
        raise E.AccessDenied("The SSE-C key does not match the key the object was stored with.")
    return customer.key


def for_read(ctx: Context, rec: dict, *, copy_source: bool = False) -> bytes | None:
    """The data key of a stored object (None: stored before minis3 encrypted, in the
    clear), once :func:`check_key` holds."""
    customer = check_key(ctx, rec, copy_source=copy_source)
    info = rec.get("sse")
    return ctx.fe.keys.open(info, customer) if info is not None else None


def answer_headers(ctx: Context, info: dict | None, *, context: bool = False,
                   fields: dict[str, str] | None = None) -> dict[str, str]:
    """The SSE headers of an answer about an object encrypted as ``info`` (its record's
    ``sse``); SSE-C's key MD5 is the request's (``fields``: a form upload's), checked already."""
    src = fields if fields is not None else ctx.request.headers
    return sse.response_headers(info, context=context, customer_md5=src.get(sse.CUSTOMER + "key-md5"))


def etag(rec_sse: dict | None, data_key: bytes | None, md5_hex: str) -> str:
    """An object's (or a part's) ETag: the MD5 of its bytes for SSE-S3, as S3's; not for
    SSE-C and SSE-KMS (core/seal.opaque_etag)."""
    if rec_sse is None or rec_sse["alg"] == sse.SSE_S3:
        return md5_hex
    return seal.opaque_etag(data_key, bytes.fromhex(md5_hex))


# ----------------------------------------------------------------------------- the bucket's default
async def put_bucket_encryption(ctx: Context) -> web.Response:
    config = sse.parse_config(await read_small_body(ctx.request, ctx.auth, limit=sse.MAX_CONFIG_BODY))
    if config.kms_key:
        ctx.fe.keys.kms.resolve(config.kms_key, access.account_id(ctx.buckets_seen[ctx.target.bucket].access.owner))
    await ctx.fe.access.put(ctx.target.bucket, "encryption", config.to_record())
    return web.Response(status=200)


async def get_bucket_encryption(ctx: Context) -> web.Response:
    return web.Response(body=sse.config_xml(bucket_default(ctx, ctx.target.bucket)), content_type="application/xml")


async def delete_bucket_encryption(ctx: Context) -> web.Response:
    """Back to S3's default for a bucket: SSE-S3 (objects are never stored in the clear)."""
    await ctx.fe.access.put(ctx.target.bucket, "encryption", sse.BucketDefault().to_record())
    return web.Response(status=204)
