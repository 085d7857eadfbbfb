"""Service-level operations: ListBuckets."""
from __future__ import annotations

from aiohttp import web

from ..core import s3xml


async def list_buckets(ctx) -> web.Response:
    # The registry (the global region's bucket table) lists every region's buckets.
    buckets = await ctx.fe.registry.as_account(ctx.account).list_buckets()
    body = s3xml.list_buckets_xml([(b["name"], b["created_ms"], b.get("region")) for b in buckets], *ctx.owner)
    return web.Response(body=body, content_type="application/xml")
