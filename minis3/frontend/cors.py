"""CORS: Put/Get/DeleteBucketCors, a browser's preflight ``OPTIONS``, and the
``Access-Control-*`` headers of actual responses. The rules and their matching are pure
(minis3/core/cors.py); a bucket's rules are one of its access settings (``cors``, kept by
frontend/authorize.AccessStore), so they cost no read of their own.

A preflight is unsigned (a browser sends no credentials with it) and is answered before any
signature check: from the bucket's rules alone, as S3 does. An actual request's CORS headers
are set on ``request[CORS_HEADERS]`` by the authoriser once its bucket is known, and written by :func:`add_headers`
(aiohttp's ``on_response_prepare``) on whatever answer it gets, errors included: a page must
be able to read an S3 error too.
"""
from __future__ import annotations

from aiohttp import web

from ..core import cors
from ..core import errors as E
from .authorize import CORS_HEADERS
from .body import read_small_body
from .context import Context

async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in request.get(CORS_HEADERS, {}).items():
        response.headers.setdefault(name, value)


async def preflight(fe, bucket: str | None, request: web.Request) -> web.Response:
    """``OPTIONS /bucket/key``: 200 with what the browser may do, or 403 AccessForbidden."""
    if not bucket:
        raise E.BadRequest("Insufficient information. Origin request header needed.") \
            if "Origin" not in request.headers else E.AccessForbidden("CORSResponse: Bucket not found")
    state = await fe.access.bucket(bucket)
    headers = cors.preflight(state.cors, {k.lower(): v for k, v in request.headers.items()})
    return web.Response(status=200, headers=headers)


async def put_bucket_cors(ctx: Context) -> web.Response:
    rules = cors.parse_cors(await read_small_body(ctx.request, ctx.auth, limit=cors.MAX_BODY))
    await ctx.fe.access.put(ctx.target.bucket, "cors", {"rules": cors.to_record(rules)})
    return web.Response(status=200)


async def get_bucket_cors(ctx: Context) -> web.Response:
    rules = ctx.buckets_seen[ctx.target.bucket].cors
    if not rules:
        raise E.NoSuchCORSConfiguration(BucketName=ctx.target.bucket)
    return web.Response(body=cors.cors_xml(rules), content_type="application/xml")


async def delete_bucket_cors(ctx: Context) -> web.Response:
    await ctx.fe.access.put(ctx.target.bucket, "cors", {"rules": None})
    return web.Response(status=204)
