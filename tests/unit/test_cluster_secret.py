"""The cluster secret is never a constant everyone knows: a topology without
one gets $MINIS3_CLUSTER_SECRET or its data directory's own random secret."""
from __future__ import annotations

import stat
import subprocess
import sys

import pytest

from minis3.cluster import topology as T


@pytest.fixture(autouse=True)
def no_env(monkeypatch):
    monkeypatch.delenv(T.SECRET_ENV, raising=False)


def test_a_new_data_directory_gets_its_own_random_secret_kept_private(tmp_path):
    a = T.load(None, data_dir=tmp_path / "one")
    b = T.load(None, data_dir=tmp_path / "two")
    assert len(a.cluster_secret) == 64 and a.cluster_secret != b.cluster_secret
    assert a.cluster_secret not in T.DEMO_SECRETS
    f = tmp_path / "one" / T.SECRET_FILE
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert T.load(None, data_dir=tmp_path / "one").cluster_secret == a.cluster_secret    # kept
    assert a.secret_source == f"this data directory's random cluster secret ({f}, mode 0600)"


def test_the_topology_then_the_environment_win(tmp_path, monkeypatch):
    assert T.parse(dict(T.default_doc(), cluster_secret="given"), data_dir=tmp_path).cluster_secret == "given"
    monkeypatch.setenv(T.SECRET_ENV, "from-env")
    topo = T.parse(T.default_doc(), data_dir=tmp_path)
    assert (topo.cluster_secret, topo.secret_source) == ("from-env", f"the cluster secret in ${T.SECRET_ENV}")
    assert not (tmp_path / T.SECRET_FILE).exists()


def test_processes_starting_together_agree(tmp_path):
    code = ("import sys; from minis3.cluster import topology as T; "
            "print(T.load(None, data_dir=sys.argv[1]).cluster_secret)")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "d")], stdout=subprocess.PIPE, text=True)
             for _ in range(8)]
    got = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(got) == 1 and len(got.pop()) == 64
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [T.SECRET_FILE]     # no temp file left


def test_every_region_of_a_world_shares_one(tmp_path):
    doc = {"region": [{"name": "us-east-1", "frontend": {"port": 19000}, "erasure": {"k": 2, "m": 1}},
                      {"name": "eu-west-1", "frontend": {"port": 19100}, "erasure": {"k": 2, "m": 1}}]}
    for i, r in enumerate(doc["region"]):
        r["az"] = [{"name": f"az-{c}", "nodes": [{"id": f"{c}{i}", "port": 19010 + 100 * i + j}],
                    "meta": {"port": 19050 + 100 * i + j}} for j, c in enumerate("abc")]
    w = T.parse_world(doc, data_dir=tmp_path)
    assert len({r.cluster_secret for r in w.regions}) == 1
    assert all("random cluster secret" in r.secret_source for r in w.regions)
    assert (tmp_path / T.SECRET_FILE).exists()
