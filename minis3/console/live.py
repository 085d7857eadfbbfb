"""The live charts' sampler: the I/O around ``console/series.py``.

Once a second, while at least one page watches (``/live/events``), it
scrapes every process the charts draw from, at once, each with a short
timeout (a killed or frozen process just misses that second):

* each frontend's Prometheus page (``/_minis3/metrics``, asking only for the
  request counter, the latency histogram and the handoff counter);
* each storage node's ``/metrics`` (bytes in and out, fragment files
  written and removed), and every
  ``FRAGMENT_COUNT_EVERY`` rounds its ``/status`` (its fragment files: the
  node counts them on its disk, so not every second, and on the side: a slow
  count never holds a round);
* the scrubber's ``/metrics`` (fragments rebuilt and moved home) and
  ``/status`` (its last pass, the running one).

Internal requests are signed with the cluster secret by the console's
internal session, as every other internal call of the console's. When the
last page closes the sampler stops: nobody looking costs nothing. The points
of the last five minutes stay in memory (``Series.points``, bounded) for the
next page that opens.
"""
from __future__ import annotations

import asyncio
import logging
import time

import aiohttp

from ..config import Topology
from . import series as S

log = logging.getLogger("minis3.console.live")

SCRAPE_TIMEOUT_S = 0.8          # a process slower than this misses the second
FRAGMENT_COUNT_EVERY = 10       # rounds between counting each node's fragments (the counters keep it current)
COUNT_TIMEOUT_S = 5.0           # a node walks its disk to count them: on the side, never holding a round
FRONTEND_METRICS = ("/_minis3/metrics?name[]=minis3_requests_total&name[]=minis3_request_seconds_bucket"
                    "&name[]=minis3_fragments_handed_off_total")
WATCHER_QUEUE = 30              # points a slow page may fall behind before it misses some


class LiveSampler:
    def __init__(self, topo: Topology, internal: aiohttp.ClientSession, public: aiohttp.ClientSession):
        self.topo, self.internal, self.public = topo, internal, public
        self.series = S.Series({n.id: n.az for n in topo.nodes}, [az.name for az in topo.azs])
        self.watchers: set[asyncio.Queue] = set()
        self.task: asyncio.Task | None = None
        self.rounds = 0
        self.counting: asyncio.Task | None = None
        self.counted: dict[str, int] = {}         # node id → fragments, counted since the last round

    # -- who watches -----------------------------------------------------------------------
    def watch(self) -> asyncio.Queue:
        """A queue of the points to come; the sampler runs while any queue is watched."""
        q: asyncio.Queue = asyncio.Queue(WATCHER_QUEUE)
        self.watchers.add(q)
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self.run())
        return q

    def unwatch(self, q: asyncio.Queue) -> None:
        self.watchers.discard(q)

    async def stop(self) -> None:
        for task in (self.task, self.counting):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    # -- the loop --------------------------------------------------------------------------
    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while self.watchers:
            began = loop.time()
            try:
                pt = self.series.feed(await self.scrape())
            except Exception:                   # a bad page never stops the charts
                log.exception("live charts: a scrape failed")
                pt = None
            if pt is not None:
                for q in list(self.watchers):
                    if not q.full():
                        q.put_nowait(pt)
            await asyncio.sleep(max(0.05, S.INTERVAL_S - (loop.time() - began)))

    async def count_fragments(self) -> None:
        """Each node's fragment files, from its /status (signed)."""
        async def one(n):
            st = await self._json(self.internal, n.url + "/status", COUNT_TIMEOUT_S)
            if st is not None and "fragments" in st:
                self.counted[n.id] = int(st["fragments"])
        await asyncio.gather(*(one(n) for n in self.topo.nodes))

    async def scrape(self) -> S.Scrape:
        topo = self.topo
        if self.rounds % FRAGMENT_COUNT_EVERY == 0 and (self.counting is None or self.counting.done()):
            self.counting = asyncio.ensure_future(self.count_fragments())
        self.rounds += 1
        t = time.time()
        fes = [self._text(self.public, f.url + FRONTEND_METRICS) for f in topo.frontends]
        nodes = [self._text(self.internal, n.url + "/metrics") for n in topo.nodes]
        got = await asyncio.gather(self._text(self.internal, topo.scrub.url + "/metrics"),
                                   self._json(self.internal, topo.scrub.url + "/status"), *fes, *nodes)
        scrub_text, scrub_st = got[0], got[1]
        fe_texts = got[2:2 + len(fes)]
        node_texts = got[2 + len(fes):]
        s = S.Scrape(t=t)
        s.node_fragments, self.counted = self.counted, {}
        for f, text in zip(topo.frontends, fe_texts):
            if text is not None:
                s.counters.update(S.frontend_counters(f.url, text))
        for n, text in zip(topo.nodes, node_texts):
            s.nodes_up[n.id] = text is not None
            if text is not None:
                s.counters.update(S.node_counters(n.id, text))
        if scrub_text is not None:
            s.counters.update(S.scrubber_counters(scrub_text))
        s.not_full_objects, s.running_pass = S.scrubber_status(scrub_st)
        return s

    @staticmethod
    async def _text(session: aiohttp.ClientSession, url: str) -> str | None:
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT_S)) as r:
                return (await r.read()).decode() if r.status == 200 else None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, UnicodeDecodeError):
            return None

    @staticmethod
    async def _json(session: aiohttp.ClientSession, url: str, timeout: float = SCRAPE_TIMEOUT_S) -> dict | None:
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as r:
                return await r.json() if r.status == 200 else None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError):
            return None
