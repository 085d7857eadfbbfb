"""`make bench-scrub`: how fast the scrubber audits, rebuilds and brings an AZ's fragments home.

On a fresh local cluster (real processes), it measures:

1. a clean pass over N objects (no damage): the pass's own cost;
2. a pass with every node's audit at full speed: audit MB/s;
3. a wiped storage node: the pass that rebuilds all its fragments (fragments, MB, MB/s);
4. an AZ killed while M objects are written, then revived: the time from the
   scrubber seeing the AZ's nodes again to every object at full redundancy, at home.

Writes docs/scrub-benchmarks.md (and prints it).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..cluster import chaos, topology
from ..cluster.supervisor import Cluster
from .client import Payload, S3Client

MiB = 1 << 20


def _scrub_now(topo_path: Path, *args: str) -> dict:
    r = subprocess.run([sys.executable, "-m", "minis3", "scrub", "--now", "--json", "--topology",
                        str(topo_path), *args], capture_output=True, text=True, timeout=3600)
    return json.loads(r.stdout)


async def _fill(endpoint: str, bucket: str, n: int, size: int, prefix: str) -> None:
    async with S3Client(endpoint, "minis3admin", "minis3secret") as s3:
        await s3.create_bucket(bucket)
        payloads = [Payload.of(os.urandom(size)) for _ in range(4)]
        sem = asyncio.Semaphore(8)

        async def one(i: int) -> None:
            async with sem:
                r = await s3.put(bucket, f"{prefix}/{i:06d}", payloads[i % 4])
                if r.status != 200:
                    raise RuntimeError(f"PUT failed: {r.status} {r.error}")
        await asyncio.gather(*(one(i) for i in range(n)))


def run(objects: int, size: int, outage_objects: int, out: Path | None) -> str:
    root = Path(tempfile.mkdtemp(prefix="minis3-bench-scrub-"))
    base = topology.free_base_port()
    topo_path = root / "topology.toml"
    topo_path.write_text(topology.local_toml(base, root / "data", scrub={"interval_s": 3600}))
    topo = topology.load(topo_path)
    cluster = Cluster(topo)
    cluster.start(timeout=60)
    rows = []
    try:
        t = time.monotonic()
        asyncio.run(_fill(topo.frontend.url, "scrubbench", objects, size, "obj"))
        fill_s = time.monotonic() - t
        clean = _scrub_now(topo_path, "--no-audit")["pass"]
        rows.append(("clean pass, no audit", f"{objects} objects ({objects * size / MiB:.0f} MiB)",
                     f"{clean['seconds']:.2f} s", f"{clean['objects'] / clean['seconds']:.0f} objects/s"))
        audited = _scrub_now(topo_path)["pass"]
        mb = audited["audit_bytes"] / 1e6
        audit_s = audited["seconds"] - clean["seconds"]       # the rest of the pass is the same work
        rows.append(("pass with audit at full speed", f"{audited['audit_fragments']} fragment files, {mb:.0f} MB",
                     f"{audited['seconds']:.2f} s", f"~{mb / max(audit_s, 1e-3):.0f} MB/s audited (6 nodes)"))
        node = topo.nodes[2]
        for child in node.data_dir.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        healed = _scrub_now(topo_path, "--no-audit")["pass"]
        n_rebuilt = sum(healed["rebuilt"].values())
        rows.append((f"node {node.id} wiped: rebuild", f"{n_rebuilt} fragments, {healed['rebuilt_bytes'] / 1e6:.0f} MB",
                     f"{healed['seconds']:.2f} s", f"{healed['rebuilt_bytes'] / 1e6 / healed['seconds']:.0f} MB/s written"))
        chaos.kill_az(topo, "az-b")
        time.sleep(1.5)
        asyncio.run(_fill(topo.frontend.url, "outage", outage_objects, size, "away"))
        chaos.revive_az(topo, "az-b")
        deadline = time.monotonic() + 600
        rec = None
        while time.monotonic() < deadline:
            st = _scrub_now(topo_path, "--no-audit")
            rec = st.get("last_recovery")
            if rec and st["pass"]["not_full"] == 0:
                break
            time.sleep(1)
        moved = rec and rec["seconds"]
        rows.append(("az-b killed, objects written, az-b revived",
                     f"{outage_objects} objects ({outage_objects * size / MiB:.0f} MiB) on handoff nodes",
                     f"{moved:.2f} s" if moved else "not reached", "to full redundancy, every fragment home"))
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
    lines = ["# Scrubber measurements (`make bench-scrub`)", "",
             f"Fresh local cluster (EC 4+2, 6 nodes in 3 AZs), {objects} objects of {size / MiB:.0f} MiB written "
             f"in {fill_s:.1f} s; {os.cpu_count()} cores. Each row is one `minis3 scrub --now` pass "
             "(the last: passes until the scrubber reports the recovery).", "",
             "| what | data | time | rate |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    text = "\n".join(lines) + "\n"
    if out:
        out.write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m minis3.bench.scrub")
    p.add_argument("--objects", type=int, default=500)
    p.add_argument("--size-mib", type=float, default=1.0)
    p.add_argument("--outage-objects", type=int, default=200)
    p.add_argument("--markdown", type=Path)
    a = p.parse_args(argv)
    print(run(a.objects, int(a.size_mib * MiB), a.outage_objects, a.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
