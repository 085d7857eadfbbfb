"""The cluster scrubber: one process that keeps every object at full redundancy.

A pass (every ``scrub.interval_s``, at once when a node comes back, or on
``POST /pass`` from ``minis3 scrub --now``):

1. **Nodes.** Probe every storage node. With ``audit``, ask each live node
   to re-verify every fragment file now (``POST /audit``); a node moves a
   corrupt fragment to its quarantine, so it drops out of the inventory.
2. **Inventories.** Each live node lists what it holds, a page of 10,000
   fragments per request: (object id, index, size, age). One request per
   10,000 fragments, never one per fragment.
3. **Metadata walk.** Scan the three metadata replicas together in key order
   (buckets, then objects). Where they disagree, write the newest version to
   the stale ones (anti-entropy). For every live erasure-coded version,
   compare its recorded placement with the inventories and the home
   placement (``scrub.plan``), and repair: rebuild missing or quarantined
   fragments from any k others, move handed-off fragments home; then record
   the new placement (same version, placement epoch + 1). The scrubber moves
   no fragment bytes itself: each fix becomes a rebuild job (``ec.rebuild``)
   for the node that will hold the fragment, which reads the k sources from
   their nodes, checks every segment against its recorded checksum and lands
   the fragment (``POST /rebuild``, storage/rebuild.py). Jobs are sent in
   batches by target node (``scrub.batches``), ``REPAIR_CONCURRENCY`` objects
   in repair at once (``PACED_CONCURRENCY`` under a rate limit).
   A node seen unreachable for ``scrub.down_after_s`` is *gone*: its
   fragments count as lost and are rebuilt on the nodes left, the same AZ's
   first, nothing else moving (``plan.home_without``). Rebuilds are paced to
   ``scrub.rebuild_mb_per_s`` of fragment bytes written (a ``TokenBucket``
   each batch pays before it is sent), so that foreground requests keep their
   latency.
4. **Garbage.** A fragment that no replica's version points at, older than
   the grace period, is deleted (the node re-checks its age). Skipped unless
   all three replicas were scanned completely. Why this never races a write:
   docs/ARCHITECTURE.md, "Garbage collection".

HTTP (HMAC-signed like every internal service; /health and /metrics open):
    GET  /status      the running pass's progress, the last pass, recoveries, the rebuild
                      totals (bytes, seconds with a repair running: `minis3 durability`)
    POST /pass?audit=1&audit_rate=MBps&rebuild_rate=MBps   start a pass now (or join the running
                      one) → {"pass": id}; rebuild_rate (0: no limit) for that pass only
    GET  /health      GET /metrics   (Prometheus)
    GET  /index       POST /index/move   the index manager's (meta/manager.py), which shares this process

This module is the process: :class:`Scrubber` decides when a pass runs and
runs its steps, ``app`` serves it and hosts the index manager and the
lifecycle rounds (scrub/lifecycle.py: buckets' lifecycle rules, applied by a
worker of their own, shown under ``lifecycle`` in ``GET /status``). The steps
live in their own modules: the nodes (scrub/nodes.py), the metadata scan
(scrub/scan.py), anti-entropy and other record writes (scrub/metadata.py),
the object walk (scrub/walk.py), planning and rebuilding (scrub/repair.py,
scrub/plan.py, scrub/batches.py), garbage (scrub/gc.py) and the pass's
report and metrics (scrub/report.py).
"""
from __future__ import annotations

import asyncio
import logging
import os
import time

import aiohttp
import prometheus_client
from aiohttp import web

from ..ec.codec import tune_malloc
from ..meta.client import MetaClient
from ..meta.manager import IndexManager, MoveError
from ..rpc.worker import Worker
from ..rpc.delay import InterAZDelay
from ..rpc.http import client_session, internal_app, use_fast_event_loop
from ..rpc.process import begin, process_args, serve
from ..storage.client import StorageClient
from .gc import GarbageCollector
from .lifecycle import LifecycleRunner
from .metadata import MetadataRepair
from .nodes import NodeWatch
from .repair import Repairer
from .report import DEGRADED, PASS_SECONDS, PASSES, RECOVERY_SECONDS, REGISTRY, PassReport
from .walk import ObjectWalk

log = logging.getLogger("minis3.scrub")

PROBE_EVERY = 1.0         # seconds between node health probes
SOON = 3.0                # seconds to the next pass after one that repaired something


class Scrubber:
    """The cluster's scrubber: when passes run (:meth:`loop`, :meth:`start_pass`),
    what one does (:meth:`run_pass`), and what ``GET /status`` shows."""

    def __init__(self, topo, session: aiohttp.ClientSession):
        self.topo = topo
        self.session = session
        self.storage = StorageClient(session, {n.id: n.url for n in topo.nodes})
        self.nodes = NodeWatch(session, self.storage, topo.scrub)
        self.metadata = MetadataRepair(MetaClient.for_topology(session, topo), topo.scrub.gc_grace_s)
        self.repairer = Repairer(topo, self.storage, self.metadata.write_version)
        self.gc = GarbageCollector(self.storage, self.metadata.replicas, topo.scrub.gc_grace_s)
        self.last_recovery: dict | None = None
        self.current: PassReport | None = None
        self.last: PassReport | None = None
        self.passes = 0
        self._pass_task: asyncio.Future | None = None
        self._queued: int | None = None
        self._queued_audit = False
        self._queued_rate: float | None = None     # the queued pass's rebuild rate (None: the topology's)
        self.next_pass = time.monotonic() + topo.scrub.interval_s
        self.started_unix = time.time()
        self._was_running = False
        self.worker = Worker("scrubber", self.tick, self.until_next_tick, registry=REGISTRY)

    # ---------------------------------------------------------------- a pass
    async def run_pass(self, *, audit: bool = False, audit_rate: float = 0.0,
                       rebuild_rate: float | None = None) -> PassReport:
        """One pass (module docstring). ``rebuild_rate``: MB/s of fragments
        written for this pass (0: no limit; None: ``scrub.rebuild_mb_per_s``)."""
        self.passes += 1
        rep = self.current = PassReport(id=self.passes, started_unix=time.time(), audit=audit)
        rate = self.topo.scrub.rebuild_mb_per_s if rebuild_rate is None else rebuild_rate
        rep.rebuild_rate_mb_per_s = rate
        self.repairer.pacer.set_rate(rate * 1e6)
        t0 = time.monotonic()
        try:
            await self._steps(rep, audit, audit_rate, t0)
            rep.phase = "done"
        except Exception:
            log.exception("scrub pass %d failed", rep.id)
            rep.phase = "failed"
        rep.seconds = round(time.monotonic() - t0, 3)
        self._finish(rep)
        return rep

    async def _steps(self, rep: PassReport, audit: bool, audit_rate: float, t0: float) -> None:
        """The steps of a pass, in order (module docstring), each named in ``rep.phase`` while it runs."""
        rep.phase = "probing nodes"
        up = await self.nodes.probe_all()
        rep.nodes_up, rep.nodes_down = sorted(up), sorted(set(self.storage.urls) - up)
        rep.nodes_full = sorted(self.nodes.full & up)
        self.repairer.full = set(rep.nodes_full)      # read from, not rebuilt or moved home to
        if audit:
            rep.phase = "auditing fragments on the nodes"
            await self.nodes.audit(up, audit_rate, rep)
        rep.phase = "listing the nodes' inventories"
        rep.inventory_unix = time.time()
        inv, received, quarantined = await self.nodes.inventories(up)
        # Down long enough to be gone, and still not answering: its fragments are lost.
        gone = {n for n in self.nodes.gone() if n not in inv}
        rep.nodes_gone = sorted(gone)
        referenced: dict[str, set[tuple[str, int]]] = {n: set() for n in inv}
        rep.keys_total = await self.metadata.estimate_keys()
        rep.phase = "walking the metadata"
        buckets = await self.metadata.walk_buckets(rep)
        complete = await ObjectWalk(self.metadata, self.repairer, self.topo.scrub.meta_keys_per_s, rep,
                                    inv, quarantined, referenced, buckets, gone).run()
        rep.phase = "collecting garbage"
        rep.complete = complete
        if complete:
            await self.gc.collect(rep, inv, received, referenced, t0)
        else:
            rep.gc_skipped = "not every metadata replica could be scanned"

    def _finish(self, rep: PassReport) -> None:
        PASSES.inc()
        PASS_SECONDS.set(rep.seconds or 0)
        DEGRADED.set(rep.not_full)
        if rep.rebuilt_bytes:
            self.repairer.totals["last_pass"] = {"pass": rep.id, "bytes": rep.rebuilt_bytes,
                                                 "rebuild_seconds": round(rep.rebuild_seconds, 3),
                                                 "pass_seconds": rep.seconds}
        interval = self.topo.scrub.interval_s
        repaired = sum(rep.rebuilt.values()) or rep.repair_failures
        self.next_pass = time.monotonic() + (min(SOON, interval) if rep.phase != "done" or repaired else interval)
        if (rep.phase == "done" and rep.complete and rep.not_full == 0 and not rep.nodes_down
                and self.nodes.returned_at is not None):
            secs = round(time.monotonic() - self.nodes.returned_at, 3)
            self.last_recovery = {"nodes": sorted(self.nodes.returned_nodes), "seconds": secs,
                                  "finished_unix": time.time(), "pass": rep.id}
            RECOVERY_SECONDS.set(secs)
            log.info("full redundancy %.2f s after %s came back", secs, ", ".join(sorted(self.nodes.returned_nodes)))
            self.nodes.returned_at, self.nodes.returned_nodes = None, set()
        self.last, self.current = rep, None
        log.info("scrub pass %d: %d objects, %d damaged, %d rebuilt, %d moved home, %d meta repairs, "
                 "%d orphans removed, %d not full, %.2f s", rep.id, rep.objects, sum(rep.damaged.values()),
                 sum(v for k, v in rep.rebuilt.items() if k != "handoff"), rep.rebuilt.get("handoff", 0),
                 rep.meta_repairs, rep.orphans_removed, rep.not_full, rep.seconds or 0)

    # ---------------------------------------------------------------- when passes run
    def start_pass(self, audit: bool = False, audit_rate: float = 0.0, rebuild_rate: float | None = None) -> int:
        """Start a pass now and return its id. If one is running, a new pass
        follows it (what a caller asks for must be seen by a pass that began
        after the call); a pass already queued is shared."""
        running = self._pass_task is not None and not self._pass_task.done()
        if not running:
            self._pass_task = asyncio.ensure_future(self.run_pass(audit=audit, audit_rate=audit_rate,
                                                                  rebuild_rate=rebuild_rate))
            return self.passes + 1
        if self._queued is not None and (self._queued_audit or not audit) and self._queued_rate == rebuild_rate:
            return self._queued
        before = self._pass_task
        self._queued = self.passes + 1 + (self.current is None) + (self._queued is not None)
        self._queued_audit = audit
        self._queued_rate = rebuild_rate           # a pass asked for another rebuild rate is not shared

        async def after() -> PassReport:
            await asyncio.gather(before, return_exceptions=True)
            self._queued = None
            return await self.run_pass(audit=audit, audit_rate=audit_rate, rebuild_rate=rebuild_rate)
        self._pass_task = asyncio.ensure_future(after())
        return self._queued

    async def tick(self) -> None:
        """A round of the scrubber's worker: probe the nodes (also while a pass
        runs, so a node's return is timed from when it answers); start a pass
        when one is due or a node came back."""
        await self.nodes.probe_all()
        self._was_running = running = self._pass_task is not None and not self._pass_task.done()
        if not running and (self.nodes.wake.is_set() or time.monotonic() >= self.next_pass):
            self.nodes.wake.clear()
            self._pass_task = asyncio.ensure_future(self.run_pass())

    async def until_next_tick(self) -> None:
        """PROBE_EVERY seconds, or less when a node comes back; while a pass runs
        the wake waits for it."""
        try:
            await asyncio.wait_for(self.nodes.wake.wait(), PROBE_EVERY)
        except asyncio.TimeoutError:
            pass
        if self._was_running and self.nodes.wake.is_set():
            await asyncio.sleep(PROBE_EVERY)

    def status(self) -> dict:
        """``GET /status``: the running pass, the last one, the nodes, the rebuild totals and the settings."""
        now = time.monotonic()
        return {"role": "scrubber", "pid": os.getpid(), "passes": self.passes, "started_unix": self.started_unix,
                "running": self.current.as_dict() if self.current else None,
                "last_pass": self.last.as_dict() if self.last else None,
                "last_recovery": self.last_recovery, "nodes_up": self.nodes.up,
                "nodes_down_for_s": {n: round(now - t, 1) for n, t in sorted(self.nodes.down_since.items())},
                "nodes_gone": sorted(self.nodes.gone_seen),
                # Since the process started: fragment bytes written by repairs, and the time
                # with any repair running; their ratio is the rebuild rate (minis3 durability).
                "rebuild": dict(self.repairer.totals, seconds=round(self.repairer.totals["seconds"], 3)),
                "settings": {"interval_s": self.topo.scrub.interval_s, "gc_grace_s": self.topo.scrub.gc_grace_s,
                             "audit_mb_per_s": self.topo.scrub.audit_mb_per_s,
                             "audit_busy_share": self.topo.scrub.audit_busy_share,
                             "rebuild_mb_per_s": self.topo.scrub.rebuild_mb_per_s,
                             "down_after_s": self.topo.scrub.down_after_s},
                "workers": [self.worker.status()]}


class _Process:
    """What the scrubber process runs and serves: the scrubber, and the
    index manager (meta/manager.py), which shares its client session."""

    def __init__(self, topo) -> None:
        self.topo = topo
        self.state: dict = {}

    async def on_start(self, app_: web.Application) -> None:
        state, topo = self.state, self.topo
        state["session"] = client_session(topo.cluster_secret, timeout_s=30,
                                          delay=InterAZDelay.for_topology(topo, None))
        state["scrubber"] = Scrubber(topo, state["session"])
        state["scrubber"].worker.start()
        # The index manager shares this process (and its session): see meta/manager.py.
        state["index"] = IndexManager(topo, state["session"], registry=REGISTRY)
        state["index"].worker.start()
        # Buckets' lifecycle rules, in rounds of their own (scrub/lifecycle.py).
        state["lifecycle"] = LifecycleRunner(topo, state["scrubber"].metadata.meta)
        state["lifecycle"].worker.start()

    async def on_stop(self, app_: web.Application) -> None:
        state = self.state
        await asyncio.gather(state["scrubber"].worker.stop(), state["index"].worker.stop(),
                             state["lifecycle"].worker.stop())
        await state["session"].close()

    async def index_status(self, request):
        return web.json_response(self.state["index"].status())

    async def index_move(self, request):
        """Move a partition's replica (``minis3 partitions move``): the five steps of meta/manager.py."""
        body = await request.json()
        try:
            ev = await self.state["index"].move(str(body["partition"]), str(body["to"]), body.get("reason", "asked"))
        except (MoveError, KeyError) as exc:
            return web.json_response({"code": "MoveFailed", "message": str(exc)}, status=409)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return web.json_response({"code": "MoveFailed", "message": f"a metadata process did not answer "
                                      f"({exc.__class__.__name__}); the index manager resumes the move"},
                                     status=503)
        return web.json_response(ev)

    async def status(self, request):
        st = self.state["scrubber"].status()
        st["workers"].append(self.state["index"].worker.status())    # this process's other workers
        st["workers"].append(self.state["lifecycle"].worker.status())
        st["lifecycle"] = self.state["lifecycle"].status()
        return web.json_response(st)

    async def start(self, request):
        audit = request.query.get("audit") == "1"
        try:
            rate = float(request.query.get("audit_rate", 0))
            rebuild = request.query.get("rebuild_rate")
            rebuild_rate = None if rebuild in (None, "") else float(rebuild)
        except ValueError:
            return web.json_response({"code": "InvalidArgument", "message": "rates are numbers (MB/s)"}, status=400)
        if rate < 0 or (rebuild_rate is not None and rebuild_rate < 0):
            return web.json_response({"code": "InvalidArgument", "message": "rates are >= 0"}, status=400)
        return web.json_response({"pass": self.state["scrubber"].start_pass(audit, rate, rebuild_rate),
                                  "started_unix": self.state["scrubber"].started_unix})

    async def health(self, request):
        return web.json_response({"ok": True, "role": "scrubber"})

    async def metrics(self, request):
        return web.Response(body=prometheus_client.generate_latest(REGISTRY),
                            headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST})


def app(topo) -> web.Application:
    p = _Process(topo)
    return internal_app(topo.cluster_secret, registry=REGISTRY, on_startup=[p.on_start], on_cleanup=[p.on_stop],
                        routes=[web.get("/status", p.status), web.get("/index", p.index_status),
                                web.post("/index/move", p.index_move), web.post("/pass", p.start),
                                web.get("/health", p.health), web.get("/metrics", p.metrics)])


def main(argv: list[str] | None = None) -> None:
    _, topo = process_args("minis3 scrubber", argv)
    begin("scrubber", topo, log, trace_name="scrubber")
    tune_malloc()
    log.info("scrubber on %s: a pass every %.0f s, GC grace %.0f s, node audit %.1f MB/s, rebuild at most "
             "%s, a node down %.0f s is gone (%s)", topo.scrub.url, topo.scrub.interval_s, topo.scrub.gc_grace_s,
             topo.scrub.audit_mb_per_s, f"{topo.scrub.rebuild_mb_per_s:g} MB/s" if topo.scrub.rebuild_mb_per_s
             else "unlimited", topo.scrub.down_after_s, use_fast_event_loop())
    serve(app(topo), topo.scrub.host, topo.scrub.port)
