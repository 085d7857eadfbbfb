"""Failpoints: the spec language (core/failpoints.py), the points counting down
and acting in a process (rpc/failpoints.py), the admin route every internal app
has, and the real sites: a fragment's landing and the WAL's group commit fail
where they are told to, leaving on disk what the point's description says."""
from __future__ import annotations

import ast
import asyncio
import errno
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, strategies as st

import minis3
from minis3.core import failpoints as core
from minis3.core.failpoints import Arm, FailpointSpecError, parse
from minis3.meta.partition import Partition
from minis3.rpc import auth, failpoints
from minis3.storage import fragments

PACKAGE = Path(minis3.__file__).parent


@pytest.fixture(autouse=True)
def disarmed():
    failpoints.reset()
    yield
    failpoints.reset()


# ----------------------------------------------------------------------------- the spec

def test_a_spec_arms_each_entry_with_its_action_and_count():
    entries = parse(" storage.land.before_rename = crash@1 ;meta.wal.before_fdatasync=error*3;"
                    "meta.wal.before_write=sleep(200ms); ;storage.land.before_fsync=error(ENOSPC)@2")
    assert [(e.name, e.arm) for e in entries] == [
        ("storage.land.before_rename", Arm("crash", skip=0, times=1)),
        ("meta.wal.before_fdatasync", Arm("error", skip=0, times=3)),
        ("meta.wal.before_write", Arm("sleep", sleep_s=0.2)),
        ("storage.land.before_fsync", Arm("error", errno_=errno.ENOSPC, skip=1, times=1))]
    assert parse("meta.snapshot.before_rename=sleep(1.5s)")[0].arm.sleep_s == 1.5
    assert parse("meta.wal.before_write=off")[0].arm is None
    assert parse("") == [] and parse(" ; ") == []


@pytest.mark.parametrize("spec, says", [
    ("storage.land.before_renam=crash", "did you mean storage.land.before_rename"),
    ("nowhere=crash", "no failpoint 'nowhere'"),
    ("storage.land.before_rename=explode", "no action 'explode'"),
    ("storage.land.before_rename", "expected NAME=ACTION"),
    ("storage.land.before_rename=crash@0", "N ≥ 1"),
    ("storage.land.before_rename=crash@1@2", "counts are"),
    ("storage.land.before_rename=sleep(200)", "with its unit"),
    ("storage.land.before_rename=sleep", "with its unit"),
    ("storage.land.before_rename=crash(1)", "takes no argument"),
    ("storage.land.before_rename=error(ENOPE)", "errno name"),
    ("storage.land.before_rename=off*2", "off takes no count"),
])
def test_a_wrong_spec_says_what_is_wrong(spec, says):
    with pytest.raises(FailpointSpecError) as exc:
        parse(spec)
    assert says in str(exc.value)


def test_counts_fire_when_they_say_and_then_disarm():
    def fires(arm: Arm | None, hits: int) -> list[bool]:
        out = []
        for _ in range(hits):
            if arm is None:
                out.append(False)
                continue
            fired, arm = core.hit(arm)
            out.append(fired)
        return out

    def arm_of(text: str) -> Arm:
        return parse(f"meta.wal.before_write={text}")[0].arm

    assert fires(arm_of("crash@1"), 3) == [True, False, False]
    assert fires(arm_of("error@3"), 5) == [False, False, True, False, False]
    assert fires(arm_of("error*3"), 5) == [True, True, True, False, False]
    assert fires(arm_of("error@2*2"), 5) == [False, True, True, False, False]
    assert fires(arm_of("sleep(1ms)"), 4) == [True] * 4


def _arm(action: str, sleep_ms: int, err: int, skip: int, times: int | None) -> Arm:
    """An arm a spec can make: a skip comes with a count (``@N``)."""
    return Arm(action, sleep_ms / 1000 if action == "sleep" else 0.0, err if action == "error" else errno.EIO,
               skip=skip if times else 0, times=times)


ARMS = st.builds(_arm, st.sampled_from(["crash", "error", "sleep"]), st.integers(1, 5000),
                 st.sampled_from([errno.EIO, errno.ENOSPC]), st.integers(0, 5), st.one_of(st.none(), st.integers(1, 9)))


@given(st.dictionaries(st.sampled_from(sorted(core.POINTS)), ARMS, max_size=4))
def test_what_is_armed_reads_back_as_the_same_arms(armed):
    assert core.apply({}, parse(core.format_spec(armed))) == armed


def test_entries_may_name_a_process_and_off_disarms():
    entries = parse("node-a1:storage.land.before_rename=crash@1;meta-az-b:meta.wal.before_write=error;"
                    "storage.delete.before_unlink=sleep(5ms)")
    mine = core.for_process(entries, "node-a1")
    assert [e.name for e in mine] == ["storage.land.before_rename", "storage.delete.before_unlink"]
    armed = core.apply({}, mine)
    assert core.apply(armed, parse("storage.land.before_rename=off")) == {
        "storage.delete.before_unlink": Arm("sleep", 0.005)}
    assert core.apply(armed, [], replace=True) == {}


def test_every_point_has_one_call_site_and_every_call_site_a_point():
    """The list and the code cannot drift: a point nobody calls would arm and
    never fire; a call naming no listed point could never be armed."""
    sites: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "failpoint"
                    and node.args and isinstance(node.args[0], ast.Constant)):
                sites.setdefault(node.args[0].value, []).append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert {n: s for n, s in sites.items() if n not in core.POINTS} == {}
    assert sorted(n for n in core.POINTS if len(sites.get(n, [])) != 1) == []


# ----------------------------------------------------------------------------- in a process

def test_an_armed_error_raises_eio_the_number_of_times_armed():
    failpoints.failpoint("meta.wal.before_write")                   # nothing armed: nothing happens
    assert failpoints.arm("meta.wal.before_write=error*2") == "meta.wal.before_write=error*2"
    for _ in range(2):
        with pytest.raises(OSError) as exc:
            failpoints.failpoint("meta.wal.before_write")
        assert exc.value.errno == errno.EIO and "meta.wal.before_write" in str(exc.value)
    failpoints.failpoint("meta.wal.before_write")                   # disarmed itself
    got = {p["name"]: p for p in failpoints.status()["points"]}
    assert got["meta.wal.before_write"] == {"name": "meta.wal.before_write", "armed": None, "fired": 2,
                                            "what": core.POINTS["meta.wal.before_write"]}


def test_a_sleep_sleeps_and_a_bad_spec_arms_nothing():
    failpoints.arm("storage.delete.before_unlink=sleep(50ms)")
    t0 = time.monotonic()
    failpoints.failpoint("storage.delete.before_unlink")
    assert time.monotonic() - t0 >= 0.05
    with pytest.raises(FailpointSpecError):
        failpoints.arm("meta.wal.before_write=error;nowhere=crash")
    assert failpoints.status()["armed"] == "storage.delete.before_unlink=sleep(50ms)"
    assert failpoints.arm("", replace=True) == ""


def test_the_environment_arms_this_process_and_a_typo_stops_it(monkeypatch):
    monkeypatch.setenv(failpoints.ENV, "node-b1:meta.wal.before_write=crash;meta-az-a:meta.wal.before_write=error@1")
    failpoints.arm_from_environment("meta-az-a")
    assert failpoints.status()["armed"] == "meta.wal.before_write=error@1"
    monkeypatch.setenv(failpoints.ENV, "meta.wal.before_wrte=error")
    with pytest.raises(SystemExit, match="MINIS3_FAILPOINTS"):
        failpoints.arm_from_environment("meta-az-a")


def test_a_crash_armed_by_the_environment_is_spent_for_the_restarted_process(tmp_path):
    """A supervised process restarts with the same environment: a ``crash@1``
    armed there crashes it once, not at every restart, and ``crash*2`` twice;
    a changed spec starts again."""
    counts = tmp_path / "failpoints-meta-az-a.json"
    code = ("import sys\nfrom pathlib import Path\nfrom minis3.rpc import failpoints as f\n"
            "f.arm_from_environment('meta-az-a', Path(sys.argv[1]))\n"
            "print('armed', f.status()['armed'], flush=True)\n"
            "f.failpoint('meta.wal.before_write')\nprint('passed', flush=True)\n")

    def run(spec: str) -> subprocess.CompletedProcess:
        env = dict(os.environ, **{failpoints.ENV: spec})
        return subprocess.run([sys.executable, "-c", code, str(counts)], capture_output=True, text=True,
                              timeout=60, env=env)
    first = run("meta.wal.before_write=crash@1")
    assert first.returncode == -9 and "passed" not in first.stdout
    again = run("meta.wal.before_write=crash@1")
    assert again.returncode == 0 and "armed \n" in again.stdout and "passed" in again.stdout
    twice = [run("meta.wal.before_write=crash*2") for _ in range(3)]        # a new spec: counted afresh
    assert [r.returncode for r in twice] == [-9, -9, 0]
    assert run("").returncode == 0 and not counts.exists()                 # no spec: the record goes


def test_a_crash_is_a_kill_9_of_the_process_with_one_line_said_first():
    code = ("from minis3.rpc import failpoints as f\n"
            "f.arm('storage.land.before_rename=crash@1')\n"
            "f.failpoint('storage.land.before_rename')\n"
            "print('survived', flush=True)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == -9 and "survived" not in r.stdout
    assert "failpoint storage.land.before_rename: crash" in r.stderr


# ----------------------------------------------------------------------------- the admin route

async def test_every_internal_app_shows_and_arms_its_failpoints_to_signed_callers():
    from minis3.rpc.http import internal_app
    client = TestClient(TestServer(internal_app("k")))
    await client.start_server()
    try:
        async def call(method: str, doc=None):
            body = json.dumps(doc).encode() if doc is not None else None
            r = await client.request(method, "/failpoints", data=body,
                                     headers=auth.headers("k", method, "/failpoints", body))
            return r.status, await r.json()

        assert (await client.get("/failpoints")).status == 403              # unsigned
        status, got = await call("POST", {"spec": "storage.land.before_rename=crash@1"})
        assert status == 200 and got["armed"] == "storage.land.before_rename=crash@1"
        status, got = await call("POST", {"spec": "storage.land.before_rename=crush"})
        assert status == 400 and got["code"] == "InvalidFailpointSpec" and "crush" in got["message"]
        status, got = await call("GET")
        assert status == 200 and got["armed"] == "storage.land.before_rename=crash@1"
        assert {p["name"] for p in got["points"]} == set(core.POINTS)
        status, got = await call("POST", {"spec": "", "replace": True})
        assert status == 200 and got["armed"] == ""
    finally:
        await client.close()


# ----------------------------------------------------------------------------- the real sites

def test_a_fragment_failing_before_its_rename_is_durable_in_tmp_and_absent_at_its_name(tmp_path):
    tmp, final = tmp_path / "tmp" / "f.0.x", tmp_path / "fragments" / "ab" / "f.0"
    failpoints.arm("storage.land.before_rename=error@1")
    with pytest.raises(OSError):
        fragments.land(None, tmp, [b"head", b"blocks"], final, threading.Lock())
    assert tmp.read_bytes() == b"headblocks" and not final.exists()
    fragments.land(None, tmp.with_name("f.0.y"), [b"again"], final, threading.Lock())   # it fired once
    assert final.read_bytes() == b"again"


def test_a_fragment_failing_before_its_fsync_leaves_no_open_file(tmp_path):
    tmp, final = tmp_path / "tmp" / "f.0.x", tmp_path / "fragments" / "ab" / "f.0"
    out = fragments.write_some(None, tmp, [b"first batch"])
    failpoints.arm("storage.land.before_fsync=error@1")
    with pytest.raises(OSError):
        fragments.land(out, tmp, [b"+last"], final, threading.Lock())
    assert out.fd == -1 and not final.exists()


def test_a_wal_error_fails_the_writers_and_applies_nothing(tmp_path):
    p = Partition("p0", "", None, tmp_path)
    failpoints.arm("meta.wal.before_write=error@1")
    with pytest.raises(OSError):
        asyncio.run(p.write("b/lost", {"ts": 1}))
    asyncio.run(p.write("b/kept", {"ts": 2}))
    assert p.get("b/lost") is None and p.get("b/kept") == {"ts": 2}
    p.wal.close()
    assert list(Partition("p0", "", None, tmp_path).table) == ["b/kept"]


def test_a_wal_batch_whose_fdatasync_failed_is_cut_off_and_never_comes_back(tmp_path):
    """The batch was written before its fdatasync failed: it is cut off again
    before its writer hears of the error, so the next batch's fdatasync does not
    make it durable and a restart does not bring back a write answered as failed."""
    p = Partition("p0", "", None, tmp_path)
    failpoints.arm("meta.wal.before_fdatasync=error@1")
    with pytest.raises(OSError):
        asyncio.run(p.write("b/failed", {"ts": 1}))
    asyncio.run(p.write("b/kept", {"ts": 2}))
    assert p.get("b/failed") is None
    p.wal.close()
    assert list(Partition("p0", "", None, tmp_path).table) == ["b/kept"]


def test_a_snapshot_failing_before_its_rename_leaves_no_tmp_file_and_loses_nothing(tmp_path):
    """A snapshot whose rename fails is no snapshot: its .tmp file (the size of
    the whole partition) goes, and the WALs still hold every write."""
    p = Partition("p0", "", None, tmp_path, snapshot_every=3)
    failpoints.arm("meta.snapshot.before_rename=error@1")

    async def go():
        for i in range(4):
            await p.write(f"b/{i}", {"ts": i + 1})
        await p.wal.snapshot_written()
    asyncio.run(go())
    assert failpoints.status()["armed"] == ""                          # it fired
    assert not list(tmp_path.glob("snapshot-*"))
    p.wal.close()
    assert list(Partition("p0", "", None, tmp_path).table) == [f"b/{i}" for i in range(4)]


def test_a_snapshot_cut_short_by_a_crash_leaves_no_tmp_file_after_recovery(tmp_path):
    """A process killed between a snapshot's fsync and its rename leaves the
    .tmp file (the crash sweep found them staying for good: every later
    snapshot has a newer generation, so nothing ever replaced or removed it).
    Recovery removes it, and everything acknowledged is still there."""
    code = ("import asyncio, sys\n"
            "from minis3.meta.partition import Partition\n"
            "from minis3.rpc import failpoints as f\n"
            "p = Partition('p0', '', None, sys.argv[1], snapshot_every=3)\n"
            "f.arm('meta.snapshot.before_rename=crash@1')\n"
            "async def go():\n"
            "    for i in range(4):\n"
            "        await p.write(f'b/{i}', {'ts': i + 1})\n"
            "        print('acknowledged', i, flush=True)\n"
            "    await p.wal.snapshot_written()\n"
            "asyncio.run(go())\n")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == -9 and "failpoint meta.snapshot.before_rename: crash" in r.stderr, r.stderr
    # (The kill can cut the last line short: only whole lines count.)
    acknowledged = [f"b/{words[1]}" for words in map(str.split, r.stdout.splitlines())
                    if len(words) == 2 and words[0] == "acknowledged"]
    assert len(acknowledged) >= 3 and [p.name for p in tmp_path.glob("snapshot-*")] == ["snapshot-000001.tmp"]
    q = Partition("p0", "", None, tmp_path)
    assert set(acknowledged) <= set(q.table)
    assert not list(tmp_path.glob("snapshot-*"))


# ----------------------------------------------------------------------------- disk faults

def test_disk_faults_decide_each_operation():
    healthy = core.DiskFaults()
    assert not healthy and healthy.describe() == "healthy"
    assert all(healthy.outcome(op, 0.0) == (0, 0.0) for op in core.DISK_OPS)
    full = core.DiskFaults(full=True)
    assert full.outcome("write", 0.99) == (errno.ENOSPC, 0.0)
    assert full.outcome("sync", 0.0) == (0, 0.0) and full.outcome("read", 0.0) == (0, 0.0)
    failing = core.DiskFaults(errors=0.25)
    assert [failing.outcome("read", d)[0] for d in (0.0, 0.2499, 0.25, 0.9)] == [errno.EIO, errno.EIO, 0, 0]
    slow = core.DiskFaults(slow_s=0.2)
    assert slow.outcome("sync", 0.5) == (0, 0.2) and slow.outcome("read", 0.5) == (0, 0.2)
    assert slow.outcome("write", 0.5) == (0, 0.0)
    assert core.DiskFaults(True, 0.1, 0.2).describe() == "full, errors 10%, slow 200ms"


@pytest.mark.parametrize("text, rate", [("0.1", 0.1), ("10%", 0.1), ("1/10", 0.1), ("0", 0.0), ("100%", 1.0)])
def test_a_rate_reads_as_a_fraction_a_percentage_or_a_ratio(text, rate):
    assert core.parse_rate(text) == pytest.approx(rate)


@pytest.mark.parametrize("text", ["", "ten", "150%", "-0.1", "1/0"])
def test_a_rate_that_is_not_one_is_refused(text):
    with pytest.raises(FailpointSpecError):
        core.parse_rate(text)


def test_disk_faults_read_from_a_document_and_change_key_by_key():
    f = core.DiskFaults.from_doc({"full": True})
    assert f.merged({"slow_ms": 200}) == core.DiskFaults(True, 0.0, 0.2)
    assert core.DiskFaults.from_doc(None) == core.DiskFaults()
    for bad in ({"errors": 2}, {"slow_ms": -1}, {"errors": "x"}):
        with pytest.raises(FailpointSpecError):
            core.DiskFaults.from_doc(bad)


def test_a_full_disk_refuses_fragment_writes_and_still_reads_them(tmp_path):
    tmp, final = tmp_path / "tmp" / "f.0.x", tmp_path / "fragments" / "ab" / "f.0"
    fragments.land(None, tmp, [b"kept"], final, threading.Lock())
    failpoints.set_disk({"full": True})
    with pytest.raises(OSError) as exc:
        fragments.land(None, tmp.with_name("f.1.x"), [b"refused"], final.with_name("f.1"), threading.Lock())
    assert exc.value.errno == errno.ENOSPC and not final.with_name("f.1").exists()
    assert final.read_bytes() == b"kept"
    with pytest.raises(OSError):
        fragments.probe_write(tmp_path / "tmp")
    failpoints.set_disk(None)
    fragments.probe_write(tmp_path / "tmp")                      # healed: a probe write succeeds
    assert not [p for p in (tmp_path / "tmp").iterdir() if p.name.startswith("probe.")]
    assert failpoints.status()["disk"]["hits"] == {"write ENOSPC": 2}


def test_a_full_disk_fails_a_wal_batch_and_the_replica_takes_writes_again_once_healed(tmp_path):
    p = Partition("p0", "", None, tmp_path)
    failpoints.set_disk({"full": True})
    with pytest.raises(OSError) as exc:
        asyncio.run(p.write("b/refused", {"ts": 1}))
    assert exc.value.errno == errno.ENOSPC
    failpoints.set_disk(None)
    asyncio.run(p.write("b/kept", {"ts": 2}))
    p.wal.close()
    assert list(Partition("p0", "", None, tmp_path).table) == ["b/kept"]


def test_a_slow_disk_delays_syncs_and_reads_not_writes():
    failpoints.set_disk({"slow_ms": 50})
    failpoints.disk("write")
    assert failpoints.status()["disk"]["hits"] == {}                  # a write is not delayed
    t1 = time.monotonic()
    failpoints.disk("sync")
    failpoints.disk("read")
    assert time.monotonic() - t1 >= 0.1                              # slept, both (a lower bound only)
    assert failpoints.status()["disk"]["hits"] == {"sync slow": 1, "read slow": 1}


async def test_the_admin_route_sets_and_heals_disk_faults():
    from minis3.rpc.http import internal_app
    client = TestClient(TestServer(internal_app("k")))
    await client.start_server()
    try:
        async def post(doc):
            body = json.dumps(doc).encode()
            r = await client.post("/failpoints", data=body, headers=auth.headers("k", "POST", "/failpoints", body))
            return r.status, await r.json()
        status, got = await post({"disk": {"full": True}})
        assert status == 200 and got["disk"]["state"] == "full" and got["armed"] == ""
        status, got = await post({"disk": {"errors": 0.5}})
        assert got["disk"]["state"] == "full, errors 50%"
        status, got = await post({"disk": {"errors": 3}})
        assert status == 400 and got["code"] == "InvalidFailpointSpec"
        status, got = await post({"disk": None})
        assert got["disk"]["state"] == "healthy"
    finally:
        await client.close()
