"""Where a key's metadata replicas are: the partition map, cached by its users.

Frontends and the scrubber keep a copy of the partition map (``meta/pmap.py``)
and send each object request to the processes it names for the key's range,
one per AZ, the way S3's front end or a Bigtable client caches where tablets
live. The copy can be stale: when a range's replica has moved, the process
that no longer holds it answers 421 ``WrongPartition`` with its own (newer)
map; the caller adopts that map and asks the new holder. The copy is also
refreshed in the background every ``REFRESH_S`` seconds.

Buckets and GC notes are not partitioned: each AZ's *home* metadata process
holds them (and extra processes keep a copy of the buckets table).
"""
from __future__ import annotations

import asyncio
import contextvars
import logging
import time

import aiohttp

from .pmap import Entry, PartitionMap
from .replica import Replica

log = logging.getLogger("minis3.meta.index_router")

REFRESH_S = 5.0          # how often a cached map is checked for a newer one (besides 421 answers)


class IndexRouter:
    def __init__(self, homes: list["Replica"], extras: list["Replica"] = ()):
        """``homes``: each AZ's home process, in AZ order; ``extras``: the other
        metadata processes. Each Replica knows its id (``name``) and ``az``."""
        self.homes = list(homes)
        self.extras = list(extras)
        self.by_id = {r.name: r for r in self.homes + self.extras}
        self.pmap: PartitionMap | None = None
        self.checked = float("-inf")
        self._refresh: asyncio.Future | None = None
        self.learned = 0                  # maps adopted from 421 answers (a stale cache corrected)

    @property
    def version(self) -> int:
        return self.pmap.version if self.pmap else 0

    def learn(self, doc: dict | None) -> bool:
        """Adopt a map (from a 421 answer or a refresh) if it is newer."""
        if not doc:
            return False
        try:
            new = PartitionMap.from_doc(doc)
        except (KeyError, ValueError, TypeError):
            return False
        if new.version <= self.version:
            return False
        self.pmap = new
        return True

    def entry(self, ikey: str) -> Entry | None:
        return self.pmap.locate(ikey) if self.pmap else None

    def replicas_for(self, ikey: str) -> list["Replica"]:
        """The processes holding ``ikey``'s replicas, in AZ order (the homes
        until a map is known)."""
        self._maybe_refresh()
        e = self.entry(ikey)
        if e is None:
            return self.homes
        return [self.by_id.get(e.replica_in(h.az) or "", h) for h in self.homes]

    def replica_in(self, az: str, ikey: str) -> "Replica":
        return next(r for r in self.replicas_for(ikey) if r.az == az)

    async def ensure(self) -> None:
        """Have a map (fetch one if none is cached yet)."""
        if self.pmap is None:
            await self.refresh()

    async def refresh(self) -> None:
        """Ask the home processes for a newer map; keep the newest."""
        self.checked = time.monotonic()

        async def one(r: "Replica") -> dict | None:
            try:
                async with r.session.get(r.url + "/index/map", params={"newer_than": self.version},
                                         timeout=aiohttp.ClientTimeout(total=2)) as resp:
                    return (await resp.json())["map"] if resp.status == 200 else None
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError, KeyError):
                return None
        for doc in await asyncio.gather(*(one(r) for r in self.homes)):
            self.learn(doc)

    def _maybe_refresh(self) -> None:
        if time.monotonic() - self.checked < REFRESH_S or (self._refresh is not None and not self._refresh.done()):
            return
        try:
            # In a context of its own: the refresh belongs to no request's trace.
            self._refresh = asyncio.get_running_loop().create_task(self.refresh(), context=contextvars.Context())
        except RuntimeError:               # no running loop (a synchronous caller)
            pass
