"""A storage node's background audit: passes that re-read and check every fragment file.

:class:`Auditor` runs the passes for one node: continuous ones at the
configured rate (``[scrub] audit_mb_per_s``; 0: none), and a full pass now
when ``POST /audit`` asks for one. Each file is checked in a worker thread a
chunk at a time (storage/audit.py, which also states the ``POST /audit`` and
``GET /audit`` contract), paced by a token bucket; a file found bad is moved
to quarantine (storage/quarantine.py). :class:`AuditPass` is one pass's
progress, as ``GET /audit`` shows it.

The continuous audit yields to the node's foreground work (:class:`Foreground`:
fragments written or read, batch reads, rebuilds): while the node is busy, it
runs at ``[scrub] audit_busy_share`` of its rate, as Ceph does not scrub during
recovery and ZFS slows a scrub under load. Never stopped: under any load a
pass still ends within bytes ÷ (rate × share), the bound ``minis3 durability``
states for a silent bitflip. A pass asked for with ``POST /audit`` does not yield.
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

#: A node that served data this recently (or is serving it) is busy: its audit yields.
BUSY_FOR_S = 1.0


class Foreground:
    """Whether a node is doing foreground work: its data handlers run inside
    ``with foreground:``; :meth:`busy` is true while one runs and for
    BUSY_FOR_S after the last one ended. ``clock``: monotonic seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.running = 0
        self.last_end = float("-inf")

    def __enter__(self) -> "Foreground":
        self.running += 1
        return self

    def __exit__(self, *exc) -> None:
        self.running -= 1
        self.last_end = self.clock()

    def busy(self) -> bool:
        return self.running > 0 or self.clock() - self.last_end < BUSY_FOR_S


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
    bytes_yielding: int = 0              # of bytes_verified, those paced at the busy share


def _advance(check: audit.FragmentCheck) -> int:
    """Blocking: check the next chunk of a file; a read error (EIO: a bad
    sector) ends the check as a problem. Closes the file once the check is done."""
    try:
        n = check.advance()
    except OSError as exc:
        if exc.errno != errno.EIO:
            raise
        check.problem, check.done, n = f"read error: {exc}", True, 0
    if check.done:
        check.close()
    return n


@dataclass
class _Checked:
    """One file of a group: its check (None: gone, or ``error``) and the bytes read so far."""
    oid: str
    idx: int
    check: audit.FragmentCheck | None
    n: int = 0
    error: str | None = None


class PassFiles:
    """The files of one pass in sorted order, listed a prefix directory at a
    time as the pass goes, and checked a *group* at a time (:meth:`next_group`,
    blocking: one worker-thread hop lists, opens and checks a group). A group
    is files until about ``chunk`` bytes of the pass's rate are used (a small
    file counts AUDIT_FILE_COST), so a node of small files costs one hop and
    one payment to the rate limiter per group, not three hops per file."""

    def __init__(self, frag_dir: Path, prefixes: list[str], path_for: Callable[[str, int], Path]) -> None:
        self.frag_dir, self.path_for = frag_dir, path_for
        self.prefixes = list(reversed(prefixes))
        self.names: list[tuple[str, int]] = []       # listed, not checked yet (reversed: pop() is next)

    def next_group(self, chunk: int) -> list[_Checked]:
        group: list[_Checked] = []
        used = 0
        while used < chunk:
            while not self.names and self.prefixes:
                self.names = list(reversed(audit.fragments_in(self.frag_dir / self.prefixes.pop())))
            if not self.names:
                break
            oid, idx = self.names.pop()
            item = _Checked(oid, idx, None)
            group.append(item)
            try:
                item.check = audit.open_check(self.path_for(oid, idx), idx, expected_object_id=oid,
                                              read_chunk=chunk)
                item.n = _advance(item.check)
            except FileNotFoundError:
                continue                      # deleted (by GC) since the directory was listed
            except Exception as exc:          # the file cannot be checked: said, and the pass goes on
                if item.check is not None:
                    item.check.close()
                item.check, item.error = None, f"{exc.__class__.__name__}: {exc}"
                continue
            if not item.check.done:
                break                         # a large file: its other chunks follow, one hop each
            used += max(item.n, AUDIT_FILE_COST)
        return group


class Auditor:
    """The audit of one node: ``frag_dir`` and ``path_for(oid, idx)`` say
    where its fragment files are; a bad one goes to ``quarantine``; progress
    is counted in ``metrics``. ``rate_mb_per_s``: the continuous audit's rate
    (0: only passes asked for by POST /audit); ``busy_share``: the share of it
    a continuous pass keeps while ``foreground`` is busy."""

    def __init__(self, node_id: str, frag_dir: Path, path_for: Callable[[str, int], Path],
                 quarantine: Quarantine, metrics: NodeMetrics, rate_mb_per_s: float,
                 foreground: Foreground | None = None, busy_share: float = 1.0) -> None:
        self.node_id, self.frag_dir, self.path_for = node_id, frag_dir, path_for
        self.quarantine, self.metrics = quarantine, metrics
        self.rate_mb_per_s = float(rate_mb_per_s)
        self.foreground = foreground or Foreground()
        if not 0 < busy_share <= 1:
            raise ValueError("busy_share must be > 0 and <= 1")
        self.busy_share = float(busy_share)
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

    def yielding(self, p: AuditPass) -> bool:
        """Whether pass ``p`` runs at the busy share now: a continuous pass while the node is busy."""
        return not p.requested and self.busy_share < 1 and self.foreground.busy()

    def cost(self, p: AuditPass, n: int) -> float:
        """What checking ``n`` bytes costs of the pass's rate now: n, or n ÷ the
        busy share while the pass yields to foreground work."""
        return n / self.busy_share if self.yielding(p) else n

    async def _audit_group(self, p: AuditPass, group: list[_Checked], limiter: TokenBucket) -> None:
        """Count, pay for and act on one group of checked files (PassFiles.next_group);
        a large file's other chunks are checked here, each paid for as it is read.
        Every file of the group is closed when this returns or is cancelled."""
        try:
            await self._account(p, group, limiter)
        finally:
            still_open = [g.check for g in group if g.check is not None and not g.check.closed]
            if still_open:
                await asyncio.to_thread(lambda: [c.close() for c in still_open])

    async def _account(self, p: AuditPass, group: list[_Checked], limiter: TokenBucket) -> None:
        owed = 0
        for item in group:
            check = item.check
            if check is None:
                if item.error:
                    log.error("audit: could not check %s.%d; going on: %s", item.oid, item.idx, item.error)
                continue
            n = item.n
            while True:
                p.bytes_verified += n
                self.metrics.audit_bytes.inc(n)
                if self.yielding(p):
                    p.bytes_yielding += n
                if check.done:
                    # Opening and checking a file costs CPU whatever its size: a
                    # small file is paced as if it were AUDIT_FILE_COST bytes.
                    owed += n + max(0, AUDIT_FILE_COST - check.result.bytes)
                    break
                await limiter.take(self.cost(p, owed + n))
                owed = 0
                n = await asyncio.to_thread(_advance, check)
            p.files_done += 1
            self.metrics.audit_fragments.inc()
            if check.problem:
                path = self.path_for(item.oid, item.idx)
                log.error("audit: fragment %s is bad: %s", path, check.problem)
                moved = await asyncio.to_thread(self.quarantine.move, item.oid, item.idx, check.identity,
                                                check.problem, "audit")
                if moved:
                    p.corrupt_found += 1
        await limiter.take(self.cost(p, owed))

    async def _run_pass(self, p: AuditPass) -> None:
        """One pass over fragments/ in sorted order, each file checked in a
        worker thread a chunk at a time, paced by a token bucket."""
        rate_bytes = p.rate_mb_per_s * 1e6
        # Smaller reads at low rates, so the pacing is smooth rather than bursty.
        chunk = int(min(1 << 20, max(64 << 10, rate_bytes / 8))) if rate_bytes > 0 else 1 << 20
        limiter = TokenBucket(rate_bytes, burst=chunk)
        try:
            p.files_total = await asyncio.to_thread(audit.count_fragments, self.frag_dir)
            files = PassFiles(self.frag_dir, await asyncio.to_thread(audit.prefix_dirs, self.frag_dir), self.path_for)
            while group := await asyncio.to_thread(files.next_group, chunk):
                try:
                    await self._audit_group(p, group, limiter)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("audit: could not check %s; going on",
                                  ", ".join(f"{g.oid}.{g.idx}" for g in group))
            self._finished(p)
        finally:
            p.running = False

    def _finished(self, p: AuditPass) -> None:
        """Record a pass that checked every file as the last finished one."""
        seconds = time.monotonic() - p.started_mono
        self.last_pass = {"id": p.id, "files": p.files_done, "bytes": p.bytes_verified,
                          "bytes_yielding": p.bytes_yielding, "corrupt": p.corrupt_found, "seconds": round(seconds, 3),
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
                "busy_share": self.busy_share, "node_busy": self.foreground.busy(),
                "yielding": bool(p and p.running and self.yielding(p)),
                "bytes_yielding": p.bytes_yielding if p else 0,
                "files_done": p.files_done if p else 0, "files_total": p.files_total if p else 0,
                "bytes_verified": p.bytes_verified if p else 0, "corrupt_found": p.corrupt_found if p else 0,
                "started": round(p.started_unix, 3) if p else None, "last_pass": self.last_pass}
