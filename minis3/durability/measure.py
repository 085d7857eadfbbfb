"""The repair inputs of the durability model, read from the running cluster (the I/O shell
around ``model.py``).

MTTR = detection + rebuild, where

- detection, for the failure the model counts (a disk or node that fails and stays down), is
  the scrubber's *down timeout*: a node unreachable for ``scrub.down_after_s`` is declared
  gone and a pass starts at once to rebuild its fragments elsewhere (``GET /status`` of the
  scrubber, ``settings.down_after_s``; its probes run every second, so the bound is that
  plus a second). Shown beside it: a fragment lost on a node that stays up (deleted, a disk
  replaced empty) is found by the next pass, within the pass interval (``settings.interval_s``),
  and a silently flipped bit by the node's own audit, which re-reads everything in bytes per
  node ÷ audit rate (``settings.audit_mb_per_s``), then the next pass: audit cycle + interval.
  A node that serves data audits at ``settings.audit_busy_share`` of its rate, so the bound
  (a node busy all the time) is bytes ÷ (audit rate × busy share) + interval;
- rebuild is the fragment bytes a node holds (its ``GET /status``, ``disk_bytes``: the
  largest node's, the slowest to rebuild) ÷ the scrubber's measured rebuild rate: fragment
  bytes written by repairs ÷ the time with any repair running (``GET /status``, ``rebuild``;
  the counters ``minis3_scrub_bytes_rebuilt`` and ``minis3_scrub_rebuild_seconds``), and
  never less than the last pass's duration (a rebuild ends with the pass that does it).

Each value says where it came from; what the cluster cannot tell (no scrubber answers, no
rebuild yet since it started) falls back to a stated default.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ..rpc.sync import signed_get
from ..config import Topology

#: docs/scrub-benchmarks.md: a wiped node's fragments rebuilt with no rate limit, 2 cores
#: (1 MiB objects; the rate limit, scrub.rebuild_mb_per_s, is 25 MB/s by default).
DEFAULT_REBUILD_BYTES_PER_S = 50e6
#: A full 4 TB disk, when no node can be asked.
DEFAULT_NODE_BYTES = 4e12


@dataclass
class Measured:
    value: float
    unit: str
    source: str
    measured: bool = False        # read from the running cluster (not a default, a flag or the topology)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class RepairInputs:
    cluster: bool                 # did the scrubber answer?
    where: str                    # the scrubber's address
    scan_interval_s: Measured
    down_after_s: Measured        # detection of a node that stays down
    audit_bytes_per_s: Measured
    rebuild_bytes_per_s: Measured
    node_bytes: Measured
    pass_s: Measured              # the last pass's duration: a rebuild cannot end sooner
    audit_busy_share: Measured    # the share of its rate a busy node's audit keeps

    @property
    def rebuild_s(self) -> float:
        return max(self.node_bytes.value / self.rebuild_bytes_per_s.value, self.pass_s.value)

    @property
    def detection_s(self) -> float:
        """How long a failed node goes unnoticed: the down timeout (scrub.down_after_s)."""
        return self.down_after_s.value

    @property
    def mttr_s(self) -> float:
        return self.detection_s + self.rebuild_s

    @property
    def audit_cycle_s(self) -> float | None:
        """An audit pass over a node's bytes at the full rate (a node with no foreground work)."""
        a = self.audit_bytes_per_s.value
        return self.node_bytes.value / a if a > 0 else None

    @property
    def audit_cycle_busy_s(self) -> float | None:
        """The same pass on a node that serves data all the time (the audit yields to it)."""
        cycle = self.audit_cycle_s
        return None if cycle is None else cycle / self.audit_busy_share.value

    @property
    def bitflip_detection_s(self) -> float | None:
        """A silent bitflip is quarantined within one audit cycle (at worst the busy one)
        and rebuilt by the next pass."""
        cycle = self.audit_cycle_busy_s
        return None if cycle is None else cycle + self.scan_interval_s.value

    def as_dict(self) -> dict:
        return {"cluster": self.cluster, "scrubber": self.where,
                "scan_interval_s": self.scan_interval_s.as_dict(), "down_after_s": self.down_after_s.as_dict(),
                "audit_bytes_per_s": self.audit_bytes_per_s.as_dict(),
                "audit_busy_share": self.audit_busy_share.as_dict(),
                "rebuild_bytes_per_s": self.rebuild_bytes_per_s.as_dict(),
                "node_bytes": self.node_bytes.as_dict(), "last_pass_s": self.pass_s.as_dict(),
                "detection_s": self.detection_s, "rebuild_s": self.rebuild_s, "mttr_s": self.mttr_s,
                "audit_cycle_s": self.audit_cycle_s, "audit_cycle_busy_s": self.audit_cycle_busy_s,
                "bitflip_detection_s": self.bitflip_detection_s}


def measure(topo: Topology, ask: bool = True, timeout: float = 3.0) -> RepairInputs:
    """Ask the scrubber and every storage node (``ask=False``: ask nothing, use the defaults)."""
    sc = topo.scrub
    st = signed_get(topo.cluster_secret, sc.url, "/status", timeout=timeout) if ask else None
    settings = (st or {}).get("settings") or {}
    if "interval_s" in settings:
        interval = Measured(float(settings["interval_s"]), "s",
                            "the scrubber's pass interval (scrubber GET /status: settings.interval_s)", True)
    else:
        interval = Measured(sc.interval_s, "s", f"the topology's scrub.interval_s ({_why_not(st, ask)})")
    if "down_after_s" in settings:
        down = Measured(float(settings["down_after_s"]), "s",
                        "the scrubber's down timeout (scrubber GET /status: settings.down_after_s)", True)
    else:
        down = Measured(sc.down_after_s, "s", f"the topology's scrub.down_after_s ({_why_not(st, ask)})")
    if "audit_mb_per_s" in settings:
        audit = Measured(float(settings["audit_mb_per_s"]) * 1e6, "B/s",
                         "each node's audit rate (scrubber GET /status: settings.audit_mb_per_s)", True)
    else:
        audit = Measured(sc.audit_mb_per_s * 1e6, "B/s", f"the topology's scrub.audit_mb_per_s ({_why_not(st, ask)})")
    if "audit_busy_share" in settings:
        share = Measured(float(settings["audit_busy_share"]), "",
                         "the audit's share of its rate on a busy node (scrubber GET /status: "
                         "settings.audit_busy_share)", True)
    else:
        share = Measured(sc.audit_busy_share, "", f"the topology's scrub.audit_busy_share ({_why_not(st, ask)})")
    reb = (st or {}).get("rebuild") or {}
    if reb.get("bytes") and reb.get("seconds"):
        rebuild = Measured(reb["bytes"] / reb["seconds"], "B/s",
                           f"{reb['bytes'] / 1e6:.1f} MB rebuilt in {reb['seconds']:.2f} s of repairs since the "
                           f"scrubber started (scrubber GET /status: rebuild)", True)
    else:
        why = "no rebuild yet since the scrubber started" if st else _why_not(st, ask)
        limit = float(settings.get("rebuild_mb_per_s", sc.rebuild_mb_per_s)) * 1e6
        if 0 < limit < DEFAULT_REBUILD_BYTES_PER_S:     # a rebuild never outruns its rate limit
            rebuild = Measured(limit, "B/s", f"default: the rebuild rate limit, scrub.rebuild_mb_per_s "
                                             f"({limit / 1e6:.0f} MB/s; {why})")
        else:
            rebuild = Measured(DEFAULT_REBUILD_BYTES_PER_S, "B/s",
                               f"default: make bench-scrub's {DEFAULT_REBUILD_BYTES_PER_S / 1e6:.0f} MB/s unlimited, "
                               f"docs/scrub-benchmarks.md ({why})")
    last = (st or {}).get("last_pass") or {}
    if last.get("seconds") is not None:
        pass_s = Measured(float(last["seconds"]), "s", f"scrubber GET /status: last_pass.seconds (pass {last['id']})",
                          True)
    else:
        pass_s = Measured(0.0, "s", "no pass finished yet" if st else _why_not(st, ask))
    node_bytes = _node_bytes(topo, ask and st is not None, timeout)
    return RepairInputs(st is not None, sc.url, interval, down, audit, rebuild, node_bytes, pass_s, share)


def _why_not(st: dict | None, ask: bool) -> str:
    if not ask:
        return "not asked: --no-cluster"
    return "no scrubber answered" if st is None else "the scrubber did not say"


def _node_bytes(topo: Topology, ask: bool, timeout: float) -> Measured:
    sizes = {}
    if ask:
        for n in topo.nodes:
            st = signed_get(topo.cluster_secret, n.url, "/status", timeout=timeout)
            if st is not None and "disk_bytes" in st:
                sizes[n.id] = int(st["disk_bytes"])
    if not sizes:
        why = "no storage node answered" if ask else "the cluster was not asked"
        return Measured(DEFAULT_NODE_BYTES, "B", f"default: a full 4 TB disk ({why})")
    node = max(sizes, key=lambda k: sizes[k])
    return Measured(float(sizes[node]), "B", f"the largest node's fragment files ({node}; GET /status: disk_bytes; "
                                             f"{len(sizes)} of {len(topo.nodes)} nodes answered)", True)
