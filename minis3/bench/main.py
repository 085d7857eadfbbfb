"""`minis3 bench`: run the workloads against an endpoint, measure the machine, or both.

    minis3 bench --endpoint http://127.0.0.1:9000 --access-key K --secret-key S [--json FILE]
    minis3 bench --limits                       # this machine's ceilings only
    minis3 bench --suite --markdown docs/benchmarks.md   # fresh minis3 + moto_server, one report
    minis3 bench --suite --markdown docs/benchmarks.md --before docs/benchmarks-before.json  # … beside an earlier run

A run exits 1 when any request failed (each failure is listed by its S3 code).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from . import report
from .bare import wait_port
from .client import Payload, S3Client, body_of
from .runner import Runner
from .workloads import SUITE_WORKLOADS, WORKLOADS, KiB, MiB, Settings, describe

console = Console(stderr=True)
if not console.is_terminal:          # logs and CI: keep every column of the wide tables
    console = Console(stderr=True, width=220)


def parse_size(text: str) -> int:
    t = text.strip().lower().replace(" ", "")
    for suffix, mult in (("gib", 1 << 30), ("mib", MiB), ("kib", KiB), ("g", 1 << 30), ("m", MiB), ("k", KiB),
                         ("b", 1)):
        if t.endswith(suffix):
            return int(float(t[: -len(suffix)]) * mult)
    return int(t)


def _multipart_sizes(text: str) -> tuple[tuple[int, int], ...]:
    out = []
    for item in (x for x in text.split(",") if x):
        size, _, part = item.partition("/")
        out.append((parse_size(size), parse_size(part) if part else 8 * MiB))
    return tuple(out)


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x)


def _sizes(text: str) -> tuple[int, ...]:
    return tuple(parse_size(x) for x in text.split(",") if x)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--endpoint", help="S3 endpoint URL (any S3: minis3, moto_server, …)")
    p.add_argument("--access-key", default=os.environ.get("AWS_ACCESS_KEY_ID", "minis3admin"))
    p.add_argument("--secret-key", default=os.environ.get("AWS_SECRET_ACCESS_KEY", "minis3secret"))
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--workloads", default="small,large,list,mixed,multipart,versioning",
                   help="comma-separated: small, large, list, mixed, multipart, versioning (--suite only)")
    p.add_argument("--multipart-size", default="10MiB/5MiB,1GiB/8MiB,2GiB/1GiB",
                   help="multipart objects as SIZE/PART_SIZE (PART_SIZE defaults to 8MiB)")
    p.add_argument("--complete-samples", type=int, default=Settings.complete_samples,
                   help="uploads of each multipart size, each completed and timed (the COMPLETE row is "
                        "their median)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds for each small-object phase")
    p.add_argument("--max-ops", type=int, default=50_000, help="most operations in any one phase")
    p.add_argument("--sizes", default="4KiB,64KiB", help="small-object sizes")
    p.add_argument("--concurrency", default="1,8,32", help="small-object concurrencies")
    p.add_argument("--large-size", default="16MiB,256MiB", help="large-object sizes (the largest is the "
                   "headline; the frontend's RSS must not grow from the smallest to it)")
    p.add_argument("--large-count", type=int, default=2)
    p.add_argument("--list-keys", default="1000,100000", help="bucket sizes for the LIST workload")
    p.add_argument("--list-pages", type=int, default=30)
    p.add_argument("--mixed-duration", type=float, default=30.0)
    p.add_argument("--mixed-concurrency", type=int, default=32)
    p.add_argument("--mixed-objects", type=int, default=1000)
    p.add_argument("--server-pid", type=int, action="append", default=[],
                   help="a server process (and its children) whose CPU to report per op")
    p.add_argument("--frontend-pid", type=int, help="a local minis3 frontend's pid: sample its RSS from "
                   "/proc instead of its metrics endpoint")
    p.add_argument("--limits", action="store_true", help="also (or, without --endpoint, only) measure "
                   "this machine's ceilings")
    p.add_argument("--data-dir", default="./data", help="where --limits times fsync'd creates")
    p.add_argument("--topology", help="the EC scheme for --limits comes from here (default: built-in)")
    p.add_argument("--suite", action="store_true", help="start a fresh minis3 and a moto_server, run "
                   "everything against both, then --limits; write one report")
    p.add_argument("--side-by-side-rounds", type=int, default=2,
                   help="(--suite) turns each server takes at the targets' phases with both servers up: "
                        "2 is A B B A, 4 is A B B A A B B A, 1 is A B (cancels no drift; what --quick "
                        "runs); 0: none, and the targets read the workloads run one after the other")
    p.add_argument("--quick", action="store_true", help="a one-minute version (smaller, shorter)")
    p.add_argument("--json", dest="json_path", help="write the results as JSON here")
    p.add_argument("--markdown", help="write the report as Markdown here")
    p.add_argument("--before", metavar="FILE", help="(--suite) an earlier run's --json: the report shows its "
                   "values beside this run's targets and minis3 ÷ moto ratios (skipped if FILE is missing)")
    p.add_argument("--no-progress", action="store_true")


def settings_from(a: argparse.Namespace) -> Settings:
    s = Settings(workloads=tuple(w for w in a.workloads.split(",") if w), duration=a.duration,
                 max_ops=a.max_ops, sizes=_sizes(a.sizes), concurrency=_ints(a.concurrency),
                 large_sizes=_sizes(a.large_size), large_count=a.large_count,
                 list_keys=_ints(a.list_keys), list_pages=a.list_pages,
                 mixed_duration=a.mixed_duration, mixed_concurrency=a.mixed_concurrency,
                 mixed_objects=a.mixed_objects, multipart_sizes=_multipart_sizes(a.multipart_size),
                 complete_samples=max(1, a.complete_samples))
    if a.quick:
        s.duration, s.sizes, s.concurrency = 1.0, (4 * KiB,), (1, 32)
        s.large_sizes, s.large_count = (8 * MiB, 32 * MiB), 1
        s.list_keys, s.list_pages = (1_000, 3_000), 10
        s.mixed_duration, s.mixed_objects = 3.0, 200
        s.multipart_sizes = ((10 * MiB, 5 * MiB), (64 * MiB, 8 * MiB))
        s.index_keys, s.hot_seconds = (1_000, 20_000), 12.0
        s.version_count, s.version_old, s.version_list_pages = 200, 10, 20
    unknown = set(s.workloads) - set(WORKLOADS) - set(SUITE_WORKLOADS)
    if unknown:
        raise SystemExit(f"unknown workloads: {', '.join(sorted(unknown))}")
    return s


def _progress(disabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, disable=disabled or not console.is_terminal, transient=False)


async def run_endpoint(endpoint: str, access_key: str, secret_key: str, region: str, s: Settings,
                       *, server_pids: list[int], progress: Progress | None,
                       frontend_pid: int | None = None) -> list[dict]:
    """Every selected workload against one endpoint → its result rows."""
    run_id = uuid.uuid4().hex[:8]
    conns = max(64, s.load_concurrency, s.mixed_concurrency, *s.concurrency)
    async with S3Client(endpoint, access_key, secret_key, region, max_connections=conns) as client:
        runner = Runner(client, progress=progress, server_pids=server_pids, frontend_pid=frontend_pid)
        for name in s.workloads:
            if name in WORKLOADS:             # (the suite runs SUITE_WORKLOADS itself)
                await WORKLOADS[name](runner, s, run_id)
        return [ph.row(os.cpu_count() or 1) for ph in runner.phases]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def network_limits(progress: Progress | None, *, stream_size: int = 256 * MiB, seconds: float = 3.0,
                         streams: int = 2, k: int = 4, m: int = 2) -> dict:
    """A bare aiohttp server's req/s and single-stream MB/s, driven by our
    client; then the same streams through a bare relay (``bench/bare.py``):
    the two-hop ceiling, k + m origins behind one relay as storage nodes sit
    behind the frontend."""
    ports = [_free_port() for _ in range(k + m + 2)]
    origin, relay, fragment_ports = ports[0], ports[1], ports[2:]
    bare = [sys.executable, "-m", "minis3.bench.bare"]
    procs = [subprocess.Popen(bare + [str(p)]) for p in [origin] + fragment_ports]
    procs.append(subprocess.Popen(bare + [str(relay), "--relay", ",".join(map(str, fragment_ports)) + f"/{k}"]))
    try:
        for p in ports:
            wait_port(p)
        body = Payload.of(b"\0" * stream_size)
        out = {}
        async with S3Client("http://127.0.0.1", "k", "s", max_connections=64) as client:
            # The bare servers' CPU is counted (server_pids) so that each stream's
            # CPU per MB, theirs and the client's, can be set beside minis3's.
            runner = Runner(client, progress=progress, sample_rss=False, server_pids=[p.pid for p in procs])

            async def streams_through(port: int, name: str) -> tuple:
                base = f"http://127.0.0.1:{port}"
                down = await runner.phase("limits", f"{name} stream GET", stream_size, 1,
                                          lambda i: client.request("GET", f"{base}/stream/{stream_size}"),
                                          count=streams, label=f"{name} download")
                up = await runner.phase("limits", f"{name} stream PUT", stream_size, 1,
                                        lambda i: client.request("PUT", base + "/sink", body=body_of(body.data),
                                                                 sha256=body.sha256,
                                                                 headers={"Content-Length": str(stream_size)}),
                                        count=streams, label=f"{name} upload")
                return down, up

            base = f"http://127.0.0.1:{origin}"
            ok = await runner.phase("limits", "bare GET /", 0, 32, lambda i: client.request("GET", base + "/"),
                                    count=10**7, duration=seconds, label="bare aiohttp req/s ×32")
            down, up = await streams_through(origin, "bare aiohttp")
            relay_down, relay_up = await streams_through(relay, f"bare relay {k}+{m}")
        for ph in (ok, down, up, relay_down, relay_up):
            if ph.errors:
                raise RuntimeError(f"bare aiohttp server failed: {dict(ph.errors)}")
        out = {"bare_req_per_s": round(ok.ops / ok.wall, 1)}
        for key, d, u in (("bare", down, up), ("relay", relay_down, relay_up)):
            out[f"{key}_get_mb_s"] = round(d.nbytes / d.wall / 1e6, 1)
            out[f"{key}_put_mb_s"] = round(u.ops * stream_size / u.wall / 1e6, 1)
            out[f"{key}_get_cpu_ms_per_mb"] = _cpu_ms_per_mb(d, d.nbytes)
            out[f"{key}_put_cpu_ms_per_mb"] = _cpu_ms_per_mb(u, u.ops * stream_size)
        out["cores"] = os.cpu_count()
        return out
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)


def _cpu_ms_per_mb(ph, nbytes: int) -> float:
    """The CPU of a bare stream, servers and client together, per MB moved."""
    return round(1000 * ((ph.server_cpu or 0.0) + ph.client_cpu) / max(1e-9, nbytes / 1e6), 3)


async def all_limits(a: argparse.Namespace, progress: Progress | None) -> dict:
    from .. import config
    from .limits import measure_in_child
    topo = config.load(a.topology, data_dir=a.data_dir if a.topology is None else None)
    console.print("measuring this machine's limits (encode, hashes, fsync, aiohttp)…")
    out = measure_in_child(topo.erasure.k, topo.erasure.m, topo.erasure.backend, Path(a.data_dir))
    if a.quick:
        out.update(await network_limits(progress, stream_size=64 * MiB, seconds=1.0, streams=1,
                                        k=topo.erasure.k, m=topo.erasure.m))
    else:
        out.update(await network_limits(progress, k=topo.erasure.k, m=topo.erasure.m))
    return out


def print_rows(title: str, rows: list[dict]) -> None:
    console.print(report.rich_table(title, report.RESULT_COLUMNS, report.result_cells(rows)))
    for r in rows:
        if r["errors"]:
            console.print(f"[red]{r['workload']} {r['op']}: {r['errors']} errors: {r['error_codes']}[/red]")


def print_limits(limits: dict, rows: list[dict] | None) -> list[dict]:
    console.print(report.rich_table("this machine's limits", ["ceiling", "value"], report.limit_cells(limits)))
    checks = report.ceilings(rows or [], limits)
    if checks:
        console.print(report.rich_table("results beside their ceilings",
                                        ["result", "value", "ceiling", "ceiling value", "ratio"],
                                        report.ceiling_cells(checks)))
    return checks


async def bench(a: argparse.Namespace) -> int:
    s = settings_from(a)
    if a.suite:
        from .suite import run_suite
        return await run_suite(a, s)
    if not a.endpoint and not a.limits:
        raise SystemExit("give --endpoint URL (and keys), --limits, or --suite")
    skipped = [w for w in s.workloads if w in SUITE_WORKLOADS]
    if a.endpoint and skipped:
        console.print(f"{', '.join(skipped)}: run by --suite only (it loads through the cluster's metadata "
                      "service); skipped")
        s.workloads = tuple(w for w in s.workloads if w in WORKLOADS)
    out: dict = {"machine": report.machine(), "command": " ".join(["minis3", "bench", *sys.argv[2:]]),
                 "settings": describe(s)}
    rows: list[dict] = []
    with _progress(a.no_progress) as progress:
        if a.endpoint:
            rows = await run_endpoint(a.endpoint, a.access_key, a.secret_key, a.region, s,
                                      server_pids=a.server_pid, progress=progress, frontend_pid=a.frontend_pid)
            out.update(endpoint=a.endpoint, rows=rows, errors=sum(r["errors"] for r in rows))
        if a.limits:
            out["limits"] = await all_limits(a, progress)
    if rows:
        print_rows(f"{a.endpoint}: {describe(s)}", rows)
    if a.limits:
        out["ceilings"] = print_limits(out["limits"], rows)
    if a.json_path:
        Path(a.json_path).write_text(json.dumps(out, indent=1))
    return 1 if out.get("errors") else 0


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="minis3 bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    return asyncio.run(bench(p.parse_args(argv)))
