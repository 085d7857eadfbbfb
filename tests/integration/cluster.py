"""Start a real minis3 cluster (real processes on loopback) for tests."""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from minis3.cluster import topology
from minis3.cluster.supervisor import Cluster, run_dir, wait_healthy

ACCESS_KEY = "testkey"
SECRET_KEY = "testsecret"
SECOND_ACCESS_KEY = "otherkey"
SECOND_SECRET_KEY = "othersecret"


def pick_base_port() -> int:
    return topology.free_base_port()


def write_topology(path: Path, data_dir: Path, base_port: int, frontend_per_az: bool = False,
                   **erasure) -> Path:
    path.write_text(topology.local_toml(base_port, data_dir, cluster_secret="test-cluster-secret",
                                        credentials=[(ACCESS_KEY, SECRET_KEY),
                                                     (SECOND_ACCESS_KEY, SECOND_SECRET_KEY)],
                                        erasure=erasure, frontend_per_az=frontend_per_az))
    return path


class TestCluster:
    __test__ = False  # a helper, not a test class

    def __init__(self, root: Path, frontend_per_az: bool = False, **erasure):
        self.root = root
        self.base = pick_base_port()
        self.topo_path = write_topology(root / "topology.toml", root / "data", self.base,
                                        frontend_per_az=frontend_per_az, **erasure)
        self.topo = topology.load(self.topo_path)
        self.cluster = Cluster(self.topo)
        self.endpoint = self.topo.frontend.url

    def start(self):
        self.cluster.start(timeout=60)
        return self

    def stop(self):
        self.cluster.stop()

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

    def wait_healthy(self):
        wait_healthy(self.topo, 30)
