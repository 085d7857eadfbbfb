"""The scrubber's repairs: each object's fragments planned against the inventories, and rebuilt.

:meth:`Repairer.plan` checks every fragment set of one record (the object's,
or each part's of a multipart object) against the nodes' inventories and its
home placement (scrub/plan.py) and says what to fix. :meth:`Repairer.repair`
makes each fix a rebuild job (``ec.rebuild``) for the node that will hold the
fragment, sent in batches by target node (scrub/batches.py; the node reads
the k sources and lands the fragment itself, storage/rebuild.py), and once
every job succeeded records the new placement. Rebuilds are paced to
``scrub.rebuild_mb_per_s`` of fragment bytes written (``pacer``, a
``TokenBucket`` each batch pays before it is sent), and timed: the rebuild
clock runs while any batch does (``minis3 durability``'s rebuild rate).
"""
from __future__ import annotations

import logging
import time
from typing import Awaitable, Callable

from ..core.ratelimit import TokenBucket
from ..ec import storage_class as SC
from ..ec.codec import Codec, codec_for
from ..ec.rebuild import RebuildJob
from ..storage import blocks
from ..storage.client import FragmentError, StorageClient
from ..storage.rebuild import BATCHES_AT_ONCE
from . import plan as P
from .batches import RebuildBatcher
from .report import (DAMAGED, FRAGMENTS, OBJECTS, REBUILD_READ_BYTES, REBUILD_SECONDS, REBUILT,
                     REBUILT_BYTES, PassReport)
from .scan import ec_units

log = logging.getLogger("minis3.scrub")

REPAIR_CONCURRENCY = 256  # objects whose rebuild jobs are queued or running at once: enough to fill batches
PACED_CONCURRENCY = 256   # the same under a rate limit (the bucket sets the pace; a batch waits its turn)
BATCH_JOBS = 64           # rebuild jobs a batch (one POST /rebuild to the node that receives them)
BATCH_SOURCE_BYTES = 32 << 20   # source fragment bytes a batch reads (a larger job goes alone, in windows)
# Batches in flight to one node: as many as it runs at once. A large object's job
# is a batch alone, so this is how many of them one node rebuilds side by side
# (three: +13% MB/s for 64 MiB objects over two); more would wait in its gate.
BATCHES_PER_NODE = BATCHES_AT_ONCE
PACED_BATCH_S = 0.25      # under a rate limit, a batch writes about rate × this (at least one job)
REBUILD_BURST = 1 << 20   # bytes a rebuild may write at full speed after resting (the rate limiter's bucket)


class Repairer:
    """Plans and repairs objects for every pass of one scrubber. ``write_version``:
    how a new placement is recorded (MetadataRepair.write_version)."""

    def __init__(self, topo, storage: StorageClient,
                 write_version: Callable[[str, str, dict], Awaitable[None]]) -> None:
        er = topo.erasure
        self.codec = Codec(er.k, er.m, er.backend)
        self.storage, self.write_version = storage, write_version
        self.azs = [(az.name, [n.id for n in az.nodes]) for az in topo.azs]
        self.node_az = {n.id: n.az for n in topo.nodes}
        #: Nodes whose disk is full this pass (NodeWatch): their fragments count,
        #: but nothing is rebuilt there or moved home there until it has room.
        self.full: set[str] = set()
        # The rebuild rate limit: fragment bytes written, shared by every repair of a pass.
        self.pacer = TokenBucket(topo.scrub.rebuild_mb_per_s * 1e6, burst=REBUILD_BURST)
        # The rebuild clock: wall time while any rebuild batch runs (several run at once, so
        # their own durations would count the same second up to four times).
        self._repairing = 0
        self._repair_since = 0.0
        #: Since the process started: fragment bytes written and read by repairs,
        #: the time with any running, and the last pass that rebuilt anything.
        self.totals = {"bytes": 0, "read_bytes": 0, "seconds": 0.0, "last_pass": None}

    def concurrency(self, rep: PassReport) -> int:
        """How many objects may be in repair at once in this pass."""
        return PACED_CONCURRENCY if rep.rebuild_rate_mb_per_s * 1e6 else REPAIR_CONCURRENCY

    def batcher(self, rep: PassReport) -> RebuildBatcher:
        """The rebuild batches of one pass, sized for its rate limit."""
        rate = rep.rebuild_rate_mb_per_s * 1e6
        return RebuildBatcher(self.storage, self.pacer, max_jobs=BATCH_JOBS,
                              max_source_bytes=BATCH_SOURCE_BYTES,
                              max_write_bytes=int(rate * PACED_BATCH_S) if rate else None,
                              per_node=BATCHES_PER_NODE, busy=lambda d: self._rebuild_clock(rep, d))

    def codec_of(self, ec: dict) -> Codec:
        """The codec an object was written with (the topology's, unless it changed since)."""
        c, spec = self.codec, (int(ec["k"]), int(ec["m"]), ec.get("backend", self.codec.backend))
        return c if spec == (c.k, c.m, c.backend) else codec_for(*spec)

    # ---------------------------------------------------------------- plan
    def plan(self, rep, ikey, newest, inv, quarantined, referenced, gone: set[str] = frozenset()) -> list:
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
            pl = self._plan_unit(ec, size, inv, quarantined, gone)
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

    def _plan_unit(self, ec: dict, size: int, inv, quarantined, gone: set[str]) -> P.ObjectPlan:
        """The plan of one fragment set (plan.plan_object)."""
        home = SC.home(ec, self.azs)              # a one-zone object's home is its zone's nodes
        cap = SC.max_per_node(ec, self.azs)
        if gone:
            keep = {n for _, nodes in SC.home_azs(ec, self.azs) for n in nodes if n not in gone}
            home = P.home_without(ec["id"], home, self.node_az, keep, cap)
        frag, last, n_seg = self.codec_of(ec).fragment_sizes(size, int(ec["seg"]))

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

        # A one-zone object is rebuilt in its zone, never in another AZ; nothing
        # is written to a full disk (a fragment at home there stays; one whose
        # home it is waits on its handoff node, or is rebuilt on another).
        up = {n for n in inv if n not in self.full and (not ec.get("zone") or self.node_az.get(n) == ec["zone"])}
        return P.plan_object(ec, home, self.node_az, up, held, why_lost, cap=cap)

    # ---------------------------------------------------------------- repair
    async def repair_guarded(self, rep, bucket, key, rec, todo, sem, batcher) -> None:
        """:meth:`repair`, counted in ``rep``; a failure is logged, never
        raised (one object's failure never stops the pass). Releases ``sem``."""
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

    async def repair(self, bucket: str, key: str, rec: dict, todo: list, rep: PassReport,
                     batcher: RebuildBatcher) -> None:
        """Rebuild the fixes of every fragment set of one record (the object's,
        or each part's of a multipart object): one job a set and target node,
        run by that node (``batcher``); then, once every job succeeded, record
        the new placements in one metadata write. Raises FragmentError if a
        job failed (what the others wrote stays, and is counted)."""
        waits = []
        for part, ec, size, pl in todo:
            codec = self.codec_of(ec)
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
            if not self._count_result(rep, f"{bucket}/{key}", part, fixes, res):
                errors.append(res.get("error", "failed"))
        if errors:
            raise FragmentError("; ".join(errors[:3]))
        moved = self._new_placement(rec, todo)
        if moved is not None:
            await self.write_version(bucket, key, moved)

    def _count_result(self, rep: PassReport, name: str, part: int | None, fixes: list, res: dict) -> bool:
        """Count one rebuild job's answer in ``rep``, the totals and the
        metrics; whether it succeeded."""
        read = int(res.get("read", 0))
        rep.rebuild_read_bytes += read
        self.totals["read_bytes"] += read
        REBUILD_READ_BYTES.inc(read)
        if not res.get("ok"):
            return False
        for f in fixes:
            rep.rebuilt[f.why] = rep.rebuilt.get(f.why, 0) + 1
            REBUILT.labels(f.why).inc()
            if len(rep.fixed) < 200:
                rep.fixed.append([name, f.index, f.why, f.target] + ([part + 1] if part is not None else []))
        written = int(res.get("written", 0))
        rep.rebuilt_bytes += written
        self.totals["bytes"] += written
        REBUILT_BYTES.inc(written)
        return True

    @staticmethod
    def _new_placement(rec: dict, todo: list) -> dict | None:
        """The record with every fragment set's new placement, or None if none changed."""
        moved = dict(rec)
        changed = False
        for part, ec, size, pl in todo:
            if pl.final != list(ec["nodes"]):
                changed = True
                if part is None:
                    moved["ec"] = dict(ec, nodes=pl.final)
                else:
                    parts = moved["parts"] = list(moved["parts"])
                    parts[part] = dict(parts[part], ec=dict(ec, nodes=pl.final))
        if not changed:
            return None
        # Later than the last placement, and distinct from one another
        # pass's (equal epochs with different placements would never converge).
        moved["pe"] = max(int(rec.get("pe", 0)) + 1, int(time.time() * 1000))
        return moved

    def _rebuild_clock(self, rep: PassReport, delta: int) -> None:
        """Count a rebuild batch in (+1) or out (-1); time with any running
        (or waiting for the rate limit) is rebuild time."""
        now = time.monotonic()
        if self._repairing:
            spent = now - self._repair_since
            rep.rebuild_seconds += spent
            self.totals["seconds"] += spent
            REBUILD_SECONDS.inc(spent)
        self._repairing += delta
        self._repair_since = now
