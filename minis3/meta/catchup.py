"""Pulling versions from peer metadata processes, and the catch-up at start.

A metadata process that starts pulls from its peers the versions it may have
missed and merges the newer ones before it serves reads (until then it
answers 503 ``CatchingUp``). The same pull serves a replica move
(``meta/move.py``: copy a partition, then catch up from its fenced old
holder) and an extra process's copy of the buckets table. A pull pages
through a peer's ``GET /v/scan`` with ``peer=1`` and keeps each version only
if it is newer than the one here (last writer wins).
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from ..core.hlc import physical_ms
from ..rpc import fastjson
from .responses import SCAN_LIMIT

if TYPE_CHECKING:
    from .server import MetaService

log = logging.getLogger("minis3.meta")

#: A restarting replica pulls the versions stamped since its own newest minus
#: this margin: longer than any write can take from its stamp to a replica
#: (request timeouts of 60 s, the commit window). A write older still that it
#: missed is on both other replicas, so every read quorum still sees it, and
#: the scrubber's anti-entropy brings it here too.
CATCH_UP_MARGIN_MS = 10 * 60 * 1000


class NoSource(Exception):
    """No peer could send a range (catch-up tries again)."""


def since_stamp(newest_ts: int) -> int | None:
    """The stamp a pull starts from, for a table whose newest version is
    ``newest_ts``: that minus the catch-up margin (None: an empty table
    pulls everything)."""
    newest_ms = physical_ms(newest_ts)
    return (newest_ms - CATCH_UP_MARGIN_MS) << 16 if newest_ms else None


class CatchUp:
    """The pulls of one metadata process (``svc``) from its peers."""

    def __init__(self, svc: MetaService):
        self.svc = svc
        self.stats: dict = {}             # the catch-up at start: versions merged, seconds

    async def start(self, app: web.Application) -> None:
        if not self.svc.serving:
            app["catch_up"] = asyncio.ensure_future(self.run())

    async def stop(self, app: web.Application) -> None:
        task = app.get("catch_up")
        if task is not None and not task.done():
            task.cancel()

    async def run(self) -> None:
        """Pull from peers the versions this replica may have missed and keep
        the newer ones; serve reads once every range it holds has been merged
        from one replica in another AZ. Runs at start.

        One replica per range is enough: a write acknowledged while this
        replica was down is on both others (W = 2 of the two left), and one
        acknowledged before is in this replica's own WAL. With data of its
        own, only the versions stamped since its newest (minus
        ``CATCH_UP_MARGIN_MS``) are sent; an empty replica pulls everything."""
        started, merged = time.monotonic(), 0
        since = since_stamp(self.svc.max_ts())
        session = self.svc.peer_session(timeout_s=30)
        try:
            while not self.svc.serving:
                try:
                    merged += await self._once(session, since)
                    self.svc.serving = True
                except NoSource as exc:
                    log.info("catch-up: %s; trying again", exc)
                    await asyncio.sleep(0.5)
        finally:
            await session.close()
        self.stats = {"versions_merged": merged, "seconds": round(time.monotonic() - started, 3),
                      "since_ms": since >> 16 if since else None}
        log.info("caught up from peers: %d newer versions merged in %.2f s (%s)", merged,
                 self.stats["seconds"],
                 "everything" if since is None else f"versions stamped since {CATCH_UP_MARGIN_MS // 60000} min "
                                                    "before this replica's newest")

    async def _once(self, session: aiohttp.ClientSession, since: int | None) -> int:
        svc = self.svc
        merged = await self.pull_from_any(session, list(svc.peers), "buckets", "", None, None)
        others = [u for u, az in svc.peers.items() if az != svc.az]
        if not others:
            return merged                     # the only AZ: nobody else holds these ranges
        for part in list(svc.objects.partitions):
            merged += await self.pull_from_any(session, others, "objects", part.lo, part.hi, since)
        return merged

    async def sync_buckets(self, session: aiohttp.ClientSession) -> None:
        """An extra metadata process keeps a copy of the buckets table (to check a
        write's bucket and owner, as a home replica does): frontends send it
        bucket changes as they happen; this pulls any it missed."""
        since = since_stamp(max((v.get("ts", 0) for v in self.svc.buckets.table.values()), default=0))
        try:
            await self.pull_from_any(session, list(self.svc.peers), "buckets", "", None, since)
        except NoSource:
            pass

    async def pull_from_any(self, session, peers: list[str], table: str, lo: str, hi: str | None,
                            since: int | None) -> int:
        """Merge [lo, hi) of ``table`` from the first of ``peers`` that holds all of it."""
        for peer in peers:
            try:
                return await self.pull(session, peer, table, lo, hi, since)
            except (aiohttp.ClientError, OSError, TimeoutError, KeyError, ValueError) as exc:
                log.debug("catch-up of %s [%r, %r) from %s failed: %s", table, lo, hi, peer, exc)
        raise NoSource(f"no peer could send {table} [{lo!r}, {hi!r})")

    async def pull(self, session: aiohttp.ClientSession, peer: str, table: str, lo: str = "",
                   hi: str | None = None, since: int | None = None) -> int:
        """Merge one peer's versions of ``table`` in [lo, hi) (those stamped since ``since``)."""
        merged, start, inclusive = 0, lo, True
        while True:
            params = {"table": table, "peer": "1", "limit": str(SCAN_LIMIT), "inclusive": str(int(inclusive)),
                      "start": start}
            if hi is not None:
                params["end"] = hi
            if since is not None:
                params["since_ts"] = str(since)
            async with session.get(f"{peer}/v/scan", params=params) as r:
                if r.status != 200:
                    raise ValueError(f"status {r.status}")
                body = await r.json(loads=fastjson.loads)
            merged += sum(await asyncio.gather(*(self._merge(table, k, v) for k, v in body["items"])))
            if body["exhausted"] or body.get("last") is None:
                return merged
            start, inclusive = body["last"], False

    async def _merge(self, table: str, k: str, v: dict) -> bool:
        """Keep a peer's version if newer (a page's versions are merged together,
        so they share the WAL's group commits)."""
        if table == "buckets":
            part = self.svc.buckets
        else:
            try:
                part = self.svc.object_partition(k, peer=True)
            except web.HTTPException:
                return False                      # no longer held here (moved away meanwhile)
        applied, _ = await self.svc.put_version(part, k, v)
        return applied
