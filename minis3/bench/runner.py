"""Timed phases: N workers keep `concurrency` requests in flight until a time
or count bound, while the runner measures CPU (its own, the machine's, the
server's when its pids are known) and samples the minis3 frontend's RSS.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from typing import Awaitable, Callable

import aiohttp

from ..procfs import CLK_TCK, PAGE_SIZE, proc_stat, process_cpu_seconds
from .client import Result, S3Client
from .stats import Phase

SAMPLE_INTERVAL = 0.1     # seconds between two samples of the frontend's RSS (from /proc)
SAMPLE_INTERVAL_HTTP = 0.25   # … from its metrics endpoint, which costs the frontend ~1 ms a time
_RSS = re.compile(rb"^process_resident_memory_bytes ([0-9.e+]+)$", re.M)
_CPU = re.compile(rb"^process_cpu_seconds_total ([0-9.e+]+)$", re.M)


def machine_cpu_seconds() -> float:
    """CPU seconds every core of the machine has spent busy (from /proc/stat)."""
    with open("/proc/stat", "rb") as f:
        fields = f.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit() and (fields := proc_stat(int(d))):
            tree.setdefault(int(fields[1]), []).append(int(d))
    return tree


def process_tree_cpu_seconds(pids: list[int]) -> float:
    """CPU seconds used so far by these processes and all their descendants."""
    tree, total, todo, seen = _children(), 0.0, list(pids), set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        fields = proc_stat(pid)
        if fields:
            total += process_cpu_seconds(pid, fields)
        todo += tree.get(pid, [])
    return total


#: The roles of a minis3 cluster's processes, as the report splits its CPU:
#: the frontend, the storage nodes, the metadata replicas, and everything
#: else (the AZ supervisors, the scrubber with the index manager, the console,
#: DNS). A process that is not minis3's (moto_server) is "other".
ROLES = ("frontend", "nodes", "replicas", "other")
_ROLE_OF_COMMAND = {"frontend": "frontend", "storage": "nodes", "meta": "replicas"}


def role_of(argv: list[str]) -> str | None:
    """A process's role from its argv: ``python -m minis3 storage …`` or
    ``…/bin/minis3 storage …`` is a storage node, and so on; None for a
    process that is not a minis3 command (it takes its parent's role: a
    worker a server spawned is that server's)."""
    for i, arg in enumerate(argv[:-1]):
        if (arg == "minis3" and i > 0 and argv[i - 1] == "-m") or (i <= 1 and os.path.basename(arg) == "minis3"):
            return _ROLE_OF_COMMAND.get(argv[i + 1], "other")
    return None


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


class ServerCpu:
    """The CPU seconds of server processes (given pids and their descendants),
    process by process, so that a phase's share can be split by role.

    A snapshot walks /proc once (like :func:`process_tree_cpu_seconds`); each
    process's role is read from its cmdline the first time it is seen (keyed
    by pid and start time, so a reused pid is read again), and a process that
    is no minis3 command takes its parent's role ("other" at the top)."""

    def __init__(self, pids: list[int]):
        self.pids = list(pids)
        self._roles: dict[tuple[int, bytes], str | None] = {}

    def snapshot(self) -> dict[tuple[int, bytes], tuple[str, float]]:
        tree, out, seen = _children(), {}, set()
        todo: list[tuple[int, str]] = [(pid, "other") for pid in self.pids]
        while todo:
            pid, inherited = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            fields = proc_stat(pid)
            if not fields:
                continue
            key = (pid, fields[19])                        # starttime
            if key not in self._roles:
                self._roles[key] = role_of(_cmdline(pid))
            role = self._roles[key] or inherited
            out[key] = (role, process_cpu_seconds(pid, fields))
            todo += [(child, role) for child in tree.get(pid, [])]
        return out

    @staticmethod
    def delta(before: dict, after: dict) -> tuple[float, dict[str, float] | None]:
        """(CPU seconds of every process between two snapshots, the same by
        role, or None when no process was minis3's). A process started in
        between counts from 0; one that exited in between is lost (as with
        :func:`process_tree_cpu_seconds`)."""
        by_role = dict.fromkeys(ROLES, 0.0)
        for key, (role, cpu) in after.items():
            by_role[role] += max(0.0, cpu - before.get(key, (role, 0.0))[1])
        split = any(role != "other" for role, _ in after.values())
        return sum(by_role.values()), (by_role if split else None)


def _proc_rss_cpu(pid: int) -> tuple[float, float] | None:
    fields = proc_stat(pid)
    return (int(fields[21]) * PAGE_SIZE, process_cpu_seconds(pid, fields)) if fields else None


class Runner:
    """Runs phases against one endpoint and keeps their results."""

    def __init__(self, client: S3Client, *, progress=None, server_pids: list[int] | None = None,
                 sample_rss: bool = True, frontend_pid: int | None = None, bystander_pids: list[int] | None = None):
        """``bystander_pids``: processes that are not this endpoint's (another
        server, idle meanwhile): their CPU during each timed phase is kept in
        its ``extra["bystander_cpu_s"]``."""
        self.client = client
        self.bystander_pids = bystander_pids or []
        self.progress = progress
        self.server_pids = server_pids or []
        self.server_cpu = ServerCpu(self.server_pids) if self.server_pids else None
        self.phases: list[Phase] = []
        # Only the two series we need: the whole page costs the server ~10 ms.
        self.metrics_url = (client.endpoint + "/_minis3/metrics?name[]=process_resident_memory_bytes"
                            "&name[]=process_cpu_seconds_total") if sample_rss else None
        self._metrics_ok: bool | None = None
        self.frontend_pid = frontend_pid

    async def frontend_metrics(self) -> tuple[float, float] | None:
        """(RSS bytes, CPU seconds) of a minis3 frontend: from /proc when its
        pid is known (costs the server nothing), else from its Prometheus
        endpoint; None when the endpoint is not minis3."""
        if self.frontend_pid:
            return _proc_rss_cpu(self.frontend_pid)
        if not self.metrics_url or self._metrics_ok is False:
            return None
        try:
            async with self.client._session.get(self.metrics_url) as r:
                text = await r.read()
        except aiohttp.ClientError:
            text = b""
        m, c = _RSS.search(text), _CPU.search(text)
        self._metrics_ok = bool(m)
        return (float(m.group(1)), float(c.group(1)) if c else 0.0) if m else None

    async def _sample_rss(self, peak: list[float]) -> None:
        while True:
            got = await self.frontend_metrics()
            if got is None:
                return
            peak[0] = max(peak[0], got[0])
            await asyncio.sleep(SAMPLE_INTERVAL if self.frontend_pid else SAMPLE_INTERVAL_HTTP)

    async def phase(self, workload: str, op: str, size: int, concurrency: int,
                    fn: Callable[[int], Awaitable[Result]], *, count: int,
                    duration: float | None = None, label: str | None = None) -> Phase:
        """Run fn(0), fn(1), … with `concurrency` in flight, until `count` ops
        have started or `duration` seconds have passed."""
        ph = Phase(workload, op, size, concurrency)
        next_i = 0
        deadline = None

        async def worker():
            nonlocal next_i
            while next_i < count and (deadline is None or time.monotonic() < deadline):
                i, next_i = next_i, next_i + 1
                t0 = time.perf_counter()
                r = await fn(i)
                ph.record(time.perf_counter() - t0, r.nbytes, r.error)
                if task is not None:
                    self.progress.update(task, completed=next_i if duration is None
                                         else min(duration, time.monotonic() - start))

        desc = label or f"{workload} {op} {_size(size)} ×{concurrency}"
        task = (self.progress.add_task(desc, total=duration if duration is not None else count)
                if self.progress is not None else None)
        peak = [0.0]
        sampler = asyncio.create_task(self._sample_rss(peak))
        before_fe = await self.frontend_metrics()
        cpu0, mcpu0 = time.process_time(), machine_cpu_seconds()
        scpu0 = self.server_cpu.snapshot() if self.server_cpu else None
        by0 = process_tree_cpu_seconds(self.bystander_pids) if self.bystander_pids else None
        start = time.monotonic()
        deadline = start + duration if duration is not None else None
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        ph.wall = time.monotonic() - start
        ph.client_cpu = time.process_time() - cpu0
        ph.machine_cpu = machine_cpu_seconds() - mcpu0
        if scpu0 is not None:
            ph.server_cpu, ph.server_cpu_by_role = ServerCpu.delta(scpu0, self.server_cpu.snapshot())
        if by0 is not None:
            ph.extra["bystander_cpu_s"] = round(process_tree_cpu_seconds(self.bystander_pids) - by0, 3)
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        after_fe = await self.frontend_metrics()
        if before_fe and after_fe:
            peak[0] = max(peak[0], after_fe[0])
            ph.extra["frontend_rss_peak_mb"] = round(peak[0] / 2**20, 1)
            ph.extra["frontend_cpu_ms_per_op"] = round(1000 * (after_fe[1] - before_fe[1]) / max(1, ph.ops), 3)
        if task is not None:
            self.progress.update(task, completed=duration if duration is not None else count,
                                 description=f"{desc}: {ph.ops} ok, {sum(ph.errors.values())} errors")
        self.phases.append(ph)
        return ph

    def merge(self, into: Phase, ph: Phase) -> None:
        """``ph`` (a phase this runner ran) counted as more of ``into``: one row in the report."""
        into.absorb(ph)
        self.phases = [p for p in self.phases if p is not ph]


def _size(n: int) -> str:
    for unit, div in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= div and n % div == 0:
            return f"{n // div} {unit}"
    return f"{n} B"


size_label = _size
