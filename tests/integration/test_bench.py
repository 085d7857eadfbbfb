"""`minis3 bench` against the live cluster: a moment of every workload (a quarter of a
second a small-object phase: some tens of operations), JSON with every field, zero errors.
No timing is asserted."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .cluster import ACCESS_KEY, SECRET_KEY

ROW_FIELDS = {"workload", "op", "size", "concurrency", "ops", "errors", "error_codes", "seconds", "ops_per_s",
              "mb_per_s", "p50_ms", "p90_ms", "p99_ms", "client_cpu_pct", "machine_cpu_pct",
              "machine_cpu_max_pct", "server_cpu_ms_per_op"}


def test_bench_runs_every_workload_and_writes_json(cluster, tmp_path):
    out = tmp_path / "bench.json"
    minis3 = Path(sys.executable).parent / "minis3"
    p = subprocess.run([str(minis3), "bench", "--endpoint", cluster.endpoint, "--access-key", ACCESS_KEY,
                        "--secret-key", SECRET_KEY, "--duration", "0.25", "--sizes", "4KiB,64KiB",
                        "--concurrency", "1,8", "--large-size", "8MiB", "--large-count", "1",
                        "--list-keys", "200,400", "--list-pages", "3", "--mixed-duration", "0.5",
                        "--mixed-objects", "50", "--multipart-size", "9MiB/5MiB,17MiB", "--complete-samples", "2",
                        "--no-progress",
                        "--json", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["errors"] == 0 and doc["endpoint"] == cluster.endpoint
    assert {"cpu", "cores", "python", "date"} <= set(doc["machine"])
    rows = doc["rows"]
    seen = {(r["workload"], r["op"], r["size"], r["concurrency"]) for r in rows}
    for size in (4096, 65536):
        for conc in (1, 8):
            assert {("small", op, size, conc) for op in ("PUT", "GET", "HEAD", "DELETE")} <= seen
    assert {("large", "PUT", 8 << 20, 1), ("large", "GET", 8 << 20, 1),
            ("list", "LIST", 200, 1), ("list", "LIST", 400, 1)} <= seen
    assert {("mixed", op) for op in ("ALL", "GET", "PUT", "LIST")} <= {(w, o) for w, o, _, _ in seen}
    assert {("multipart", op, size) for op in ("PUT parts", "COMPLETE", "GET parts")
            for size in (9 << 20, 17 << 20)} <= {(w, o, n) for w, o, n, _ in seen}
    # Each size uploaded and completed twice: one row each for PUT and COMPLETE, of two samples.
    assert sorted((r["op"], r["size"], r["ops"]) for r in rows if r["workload"] == "multipart") == sorted(
        (op, size, 1 if op == "GET parts" else 2) for op in ("PUT parts", "COMPLETE", "GET parts")
        for size in (9 << 20, 17 << 20))
    for r in rows:
        assert ROW_FIELDS <= set(r), r
        assert r["errors"] == 0 and r["ops"] > 0, r
    # The endpoint is minis3: the frontend's RSS was sampled in every measured phase.
    assert all(r["frontend_rss_peak_mb"] > 0 for r in rows if r["client_cpu_pct"] is not None)
    # The table was printed too; the suite-only workload was said to be skipped.
    assert "ops/s" in p.stderr and "versioning: run by --suite only" in p.stderr


def test_bench_reports_errors_by_s3_code(cluster, tmp_path):
    """Wrong keys: every request fails, the run says so by code and exits 1."""
    out = tmp_path / "bad.json"
    minis3 = Path(sys.executable).parent / "minis3"
    p = subprocess.run([str(minis3), "bench", "--endpoint", cluster.endpoint, "--access-key", ACCESS_KEY,
                        "--secret-key", "wrong", "--workloads", "small", "--duration", "0.2",
                        "--concurrency", "1", "--sizes", "4KiB", "--no-progress", "--json", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1
    assert "SignatureDoesNotMatch" in p.stderr


def test_bench_versioning_reduced(cluster, s3):
    """The suite's versioning workload, small: GET and HEAD of keys with 1 and
    20 versions, LIST in buckets with 0 and 5 old versions a key; the rows the
    bulk loader made are versions like any other (listed, readable by id)."""
    import asyncio
    import dataclasses

    from minis3.bench import versioning
    from minis3.bench.workloads import Settings

    s = dataclasses.replace(Settings(), version_count=20, version_list_keys=50, version_old=5,
                            version_list_pages=3, duration=0.3)
    v = asyncio.run(versioning.run(cluster.topo, cluster.endpoint, s, None, ACCESS_KEY, SECRET_KEY, quiet=False))
    assert v["errors"] == 0
    assert {(r["op"], r["versions"]) for r in v["rows"]} == {("HEAD", 1), ("HEAD", 20), ("GET", 1), ("GET", 20),
                                                             ("LIST", 1), ("LIST", 6)}
    for r in v["rows"]:
        assert ROW_FIELDS <= set(r) and r["ops"] > 0, r
    assert [(q["op"], q["few"], q["many"]) for q in v["ratios"]] == [("HEAD", 1, 20), ("GET", 1, 20), ("LIST", 1, 6)]
    assert all(q["p50"] and q["p99"] for q in v["ratios"])
    many = s3.list_object_versions(Bucket=v["buckets"]["lookup"], Prefix="many")["Versions"]
    assert len(many) == 20 and many[0]["IsLatest"]
    bucket = v["buckets"]["5"]
    got = s3.list_object_versions(Bucket=bucket, Prefix="k/0000007")["Versions"]
    assert len(got) == 6 and got[0]["IsLatest"] and not any(x["IsLatest"] for x in got[1:])
    oldest = s3.get_object(Bucket=bucket, Key="k/0000007", VersionId=got[-1]["VersionId"])
    assert oldest["Body"].read() == versioning.BODY
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 50


def test_side_by_side_takes_turns_and_pools_each_sides_rows(cluster):
    """The targets' pass (bench/paired.py) against a real server: here the
    cluster on both sides (make test has no moto_server), side A with its
    processes, side B with none of its own. Each group ran A B B A; a side's
    rows hold both its turns, pooled; A's processes' CPU during B's turns is
    measured (B's turns load A's own cluster here, so it is not idle: this
    shows the measuring, not an idle figure), and B has none to measure."""
    import asyncio
    import dataclasses

    from minis3.bench import paired
    from minis3.bench.workloads import KiB, MiB, Settings

    c = cluster.cluster
    pids = [c.frontend.pid] + [p.pid for p in c.azs.values()]
    a = paired.Side("a", cluster.endpoint, ACCESS_KEY, SECRET_KEY, pids, frontend_pid=c.frontend.pid)
    b = paired.Side("b", cluster.endpoint, ACCESS_KEY, SECRET_KEY, [])
    s = dataclasses.replace(Settings(), duration=0.25, sizes=(4 * KiB,), concurrency=(1, 4), small_ops=("GET", "HEAD"),
                            large_sizes=(2 * MiB, 3 * MiB), large_count=1)
    logged = []
    out = asyncio.run(paired.run(a, b, s, 2, log=logged.append))
    assert out["order"] == "A B B A" and len(logged) == 3 * 4
    assert [line.split(" on ")[1][0] for line in logged[:4]] == ["a", "b", "b", "a"]
    # ×4: the PUTs and the ops asked for; ×1: its PUTs alone (the latency target's group).
    want = {("small", op, 4096, 4) for op in ("PUT", "GET", "HEAD")} | {("small", "PUT", 4096, 1)} | {
        ("large", "PUT", 3 * MiB, 1), ("large", "GET", 3 * MiB, 1)}
    for side in ("a", "b"):
        rows = out[side]
        assert {(r["workload"], r["op"], r["size"], r["concurrency"]) for r in rows} == want
        for r in rows:
            assert r["errors"] == 0 and len(r["turns"]) == 2 and all(x > 0 for x in r["turns"]), r
    # A's processes are the cluster that B's turns loaded; B has none of its own.
    assert out["idle_cores"]["a"] > 0 and out["idle_cores"]["b"] is None
    assert out["settle_s"] >= 0
    assert all(r["server_cpu_ms_per_op"] > 0 for r in out["a"])


def test_bare_relay_moves_every_byte_both_ways():
    """The two-hop ceiling `bench --limits` measures is a relay that really
    relays: a download is the k origins' bytes in full, and an upload that is
    not a whole number of segments reaches every origin's sink."""
    import asyncio

    from minis3.bench.bare import wait_port
    from minis3.bench.main import _free_port
    ports = [_free_port() for _ in range(7)]
    bare = [sys.executable, "-m", "minis3.bench.bare"]
    procs = [subprocess.Popen(bare + [str(p)]) for p in ports[1:]]
    procs.append(subprocess.Popen(bare + [str(ports[0]), "--relay", ",".join(map(str, ports[1:])) + "/4"]))

    async def run():
        import aiohttp
        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://127.0.0.1:{ports[0]}/stream/{3 << 20}") as r:
                body = await r.read()
                assert r.status == 200 and len(body) == 3 << 20 == int(r.headers["Content-Length"])
            async with s.put(f"http://127.0.0.1:{ports[0]}/sink", data=b"x" * ((2 << 20) + 5)) as r:
                assert r.status == 200

    try:
        for p in ports:
            wait_port(p)
        asyncio.run(run())
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(10)
