"""Bucket operations: CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation,
Get/PutBucketVersioning, ListObjects (v1), ListObjectsV2 and ListObjectVersions."""
from __future__ import annotations

from aiohttp import web

from ..core import errors as E
from ..core import access, regions, s3xml, versions
from ..core.names import MAX_KEY_BYTES, validate_bucket_name
from ..core.numbers import parse_int
from . import objectlock, permissions
from .body import read_small_body
from .context import Context
from .params import continuation_token, encoding_type, token_marker


def _xml(body: bytes, status: int = 200) -> web.Response:
    return web.Response(status=status, body=body, content_type="application/xml")


async def create(ctx: Context) -> web.Response:
    name = ctx.target.bucket
    validate_bucket_name(name)
    ownership, grants = permissions.creation_settings(ctx)
    constraint = s3xml.parse_create_bucket(await read_small_body(ctx.request, ctx.auth))
    region = regions.creation_region(constraint, here=ctx.fe.topo.region, regions=ctx.fe.topo.region_names)
    lock = objectlock.wants_lock_at_creation(ctx)
    if lock and region != ctx.fe.topo.region:
        raise E.NotImplemented_("minis3 enables Object Lock only on a bucket of the region it is created from")
    # (Creating one's own bucket again may succeed and leave it as it is: then no Object Lock.)
    new = lock and await ctx.fe.buckets.region_of(name) is None
    ctx.fe.access.forget(name)
    await ctx.fe.buckets.create(ctx.account, name, region)
    if new:
        await objectlock.create_bucket_lock(ctx)
    if ownership is not None and ownership != access.DEFAULT_OWNERSHIP and region == ctx.fe.topo.region:
        await ctx.fe.access.put(name, "ownership", {"ownership": ownership})
        if grants:
            await ctx.fe.access.put(name, "acl", {"grants": [list(g) for g in grants]})
    resp = web.Response(status=200)
    resp.headers["Location"] = "/" + name
    return resp


async def head(ctx: Context) -> web.Response:
    b = await ctx.meta.get_bucket(ctx.target.bucket)
    resp = web.Response(status=200)
    resp.headers["x-amz-bucket-region"] = b.get("region", ctx.fe.topo.region)
    return resp


async def delete(ctx: Context) -> web.Response:
    ctx.fe.access.forget(ctx.target.bucket)
    await ctx.fe.buckets.delete(ctx.meta.account, ctx.target.bucket)
    return web.Response(status=204)


async def get_location(ctx: Context) -> web.Response:
    """Answered by any region's endpoint, from the bucket registry (no redirect)."""
    b = await ctx.fe.buckets.registry.as_account(ctx.account).bucket_record(ctx.target.bucket)
    if b is None:
        raise E.NoSuchBucket(BucketName=ctx.target.bucket)
    if b.get("owner") != ctx.meta.account:
        raise E.AccessDenied()
    return _xml(s3xml.location_xml(b.get("region", ctx.fe.topo.region)))


async def get_versioning(ctx: Context) -> web.Response:
    # (Never enabled: S3 answers an empty configuration.)
    return _xml(s3xml.versioning_xml(await ctx.meta.versioning(ctx.target.bucket)))


async def put_versioning(ctx: Context) -> web.Response:
    """Enabled ⇄ Suspended; a bucket never goes back to unversioned (S3 has no
    such state to send). MFA delete is not implemented: asking for it is
    refused, never ignored."""
    status, mfa = s3xml.parse_versioning(await read_small_body(ctx.request, ctx.auth))
    if mfa == "Enabled" or "x-amz-mfa" in ctx.request.headers:
        raise E.NotImplemented_("MFA delete is not implemented by minis3")
    cur = await ctx.meta.versioning(ctx.target.bucket)
    if status is None:
        raise E.MalformedXML()
    objectlock.check_versioning_change(ctx, status)
    if status != cur:
        await ctx.meta.set_versioning(ctx.target.bucket, status)
    return web.Response(status=200)


def _max_keys(q) -> int:
    raw = q.get("max-keys", "1000")
    n = parse_int(raw)
    if n is None or n > 2**31 - 1:
        raise E.InvalidArgument("Provided max-keys not an integer or within integer range",
                                ArgumentName="max-keys", ArgumentValue=raw)
    if n < 0:
        raise E.InvalidArgument("Argument maxKeys must be an integer between 0 and 2147483647",
                                ArgumentName="maxKeys", ArgumentValue=raw)
    return min(n, 1000)


def _entries(raw: list) -> list[s3xml.ListEntry]:
    out = []
    for key, r in raw:
        ck = r.get("checksum") or {}
        alg = ck.get("alg")
        out.append(s3xml.ListEntry(key=key, last_modified_ms=r["mtime"], etag=r["etag"], size=r["size"],
                                   storage_class=r.get("storage_class") or "STANDARD", checksum_algorithm=alg,
                                   checksum_type=ck.get("type", "FULL_OBJECT") if alg else None))
    return out


def too_long_for_a_key(prefix: str) -> bool:
    """No key starts with a prefix longer than a key can be: its listing is
    empty (and never sent to the metadata service, whose scans carry keys)."""
    return len(prefix.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES


def clip_marker(marker: str) -> str:
    """A marker cut to the longest start of it that a key could be: the keys
    after the two are the same ones (no key lies between them, since it
    would be longer than MAX_KEY_BYTES), and the cut one fits in a scan."""
    data = marker.encode("utf-8", "surrogatepass")
    if len(data) <= MAX_KEY_BYTES:
        return marker
    return data[:MAX_KEY_BYTES].decode("utf-8", "ignore")


EMPTY_PAGE = {"entries": [], "prefixes": [], "truncated": False, "next_marker": None}


async def _page(ctx: Context, prefix: str, delimiter: str, marker: str, max_keys: int) -> dict:
    if too_long_for_a_key(prefix):
        await ctx.meta.get_bucket(ctx.target.bucket)          # NoSuchBucket / AccessDenied still apply
        return dict(EMPTY_PAGE)
    return await ctx.meta.list_objects(ctx.target.bucket, prefix=prefix, delimiter=delimiter,
                                       marker=clip_marker(marker), max_keys=max_keys, heads=True)


async def list_objects_v1(ctx: Context) -> web.Response:
    q = ctx.query
    prefix, delimiter, marker = q.get("prefix", ""), q.get("delimiter", ""), q.get("marker", "")
    max_keys, enc = _max_keys(q), encoding_type(q)
    page = await _page(ctx, prefix, delimiter, marker, max_keys)
    # A page cut short by tombstones alone has nothing a v1 client can use as
    # its next marker (NextMarker is only sent with a delimiter): go on.
    while page["truncated"] and not page["entries"] and not page["prefixes"] and page["next_marker"]:
        page = await _page(ctx, prefix, delimiter, page["next_marker"], max_keys)
    body = s3xml.list_objects_v1_xml(
        bucket=ctx.target.bucket, prefix=prefix, marker=marker, delimiter=delimiter, max_keys=max_keys,
        is_truncated=page["truncated"], entries=_entries(page["entries"]), common_prefixes=page["prefixes"],
        next_marker=page["next_marker"], encoding_type=enc, owner=ctx.owner)
    return _xml(body)


async def list_objects_v2(ctx: Context) -> web.Response:
    q = ctx.query
    prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
    max_keys, enc = _max_keys(q), encoding_type(q)
    token = q.get("continuation-token")
    start_after = q.get("start-after", "")
    marker = token_marker(token) if token is not None else start_after
    page = await _page(ctx, prefix, delimiter, marker, max_keys)
    entries = _entries(page["entries"])
    body = s3xml.list_objects_v2_xml(
        bucket=ctx.target.bucket, prefix=prefix, delimiter=delimiter, max_keys=max_keys,
        is_truncated=page["truncated"], entries=entries, common_prefixes=page["prefixes"],
        continuation_token=token, next_continuation_token=continuation_token(page["next_marker"]) if page["truncated"] else None,
        start_after=start_after or None, key_count=len(entries) + len(page["prefixes"]), encoding_type=enc,
        fetch_owner=q.get("fetch-owner") == "true", owner=ctx.owner)
    return _xml(body)


async def list_object_versions(ctx: Context) -> web.Response:
    q = ctx.query
    prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
    key_marker, vid_marker = q.get("key-marker", ""), q.get("version-id-marker", "")
    max_keys, enc = _max_keys(q), encoding_type(q)
    if vid_marker and not key_marker:
        raise E.InvalidArgument("A version-id marker cannot be specified without a key marker.",
                                ArgumentName="version-id-marker", ArgumentValue=vid_marker)
    if vid_marker:
        versions.parse_id(vid_marker)
    if too_long_for_a_key(prefix):
        await ctx.meta.get_bucket(ctx.target.bucket)
        page = {"entries": [], "prefixes": [], "truncated": False, "next_key_marker": None,
                "next_version_marker": None}
    else:
        page = await ctx.meta.list_versions(ctx.target.bucket, prefix=prefix, delimiter=delimiter,
                                            key_marker=clip_marker(key_marker), version_marker=vid_marker,
                                            max_keys=max_keys)
    entries = []
    for key, r, latest in page["entries"]:
        ck = r.get("checksum") or {}
        alg = ck.get("alg") if not r.get("marker") else None
        entries.append(s3xml.VersionEntry(
            key=key, version_id=versions.id_of(r), is_latest=latest, last_modified_ms=r["mtime"],
            marker=bool(r.get("marker")), etag=r.get("etag", ""), size=r.get("size", 0), checksum_algorithm=alg,
            storage_class=r.get("storage_class") or "STANDARD",
            checksum_type=ck.get("type", "FULL_OBJECT") if alg else None))
    body = s3xml.list_versions_xml(
        bucket=ctx.target.bucket, prefix=prefix, delimiter=delimiter, key_marker=key_marker,
        version_id_marker=vid_marker, max_keys=max_keys, is_truncated=page["truncated"], entries=entries,
        common_prefixes=page["prefixes"], next_key_marker=page["next_key_marker"],
        next_version_id_marker=page["next_version_marker"], encoding_type=enc, owner=ctx.owner)
    return _xml(body)
