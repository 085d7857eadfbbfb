"""The benchmark report's CPU split by process and its "before" columns:
the role of each minis3 process, a phase's CPU by role, and the Markdown tables
built from small fake phase data with and without an earlier run's JSON."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

from minis3.bench import report
from minis3.bench.runner import ServerCpu, role_of
from minis3.bench.stats import Phase
from minis3.bench.suite import load_before, markdown


def test_role_of_reads_the_minis3_subcommand():
    py = sys.executable
    assert role_of([py, "-m", "minis3", "frontend", "--data-dir", "d"]) == "frontend"
    assert role_of([py, "-m", "minis3", "storage", "--id", "az1-n1"]) == "nodes"
    assert role_of([py, "-m", "minis3", "meta", "--az", "az1"]) == "replicas"
    assert role_of([py, "-u", "-m", "minis3", "meta", "--id", "m2"]) == "replicas"
    assert role_of([py, "/venv/bin/minis3", "storage", "--id", "n"]) == "nodes"
    for other in ([py, "-m", "minis3", "az", "az1"], [py, "-m", "minis3", "scrubber"],
                  [py, "-m", "minis3", "console"], [py, "-m", "minis3", "dns"]):
        assert role_of(other) == "other"
    for foreign in ([py, "-m", "moto.server", "-p", "5000"], [py, "-m", "x", "--data-dir", "/srv/minis3", "storage"],
                    [py, "-c", "from multiprocessing.spawn import spawn_main", "--multiprocessing-fork"], []):
        assert role_of(foreign) is None            # not minis3: takes its parent's role


def test_server_cpu_delta_splits_by_role_and_counts_a_new_process_from_zero():
    before = {(1, b"10"): ("frontend", 5.0), (2, b"11"): ("nodes", 1.0), (3, b"12"): ("nodes", 2.0),
              (4, b"13"): ("replicas", 3.0), (5, b"14"): ("other", 0.5), (6, b"15"): ("nodes", 9.0)}
    after = {(1, b"10"): ("frontend", 5.5), (2, b"11"): ("nodes", 1.25), (3, b"12"): ("nodes", 2.25),
             (4, b"13"): ("replicas", 3.125), (5, b"14"): ("other", 0.5),
             (7, b"20"): ("nodes", 0.5)}            # 6 exited (lost), 7 started during the phase
    total, by_role = ServerCpu.delta(before, after)
    assert by_role == {"frontend": 0.5, "nodes": 1.0, "replicas": 0.125, "other": 0.0}
    assert total == 1.625
    total, by_role = ServerCpu.delta({(9, b"1"): ("other", 1.0)}, {(9, b"1"): ("other", 3.0)})
    assert (total, by_role) == (2.0, None)         # moto_server: not minis3, not split


def test_server_cpu_snapshot_walks_the_tree_and_reads_roles(tmp_path):
    fake = tmp_path / "minis3"                     # argv: python …/minis3 storage, like the console script
    fake.write_text("import subprocess, sys, time\n"        # with a worker of its own (not a minis3 command)
                    "w = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
                    "end = time.process_time() + 0.2\n"
                    "while time.process_time() < end: pass\nprint('busy', flush=True)\ntime.sleep(30)\n")
    parent = subprocess.Popen([sys.executable, "-c", "import subprocess, sys; "
                               f"subprocess.run([sys.executable, {str(fake)!r}, 'storage'])"],
                              stdout=subprocess.PIPE)
    snap = {}
    try:
        assert parent.stdout.readline().strip() == b"busy"
        cpu = ServerCpu([parent.pid])
        snap = cpu.snapshot()
        roles = sorted(role for role, _ in snap.values())
        assert roles == ["nodes", "nodes", "other"]   # the node's worker is the node's; the top: other
        assert next(sec for role, sec in snap.values() if role == "nodes") >= 0.15
        time.sleep(0.05)
        total, by_role = ServerCpu.delta(snap, cpu.snapshot())
        assert by_role is not None and by_role["nodes"] < 0.1 and total < 0.1
    finally:
        for pid, _ in snap:                         # the fake node (and the parent) by pid
            if pid != parent.pid:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        parent.kill()
        parent.wait()


def test_phase_row_has_cpu_per_op_by_role_and_the_client():
    ph = Phase("small", "PUT", 4096, 8)
    for _ in range(10):
        ph.record(0.01, 4096, None)
    ph.wall, ph.client_cpu, ph.machine_cpu = 1.0, 0.01, 0.1
    assert ph.row(cores=2)["cpu_ms_per_op_by_role"] is None          # server pids unknown
    ph.server_cpu = 0.06
    ph.server_cpu_by_role = {"frontend": 0.02, "nodes": 0.03, "replicas": 0.01, "other": 0.0}
    r = ph.row(cores=2)
    assert r["cpu_ms_per_op_by_role"] == {"frontend": 2.0, "nodes": 3.0, "replicas": 1.0, "other": 0.0,
                                          "client": 1.0}
    assert r["server_cpu_ms_per_op"] == 6.0
    ph.cpu_measured = False                                          # a mixed run's share of one op
    assert ph.row(cores=2)["cpu_ms_per_op_by_role"] is None


# ------------------------------------------------------------------ the report
def _row(workload, op, size, conc, by_role=None, **kw):
    base = dict(workload=workload, op=op, size=size, concurrency=conc, ops=100, errors=0, error_codes={},
                ops_per_s=100.0, mb_per_s=0.4, p50_ms=2.0, p90_ms=3.0, p99_ms=4.0, client_cpu_pct=10.0,
                machine_cpu_pct=50.0, machine_cpu_max_pct=200, server_cpu_ms_per_op=3.0,
                cpu_ms_per_op_by_role=by_role)
    base.update(kw)
    return base


SPLIT = {"frontend": 1.25, "nodes": 1.0, "replicas": 0.5, "other": 0.25, "client": 0.5}


def _run(date="2026-12-24 09:00 UTC", put=900.0, get=1000.0, moto_put=200.0, moto_get=250.0):
    mine = [_row("small", "PUT", 4096, 32, SPLIT, ops_per_s=put),
            _row("small", "GET", 4096, 32, dict(SPLIT, nodes=0.0, replicas=0.25), ops_per_s=get),
            _row("large", "PUT", 256 << 20, 1, dict(SPLIT, nodes=120.0), mb_per_s=300.0),
            _row("mixed", "ALL", 4096, 32, SPLIT), _row("mixed", "GET", 4096, 32, None)]
    moto = [_row("small", "PUT", 4096, 32, ops_per_s=moto_put), _row("small", "GET", 4096, 32, ops_per_s=moto_get),
            _row("large", "PUT", 256 << 20, 1, mb_per_s=150.0)]
    return {"machine": {"cpu": "cpu", "cores": 2, "python": "3.11", "platform": "linux", "date": date},
            "command": "make bench", "settings": "small 4 KiB ×32", "moto_version": "5.0",
            "moto_list_keys": [1000], "minis3": mine, "moto": moto, "limits": {}, "ceilings": [],
            "targets": report.targets(mine, moto, {}), "errors": {"minis3": 0, "moto": 0}, "seconds": 60.0}


def _table(md: str, title: str) -> list[str]:
    """The lines of the first Markdown table after the heading ``title``."""
    rest = md.split(title, 1)[1].splitlines()
    start = next(i for i, line in enumerate(rest) if line.startswith("|"))
    end = next((i for i in range(start, len(rest)) if not rest[i].startswith("|")), len(rest))
    return rest[start:end]


def test_report_has_where_the_cpu_goes_with_one_row_per_split_phase():
    md = markdown(_run())
    rows = _table(md, "## Where the CPU goes (ms of CPU per operation, by process)")
    assert rows[0] == ("| workload | op | size | conc | frontend | storage nodes | metadata replicas | other "
                       "| client | total |")
    assert rows[2] == "| small | PUT | 4 KiB | 32 | 1.25 | 1.00 | 0.50 | 0.25 | 0.50 | 3.50 |"
    assert rows[3] == "| small | GET | 4 KiB | 32 | 1.25 | 0.00 | 0.25 | 0.25 | 0.50 | 2.25 |"
    assert rows[4] == "| large | PUT | 256 MiB | 1 | 1.25 | 120 | 0.50 | 0.25 | 0.50 | 122 |"
    assert rows[5].startswith("| mixed | ALL |") and len(rows) == 6    # the mixed GET share: not split


def test_report_without_before_has_no_before_columns():
    md = markdown(_run())
    assert "**Before:**" not in md and "before minis3 ÷ moto" not in md
    assert _table(md, "## Targets")[0] == "| target | value | goal |  | note |"
    assert "| minis3 ÷ moto | errors (minis3/moto) |" in _table(md, "## minis3 and moto_server")[0]


def test_report_with_before_shows_the_earlier_values_and_its_date(tmp_path):
    old = _run(date="2026-12-05 10:17 UTC", put=300.0, get=700.0)
    old["minis3"] = [r for r in old["minis3"] if r["op"] != "GET"]   # no GET row then
    old["targets"] = [t for t in old["targets"] if "GET" not in t["target"]]
    path = tmp_path / "before.json"
    path.write_text(json.dumps(old))
    md = markdown(_run(), load_before(str(path)))
    assert f"`{path}` (`make bench` on 2026-12-05 10:17 UTC" in md
    targets = _table(md, "## Targets")
    assert targets[0] == "| target | value | before | goal |  | note |"
    assert "| 4 KiB PUT ops/s at ×32, minis3 ÷ moto_server | 4.50 | 1.50 | ≥ 3.00 | met |" in targets[2]
    assert "| 4 KiB GET ops/s at ×32, minis3 ÷ moto_server | 4.00 | - | ≥ 4.00 | met |" in targets[3]
    cmp = _table(md, "## minis3 and moto_server")
    assert "| minis3 ÷ moto | before minis3 ÷ moto | errors (minis3/moto) |" in cmp[0]
    assert cmp[2].startswith("| small | PUT | 4 KiB | 32 |") and cmp[2].endswith("| 4.50× | 1.50× | 0 / 0 |")
    assert cmp[3].startswith("| small | GET |") and cmp[3].endswith("| 4.00× | - | 0 / 0 |")
    assert cmp[4].startswith("| large | PUT |") and cmp[4].endswith("| 2.00× | 2.00× | 0 / 0 |")


def test_a_missing_or_foreign_before_file_leaves_the_report_as_it_was(tmp_path):
    assert load_before(str(tmp_path / "absent.json")) is None
    (tmp_path / "bad.json").write_text("{not json")
    assert load_before(str(tmp_path / "bad.json")) is None
    (tmp_path / "other.json").write_text('{"rows": []}')         # a plain `minis3 bench --json`
    assert load_before(str(tmp_path / "other.json")) is None
    assert load_before(None) is None
    assert markdown(_run(), None) == markdown(_run())
