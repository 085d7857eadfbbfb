"""Moving a partition's replica to another metadata process of its AZ: the steps a process takes.

The index manager (``meta/manager.py``, which describes the five steps) asks
the new holder to copy the range (``POST /index/receive``), publishes a map
that names it, asks the old holder to fence (``/index/fence``), the new one
to catch up (``/index/finish``) and the old one to forget the range
(``/index/release``). Each handler here is one of those steps, logged with
its numbers (``GET /index/stats`` lists the last ones).

A crash between two steps is what the manager's next look resumes from; the
failpoints ``meta.move.after_fence`` (here, on the old holder) and
``meta.move.before_serving`` (on the new one), with the manager's own three
(``after_copy``, ``after_switch``, ``before_release``), land one there
(core/failpoints.py says what each leaves).
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

import aiohttp

from ..rpc import fastjson
from ..rpc.failpoints import failpoint
from .catchup import CATCH_UP_MARGIN_MS
from .partition import overlaps
from .pmap import PartitionMap
from .responses import json_response, refuse

if TYPE_CHECKING:
    from .server import MetaService

log = logging.getLogger("minis3.meta")


class ReplicaMoves:
    """The move steps one metadata process (``svc``) takes, and its log of them."""

    def __init__(self, svc: MetaService):
        self.svc = svc
        self.steps: list[dict] = []           # replicas moved here or away: steps and numbers

    def _note(self, step: str, pid: str, **numbers) -> dict:
        entry = {"step": step, "partition": pid, "at_ms": int(time.time() * 1000), **numbers}
        self.steps.append(entry)
        del self.steps[:-100]
        log.info("move of %s: %s %s", pid, step, " ".join(f"{k}={v}" for k, v in numbers.items()))
        return entry

    async def receive(self, request):
        """Step 1 (on the new holder): list the partition as incoming, then copy
        every version of its range from ``source`` (the current holder in this
        AZ), which goes on serving meanwhile."""
        svc = self.svc
        body = await request.json(loads=fastjson.loads)
        e = body["partition"]
        try:
            part = await svc.objects.add(e["id"], e["lo"], e.get("hi"))
        except ValueError as exc:
            return refuse(409, f"Overlap: {exc}")
        svc.set_budgets(part)
        t0 = time.monotonic()
        session = svc.peer_session(timeout_s=60)
        try:
            copied = await svc.catchup.pull(session, body["source"], "objects", part.lo, part.hi)
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            return refuse(503, f"CopyFailed: {exc.__class__.__name__}")
        finally:
            await session.close()
        return json_response(self._note("copied", part.id, versions=copied, keys=len(part),
                                        seconds=round(time.monotonic() - t0, 3)))

    async def fence(self, request):
        """Step 3 (on the old holder): adopt the map that gives the range away
        (from now on its writes are refused with WrongPartition), then wait
        for the writes already accepted to be durable. After this, nothing
        new lands here, so the new holder's last pull misses nothing."""
        svc = self.svc
        body = await request.json(loads=fastjson.loads)
        await svc.maps.adopt(PartitionMap.from_doc(body["map"]))
        e = svc.pmap.get(body["partition"])
        if e.replica_in(svc.az) == svc.id:
            return refuse(409, "StillHolder")
        t0 = time.monotonic()
        for p in list(svc.objects.partitions):
            if overlaps(p.lo, p.hi, e.lo, e.hi):
                while p.landing():
                    await asyncio.sleep(0.001)
        failpoint("meta.move.after_fence")
        return json_response(self._note("fenced", e.id, map_version=svc.pmap.version,
                                        drained_s=round(time.monotonic() - t0, 4)))

    async def finish(self, request):
        """Step 4 (on the new holder): pull from the fenced old holder every
        version stamped since the copy began (minus the catch-up margin), then
        serve reads."""
        svc = self.svc
        body = await request.json(loads=fastjson.loads)
        part = svc.objects.by_id.get(body["partition"])
        if part is None:
            return refuse(404, "NoSuchPartition")
        since = (int(body["since_ms"]) - CATCH_UP_MARGIN_MS) << 16
        t0 = time.monotonic()
        session = svc.peer_session(timeout_s=60)
        try:
            merged = await svc.catchup.pull(session, body["source"], "objects", part.lo, part.hi, since)
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            return refuse(503, f"CatchUpFailed: {exc.__class__.__name__}")
        finally:
            await session.close()
        failpoint("meta.move.before_serving")
        await svc.objects.set_state(part.id, "serving")
        return json_response(self._note("caught-up", part.id, versions=merged, keys=len(part),
                                        seconds=round(time.monotonic() - t0, 3)))

    async def release(self, request):
        """Step 5 (on the old holder): forget the range (the new holder serves it)."""
        svc = self.svc
        body = await request.json(loads=fastjson.loads)
        e = svc.pmap.get(body["partition"])
        if e.replica_in(svc.az) == svc.id:
            return refuse(409, "StillHolder")
        gone = [p for p in list(svc.objects.partitions)
                if p.lo >= e.lo and (e.hi is None or (p.hi is not None and p.hi <= e.hi))]
        for p in gone:
            await svc.objects.drop(p.id)
        return json_response(self._note("released", e.id, dropped=[p.id for p in gone]))
