"""Two sides measured in turn, so that a ratio of the two is not a ratio of two hours.

`make bench` measures every workload against minis3 for ~20 minutes, then
against moto_server. This VM's speed drifts over minutes (whole runs have had
one side's 4 KiB phases measured in a slow spell: the load generator's own CPU
per request rose by half, with no code changed), so a ratio of two figures
taken twenty minutes apart can say more about the hour than about minis3.

Here each *group* of phases (one size of small objects at one concurrency,
or the largest single-stream object) runs on one side, then the other, in
the order A B B A (two rounds; A B B A A B B A for four): a drift that is
steady over the minute or so a group takes weighs on both sides alike. One
round (A B) cancels nothing, and an odd number above one cannot be balanced,
so ``order`` refuses it. A side's turns of one phase are pooled into one row
(``Phase.absorb``: its operations over its total time, percentiles over every
sample), which keeps each turn's rate apart too (``turns``).

The sides are two servers (the suite's targets: minis3 and moto_server, both
up at once) or one server two ways (bench/encryption.py: buckets in the clear
and sealed). Before each turn both sides' processes are let go quiet
(``settle``: work a turn leaves behind, a metadata snapshot, say, would
otherwise land on the next turn, the other side's); and while one side is
measured, the other's CPU is measured too (``idle_cores``), so the report
says what an idle cluster's background work (audit, scrubber) took from the
side being measured.
"""
from __future__ import annotations

import asyncio
import dataclasses
import os
import time
import uuid
from dataclasses import dataclass

from .client import S3Client
from .runner import Runner, process_tree_cpu_seconds
from .workloads import WORKLOADS, Settings

#: A side is quiet when its processes use less than this share of a core ...
QUIET_CORES = 0.08
#: ... over this many seconds; ``settle`` waits at most SETTLE_MAX_S for it.
QUIET_WINDOW_S = 0.5
SETTLE_MAX_S = 5.0
#: Seconds of each small phase of a group's untimed warm-up (``warm_up``).
WARM_UP_S = 1.0


@dataclass(frozen=True)
class Side:
    """One side of a pair: how to reach it, which processes are its own, and
    (for two sides of one server) the prefix of its buckets."""
    name: str
    endpoint: str
    access_key: str
    secret_key: str
    pids: list[int]
    region: str = "us-east-1"
    frontend_pid: int | None = None
    bucket_prefix: str | None = None


def order(rounds: int) -> list[int]:
    """Which side runs each turn of a group (0: the first, 1: the second):
    A B for one round, A B B A for two, A B B A A B B A for four."""
    if rounds < 1 or (rounds > 1 and rounds % 2):
        raise ValueError(f"{rounds} rounds: 1, or an even number (an odd one cannot weigh both sides alike)")
    return [(i + i // 2) % 2 for i in range(2 * rounds)]


def order_letters(rounds: int) -> str:
    """The order of a group's turns as letters: "A B B A"."""
    return " ".join("AB"[i] for i in order(rounds))


def groups(s: Settings) -> list[Settings]:
    """Each group of phases as the Settings of one workload run: every small
    size at the top concurrency (timing ``s.small_ops`` after the PUTs), the
    smallest at ×1 if ``s`` has ×1 (its PUTs alone: the latency target), and
    the largest large object."""
    out = []
    if "small" in s.workloads and s.sizes and s.concurrency:
        top = max(s.concurrency)
        out += [dataclasses.replace(s, workloads=("small",), sizes=(size,), concurrency=(top,))
                for size in s.sizes]
        if 1 in s.concurrency and top != 1:
            out.append(dataclasses.replace(s, workloads=("small",), sizes=(min(s.sizes),), concurrency=(1,),
                                           small_ops=()))
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
    keeps its turns' rates (``extra["turns"]``), so that a reader sees how far
    they moved, and the CPU of the other side's processes meanwhile
    (``extra["bystander_cpu_s"]``), summed."""
    key = lambda p: (p.workload, p.op, p.size, p.concurrency)  # noqa: E731
    earlier = {key(p): p for p in runner.phases[:since]}
    for ph in list(runner.phases[since:]):
        if key(ph) not in earlier:
            ph.extra["turns"] = [turn_rate(ph)]
            continue
        into = earlier[key(ph)]
        turns = into.extra["turns"] + [turn_rate(ph)]
        bystander = into.extra.get("bystander_cpu_s", 0.0) + ph.extra.get("bystander_cpu_s", 0.0)
        runner.merge(into, ph)
        into.extra["turns"] = turns
        if "bystander_cpu_s" in ph.extra:
            into.extra["bystander_cpu_s"] = round(bystander, 3)


async def settle(pids: list[int]) -> float:
    """Wait until these processes use less than QUIET_CORES over QUIET_WINDOW_S
    (at most SETTLE_MAX_S); the seconds waited."""
    start = time.monotonic()
    while pids and time.monotonic() - start < SETTLE_MAX_S:
        cpu = process_tree_cpu_seconds(pids)
        await asyncio.sleep(QUIET_WINDOW_S)
        if process_tree_cpu_seconds(pids) - cpu < QUIET_CORES * QUIET_WINDOW_S:
            break
    return time.monotonic() - start


async def warm_up(runner: Runner, g: Settings, side: Side, run_id: str) -> None:
    """A group once, briefly, its phases thrown away: a fresh server's first
    requests of a kind (new connections, first buckets and index partitions,
    code not yet run) cost more than the rest, and would fall on its first
    turn only. In a `--quick` run without it, minis3's 4 KiB PUTs at ×32, a
    fresh cluster's first phase, cost 2.1 ms of CPU each against 1.5 in the
    main run's, where six phases came first; in the next run, with it, 1.2
    against 1.5."""
    since = len(runner.phases)
    await WORKLOADS[g.workloads[0]](runner, dataclasses.replace(
        g, duration=min(g.duration, WARM_UP_S), large_count=1,
        bucket_prefix=side.bucket_prefix or g.bucket_prefix), run_id)
    del runner.phases[since:]


def idle_cores(rows: list[dict]) -> float | None:
    """The other side's cores during these rows' timed phases."""
    timed = [r for r in rows if "bystander_cpu_s" in r]
    wall = sum(r["seconds"] for r in timed)
    return round(sum(r["bystander_cpu_s"] for r in timed) / wall, 3) if wall else None


async def run(a: Side, b: Side, s: Settings, rounds: int, progress=None, log=print) -> dict:
    """Every group of ``s`` on both sides in turn (``order``): each side's
    pooled rows, the cores each side's processes used while the other was
    measured, and the seconds spent waiting for quiet."""
    turns = order(rounds)
    conns = max([64, *s.concurrency])
    run_id = uuid.uuid4().hex[:8]
    sides = (a, b)
    both = sorted({*a.pids, *b.pids})
    waited = 0.0
    async with S3Client(a.endpoint, a.access_key, a.secret_key, a.region, max_connections=conns) as ca, \
            S3Client(b.endpoint, b.access_key, b.secret_key, b.region, max_connections=conns) as cb:
        runners = [Runner(client, progress=progress, server_pids=side.pids, frontend_pid=side.frontend_pid,
                          bystander_pids=[p for p in other.pids if p not in side.pids])
                   for client, side, other in ((ca, a, b), (cb, b, a))]
        for g in groups(s):
            for side, runner in zip(sides, runners):
                await warm_up(runner, g, side, f"{run_id}-warm")
            for turn, which in enumerate(turns):
                side, runner = sides[which], runners[which]
                log(f"{g.workloads[0]} on {side.name} (turn {turn + 1} of {len(turns)})")
                waited += await settle(both)
                since = len(runner.phases)
                settings = dataclasses.replace(g, bucket_prefix=side.bucket_prefix or g.bucket_prefix)
                await WORKLOADS[g.workloads[0]](runner, settings, f"{run_id}-{turn}")
                pool(runner, since)
    cores = os.cpu_count() or 1
    rows = [[ph.row(cores) for ph in r.phases] for r in runners]
    return {"rounds": rounds, "order": order_letters(rounds), a.name: rows[0], b.name: rows[1],
            # a side's processes while the other side's phases ran (None: no processes of its own to watch)
            "idle_cores": {a.name: idle_cores(rows[1]), b.name: idle_cores(rows[0])},
            "settle_s": round(waited, 1)}
