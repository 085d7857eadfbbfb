"""Pure arithmetic of a benchmark: latencies → percentiles, a phase → its row.

No I/O here, so the numbers a report prints are unit-tested alone.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by the nearest-rank method; 0 for no values."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass
class Phase:
    """What one timed phase did: one operation at one size and concurrency."""
    workload: str
    op: str
    size: int
    concurrency: int
    latencies: list[float] = field(default_factory=list)   # seconds, successful ops only
    nbytes: int = 0
    errors: Counter = field(default_factory=Counter)
    wall: float = 0.0                # seconds from the first start to the last finish
    client_cpu: float = 0.0          # CPU seconds of the load generator (all its threads)
    machine_cpu: float = 0.0         # CPU seconds of the whole machine (every process)
    server_cpu: float | None = None  # CPU seconds of the server processes, where known
    # … split by role (runner.ROLES: frontend, nodes, replicas, other) for a minis3 cluster
    server_cpu_by_role: dict[str, float] | None = None
    cpu_measured: bool = True        # False for an op's share of a mixed run
    extra: dict = field(default_factory=dict)

    def record(self, seconds: float, nbytes: int, error: str | None) -> None:
        if error:
            self.errors[error] += 1
        else:
            self.latencies.append(seconds)
            self.nbytes += nbytes

    @property
    def ops(self) -> int:
        return len(self.latencies)

    def absorb(self, other: "Phase") -> None:
        """Add another run of the same operation to this one, as if both were
        one phase: its samples, bytes, errors, time and CPU (a phase timed a
        few times apart, with untimed work between the runs)."""
        if (other.workload, other.op, other.size, other.concurrency) != \
                (self.workload, self.op, self.size, self.concurrency):
            raise ValueError(f"cannot merge {other.workload} {other.op} into {self.workload} {self.op}")
        fe = [(p.ops, p.extra["frontend_cpu_ms_per_op"]) for p in (self, other)
              if "frontend_cpu_ms_per_op" in p.extra]
        peak = max((p.extra.get("frontend_rss_peak_mb", 0) for p in (self, other)), default=0)
        self.latencies += other.latencies
        self.nbytes += other.nbytes
        self.errors.update(other.errors)
        self.wall += other.wall
        self.client_cpu += other.client_cpu
        self.machine_cpu += other.machine_cpu
        if self.server_cpu is not None or other.server_cpu is not None:
            self.server_cpu = (self.server_cpu or 0.0) + (other.server_cpu or 0.0)
        if other.server_cpu_by_role is not None:
            mine = self.server_cpu_by_role or {}
            self.server_cpu_by_role = {role: mine.get(role, 0.0) + other.server_cpu_by_role.get(role, 0.0)
                                       for role in {*mine, *other.server_cpu_by_role}}
        self.cpu_measured = self.cpu_measured and other.cpu_measured
        if peak:
            self.extra["frontend_rss_peak_mb"] = peak
        if len(fe) == 2:
            self.extra["frontend_cpu_ms_per_op"] = round(sum(n * ms for n, ms in fe) / max(1, self.ops), 3)

    def row(self, cores: int) -> dict:
        lat = sorted(self.latencies)
        wall = self.wall or float("inf")
        other = max(0.0, self.machine_cpu - self.client_cpu)
        cpu = self.cpu_measured
        return {
            "workload": self.workload, "op": self.op, "size": self.size,
            "concurrency": self.concurrency, "ops": self.ops,
            "errors": sum(self.errors.values()), "error_codes": dict(self.errors),
            "seconds": round(self.wall, 3),
            "ops_per_s": round(self.ops / wall, 1),
            "mb_per_s": round(self.nbytes / wall / 1e6, 1),
            "p50_ms": round(percentile(lat, 50) * 1000, 2),
            "p90_ms": round(percentile(lat, 90) * 1000, 2),
            "p99_ms": round(percentile(lat, 99) * 1000, 2),
            # CPU as a share of one core; the machine has `cores` of them.
            "client_cpu_pct": round(100 * self.client_cpu / wall, 1) if cpu else None,
            "machine_cpu_pct": round(100 * self.machine_cpu / wall, 1) if cpu else None,
            "machine_cpu_max_pct": 100 * cores,
            # The server's processes when their pids are known; otherwise
            # everything that is not the client (on a quiet loopback box, the server).
            "server_cpu_ms_per_op": round(1000 * (self.server_cpu if self.server_cpu is not None
                                                  else other) / max(1, self.ops), 3) if cpu else None,
            # ms of CPU per op of each kind of process, and of the client (the load
            # generator); their sum is the server's figure above plus the client's.
            "cpu_ms_per_op_by_role": ({**{role: round(1000 * sec / max(1, self.ops), 3)
                                          for role, sec in self.server_cpu_by_role.items()},
                                       "client": round(1000 * self.client_cpu / max(1, self.ops), 3)}
                                      if cpu and self.server_cpu_by_role is not None else None),
            **self.extra,
        }


def bottleneck(row: dict) -> str:
    """A one-word reading of a row's CPU figures: who used the cores."""
    total = row["machine_cpu_max_pct"]
    if row["client_cpu_pct"] is None:
        return "-"
    if row["client_cpu_pct"] >= 90:
        return "client"
    if row["machine_cpu_pct"] >= 0.9 * total:
        return "cpu"
    return "server" if row["machine_cpu_pct"] - row["client_cpu_pct"] >= 90 else "latency"


def harmonic_ceiling(rates_mb_s: list[float]) -> float:
    """The MB/s of one core that must do each of these steps to every byte in
    turn: 1 / Σ(1/rate)."""
    return 1 / sum(1 / r for r in rates_mb_s if r > 0)
