"""The crash sweep: for every failpoint, a short mixed workload, the process
crashed exactly there, restarted by its supervisor, and the invariants
checked: no acknowledged write lost, no unacknowledged write half visible,
every object readable or cleanly absent, and after the scrubber's passes the
fragment files on disk exactly those the records point at (crash_sweep.py
says how each point is reached, and what a case checks).

The cases come from core/failpoints.POINTS, so a point added there without a
case fails here. `make test` runs a sample (one storage point, one metadata
point: about 25 s each); `make chaos` (MINIS3_CHAOS_ALL=1) runs every point
and writes docs/faults-sweep.json and the table in docs/faults.md.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from minis3.core.failpoints import POINTS

from . import crash_sweep as sweep
from .cluster import started_cluster

EVERY = os.environ.get("MINIS3_CHAOS_ALL") == "1"
#: `make test`'s sample: a fragment durable in tmp/ but not at its name, and a
#: batch durable in the WAL that no writer heard of.
SAMPLE = ("storage.land.before_rename", "meta.wal.after_fdatasync")
DOCS = Path(__file__).resolve().parents[2] / "docs"

RESULTS: list[dict] = []


@pytest.fixture(scope="module")
def sc(tmp_path_factory):
    t0 = time.monotonic()
    # One extra metadata process per AZ: somewhere for the move cases to move a replica to.
    yield from started_cluster(tmp_path_factory, "sweep", scrub=sweep.SCRUB, index=sweep.INDEX, extra_metas=1)
    if EVERY and {r["point"] for r in RESULTS} == set(POINTS):
        sweep.write_report(RESULTS, time.monotonic() - t0, DOCS / "faults-sweep.json", DOCS / "faults.md")


def test_every_failpoint_has_a_sweep_case():
    missing = [p for p in POINTS if p not in sweep.CASES]
    assert not missing, f"failpoints with no crash-sweep case (add them to crash_sweep.CASES): {missing}"
    assert set(sweep.CASES) <= set(POINTS), f"cases for no failpoint: {set(sweep.CASES) - set(POINTS)}"
    assert set(SAMPLE) <= set(POINTS)


def _params():
    for point in POINTS:
        marks = [] if EVERY or point in SAMPLE else [pytest.mark.skip(reason="the whole sweep runs in `make chaos`")]
        yield pytest.param(point, id=point, marks=marks)


@pytest.mark.parametrize("point", list(_params()))
def test_crash_at_failpoint_under_load(sc, point):
    result = sweep.run_case(sc, point)
    RESULTS.append(result)
    print(f"crash sweep {point}: " + json.dumps(result))
    assert result["anomalies"] == 0, "\n".join(result["anomaly_examples"])
    assert result["ops"] > 0 and result["failed"] < result["ops"] / 2, result
