"""Start a real minis3 cluster (real processes on loopback) for tests."""
from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path
from urllib.parse import urlencode

from minis3.rpc import sync

from minis3 import config
from minis3.cluster.supervisor import Cluster, run_dir, wait_healthy

ACCESS_KEY = "testkey"
SECRET_KEY = "testsecret"
SECOND_ACCESS_KEY = "otherkey"
SECOND_SECRET_KEY = "othersecret"
#: A user of the first account (ACCESS_KEY's): it signs as arn:aws:iam::<that account>:user/alice.
USER_ACCESS_KEY = "alicekey"
USER_SECRET_KEY = "alicesecret"


def discard_dir(root: Path) -> None:
    if os.environ.get("MINIS3_KEEP_TEST_DATA") != "1":
        shutil.rmtree(root, ignore_errors=True)


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """A process's resident memory (``VmHWM``: its peak), KiB, from /proc."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field}")


def pick_base_port() -> int:
    return config.free_base_port()


def write_topology(path: Path, data_dir: Path, base_port: int, frontend_per_az: bool = False,
                   scrub: dict | None = None, index: dict | None = None, extra_metas: int = 0,
                   console: bool = False, storage_class: dict | None = None, lifecycle: dict | None = None,
                   frontend: dict | None = None, **erasure) -> Path:
    path.write_text(config.local_toml(base_port, data_dir, cluster_secret="test-cluster-secret",
                                        credentials=[(ACCESS_KEY, SECRET_KEY),
                                                     (SECOND_ACCESS_KEY, SECOND_SECRET_KEY),
                                                     (USER_ACCESS_KEY, USER_SECRET_KEY, ACCESS_KEY, "alice")],
                                        erasure=erasure, frontend_per_az=frontend_per_az, scrub=scrub,
                                        index=index, extra_metas=extra_metas, console=console,
                                        storage_class=storage_class, lifecycle=lifecycle, frontend=frontend))
    return path


class TestCluster:
    __test__ = False  # a helper, not a test class

    def __init__(self, root: Path, frontend_per_az: bool = False, scrub: dict | None = None,
                 index: dict | None = None, extra_metas: int = 0, console: bool = False,
                 storage_class: dict | None = None, lifecycle: dict | None = None, frontend: dict | None = None,
                 **erasure):
        self.root = root
        self.base = pick_base_port()
        self.topo_path = write_topology(root / "topology.toml", root / "data", self.base,
                                        frontend_per_az=frontend_per_az, scrub=scrub, index=index,
                                        extra_metas=extra_metas, console=console,
                                        storage_class=storage_class, lifecycle=lifecycle, frontend=frontend,
                                        **erasure)
        self.topo = config.load(self.topo_path)
        self.cluster = Cluster(self.topo)
        self.endpoint = self.topo.frontend.url

    def start(self):
        self.cluster.start(timeout=60)
        return self

    def stop(self):
        self.cluster.stop()

    def discard(self):
        """Stop and remove the cluster's files: a fixture's last step, so that
        the suite's disk use is the largest test's, not the sum of them all
        (CI's disk may have only a few GiB free). MINIS3_KEEP_TEST_DATA=1
        keeps them to look at."""
        self.stop()
        discard_dir(self.root)

    def az_state(self, az: str) -> dict:
        deadline = time.monotonic() + 10
        path = run_dir(self.topo) / f"{az}.json"
        while not path.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(path)
            time.sleep(0.05)
        return json.loads(path.read_text())

    def node_pid(self, node_id: str) -> int:
        az = self.topo.node(node_id).az
        return self.az_state(az)["children"][f"node-{node_id}"]

    def kill_node(self, node_id: str) -> None:
        os.kill(self.node_pid(node_id), signal.SIGKILL)

    def restart(self):
        self.stop()
        self.cluster = Cluster(self.topo)
        self.start()

    def signed_get(self, url: str, path: str, timeout: float = 5) -> dict:
        return sync.call_json(self.topo.cluster_secret, "GET", url, path, timeout=timeout)

    def partition_map(self):
        """The newest partition map any metadata process has."""
        from minis3.meta.pmap import PartitionMap, newest
        maps = []
        for m in self.topo.all_metas:
            try:
                maps.append(PartitionMap.from_doc(self.signed_get(m.url, "/index/map")["map"]))
            except OSError:
                continue
        return newest(maps)

    def replica_scan(self, az: str, start: str, end: str, peer: bool = False) -> list[tuple[str, dict]]:
        """One AZ's replica of [start, end) of the objects table, raw (tombstones
        too), each range read at the process the partition map names for it."""
        pmap, out = self.partition_map(), []
        for e in pmap.covering(start, end):
            lo, hi = max(start, e.lo), end if e.hi is None else min(end, e.hi)
            url = self.topo.meta(e.replica_in(az)).url
            pos, inclusive = lo, 1
            while True:
                q = {"table": "objects", "start": pos, "end": hi, "limit": 5000, "inclusive": inclusive}
                if peer:
                    q["peer"] = 1
                body = self.signed_get(url, "/v/scan?" + urlencode(q))
                out += [(k, v) for k, v in body["items"]]
                if body["exhausted"] or not body["items"]:
                    break
                pos, inclusive = body["items"][-1][0], 0
        return out

    def records(self, bucket: str) -> dict[str, dict]:
        """key → newest object record, from a quorum of metadata replicas' raw scans."""
        from minis3.meta.partition import version
        out: dict[str, dict] = {}
        answered = 0
        for az in self.topo.azs:
            try:
                items = self.replica_scan(az.name, bucket + "/", bucket + "0")
            except OSError:
                continue
            answered += 1
            for k, v in items:
                key = k.partition("/")[2]
                if version(v) > version(out.get(key)):
                    out[key] = v
        assert answered >= 2, "no metadata quorum"
        return {k: v for k, v in out.items() if not v.get("deleted")}

    def fragment_files(self) -> dict[tuple[str, int], Path]:
        """(object id, index) → its fragment file, over every node's data directory."""
        out = {}
        for n in self.topo.nodes:
            for p in (n.data_dir / "fragments").glob("*/*"):
                oid, _, idx = p.name.partition(".")
                out[(oid, int(idx))] = p
        return out

    def fragment_locations(self) -> set[tuple[str, str, int]]:
        """(node id, object id, index) of every fragment file on every node."""
        out = set()
        for n in self.topo.nodes:
            for p in (n.data_dir / "fragments").glob("*/*"):
                oid, _, idx = p.name.partition(".")
                out.add((n.id, oid, int(idx)))
        return out

    def scrub_now(self, *args: str) -> dict:
        """`minis3 scrub --now --json`: run a pass through the CLI, return its report."""
        import subprocess
        import sys
        r = subprocess.run([sys.executable, "-m", "minis3", "scrub", "--now", "--json", "--topology",
                            str(self.topo_path), *args], capture_output=True, text=True, timeout=300)
        assert r.returncode in (0, 1), r.stderr
        return json.loads(r.stdout)

    def wait_healthy(self):
        wait_healthy(self.topo, 30)

    def frontend_samples(self, name: str) -> list:
        """The samples named ``name`` on the frontend's ``/_minis3/metrics`` (prometheus_client's parser)."""
        import urllib.request
        from prometheus_client.parser import text_string_to_metric_families
        with urllib.request.urlopen(f"{self.endpoint}/_minis3/metrics?name[]={name}", timeout=5) as r:
            text = r.read().decode()
        return [s for fam in text_string_to_metric_families(text) for s in fam.samples if s.name == name]

    def wait_seen_down(self, *node_ids: str, timeout: float = 10) -> None:
        """Until the frontend's health prober (a round every 0.5 s) believes each of these
        storage nodes down, so that new fragments go elsewhere and reads ask them last: what a
        fixed second's sleep after a kill waited for."""
        deadline = time.monotonic() + timeout
        while True:
            up = {s.labels.get("node"): s.value for s in self.frontend_samples("minis3_storage_node_up")}
            if all(up.get(n) == 0 for n in node_ids):
                return
            assert time.monotonic() < deadline, f"the frontend still sees some of {node_ids} up: {up}"
            time.sleep(0.05)


# ----------------------------------------------------------------------------- reading a cluster's state
# Straight from its processes (signed internal requests), not through S3: what
# a test checks the S3 answers against.

#: A scrubber that runs only when asked (or when a node returns), with no node audit.
SCRUB_ON_DEMAND = {"interval_s": 3600, "audit_mb_per_s": 0}


def started_cluster(tmp_path_factory, name: str, **kw):
    """A cluster of its own (``kw`` as TestCluster takes them), started, and torn down
    after: a fixture's body (``yield from started_cluster(tmp_path_factory, "name")``)."""
    c = TestCluster(tmp_path_factory.mktemp(name), **kw).start()
    yield c
    c.discard()


def on_demand_cluster(tmp_path_factory, name: str, **kw):
    """A started cluster whose scrubber runs only when asked (see :func:`started_cluster`)."""
    yield from started_cluster(tmp_path_factory, name, scrub=SCRUB_ON_DEMAND, **kw)


def meta_record(c: TestCluster, bucket: str, key: str) -> dict:
    """An object's newest metadata record, read straight from the replicas."""
    path = "/v/object?" + urlencode({"bucket": bucket, "key": key})
    found = []
    for m in c.topo.metas:
        try:
            found.append(sync.call_json(c.topo.cluster_secret, "GET", m.url, path)["object"])
        except OSError:
            pass
    return max((f for f in found if f), key=lambda f: (f["ts"], f.get("vid", "")))


def fragment_path(c: TestCluster, rec: dict, index: int) -> Path:
    """Where fragment ``index`` of an erasure-coded record lives on its node's disk."""
    node = c.topo.node(rec["ec"]["nodes"][index])
    oid = rec["ec"]["id"]
    return node.data_dir / "fragments" / oid[:2] / f"{oid}.{index}"


def local_partitions(c: TestCluster, meta) -> list[str]:
    """The ids of the partitions one metadata process holds, in key order."""
    return [p["id"] for p in c.signed_get(meta.url, "/index/stats")["partitions"]]
