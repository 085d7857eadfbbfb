"""Tagging: PutObjectTagging, GetObjectTagging, DeleteObjectTagging,
PutBucketTagging, GetBucketTagging, DeleteBucketTagging.

An object's tags live in its record, beside its headers and metadata.
Changing them writes a new version of the record that points at the same
fragments: no byte of the object is read, copied or re-encoded. The change is
a compare-and-set at the metadata replicas (MetaClient.update_object), so a
PUT of the key that lands meanwhile is never overwritten by the old object
with new tags.

A bucket's tags are a raw record of their own, ``BUCKET_TAGS + bucket/vid``
(vid: the bucket record's version id, so a bucket created again under the
same name starts with none). A PutBucketTagging replaces the whole set:
last writer wins, no read needed, and the bucket record itself is never
rewritten (which could bring back a bucket deleted meanwhile).
"""
from __future__ import annotations

from aiohttp import web

from ..core import errors as E
from ..core import versions
from ..core import tagging
from ..core.names import validate_key
from .body import read_small_body
from .context import Context

#: The key space of bucket tag sets (sorts before every bucket, like UPLOADS).
BUCKET_TAGS = "\x00t/"


def _xml(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/xml")


def tags_of(rec: dict) -> tagging.Tags:
    return [tuple(t) for t in rec.get("tags") or []]


def stored(tags: tagging.Tags) -> list[list[str]]:
    """A tag set as a record keeps it (JSON: pairs as lists)."""
    return [list(t) for t in tags]


def count_header(rec: dict) -> dict[str, str]:
    """``x-amz-tagging-count`` for GET and HEAD, when the object has tags."""
    tags = rec.get("tags")
    return {"x-amz-tagging-count": str(len(tags))} if tags else {}


def from_request(ctx: Context) -> list | None:
    """The tags ``x-amz-tagging`` gives a new object (PutObject,
    CreateMultipartUpload), or None."""
    raw = ctx.request.headers.get(tagging.TAGGING_HEADER)
    return stored(tagging.parse_header(raw)) if raw is not None else None


def for_copy(ctx: Context, src: dict) -> list | None:
    """CopyObject's tags: the source's (``x-amz-tagging-directive: COPY``, the
    default) or the request's (``REPLACE``)."""
    directive = ctx.request.headers.get("x-amz-tagging-directive", "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise E.InvalidArgument("Unknown tagging directive.", ArgumentName="x-amz-tagging-directive",
                                ArgumentValue=directive)
    return from_request(ctx) if directive == "REPLACE" else src.get("tags")


# ----------------------------------------------------------------------------- objects
async def put_object_tagging(ctx: Context) -> web.Response:
    validate_key(ctx.target.key)
    tags = tagging.parse_tagging(await read_small_body(ctx.request, ctx.auth, limit=tagging.MAX_TAGGING_BODY))

    def retag(rec: dict) -> dict:
        rec.pop("tags", None)
        if tags:
            rec["tags"] = stored(tags)
        return rec
    rec = await _change(ctx, retag)
    return web.Response(status=200, headers=versions.header(rec))


async def _change(ctx: Context, change) -> dict:
    """A change in place of the current version, or of the one ``?versionId=`` names."""
    raw = ctx.query.get("versionId")
    if raw is None:
        return await ctx.meta.update_object(ctx.target.bucket, ctx.target.key, change)
    return await ctx.meta.update_version(ctx.target.bucket, ctx.target.key, versions.parse_id(raw), change)


async def get_object_tagging(ctx: Context) -> web.Response:
    validate_key(ctx.target.key)
    from .object import readable_version
    rec = await readable_version(ctx, ctx.target.bucket, ctx.target.key, ctx.query.get("versionId"))
    resp = _xml(tagging.tagging_xml(tags_of(rec)))
    resp.headers.update(versions.header(rec))
    return resp


async def delete_object_tagging(ctx: Context) -> web.Response:
    validate_key(ctx.target.key)

    def untag(rec: dict) -> dict:
        rec.pop("tags", None)
        return rec
    rec = await _change(ctx, untag)
    return web.Response(status=204, headers=versions.header(rec))


# ----------------------------------------------------------------------------- buckets
async def _bucket_tags_ikey(ctx: Context) -> str:
    b = await ctx.meta.get_bucket(ctx.target.bucket)        # NoSuchBucket / AccessDenied
    return f"{BUCKET_TAGS}{ctx.target.bucket}/{b['vid']}"


async def put_bucket_tagging(ctx: Context) -> web.Response:
    tags = tagging.parse_tagging(await read_small_body(ctx.request, ctx.auth, limit=tagging.MAX_TAGGING_BODY),
                                 bucket=True)
    await ctx.meta.put_record(await _bucket_tags_ikey(ctx), {"tags": stored(tags)})
    return web.Response(status=204)


async def get_bucket_tagging(ctx: Context) -> web.Response:
    rec = await ctx.meta.get_record(await _bucket_tags_ikey(ctx))
    if rec is None:
        raise E.NoSuchTagSet(BucketName=ctx.target.bucket)
    return _xml(tagging.tagging_xml(tags_of(rec)))


async def delete_bucket_tagging(ctx: Context) -> web.Response:
    await ctx.meta.delete_record(await _bucket_tags_ikey(ctx))
    return web.Response(status=204)
