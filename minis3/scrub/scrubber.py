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
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
from collections import deque
from dataclasses import dataclass, field

import aiohttp
import prometheus_client
from aiohttp import web

from ..core.hlc import physical_ms
from ..ec.codec import Codec, codec_for, tune_malloc
from ..ec import storage_class as SC
from ..ec.rebuild import RebuildJob
from ..meta.client import PARTS, UPLOADS, MetaClient, Replica, ReplicaError, quorum
from ..meta import blobs
from ..meta.routing import IndexRouter
from ..rpc import tracing
from ..meta.partition import version
from ..meta.manager import IndexManager, MoveError
from ..rpc.delay import InterAZDelay
from ..rpc.http import client_session, internal_app, use_fast_event_loop
from ..storage import blocks
from ..core.ratelimit import TokenBucket
from ..storage.client import FragmentError, StorageClient
from . import plan as P
from .batches import RebuildBatcher

log = logging.getLogger("minis3.scrub")

SCAN_PAGE = 250           # metadata versions per replica request (each holds its replica's event loop)
REPAIR_CONCURRENCY = 256  # objects whose rebuild jobs are queued or running at once: enough to fill batches
PACED_CONCURRENCY = 256   # the same under a rate limit (the bucket sets the pace; a batch waits its turn)
BATCH_JOBS = 64           # rebuild jobs a batch (one POST /rebuild to the node that receives them)
BATCH_SOURCE_BYTES = 32 << 20   # source fragment bytes a batch reads (a larger job goes alone, in windows)
BATCHES_PER_NODE = 2      # batches in flight to one node: one runs while the next fills
PACED_BATCH_S = 0.25      # under a rate limit, a batch writes about rate × this (at least one job)
REBUILD_BURST = 1 << 20   # bytes a rebuild may write at full speed after resting (the rate limiter's bucket)
PROBE_EVERY = 1.0         # seconds between node health probes
SOON = 3.0                # seconds to the next pass after one that repaired something
AUDIT_WAIT = 3600.0       # seconds a pass waits for the nodes' audits at most
FRESH_MS = 1_000          # versions stamped after the inventories began, less this (clock skew), wait for the next pass

REGISTRY = prometheus_client.CollectorRegistry()
_C = lambda name, doc, *labels: prometheus_client.Counter(name, doc, labels, registry=REGISTRY)  # noqa: E731
_G = lambda name, doc: prometheus_client.Gauge(name, doc, registry=REGISTRY)  # noqa: E731
PASSES = _C("minis3_scrub_passes", "scrub passes finished")
OBJECTS = _C("minis3_scrub_objects_checked", "erasure-coded objects whose placement was checked")
FRAGMENTS = _C("minis3_scrub_fragments_checked", "fragments checked against the nodes' inventories")
DAMAGED = _C("minis3_scrub_fragments_damaged", "fragments found missing or quarantined", "why")
REBUILT = _C("minis3_scrub_fragments_rebuilt", "fragments written: rebuilt, or moved home", "why")
REBUILT_BYTES = _C("minis3_scrub_bytes_rebuilt", "fragment bytes written by repairs")
REBUILD_READ_BYTES = _C("minis3_scrub_bytes_read_for_rebuild", "fragment bytes read by repairs (k per segment rebuilt)")
NODES_GONE = _G("minis3_scrub_nodes_gone", "nodes down longer than scrub.down_after_s: their fragments are rebuilt elsewhere")
REBUILD_SECONDS = _C("minis3_scrub_rebuild_seconds",
                     "seconds during which at least one repair was running (rebuild rate = bytes rebuilt / this)")
META_REPAIRS = _C("minis3_scrub_meta_repairs", "stale metadata replica versions overwritten by the newest")
ORPHANS = _C("minis3_gc_orphans_removed", "unreferenced fragments deleted after the grace period")
ORPHAN_BYTES = _C("minis3_gc_bytes_removed", "bytes of unreferenced fragments deleted")
PASS_SECONDS = _G("minis3_scrub_last_pass_seconds", "duration of the last finished pass")
DEGRADED = _G("minis3_scrub_objects_not_full", "objects not at full redundancy after the last pass")
RECOVERY_SECONDS = _G("minis3_scrub_redundancy_restored_seconds",
                      "seconds from a node's return to every object at full redundancy, last time")


@dataclass
class PassReport:
    """What one pass saw and did (also its live progress while it runs)."""
    id: int
    started_unix: float
    phase: str = "starting"
    audit: bool = False
    nodes_up: list[str] = field(default_factory=list)
    nodes_down: list[str] = field(default_factory=list)
    nodes_gone: list[str] = field(default_factory=list)   # down longer than down_after_s: fragments rebuilt elsewhere
    audit_bytes: int = 0
    audit_fragments: int = 0
    corrupt_found: int = 0           # by this pass's audits
    inventory_unix: float = 0.0      # when the inventories were asked for
    keys_total: int = 0              # estimate, for progress
    keys_done: int = 0
    objects: int = 0                 # erasure-coded objects checked
    fragments: int = 0
    damaged: dict = field(default_factory=dict)       # why → count
    rebuilt: dict = field(default_factory=dict)       # why → count
    rebuilt_bytes: int = 0           # fragment bytes written by repairs (what the rebuild rate counts)
    rebuild_read_bytes: int = 0      # fragment bytes read to rebuild them (k per segment)
    rebuild_seconds: float = 0.0     # time with at least one repair running (minis3 durability's rebuild rate)
    rebuild_rate_mb_per_s: float = 0.0   # the rate limit this pass ran with (0: none)
    repair_failures: int = 0
    not_full: int = 0
    unrepairable: list = field(default_factory=list)  # [key, problem], first few
    meta_repairs: int = 0
    parts_cleaned: int = 0           # part records of finished or abandoned uploads
    replicas_scanned: int = 0
    orphans_removed: int = 0
    orphan_bytes: int = 0
    gc_skipped: str | None = None
    complete: bool = False           # every replica's scan finished
    seconds: float | None = None
    fixed: list = field(default_factory=list)         # [key, index, why, node], first 200

    def as_dict(self) -> dict:
        return dict(self.__dict__)


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


class Scrubber:
    def __init__(self, topo, session: aiohttp.ClientSession):
        self.topo = topo
        er = topo.erasure
        self.codec = Codec(er.k, er.m, er.backend)
        self.session = session
        self.storage = StorageClient(session, {n.id: n.url for n in topo.nodes})
        self.meta = MetaClient.for_topology(session, topo)
        self.router = self.meta.router
        self.replicas = self.meta.replicas            # each AZ's home metadata process
        self.azs = [(az.name, [n.id for n in az.nodes]) for az in topo.azs]
        self.node_az = {n.id: n.az for n in topo.nodes}
        self.grace = topo.scrub.gc_grace_s
        self.up: dict[str, bool] = {n.id: True for n in topo.nodes}
        # node → when a probe first found it down (monotonic), while it stays down.
        # (A scrubber that restarts times a node down from its own start: later, never sooner.)
        self.down_since: dict[str, float] = {}
        self.gone_seen: set[str] = set()              # nodes already reported gone
        # The rebuild rate limit: fragment bytes written, shared by every repair of a pass.
        self.rebuild_pacer = TokenBucket(topo.scrub.rebuild_mb_per_s * 1e6, burst=REBUILD_BURST)
        self.returned_at: float | None = None        # monotonic: a node came back, not yet all full
        self.returned_nodes: set[str] = set()
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
        self._wake = asyncio.Event()
        # The rebuild clock: wall time while any rebuild batch runs (several run at once, so
        # their own durations would count the same second up to four times).
        self._repairing = 0
        self._repair_since = 0.0
        self.rebuild = {"bytes": 0, "read_bytes": 0, "seconds": 0.0, "last_pass": None}

    # ---------------------------------------------------------------- nodes
    async def _probe(self, node_id: str) -> bool:
        try:
            async with self.session.get(self.storage.urls[node_id] + "/health",
                                        timeout=aiohttp.ClientTimeout(total=1.0)) as r:
                return r.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            return False

    async def probe_nodes(self) -> set[str]:
        """Probe every node. The recovery clock starts when the outage is over:
        a node came back and every node answers (reset while any is down)."""
        ids = list(self.storage.urls)
        results = await asyncio.gather(*(self._probe(n) for n in ids))
        now = time.monotonic()
        came_back = False
        for n, ok in zip(ids, results):
            if ok and not self.up.get(n, True):
                log.info("node %s is back: a pass starts now", n)
                self.returned_nodes.add(n)
                came_back = True
                self._wake.set()
            elif not ok and self.up.get(n, True):
                log.warning("node %s is down", n)
            if ok:
                self.down_since.pop(n, None)
            else:
                self.down_since.setdefault(n, now)
            self.up[n] = ok
        if not all(results):
            self.returned_at = None
        elif came_back:
            self.returned_at = now
        gone = self.gone()
        for n in sorted(gone - self.gone_seen):
            log.warning("node %s has been down %.0f s (scrub.down_after_s): its fragments are lost, "
                        "a pass rebuilds them on other nodes", n, now - self.down_since[n])
            self._wake.set()
        self.gone_seen = gone
        NODES_GONE.set(len(gone))
        return {n for n, ok in zip(ids, results) if ok}

    def gone(self) -> set[str]:
        """The nodes down for longer than ``scrub.down_after_s`` (plan.gone_nodes)."""
        return P.gone_nodes(self.down_since, time.monotonic(), self.topo.scrub.down_after_s)

    async def _audit(self, nodes: set[str], rate: float, rep: PassReport) -> None:
        async def one(n: str) -> dict | None:
            deadline = time.monotonic() + AUDIT_WAIT
            try:
                started = await self.storage.start_audit(n, rate)
                while True:
                    st = await self.storage.audit_status(n)
                    last = st.get("last_pass") or {}
                    if last.get("id", -1) >= started["pass"]:
                        return last
                    if not st.get("running"):
                        # The node restarted and forgot the request: its
                        # fragments are audited by its own next pass.
                        log.warning("audit on %s was lost (the node restarted?)", n)
                        return None
                    if time.monotonic() > deadline:
                        log.warning("audit on %s still running after %.0f s: going on without it", n, AUDIT_WAIT)
                        return None
                    await asyncio.sleep(0.2)
            except (FragmentError, aiohttp.ClientError, asyncio.TimeoutError, OSError, KeyError) as exc:
                log.warning("audit on %s failed: %s", n, exc)
                return None
        for last in await asyncio.gather(*(one(n) for n in sorted(nodes))):
            if last:
                rep.audit_bytes += last.get("bytes", 0)
                rep.audit_fragments += last.get("files", 0)
                rep.corrupt_found += last.get("corrupt", 0)

    async def _inventories(self, nodes: set[str]):
        inv: dict[str, dict[tuple[str, int], tuple[int, float]]] = {}
        received: dict[str, float] = {}
        quarantined: dict[str, set[tuple[str, int]]] = {}

        async def one(n: str) -> None:
            try:
                frags = {(oid, int(idx)): (size, age) for oid, idx, size, age in await self.storage.inventory(n)}
                q = {(it["object_id"], int(it["index"])) for it in await self.storage.quarantine(n)}
            except (FragmentError, aiohttp.ClientError, asyncio.TimeoutError, OSError, KeyError, ValueError) as exc:
                log.warning("inventory of %s failed: %s", n, exc)
                return
            inv[n], quarantined[n], received[n] = frags, q, time.monotonic()
        await asyncio.gather(*(one(n) for n in sorted(nodes)))
        return inv, received, quarantined

    # ---------------------------------------------------------------- a pass
    async def _estimate_keys(self) -> int:
        for r in self.replicas:
            try:
                # /index/stats, not /status: its counts need no walk over every
                # record (at 500,000 keys that walk held the replica's event loop 0.3-0.5 s).
                st = await r.call("GET", "/index/stats")
                return sum(p.get("keys", 0) for p in st.get("partitions", []))
            except ReplicaError:
                continue
        return 0

    async def run_pass(self, *, audit: bool = False, audit_rate: float = 0.0,
                       rebuild_rate: float | None = None) -> PassReport:
        """One pass (module docstring). ``rebuild_rate``: MB/s of fragments
        written for this pass (0: no limit; None: ``scrub.rebuild_mb_per_s``)."""
        self.passes += 1
        rep = self.current = PassReport(id=self.passes, started_unix=time.time(), audit=audit)
        rate = self.topo.scrub.rebuild_mb_per_s if rebuild_rate is None else rebuild_rate
        rep.rebuild_rate_mb_per_s = rate
        self.rebuild_pacer.set_rate(rate * 1e6)
        t0 = time.monotonic()
        try:
            rep.phase = "probing nodes"
            up = await self.probe_nodes()
            rep.nodes_up, rep.nodes_down = sorted(up), sorted(set(self.storage.urls) - up)
            if audit:
                rep.phase = "auditing fragments on the nodes"
                await self._audit(up, audit_rate, rep)
            rep.phase = "listing the nodes' inventories"
            rep.inventory_unix = time.time()
            inv, received, quarantined = await self._inventories(up)
            # Down long enough to be gone, and still not answering: its fragments are lost.
            gone = {n for n in self.gone() if n not in inv}
            rep.nodes_gone = sorted(gone)
            referenced: dict[str, set[tuple[str, int]]] = {n: set() for n in inv}
            rep.keys_total = await self._estimate_keys()
            rep.phase = "walking the metadata"
            buckets = await self._walk_buckets(rep)
            complete = await self._walk_objects(rep, inv, quarantined, referenced, buckets, gone)
            rep.phase = "collecting garbage"
            rep.complete = complete
            if complete:
                await self._collect(rep, inv, received, referenced, t0)
            else:
                rep.gc_skipped = "not every metadata replica could be scanned"
            rep.phase = "done"
        except Exception:
            log.exception("scrub pass %d failed", rep.id)
            rep.phase = "failed"
        rep.seconds = round(time.monotonic() - t0, 3)
        self._finish(rep)
        return rep

    def _finish(self, rep: PassReport) -> None:
        PASSES.inc()
        PASS_SECONDS.set(rep.seconds or 0)
        DEGRADED.set(rep.not_full)
        if rep.rebuilt_bytes:
            self.rebuild["last_pass"] = {"pass": rep.id, "bytes": rep.rebuilt_bytes,
                                         "rebuild_seconds": round(rep.rebuild_seconds, 3),
                                         "pass_seconds": rep.seconds}
        interval = self.topo.scrub.interval_s
        repaired = sum(rep.rebuilt.values()) or rep.repair_failures
        self.next_pass = time.monotonic() + (min(SOON, interval) if rep.phase != "done" or repaired else interval)
        if (rep.phase == "done" and rep.complete and rep.not_full == 0 and not rep.nodes_down
                and self.returned_at is not None):
            secs = round(time.monotonic() - self.returned_at, 3)
            self.last_recovery = {"nodes": sorted(self.returned_nodes), "seconds": secs,
                                  "finished_unix": time.time(), "pass": rep.id}
            RECOVERY_SECONDS.set(secs)
            log.info("full redundancy %.2f s after %s came back", secs, ", ".join(sorted(self.returned_nodes)))
            self.returned_at, self.returned_nodes = None, set()
        self.last, self.current = rep, None
        log.info("scrub pass %d: %d objects, %d damaged, %d rebuilt, %d moved home, %d meta repairs, "
                 "%d orphans removed, %d not full, %.2f s", rep.id, rep.objects, sum(rep.damaged.values()),
                 sum(v for k, v in rep.rebuilt.items() if k != "handoff"), rep.rebuilt.get("handoff", 0),
                 rep.meta_repairs, rep.orphans_removed, rep.not_full, rep.seconds or 0)

    async def _walk_buckets(self, rep: PassReport) -> set[str] | None:
        """Anti-entropy of the buckets table; the live bucket names (None if a scan broke off)."""
        live: set[str] = set()
        failed: list[bool] = []
        async for name, versions, alive in merged_scan(self.replicas, "buckets", failed):
            newest = await self._anti_entropy(rep, "/v/bucket", {"name": name}, versions, alive)
            if newest and not newest.get("deleted"):
                live.add(name)
        return None if any(failed) else live

    async def _anti_entropy(self, rep: PassReport, path: str, ident: dict, versions, alive,
                            ikey: str | None = None) -> dict | None:
        """Write the newest version to each AZ's replica that lacks it (of an
        object: at the process holding its range; else at the home process)."""
        newest, stale = P.newest_and_stale([v if a else None for v, a in zip(versions, alive)], version)
        repair = newest
        if stale and blobs.is_marker((newest or {}).get("inline")):
            # The scan sent the inline payload's marker (meta/blobs.py): fetch the record itself.
            repair = await self._record_with_payload(ident, ikey, versions, alive, newest)
            if repair is None:
                return newest
        for i in stale:
            if not alive[i]:
                continue
            try:
                await self.meta.call_routed(self.router.replica_in(self.replicas[i].az, ikey) if ikey else
                                            self.replicas[i], ikey, "POST", path, json=dict(ident, record=repair))
                rep.meta_repairs += 1
                META_REPAIRS.inc()
            except ReplicaError as exc:
                log.warning("anti-entropy write to %s failed: %s", self.replicas[i].name, exc)
        return newest

    async def _record_with_payload(self, ident: dict, ikey: str | None, versions, alive, newest: dict) -> dict | None:
        """The newest version with its inline payload, from a replica that has it (None: none answered)."""
        for i, (v, a) in enumerate(zip(versions, alive)):
            if not a or v is None or version(v) != version(newest):
                continue
            try:
                body = await self.meta.call_routed(self.router.replica_in(self.replicas[i].az, ikey), ikey, "GET",
                                                   "/v/object", params=dict(ident, peer="1"))
            except ReplicaError as exc:
                log.warning("could not fetch %s from %s for a repair: %s", ikey, self.replicas[i].name, exc)
                continue
            got = body.get("object")
            if got is not None and version(got) == version(newest):
                return got
        return None

    async def _walk_objects(self, rep, inv, quarantined, referenced, buckets: set[str] | None,
                            gone: set[str] = frozenset()) -> bool:
        rate = rep.rebuild_rate_mb_per_s * 1e6
        sem = asyncio.Semaphore(PACED_CONCURRENCY if rate else REPAIR_CONCURRENCY)
        batcher = RebuildBatcher(self.storage, self.rebuild_pacer, max_jobs=BATCH_JOBS,
                                 max_source_bytes=BATCH_SOURCE_BYTES,
                                 max_write_bytes=int(rate * PACED_BATCH_S) if rate else None,
                                 per_node=BATCHES_PER_NODE, busy=lambda d: self._rebuild_clock(rep, d))
        repairs: set[asyncio.Task] = set()
        failed: list[bool] = []
        part_records: dict[str, list[tuple[str, dict]]] = {}      # upload id → its live part records
        fresh_ms = rep.inventory_unix * 1000 - FRESH_MS
        live_uploads: set[str] = set()
        async for ikey, versions, alive in merged_scan(self.replicas, "objects", failed, self.router,
                                                       self.topo.scrub.meta_keys_per_s):
            rep.keys_done += 1
            bucket, _, key = ikey.partition("/")
            newest = await self._anti_entropy(rep, "/v/object", {"bucket": bucket, "key": key}, versions, alive,
                                              ikey)
            for v in versions:                      # every replica's version keeps its fragments
                for _, ec, _ in ec_units(v):
                    for idx, node in enumerate(ec["nodes"]):
                        if node in referenced:
                            referenced[node].add((ec["id"], idx))
            if not newest or newest.get("deleted"):
                continue
            if ikey.startswith(PARTS):
                part_records.setdefault(key.partition("/")[0], []).append((key, newest))
            elif ikey.startswith(UPLOADS):
                if buckets is not None and key.partition("/")[0] not in buckets:
                    # Its bucket was deleted: S3 drops incomplete uploads with it.
                    await self._tombstone(rep, ikey, newest)
                else:
                    live_uploads.add(key[-32:])
            if physical_ms(int(newest["ts"])) > fresh_ms:
                continue          # committed after the inventories were taken: the next pass looks
            try:
                todo = self._plan(rep, ikey, newest, inv, quarantined, referenced, gone)
            except Exception as exc:          # an odd record never stops the pass
                log.warning("cannot check %s: %s", ikey, exc)
                rep.not_full += 1
                if len(rep.unrepairable) < 50:
                    rep.unrepairable.append([ikey, f"cannot check: {exc.__class__.__name__}: {exc}"])
                continue
            if not todo:
                continue
            await sem.acquire()
            task = asyncio.ensure_future(self._repair_guarded(rep, bucket, key, newest, todo, sem, batcher))
            repairs.add(task)
            task.add_done_callback(repairs.discard)
        if repairs:
            await asyncio.gather(*repairs)
        await batcher.close()
        rep.replicas_scanned = failed.count(False)
        complete = not any(failed)          # (a replica whose scan broke off stays failed)
        if complete:
            await self._clean_parts(rep, part_records, live_uploads)
        return complete

    def _plan(self, rep, ikey, newest, inv, quarantined, referenced, gone: set[str] = frozenset()) -> list:
        """Plan every fragment set of one record against the inventories
        (``inv``: node → {(oid, idx): (size, age)}, nodes that answered only);
        return the sets with fixes to make. A fragment on a ``gone`` node is
        lost, and only its home moves, to a node left (``plan.home_without``)."""
        units = ec_units(newest)
        if units:
            rep.objects += 1
            OBJECTS.inc()
        plans = []
        for part, ec, size in units:
            rep.fragments += len(ec["nodes"])
            FRAGMENTS.inc(len(ec["nodes"]))
            home = SC.home(ec, self.azs)              # a one-zone object's home is its zone's nodes
            cap = SC.max_per_node(ec, self.azs)
            if gone:
                keep = {n for _, nodes in SC.home_azs(ec, self.azs) for n in nodes if n not in gone}
                home = P.home_without(ec["id"], home, self.node_az, keep, cap)
            frag, last, n_seg = self._codec(ec).fragment_sizes(size, int(ec["seg"]))

            def held(node: str, oid: str, idx: int):
                if node in gone:
                    return False                  # down too long: lost
                if node not in inv:
                    return None                   # down: unknown
                got = inv[node].get((oid, idx))
                return got is not None and got[0] == blocks.expected_file_size(oid, idx, node, frag, last, n_seg)

            def why_lost(node: str, oid: str, idx: int) -> str:
                if node in gone:
                    return "node gone"
                if (oid, idx) in inv[node]:
                    return "truncated"            # whole blocks missing: its checksums cannot show it
                return "quarantined" if (oid, idx) in quarantined.get(node, ()) else "missing"

            # A one-zone object is rebuilt in its zone, never in another AZ.
            up = {n for n in inv if not ec.get("zone") or self.node_az.get(n) == ec["zone"]}
            pl = P.plan_object(ec, home, self.node_az, up, held, why_lost, cap=cap)
            for f in pl.damaged:
                rep.damaged[f.why] = rep.damaged.get(f.why, 0) + 1
                DAMAGED.labels(f.why).inc()
            if pl.problem and len(rep.unrepairable) < 50:
                rep.unrepairable.append([ikey if part is None else f"{ikey} part {part + 1}", pl.problem])
            for f in pl.fixes:                 # the new copies are referenced too
                if f.target in referenced:
                    referenced[f.target].add((ec["id"], f.index))
            plans.append((part, ec, size, pl))
        if any(pl.problem or (not pl.fixes and not pl.full) for *_, pl in plans):
            rep.not_full += 1
        return [u for u in plans if u[3].fixes and not u[3].problem]

    async def _clean_parts(self, rep, part_records: dict, live_uploads: set[str]) -> None:
        """Part records of uploads that are gone (completed: the manifest now
        points at the fragments it needs; aborted, or cut short by a crash)
        are tombstoned once older than the grace period; the next passes'
        GC then removes every fragment nothing points at any more."""
        for uid, recs in part_records.items():
            if uid in live_uploads:
                continue
            for key, rec in recs:
                await self._tombstone(rep, PARTS + key, rec)

    async def _tombstone(self, rep, ikey: str, rec: dict) -> None:
        """Delete a raw record (a part or an upload that is gone) once older
        than the grace period, with a version just newer than it: no later
        write can exist for an upload that is gone."""
        if physical_ms(int(rec["ts"])) >= (time.time() - self.grace) * 1000:
            return
        bucket, _, key = ikey.partition("/")
        try:
            await self._write_version(bucket, key, {"ts": int(rec["ts"]) + 1, "vid": "scrubber", "deleted": True})
            rep.parts_cleaned += 1
        except Exception as exc:       # noqa: BLE001 - the next pass tries again
            log.warning("could not clean record %r: %s", ikey, exc)

    def _rebuild_clock(self, rep: PassReport, delta: int) -> None:
        """Count a rebuild batch in (+1) or out (-1); time with any running
        (or waiting for the rate limit) is rebuild time."""
        now = time.monotonic()
        if self._repairing:
            spent = now - self._repair_since
            rep.rebuild_seconds += spent
            self.rebuild["seconds"] += spent
            REBUILD_SECONDS.inc(spent)
        self._repairing += delta
        self._repair_since = now

    async def _repair_guarded(self, rep, bucket, key, rec, todo, sem, batcher) -> None:
        try:
            await self.repair(bucket, key, rec, todo, rep, batcher)
            ok = True
        except Exception as exc:                    # one object's failure never stops the pass
            log.warning("repair of %s/%s failed: %s", bucket, key, exc)
            ok = False
        finally:
            sem.release()
        if not ok:
            rep.repair_failures += 1
            rep.not_full += 1
        elif any(pl.unknown for *_, pl in todo):
            rep.not_full += 1

    def _codec(self, ec: dict) -> Codec:
        """The codec an object was written with (the topology's, unless it changed since)."""
        c, spec = self.codec, (int(ec["k"]), int(ec["m"]), ec.get("backend", self.codec.backend))
        return c if spec == (c.k, c.m, c.backend) else codec_for(*spec)

    # ---------------------------------------------------------------- repair
    async def repair(self, bucket: str, key: str, rec: dict, todo: list, rep: PassReport,
                     batcher: RebuildBatcher) -> None:
        """Rebuild the fixes of every fragment set of one record (the object's,
        or each part's of a multipart object): one job a set and target node,
        run by that node (``batcher``); then, once every job succeeded, record
        the new placements in one metadata write. Raises FragmentError if a
        job failed (what the others wrote stays, and is counted)."""
        moved = dict(rec)
        changed = False
        waits = []
        for part, ec, size, pl in todo:
            codec = self._codec(ec)
            srcs = P.sources_for(pl, int(ec["k"]))
            targets: dict[str, list] = {}
            for f in pl.fixes:
                targets.setdefault(f.target, []).append(f)
            for target, fixes in targets.items():
                job = RebuildJob.for_fixes(ec, size, srcs, [f.index for f in fixes])
                frag = job.fragment_bytes(codec)
                waits.append((part, fixes, batcher.submit(target, job, job.k * frag, frag * len(fixes))))
        errors = []
        for (part, fixes, fut) in waits:
            res = await fut
            read = int(res.get("read", 0))
            rep.rebuild_read_bytes += read
            self.rebuild["read_bytes"] += read
            REBUILD_READ_BYTES.inc(read)
            if not res.get("ok"):
                errors.append(res.get("error", "failed"))
                continue
            for f in fixes:
                rep.rebuilt[f.why] = rep.rebuilt.get(f.why, 0) + 1
                REBUILT.labels(f.why).inc()
                if len(rep.fixed) < 200:
                    rep.fixed.append([f"{bucket}/{key}", f.index, f.why, f.target] + ([part + 1] if part is not None
                                                                                      else []))
            written = int(res.get("written", 0))
            rep.rebuilt_bytes += written
            self.rebuild["bytes"] += written
            REBUILT_BYTES.inc(written)
        if errors:
            raise FragmentError("; ".join(errors[:3]))
        for part, ec, size, pl in todo:
            if pl.final != list(ec["nodes"]):
                changed = True
                if part is None:
                    moved["ec"] = dict(ec, nodes=pl.final)
                else:
                    parts = moved["parts"] = list(moved["parts"])
                    parts[part] = dict(parts[part], ec=dict(ec, nodes=pl.final))
        if changed:
            # Later than the last placement, and distinct from one another
            # pass's (equal epochs with different placements would never converge).
            moved["pe"] = max(int(rec.get("pe", 0)) + 1, int(time.time() * 1000))
            await self._write_version(bucket, key, moved)

    async def _write_version(self, bucket: str, key: str, record: dict) -> None:
        """Send a version to every replica; return when two have it (each keeps it only if newer)."""
        body = {"bucket": bucket, "key": key, "record": record}
        ikey = bucket + "/" + key
        await quorum(self.router.replicas_for(ikey), lambda r: self.meta.call_routed(r, ikey, "POST", "/v/object",
                                                                                     json=body),
                     2, finish_in_background=True)

    # ---------------------------------------------------------------- garbage
    async def _collect(self, rep, inv, received, referenced, t0: float) -> None:
        async def one(node: str) -> None:
            min_age = P.gc_min_age(self.grace, t0, received[node])
            entries = [(oid, idx, size, age) for (oid, idx), (size, age) in inv[node].items()]
            refs = referenced[node]
            for oid, idx in P.orphans(entries, lambda o, i: (o, i) in refs, min_age):
                removed = await self.storage.delete(node, oid, idx, min_age_s=self.grace)
                if removed:
                    size = inv[node][(oid, idx)][0]
                    rep.orphans_removed += 1
                    rep.orphan_bytes += size
                    ORPHANS.inc()
                    ORPHAN_BYTES.inc(size)
        await asyncio.gather(*(one(n) for n in sorted(inv)))
        await self._forget_gc_notes()

    async def _forget_gc_notes(self) -> None:
        """The replicas' GC notes (why a fragment became garbage) are history
        once older than the grace period: the inventory GC has dealt with them."""
        cutoff_ms = (time.time() - self.grace) * 1000
        for r in self.replicas:
            try:
                items = (await r.call("GET", "/gc"))["items"]
                old = [it["id"] for it in items if physical_ms(int(it.get("ts", 0))) < cutoff_ms]
                if old:
                    await r.call("POST", "/gc/forget", json={"ids": old})
            except ReplicaError:
                continue

    # ---------------------------------------------------------------- loop and HTTP
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

    async def loop(self) -> None:
        """Probe the nodes every PROBE_EVERY seconds (also while a pass runs,
        so a node's return is timed from when it answers); start a pass when
        one is due or a node came back."""
        self.next_pass = time.monotonic() + self.topo.scrub.interval_s
        while True:
            await self.probe_nodes()
            running = self._pass_task is not None and not self._pass_task.done()
            if not running and (self._wake.is_set() or time.monotonic() >= self.next_pass):
                self._wake.clear()
                self._pass_task = asyncio.ensure_future(self.run_pass())
            try:
                await asyncio.wait_for(self._wake.wait(), PROBE_EVERY)
            except asyncio.TimeoutError:
                pass
            if running and self._wake.is_set():
                await asyncio.sleep(PROBE_EVERY)      # a pass is running: the wake waits for it

    def status(self) -> dict:
        now = time.monotonic()
        return {"role": "scrubber", "pid": os.getpid(), "passes": self.passes, "started_unix": self.started_unix,
                "running": self.current.as_dict() if self.current else None,
                "last_pass": self.last.as_dict() if self.last else None,
                "last_recovery": self.last_recovery, "nodes_up": self.up,
                "nodes_down_for_s": {n: round(now - t, 1) for n, t in sorted(self.down_since.items())},
                "nodes_gone": sorted(self.gone_seen),
                # Since the process started: fragment bytes written by repairs, and the time
                # with any repair running; their ratio is the rebuild rate (minis3 durability).
                "rebuild": dict(self.rebuild, seconds=round(self.rebuild["seconds"], 3)),
                "settings": {"interval_s": self.topo.scrub.interval_s, "gc_grace_s": self.grace,
                             "audit_mb_per_s": self.topo.scrub.audit_mb_per_s,
                             "rebuild_mb_per_s": self.topo.scrub.rebuild_mb_per_s,
                             "down_after_s": self.topo.scrub.down_after_s}}


def app(topo) -> web.Application:
    a = internal_app(topo.cluster_secret, registry=REGISTRY)
    state: dict = {}

    async def on_start(app_: web.Application) -> None:
        state["session"] = client_session(topo.cluster_secret, timeout_s=30,
                                          delay=InterAZDelay.for_topology(topo, None))
        state["scrubber"] = Scrubber(topo, state["session"])
        state["loop"] = asyncio.ensure_future(state["scrubber"].loop())
        # The index manager shares this process (and its session): see meta/manager.py.
        state["index"] = IndexManager(topo, state["session"])
        state["index_loop"] = asyncio.ensure_future(state["index"].loop())

    async def on_stop(app_: web.Application) -> None:
        for task in ("loop", "index_loop"):
            state[task].cancel()
        await asyncio.gather(state["loop"], state["index_loop"], return_exceptions=True)
        await state["session"].close()

    async def index_status(request):
        return web.json_response(state["index"].status())

    async def index_move(request):
        """Move a partition's replica (``minis3 partitions move``): the five steps of meta/manager.py."""
        body = await request.json()
        try:
            ev = await state["index"].move(str(body["partition"]), str(body["to"]), body.get("reason", "asked"))
        except (MoveError, KeyError) as exc:
            return web.json_response({"code": "MoveFailed", "message": str(exc)}, status=409)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return web.json_response({"code": "MoveFailed", "message": f"a metadata process did not answer "
                                      f"({exc.__class__.__name__}); the index manager resumes the move"},
                                     status=503)
        return web.json_response(ev)

    async def status(request):
        return web.json_response(state["scrubber"].status())

    async def start(request):
        audit = request.query.get("audit") == "1"
        try:
            rate = float(request.query.get("audit_rate", 0))
            rebuild = request.query.get("rebuild_rate")
            rebuild_rate = None if rebuild in (None, "") else float(rebuild)
        except ValueError:
            return web.json_response({"code": "InvalidArgument", "message": "rates are numbers (MB/s)"}, status=400)
        if rate < 0 or (rebuild_rate is not None and rebuild_rate < 0):
            return web.json_response({"code": "InvalidArgument", "message": "rates are >= 0"}, status=400)
        return web.json_response({"pass": state["scrubber"].start_pass(audit, rate, rebuild_rate),
                                  "started_unix": state["scrubber"].started_unix})

    async def health(request):
        return web.json_response({"ok": True, "role": "scrubber"})

    async def metrics(request):
        return web.Response(body=prometheus_client.generate_latest(REGISTRY),
                            headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST})

    a.router.add_get("/status", status)
    a.router.add_get("/index", index_status)
    a.router.add_post("/index/move", index_move)
    a.router.add_post("/pass", start)
    a.router.add_get("/health", health)
    a.router.add_get("/metrics", metrics)
    a.on_startup.append(on_start)
    a.on_cleanup.append(on_stop)
    return a


def main(argv: list[str] | None = None) -> None:
    from .. import config
    from ..rpc.logs import setup_logging
    p = argparse.ArgumentParser(prog="minis3 scrubber")
    config.add_arguments(p)
    a = p.parse_args(argv)
    topo = config.from_args(a)
    setup_logging("scrubber")
    tracing.configure("scrubber")
    tune_malloc()
    log.info("scrubber on %s: a pass every %.0f s, GC grace %.0f s, node audit %.1f MB/s, rebuild at most "
             "%s, a node down %.0f s is gone (%s)", topo.scrub.url, topo.scrub.interval_s, topo.scrub.gc_grace_s,
             topo.scrub.audit_mb_per_s, f"{topo.scrub.rebuild_mb_per_s:g} MB/s" if topo.scrub.rebuild_mb_per_s
             else "unlimited", topo.scrub.down_after_s, use_fast_event_loop())
    web.run_app(app(topo), host=topo.scrub.host, port=topo.scrub.port, print=None, access_log=None,
                handle_signals=True)
