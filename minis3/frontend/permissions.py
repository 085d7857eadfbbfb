"""A bucket's access settings: Put/Get/DeleteBucketPolicy, GetBucketPolicyStatus,
Put/Get/DeletePublicAccessBlock, Put/Get/DeleteBucketOwnershipControls, and the ACL calls
(Get/PutBucketAcl, Get/PutObjectAcl), with the ACL checks of PUTs and CreateBucket.

The settings are kept by :class:`minis3.frontend.authorize.AccessStore` (raw records of the
bucket's version); what they mean for a request is decided in minis3/core/access.py. A
deleted setting is stored as ``None`` (S3 then answers its "not found" error), since a
setting never written has S3's default for a new bucket (Block Public Access on,
BucketOwnerEnforced).

ACLs: with ``BucketOwnerEnforced`` (the default) ACLs are disabled as in S3: reading one
shows the owner's FULL_CONTROL, setting one fails with AccessControlListNotSupported, and a
PUT may carry only an ACL that grants the owner alone. With ACLs enabled (another ownership
setting), an ACL granting the owner alone is accepted; one granting anybody else answers
NotImplemented: minis3 does not keep ACL grants (a bucket policy grants the same).
"""
from __future__ import annotations

from aiohttp import web

from ..core import access, access_xml, versions
from ..core import errors as E
from ..core.policy import MAX_POLICY_BYTES, parse_policy
from .authorize import BucketState
from .body import read_small_body
from .context import Context

ACL_PUTS = frozenset({"PutObject", "CopyObject", "CreateMultipartUpload"})
_NOT_KEPT = "ACLs that grant access to anyone but the owner are not implemented by minis3: use a bucket policy"


def _xml(body: bytes, status: int = 200) -> web.Response:
    return web.Response(status=status, body=body, content_type="application/xml")


def _state(ctx: Context) -> BucketState:
    return ctx.buckets_seen[ctx.target.bucket]


def _owner(state: BucketState) -> tuple[str, str]:
    return access.canonical_id(state.access.owner), state.access.owner


# ----------------------------------------------------------------------------- bucket policy
async def put_bucket_policy(ctx: Context) -> web.Response:
    body = await read_small_body(ctx.request, ctx.auth, limit=4 * MAX_POLICY_BYTES)
    policy = parse_policy(body, ctx.target.bucket)
    block = _state(ctx).access.block
    if block is not None and block.block_public_policy and access.is_public(policy):
        raise E.AccessDenied("User is not authorized to perform: s3:PutBucketPolicy because public policies are "
                             "blocked by the BlockPublicPolicy block public access setting.")
    await ctx.fe.access.put(ctx.target.bucket, "policy", {"policy": body.decode("utf-8")})
    return web.Response(status=204)


def _policy_text(ctx: Context) -> str:
    text = (_state(ctx).settings.get("policy") or {}).get("policy")
    if not text:
        raise E.NoSuchBucketPolicy(BucketName=ctx.target.bucket)
    return text


async def get_bucket_policy(ctx: Context) -> web.Response:
    return web.Response(body=_policy_text(ctx).encode("utf-8"), content_type="application/json")


async def delete_bucket_policy(ctx: Context) -> web.Response:
    await ctx.fe.access.put(ctx.target.bucket, "policy", {"policy": None})
    return web.Response(status=204)


async def get_bucket_policy_status(ctx: Context) -> web.Response:
    _policy_text(ctx)
    return _xml(access_xml.policy_status_xml(_state(ctx).access.public_policy))


# ----------------------------------------------------------------------------- Block Public Access
async def put_public_access_block(ctx: Context) -> web.Response:
    block = access_xml.parse_public_access_block(await read_small_body(ctx.request, ctx.auth))
    await ctx.fe.access.put(ctx.target.bucket, "block", {"block": [block.block_public_acls, block.ignore_public_acls,
                                                                   block.block_public_policy,
                                                                   block.restrict_public_buckets]})
    return web.Response(status=200)


async def get_public_access_block(ctx: Context) -> web.Response:
    block = _state(ctx).access.block
    if block is None:
        raise E.NoSuchPublicAccessBlockConfiguration(BucketName=ctx.target.bucket)
    return _xml(access_xml.public_access_block_xml(block))


async def delete_public_access_block(ctx: Context) -> web.Response:
    await ctx.fe.access.put(ctx.target.bucket, "block", {"block": None})
    return web.Response(status=204)


# ----------------------------------------------------------------------------- Object Ownership
async def put_ownership_controls(ctx: Context) -> web.Response:
    setting = access_xml.parse_ownership_controls(await read_small_body(ctx.request, ctx.auth))
    await ctx.fe.access.put(ctx.target.bucket, "ownership", {"ownership": setting})
    return web.Response(status=200)


async def get_ownership_controls(ctx: Context) -> web.Response:
    if "ownership" in _state(ctx).settings and _state(ctx).settings["ownership"].get("ownership") is None:
        raise E.OwnershipControlsNotFoundError(BucketName=ctx.target.bucket)
    return _xml(access_xml.ownership_controls_xml(_state(ctx).access.ownership))


async def delete_ownership_controls(ctx: Context) -> web.Response:
    await ctx.fe.access.put(ctx.target.bucket, "ownership", {"ownership": None})
    return web.Response(status=204)


# ----------------------------------------------------------------------------- ACLs
def check_acl_headers(headers, state: BucketState) -> None:
    """The ACL a PUT (PutObject, CopyObject, CreateMultipartUpload) or an ACL call gives in
    its headers, against the bucket's settings (module doc)."""
    h = {k.lower(): v for k, v in headers.items()}
    owner_only = access.acl_headers_allowed(h, access.canonical_id(state.access.owner))
    if state.access.ownership == "BucketOwnerEnforced":
        if not owner_only:
            raise E.AccessControlListNotSupported()
        return
    if access.public_acl(h) and state.access.block is not None and state.access.block.block_public_acls:
        raise E.AccessDenied()
    if not owner_only:
        raise E.NotImplemented_(_NOT_KEPT)


async def _put_acl(ctx: Context) -> None:
    state = _state(ctx)
    if state.access.ownership == "BucketOwnerEnforced":
        raise E.AccessControlListNotSupported()
    body = await read_small_body(ctx.request, ctx.auth)
    if body:
        if not access_xml.acl_grants_owner_only(body, access.canonical_id(state.access.owner)):
            raise E.NotImplemented_(_NOT_KEPT)
    else:
        check_acl_headers(ctx.request.headers, state)


async def get_bucket_acl(ctx: Context) -> web.Response:
    return _xml(access_xml.owner_only_acl_xml(_owner(_state(ctx))))


async def put_bucket_acl(ctx: Context) -> web.Response:
    await _put_acl(ctx)
    return web.Response(status=200)


async def get_object_acl(ctx: Context) -> web.Response:
    from .object import readable_version
    rec = await readable_version(ctx, ctx.target.bucket, ctx.target.key, ctx.query.get("versionId"), payload=False)
    return web.Response(body=access_xml.owner_only_acl_xml(_owner(_state(ctx))), content_type="application/xml",
                        headers=versions.header(rec))


async def put_object_acl(ctx: Context) -> web.Response:
    from .object import readable_version
    rec = await readable_version(ctx, ctx.target.bucket, ctx.target.key, ctx.query.get("versionId"), payload=False)
    await _put_acl(ctx)
    return web.Response(status=200, headers=versions.header(rec))


def creation_settings(ctx: Context) -> str | None:
    """CreateBucket's ``x-amz-object-ownership`` (None: the default) once its ACL headers are
    checked against it: under BucketOwnerEnforced an ACL granting anyone but the owner is
    InvalidBucketAclWithObjectOwnership, as S3 answers."""
    h = {k.lower(): v for k, v in ctx.request.headers.items()}
    setting = h.get("x-amz-object-ownership")
    if setting is not None and setting not in access.OWNERSHIP:
        raise E.InvalidArgument("Invalid x-amz-object-ownership header", ArgumentName="x-amz-object-ownership",
                                ArgumentValue=setting)
    owner_only = access.acl_headers_allowed(h, access.canonical_id(ctx.account or ""))
    if not owner_only:
        if (setting or access.DEFAULT_OWNERSHIP) == "BucketOwnerEnforced":
            raise E.InvalidBucketAclWithObjectOwnership()
        raise E.NotImplemented_(_NOT_KEPT)
    return setting
