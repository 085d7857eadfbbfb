"""Object Lock: Put/GetObjectLockConfiguration, Put/GetObjectRetention,
Put/GetObjectLegalHold, and what PutObject, CopyObject, CreateMultipartUpload,
DeleteObject(s) and PutBucketVersioning ask of it. The rules are pure
(minis3/core/objectlock.py); here is where they are read and written.

**Where the bucket's configuration lives.** As one of the bucket's access settings,
``lock`` (kept by frontend/authorize.AccessStore, like ``cors``), not in the bucket record:

* the authoriser reads a bucket's settings for every request already, so applying the
  default retention to a new version costs no read of its own;
* the setting is a record of the bucket's version (``ACCESS + bucket/vid/lock``): a bucket
  deleted and created again under the same name starts without Object Lock;
* the bucket record is written by the registry and copied between regions
  (frontend/namespace.py); a setting of the bucket's own region needs none of that.
Its cost: another frontend sees a new configuration within ``AccessStore.TTL`` (1 s), as
for a policy. That delay never weakens a protection already given: a version's retention
and legal hold are in the version's own record (``lock``, ``hold``), and the decision to
remove a version reads that record, here and again in the metadata coordinator
(meta/versioned.py, ``delete_version``), atomically with the removal. The setting is only
ever written with ``enabled: true``: there is no call that disables Object Lock.

**Changing a version's retention or legal hold** rewrites the version's record in place
(a compare-and-set of the head, or of its row: MetaClient.update_object / update_version,
as tagging does), so it races neither a new version of the key nor a removal.
"""
from __future__ import annotations

import time

from aiohttp import web

from ..core import errors as E
from ..core import objectlock as OL
from ..core import versions
from ..core.names import validate_key
from . import authorize
from .body import read_small_body
from .context import Context


def _now_ms() -> int:
    return int(time.time() * 1000)


def _xml(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/xml")


def config_of(ctx: Context, bucket: str | None = None) -> OL.LockConfiguration | None:
    """The bucket's Object Lock configuration (None: not enabled), as the authoriser read it."""
    state = ctx.buckets_seen.get(bucket or ctx.target.bucket)
    return OL.from_record((state.settings if state is not None else {}).get("lock"))


def _require_lock(ctx: Context) -> OL.LockConfiguration:
    config = config_of(ctx)
    if config is None:
        raise E.InvalidRequest(OL.MISSING_CONFIGURATION)
    return config


def bypass(ctx: Context, key: str) -> bool:
    """Does this request override GOVERNANCE retention: it asks to
    (``x-amz-bypass-governance-retention: true``) and its caller is allowed
    ``s3:BypassGovernanceRetention`` on the key (the bucket owner is)? Decided only when
    asked, so a caller without the permission may still delete what no retention holds."""
    return OL.wants_bypass(ctx.lowered_headers()) and authorize.allowed(ctx, OL.BYPASS_ACTION, key)


# ----------------------------------------------------------------------------- new versions
def new_version_fields(ctx: Context, headers: dict[str, str] | None = None, key: str | None = None) -> dict:
    """The ``lock`` / ``hold`` fields of the version this request makes (PutObject,
    CopyObject, PostObject: ``headers`` are its form's fields, ``key`` its key;
    CreateMultipartUpload keeps them in its upload record): its headers, else the bucket's
    default retention. Setting a retention or a legal hold by header needs
    s3:PutObjectRetention / s3:PutObjectLegalHold too, as in AWS. A PutObject that gets
    either must carry Content-MD5 or a checksum (core/objectlock.check_integrity_header)."""
    headers = ctx.lowered_headers() if headers is None else headers
    fields = OL.new_version_fields(headers, config_of(ctx), _now_ms())
    if ctx.operation == "PutObject":
        OL.check_integrity_header(headers, fields)
    key = ctx.target.key if key is None else key
    if OL.MODE_HEADER in headers and not authorize.allowed(ctx, "s3:PutObjectRetention", key):
        raise E.AccessDenied()
    if OL.HOLD_HEADER in headers and not authorize.allowed(ctx, "s3:PutObjectLegalHold", key):
        raise E.AccessDenied()
    return fields


def explicit_fields(ctx: Context) -> dict:
    """CreateMultipartUpload: the fields its headers ask for (checked now, as S3 does), kept
    in the upload record; the default retention is given at completion
    (:func:`completed_fields`), when the version is made."""
    headers = ctx.lowered_headers()
    fields = new_version_fields(ctx, headers)
    if OL.MODE_HEADER not in headers:
        fields.pop("lock", None)
    return fields


def check_part_integrity(ctx: Context, up_rec: dict) -> None:
    """UploadPart of an upload whose object will get a retention or a legal hold (its own,
    or the bucket's default retention): Content-MD5 or a checksum is required, as on
    PutObject (AWS's UploadPart: "required if object lock parameters are specified")."""
    OL.check_integrity_header(ctx.lowered_headers(), completed_fields(ctx, up_rec))


def completed_fields(ctx: Context, up_rec: dict) -> dict:
    """CompleteMultipartUpload: the upload's own fields, else the bucket's default retention."""
    out = {k: up_rec[k] for k in ("lock", "hold") if up_rec.get(k)}
    config = config_of(ctx)
    if "lock" not in out and config is not None and config.rule is not None:
        out["lock"] = OL.lock_field(config.rule.mode, config.rule.until(_now_ms()))
    return out


# ----------------------------------------------------------------------------- removing a version
async def check_version_removal(ctx: Context, key: str, version_id: str, may_bypass: bool) -> None:
    """The frontend's check before a DELETE ?versionId= (the metadata coordinator checks
    again, atomically with the removal): 403 AccessDenied if the version is protected. Only
    in a bucket with Object Lock: elsewhere no version has a retention or a hold."""
    if config_of(ctx) is None:
        return
    try:
        rec = await ctx.meta.get_version(ctx.target.bucket, key, version_id)
    except E.NoSuchVersion:
        return
    OL.check_removal(rec, _now_ms(), may_bypass)


# ----------------------------------------------------------------------------- the bucket's configuration
async def create_bucket_lock(ctx: Context) -> None:
    """CreateBucket with ``x-amz-bucket-object-lock-enabled: true``: versioning on, then
    the configuration (no default retention). Versioning first: a crash between leaves a
    versioned bucket without Object Lock, never the reverse."""
    await ctx.meta.set_versioning(ctx.target.bucket, versions.ENABLED)
    await ctx.fe.access.put(ctx.target.bucket, "lock", OL.to_record(OL.LockConfiguration()))


def wants_lock_at_creation(ctx: Context) -> bool:
    raw = ctx.request.headers.get(OL.BUCKET_ENABLED_HEADER)
    if raw is None:
        return False
    if raw.strip().lower() not in ("true", "false"):
        raise E.InvalidArgument("Invalid value for x-amz-bucket-object-lock-enabled",
                                ArgumentName=OL.BUCKET_ENABLED_HEADER, ArgumentValue=raw)
    return raw.strip().lower() == "true"


def check_versioning_change(ctx: Context, status: str) -> None:
    """PutBucketVersioning: a bucket with Object Lock keeps versioning Enabled (409)."""
    if status != versions.ENABLED and config_of(ctx) is not None:
        raise E.InvalidBucketState("An Object Lock configuration is present on this bucket, so the versioning "
                                   "state cannot be changed.")


async def put_configuration(ctx: Context) -> web.Response:
    config = OL.parse_configuration(await read_small_body(ctx.request, ctx.auth, limit=OL.MAX_BODY))
    if config_of(ctx) is None and await ctx.meta.versioning(ctx.target.bucket) != versions.ENABLED:
        raise E.InvalidBucketState("Versioning must be 'Enabled' on the bucket to apply a Object Lock "
                                   "configuration")
    await ctx.fe.access.put(ctx.target.bucket, "lock", OL.to_record(config))
    return web.Response(status=200)


async def get_configuration(ctx: Context) -> web.Response:
    config = config_of(ctx)
    if config is None:
        raise E.ObjectLockConfigurationNotFoundError(BucketName=ctx.target.bucket)
    return _xml(OL.configuration_xml(config))


# ----------------------------------------------------------------------------- a version's retention and hold
async def _change(ctx: Context, change) -> dict:
    """Rewrite the current version's record, or the one ``?versionId=`` names, in place."""
    raw = ctx.query.get("versionId")
    if raw is None:
        return await ctx.meta.update_object(ctx.target.bucket, ctx.target.key, change)
    return await ctx.meta.update_version(ctx.target.bucket, ctx.target.key, versions.parse_id(raw), change)


async def _version(ctx: Context) -> dict:
    from .object import readable_version
    return await readable_version(ctx, ctx.target.bucket, ctx.target.key, ctx.query.get("versionId"), payload=False)


async def put_retention(ctx: Context) -> web.Response:
    validate_key(ctx.target.key)
    _require_lock(ctx)
    new = OL.parse_retention(await read_small_body(ctx.request, ctx.auth, limit=OL.MAX_BODY), _now_ms())
    may_bypass = bypass(ctx, ctx.target.key)

    def retain(rec: dict) -> dict:
        # Judged on the record as it is at the compare-and-set, not as first read.
        OL.check_retention_change(rec.get("lock"), new, _now_ms(), may_bypass)
        rec.pop("lock", None)
        if new is not None:
            rec["lock"] = new
        return rec
    rec = await _change(ctx, retain)
    return web.Response(status=200, headers=versions.header(rec))


async def get_retention(ctx: Context) -> web.Response:
    validate_key(ctx.target.key)
    _require_lock(ctx)
    rec = await _version(ctx)
    if not rec.get("lock"):
        raise E.NoSuchObjectLockConfiguration(Key=ctx.target.key)
    return _xml(OL.retention_xml(rec["lock"]))


async def put_legal_hold(ctx: Context) -> web.Response:
    validate_key(ctx.target.key)
    _require_lock(ctx)
    on = OL.parse_legal_hold(await read_small_body(ctx.request, ctx.auth, limit=OL.MAX_BODY))

    def hold(rec: dict) -> dict:
        rec.pop("hold", None)
        if on:
            rec["hold"] = True
        return rec
    rec = await _change(ctx, hold)
    return web.Response(status=200, headers=versions.header(rec))


async def get_legal_hold(ctx: Context) -> web.Response:
    """A version with no hold answers ``OFF`` (the record keeps no ``hold`` field then, so a
    hold turned off and one never set look the same)."""
    validate_key(ctx.target.key)
    _require_lock(ctx)
    rec = await _version(ctx)
    return _xml(OL.legal_hold_xml(OL.held(rec)))
