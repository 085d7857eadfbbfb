"""The course's labs (docs/course/labs/), each run as a learner would, against one real cluster.

Each lab checks what the learner should see and exits 1 when the system no
longer behaves as its chapter (docs/course/0N-*.md) says, so the course
cannot go stale. The cluster is the default local one with an extra metadata
process per AZ (as `make run`'s), an index that splits at 2,000 keys (so lab 3
sees splits) and a write budget of 50 requests a second per partition replica
(so lab 3's burst meets 503 SlowDown). Lab 4 starts from the DNS lookup: it
runs against the two regions and the DNS server of the `world` fixture
(conftest.py), as it would against `minis3 up --regions us-east-1,eu-west-1`.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from .cluster import TestCluster, started_cluster

LABS = Path(__file__).resolve().parents[2] / "docs" / "course" / "labs"


@pytest.fixture(scope="module")
def lc(tmp_path_factory):
    yield from started_cluster(tmp_path_factory, "labs", extra_metas=1,
                               index={"split_keys": 2000, "check_every_s": 0.5, "write_ops_per_s": 50})


def run_lab(c: TestCluster | Path, script: str) -> str:
    """Run a lab against a cluster (or the topology file at that path)."""
    t0 = time.monotonic()
    topo_path = c if isinstance(c, Path) else c.topo_path
    r = subprocess.run([sys.executable, str(LABS / script), "--topology", str(topo_path)],
                       capture_output=True, text=True, timeout=300)
    print(r.stdout)
    print(r.stderr, file=sys.stderr)
    print(f"{script}: exit {r.returncode} in {time.monotonic() - t0:.1f} s")
    assert r.returncode == 0, f"{script} exited {r.returncode}:\n{r.stdout[-6000:]}\n{r.stderr[-3000:]}"
    return r.stdout


def test_lab1_not_a_filesystem(lc):
    run_lab(lc, "lab1_not_a_filesystem.py")


def test_lab2_surviving_hardware_failure(lc):
    run_lab(lc, "lab2_surviving_hardware_failure.py")


def test_lab2b_eleven_nines_computed(lc):
    out = run_lab(lc, "lab2b_eleven_nines.py")
    assert "the model used that repair time" in out


def test_lab2c_a_disk_fills_up(lc):
    out = run_lab(lc, "lab2c_full_disk.py")
    assert "moved" in out and "fragments home from handoff nodes" in out


def test_lab3_finding_any_object(lc):
    out = run_lab(lc, "lab3_finding_any_object.py")
    # This cluster's index splits at 2,000 keys and its budget is 50 writes a second:
    # the lab must have seen what its chapter quotes.
    assert "split of" in out and "refused at once with 503 SlowDown" in out


def test_lab4_journey_of_a_put(world):
    out = run_lab(world.path, "lab4_journey_of_a_put.py")
    # The lab began at the DNS lookup, as its chapter says.
    assert "── Step 1: before any byte: DNS" in out and f"dig @{world.dns.host} -p {world.dns.port}" in out


def test_lab4_needs_regions():
    """Against `make run`'s topology (one region, no DNS) lab 4 stops at once, before any
    request, and says what to start instead."""
    r = subprocess.run([sys.executable, str(LABS / "lab4_journey_of_a_put.py")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "minis3 up --regions us-east-1,eu-west-1" in r.stderr, r.stderr
