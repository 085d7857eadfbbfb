"""`minis3 chaos failpoints` and `crash-at` find every process with failpoints,
the frontends among them, and ask each at its own route (cluster/failpoints.py)."""
from __future__ import annotations

import json

import pytest

from minis3 import config as T
from minis3.cluster import failpoints as F
from minis3.cluster.chaos import ChaosError


def topology(tmp_path, per_az: bool = False):
    topo = T.parse(T.default_doc(), data_dir=tmp_path)
    return topo.with_frontend_per_az() if per_az else topo


def test_the_frontends_are_processes_with_failpoints_named_as_minis3_status_names_them(tmp_path):
    topo = topology(tmp_path)
    names = [n for n, _ in F.processes(topo)]
    assert names[-2:] == ["scrubber", "frontend"] and "node-a1" in names and "meta-az-b" in names
    assert F.resolve(topo, "frontend") == ("frontend", topo.frontend.url)
    with pytest.raises(ChaosError, match="no process 'frontend-az-a'"):
        F.resolve(topo, "frontend-az-a")
    per_az = topology(tmp_path, per_az=True)
    assert F.resolve(per_az, "frontend-az-a") == ("frontend-az-a", per_az.az_frontend("az-a").url)


def test_a_frontend_is_asked_at_its_own_route_the_others_at_theirs(tmp_path, monkeypatch):
    topo = topology(tmp_path, per_az=True)
    asked = []

    def call(secret, method, url, path, doc=None, **kw):
        asked.append((url, path))
        return 200, json.dumps({"pid": 1, "armed": (doc or {}).get("spec", "")}).encode()
    monkeypatch.setattr(F.sync, "call", call)
    said = F.crash_at(topo, "frontend.put.before_commit", "frontend")
    assert asked[-1] == (topo.frontend.url, "/_minis3/failpoints") and "`minis3 up` starts it again" in said
    F.crash_at(topo, "frontend.put.before_commit", "frontend-az-b")
    assert asked[-1] == (topo.az_frontend("az-b").url, "/_minis3/failpoints")
    assert "its AZ supervisor restarts it" in F.crash_at(topo, "meta.move.after_fence", "meta-az-b")
    assert asked[-1] == (topo.meta("meta-az-b").url, "/failpoints")
