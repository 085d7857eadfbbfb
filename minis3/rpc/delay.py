"""Inter-AZ latency injected by the RPC layer (``minis3 chaos latency``).

A WAN between AZs is usually shown with ``tc netem``; this machine's kernel
has no queueing disciplines at all, so minis3 adds the delay where every
internal request starts: the RPC client of each process (frontends, metadata
replicas, the scrubber) sleeps before sending a request that crosses the
boundary of a delayed AZ. A delay of D for an AZ means every request between
that AZ and anything outside it takes D longer (the round trip grows by D, as
with ``netem delay D`` on the AZ's side of the link). Requests inside an AZ
are never delayed.

The setting lives in ``<data_dir>/run/latency.json`` (``{"az-b": 5.0}``, in
milliseconds) so it switches on and off live, survives a process restart, and
``minis3 status`` can show it. Each process re-reads the file at most every
``CHECK_EVERY_S``.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

CHECK_EVERY_S = 0.25


def crossing_delay_ms(delays_ms: dict[str, float], own_az: str | None, dest_az: str | None) -> float:
    """The delay (ms) for a request from a process in ``own_az`` (None: in no
    AZ, like the main frontend) to one in ``dest_az``. Pure."""
    if dest_az == own_az:
        return 0.0
    return max(delays_ms.get(dest_az, 0.0) if dest_az else 0.0,
               delays_ms.get(own_az, 0.0) if own_az else 0.0)


def settings_path(data_dir: Path) -> Path:
    return data_dir / "run" / "latency.json"


def read_settings(data_dir: Path) -> dict[str, float]:
    try:
        raw = json.loads(settings_path(data_dir).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in raw.items() if float(v) > 0}


def write_settings(data_dir: Path, delays_ms: dict[str, float]) -> None:
    path = settings_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(".latency.json")
    tmp.write_text(json.dumps({k: v for k, v in delays_ms.items() if v > 0}))
    os.replace(tmp, path)


class InterAZDelay:
    """What one process's RPC client sleeps before each request."""

    def __init__(self, data_dir: Path, az_of: dict[tuple[str, int], str], own_az: str | None):
        self.data_dir = data_dir
        self.az_of = az_of              # (host, port) of every AZ process → its AZ
        self.own_az = own_az
        self._delays: dict[str, float] = {}
        self._mtime: float | None = None
        self._checked = 0.0

    @classmethod
    def for_topology(cls, topo, own_az: str | None) -> "InterAZDelay":
        az_of = {(n.host, n.port): n.az for n in topo.nodes}
        az_of.update({(m.host, m.port): m.az for m in topo.all_metas})
        for az in topo.azs:
            fe = topo.az_frontend(az.name)
            az_of[(fe.host, fe.port)] = az.name
        return cls(topo.data_dir, az_of, own_az)

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < CHECK_EVERY_S:
            return
        self._checked = now
        try:
            mtime = settings_path(self.data_dir).stat().st_mtime
        except OSError:
            mtime = None
        if mtime != self._mtime:
            self._mtime = mtime
            self._delays = read_settings(self.data_dir) if mtime is not None else {}

    def seconds(self, host: str, port: int | None) -> float:
        self._refresh()
        if not self._delays:
            return 0.0
        return crossing_delay_ms(self._delays, self.own_az, self.az_of.get((host, port))) / 1000.0
