"""`minis3 up` as a user runs it: banner, `minis3 status`, Ctrl-C stops every process."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from minis3 import config
from minis3.cluster.supervisor import run_dir, wait_healthy

from .cluster import pick_base_port, write_topology


def test_up_status_and_ctrl_c(tmp_path):
    topo_path = write_topology(tmp_path / "t.toml", tmp_path / "data", pick_base_port())
    topo = config.load(topo_path)
    minis3 = str(Path(sys.executable).parent / "minis3")
    up = subprocess.Popen([minis3, "up", "--topology", str(topo_path)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    try:
        wait_healthy(topo, 60)
        st = subprocess.run([minis3, "status", "--topology", str(topo_path), "--json"], capture_output=True,
                            text=True, timeout=30)
        assert st.returncode == 0, st.stdout + st.stderr
        rows = json.loads(st.stdout)
        assert len(rows) == 1 + 3 + 6 + 1 and all(r["up"] for r in rows)     # + the scrubber
        assert any(r["process"] == "scrubber" for r in rows)
        assert {r["az"] for r in rows if r["process"].startswith("node-")} == {"az-a", "az-b", "az-c"}
        pids = [r["pid"] for r in rows if r["pid"]]
        # Each AZ is one process group, led by its supervisor.
        for az in topo.azs:
            state = json.loads((run_dir(topo) / f"{az.name}.json").read_text())
            assert all(os.getpgid(p) == state["pgid"] for p in state["children"].values())
        up.send_signal(signal.SIGINT)
        up.send_signal(signal.SIGINT)      # Ctrl-C twice: the second lands in the first's handler, or after it
        out, _ = up.communicate(timeout=30)
        assert up.returncode == 0
        assert "endpoint" in out and "testkey" in out and "aws --endpoint-url" in out and "stopped." in out
        deadline = time.monotonic() + 10
        alive = pids
        while alive and time.monotonic() < deadline:
            alive = [p for p in pids if os.path.exists(f"/proc/{p}") and
                     open(f"/proc/{p}/stat").read().split()[2] != "Z"]
            time.sleep(0.1)
        assert not alive, f"processes left running: {alive}"
        st = subprocess.run([minis3, "status", "--topology", str(topo_path)], capture_output=True, text=True)
        assert st.returncode == 1 and "DOWN" in st.stdout
    finally:
        if up.poll() is None:
            up.kill()
