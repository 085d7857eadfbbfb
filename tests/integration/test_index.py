"""The index's partitions split online, survive restarts and AZ loss, and throttle with SlowDown.

A cluster whose partitions split at 60 keys (checked three times a second) so
that a few hundred keys make several splits while boto3 clients PUT, GET,
DELETE and LIST (in pages of 7 keys, so pages cross partition boundaries);
every operation is checked against the log of acknowledged operations
(chaos_workload.py), and every LIST page must be in key order.
"""
from __future__ import annotations

import concurrent.futures as cf
import time
import urllib.parse
import urllib.request

import botocore.exceptions
import pytest

from minis3.cluster import chaos
from minis3.cluster.supervisor import wait_healthy
from minis3.rpc import sync

from .chaos_workload import client, run_workload
from .cluster import TestCluster, local_partitions, started_cluster

SPLIT_KEYS = 60


@pytest.fixture(scope="module")
def ic(tmp_path_factory):
    yield from started_cluster(tmp_path_factory, "index",
                               index={"split_keys": SPLIT_KEYS, "check_every_s": 0.3, "split_ops_per_s": 0})


def _get(topo, url: str, path: str) -> dict:
    return sync.call_json(topo.cluster_secret, "GET", url, path)


def maps(c, n: int = 3) -> list[dict]:
    """The partition map each of the first ``n`` metadata replicas holds."""
    return [_get(c.topo, m.url, "/index/map")["map"] for m in c.topo.metas[:n]]


def wait_until(cond, timeout: float = 30, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.1)


def test_partitions_split_under_concurrent_puts_deletes_and_lists(ic):
    s3 = client(ic.endpoint)
    s3.create_bucket(Bucket="split")
    before = max(m["version"] for m in maps(ic))
    t0 = int(time.time() * 1000)
    # (6 s: on 2 cores the workload's keys make the partitions split twice within ~2.5 s.)
    wl = run_workload(ic, "split", 6)
    assert not wl.violations, "\n".join(wl.violations[:20])
    after = maps(ic)
    assert {m["version"] for m in after} == {after[0]["version"]}, "every replica holds the newest map"
    splits = [e for e in after[0]["events"] if e["kind"] == "split" and e["at_ms"] >= t0]
    assert after[0]["version"] > before and len(splits) >= 2, after[0]["events"]
    # Every replica has cut its own copy exactly as the map says.
    ids = [p["id"] for p in after[0]["partitions"]]
    for m in ic.topo.metas:
        assert local_partitions(ic, m) == ids
    # A whole-bucket LIST in small pages crosses every boundary in order.
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket="split", PaginationConfig={"PageSize": 5}) for o in page.get("Contents", [])]
    assert keys == sorted(set(keys))
    assert set(keys) == {k for k, st in wl.state.items() if st.acked is not None and not st.unknown} | \
        {k for k, st in wl.state.items() if st.unknown and k in keys}
    # The CLI shows the map.
    from minis3.cluster.partitions import collect, render
    text = render(collect(ic.topo))
    assert f"partition map version {after[0]['version']}" in text and "keys >" in text


def test_restart_after_splits_restores_the_same_map_and_data(ic):
    s3 = client(ic.endpoint)
    s3.create_bucket(Bucket="restart")
    with cf.ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda i: s3.put_object(Bucket="restart", Key=f"d{i % 4}/k{i:04d}", Body=str(i).encode()),
                    range(3 * SPLIT_KEYS)))
    # Settled: every replica holds one map and the manager has stopped cutting
    # (no change over ~7 of its checks), so a split cannot land between the
    # snapshot below and the restart.
    seen = {"version": None, "since": time.monotonic()}

    def settled() -> bool:
        versions = {m["version"] for m in maps(ic)}
        if len(versions) != 1 or versions != {seen["version"]}:
            seen.update(version=versions.pop() if len(versions) == 1 else None, since=time.monotonic())
            return False
        return time.monotonic() - seen["since"] > 2.0
    wait_until(settled, timeout=60, what="the partition map settles")
    before = maps(ic)[0]
    assert len(before["partitions"]) > 4
    ic.restart()
    for m in maps(ic):
        assert m["partitions"] == before["partitions"] and m["version"] >= before["version"]
    for i in range(3 * SPLIT_KEYS):
        assert s3.get_object(Bucket="restart", Key=f"d{i % 4}/k{i:04d}")["Body"].read() == str(i).encode()


def test_an_az_killed_during_splits_loses_nothing_and_catches_up_on_its_return(ic):
    s3 = client(ic.endpoint)
    s3.create_bucket(Bucket="azsplit")
    version_at_kill = {}

    def kill():
        time.sleep(1.0)
        version_at_kill["v"] = max(m["version"] for m in maps(ic, 2))
        print(chaos.kill_az(ic.topo, "az-c"))

    # (6 s: the splits after the kill at 1 s land within ~2.5 s of the start on 2 cores.)
    wl = run_workload(ic, "azsplit", 6, during=kill)
    live = maps(ic, 2)
    assert live[0]["version"] > version_at_kill["v"], "splits happened while az-c was down"
    print(chaos.revive_az(ic.topo, "az-c"))
    wait_healthy(ic.topo, 60)
    newest = max(m["version"] for m in maps(ic))
    wait_until(lambda: maps(ic)[2]["version"] == newest, what="az-c learns the map from its peers")
    ids = [p["id"] for p in maps(ic)[2]["partitions"]]
    wait_until(lambda: local_partitions(ic, ic.topo.metas[2]) == ids, what="az-c cuts its own partitions")
    assert not wl.violations, "\n".join(wl.violations[:20])
    # az-c alone answers for what it missed once the scrubber's anti-entropy has run.
    ic.scrub_now("--no-audit")
    s3.list_objects_v2(Bucket="azsplit")
    for key, st in wl.state.items():
        if st.unknown:
            continue
        got = _get(ic.topo, ic.topo.metas[2].url, "/v/object?" + urllib.parse.urlencode(
            {"bucket": "azsplit", "key": key}))["object"]
        if st.acked is None:
            assert got is None or got.get("deleted"), key
        else:
            assert got is not None and not got.get("deleted"), key


def test_a_partition_over_its_budget_answers_slowdown_and_retries_succeed(tmp_path):
    c = TestCluster(tmp_path, index={"write_ops_per_s": 20, "split_ops_per_s": 0}).start()
    try:
        s3 = client(c.endpoint)
        s3.create_bucket(Bucket="hot")
        eager = client(c.endpoint, retries={"max_attempts": 1})
        refused = 0
        with cf.ThreadPoolExecutor(16) as ex:
            def put(i):
                try:
                    eager.put_object(Bucket="hot", Key=f"k{i}", Body=b"x")
                    return None
                except botocore.exceptions.ClientError as exc:
                    return (exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"])
            errors = [e for e in ex.map(put, range(200)) if e]
        refused = len(errors)
        assert refused > 0 and set(errors) == {("SlowDown", 503)}, errors[:5]
        # boto3's own retries (with back-off) get every write in.
        patient = client(c.endpoint, retries={"mode": "standard", "max_attempts": 20})
        with cf.ThreadPoolExecutor(8) as ex:
            list(ex.map(lambda i: patient.put_object(Bucket="hot", Key=f"p{i}", Body=b"y"), range(100)))
        listed = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="hot", Prefix="p")
                  for o in page.get("Contents", [])]
        assert len(listed) == 100
    finally:
        c.discard()


def test_bulk_load_commits_what_a_put_of_the_same_bytes_would(ic):
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "minis3", "bulk-load", "bulk", "--keys", "2500", "--size", "100",
                        "--batch", "300", "--topology", str(ic.topo_path)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and "committed 2,500 objects" in r.stdout, r.stdout + r.stderr
    # Every replica has every key once the loader is done: it waits for the
    # third replica's writes before it closes its connections.
    for az in [a.name for a in ic.topo.azs]:
        assert len(ic.replica_scan(az, "bulk/k/", "bulk/k0")) == 2500, az
    s3 = client(ic.endpoint)
    s3.put_object(Bucket="bulk", Key="by-put", Body=b"x" * 100, ChecksumAlgorithm="CRC64NVME")
    put = s3.head_object(Bucket="bulk", Key="by-put", ChecksumMode="ENABLED")
    loaded = s3.head_object(Bucket="bulk", Key="k/0001234", ChecksumMode="ENABLED")
    for field in ("ETag", "ContentLength", "ChecksumCRC64NVME"):
        assert loaded[field] == put[field], field
    assert s3.get_object(Bucket="bulk", Key="k/0002499")["Body"].read() == b"x" * 100
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="bulk", Prefix="k/")
            for o in page.get("Contents", [])]
    assert keys == [f"k/{i:07d}" for i in range(2500)]
    # The bulk loader refuses what could not be inline.
    big = subprocess.run([sys.executable, "-m", "minis3", "bulk-load", "bulk", "--keys", "1", "--size", "99999",
                          "--topology", str(ic.topo_path)], capture_output=True, text=True, timeout=60)
    assert big.returncode == 2 and "inline threshold" in big.stderr
