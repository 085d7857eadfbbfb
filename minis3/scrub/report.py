"""What a scrub pass saw and did: :class:`PassReport` (one pass's report, and its
live progress while it runs) and the scrubber's Prometheus metrics, which add
the passes up (served at ``GET /metrics``)."""
from __future__ import annotations

from dataclasses import dataclass, field

import prometheus_client

REGISTRY = prometheus_client.CollectorRegistry()
_C = lambda name, doc, *labels: prometheus_client.Counter(name, doc, labels, registry=REGISTRY)  # noqa: E731
_G = lambda name, doc: prometheus_client.Gauge(name, doc, registry=REGISTRY)  # noqa: E731
PASSES = _C("minis3_scrub_passes", "scrub passes finished")
OBJECTS = _C("minis3_scrub_objects_checked", "erasure-coded objects whose placement was checked")
FRAGMENTS = _C("minis3_scrub_fragments_checked", "fragments checked against the nodes' inventories")
DAMAGED = _C("minis3_scrub_fragments_damaged", "fragments found missing or quarantined", "why")
REBUILT = _C("minis3_scrub_fragments_rebuilt", "fragments written: rebuilt, or moved home", "why")
REBUILT_BYTES = _C("minis3_scrub_bytes_rebuilt", "fragment bytes written by repairs")
REBUILD_READ_BYTES = _C("minis3_scrub_bytes_read_for_rebuild", "fragment bytes read by repairs (k per segment rebuilt)")
NODES_GONE = _G("minis3_scrub_nodes_gone", "nodes down longer than scrub.down_after_s: their fragments are rebuilt elsewhere")
REBUILD_SECONDS = _C("minis3_scrub_rebuild_seconds",
                     "seconds during which at least one repair was running (rebuild rate = bytes rebuilt / this)")
META_REPAIRS = _C("minis3_scrub_meta_repairs", "stale metadata replica versions overwritten by the newest")
ORPHANS = _C("minis3_gc_orphans_removed", "unreferenced fragments deleted after the grace period")
ORPHAN_BYTES = _C("minis3_gc_bytes_removed", "bytes of unreferenced fragments deleted")
PASS_SECONDS = _G("minis3_scrub_last_pass_seconds", "duration of the last finished pass")
DEGRADED = _G("minis3_scrub_objects_not_full", "objects not at full redundancy after the last pass")
RECOVERY_SECONDS = _G("minis3_scrub_redundancy_restored_seconds",
                      "seconds from a node's return to every object at full redundancy, last time")


@dataclass
class PassReport:
    """What one pass saw and did (also its live progress while it runs)."""
    id: int
    started_unix: float
    phase: str = "starting"
    audit: bool = False
    nodes_up: list[str] = field(default_factory=list)
    nodes_down: list[str] = field(default_factory=list)
    nodes_full: list[str] = field(default_factory=list)   # up, disk full: no fragment is written there
    nodes_gone: list[str] = field(default_factory=list)   # down longer than down_after_s: fragments rebuilt elsewhere
    audit_bytes: int = 0
    audit_fragments: int = 0
    corrupt_found: int = 0           # by this pass's audits
    inventory_unix: float = 0.0      # when the inventories were asked for
    keys_total: int = 0              # estimate, for progress
    keys_done: int = 0
    objects: int = 0                 # erasure-coded objects checked
    fragments: int = 0
    damaged: dict = field(default_factory=dict)       # why → count
    rebuilt: dict = field(default_factory=dict)       # why → count
    rebuilt_bytes: int = 0           # fragment bytes written by repairs (what the rebuild rate counts)
    rebuild_read_bytes: int = 0      # fragment bytes read to rebuild them (k per segment)
    rebuild_seconds: float = 0.0     # time with at least one repair running (minis3 durability's rebuild rate)
    rebuild_rate_mb_per_s: float = 0.0   # the rate limit this pass ran with (0: none)
    repair_failures: int = 0
    not_full: int = 0
    unrepairable: list = field(default_factory=list)  # [key, problem], first few
    meta_repairs: int = 0
    parts_cleaned: int = 0           # part records of finished or abandoned uploads
    replicas_scanned: int = 0
    orphans_removed: int = 0
    orphan_bytes: int = 0
    gc_skipped: str | None = None
    complete: bool = False           # every replica's scan finished
    seconds: float | None = None
    fixed: list = field(default_factory=list)         # [key, index, why, node], first 200

    def as_dict(self) -> dict:
        return dict(self.__dict__)


# ----------------------------------------------------------------------------- lifecycle rounds
LIFECYCLE_ACTIONS = _C("minis3_lifecycle_actions", "what buckets' lifecycle rules did: expired (current versions), "
                       "markers_removed, noncurrent_expired, uploads_aborted, transitioned", "action")
LIFECYCLE_KEPT_LOCKED = _C("minis3_lifecycle_kept_locked", "versions a lifecycle rule would have deleted, kept by "
                           "Object Lock (a legal hold or a retention date ahead)")
LIFECYCLE_FAILURES = _C("minis3_lifecycle_failures", "lifecycle actions that failed or were refused (tried again "
                        "next round)")
LIFECYCLE_ROUNDS = _C("minis3_lifecycle_rounds", "lifecycle rounds finished")


@dataclass
class LifecycleReport:
    """What one lifecycle round read and did (scrub/lifecycle.py)."""
    id: int
    started_unix: float
    phase: str = "starting"
    buckets: int = 0                 # buckets with a lifecycle configuration
    entries_read: int = 0            # versions, delete markers and uploads read
    expired: int = 0                 # current versions: deleted (no versioning) or given a delete marker
    markers_removed: int = 0         # expired object delete markers removed
    noncurrent_expired: int = 0      # noncurrent versions deleted for good
    uploads_aborted: int = 0
    transitioned: int = 0            # versions given another storage class (the next scrub pass moves them)
    transitions_skipped: int = 0     # the target class needs another erasure code: not done
    kept_locked: int = 0             # kept by Object Lock
    raced: int = 0                   # the key changed between the read and the action: left to the next round
    failures: int = 0
    errors: list = field(default_factory=list)      # [bucket, key, problem], first few
    resumes_at: dict = field(default_factory=dict)  # bucket → where the next round goes on (budget spent)
    seconds: float | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)
