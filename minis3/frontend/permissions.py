"""A bucket's access settings: Put/Get/DeleteBucketPolicy, GetBucketPolicyStatus,
Put/Get/DeletePublicAccessBlock, Put/Get/DeleteBucketOwnershipControls, and the ACL calls
(Get/PutBucketAcl, Get/PutObjectAcl), with the ACL checks of PUTs and CreateBucket.

The settings are kept by :class:`minis3.frontend.authorize.AccessStore` (raw records of the
bucket's version); what they mean for a request is decided in minis3/core/access.py. A
deleted setting is stored as ``None`` (S3 then answers its "not found" error), since a
setting never written has S3's default for a new bucket (Block Public Access on,
BucketOwnerEnforced).

ACLs (core/acl.py): with ``BucketOwnerEnforced`` (the default) ACLs are disabled as in S3:
reading one shows the owner's FULL_CONTROL, setting one fails with
AccessControlListNotSupported, and a PUT may carry only an ACL that grants the owner alone.
With ACLs enabled (``ObjectWriter``, ``BucketOwnerPreferred``), a bucket's ACL is one more
access setting (``acl``) and an object's is in its record (``acl``), both only when they grant
more than the owner's FULL_CONTROL; Block Public Access refuses a public one
(BlockPublicAcls) and the decision ignores its public grants (IgnorePublicAcls). Every object
belongs to the bucket's owner, whoever wrote it (minis3 keeps no per-object owner, as under
``BucketOwnerPreferred`` with ``bucket-owner-full-control``).
"""
from __future__ import annotations

from aiohttp import web

from ..core import access, access_xml, acl, versions
from ..core import errors as E
from ..core.policy import MAX_POLICY_BYTES, parse_policy
from .authorize import BucketState
from .body import read_small_body
from .context import Context

ACL_PUTS = frozenset({"PutObject", "CopyObject", "CreateMultipartUpload"})


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
    if setting == "BucketOwnerEnforced" and not acl.only_owner(_state(ctx).access.acl,
                                                                access.canonical_id(_state(ctx).access.owner)):
        raise E.InvalidBucketAclWithObjectOwnership()
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
def _grants_allowed(grants: list | None, state: BucketState) -> None:
    """Block Public Access's BlockPublicAcls: no public ACL is taken."""
    block = state.access.block
    if acl.is_public(grants) and block is not None and block.block_public_acls:
        raise E.AccessDenied("Access Denied: Block Public Access (BlockPublicAcls) refuses a public ACL")


def check_acl_headers(headers, state: BucketState) -> list | None:
    """The ACL a PUT (PutObject, CopyObject, CreateMultipartUpload, a form upload) gives its
    new object in its headers, checked against the bucket's settings (module doc): None for
    none (or, with ACLs disabled, one that grants the owner alone)."""
    h = {k.lower(): v for k, v in headers.items()}
    owner_id = access.canonical_id(state.access.owner)
    if state.access.ownership == "BucketOwnerEnforced":
        if not access.acl_headers_allowed(h, owner_id):
            raise E.AccessControlListNotSupported()
        return None
    grants = acl.from_headers(h, owner_id, owner_id)
    _grants_allowed(grants, state)
    return None if grants is None or grants == acl.owner_only(owner_id) else grants


async def _acl_of_request(ctx: Context, state: BucketState) -> list:
    """A Put*Acl's ACL: its AccessControlPolicy body, else its headers (S3 takes one or the other)."""
    if state.access.ownership == "BucketOwnerEnforced":
        raise E.AccessControlListNotSupported()
    owner_id = access.canonical_id(state.access.owner)
    body = await read_small_body(ctx.request, ctx.auth, limit=acl.MAX_BODY)
    h = ctx.lowered_headers()
    if body:
        if "x-amz-acl" in h or any(g in h for g in acl.HEADERS):
            raise E.UnexpectedContent("This request does not support content")
        _, grants = acl.parse_xml(body)
    else:
        grants = acl.from_headers(h, owner_id, owner_id)
        if grants is None:
            raise E.MissingSecurityHeader("Your request was missing a required header", MissingHeaderName="x-amz-acl")
    _grants_allowed(grants, state)
    return grants


def _acl_xml(state: BucketState, grants) -> web.Response:
    owner = _owner(state)
    return _xml(acl.to_xml(owner, list(grants) if grants and access.acls_count(state.access) else
                           acl.owner_only(owner[0])))


async def get_bucket_acl(ctx: Context) -> web.Response:
    return _acl_xml(_state(ctx), _state(ctx).access.acl)


async def put_bucket_acl(ctx: Context) -> web.Response:
    grants = await _acl_of_request(ctx, _state(ctx))
    await ctx.fe.access.put(ctx.target.bucket, "acl", {"grants": [list(g) for g in grants]})
    return web.Response(status=200)


async def get_object_acl(ctx: Context) -> web.Response:
    from .object import readable_version
    rec = await readable_version(ctx, ctx.target.bucket, ctx.target.key, ctx.query.get("versionId"), payload=False)
    resp = _acl_xml(_state(ctx), rec.get("acl"))
    resp.headers.update(versions.header(rec))
    return resp


async def put_object_acl(ctx: Context) -> web.Response:
    from .tagging import _change
    grants = await _acl_of_request(ctx, _state(ctx))
    owner_only = grants == acl.owner_only(access.canonical_id(_state(ctx).access.owner))

    def set_acl(rec: dict) -> dict:
        rec.pop("acl", None)
        if not owner_only:
            rec["acl"] = [list(g) for g in grants]
        return rec
    rec = await _change(ctx, set_acl)
    return web.Response(status=200, headers=versions.header(rec))


def creation_settings(ctx: Context) -> tuple[str | None, list | None]:
    """CreateBucket's ``x-amz-object-ownership`` (None: the default) and the bucket's ACL from
    its headers (None: the owner's alone), checked as S3 checks them: under
    BucketOwnerEnforced an ACL granting anyone but the owner is
    InvalidBucketAclWithObjectOwnership; a public ACL meets the new bucket's Block Public
    Access."""
    h = ctx.lowered_headers()
    setting = h.get("x-amz-object-ownership")
    if setting is not None and setting not in access.OWNERSHIP:
        raise E.InvalidArgument("Invalid x-amz-object-ownership header", ArgumentName="x-amz-object-ownership",
                                ArgumentValue=setting)
    owner_id = access.canonical_id(ctx.account or "")
    if (setting or access.DEFAULT_OWNERSHIP) == "BucketOwnerEnforced":
        if not access.acl_headers_allowed(h, owner_id):
            raise E.InvalidBucketAclWithObjectOwnership()
        return setting, None
    grants = acl.from_headers(h, owner_id)
    if acl.is_public(grants):          # a new bucket has Block Public Access on (BlockPublicAcls)
        raise E.AccessDenied("Access Denied: Block Public Access (BlockPublicAcls) refuses a public ACL")
    return setting, None if grants is None or grants == acl.owner_only(owner_id) else grants
