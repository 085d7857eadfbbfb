"""Lifecycle: Put/Get/DeleteBucketLifecycleConfiguration, and the headers that tell a client
when a rule will act on what it reads or writes (``x-amz-expiration`` on PUT, CopyObject,
CompleteMultipartUpload, GET and HEAD;
``x-amz-abort-date`` and ``x-amz-abort-rule-id`` on CreateMultipartUpload).

The document and every decision are pure (minis3/core/lifecycle.py). A bucket's rules are one of
its access settings (``lifecycle``, kept by frontend/authorize.AccessStore, like ``cors``), so
the headers cost no read of their own. The rules are *run* by the scrubber process
(minis3/scrub/lifecycle.py), not here.
"""
from __future__ import annotations

from aiohttp import web

from ..core import errors as E
from ..core import lifecycle
from .body import read_small_body
from .context import Context


def rules_of(ctx: Context, bucket: str) -> list[lifecycle.Rule]:
    """The bucket's rules as the authoriser read them with its other settings ([] if none)."""
    state = ctx.buckets_seen.get(bucket)
    raw = (state.settings.get("lifecycle") or {}).get("rules") if state is not None else None
    return lifecycle.from_record(raw) if raw else []


MINIMUM_SIZE_HEADER = "x-amz-transition-default-minimum-object-size"


async def put_bucket_lifecycle(ctx: Context) -> web.Response:
    minimum = lifecycle.parse_minimum_size(ctx.request.headers.get(MINIMUM_SIZE_HEADER))
    rules = lifecycle.parse_lifecycle(await read_small_body(ctx.request, ctx.auth, limit=lifecycle.MAX_BODY))
    await ctx.fe.access.put(ctx.target.bucket, "lifecycle", {"rules": lifecycle.to_record(rules),
                                                              "minimum_size": minimum})
    return web.Response(status=200, headers={MINIMUM_SIZE_HEADER: minimum})


async def get_bucket_lifecycle(ctx: Context) -> web.Response:
    rules = rules_of(ctx, ctx.target.bucket)
    if not rules:
        raise E.NoSuchLifecycleConfiguration(BucketName=ctx.target.bucket)
    state = ctx.buckets_seen[ctx.target.bucket]
    minimum = state.settings["lifecycle"].get("minimum_size") or lifecycle.MINIMUM_SIZES[0]
    return web.Response(body=lifecycle.lifecycle_xml(rules), content_type="application/xml",
                        headers={MINIMUM_SIZE_HEADER: minimum})


async def delete_bucket_lifecycle(ctx: Context) -> web.Response:
    await ctx.fe.access.put(ctx.target.bucket, "lifecycle", {"rules": None})
    return web.Response(status=204)


def expiration_headers(ctx: Context, bucket: str, key: str, rec: dict) -> dict[str, str]:
    """``x-amz-expiration`` for the current version ``rec`` of ``key``, if a rule expires it
    (and the date can be written: core/lifecycle.header_value never raises, as a PUT has
    committed by the time this is asked)."""
    rules = rules_of(ctx, bucket)
    exp = lifecycle.expiration(rules, key, rec, ctx.fe.topo.lifecycle.day_seconds) if rules else None
    value = lifecycle.header_value(*exp) if exp else None
    return {"x-amz-expiration": value} if value else {}


def abort_headers(ctx: Context, bucket: str, key: str, initiated_ms: int) -> dict[str, str]:
    """``x-amz-abort-date`` and ``x-amz-abort-rule-id`` (URL-encoded) for a new upload, if a
    rule aborts it (core/lifecycle.abort_header_values: never raises, the upload record exists)."""
    rules = rules_of(ctx, bucket)
    due = lifecycle.abort_date(rules, key, initiated_ms / 1000, ctx.fe.topo.lifecycle.day_seconds) if rules else None
    return lifecycle.abort_header_values(*due) if due else {}
