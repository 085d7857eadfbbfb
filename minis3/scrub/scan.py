"""The scrubber's scan of the metadata: the three AZs' replicas of a table, read together in key order.

:func:`merged_scan` pages through each AZ's replica of a table (``_Cursor``,
``SCAN_PAGE`` versions a request; the objects table one partition at a time,
where the partition map says it is) and yields each key with every replica's
version of it, so the walk can compare them (anti-entropy) and check each
object's fragments. :func:`ec_units` says which fragment sets a version
points at.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque

from ..core.ratelimit import TokenBucket
from ..meta.replica import Replica, ReplicaError
from ..meta.index_router import IndexRouter

log = logging.getLogger("minis3.scrub")

SCAN_PAGE = 250           # metadata versions per replica request (each holds its replica's event loop)


def ec_units(rec: dict | None) -> list[tuple[int | None, dict, int]]:
    """The erasure-coded fragment sets a version points at, as (part index or
    None, ec, size): an object's one, or each part's of a multipart object."""
    if not rec or rec.get("deleted"):
        return []
    if rec.get("ec"):
        return [(None, rec["ec"], int(rec["size"]))]
    return [(i, p["ec"], int(p["size"])) for i, p in enumerate(rec.get("parts") or []) if p.get("ec")]


class _Cursor:
    """One AZ's replica of a table, scanned a page at a time. The objects
    table is scanned one partition at a time, each at the process the
    partition map names for it in this AZ (``router``); other tables at the
    AZ's home process."""

    def __init__(self, replica: Replica, table: str, router: IndexRouter | None = None,
                 pacer: TokenBucket | None = None):
        self.replica, self.table, self.router, self.pacer = replica, table, router, pacer
        self.buf: deque = deque()
        self.start, self.inclusive, self.done, self.failed = "", True, False, False

    async def fill(self) -> None:
        tries = 0
        while not self.buf and not self.done:
            r, end = self.replica, None
            if self.router is not None:
                await self.router.ensure()
                e = self.router.entry(self.start)
                r, end = self.router.replica_in(self.replica.az, self.start), e and e.hi
            params = {"table": self.table, "start": self.start, "inclusive": int(self.inclusive), "limit": SCAN_PAGE,
                      "inline": "marker"}     # inline payloads as markers: compared, not moved
            if end is not None:
                params["end"] = end
            try:
                body = await r.call("GET", "/v/scan", params=params)
            except ReplicaError as exc:
                tries += 1
                if exc.code == "WrongPartition" and self.router is not None and tries < 5:
                    self.router.learn(exc.body.get("map"))
                    continue                      # the range moved or split: again, with the new map
                log.warning("scan of %s on %s failed: %s", self.table, r.name, exc)
                self.done = self.failed = True
                return
            if self.pacer is not None:
                await self.pacer.take(SCAN_PAGE)         # pay for the page read: rest as the rate requires
            self.buf.extend(body["items"])
            if not (body["exhausted"] or not body["items"]):
                self.start, self.inclusive = body["items"][-1][0], False
            elif end is None:
                self.done = True
            else:
                self.start, self.inclusive = end, True      # on into the next partition


async def merged_scan(replicas: list[Replica], table: str, failed: list[bool] | None = None,
                      router: IndexRouter | None = None, keys_per_s: float = 0):
    """(key, [version per AZ's replica | None], [replica still scanning?]) in
    key order. At the end, ``failed`` (if given) says which replicas' scans
    broke off. ``replicas``: each AZ's home process; ``router``: where the
    objects table's ranges are."""
    # At most keys_per_s keys a second of the table (each replica's page counts), none saved up while idle.
    pacer = TokenBucket(keys_per_s * len(replicas), burst=0) if keys_per_s else None
    cursors = [_Cursor(r, table, router, pacer) for r in replicas]
    while True:
        await asyncio.gather(*(c.fill() for c in cursors))
        heads = [c.buf[0][0] for c in cursors if c.buf]
        if not heads:
            if failed is not None:
                failed[:] = [c.failed for c in cursors]
            return
        k = min(heads)
        versions = [c.buf.popleft()[1] if c.buf and c.buf[0][0] == k else None for c in cursors]
        yield k, versions, [not c.failed for c in cursors]
