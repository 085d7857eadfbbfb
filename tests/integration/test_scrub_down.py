"""A node that stays down: after scrub.down_after_s its fragments are rebuilt on other nodes.

Real processes: boto3 against the frontend, a storage node killed with kill -9 and held
down (`minis3 chaos kill-node`), the scrubber noticing on its own. Then the node comes back
with its old files: fragments go home again and every copy nothing points at any more (the
handoff copies, and the fragments of objects deleted or replaced while it was away) is
removed by the ordinary garbage collection, while every object stays readable.
"""
from __future__ import annotations

import random
import time
from collections import Counter

import pytest

from minis3.cluster import chaos
from minis3.ec.placement import place

from .cluster import TestCluster, started_cluster
from .conftest import make_client
from .s3helpers import assert_read_back

KiB, MiB = 1024, 1024 * 1024
DOWN_AFTER = 4.0          # seconds a node may be unreachable before its fragments count as lost
# GC grace period: the test waits it out once. The commit window is a quarter of it
# (0.75 s), ~18x the slowest commit seen under load on 2 cores (test_scrub.py's GRACE);
# the collection after it is polled.
GRACE = 3.0


@pytest.fixture(scope="module")
def dc(tmp_path_factory):
    yield from started_cluster(tmp_path_factory, "down",
                               scrub={"interval_s": 3600, "audit_mb_per_s": 0, "gc_grace_s": GRACE,
                                      "down_after_s": DOWN_AFTER, "rebuild_mb_per_s": 0})


def _scrubber_status(c: TestCluster) -> dict:
    return c.signed_get(c.topo.scrub.url, "/status")


def _referenced(c: TestCluster, bucket: str) -> set[tuple[str, str, int]]:
    return {(node, r["ec"]["id"], i) for r in c.records(bucket).values() for i, node in enumerate(r["ec"]["nodes"])}


def test_a_node_that_stays_down_is_rebuilt_elsewhere_and_collected_when_it_returns(dc):
    s3 = make_client(dc.endpoint)
    s3.create_bucket(Bucket="gone")
    rng = random.Random(21)
    objs = {f"o/{i:02d}": rng.randbytes(rng.randrange(100 * KiB, 2 * MiB)) for i in range(24)}
    for key, body in objs.items():
        s3.put_object(Bucket="gone", Key=key, Body=body)
    node_az = {n.id: n.az for n in dc.topo.nodes}
    before = dc.records("gone")
    # Six fragments, two an AZ, one on each of the six nodes: every object has one on b1.
    assert all("b1" in r["ec"]["nodes"] for r in before.values())
    time.sleep(1.5)          # (a pass leaves versions younger than ~1 s to the next one)

    killed = time.monotonic()
    chaos.kill_node(dc.topo, "b1")           # kill -9, and its supervisor keeps it down
    try:
        # The scrubber alone notices: after DOWN_AFTER seconds b1 is gone and a pass rebuilds
        # its fragments on the other nodes. (The bound is the feature's own, with a wide margin.)
        deadline = killed + DOWN_AFTER + 90
        auto = None
        while time.monotonic() < deadline:
            st = _scrubber_status(dc)
            last = st.get("last_pass") or {}
            if "b1" in last.get("nodes_gone", []) and last.get("phase") == "done":
                auto = last
                break
            time.sleep(0.5)
        assert auto is not None, "the scrubber never rebuilt the fragments of the node that stayed down"
        assert time.monotonic() - killed >= DOWN_AFTER            # not before the timeout
        assert "b1" in st["nodes_gone"] and st["settings"]["down_after_s"] == DOWN_AFTER
        assert auto["damaged"].get("node gone") == len(objs) and auto["rebuilt"].get("node gone") == len(objs)
        assert auto["not_full"] == 0 and not auto["repair_failures"], auto
        assert auto["rebuild_read_bytes"] >= 4 * auto["rebuilt_bytes"] > 0      # k fragments read per one written

        # The records point at the new copies: none on b1, at most m = 2 a node, still 2 an AZ.
        after = dc.records("gone")
        for key, r in after.items():
            nodes = r["ec"]["nodes"]
            assert "b1" not in nodes, key
            assert max(Counter(nodes).values()) <= 2, key
            assert sorted(Counter(node_az[n] for n in nodes).values()) == [2, 2, 2], key
            assert r["ts"] == before[key]["ts"] and r["pe"] > before[key].get("pe", 0)   # same version
        on_disk = dc.fragment_locations()
        assert _referenced(dc, "gone") <= on_disk
        # A pass now finds nothing left to do.
        again = dc.scrub_now("--no-audit")["pass"]
        assert again["not_full"] == 0 and not again["rebuilt"], again

        assert_read_back(s3, "gone", objs)
        # Redundancy is really back: with b1 still down, lose two more nodes in two other
        # AZs. Without the rebuild every object would be down to 3 of 6 fragments.
        chaos.kill_node(dc.topo, "a1")
        chaos.kill_node(dc.topo, "c2")
        try:
            dc.wait_seen_down("a1", "c2")
            assert_read_back(s3, "gone", objs)
        finally:
            chaos.revive_node(dc.topo, "a1")
            chaos.revive_node(dc.topo, "c2")
        # While b1 is away, some objects are replaced and some deleted: b1's fragments of
        # those are stale, and must be collected when it comes back.
        for key in list(objs)[:3]:
            objs[key] = rng.randbytes(300 * KiB)
            s3.put_object(Bucket="gone", Key=key, Body=objs[key])
        for key in list(objs)[3:6]:
            s3.delete_object(Bucket="gone", Key=key)
            del objs[key]
    finally:
        chaos.revive_node(dc.topo, "b1")
    dc.wait_healthy()

    # b1 is back with its old files. Passes bring fragments home (b1 is their home again),
    # and after the grace period GC removes every copy nothing points at: the handoff
    # copies on b2 and b1's fragments of the replaced and deleted objects.
    azs = [(az.name, [n.id for n in az.nodes]) for az in dc.topo.azs]
    stale_on_b1 = {("b1", before[k]["ec"]["id"], before[k]["ec"]["nodes"].index("b1"))
                   for k in list(before)[:6]}
    assert stale_on_b1 <= dc.fragment_locations()      # b1 still has them: it was only down
    time.sleep(1.5)
    home = dc.scrub_now("--no-audit")["pass"]
    assert home["not_full"] == 0, home
    time.sleep(GRACE + 1)
    deadline = time.monotonic() + 120
    while True:
        gc_pass = dc.scrub_now("--no-audit")["pass"]
        wanted, on_disk = _referenced(dc, "gone"), dc.fragment_locations()
        if on_disk == wanted or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    assert on_disk == wanted, (sorted(on_disk - wanted)[:10], sorted(wanted - on_disk)[:10])
    assert not stale_on_b1 & on_disk
    assert gc_pass["not_full"] == 0
    for key, r in dc.records("gone").items():
        assert r["ec"]["nodes"] == place(r["ec"]["id"], azs, 6), key        # every fragment home again
    assert set(dc.records("gone")) == set(objs)
    assert_read_back(s3, "gone", objs)
