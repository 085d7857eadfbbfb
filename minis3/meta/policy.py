"""When a partition splits: the index manager's decisions, from counters alone. Pure.

The index manager (``meta/manager.py``) asks every metadata process for its
partitions' counters every few seconds and feeds them here. A partition is
split when, on any of its replicas,

* it holds more than ``split_keys`` keys (versions, tombstones included: they
  cost memory and scan time until removed), or
* its records take more than ``split_bytes`` (estimated from a sample), or
* the requests it is asked to serve (served or refused with SlowDown: demand,
  not throughput) stay above ``split_ops_per_s`` for ``hot_seconds``: a hot
  prefix. A hot partition is cut at the median of the keys recently asked for,
  so each half takes about half of the load, and each half has its own request
  budget (as in S3, where a prefix's request rate scales by partitioning).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Decision:
    partition: str
    by: str                   # "keys" (cut at the median key) or "load" (at the median of recent keys)
    reason: str


@dataclass
class SplitPolicy:
    split_keys: int
    split_bytes: int
    split_ops_per_s: float
    hot_seconds: float
    # (meta id, partition id) → (time, requests so far) at the last look
    _last: dict[tuple[str, str], tuple[float, int]] = field(default_factory=dict)
    _hot_since: dict[str, float] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)          # partition → requests/s (busiest replica)

    @classmethod
    def from_spec(cls, spec) -> "SplitPolicy":
        return cls(spec.split_keys, spec.split_bytes, spec.split_ops_per_s, spec.hot_seconds)

    def observe(self, now: float, reports: list[dict], current: set[str]) -> list[Decision]:
        """``reports``: each metadata process's ``/index/stats`` answer;
        ``current``: the partition ids of the newest map. Returns the splits to
        make, largest first (the manager makes one at a time)."""
        keys: dict[str, int] = {}
        size: dict[str, int] = {}
        rates: dict[str, float] = {}
        for rep in reports:
            for p in rep["partitions"]:
                pid = p["id"]
                if pid not in current:
                    continue
                keys[pid] = max(keys.get(pid, 0), p["keys"])
                size[pid] = max(size.get(pid, 0), p.get("bytes", 0))
                asked = p["reads"] + p["writes"] + p.get("refused", 0)
                last = self._last.get((rep["id"], pid))
                self._last[(rep["id"], pid)] = (now, asked)
                if last is not None and now > last[0] and asked >= last[1]:
                    rates[pid] = max(rates.get(pid, 0.0), (asked - last[1]) / (now - last[0]))
        self.rates = rates
        for gone in [k for k in self._last if k[1] not in current]:
            del self._last[gone]
        out: list[tuple[float, Decision]] = []
        for pid in sorted(keys):
            if keys[pid] < 2:
                continue
            if self.split_keys and keys[pid] > self.split_keys:
                out.append((keys[pid] / self.split_keys,
                            Decision(pid, "keys", f"{keys[pid]:,} keys > {self.split_keys:,}")))
                continue
            if self.split_bytes and size[pid] > self.split_bytes:
                out.append((size[pid] / self.split_bytes,
                            Decision(pid, "keys", f"~{size[pid] / 2**20:.1f} MiB of records > "
                                                  f"{self.split_bytes / 2**20:.1f} MiB")))
                continue
            rate = rates.get(pid)
            if not self.split_ops_per_s or rate is None or rate <= self.split_ops_per_s:
                self._hot_since.pop(pid, None)
                continue
            since = self._hot_since.setdefault(pid, now)
            if now - since >= self.hot_seconds:
                out.append((rate / self.split_ops_per_s,
                            Decision(pid, "load", f"{rate:,.0f} requests/s > {self.split_ops_per_s:,.0f} "
                                                  f"for {now - since:.0f} s")))
        for gone in [pid for pid in self._hot_since if pid not in current]:
            del self._hot_since[gone]
        return [d for _, d in sorted(out, key=lambda x: -x[0])]

    def split_done(self, pid: str) -> None:
        self._hot_since.pop(pid, None)
