"""A storage node's background audit: passes that re-read and check every fragment file.

:class:`Auditor` runs the passes for one node: continuous ones at the
configured rate (``[scrub] audit_mb_per_s``; 0: none), and a full pass now
when ``POST /audit`` asks for one. Each file is checked in a worker thread a
chunk at a time (storage/audit.py, which also states the ``POST /audit`` and
``GET /audit`` contract), paced by a token bucket; a file found bad is moved
to quarantine (storage/quarantine.py). :class:`AuditPass` is one pass's
progress, as ``GET /audit`` shows it.
"""
from __future__ import annotations

import asyncio
import errno
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..core.ratelimit import TokenBucket
from ..rpc.worker import Worker
from . import audit
from .metrics import NodeMetrics
from .quarantine import Quarantine

log = logging.getLogger("minis3.storage")

#: The node audit charges each file at least this many bytes of its rate.
AUDIT_FILE_COST = 256 << 10

#: A continuous audit pass that took less than this waits out the rest before
#: the next one, so a node with few files does not spin re-reading them.
MIN_PASS_S = 1.0


@dataclass
class AuditPass:
    """The progress of one audit pass (GET /audit shows the current or latest one)."""
    id: int
    rate_mb_per_s: float                 # 0: unlimited
    started_unix: float
    started_mono: float
    running: bool = True
    files_total: int = 0                 # counted when the pass starts
    files_done: int = 0
    bytes_verified: int = 0
    corrupt_found: int = 0
    requested: bool = False              # by POST /audit (else one of the continuous passes)


class Auditor:
    """The audit of one node: ``frag_dir`` and ``path_for(oid, idx)`` say
    where its fragment files are; a bad one goes to ``quarantine``; progress
    is counted in ``metrics``. ``rate_mb_per_s``: the continuous audit's rate
    (0: only passes asked for by POST /audit)."""

    def __init__(self, node_id: str, frag_dir: Path, path_for: Callable[[str, int], Path],
                 quarantine: Quarantine, metrics: NodeMetrics, rate_mb_per_s: float) -> None:
        self.node_id, self.frag_dir, self.path_for = node_id, frag_dir, path_for
        self.quarantine, self.metrics = quarantine, metrics
        self.rate_mb_per_s = float(rate_mb_per_s)
        self.current: AuditPass | None = None        # the current pass, or the latest
        self.last_pass: dict | None = None           # the latest *finished* pass
        self._last_pass_id = 0
        self._requested: AuditPass | None = None     # asked for by POST /audit, not started yet
        self._switch = asyncio.Lock()
        self.worker = Worker("audit", self._round, self._until_next_round, registry=metrics.registry)

    def _new_pass(self, rate_mb_per_s: float) -> AuditPass:
        # The start time in unix ms, at least one more than the last id: ids
        # grow within a process and (clock permitting) across restarts.
        now = time.time()
        self._last_pass_id = max(self._last_pass_id + 1, int(now * 1000))
        p = AuditPass(self._last_pass_id, rate_mb_per_s, now, time.monotonic())
        self.current = p
        return p

    async def _audit_file(self, p: AuditPass, oid: str, idx: int, limiter: TokenBucket,
                          chunk: int) -> None:
        path = self.path_for(oid, idx)
        try:
            check = await asyncio.to_thread(audit.open_check, path, idx, expected_object_id=oid,
                                            read_chunk=chunk)
        except FileNotFoundError:
            return                                # deleted (by GC) since the directory was listed
        try:
            while not check.done:
                try:
                    n = await asyncio.to_thread(check.advance)
                except OSError as exc:
                    if exc.errno != errno.EIO:
                        raise
                    check.problem, check.done = f"read error: {exc}", True   # a bad sector
                    break
                p.bytes_verified += n
                self.metrics.audit_bytes.inc(n)
                await limiter.take(n)
        finally:
            await asyncio.to_thread(check.close)
        # Opening and checking a file costs CPU whatever its size: a small
        # file is paced as if it were AUDIT_FILE_COST bytes.
        await limiter.take(max(0, AUDIT_FILE_COST - check.result.bytes))
        p.files_done += 1
        self.metrics.audit_fragments.inc()
        if check.problem:
            log.error("audit: fragment %s is bad: %s", path, check.problem)
            moved = await asyncio.to_thread(self.quarantine.move, oid, idx, check.identity, check.problem, "audit")
            if moved:
                p.corrupt_found += 1

    async def _run_pass(self, p: AuditPass) -> None:
        """One pass over fragments/ in sorted order, each file checked in a
        worker thread a chunk at a time, paced by a token bucket."""
        rate_bytes = p.rate_mb_per_s * 1e6
        # Smaller reads at low rates, so the pacing is smooth rather than bursty.
        chunk = int(min(1 << 20, max(64 << 10, rate_bytes / 8))) if rate_bytes > 0 else 1 << 20
        limiter = TokenBucket(rate_bytes, burst=chunk)
        try:
            p.files_total = await asyncio.to_thread(audit.count_fragments, self.frag_dir)
            for prefix in await asyncio.to_thread(audit.prefix_dirs, self.frag_dir):
                for oid, idx in await asyncio.to_thread(audit.fragments_in, self.frag_dir / prefix):
                    try:
                        await self._audit_file(p, oid, idx, limiter, chunk)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        log.exception("audit: could not check %s.%d; going on", oid, idx)
            self._finished(p)
        finally:
            p.running = False

    def _finished(self, p: AuditPass) -> None:
        """Record a pass that checked every file as the last finished one."""
        seconds = time.monotonic() - p.started_mono
        self.last_pass = {"id": p.id, "files": p.files_done, "bytes": p.bytes_verified,
                          "corrupt": p.corrupt_found, "seconds": round(seconds, 3),
                          "finished_unix": round(time.time(), 3)}
        self.metrics.passes.inc()
        self.metrics.last_pass_seconds.set(seconds)
        log.log(logging.INFO if p.corrupt_found or p.requested else logging.DEBUG,
                "audit pass %d: %d files, %.1f MB in %.1fs, %d corrupt", p.id, p.files_done,
                p.bytes_verified / 1e6, seconds, p.corrupt_found)

    async def _round(self) -> None:
        """A round of the audit worker: the pass asked for (if any), else a
        continuous pass at the configured rate, if it is above 0."""
        p, self._requested = self._requested, None
        if p is None and self.rate_mb_per_s > 0:
            p = self._new_pass(self.rate_mb_per_s)
        if p is not None:
            await self._run_pass(p)

    async def _until_next_round(self) -> None:
        """A continuous pass that took less than MIN_PASS_S waits out the rest;
        with no continuous audit, the worker waits for a pass to be asked for
        (:meth:`start` restarts it). With a continuous rate, every round ran a pass:
        the current one."""
        if self.rate_mb_per_s <= 0:
            await asyncio.Event().wait()
        else:
            await asyncio.sleep(max(0.0, MIN_PASS_S - (time.monotonic() - self.current.started_mono)))

    def start_continuous(self) -> None:
        """At the node's start: the continuous passes (none while the rate is 0)."""
        self.worker.start()

    async def start(self, rate_mb_per_s: float | None) -> AuditPass:
        """Abandon the pass running (if any) and start a new full pass now."""
        async with self._switch:
            await self.worker.stop()
            p = self._new_pass(self.rate_mb_per_s if rate_mb_per_s is None else rate_mb_per_s)
            p.requested = True
            self._requested = p
            self.worker.start()
            return p

    async def stop(self) -> None:
        await self.worker.stop()

    def status(self) -> dict:
        """``GET /audit``: the current or latest pass, and the latest finished one."""
        p = self.current
        return {"running": bool(p and p.running), "pass": p.id if p else 0,
                "rate_mb_per_s": p.rate_mb_per_s if p else self.rate_mb_per_s,
                "continuous_mb_per_s": self.rate_mb_per_s,
                "files_done": p.files_done if p else 0, "files_total": p.files_total if p else 0,
                "bytes_verified": p.bytes_verified if p else 0, "corrupt_found": p.corrupt_found if p else 0,
                "started": round(p.started_unix, 3) if p else None, "last_pass": self.last_pass}
