"""A metadata process's Prometheus counters (served at ``GET /metrics``)."""
from __future__ import annotations

import prometheus_client

REGISTRY = prometheus_client.CollectorRegistry()
CAS_REFUSED = prometheus_client.Counter("minis3_meta_conditional_refused",
                                        "conditional-write rounds refused (another write of the key won or raced)",
                                        ["round"], registry=REGISTRY)
WRITES = prometheus_client.Counter("minis3_meta_versions_written", "versions this replica kept", ["table"],
                                   registry=REGISTRY)
STALE_COMMITS = prometheus_client.Counter("minis3_meta_stale_commits_refused",
                                          "new versions refused for arriving after the commit window",
                                          registry=REGISTRY)
SLOWDOWNS = prometheus_client.Counter("minis3_meta_slowdowns", "requests refused with SlowDown",
                                      ["partition", "kind"], registry=REGISTRY)
