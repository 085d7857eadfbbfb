"""`make bench-scrub`: how fast the scrubber audits, rebuilds and brings an AZ's fragments home.

On a fresh local cluster (real processes), it measures:

1. a clean pass over N objects (no damage): the pass's own cost;
2. a pass with every node's audit at full speed: audit MB/s;
3. a wiped storage node: the pass that rebuilds all its fragments with no rate
   limit (fragments, MB written to the rebuilt node, MB read from the others,
   MB/s), the median of three;
4. foreground p99 latency (4 KiB and 64 KiB GET + PUT, 2 clients) with the
   cluster idle, and while a pass rebuilds a wiped node at the default rate
   limit (``scrub.rebuild_mb_per_s``), two windows of each in turn, pooled:
   the ratio, and the rebuild rate reached;
5. a node killed and kept down: the time until every object is at full
   redundancy on the other nodes (detection: ``scrub.down_after_s``, + rebuild,
   with no rate limit: the lost node's fragments are rebuilt on the five
   others at once, each rebuilding its share, the case a lost disk is in);
6. an AZ killed while M objects are written, then revived: the time from the
   scrubber seeing the AZ's nodes again to every object at full redundancy, at home;
7. with the cluster stopped, a bare rebuild of the same objects
   (bench/bare_rebuild.py): the yardstick for 3; and the same in the three
   other designs it measures (sources streamed rather than over HTTP, an
   extent file a batch rather than a file a fragment).

MB/s counts fragment bytes written (to the rebuilt node, or to the nodes that take
a lost node's fragments), over the time with any repair running; bytes read (k
fragments per one rebuilt) are shown beside it.

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

from .. import config
from ..cluster import chaos
from ..cluster.supervisor import Cluster
from . import bare_rebuild
from .client import Payload, S3Client
from .stats import percentile

MiB = 1 << 20
LIMITED_ROUNDS = 2         # rate-limited rebuilds (and idle windows) the foreground p99 pools
DOWN_AFTER_S = 20.0        # the bench's down timeout: longer than its AZ outage, short enough to wait for


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


def _wipe(node) -> None:
    for child in node.data_dir.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()


async def _foreground(endpoint: str, stop, clients: int = 2) -> list[float]:
    """Small GETs and PUTs (4 KiB and 64 KiB, in turn) from ``clients`` clients
    until ``stop()`` is true; their latencies, seconds."""
    lat: list[float] = []
    async with S3Client(endpoint, "minis3admin", "minis3secret") as s3:
        await s3.create_bucket("foreground")
        bodies = [Payload.of(os.urandom(4096)), Payload.of(os.urandom(65536))]
        for j, b in enumerate(bodies):
            await s3.put("foreground", f"k{j}", b)

        async def client(c: int) -> None:
            i = 0
            while not stop():
                j = i % 2
                t = time.perf_counter()
                r = await (s3.put("foreground", f"c{c}/{i % 50}", bodies[j]) if i % 4 < 2
                           else s3.get("foreground", f"k{j}"))
                if r.status == 200:
                    lat.append(time.perf_counter() - t)
                i += 1
        await asyncio.gather(*(client(c) for c in range(clients)))
    return lat


def _foreground_for(endpoint: str, seconds: float) -> list[float]:
    end = time.monotonic() + seconds
    return asyncio.run(_foreground(endpoint, lambda: time.monotonic() > end))


def _foreground_during(endpoint: str, proc: subprocess.Popen) -> list[float]:
    return asyncio.run(_foreground(endpoint, lambda: proc.poll() is not None))


def _status(topo) -> dict:
    from ..rpc.sync import signed_get
    return signed_get(topo.cluster_secret, topo.scrub.url, "/status", timeout=5) or {}


def run(objects: int, size: int, outage_objects: int, out: Path | None, bare: bool = True,
        rebuild_samples: int = 3) -> str:
    root = Path(tempfile.mkdtemp(prefix="minis3-bench-scrub-"))
    base = config.free_base_port()
    topo_path = root / "topology.toml"
    # No rate limit by default, so the pass a lost node's detection starts
    # rebuilds at full speed; the limited row asks for the default rate itself.
    topo_path.write_text(config.local_toml(base, root / "data", scrub={"interval_s": 3600,
                                                                         "down_after_s": DOWN_AFTER_S,
                                                                         "rebuild_mb_per_s": 0}))
    topo = config.load(topo_path)
    cluster = Cluster(topo)
    cluster.start(timeout=60)
    rows: list[tuple[str, str, str, str]] = []
    notes: list[str] = []
    try:
        try:
            t = time.monotonic()
            asyncio.run(_fill(topo.frontend.url, "scrubbench", objects, size, "obj"))
            fill_s = time.monotonic() - t
            rows += _passes(topo_path, objects, size)
            wiped, wiped_mb_s = _wiped_node(topo, topo_path, rebuild_samples)
            rows += wiped
            rows += _kept_down(topo, topo_path, notes)
            rows += _az_outage(topo, topo_path, outage_objects, size)
        finally:
            cluster.stop()
        if bare:
            rows += _bare(root / "bare", objects, size, topo, wiped_mb_s, notes)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    text = _report(rows, notes, objects, size, fill_s)
    if out:
        out.write_text(text)
    return text


def _passes(topo_path: Path, objects: int, size: int) -> list[tuple]:
    """A pass over a healthy cluster, without and with the audit."""
    clean = _scrub_now(topo_path, "--no-audit")["pass"]
    audited = _scrub_now(topo_path)["pass"]
    mb = audited["audit_bytes"] / 1e6
    audit_s = audited["seconds"] - clean["seconds"]       # the rest of the pass is the same work
    return [("clean pass, no audit", f"{objects} objects ({objects * size / MiB:.0f} MiB)",
             f"{clean['seconds']:.2f} s", f"{clean['objects'] / clean['seconds']:.0f} objects/s"),
            ("pass with audit at full speed", f"{audited['audit_fragments']} fragment files, {mb:.0f} MB",
             f"{audited['seconds']:.2f} s", f"~{mb / max(audit_s, 1e-3):.0f} MB/s audited (6 nodes)")]


def _wiped_node(topo, topo_path: Path, samples: int = 3) -> tuple[list[tuple], float]:
    """A node's files wiped and rebuilt with no limit, ``samples`` times (the
    median pass reported: one rebuild on this VM reads anywhere in ±15%),
    then at the default limit (:func:`_limited`). The rows, and the median
    MB/s written with no limit."""
    node = topo.nodes[2]
    passes = []
    for _ in range(samples):
        _wipe(node)
        passes.append(_scrub_now(topo_path, "--no-audit", "--rebuild-rate", "0")["pass"])
    rates = [_rebuild_mb_s(p) for p in passes]
    healed = sorted(passes, key=_rebuild_mb_s)[len(passes) // 2]
    n_rebuilt = sum(healed["rebuilt"].values())
    written, read = healed["rebuilt_bytes"] / 1e6, healed["rebuild_read_bytes"] / 1e6
    each = f"median of {samples}: " + ", ".join(f"{r:.0f}" for r in rates) + " MB/s; " if samples > 1 else ""
    rows = [(f"node {node.id} wiped: rebuild, no rate limit",
             f"{n_rebuilt} fragments: {written:.0f} MB written to {node.id}, {read:.0f} MB read",
             f"{healed['seconds']:.2f} s pass ({healed['rebuild_seconds']:.2f} s repairing)",
             f"**{written / healed['rebuild_seconds']:.0f} MB/s written** "
             f"({each}{written / healed['seconds']:.0f} over the pass; {read / healed['rebuild_seconds']:.0f} read)")]
    return rows + _limited(topo, topo_path, node), _rebuild_mb_s(healed)


def _rebuild_mb_s(p: dict) -> float:
    """A pass's MB written a second of repairing."""
    return p["rebuilt_bytes"] / 1e6 / max(p["rebuild_seconds"], 1e-3)


def _limited(topo, topo_path: Path, node) -> list[tuple]:
    """``node`` wiped and rebuilt at the default rate limit while foreground
    requests run, their p99 against idle. Idle and busy windows are taken in
    turn, ``LIMITED_ROUNDS`` of each, and pooled: a p99 of a few thousand
    requests moves with the VM's speed from one minute to the next, which
    taking them in turn spreads over both sides alike."""
    limit = config.ScrubSpec().rebuild_mb_per_s           # the default a cluster runs with
    idle: list[float] = []
    busy: list[float] = []
    limited = []
    for _ in range(LIMITED_ROUNDS):
        idle += _foreground_for(topo.frontend.url, 6.0)
        _wipe(node)
        proc = subprocess.Popen([sys.executable, "-m", "minis3", "scrub", "--now", "--json", "--no-audit",
                                 "--rebuild-rate", f"{limit:g}", "--topology", str(topo_path)],
                                stdout=subprocess.PIPE, text=True)
        busy += _foreground_during(topo.frontend.url, proc)
        limited.append(json.loads(proc.communicate()[0])["pass"])
    idle.sort()
    busy.sort()
    p99_idle, p99_busy = percentile(idle, 99) * 1000, percentile(busy, 99) * 1000
    written = sum(p["rebuilt_bytes"] for p in limited) / 1e6
    rate = written / max(sum(p["rebuild_seconds"] for p in limited), 1e-3)
    return [(f"node {node.id} wiped again, {LIMITED_ROUNDS} times: rebuild at the default limit ({limit:g} MB/s)",
             f"{written:.0f} MB written, {sum(p['rebuild_read_bytes'] for p in limited) / 1e6:.0f} MB read",
             " and ".join(f"{p['seconds']:.2f}" for p in limited) + " s passes", f"{rate:.0f} MB/s written"),
            ("foreground p99 (4 KiB + 64 KiB GET/PUT, 2 clients): idle → during those rebuilds "
             f"({LIMITED_ROUNDS} windows of each, in turn)",
             f"{len(idle)} → {len(busy)} requests (p50 {percentile(idle, 50) * 1000:.1f} → "
             f"{percentile(busy, 50) * 1000:.1f} ms)",
             f"{p99_idle:.1f} → {p99_busy:.1f} ms", f"**{p99_busy / p99_idle:.2f}× idle** (goal ≤ 2×)")]


def _kept_down(topo, topo_path: Path, notes: list[str]) -> list[tuple]:
    """A node killed and kept down: detected after down_after_s, its fragments rebuilt
    elsewhere; then revived, and its fragments moved home (a note)."""
    victim = topo.nodes[4]
    before = _status(topo).get("last_pass", {}).get("id", 0)
    t = time.monotonic()
    chaos.kill_node(topo, victim.id)
    gone = None
    while time.monotonic() < t + DOWN_AFTER_S + 600:
        last = _status(topo).get("last_pass") or {}
        if last.get("id", 0) > before and victim.id in last.get("nodes_gone", []) and last["phase"] == "done":
            gone = last
            break
        time.sleep(0.25)
    mttr = time.monotonic() - t
    if gone:
        spread = gone["rebuilt_bytes"] / 1e6 / max(gone["rebuild_seconds"], 1e-3)
        row = (f"node {victim.id} killed and kept down (down_after_s = {DOWN_AFTER_S:g}); "
               "rebuild, no rate limit, on the 5 other nodes",
               f"{sum(gone['rebuilt'].values())} fragments, {gone['rebuilt_bytes'] / 1e6:.0f} MB "
               f"rebuilt on the other nodes; {gone['not_full']} objects not full",
               f"{mttr:.1f} s to full redundancy",
               f"detection {DOWN_AFTER_S:g} s (+ ≤ 1 s probe) + a {gone['seconds']:.1f} s pass: "
               f"**{spread:.0f} MB/s written**")
    else:
        row = (f"node {victim.id} killed and kept down", "", "not reached", "")
    chaos.revive_node(topo, victim.id)
    up_by = time.monotonic() + 60
    while time.monotonic() < up_by and not (_status(topo).get("nodes_up") or {}).get(victim.id):
        time.sleep(0.25)
    back = _scrub_now(topo_path, "--no-audit", "--rebuild-rate", "0")
    rec = back.get("last_recovery") or {}
    notes.append(f"When {victim.id} came back, its fragments went home to it (the pass its return started): "
                 + (f"full redundancy, every fragment home, {rec['seconds']:.2f} s after it answered again"
                    if victim.id in rec.get("nodes", []) else "no recovery reported")
                 + f"; {back['pass']['not_full']} objects not full after the next pass.")
    return [row]


def _az_outage(topo, topo_path: Path, outage_objects: int, size: int) -> list[tuple]:
    """Objects written while az-b is down land on handoff nodes; after it is back, the
    time until every fragment is home."""
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
    return [("az-b killed, objects written, az-b revived",
             f"{outage_objects} objects ({outage_objects * size / MiB:.0f} MiB) on handoff nodes",
             f"{moved:.2f} s" if moved else "not reached", "to full redundancy, every fragment home")]


def _bare(root: Path, objects: int, size: int, topo, wiped_mb_s: float, notes: list[str]) -> list[tuple]:
    """The same objects rebuilt by bench/bare_rebuild.py with the cluster
    stopped, in minis3's design (the yardstick for the wiped node's row) and
    in the three others it measures."""
    ec = topo.erasure
    got = bare_rebuild.measure(root, objects, size, ec.k, ec.m, ec.backend, designs=bare_rebuild.DESIGNS)
    notes.append(f"The bare rebuild (`python -m minis3.bench.bare_rebuild`) does a wiped node's reads, decode "
                 f"and file writes with none of minis3's other work (no block or segment checksums, no file "
                 f"header, no scrubber walk or metadata): it is what this design (k sources over loopback HTTP, "
                 f"pyeclib, a file and an fsync a fragment) can do on this machine. minis3's rebuild ran at "
                 f"{wiped_mb_s / got['mb_s']:.2f} of it ({wiped_mb_s:.0f} MB/s).")
    notes.append("The bare rebuild also ran in three other designs, its rounds interleaved with the first's "
                 "(`--designs all`): the sources' bytes *streamed* (a plain TCP connection, each file sent by "
                 "`sendfile` and read into one buffer a batch, no HTTP parser) instead of over HTTP, and the "
                 "rebuilt fragments landed in one *extent* file a batch (appended, one fsync) instead of a file "
                 "a fragment. What separates the rows is what each choice of minis3's design costs here.")
    rows = []
    for d in got["designs"]:
        runs = ", ".join(f"{r:.0f}" for r in d["mb_s_each"])
        how = (f"{'over HTTP' if d['transport'] == 'http' else 'streamed (sendfile, recv_into)'}, "
               f"{'a file and an fsync a fragment' if d['landing'] == 'files' else 'one extent file a batch'}")
        rows.append((f"bare rebuild of the same {objects} objects (bench/bare_rebuild.py), the cluster stopped: {how}",
                     f"{got['mb_written']:.0f} MB written; {d['cpu_ms_per_mb']:.1f} ms of CPU a MB (receiver and "
                     "sources)", f"median of {got['rounds']} ({runs} MB/s)", f"**{d['mb_s']:.0f} MB/s written**"))
    return rows


def _report(rows: list[tuple], notes: list[str], objects: int, size: int, fill_s: float) -> str:
    lines = ["# Scrubber measurements (`make bench-scrub`)", "",
             f"Fresh local cluster (EC 4+2, 6 nodes in 3 AZs), {objects} objects of {size / MiB:.0f} MiB written "
             f"in {fill_s:.1f} s; {os.cpu_count()} cores. Each row is one `minis3 scrub --now` pass "
             "(the last: passes until the scrubber reports the recovery). MB/s written counts fragment bytes "
             "written by repairs over the time with any repair running; every rebuilt fragment costs k = 4 read.",
             "",
             "| what | data | time | rate |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines + [""] + notes) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m minis3.bench.scrub")
    p.add_argument("--objects", type=int, default=500)
    p.add_argument("--size-mib", type=float, default=1.0)
    p.add_argument("--outage-objects", type=int, default=200)
    p.add_argument("--markdown", type=Path)
    p.add_argument("--no-bare", action="store_true", help="skip the bare rebuild beside minis3's")
    p.add_argument("--rebuild-samples", type=int, default=3, help="wiped-node rebuilds to take the median of")
    a = p.parse_args(argv)
    print(run(a.objects, int(a.size_mib * MiB), a.outage_objects, a.markdown, bare=not a.no_bare,
              rebuild_samples=max(1, a.rebuild_samples)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
