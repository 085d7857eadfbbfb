"""A storage node's Prometheus metrics (served unsigned at ``GET /metrics``)."""
from __future__ import annotations

import prometheus_client


class NodeMetrics:
    """The node's Prometheus metrics, in a registry of its own (so that two
    nodes in one test process do not share counters). ``quarantined_count``:
    a function that counts the files in quarantine/ now, read at each scrape."""

    def __init__(self, quarantined_count):
        r = self.registry = prometheus_client.CollectorRegistry()
        c, g = prometheus_client.Counter, prometheus_client.Gauge
        self.audit_bytes = c("minis3_audit_bytes_verified", "Bytes of fragment files re-read and checked by the audit", registry=r)
        self.audit_fragments = c("minis3_audit_fragments_verified", "Fragment files checked to their end by the audit", registry=r)
        self.corrupt = c("minis3_audit_corrupt_fragments", "Fragment files found bad and quarantined", ["detected_by"], registry=r)
        self.passes = c("minis3_audit_passes", "Audit passes finished", registry=r)
        self.last_pass_seconds = g("minis3_audit_last_pass_seconds", "How long the last finished audit pass took", registry=r)
        self.quarantined = g("minis3_fragments_quarantined", "Fragment files in quarantine/ now", registry=r)
        self.quarantined.set_function(quarantined_count)
        self.fragments_written = c("minis3_storage_fragments_written", "Fragments stored (PUT answered 200)", registry=r)
        self.bytes_written = c("minis3_storage_bytes_written", "Fragment data bytes stored", registry=r)
        self.fragments_read = c("minis3_storage_fragments_read", "Fragment reads served to their end", registry=r)
        self.bytes_read = c("minis3_storage_bytes_read", "Fragment data bytes served", registry=r)
        self.fragments_deleted = c("minis3_storage_fragments_deleted", "Fragment files removed by DELETE", registry=r)
        for label in ("audit", "read"):
            self.corrupt.labels(label)            # show both series from the start, at 0
        prometheus_client.ProcessCollector(registry=r)
