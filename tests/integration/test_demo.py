"""`minis3 demo` (what `make demo` runs) against a real cluster, as a user runs it."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from .cluster import pick_base_port, started_cluster, write_topology
from .conftest import make_client


@pytest.fixture(scope="module")
def dc(tmp_path_factory):
    # The nodes' background audit is off, so that the flipped byte is found by
    # the demo's own scrub pass (its audit) and by nothing before it.
    yield from started_cluster(tmp_path_factory, "demo", scrub={"audit_mb_per_s": 0})


def demo(topo_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "minis3", "demo", "--topology", str(topo_path), *args],
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)


def test_the_demo_tours_the_cluster_and_leaves_the_user_s_data_alone(dc):
    s3 = make_client(dc.endpoint)
    s3.create_bucket(Bucket="users-own")
    s3.put_object(Bucket="users-own", Key="keep.txt", Body=b"not the demo's")

    r = demo(dc.topo_path)
    out = r.stdout
    assert r.returncode == 0, out + r.stderr
    flat = " ".join(out.split())                        # narration is wrapped

    # The placement tables: a column per AZ, fragments with their index, kind and file size.
    assert re.search(r"^ +az-a +az-b +az-c$", out, re.M)
    assert re.search(r"^ +a\d #\d (data|parity) [\d.]+ KiB +b\d #\d (data|parity) [\d.]+ KiB +c\d #\d", out, re.M)
    assert "Stored inline" in flat
    assert "part 1: 5.0 MiB" in out and "part 2: 2.0 MiB" in out
    # The AZ is killed; its nodes' fragments are unreachable; every read still returns the right bytes.
    assert "killed az-b" in out
    assert "b1 #" in out and "(node down)" in out
    m = re.search(r"(\d+) of the (\d+) fragments of the demo's erasure-coded objects are unreachable", flat)
    assert m and int(m.group(1)) == int(m.group(2)) // 3
    assert "[handoff; home b" in out                    # the object written during the outage
    oks = re.findall(r"^  ok +(\S+) ", out, re.M)
    assert sorted(set(oks)) == sorted(["hello.txt", "photo-3.5MiB.bin", "video-7MiB.bin",
                                       "during-outage-1.5MiB.bin"])
    assert len(oks) == 3 + 1 + 4 and "WRONG" not in out and "FAILED" not in out
    assert f"All {len(oks)} reads returned the right bytes" in flat
    # The scrubber's pass: the flipped byte found by the audit, the fragment rebuilt, all back home.
    assert "revived az-b" in out
    assert re.search(r"scrub pass \d+: done", out)
    assert "1 corrupt (quarantined)" in out
    assert "photo-3.5MiB.bin: fragment #0 rebuilt (it was corrupt)" in flat
    assert "redundancy  full" in out and "Full redundancy again" in flat
    assert "keeps it as evidence in quarantine" in flat
    # It cleaned up after itself, and only after itself.
    assert "deleted bucket minis3-demo" in out
    assert "minis3-demo" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert s3.get_object(Bucket="users-own", Key="keep.txt")["Body"].read() == b"not the demo's"
    dc.wait_healthy()                                   # az-b is back for good


def test_the_demo_refuses_an_az_that_does_not_exist(dc):
    r = demo(dc.topo_path, "--az", "az-z")
    assert r.returncode == 2 and "no AZ named 'az-z'" in r.stderr
    assert "Step 1" not in r.stdout


def test_the_demo_says_to_start_the_cluster_first(tmp_path):
    path = write_topology(tmp_path / "topology.toml", tmp_path / "data", pick_base_port())
    r = demo(path)
    assert r.returncode == 2
    assert "make run" in r.stderr and "Step 1" not in r.stdout
