"""Which storage nodes are answering, as the frontend sees it.

A node is *down* from the moment a request to it fails (connection refused,
reset, timeout) until a probe of its ``/health`` answers again. A background
prober asks every node every ``PROBE_EVERY`` seconds with a short timeout, so
a node that is frozen (SIGSTOP: its socket still accepts, nothing answers) is
found within about a second, without any client request paying for it.

The probe's answer also says whether the node's disk is *full* (it refused a
write with ENOSPC and no probe write has succeeded since) or *failing* (it
failed a write with an I/O error in the last 10 s), and how long its
fsyncs take lately (``sync_ms``). New fragments go to nodes that are up, not
full, not failing and not *slow* (a sync time over ``SLOW_SYNC_MS`` and
``SLOW_FACTOR`` times the median node's); reads still use them all.

The data path uses this to place fragments on live nodes (handoff), to abort
a fragment PUT to a node that stopped answering, and to read from live nodes
first. The same tracker keeps a moving estimate of how long a fragment block
takes to arrive, from which GET derives its hedging delay.
"""
from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import prometheus_client

from ..rpc.worker import Worker
from ..storage.client import FAILING_FOR_S

log = logging.getLogger("minis3.health")

PROBE_EVERY = 0.5
PROBE_TIMEOUT = 0.75
HEDGE_MIN, HEDGE_MAX = 0.25, 2.0        # seconds: the bounds of GET's hedging delay
SLOW_SYNC_MS = 100.0                    # a node's recent fsync time above this…
SLOW_FACTOR = 5.0                       # …and this many times the median node's: slow


#: What this frontend believes of each storage node (``minis3 up`` waits for all 1s).
NODE_UP = prometheus_client.Gauge("minis3_storage_node_up", "1 while this frontend believes the node is up",
                                  ["node"])
NODE_FAILING = prometheus_client.Gauge("minis3_storage_node_failing", "1 while this frontend believes the node's "
                                       "disk fails writes (it gets no new fragments; it is still read)", ["node"])
NODE_FULL = prometheus_client.Gauge("minis3_storage_node_full", "1 while this frontend believes the node's disk "
                                    "is full (it gets no new fragments; it is still read)", ["node"])


class NodeHealth:
    def __init__(self, session: aiohttp.ClientSession, urls: dict[str, str]):
        self.session, self.urls = session, urls
        self.down: dict[str, float] = {}          # node id → since when
        self.full: dict[str, float] = {}          # node id → since when its disk refuses writes
        self.failing: dict[str, float] = {}       # node id → until when (monotonic) its disk counts as failing
        self.sync_ms: dict[str, float] = {}       # node id → its recent fsync time, as it reports
        for n in urls:
            NODE_UP.labels(n).set(1)
        self._block_wait = 0.02                   # EWMA of a fragment block's arrival, seconds
        self.prober = Worker("node-health", self.probe_all, PROBE_EVERY)

    # -- state --------------------------------------------------------------------
    def is_up(self, node: str) -> bool:
        return node not in self.down

    def up_nodes(self) -> set[str]:
        return {n for n in self.urls if n not in self.down}

    def slow_nodes(self) -> set[str]:
        """Nodes whose recent fsyncs take over SLOW_SYNC_MS and SLOW_FACTOR
        times the median node's (a slow disk)."""
        times = sorted(self.sync_ms.values())
        if not times:
            return set()
        median = times[len(times) // 2]
        bar = max(SLOW_SYNC_MS, SLOW_FACTOR * median)
        return {n for n, ms in self.sync_ms.items() if ms > bar}

    def writable_nodes(self, include_slow: bool = False) -> set[str]:
        """Nodes a new fragment may go to: up and not full; and not slow,
        unless ``include_slow`` (when too few are left without them: slow
        beats unavailable)."""
        now = time.monotonic()
        ok = {n for n in self.urls if n not in self.down and n not in self.full
              and self.failing.get(n, 0.0) <= now}
        return ok if include_slow else ok - self.slow_nodes()

    def mark_full(self, node: str) -> None:
        if node not in self.full:
            self.full[node] = time.time()
            NODE_FULL.labels(node).set(1)
            log.warning("storage node %s: disk full; new fragments go elsewhere", node)

    def mark_failing(self, node: str, until: float | None = None) -> None:
        """Its disk failed a write: no new fragments there until ``until``
        (monotonic; default FAILING_FOR_S from now)."""
        if self.failing.get(node, 0.0) <= time.monotonic():
            log.warning("storage node %s: its disk fails writes; new fragments go elsewhere", node)
        self.failing[node] = until if until is not None else time.monotonic() + FAILING_FOR_S
        NODE_FAILING.labels(node).set(1)

    def _set_failing(self, node: str, failing: bool) -> None:
        if failing:
            self.mark_failing(node, time.monotonic() + PROBE_EVERY * 3)     # until the next probes say
        elif self.failing.pop(node, None) is not None:
            NODE_FAILING.labels(node).set(0)
            log.warning("storage node %s: its disk takes writes again", node)

    def _set_full(self, node: str, full: bool) -> None:
        if full:
            self.mark_full(node)
        elif self.full.pop(node, None) is not None:
            NODE_FULL.labels(node).set(0)
            log.warning("storage node %s takes writes again", node)

    def mark_down(self, node: str, why: str) -> None:
        if node not in self.down:
            self.down[node] = time.time()
            NODE_UP.labels(node).set(0)
            log.warning("storage node %s marked down: %s", node, why)

    def _mark_up(self, node: str) -> None:
        NODE_UP.labels(node).set(1)
        if self.down.pop(node, None) is not None:
            log.warning("storage node %s is answering again", node)

    # -- hedging ------------------------------------------------------------------
    def observe_block_wait(self, seconds: float) -> None:
        self._block_wait += 0.05 * (seconds - self._block_wait)

    def hedge_delay(self) -> float:
        """How long GET waits for a fragment block before asking a spare fragment too."""
        return min(HEDGE_MAX, max(HEDGE_MIN, 8 * self._block_wait))

    # -- probing ------------------------------------------------------------------
    async def _probe(self, node: str, url: str) -> None:
        try:
            async with self.session.get(url + "/health",
                                        timeout=aiohttp.ClientTimeout(total=PROBE_TIMEOUT)) as r:
                ok = r.status == 200
                doc = await r.json() if ok else {}
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError, ValueError):
            ok = False
        if ok:
            self._mark_up(node)
            self._set_full(node, bool(doc.get("full")))
            self._set_failing(node, bool(doc.get("failing")))
            if isinstance(doc.get("sync_ms"), (int, float)):
                self.sync_ms[node] = float(doc["sync_ms"])
        else:
            self.mark_down(node, "health probe failed")

    async def probe_all(self) -> None:
        """One round of the prober: every node at once."""
        await asyncio.gather(*(self._probe(n, u) for n, u in self.urls.items()), return_exceptions=True)

    def start(self) -> None:
        self.prober.start()

    async def stop(self) -> None:
        await self.prober.stop()
