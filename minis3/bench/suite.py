"""`minis3 bench --suite` (what `make bench` runs): one run, two servers, one report.

Starts a fresh default minis3 cluster (its own data directory and ports, so
it can run beside `make run`) and a moto_server, both on loopback; runs the
same workloads against each in turn (never both at once: the machine has two
cores); then, with a fresh cluster and moto_server both up, the phases the
targets read once more, taking turns A B B A (bench/paired.py), which is where
the targets' ratios come from; measures the machine's limits, and writes
docs/benchmarks.md and its JSON. Each server's CPU is read from /proc for its
own process tree.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import encryption as encryption_bench
from . import index as index_bench
from . import paired, report
from . import versioning as versioning_bench
from .bare import wait_port
from .main import _free_port, _progress, all_limits, console, print_limits, print_rows, run_endpoint
from .workloads import Settings, describe

MOTO_KEY, MOTO_SECRET = "testing", "testing"
#: moto_server spends ~7 ms of CPU on every PUT (measured here), so loading it
#: with 100,000 keys would take ~12 minutes alone; its largest LIST bucket is
#: capped here, and the report says so.
MOTO_MAX_LIST_KEYS = 10_000


MOTO_MAX_MULTIPART = 1 << 30


def moto_multipart_sizes(s: Settings) -> tuple[tuple[int, int], ...]:
    """moto_server keeps objects in memory and copies every part at completion:
    its multipart runs stop at 1 GiB (the 1 GiB comparison is the one that matters)."""
    return tuple((n, p) for n, p in s.multipart_sizes if n <= MOTO_MAX_MULTIPART)


def moto_list_keys(s: Settings) -> tuple[int, ...]:
    quick_cap = 1_000 if max(s.list_keys, default=0) <= 3_000 else MOTO_MAX_LIST_KEYS
    return tuple(sorted({min(n, quick_cap) for n in s.list_keys}))

TARGETS_TEXT = """\
The targets minis3 is held to, each a ratio taken from the same run
(so a slower or faster machine moves both sides together). Where the run measured them side
by side (`--side-by-side-rounds`, the section below), the ratios to moto_server are read from
those phases: both servers up at once, each group of phases run on one, then the other, taking
turns (A B B A in `make bench`), so that the VM's drift over minutes weighs on both alike; the
note gives the ratio from the whole workloads run one after the other.

- 4 KiB PUT ops/s at the top concurrency at least **3×** moto_server's, and GET at least
  **4×**, while minis3 verifies SigV4, replicates or erasure-codes, and fsyncs what it acknowledges;
  64 KiB PUT at least **1.5×** and GET at least **2×**; a 4 KiB PUT at ×1 no slower than
  moto_server's at the median (shown inverted: moto's p50 ÷ minis3's, ≥ 1).
- Large single-stream PUT at least **50%** of the one-core ceiling of the work it must do
  (MD5 for the ETag, SHA-256 of the signed payload, erasure encode, xxh3), and at least **2×** moto_server.
- Large single-stream GET at least **2×** moto_server.
- Frontend RSS flat in object size: the peak while moving the largest objects no more than
  1.25× the peak while moving the smaller large ones (16 MiB; shown inverted, so that higher is
  better: ≥ 0.8). The peak with small objects is in the note, for scale.
- LIST page time flat in bucket size: a 1,000-key page in the largest bucket takes no more than
  1.5× as long as in the smallest (inverted above, ≥ 0.67).
- CompleteMultipartUpload flat in object size: completing a 2 GiB upload takes no
  more than 1.5× as long as completing a 10 MiB one with the same number of parts (inverted,
  ≥ 0.67): completion commits a manifest and reads no part, so only the part count costs (the
  1 GiB upload's 128-part completion shows that cost). Each size is uploaded and completed
  several times (`--complete-samples`, 5 by default) and the median completions compared (one
  ~15 ms completion is a noisy sample); each completion is timed after 1.5 s idle, past the
  frontend's 1 s cache of the bucket's state, so a slow upload and a fast one complete from
  the same state. Multipart PUT and GET of 1 GiB with 4
  parts in flight are shown against the single-stream figures (a ratio, not a target).
- Old versions cost nothing to what reads the current one: GET and HEAD of a
  key's current version take no more than 1.5× as long with 1,000 versions of the key as
  with 1, and a 1,000-key LIST page no more than 1.5× as long in a bucket whose every key
  has 100 old versions as in one with none (inverted, ≥ 0.67).
"""

READING = """\
How to read this. *ops/s* and *MB/s* count successful operations only; *errors* must be 0
(any error is listed by its S3 code). Latencies are per request, from the first byte sent to
the last byte received. *client CPU %* is the load generator's own CPU (100% = one core),
*machine CPU %* every process on the box (the maximum is 100 × cores); *server CPU ms/op* is
the CPU time of the server's own processes (minis3: every process of the cluster, split by
kind under "Where the CPU goes"; moto: its one process) divided by the operations. *bound by*
reads those figures:
`client` when the load generator saturated a core, `cpu` when the machine was saturated,
`server` when the server used at least a core, `latency` otherwise (the work was waiting,
typically on fsync). The frontend's RSS is sampled every 100 ms from /proc during each phase
(against a remote minis3, `minis3 bench` reads it from the frontend's Prometheus endpoint,
`/_minis3/metrics`, every 250 ms)."""


#: `minis3 chaos latency all 5ms`: what a PUT and a GET of a small object pay
#: when every hop from the frontend to an AZ (and between AZs) takes 5 ms longer.
INTER_AZ_MS = 5.0


async def inter_az_latency(cluster, endpoint: str, s: Settings, pids: list[int], progress) -> dict:
    """The same one-at-a-time small-object workload without and with
    ``INTER_AZ_MS`` of inter-AZ latency (the RPC layer's delay), back to back."""
    import asyncio

    from ..cluster import chaos
    from .workloads import KiB
    ls = dataclasses.replace(s, workloads=("small",), sizes=(4 * KiB, 64 * KiB), concurrency=(1,),
                             duration=min(s.duration, 5.0))
    out = {"delay_ms": INTER_AZ_MS}
    for name, amount in (("without", "0"), ("with", f"{INTER_AZ_MS:g}ms")):
        chaos.set_latency(cluster.topo, "all", amount)
        await asyncio.sleep(0.5)                  # every process re-reads the setting within 0.25 s
        try:
            out[name] = await run_endpoint(endpoint, "minis3admin", "minis3secret", "us-east-1", ls,
                                           server_pids=pids, progress=progress, frontend_pid=pids[0])
        finally:
            chaos.heal(cluster.topo, "all")
    return out


def latency_cells(lat: dict) -> list[list[str]]:
    rows = []
    with_rows = {(r["op"], r["size"]): r for r in lat["with"]}
    for r in lat["without"]:
        w = with_rows.get((r["op"], r["size"]))
        if w is None or r["op"] not in ("PUT", "GET", "HEAD"):
            continue
        rows.append([f"{r['op']} {r['size'] // 1024} KiB ×1", f"{r['p50_ms']:.1f}", f"{w['p50_ms']:.1f}",
                     f"+{w['p50_ms'] - r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}", f"{w['p99_ms']:.1f}"])
    return rows


def _start_minis3(root: Path) -> tuple[object, str, list[int]]:
    from .. import config
    from ..cluster.supervisor import Cluster
    base = config.free_base_port()
    path = root / "topology.toml"
    # No periodic scrub pass (interval: an hour): the index bench measures
    # lookups with the scrubber idle, then starts a pass and measures again.
    path.write_text(config.local_toml(base, root / "data", scrub={"interval_s": 3600},
                                      frontend={"plaintext_buckets": list(encryption_bench.PLAINTEXT_BUCKETS)}))
    topo = config.load(path)
    cluster = Cluster(topo)
    cluster.start(timeout=60)
    # The frontend first (its RSS is sampled), then every other process of the
    # cluster: the AZ supervisors (their storage nodes and metadata replicas are
    # their children), the scrubber (with the index manager) and the console.
    # The runner splits their CPU by role (runner.ROLES) from each one's cmdline.
    pids = ([cluster.frontend.pid] + [p.pid for p in cluster.azs.values()]
            + [p.pid for p in (cluster.scrubber, cluster.console) if p is not None])
    return cluster, topo.frontend.url, pids


def _start_moto(root: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    log = open(root / "moto_server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    wait_port(port)
    return proc, f"http://127.0.0.1:{port}"


def _moto_version() -> str:
    try:
        from importlib.metadata import version
        return version("moto")
    except Exception:  # noqa: BLE001 - only for the report's header
        return "unknown"


def load_before(path: str | None) -> dict | None:
    """An earlier run's JSON (``--before``), for the report's "before" columns;
    None (and a warning) when it is missing or unreadable."""
    if not path:
        return None
    try:
        before = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        console.print(f"[yellow]--before {path}: {exc}; the report has no before columns[/yellow]")
        return None
    if not isinstance(before, dict) or "minis3" not in before:
        console.print(f"[yellow]--before {path}: not a `minis3 bench --suite` JSON; no before columns[/yellow]")
        return None
    before["_path"] = path
    return before


async def run_suite(a: argparse.Namespace, s: Settings) -> int:
    before = load_before(getattr(a, "before", None))   # read first: --json may overwrite it
    # --quick: one round (A B), which cancels no drift but shows the pass works.
    rounds = min(a.side_by_side_rounds, 1) if a.quick else a.side_by_side_rounds
    if rounds:
        try:
            paired.order(rounds)                        # refused now, not after the other workloads
        except ValueError as exc:
            raise SystemExit(f"--side-by-side-rounds: {exc}") from None
    root = Path(tempfile.mkdtemp(prefix="minis3-bench-", dir=a.data_dir if Path(a.data_dir).is_dir() else None))
    started = time.monotonic()
    out: dict = {"machine": report.machine(), "command": "make bench-quick" if a.quick else "make bench",
                 "settings": describe(s), "moto_version": _moto_version()}
    try:
        with _progress(a.no_progress) as progress:
            mine = await _minis3_workloads(root, s, out, progress)
            moto = await _moto_workloads(root, s, progress)
            if rounds > 0 and paired.groups(s):
                out["side_by_side"] = await _side_by_side(root / "side-by-side", s, rounds, progress)
            a.data_dir = str(root)
            limits = await all_limits(a, progress)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    out["moto_list_keys"] = list(moto_list_keys(s))
    side = out.get("side_by_side") or {}
    out.update(minis3=mine, moto=moto, limits=limits, ceilings=report.ceilings(mine, limits),
               targets=report.targets(mine, moto, limits, out.get("versioning"), out.get("side_by_side")),
               errors={"minis3": sum(r["errors"] for r in mine + side.get("minis3", []))
                       + out.get("versioning", {}).get("errors", 0),
                       "moto": sum(r["errors"] for r in moto + side.get("moto", []))},
               seconds=round(time.monotonic() - started, 1))
    _print_results(out, before)
    if before is not None:
        out["before"] = {"file": before["_path"], "date": before.get("machine", {}).get("date"),
                         "command": before.get("command")}
    if a.json_path:
        Path(a.json_path).write_text(json.dumps(out, indent=1) + "\n")
    if a.markdown:
        Path(a.markdown).write_text(markdown(out, before))
        console.print(f"wrote {a.markdown}")
    return 1 if any(out["errors"].values()) else 0


async def _minis3_workloads(root: Path, s: Settings, out: dict, progress) -> list[dict]:
    """Every workload against a fresh minis3 cluster: its rows; the inter-AZ, versioning
    and index results go into ``out``."""
    console.print("starting a fresh minis3 cluster…")
    cluster, endpoint, pids = _start_minis3(root)
    try:
        mine = await run_endpoint(endpoint, "minis3admin", "minis3secret", "us-east-1", s,
                                  server_pids=pids, progress=progress, frontend_pid=pids[0])
        if "small" in s.workloads:
            console.print(f"inter-AZ latency: small objects without and with {INTER_AZ_MS:g} ms…")
            out["inter_az"] = await inter_az_latency(cluster, endpoint, s, pids, progress)
        if "small" in s.workloads and "large" in s.workloads:
            console.print("encryption at rest: the same objects in the clear and SSE-S3…")
            out["encryption"] = await encryption_bench.run(endpoint, s, pids, progress)
        if "versioning" in s.workloads:
            # Before the index bench: that one ends with a scrub pass over
            # a million keys still walking, which this would wait for.
            console.print(f"versioning: a key of 1 and of {s.version_count:,} versions; LIST with 0 and "
                          f"{s.version_old} old versions a key…")
            out["versioning"] = await versioning_bench.run(cluster.topo, endpoint, s, progress)
        if "list" in s.workloads:
            console.print(f"the index: buckets of {', '.join(f'{n:,}' for n in s.index_keys)} keys…")
            out["index"] = await index_bench.scaling(cluster, endpoint, s, progress)
    finally:
        cluster.stop()
    if "list" in s.workloads:
        console.print("the index: a hot prefix against small partition budgets…")
        out["index"]["hot"] = await index_bench.hot_prefix(root, s.hot_seconds, progress)
    return mine


async def _moto_workloads(root: Path, s: Settings, progress) -> list[dict]:
    """The same workloads against moto_server (fewer LIST keys and multipart sizes)."""
    console.print("starting moto_server…")
    moto_proc, moto_url = _start_moto(root)
    moto_settings = dataclasses.replace(s, list_keys=moto_list_keys(s), multipart_sizes=moto_multipart_sizes(s))
    try:
        return await run_endpoint(moto_url, MOTO_KEY, MOTO_SECRET, "us-east-1", moto_settings,
                                  server_pids=[moto_proc.pid], progress=progress)
    finally:
        moto_proc.terminate()
        moto_proc.wait(10)


async def _side_by_side(root: Path, s: Settings, rounds: int, progress) -> dict:
    """The target's groups of phases on a fresh minis3 cluster and a fresh
    moto_server, both up at once, in turn (bench/paired.py)."""
    root.mkdir(parents=True)
    console.print(f"side by side: a fresh minis3 cluster and moto_server, {rounds} rounds each "
                  f"({paired.order_letters(rounds)})…")
    cluster, endpoint, pids = _start_minis3(root)
    try:
        moto_proc, moto_url = _start_moto(root)
        try:
            mine = paired.Side("minis3", endpoint, "minis3admin", "minis3secret", pids, frontend_pid=pids[0])
            moto = paired.Side("moto", moto_url, MOTO_KEY, MOTO_SECRET, [moto_proc.pid])
            # The targets read PUT and GET (PUTs are always timed).
            return await paired.run(mine, moto, dataclasses.replace(s, small_ops=("GET",)), rounds, progress,
                                    log=lambda line: console.print(f"side by side: {line}"))
        finally:
            moto_proc.terminate()
            moto_proc.wait(10)
    finally:
        cluster.stop()


def _print_results(out: dict, before: dict | None) -> None:
    print_rows("minis3", out["minis3"])
    print_rows("moto_server", out["moto"])
    if out.get("side_by_side"):
        console.print(report.rich_table("the targets' phases, side by side", report.SIDE_BY_SIDE_COLUMNS,
                                        report.side_by_side_cells(out["side_by_side"], out["minis3"], out["moto"])))
        for name in ("minis3", "moto"):
            for r in out["side_by_side"][name]:
                if r["errors"]:
                    console.print(f"[red]side by side, {name}: {r['workload']} {r['op']}: {r['errors']} errors: "
                                  f"{r['error_codes']}[/red]")
    print_limits(out["limits"], out["minis3"])
    if out.get("versioning"):
        console.print(report.rich_table("versioning", VERSIONING_COLUMNS, versioning_cells(out["versioning"])))
    console.print(report.rich_table("targets", report.target_columns(before is not None),
                                    report.target_cells(out["targets"], _before_targets(before))))


def _latency_section(lat: dict | None) -> list[str]:
    if not lat:
        return []
    return [
        f"## Inter-AZ latency: {lat['delay_ms']:g} ms",
        "",
        f"`minis3 chaos latency all {lat['delay_ms']:g}ms` makes every request between processes of different "
        "AZs (and from the frontend, which is in none, to any AZ) wait that long more: an RPC-layer delay, "
        "since this kernel has no tc netem. One client, one request at a time, run back to back without "
        "and with it. A 4 KiB object is stored inline in its metadata record (one round trip to a quorum "
        "of replicas); a 64 KiB one is erasure-coded (fragments to six nodes, then the record): see "
        "ARCHITECTURE.md, \"Which requests cross AZs\".",
        "",
        report.markdown_table(["request", "p50 ms", f"p50 ms +{lat['delay_ms']:g} ms", "p50 added",
                               "p99 ms", f"p99 ms +{lat['delay_ms']:g} ms"], latency_cells(lat)),
        "",
    ]


def _index_section(ix: dict | None) -> list[str]:
    if not ix:
        return []
    rows = []
    for size in ix["sizes"]:
        for r in size["rows"]:
            rows.append([f"{r['op']}", f"{size['keys']:,}", f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}",
                         str(r["ops"]), str(r["errors"])])
    loads = "; ".join(f"{sz['keys']:,} keys in {sz['load']['seconds']:.1f} s ({sz['load']['keys_per_s']:,.0f} keys/s"
                      + (f"; the index then settled in {sz['settle_s']:.1f} s" if "settle_s" in sz else "") + ")"
                      for sz in ix["sizes"])
    rs = ix["restart"]
    cu = rs.get("catch_up") or {}
    parts = [
        "## The index: lookups and LIST pages in small and large buckets",
        "",
        f"Buckets filled by `minis3 bulk-load` (the commit path of a PUT, in batches; objects of "
        f"{ix['body_bytes']} bytes, stored inline): {loads}. Once the index was quiet (every replica "
        f"holding every key, the splits the load set off done), one request at a time, HEAD and GET of "
        f"random keys and 1,000-key LIST pages from random places, with the scrubber idle (the bench's "
        f"cluster starts no pass by itself); then HEAD and GET again while a scrub pass walks the index "
        f"(paced at `scrub.meta_keys_per_s`). The largest bucket ended in "
        f"{ix['partitions']} partitions (map version {ix['map_version']}).",
        "",
        report.markdown_table(["request", "bucket keys", "p50 ms", "p99 ms", "requests", "errors"], rows),
        "",
        (f"- **Splits while loading:** {ix['split_pauses_s']['count']} partition cuts over the three replicas; "
         f"each paused its partition's writes for {ix['split_pauses_s']['median'] * 1000:.1f} ms "
         f"(median), {ix['split_pauses_s']['max'] * 1000:.0f} ms at most."
         if ix.get("split_pauses_s", {}).get("count") else "- **Splits while loading:** none."),
        f"- **Memory per key** in a metadata process (RSS after the loads minus before, over the keys, "
        f"averaged over the three replicas, each of which holds every key): **{ix['bytes_per_key']:,.0f} bytes**.",
        f"- **Restart** of a metadata process holding {rs['keys']:,} keys (kill -9, then started again): "
        f"serving reads after **{rs['seconds_until_serving']:.1f} s** (its own snapshots and WALs loaded, "
        f"one peer's versions merged), every peer merged after {rs.get('seconds_until_caught_up', 0):.1f} s "
        f"({cu.get('versions_merged', '?')} newer versions found).",
    ]
    hot = ix.get("hot")
    if hot:
        splits = "; ".join(f"at {sp['at_s']:.1f} s ({sp['reason']})" for sp in hot["splits"]) or "none"
        parts += [
            "",
            "### A hot prefix",
            "",
            f"A separate cluster whose partitions each take at most {hot['budget']['write_ops_per_s']} writes a "
            f"second (S3's budget per prefix is 3,500; this one is small enough for this machine to exceed) and "
            f"split when asked for more than {hot['budget']['split_ops_per_s']} a second for "
            f"{hot['budget']['hot_seconds']} s. {hot['concurrency']} clients PUT 1 KiB objects to random keys "
            f"under one prefix for {hot['seconds']:.0f} s; a SlowDown costs the client a 50 ms back-off. "
            f"Successful PUTs per second, second by second: {', '.join(str(b) for b in hot['ok_per_s'])}. "
            f"First 3 s: **{hot['first_3s']:.0f}/s**; last 5 s: **{hot['last_5s']:.0f}/s**; "
            f"{hot['refused']:,} SlowDowns. Splits: {splits}.",
        ]
    return parts + [""]


VERSIONING_COLUMNS = ["request", "versions", "p50 ms", "p99 ms", "requests", "errors"]


def versioning_cells(v: dict) -> list[list[str]]:
    cells = []
    for r in v["rows"]:
        what = (f"LIST 1000-key page, {v['list_keys']:,} keys" if r["op"] == "LIST"
                else f"{r['op']} of the current version")
        versions = f"{r['versions']:,} a key" if r["op"] == "LIST" else f"{r['versions']:,}"
        cells.append([what, versions, f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}", f"{r['ops']:,}",
                      str(r["errors"])])
    for q in v["ratios"]:
        versions = (f"{q['many'] - 1:,} old a key ÷ none" if q["op"] == "LIST"
                    else f"{q['many']:,} ÷ {q['few']:,}")
        cells.append([f"{q['op']}: ratio", versions, _ratio(q["p50"]), _ratio(q["p99"]), "", ""])
    return cells


def _ratio(x: float | None) -> str:
    if x is None:
        return "-"
    return f"**{x:.2f}×**" if x > 1.5 else f"{x:.2f}×"


def _versioning_section(v: dict | None) -> list[str]:
    if not v:
        return []
    loads = "; ".join(f"{'no' if k == '0' else k} old versions a key: {ld['keys']:,} records in "
                      f"{ld['seconds']:.1f} s" for k, ld in v["loads"].items())
    return [
        "## Versioning: the current version with many old ones",
        "",
        f"A key's current version is its head, each older version a row beside it in the index "
        f"(`minis3/core/versions.py`): GET and HEAD read the head only, and a LIST page asks the replicas "
        f"for heads only (a partition keeps its rows in a sorted map apart from its heads, so a page never meets them). One request at a time: GET and "
        f"HEAD of a key with 1 version and of a key with {v['version_count']:,}, in one bucket (the "
        f"{v['version_count']:,} made by versioned PUTs, {v['puts']['seconds']:.1f} s, "
        f"{v['puts']['p50_ms']:.1f} ms each at p50); then 1,000-key LIST pages (max-keys 1000) in a "
        f"versioned bucket of {v['list_keys']:,} keys with no old versions and in one whose every key has "
        f"{v['list_old']} ({v['list_keys'] * v['list_old']:,} rows). The LIST buckets were filled by the "
        f"bulk loader before versioning was enabled on them: each head and row committed as a plain index "
        f"record ({v['body_bytes']} bytes, inline) with its version id ({loads}"
        + (f"; the index then settled in {v['settle_s']:.1f} s" if "settle_s" in v else "")
        + "). Ratios over 1.5× (the target) are in bold.",
        "",
        report.markdown_table(VERSIONING_COLUMNS, versioning_cells(v)),
        "",
    ]


CPU_TEXT = """\
The CPU time of each of minis3's processes, read before and after each phase (from each
process's CPU-time clock, to the nanosecond; /proc's 10 ms ticks where that cannot be read)
and divided by the operations: the frontend; the storage nodes, all together; the metadata
replicas, all together; *other*, the rest of the cluster (the AZ supervisors, the scrubber
with the index manager, the console); and the client, the load generator, in the same
process as the benchmark. A process a server started (a worker) counts as that server's.
The first four add up to the *server CPU ms/op* of the phase, and *total* adds the
client's. The mixed run's per-op rows share one timed run: its CPU is on its ALL row only."""


def _side_by_side_section(out: dict) -> list[str]:
    side = out.get("side_by_side")
    if not side:
        return []
    idle = side["idle_cores"]
    cores = lambda name: "-" if idle.get(name) is None else f"{idle[name]:.3f}"  # noqa: E731
    return ["## The targets' phases, side by side", "",
            f"A fresh minis3 cluster and a fresh moto_server, both up at once; each group of phases "
            f"below (one size of small objects at one concurrency: its PUTs, then GETs of them, or at "
            f"×1 its PUTs alone; the largest object: PUT, GET) ran on minis3 (A) and moto_server (B) "
            f"in turn, in the order {side['order']}, and each side's turns are pooled into one row "
            f"(its operations over its time, percentiles over every sample; each turn's rate is in the "
            f"last column). *one after the other* is the same ratio from the workloads above. Before "
            f"each turn both servers were let go quiet (under {paired.QUIET_CORES:g} of a core, "
            f"{side.get('settle_s', 0):g} s of waiting in all); while one server was measured the "
            f"other sat idle, and minis3's cluster used {cores('minis3')} of a core meanwhile (its "
            f"background work: the audit, the scrubber, the metadata snapshots), moto_server "
            f"{cores('moto')}.", "",
            report.markdown_table(report.SIDE_BY_SIDE_COLUMNS,
                                  report.side_by_side_cells(side, out["minis3"], out["moto"])), ""]


def _before_targets(before: dict | None) -> list[dict] | None:
    """An earlier run's targets: those it stored, and those it did not have
    (added since) computed again from its rows."""
    if before is None:
        return None
    kept = list(before.get("targets", []))
    if before.get("minis3") and before.get("moto"):
        names = {t["target"] for t in kept}
        kept += [t for t in report.targets(before["minis3"], before["moto"], before.get("limits") or {},
                                           before.get("versioning"), before.get("side_by_side"))
                 if t["target"] not in names]
    return kept


def _cpu_section(rows: list[dict]) -> list[str]:
    cells = report.cpu_cells(rows)
    if not cells:
        return []
    return ["## Where the CPU goes (ms of CPU per operation, by process)", "", CPU_TEXT, "",
            report.markdown_table(report.CPU_COLUMNS, cells), ""]


def _before_line(out: dict, before: dict | None) -> list[str]:
    if before is None:
        return []
    settings = before.get("settings")
    same = settings == out["settings"]
    return [f"- **Before:** the *before* columns are the same figures from an earlier run, "
            f"`{before['_path']}` (`{before.get('command', '?')}` on "
            f"{before.get('machine', {}).get('date', 'an unknown date')}, the baseline kept from before the "
            f"performance work), matched by target and by workload, op, size and concurrency"
            + ("" if same or not settings else f"; its workloads: {settings}")]


def markdown(out: dict, before: dict | None = None) -> str:
    """The report; with ``before`` (an earlier run's JSON, see ``--before``) the
    targets and the minis3-vs-moto ratios get a column of that run's values."""
    parts = [
        *_header(out, before),
        "## Targets",
        "",
        TARGETS_TEXT,
        report.markdown_table(report.target_columns(before is not None),
                              report.target_cells(out["targets"], _before_targets(before))),
        "",
        "## minis3 and moto_server, same workloads",
        "",
        "The ratio column is minis3 ÷ moto_server for ops/s (small, mixed), MB/s (large), and "
        "moto's page time ÷ minis3's for LIST; above 1× means minis3 is faster."
        + (" *before minis3 ÷ moto* is the same ratio in the earlier run (\"-\": it had no such row)."
           if before is not None else ""),
        "",
        report.markdown_table(report.comparison_columns(before is not None),
                              report.comparison_cells(out["minis3"], out["moto"], before)),
        "",
        *_side_by_side_section(out),
        *_cpu_section(out["minis3"]),
        *_latency_section(out.get("inter_az")),
        *encryption_bench.section(out.get("encryption")),
        *_index_section(out.get("index")),
        *_versioning_section(out.get("versioning")),
        *_machine_sections(out),
        READING,
        "",
    ]
    return "\n".join(parts)


def _header(out: dict, before: dict | None) -> list[str]:
    """What ran, where, when and with how many errors."""
    m = out["machine"]
    return [
        "# Benchmarks",
        "",
        f"Written by `{out['command']}` (`minis3 bench --suite`); do not edit by hand, run it again.",
        "",
        f"- **Machine:** {m['cpu']}, {m['cores']} cores; Python {m['python']}; {m['platform']}",
        f"- **Date:** {m['date']}; the whole run took {out['seconds']:.0f} s",
        f"- **Servers:** a fresh default minis3 cluster (frontend, 3 AZs × 2 storage nodes + 1 metadata "
        f"process, EC from the built-in topology) and moto_server {out['moto_version']}, both on loopback, "
        f"measured one after the other by the same client (`minis3 bench`: aiohttp, SigV4 with signed payloads)"
        + (f"; then the targets' phases with both up, in turn ({out['side_by_side']['order']})"
           if out.get("side_by_side") else ""),
        f"- **Workloads:** {out['settings']} (moto_server's LIST buckets: "
        f"{', '.join(f'{n:,}' for n in out['moto_list_keys'])} keys: at ~7 ms of server CPU per PUT, "
        f"loading it with more would take longer than the whole run; its multipart runs stop at 1 GiB)",
        f"- **Errors:** minis3 {out['errors']['minis3']}, moto_server {out['errors']['moto']}",
        *_before_line(out, before),
        "",
    ]


def _machine_sections(out: dict) -> list[str]:
    """minis3 beside the machine's ceilings, the ceilings, and every phase of both servers."""
    return [
        "## minis3 beside this machine's ceilings",
        "",
        report.markdown_table(["result", "value", "ceiling", "ceiling value", "ratio"],
                              report.ceiling_cells(out["ceilings"])),
        "",
        "## This machine's limits",
        "",
        "One core, one thread for the CPU figures (measured in a process with the cluster's malloc "
        "tuning); the disk figures in the benchmark's data directory; the aiohttp figures with the "
        "same client and concurrency as the workloads.",
        "",
        report.markdown_table(["ceiling", "value"], report.limit_cells(out["limits"])),
        "",
        "## Every phase",
        "",
        "### minis3",
        "",
        report.markdown_table(report.RESULT_COLUMNS, report.result_cells(out["minis3"])),
        "",
        "### moto_server",
        "",
        report.markdown_table(report.RESULT_COLUMNS, report.result_cells(out["moto"])),
        "",
    ]
