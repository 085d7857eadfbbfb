"""Disk faults in a real cluster, caused the way a learner causes them
(``minis3 chaos disk-full``, ``disk-errors``, ``slow-disk``, ``heal``), under a
boto3 workload whose acknowledged operations are checked afterwards
(chaos_workload.py): a full storage node's fragments go to handoff nodes and
come home once it is healed; a full metadata disk leaves the quorum going on;
a cluster with no room anywhere answers 503 and loses nothing; a failing disk
is read around and its unreadable fragments rebuilt; a slow one stops getting
new fragments."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from minis3.rpc import sync

from .chaos_workload import Workload, client
from .crash_sweep import put_table

#: Seconds a fault lasts under the workload: short in `make test` (2 s: some 60 to 170
#: PUTs a fault on 2 cores, every one acknowledged, against the 95% asserted), longer in
#: `make chaos` (MINIS3_CHAOS_SECONDS), which also writes what each fault did to
#: docs/faults-disk.json (MINIS3_CHAOS_ALL=1) for docs/faults.md's table.
SECONDS = max(2.0, float(os.environ.get("MINIS3_CHAOS_SECONDS", "2")))
RESULTS: dict[str, dict] = {}
DOCS = Path(__file__).resolve().parents[2] / "docs"
TABLE_BEGIN = "<!-- disk-faults table: made by tests/integration/test_disk_faults.py from docs/faults-disk.json -->"
TABLE_END = "<!-- end of disk-faults table -->"

KiB = 1024
#: Above the inline threshold (64 KiB), so the bytes go to storage nodes as
#: fragments; the first ones fit one segment (handed off from memory), the last is
#: several (a stream: a failed fragment fails the attempt and boto3 retries it).
EC_SIZES = [100 * KiB, 300 * KiB, 900 * KiB, 2_500_000]


def chaos(c, *args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "minis3", "chaos", *args, "--topology", str(c.topo_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def health(c, node_id: str) -> dict:
    return sync.call_json(c.topo.cluster_secret, "GET", c.topo.node(node_id).url, "/health")


def frontend_sees_full(c) -> list[str]:
    """The lines of the frontend's metrics saying a node is full."""
    with urllib.request.urlopen(c.endpoint + "/_minis3/metrics", timeout=5) as r:
        text = r.read().decode()
    return [line for line in text.splitlines() if line.startswith("minis3_storage_node_full{")
            and not line.endswith(" 0.0")]


def disk_state(c, url: str) -> dict:
    return sync.call_json(c.topo.cluster_secret, "GET", url, "/failpoints")["disk"]


def wait_for(what: str, ok, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while not (got := ok()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return got


def workload(c, bucket: str, sizes=EC_SIZES, workers: int = 3) -> Workload:
    wl = Workload(lambda: client(c.endpoint), bucket, workers=workers, keys_per_worker=8, sizes=sizes,
                  list_page=5)
    wl.start()
    return wl


def finish(c, wl: Workload) -> Workload:
    wl.stop()
    wl.final_check(client(c.endpoint))
    assert wl.violations == [], wl.violations[:5]
    return wl


def ok_fraction(wl: Workload, op: str, since: float, until: float) -> float:
    ops = [o for o in wl.ops if o.op == op and since <= o.t < until]
    assert ops, f"no {op} between those times"
    return sum(o.ok for o in ops) / len(ops)


def latency(wl: Workload, op: str, since: float, until: float) -> dict:
    """p50 and p99 (ms) of the acknowledged ``op``s started in that window."""
    lat = sorted(o.seconds for o in wl.ops if o.op == op and o.ok and since <= o.t < until)
    if not lat:
        return {"p50_ms": None, "p99_ms": None}
    pick = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 1)   # noqa: E731
    return {"p50_ms": pick(0.50), "p99_ms": pick(0.99)}


def record(fault: str, wl: Workload, since: float, until: float, recover_s: float | None, **extra) -> None:
    """What one fault did to the workload while it lasted, for docs/faults.md."""
    ops = [o for o in wl.ops if since <= o.t < until]
    RESULTS[fault] = {"operations": len(ops), "failed": sum(not o.ok for o in ops),
                      "anomalies": len(wl.violations), "seconds": round(until - since, 1),
                      "recover_s": None if recover_s is None else round(recover_s, 2), **extra}
    print(f"{fault}: {json.dumps(RESULTS[fault])}")


def what_else(r: dict) -> str:
    """A result's other measurements, in words (a slow disk's latencies before,
    while and once it is seen slow)."""
    if "before" in r:
        def p99(phase: str, op: str) -> str:
            return f"{r[phase][op]['p99_ms']:g}"
        return (f"seen slow after {r['seen_slow_s']:g} s; p99 before / during / once seen slow: "
                + "; ".join(f"{op} {p99('before', op)} / {p99('during', op)} / {p99('after_seen', op)} ms"
                            for op in ("PUT", "GET")))
    parts = []
    if "moved_home" in r:
        parts.append(f"{r['moved_home']} fragments moved home after the heal")
    if "eio" in r:
        parts.append("EIO: " + ", ".join(f"{n} {op.split()[0]}s" for op, n in sorted(r["eio"].items()))
                     + f"; {r['rebuilt']} fragments rebuilt after the heal")
    if "note" in r:
        parts.append(r["note"])
    return "; ".join(parts)


def render_table(doc: dict) -> str:
    """docs/faults.md's disk-fault table, from docs/faults-disk.json."""
    lines = [f"Last run (`make chaos`): {doc['when']}, {doc['seconds_per_fault']:g} s a fault under the workload.", "",
             "| fault | operations | failed | anomalies | time to recover | what else |",
             "|---|---:|---:|---:|---:|---|"]
    for fault, r in doc["faults"].items():
        recover = "-" if r["recover_s"] is None else f"{r['recover_s']:.1f} s"
        lines.append(f"| {fault} | {r['operations']} | {r['failed']} | {r['anomalies']} | {recover} | "
                     f"{what_else(r)} |")
    return "\n".join(lines)


@pytest.fixture(scope="module", autouse=True)
def results_file():
    """With MINIS3_CHAOS_ALL=1 (`make chaos`) and every fault run: the results
    to docs/faults-disk.json and their table into docs/faults.md."""
    yield
    if os.environ.get("MINIS3_CHAOS_ALL") == "1" and len(RESULTS) == 5:
        doc = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "seconds_per_fault": SECONDS,
               "faults": RESULTS}
        (DOCS / "faults-disk.json").write_text(json.dumps(doc, indent=1) + "\n")
        put_table(DOCS / "faults.md", render_table(doc), TABLE_BEGIN, TABLE_END)


def nodes_of(c, bucket: str, written_after_ms: int) -> list[list[str]]:
    """The fragment nodes of every erasure-coded record of ``bucket`` stamped after then."""
    return [r["ec"]["nodes"] for r in c.records(bucket).values()
            if r.get("ec") and r.get("mtime", 0) > written_after_ms]


@pytest.fixture
def healed(hc):
    """Every disk healthy again after the test, whatever it left."""
    yield
    chaos(hc, "heal", "all")


def test_a_full_node_gets_no_fragments_and_they_come_home_when_it_is_healed(hc, hs3, healed):
    hs3.create_bucket(Bucket="full-node")
    wl = workload(hc, "full-node")
    time.sleep(2)
    said = chaos(hc, "disk-full", "b1")
    assert "node-b1" in said and "ENOSPC" in said
    full_at, full_ms = time.monotonic(), int(time.time() * 1000)
    wait_for("b1 to say its disk is full", lambda: health(hc, "b1")["full"])
    wait_for("the frontend to know it", lambda: frontend_sees_full(hc) == ['minis3_storage_node_full{node="b1"} 1.0'])
    status = subprocess.run([sys.executable, "-m", "minis3", "status", "--topology", str(hc.topo_path)],
                            capture_output=True, text=True, timeout=60).stdout
    b1 = next(line for line in status.splitlines() if line.startswith("node-b1 "))
    assert "DISK FAULT: full" in b1 and "disk FULL, refusing writes" in b1, b1
    time.sleep(SECONDS)
    healed_at = time.monotonic()
    # PUTs went on: those that met the full disk were handed off (one segment) or
    # retried by boto3 (a stream); none of the records written since points at b1.
    assert ok_fraction(wl, "PUT", full_at, healed_at) >= 0.95
    assert ok_fraction(wl, "GET", full_at, healed_at) >= 0.95
    since = nodes_of(hc, "full-node", full_ms + 1500)
    assert since and not [n for n in since if "b1" in n]
    # A scrub pass while b1 is full reads from it but writes nothing there: no
    # fragment moved home to it, and no repair tried and failed.
    during = hc.scrub_now("--no-audit")["pass"]
    assert during["nodes_full"] == ["b1"] and "handoff" not in during["rebuilt"], during
    assert during["repair_failures"] == 0 and not during["unrepairable"], during
    assert disk_state(hc, hc.topo.node("b1").url)["hits"].get("write ENOSPC", 0) >= 1
    assert "node-b1: disk healed" in chaos(hc, "heal", "b1")
    wait_for("b1 to take writes again", lambda: not health(hc, "b1")["full"], timeout=10)
    wait_for("the frontend to see it", lambda: not frontend_sees_full(hc), timeout=5)
    writable_s = time.monotonic() - healed_at
    finish(hc, wl)
    # The scrubber moves the handed-off fragments home to b1.
    t0 = time.monotonic()
    report = hc.scrub_now("--no-audit")["pass"]
    assert report["rebuilt"].get("handoff", 0) >= 1, report
    moved_home = [r for r in hc.records("full-node").values() if r.get("ec") and "b1" in r["ec"]["nodes"]]
    assert moved_home
    record("disk-full b1 (a storage node)", wl, full_at, healed_at, writable_s + time.monotonic() - t0,
           moved_home=report["rebuilt"]["handoff"])


def test_a_full_metadata_disk_leaves_the_quorum_writing(hc, hs3, healed):
    hs3.create_bucket(Bucket="full-meta")
    wl = workload(hc, "full-meta", sizes=[0, 100, 5000])
    time.sleep(1.5)
    chaos(hc, "disk-full", "meta-az-c")
    full_at = time.monotonic()
    time.sleep(SECONDS)
    until = time.monotonic()
    assert ok_fraction(wl, "PUT", full_at, until) >= 0.95
    meta_url = next(m.url for m in hc.topo.all_metas if m.id == "meta-az-c")
    assert disk_state(hc, meta_url)["hits"].get("write ENOSPC", 0) >= 1
    chaos(hc, "heal", "meta-az-c")
    # Healed, it acknowledges writes again at once (its WAL cut every failed batch off).
    wrote = len(disk_state(hc, meta_url)["hits"])
    time.sleep(1.5)
    finish(hc, wl)
    assert len(disk_state(hc, meta_url)["hits"]) == wrote
    record("disk-full meta-az-c (a metadata replica)", wl, full_at, until, 0.0)


def meta_partitions(c, url: str) -> list[dict]:
    return sync.call_json(c.topo.cluster_secret, "GET", url, "/status")["partitions"]


def wal_commits(c, url: str) -> dict[str, tuple[int, int]]:
    """Each object partition's (group commits, of them written on the event
    loop's thread) at a metadata process."""
    return {p["id"]: (p["wal_syncs"], p["wal_syncs_on_loop"]) for p in meta_partitions(c, url)}


def test_a_slow_metadata_disk_takes_its_group_commits_off_the_event_loop(hc, hs3, healed):
    """A replica writes a partition's group commits on its event loop's own
    thread while the disk is quick, in a worker thread after a slow one
    (meta/wal.py): on a slow disk one commit a partition stalls the loop, the
    rest go to the thread while the quorum goes on acknowledging; healed, they
    come back to the loop once the disk has been quick for a while. Every
    write reads back. (Background work may commit in other partitions
    meanwhile: the assertions hold for each.)"""
    hs3.create_bucket(Bucket="slow-meta")
    url = next(m.url for m in hc.topo.all_metas if m.id == "meta-az-c")
    home = next(p["id"] for p in meta_partitions(hc, url)       # the partition of slow-meta's keys
                if p["lo"] <= "slow-meta/k/" and (p["hi"] is None or "slow-meta/k/~" < p["hi"]))
    keys: list[str] = []

    def put() -> None:
        keys.append(f"k/{len(keys):04d}")
        hs3.put_object(Bucket="slow-meta", Key=keys[-1], Body=keys[-1].encode())

    def grew(before: dict, after: dict, i: int) -> dict[str, int]:
        return {pid: after[pid][i] - before.get(pid, (0, 0))[i] for pid in after}

    def put_until_on_loop(what: str) -> None:
        """PUTs one at a time (a commit each) until their partition commits on its loop."""
        before = wal_commits(hc, url)
        for _ in range(300):
            put()
            if grew(before, wal_commits(hc, url), 1)[home]:
                return
        raise AssertionError(f"300 PUTs and still not {what}")

    def settled() -> dict:
        """Its counts once its last commit is written (it may trail the quorum)."""
        def unchanged():
            before = wal_commits(hc, url)
            time.sleep(0.3)
            return wal_commits(hc, url) == before and before
        return wait_for("meta-az-c's commits to settle", unchanged)

    put_until_on_loop("committing on its loop")
    quick = settled()
    chaos(hc, "slow-disk", "meta-az-c", "300ms")
    for _ in range(6):
        put()                                              # acknowledged by meta-az-a and -b
    wait_for("meta-az-c to write its slow commits", lambda: grew(quick, wal_commits(hc, url), 0)[home] >= 3)
    slow = settled()
    on_loop, commits = grew(quick, slow, 1), grew(quick, slow, 0)
    assert all(n <= 1 for n in on_loop.values()), on_loop      # a partition's first slow one, then none
    assert on_loop[home] == 1 and commits[home] - on_loop[home] >= 2, (on_loop, commits)
    chaos(hc, "heal", "meta-az-c")
    put_until_on_loop("committing on its loop again")
    assert grew(slow, settled(), 0)[home] > 32, slow          # 32 quick ones in the thread first
    for key in keys:
        assert hs3.get_object(Bucket="slow-meta", Key=key)["Body"].read() == key.encode()


def test_a_cluster_with_no_room_anywhere_answers_503_and_loses_nothing(hc, hs3, healed):
    hs3.create_bucket(Bucket="no-room")
    kept = {"small": os.urandom(3000), "large": os.urandom(700 * KiB)}
    for key, data in kept.items():
        hs3.put_object(Bucket="no-room", Key=key, Body=data)
    chaos(hc, "disk-full", "all")
    no_retries = client(hc.endpoint, retries={"max_attempts": 1, "mode": "standard"})
    for key, size in (("new-small", 3000), ("new-large", 700 * KiB)):
        with pytest.raises(ClientError) as exc:
            no_retries.put_object(Bucket="no-room", Key=key, Body=os.urandom(size))
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503, key
        assert exc.value.response["Error"]["Code"] in ("ServiceUnavailable", "SlowDown"), key
    for key, data in kept.items():                   # reads go on from the full disks
        assert hs3.get_object(Bucket="no-room", Key=key)["Body"].read() == data
    t0 = time.monotonic()
    chaos(hc, "heal", "all")
    wait_for("every node to take writes", lambda: not any(health(hc, n.id)["full"] for n in hc.topo.nodes))
    wait_for("the frontend to see it (its next probe round)", lambda: not frontend_sees_full(hc), timeout=5)
    recover_s = time.monotonic() - t0
    hs3.put_object(Bucket="no-room", Key="new-large", Body=b"x" * (700 * KiB))
    assert hs3.get_object(Bucket="no-room", Key="new-large")["Body"].read() == b"x" * (700 * KiB)
    assert {o["Key"] for o in hs3.list_objects_v2(Bucket="no-room")["Contents"]} == {"small", "large", "new-large"}
    RESULTS["disk-full all (no room anywhere)"] = {"operations": 6, "failed": 2, "anomalies": 0, "seconds": None,
                                                   "recover_s": round(recover_s, 2),
                                                   "note": "both PUTs answered 503; both objects stored before read back"}


def test_a_failing_disk_is_read_around_and_what_it_cannot_read_is_rebuilt(hc, hs3, healed):
    hs3.create_bucket(Bucket="failing")
    wl = workload(hc, "failing")
    time.sleep(2)
    chaos(hc, "disk-errors", "a2", "30%")
    t0 = time.monotonic()
    time.sleep(SECONDS)
    until = time.monotonic()
    assert ok_fraction(wl, "GET", t0, until) >= 0.95
    assert ok_fraction(wl, "PUT", t0, until) >= 0.95        # its fragments went to other nodes
    assert health(hc, "a2")["failing"]
    finish(hc, wl)
    hits = disk_state(hc, hc.topo.node("a2").url)["hits"]
    assert hits.get("read EIO", 0) + hits.get("write EIO", 0) + hits.get("sync EIO", 0) >= 1, hits
    # The audit, still on the failing disk, moves aside what it cannot read; healed,
    # the scrubber rebuilds those fragments and every object is whole again.
    sync.call_json(hc.topo.cluster_secret, "POST", hc.topo.node("a2").url, "/audit", {})
    chaos(hc, "heal", "a2")
    healed_at = time.monotonic()
    first = hc.scrub_now()["pass"]
    assert not first["unrepairable"], first
    again = hc.scrub_now()["pass"]
    assert not again["unrepairable"] and sum(again["damaged"].values()) == 0, again
    record("disk-errors a2 30%", wl, t0, until, time.monotonic() - healed_at,
           eio={k: v for k, v in hits.items() if "EIO" in k}, rebuilt=sum(first["rebuilt"].values()))


def test_a_slow_disk_gets_no_new_fragments_once_it_is_seen_slow(hc, hs3, healed):
    """Hedged reads bound a GET's wait on the slow node; handoff stops PUTs
    waiting on it once its sync times show it slow. The latencies of both
    phases go to the results (docs/faults.md); the test checks the placement."""
    hs3.create_bucket(Bucket="slow")
    wl = workload(hc, "slow", sizes=[100 * KiB, 300 * KiB, 900 * KiB])
    time.sleep(1)
    base_at = time.monotonic()
    time.sleep(SECONDS)
    slow_at = time.monotonic()
    chaos(hc, "slow-disk", "c2", "200ms")
    wait_for("c2 to report slow syncs", lambda: health(hc, "c2")["sync_ms"] > 100)
    seen_s = time.monotonic() - slow_at
    time.sleep(1.0)                                    # a probe round of every frontend
    after_ms = int(time.time() * 1000)
    time.sleep(SECONDS)
    until = time.monotonic()
    placed = nodes_of(hc, "slow", after_ms)
    assert placed and not [n for n in placed if "c2" in n]
    chaos(hc, "heal", "c2")
    healed_at = time.monotonic()
    wait_for("c2 to be seen fast again", lambda: health(hc, "c2")["sync_ms"] < 50, timeout=30)
    finish(hc, wl)
    record("slow-disk c2 200ms", wl, slow_at, until, time.monotonic() - healed_at, seen_slow_s=round(seen_s, 2),
           before={op: latency(wl, op, base_at, slow_at) for op in ("PUT", "GET")},
           during={op: latency(wl, op, slow_at, until) for op in ("PUT", "GET")},
           after_seen={op: latency(wl, op, slow_at + seen_s + 1.0, until) for op in ("PUT", "GET")})
