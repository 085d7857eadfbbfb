"""Two servers measured side by side, for the ratios the targets are read from.

`make bench` measures every workload against minis3 for ~20 minutes, then
against moto_server. This VM's speed drifts over minutes (whole runs have had
one side's 4 KiB phases measured in a slow spell: the load generator's own CPU
per request rose by half, with no code changed), so a ratio of two figures
taken twenty minutes apart can say more about the hour than about minis3.

Here both servers are up at once, and each *group* of phases that a target
reads (4 KiB and 64 KiB at the top concurrency, 4 KiB at ×1, the largest
single-stream object) runs on one server, then the other, in the order
A B B A (and A B B A A B B A … for more rounds): a drift that is steady
over the minute or two a group takes weighs on both sides alike. A side's
rounds of one phase are pooled into one row (``Phase.absorb``: its ops over
its total time, percentiles over every sample).

While one side is measured the other sits idle; its CPU meanwhile is
measured too (``idle_cores``): a minis3 cluster's background work (scrubber,
audit, metadata snapshots) costs the other side that much of the machine.
"""
from __future__ import annotations

import dataclasses
import os
import time
import uuid
from dataclasses import dataclass

from .client import S3Client
from .runner import Runner, process_tree_cpu_seconds
from .workloads import WORKLOADS, Settings


@dataclass(frozen=True)
class Side:
    """One server of a pair: how to reach it and which processes are its own."""
    name: str
    endpoint: str
    access_key: str
    secret_key: str
    pids: list[int]
    region: str = "us-east-1"
    frontend_pid: int | None = None


def order(rounds: int) -> list[int]:
    """Which side runs each turn of a group (0: the first, 1: the second):
    A B B A for two rounds, A B B A A B for three; each side ``rounds`` times."""
    return [(i + i // 2) % 2 for i in range(2 * rounds)]


def describe(rounds: int) -> str:
    """The order of a group's turns, as letters: "A B B A"."""
    return " ".join("AB"[i] for i in order(rounds))


def groups(s: Settings) -> list[Settings]:
    """The groups of phases the targets read, each as the Settings of one
    workload run: every small size at the top concurrency, the smallest at ×1,
    and the largest large object."""
    out = []
    if "small" in s.workloads and s.sizes and s.concurrency:
        top = max(s.concurrency)
        out += [dataclasses.replace(s, workloads=("small",), sizes=(size,), concurrency=(top,))
                for size in s.sizes]
        if 1 in s.concurrency and top != 1:
            out.append(dataclasses.replace(s, workloads=("small",), sizes=(min(s.sizes),), concurrency=(1,)))
    if "large" in s.workloads and s.large_sizes:
        out.append(dataclasses.replace(s, workloads=("large",), large_sizes=(max(s.large_sizes),)))
    return out


def turn_rate(ph) -> float:
    """What a turn of a phase is compared on: MB/s for large objects, ops/s for small ones."""
    wall = ph.wall or float("inf")
    return round(ph.nbytes / wall / 1e6 if ph.workload == "large" else ph.ops / wall, 1)


def pool(runner: Runner, since: int) -> None:
    """Fold the phases a runner ran from index ``since`` into the earlier
    phases of the same operation, size and concurrency (new ones stay). Each
    keeps its turns' rates apart too (``extra["turns"]``), so that a reader
    sees how far they moved."""
    key = lambda p: (p.workload, p.op, p.size, p.concurrency)  # noqa: E731
    earlier = {key(p): p for p in runner.phases[:since]}
    for ph in list(runner.phases[since:]):
        if key(ph) in earlier:
            into = earlier[key(ph)]
            turns = into.extra["turns"] + [turn_rate(ph)]
            runner.merge(into, ph)
            into.extra["turns"] = turns
        else:
            ph.extra["turns"] = [turn_rate(ph)]


async def run(a: Side, b: Side, s: Settings, rounds: int, progress=None, log=print) -> dict:
    """Every group of ``s`` on both sides in turn (``order``): each side's
    pooled rows, and the cores each side's processes used while the other
    was measured."""
    conns = max(64, *s.concurrency)
    run_id = uuid.uuid4().hex[:8]
    idle = {a.name: [0.0, 0.0], b.name: [0.0, 0.0]}      # side → [CPU seconds, wall seconds] while the other ran
    async with S3Client(a.endpoint, a.access_key, a.secret_key, a.region, max_connections=conns) as ca, \
            S3Client(b.endpoint, b.access_key, b.secret_key, b.region, max_connections=conns) as cb:
        runners = [Runner(c, progress=progress, server_pids=side.pids, frontend_pid=side.frontend_pid)
                   for c, side in ((ca, a), (cb, b))]
        sides = (a, b)
        for g in groups(s):
            for turn, which in enumerate(order(rounds)):
                side, other, runner = sides[which], sides[1 - which], runners[which]
                log(f"side by side: {g.workloads[0]} on {side.name} (turn {turn + 1} of {2 * rounds})")
                since = len(runner.phases)
                cpu0, t0 = process_tree_cpu_seconds(other.pids), time.monotonic()
                await WORKLOADS[g.workloads[0]](runner, g, f"{run_id}-{turn}")
                idle[other.name][0] += process_tree_cpu_seconds(other.pids) - cpu0
                idle[other.name][1] += time.monotonic() - t0
                pool(runner, since)
        cores = os.cpu_count() or 1
        return {"rounds": rounds, "order": describe(rounds),
                a.name: [ph.row(cores) for ph in runners[0].phases],
                b.name: [ph.row(cores) for ph in runners[1].phases],
                "idle_cores": {name: round(cpu / wall, 3) if wall else None for name, (cpu, wall) in idle.items()}}


