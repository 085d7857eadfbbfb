"""GetObjectAttributes: an object's ETag, checksum, parts, storage class and
size in one call, from its record alone (no fragment is read)."""
from __future__ import annotations

from aiohttp import web

from ..core import attributes, versions
from ..core.conditions import http_date
from ..core.names import validate_key
from . import encryption


async def get_object_attributes(ctx: Context) -> web.Response:
    validate_key(ctx.target.key)
    h = ctx.request.headers
    wanted = attributes.requested(h.get("x-amz-object-attributes"))
    marker, max_parts = attributes.parts_page(h.get("x-amz-part-number-marker"), h.get("x-amz-max-parts"))
    from .object import readable_version
    rec = await readable_version(ctx, ctx.target.bucket, ctx.target.key, ctx.query.get("versionId"))
    # An SSE-C object's attributes are its metadata: S3 asks for its key here too.
    encryption.check_key(ctx, rec)
    # A multipart object's parts have checksums to show when its upload chose an algorithm.
    body = attributes.attributes_xml(rec, wanted, marker=marker, max_parts=max_parts,
                                     part_checksums=bool(rec.get("checksum_chosen")))
    resp = web.Response(body=body, content_type="application/xml")
    resp.headers["Last-Modified"] = http_date(rec["mtime"])
    resp.headers.update(versions.header(rec))
    resp.headers.update(encryption.answer_headers(ctx, rec.get("sse")))
    return resp
from .context import Context
