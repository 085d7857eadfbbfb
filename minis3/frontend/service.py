"""Service-level operations: ListBuckets."""
from __future__ import annotations

from aiohttp import web

from ..core import errors as E
from ..core import s3xml
from ..core.numbers import parse_int
from .context import Context
from .params import continuation_token, token_marker

#: ListBuckets' page size when paging was asked for (prefix, bucket-region or
#: continuation-token) without max-buckets; also the largest max-buckets.
MAX_BUCKETS = 10_000


def _max_buckets(q) -> int | None:
    raw = q.get("max-buckets")
    if raw is None:
        return None
    n = parse_int(raw)
    if n is None or not -2**31 <= n < 2**31:
        raise E.InvalidArgument("Provided max-buckets not an integer or within integer range",
                                ArgumentName="max-buckets", ArgumentValue=raw)
    if not 1 <= n <= MAX_BUCKETS:
        raise E.InvalidArgument(f"Argument max-buckets must be an integer between 1 and {MAX_BUCKETS}",
                                ArgumentName="max-buckets", ArgumentValue=raw)
    return n


async def list_buckets(ctx: Context) -> web.Response:
    """Every bucket of the account, or one page of them. As S3: without
    max-buckets, prefix, bucket-region and continuation-token the answer is
    the whole list; with any of them it is paged (MAX_BUCKETS a page unless
    max-buckets says less), ContinuationToken naming the next page."""
    q = ctx.query
    max_buckets = _max_buckets(q)
    prefix, region, token = q.get("prefix"), q.get("bucket-region"), q.get("continuation-token")
    paged = max_buckets is not None or prefix is not None or region is not None or token is not None
    # The registry (the global region's bucket table) lists every region's buckets, sorted by name.
    buckets = await ctx.fe.buckets.registry.as_account(ctx.account).list_buckets()
    after = token_marker(token) if token else ""
    chosen = [b for b in buckets
              if b["name"] > after and b["name"].startswith(prefix or "")
              and (region is None or b.get("region", ctx.fe.topo.registry_region) == region)]
    next_token = None
    if paged and len(chosen) > (max_buckets or MAX_BUCKETS):
        chosen = chosen[:max_buckets or MAX_BUCKETS]
        next_token = continuation_token(chosen[-1]["name"])
    body = s3xml.list_buckets_xml([(b["name"], b["created_ms"], b.get("region")) for b in chosen], *ctx.owner,
                                  continuation_token=next_token, prefix=prefix)
    return web.Response(body=body, content_type="application/xml")
