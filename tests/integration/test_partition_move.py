"""A partition's replica moves to another metadata process of its AZ while clients use it.

A cluster with one extra metadata process per AZ (holding nothing at start).
While boto3 clients PUT, GET, DELETE and LIST a bucket (every operation
checked against the log of acknowledged operations, chaos_workload.py), the
index manager moves the bucket's partition's replica in az-a, then in az-b,
to the extra processes (``minis3 partitions move``). Frontends hold a cached
partition map and learn each move from a 421 WrongPartition answer.
"""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from minis3.cluster import chaos
from minis3.cluster.partitions import collect, move, render

from .chaos_workload import client, run_workload
from .cluster import local_partitions, started_cluster


BULK = 5_000


@pytest.fixture(scope="module")
def mc(tmp_path_factory):
    # (The scrubber's pass walks the index unpaced: at the default 2,000 keys a second the
    # one pass here would spend ~2.5 s on the bulk-loaded keys, and pacing is not tested here.)
    yield from started_cluster(tmp_path_factory, "move", extra_metas=1,
                               index={"split_keys": 10**9, "split_ops_per_s": 0, "check_every_s": 0.5},
                               scrub={"meta_keys_per_s": 0})


def stats(c, meta) -> dict:
    return {p["id"]: p for p in c.signed_get(meta.url, "/index/stats")["partitions"]}


def test_a_replica_moves_to_another_process_of_its_az_while_clients_write_delete_and_list(mc):
    s3 = client(mc.endpoint)
    s3.create_bucket(Bucket="moves")
    # Keys after the workload's (w0/..w3/), so a move's copy is still busy with
    # them while the workload's keys, copied first, are written again.
    r = subprocess.run([sys.executable, "-m", "minis3", "bulk-load", "moves", "--keys", str(BULK), "--size", "10",
                        "--prefix", "zz/", "--topology", str(mc.topo_path)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    pid = mc.partition_map().locate("moves/").id
    home_a, extra_a = mc.topo.azs[0].meta, mc.topo.azs[0].extra_metas[0]
    home_b, extra_b = mc.topo.azs[1].meta, mc.topo.azs[1].extra_metas[0]
    assert pid not in stats(mc, extra_a), "an extra metadata process starts with nothing"

    moved: list[dict] = []
    errors: list[str] = []

    def moves():
        time.sleep(1.5)
        for to in (extra_a.id, extra_b.id):
            ok, ev = move(mc.topo, pid, to)
            (moved if ok else errors).append(ev)
            time.sleep(1.0)
    t = threading.Thread(target=moves)
    wl = run_workload(mc, "moves", 9, during=t.start)
    t.join()
    assert not errors, errors
    assert not wl.violations, "\n".join(wl.violations[:20])
    failed = [o for o in wl.ops if not o.ok]
    assert len(wl.ops) > 100 and not failed, failed[:10]

    # Each move went through its five steps and is in the map's history.
    assert [(ev["az"], ev["from"], ev["to"]) for ev in moved] == [
        ("az-a", home_a.id, extra_a.id), ("az-b", home_b.id, extra_b.id)]
    for ev in moved:
        assert ev["copied"]["versions"] >= BULK and ev["released"]["dropped"] == [pid]
    pmap = mc.partition_map()
    e = pmap.get(pid)
    assert e.replica_in("az-a") == extra_a.id and e.replica_in("az-b") == extra_b.id
    assert [h["kind"] for h in pmap.history_of(pid)][-2:] == ["move", "move"]
    # The old holders hold nothing of the range; the new ones serve it.
    assert pid not in local_partitions(mc, home_a) and pid not in local_partitions(mc, home_b)
    assert stats(mc, extra_a)[pid]["state"] == "serving" and stats(mc, extra_b)[pid]["state"] == "serving"
    text = render(collect(mc.topo))
    assert f"moved in az-b from {home_b.id} to {extra_b.id}" in text

    # In a healthy cluster every write reaches all three replicas, so each new
    # holder alone must hold every acknowledged state: what it copied, and
    # what it caught up on after the switch (writes that landed on the old
    # holder after the copy had passed their keys).
    time.sleep(1.0)                      # writes to a third replica finish in the background
    for az in ("az-a", "az-b"):
        have = {k.partition("/")[2]: v for k, v in mc.replica_scan(az, "moves/", "moves0")}
        for key, st in wl.state.items():
            v = have.get(key)
            if st.acked is None:
                ok = v is None or v.get("deleted") or st.unknown
            else:
                ok = (v is not None and not v.get("deleted") and v["etag"] in st.allowed()) or st.unknown
            assert ok, (az, key, v, st)

    # The two moved replicas alone (az-c's is down) answer every acknowledged state.
    print(chaos.kill_node(mc.topo, mc.topo.azs[2].meta.id))
    try:
        wl.violations.clear()
        wl.final_check(client(mc.endpoint))
        assert not wl.violations, "\n".join(wl.violations[:20])
    finally:
        print(chaos.revive_node(mc.topo, mc.topo.azs[2].meta.id))
    mc.wait_healthy()

    # After one anti-entropy pass, each new holder alone has every acknowledged state.
    mc.scrub_now()
    want = mc.records("moves")
    for az in ("az-a", "az-b"):
        have = {k.partition("/")[2]: v for k, v in mc.replica_scan(az, "moves/", "moves0") if not v.get("deleted")}
        assert {k: v["etag"] for k, v in have.items()} == {k: v["etag"] for k, v in want.items()}, az
    listed = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket="moves")
              for o in p.get("Contents", [])]
    assert listed == sorted(want)

    # A restart keeps the map and the data where they moved.
    mc.restart()
    assert mc.partition_map().get(pid).replica_in("az-a") == extra_a.id
    assert pid in local_partitions(mc, extra_a) and pid not in local_partitions(mc, home_a)
    got = {o["Key"]: o["ETag"].strip('"') for p in s3.get_paginator("list_objects_v2").paginate(Bucket="moves")
           for o in p.get("Contents", [])}
    assert got == {k: v["etag"] for k, v in want.items()}


def test_move_cli_refuses_what_cannot_move(mc):
    pmap = mc.partition_map()
    pid = pmap.partitions[0].id
    holder = pmap.get(pid).replica_in("az-c")
    r = subprocess.run([sys.executable, "-m", "minis3", "partitions", "move", pid, "--to", holder,
                        "--topology", str(mc.topo_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "already holds" in r.stdout
    r = subprocess.run([sys.executable, "-m", "minis3", "partitions", "move", "p999", "--to", holder,
                        "--topology", str(mc.topo_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "p999" in r.stdout
