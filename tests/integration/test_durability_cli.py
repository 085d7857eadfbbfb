"""`minis3 durability` against a running cluster: it reads the repair inputs from the
scrubber and the nodes (the scan interval, the audit rate, the measured rebuild rate, the
fragment bytes per node), says where each came from, and computes finite, positive nines."""
import json
import math
import os
import subprocess
import sys
import time
import urllib.request

from .cluster import fragment_path, meta_record

KiB = 1 << 10


def minis3(cluster, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "minis3", *args, "--topology", str(cluster.topo_path)],
                          capture_output=True, text=True, timeout=120)


def test_durability_reads_the_repair_inputs_from_the_cluster(cluster, s3, bucket):
    # Give the scrubber something to rebuild: fragments of a few objects gone from one node.
    keys = [f"d/{i}" for i in range(12)]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=os.urandom(512 * KiB))
    node = cluster.topo.nodes[3].id
    removed = 0
    for k in keys:
        rec = meta_record(cluster, bucket, k)
        for i, n in enumerate(rec["ec"]["nodes"]):
            if n == node:
                fragment_path(cluster, rec, i).unlink()
                removed += 1
    assert removed == len(keys)
    time.sleep(1.2)           # a pass leaves versions of the last second to the next one (scrub/walk.py FRESH_MS)
    scrub = minis3(cluster, "scrub", "--now", "--no-audit", "--json")
    assert json.loads(scrub.stdout)["pass"]["not_full"] == 0, scrub.stdout + scrub.stderr

    got = minis3(cluster, "durability", "--json", "--objects", "1e10")
    assert got.returncode == 0, got.stderr
    out = json.loads(got.stdout)
    assert out["cluster"] is True
    rep = out["repair_inputs"]
    for name in ("scan_interval_s", "down_after_s", "audit_bytes_per_s", "rebuild_bytes_per_s", "node_bytes",
                 "last_pass_s"):
        assert rep[name]["measured"], (name, rep[name])
        assert rep[name]["source"]
    assert rep["scan_interval_s"]["value"] == cluster.topo.scrub.interval_s
    assert rep["audit_bytes_per_s"]["value"] == cluster.topo.scrub.audit_mb_per_s * 1e6
    assert "rebuilt in" in rep["rebuild_bytes_per_s"]["source"]
    assert 1e5 < rep["rebuild_bytes_per_s"]["value"] < 1e11          # 0.1 MB/s .. 100 GB/s
    assert 512 * KiB <= rep["node_bytes"]["value"] < 1e11
    assert 0 < rep["last_pass_s"]["value"] < 600
    # MTTR = detection (the scrubber's down timeout for a node that stays down) + rebuild.
    assert rep["down_after_s"]["value"] == rep["detection_s"] == cluster.topo.scrub.down_after_s
    assert rep["mttr_s"] == out["mttr_s"] == rep["detection_s"] + rep["rebuild_s"]
    res = out["result"]
    assert res["scheme"] == "4+2 over 3 AZs" and res["placement"] == [2, 2, 2]
    assert math.isfinite(res["nines"]) and res["nines"] > 0
    assert 0 < res["p_loss_per_year"] < 1 and res["objects_lost_per_year"] == res["p_loss_per_year"] * 1e10
    assert res["dominant"] in res["shares"]
    assert [c["scheme"] for c in out["comparison"]][-1] == "S3's claim"

    # The scrubber's metric behind the rebuild rate.
    with urllib.request.urlopen(cluster.topo.scrub.url + "/metrics", timeout=5) as r:
        metrics = r.read().decode()
    seconds = [float(line.split()[-1]) for line in metrics.splitlines()
               if line.startswith("minis3_scrub_rebuild_seconds_total")]
    assert seconds and seconds[0] > 0

    text = minis3(cluster, "durability")
    assert text.returncode == 0, text.stderr
    assert "measured on the running cluster" in text.stdout
    assert "rebuilt in" in text.stdout and "nines" in text.stdout and "S3's claim" in text.stdout


def test_durability_says_when_no_cluster_answers(tmp_path):
    from minis3 import config
    path = tmp_path / "nobody.toml"
    path.write_text(config.local_toml(config.free_base_port(), tmp_path / "data"))
    got = subprocess.run([sys.executable, "-m", "minis3", "durability", "--topology", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert got.returncode == 0, got.stderr
    assert "NO CLUSTER ANSWERED" in got.stdout and "default" in got.stdout
