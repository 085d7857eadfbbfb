"""The index manager: watches the partitions and splits the ones that grow or run hot.

One per cluster, running in the scrubber's process (it keeps no state a
restart would lose: the map lives on the metadata processes). Every
``index.check_every_s`` it

1. asks every metadata process for its partitions' counters (``/index/stats``)
   and the newest partition map any of them has;
2. lets :class:`minis3.meta.policy.SplitPolicy` decide (keys, bytes, or a
   sustained request rate);
3. for the first decision, asks a replica where to cut (``/index/split-key``:
   the median key, or the median of recently asked-for keys for a hot
   partition, at a folder boundary), makes the next map version and sends it
   to every metadata process (``POST /index/map``). Each replica cuts its own
   copy in place when it adopts that version (a moment's pause of that
   partition's writes); one that is down learns the map from its peers when
   it returns, and cuts then.

It also **moves** a partition's replica to another metadata process of the
same AZ (``minis3 partitions move``; for example to a newly added one), in
five steps, while the range goes on serving:

1. *copy*: the new holder lists the partition as incoming and copies every
   version of the range from the old holder (``/index/receive``);
2. *switch*: the next map version names the new holder; every metadata
   process adopts it; frontends learn it when a process answers 421
   WrongPartition (or within their refresh interval). The incoming replica
   takes writes at once, but answers no reads (503 CatchingUp, so a read
   quorum uses the other AZs);
3. *fence*: the old holder adopts the map (refusing the range's writes from
   then on) and waits for the writes it accepted to be durable;
4. *catch up*: the new holder pulls from the old one every version stamped
   since the copy began (minus a margin), then serves reads;
5. *release*: the old holder forgets the range.

Every acknowledged write is on two AZs' replicas at every moment: before the
fence it may land on the old holder, and step 4 brings it over; after it,
it can only land on the new one. If a step fails, the next look resumes the
move from what the processes report (an incoming replica the map names is
finished; a replica the map no longer names is released once its successor
serves), and so does a restarted manager after a crash between steps (the
failpoints ``meta.move.after_copy``, ``after_switch`` and ``before_release``
land one there).

It is the map's only writer, so versions never race. If it is down, nothing
splits or moves, and nothing else changes: every request is still served.
"""
from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import prometheus_client

from ..rpc.failpoints import failpoint
from ..rpc.http import json_body
from ..rpc.worker import Worker
from .pmap import MapError, PartitionMap, newest
from .policy import SplitPolicy

log = logging.getLogger("minis3.index")


class MoveError(Exception):
    pass


class IndexManager:
    def __init__(self, topo, session: aiohttp.ClientSession,
                 registry: prometheus_client.CollectorRegistry = prometheus_client.REGISTRY):
        self.topo = topo
        self.session = session
        self.policy = SplitPolicy.from_spec(topo.index)
        self.map: PartitionMap | None = None
        self.reports: list[dict] = []
        self.last_check: float | None = None
        self.splits: list[dict] = []               # splits this manager made, newest last
        self.moves: list[dict] = []                # moves this manager made, newest last
        self._lock = asyncio.Lock()                # one change of the map at a time
        # Every check_every_s: a failed look is retried next time.
        self.worker = Worker("index-manager", self.check, topo.index.check_every_s, registry=registry)

    async def _get(self, url: str, path: str, **params) -> dict | None:
        try:
            async with self.session.get(url + path, params=params, timeout=aiohttp.ClientTimeout(total=5)) as r:
                return await r.json() if r.status == 200 else None
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
            return None

    async def _post(self, url: str, path: str, body: dict, timeout: float = 600) -> dict:
        async with self.session.post(url + path, **json_body(body), timeout=aiohttp.ClientTimeout(total=timeout)) as r:
            got = await r.json(content_type=None)
            if r.status != 200:
                raise MoveError(f"{url}{path}: {r.status} {got.get('code') if isinstance(got, dict) else got}")
            return got

    async def look(self) -> None:
        """Every metadata process's counters, and the newest map among them."""
        metas = self.topo.all_metas
        stats = await asyncio.gather(*(self._get(m.url, "/index/stats") for m in metas))
        self.reports = [dict(s, url=m.url) for m, s in zip(metas, stats) if s is not None]
        best = max(self.reports, key=lambda s: s["map_version"], default=None)
        if best is None:
            return
        if self.map is None or self.map.version < best["map_version"]:
            got = await self._get(best["url"], "/index/map")
            if got is not None:
                self.map = newest([self.map, PartitionMap.from_doc(got["map"])])

    async def publish(self, new: PartitionMap) -> int:
        """Send a map version to every metadata process; how many adopted it (or had it)."""
        async def one(url: str) -> bool:
            try:
                async with self.session.post(url + "/index/map", **json_body({"map": new.doc()}),
                                             timeout=aiohttp.ClientTimeout(total=60)) as r:
                    return r.status == 200 and (await r.json())["version"] >= new.version
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError, KeyError):
                return False
        return sum(await asyncio.gather(*(one(m.url) for m in self.topo.all_metas)))

    # -- moves -------------------------------------------------------------------------
    async def move(self, pid: str, to: str, reason: str = "asked") -> dict:
        """Move partition ``pid``'s replica in ``to``'s AZ to metadata process ``to``."""
        async with self._lock:
            await self.look()
            if self.map is None:
                raise MoveError("no partition map in sight")
            try:
                entry, spec = self.map.get(pid), self.topo.meta(to)
            except (MapError, KeyError) as exc:
                raise MoveError(str(exc)) from None
            frm = entry.replica_in(spec.az)
            if frm == to:
                raise MoveError(f"{to} already holds {pid}'s replica in {spec.az}")
            if frm is None:
                raise MoveError(f"{pid} has no replica in {spec.az}")
            old = self.topo.meta(frm).url
            started, t0 = time.monotonic(), int(time.time() * 1000)
            copied = await self._post(spec.url, "/index/receive", {"partition": entry.doc(), "source": old})
            failpoint("meta.move.after_copy")
            new = self.map.move(pid, spec.az, to, reason=reason, at_ms=int(time.time() * 1000), copy_ms=t0)
            adopted = await self.publish(new)
            self.map = new
            failpoint("meta.move.after_switch")
            ev = {**new.events[-1], "adopted_by": adopted, "copied": copied}
            ev.update(await self._complete(pid, spec.az, frm, to, t0))
            ev["seconds"] = round(time.monotonic() - started, 3)
            self.moves.append(ev)
            del self.moves[:-100]
            log.info("moved %s's replica in %s from %s to %s (%s): %d versions copied, %d caught up after "
                     "the switch, writes to the range fenced on the old holder after %.3f s of draining; "
                     "map version %d; %.2f s in all", pid, spec.az, frm, to, reason, copied["versions"],
                     ev["caught_up"]["versions"], ev["fenced"]["drained_s"], new.version, ev["seconds"])
            return ev

    async def _complete(self, pid: str, az: str, frm: str, to: str, copy_ms: int) -> dict:
        """Steps 3-5 of a move whose map is published: fence, catch up, release."""
        old, new = self.topo.meta(frm).url, self.topo.meta(to).url
        fenced = await self._post(old, "/index/fence", {"map": self.map.doc(), "partition": pid})
        caught = await self._post(new, "/index/finish", {"partition": pid, "source": old, "since_ms": copy_ms})
        failpoint("meta.move.before_release")
        released = await self._post(old, "/index/release", {"partition": pid})
        return {"fenced": fenced, "caught_up": caught, "released": released}

    async def resume_moves(self) -> list[dict]:
        """Finish moves a failure cut short, from what the processes report."""
        done = []
        held = {(r["id"], p["id"]): p for r in self.reports for p in r["partitions"]}
        for r in self.reports:
            for p in r["partitions"]:
                try:
                    e = self.map.get(p["id"])
                except MapError:
                    continue                       # split or merged since: the map loop handles it
                holder = e.replica_in(r["az"])
                ev = self.map.last_move(e.id, r["az"])
                if p.get("state") == "incoming" and holder == r["id"] and ev and ev["from"] != r["id"]:
                    try:                            # the switch happened; fence, catch up, release
                        done.append(await self._complete(e.id, r["az"], ev["from"], r["id"],
                                                         int(ev.get("copy_ms", ev["at_ms"]))))
                    except (MoveError, aiohttp.ClientError, OSError, TimeoutError) as exc:
                        log.warning("resuming the move of %s to %s: %s", e.id, r["id"], exc)
                elif holder is not None and holder != r["id"] and (
                        p.get("state") == "incoming"             # a copy for a move never switched to
                        or (holder, e.id) in held and held[(holder, e.id)].get("state") == "serving"):
                    try:                            # or a replica left behind by a finished move
                        done.append(await self._post(r["url"], "/index/release", {"partition": e.id}))
                    except (MoveError, aiohttp.ClientError, OSError, TimeoutError) as exc:
                        log.warning("releasing %s on %s: %s", e.id, r["id"], exc)
        return done

    async def check(self) -> dict | None:
        """One look; at most one split. Returns the split made, if any."""
        async with self._lock:
            return await self._check()

    async def _check(self) -> dict | None:
        await self.look()
        self.last_check = time.time()
        if self.map is None or len(self.reports) < 2:
            return None                           # no quorum of the index in sight: change nothing
        if await self.resume_moves():
            return None
        moving = {p["id"] for r in self.reports for p in r["partitions"] if p.get("state") == "incoming"}
        decisions = [d for d in self.policy.observe(time.monotonic(), self.reports,
                                                    {p.id for p in self.map.partitions})
                     if d.partition not in moving]
        for d in decisions:
            entry = self.map.get(d.partition)
            holders = [r for r in self.reports if any(p["id"] == d.partition for p in r["partitions"])]
            if not holders:
                continue
            source = max(holders, key=lambda r: next(p["keys"] for p in r["partitions"] if p["id"] == d.partition))
            meta = self.topo.meta(source["id"])
            got = await self._get(meta.url, "/index/split-key", partition=d.partition, by=d.by)
            key = got and got.get("key")
            if not key:
                continue
            try:
                new = self.map.split(d.partition, key, reason=d.reason, at_ms=int(time.time() * 1000))
            except MapError as exc:
                log.warning("cannot split %s at %r: %s", d.partition, key, exc)
                continue
            started = time.monotonic()
            adopted = await self.publish(new)
            self.map = new
            self.policy.split_done(d.partition)
            ev = {**new.events[-1], "adopted_by": adopted, "seconds": round(time.monotonic() - started, 3),
                  "range": [entry.lo, entry.hi]}
            self.splits.append(ev)
            del self.splits[:-100]
            log.info("split %s [%r, %r) at %r into %s (%s); map version %d, adopted by %d of %d metadata "
                     "processes in %.2f s", d.partition, entry.lo, entry.hi, key, " and ".join(ev["into"]),
                     d.reason, new.version, adopted, len(self.topo.all_metas), ev["seconds"])
            return ev
        return None

    def status(self) -> dict:
        return {"map_version": self.map.version if self.map else None, "last_check_unix": self.last_check,
                "rates": {k: round(v, 1) for k, v in self.policy.rates.items()}, "splits": self.splits[-20:],
                "moves": self.moves[-20:],
                "error": self.worker.last_error, "worker": self.worker.status(), "settings": {k: getattr(self.topo.index, k) for k in (
                    "split_keys", "split_bytes", "split_ops_per_s", "hot_seconds", "write_ops_per_s",
                    "read_ops_per_s", "max_inflight_writes")}}
