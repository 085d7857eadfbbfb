"""The scrubber on a real cluster: damage found and healed, handoffs moved home, orphans collected.

Every test drives real processes: boto3 against the frontend, `minis3 scrub
--now` and `minis3 chaos` as a user runs them, and bytes flipped or deleted
in the storage nodes' own files.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import random
import shutil
import signal
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest

from minis3.cluster import chaos
from minis3.cluster.supervisor import _cli_args, _spawn, log_dir
from minis3.core.signing import sign_request
from minis3.ec.codec import Codec
from minis3.ec.placement import place
from minis3.rpc import sync
from minis3.storage import blocks

from .cluster import ACCESS_KEY, SECRET_KEY, TestCluster, started_cluster
from .conftest import make_client
from .s3helpers import assert_read_back, empty_every_version

KiB, MiB = 1024, 1024 * 1024


def _put_many(s3, bucket: str, n: int, rng: random.Random, prefix: str = "obj") -> dict[str, bytes]:
    objs = {}
    for i in range(n):
        body = rng.randbytes(rng.randrange(80 * KiB, 3 * MiB // 2))     # erasure-coded: above the inline threshold
        key = f"{prefix}/{i:03d}"
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        objs[key] = body
    return objs


def _azs(c: TestCluster):
    return [(az.name, [n.id for n in az.nodes]) for az in c.topo.azs]


def test_one_pass_finds_and_heals_every_damaged_fragment(hc, hs3):
    rng = random.Random(5)
    hs3.create_bucket(Bucket="heal")
    objs = _put_many(hs3, "heal", 45, rng)
    written_at = time.time()
    recs = hc.records("heal")
    key_of = {r["ec"]["id"]: k for k, r in recs.items()}
    files = hc.fragment_files()

    # Wipe one node's whole data directory (while it runs): it loses one
    # fragment of most objects. Then damage at most one more fragment of any
    # object elsewhere (m = 2): flip a byte in 30, delete 10, and cut 5 short
    # by their last block (which no checksum in the file itself can show).
    wiped = hc.topo.node("b1")
    expected = {(key_of[oid], idx) for (oid, idx), p in files.items() if p.is_relative_to(wiped.data_dir)}
    assert len(expected) >= 10
    for child in wiped.data_dir.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    victims = rng.sample(sorted(key_of), 45)
    flipped = deleted = cut = 0
    codec = Codec(4, 2)
    for oid in victims:
        idx = rng.choice([i for i in range(6) if not files[(oid, i)].is_relative_to(wiped.data_dir)])
        path = files[(oid, idx)]
        if flipped < 30:
            data = bytearray(path.read_bytes())
            at = rng.randrange(len(data))
            data[at] ^= 1 << rng.randrange(8)
            path.write_bytes(bytes(data))
            flipped += 1
        elif deleted < 10:
            path.unlink()
            deleted += 1
        else:
            rec = recs[key_of[oid]]
            frag, last, n_seg = codec.fragment_sizes(rec["size"], rec["ec"]["seg"])
            node = rec["ec"]["nodes"][idx]
            whole = blocks.expected_file_size(oid, idx, node, frag, last, n_seg)
            assert path.stat().st_size == whole
            os.truncate(path, whole - 12 - last)
            cut += 1
        expected.add((key_of[oid], idx))
    assert flipped == 30 and deleted == 10 and cut == 5

    # No reader ever sees wrong bytes: every GET decodes around the damage.
    assert_read_back(hs3, "heal", objs)

    # One pass finds all of it (audit + inventories) and rebuilds all of it
    # (it leaves versions younger than ~1 s to the next pass: let the last be older).
    time.sleep(max(0.0, written_at + 1.5 - time.time()))
    rep = hc.scrub_now()["pass"]
    assert rep["phase"] == "done", rep
    found = {(k.partition("/")[2], idx) for k, idx, why, node in rep["fixed"]}
    assert found == expected
    assert sum(rep["damaged"].values()) == len(expected)
    assert sum(rep["rebuilt"].values()) == len(expected) and "handoff" not in rep["rebuilt"]
    assert rep["not_full"] == 0
    # Corrupt fragments were quarantined (moved aside, kept as evidence), never served.
    assert rep["damaged"].get("quarantined", 0) == 30
    assert rep["damaged"].get("truncated", 0) == 5
    quarantined = [p for n in hc.topo.nodes for p in (n.data_dir / "quarantine").glob("*.json")]
    assert len(quarantined) == 30

    # A second pass finds nothing left to do.
    again = hc.scrub_now()["pass"]
    assert not again["damaged"] and not again["rebuilt"] and again["not_full"] == 0

    # Redundancy really is full again: lose any one AZ, every object still reads.
    for az in [a.name for a in hc.topo.azs]:
        chaos.kill_az(hc.topo, az)
        try:
            assert_read_back(hs3, "heal", objs)
        finally:
            chaos.revive_az(hc.topo, az)
        hc.wait_healthy()


def test_handoff_fragments_return_home_after_an_az_outage(hc, hs3):
    rng = random.Random(7)
    hs3.create_bucket(Bucket="away")
    chaos.kill_az(hc.topo, "az-b")
    azs, node_az = _azs(hc), {n.id: n.az for n in hc.topo.nodes}
    try:
        hc.wait_seen_down("b1", "b2")        # the frontend's prober notices
        objs = _put_many(hs3, "away", 12, rng)
        written = hc.records("away")         # (two metadata replicas answer)
        assert all("az-b" not in {node_az[n] for n in r["ec"]["nodes"]} for r in written.values())
        # Everything is there, on handoff nodes: not full redundancy (the AZ
        # spread is gone). (A pass leaves versions younger than ~1 s to the next.)
        time.sleep(1.5)
        assert hc.scrub_now("--no-audit")["pass"]["not_full"] >= len(objs)
    finally:
        revived = time.time()
        chaos.revive_az(hc.topo, "az-b")
    hc.wait_healthy()

    rep = hc.scrub_now("--no-audit")
    moved = {(k, i) for k, i, why, _ in rep["pass"]["fixed"] if why == "handoff"}
    now = hc.records("away")
    for key, r in now.items():
        assert r["ec"]["nodes"] == place(r["ec"]["id"], azs, 6), key
        per_az = [node_az[n] for n in r["ec"]["nodes"]]
        assert sorted(per_az.count(a) for a in ("az-a", "az-b", "az-c")) == [2, 2, 2]
        assert r.get("pe", 0) >= 1 and r["ts"] == written[key]["ts"]     # same version, new placement
    # Either this pass or the one the node's return started did the moves;
    # the scrubber reports how long full redundancy took after az-b came back.
    recovery = rep["last_recovery"]
    assert recovery and recovery["finished_unix"] > revived and "b1" in recovery["nodes"]
    assert 0 < recovery["seconds"] < time.time() - revived
    assert rep["pass"]["not_full"] == 0
    print(f"\nfull redundancy {recovery['seconds']:.2f} s after az-b answered again "
          f"({len(moved)} fragments moved home by the --now pass, the rest by the pass its return started)")
    assert_read_back(hs3, "away", objs)
    chaos.kill_az(hc.topo, "az-a")          # the spread is real: any AZ can go again
    try:
        assert_read_back(hs3, "away", objs)
    finally:
        chaos.revive_az(hc.topo, "az-a")
    hc.wait_healthy()


def test_a_multipart_object_s_parts_are_scrubbed_like_objects(hc, hs3):
    """A lost fragment of one part of a completed multipart object, and of an
    in-progress upload's part, are both found and rebuilt."""
    from minis3.meta.client import PARTS
    from minis3.scrub.scan import ec_units
    hs3.create_bucket(Bucket="mpscrub")
    rng = random.Random(13)
    parts = [rng.randbytes(5 * MiB), rng.randbytes(3 * MiB)]
    uid = hs3.create_multipart_upload(Bucket="mpscrub", Key="done")["UploadId"]
    done = [{"PartNumber": n, "ETag": hs3.upload_part(Bucket="mpscrub", Key="done", UploadId=uid, PartNumber=n,
                                                       Body=b)["ETag"]} for n, b in enumerate(parts, 1)]
    hs3.complete_multipart_upload(Bucket="mpscrub", Key="done", UploadId=uid, MultipartUpload={"Parts": done})
    open_uid = hs3.create_multipart_upload(Bucket="mpscrub", Key="open")["UploadId"]
    hs3.upload_part(Bucket="mpscrub", Key="open", UploadId=open_uid, PartNumber=1, Body=parts[0])
    manifest = hc.records("mpscrub")["done"]
    _, part2_ec, _ = ec_units(manifest)[1]
    files = hc.fragment_files()
    files[(part2_ec["id"], 3)].unlink()
    open_part = hc.records(PARTS.rstrip("/"))          # the part records' key space
    open_ec = next(r["ec"] for k, r in open_part.items() if k.startswith(open_uid))
    files[(open_ec["id"], 0)].unlink()
    time.sleep(1.2)                  # (a pass leaves versions younger than ~1 s to the next)
    rep = hc.scrub_now("--no-audit")["pass"]
    fixed = {(k, i, why) for k, i, why, *_ in rep["fixed"]}
    assert ("mpscrub/done", 3, "missing") in fixed
    assert (f"{PARTS}{open_uid}/00001", 0, "missing") in fixed
    assert rep["not_full"] == 0
    assert hs3.get_object(Bucket="mpscrub", Key="done")["Body"].read() == b"".join(parts)
    hs3.abort_multipart_upload(Bucket="mpscrub", Key="open", UploadId=open_uid)


def _scrubber_counter(c: TestCluster, name: str) -> float:
    with urllib.request.urlopen(c.topo.scrub.url + "/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
    return 0.0


def _meta_call(c: TestCluster, meta, method: str, path: str, body: dict | None = None) -> dict:
    return sync.call_json(c.topo.cluster_secret, method, meta.url, path, body)


def test_anti_entropy_repairs_replicas_that_disagree(hc, hs3):
    """A version only one replica has (as after a write whose other copies
    were lost) is copied to the other two by the next pass."""
    import base64
    from minis3.core.hlc import HLC
    hs3.create_bucket(Bucket="antientropy")
    hs3.put_object(Bucket="antientropy", Key="k", Body=b"old")
    a, b, c = hc.topo.metas
    # The PUT was acknowledged by two replicas; the third's copy lands in the background.
    deadline = time.monotonic() + 10
    while True:
        held = [_meta_call(hc, m, "GET", "/v/object?bucket=antientropy&key=k")["object"] for m in (a, b, c)]
        if all(held) and len({h["vid"] for h in held}) == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    cur = held[0]
    newer = dict(cur, ts=HLC().now(), vid="only-on-a", inline=base64.b64encode(b"new!").decode(), size=4,
                 etag=hashlib.md5(b"new!").hexdigest())
    for field in ("checksum", "sse", "enc"):        # a record of plaintext bytes (as before encryption)
        newer.pop(field, None)
    assert _meta_call(hc, a, "POST", "/v/object", {"bucket": "antientropy", "key": "k", "record": newer})["applied"]
    before = [_meta_call(hc, m, "GET", "/v/object?bucket=antientropy&key=k")["object"]["vid"] for m in (a, b, c)]
    assert before == ["only-on-a", cur["vid"], cur["vid"]]
    repairs = _scrubber_counter(hc, "minis3_scrub_meta_repairs_total")
    hc.scrub_now("--no-audit")
    # (this pass, or one the scrubber started on its own meanwhile)
    assert _scrubber_counter(hc, "minis3_scrub_meta_repairs_total") >= repairs + 2
    after = [_meta_call(hc, m, "GET", "/v/object?bucket=antientropy&key=k")["object"] for m in (a, b, c)]
    assert all(v == newer for v in after)
    assert hs3.get_object(Bucket="antientropy", Key="k")["Body"].read() == b"new!"


def test_status_and_metrics_show_the_scrubber(hc):
    import json
    import subprocess
    import sys
    hc.scrub_now("--no-audit")
    out = subprocess.run([sys.executable, "-m", "minis3", "status", "--json", "--topology", str(hc.topo_path)],
                         capture_output=True, text=True, timeout=60)
    rows = {r["process"]: r for r in json.loads(out.stdout)}
    assert rows["scrubber"]["up"] and "last pass" in rows["scrubber"]["detail"]
    for url in [hc.topo.scrub.url, hc.topo.metas[0].url, hc.topo.nodes[0].url]:
        with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
            text = r.read().decode()
        assert "minis3_" in text
    with urllib.request.urlopen(hc.topo.scrub.url + "/metrics", timeout=5) as r:
        text = r.read().decode()
    for name in ("minis3_scrub_fragments_rebuilt_total", "minis3_scrub_passes_total",
                 "minis3_gc_orphans_removed_total", "minis3_scrub_last_pass_seconds",
                 "minis3_scrub_redundancy_restored_seconds"):
        assert name in text


def test_every_process_reports_its_background_workers_alike(hc):
    """The scrubber, the index manager, each replica's map sync, each node's audit and the
    frontend's prober and memory trimmer are all rpc/worker.py Workers: running, with
    rounds counted and no failure, in `minis3 status` and in each process's /metrics."""
    import json
    import subprocess
    import sys
    deadline = time.monotonic() + 10
    while True:
        out = subprocess.run([sys.executable, "-m", "minis3", "status", "--json", "--topology", str(hc.topo_path)],
                             capture_output=True, text=True, timeout=60)
        rows = {r["process"]: r for r in json.loads(out.stdout)}
        workers = {(p, w["name"]): w for p, r in rows.items() for w in r.get("workers", [])}
        if all(w["rounds"] >= 1 for w in workers.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    expected = {("scrubber", "scrubber"), ("scrubber", "index-manager")}
    expected |= {(m.id, "map-sync") for m in hc.topo.metas} | {(f"node-{n.id}", "audit") for n in hc.topo.nodes}
    assert expected <= set(workers)
    for where, w in workers.items():
        assert w["running"] and w["rounds"] >= 1 and w["failures"] == 0, (where, w)
    for url, names in [(hc.topo.scrub.url + "/metrics", ("scrubber", "index-manager")),
                       (hc.topo.metas[0].url + "/metrics", ("map-sync",)),
                       (hc.topo.nodes[0].url + "/metrics", ("audit",)),
                       (hc.endpoint + "/_minis3/metrics", ("node-health", "memory-trim"))]:
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
        for name in names:
            assert f'minis3_worker_rounds_total{{worker="{name}"}}' in text, (url, name)
            assert f'minis3_worker_failures_total{{worker="{name}"}} 0.0' in text, (url, name)


# ----------------------------------------------------------------------------- garbage collection
#: The GC grace period of the cluster the GC tests share: each waits it out once or
#: twice. The commit window is a quarter of it (0.75 s): ~18x the slowest commit (first
#: fragment landed to a write quorum, 0.04 s) seen under the racing test's writers on 2 cores.
GRACE = 3.0
#: The grace period of the cluster whose frontend is killed mid-PUT (commit window 2 s): its
#: orphans must still be younger than this at the pass after the frontend's restart, which
#: comes GRACE_KILLED / 4 + ~2 s after they landed (3.6 to 3.9 s measured on 2 cores).
GRACE_KILLED = 8.0


@pytest.fixture(scope="module")
def gc(tmp_path_factory):
    yield from started_cluster(tmp_path_factory, "gc",
                               scrub={"interval_s": 3600, "audit_mb_per_s": 0, "gc_grace_s": GRACE})


@pytest.fixture
def gc_killed(tmp_path_factory):
    """A cluster of the orphan test's own, with the longer grace period it needs (see GRACE_KILLED)."""
    yield from started_cluster(tmp_path_factory, "gc-killed",
                               scrub={"interval_s": 3600, "audit_mb_per_s": 0, "gc_grace_s": GRACE_KILLED})


def _slow_put(c: TestCluster, bucket: str, key: str, first: bytes, rest: bytes,
              query: str = "") -> http.client.HTTPConnection:
    """Send a PUT's headers and the first part of its body; the caller sends the rest."""
    import datetime as dt
    url = f"{c.endpoint}/{bucket}/{key}" + (f"?{query}" if query else "")
    headers = {"Content-Length": str(len(first) + len(rest))}
    headers.update(sign_request("PUT", url, headers, "UNSIGNED-PAYLOAD", ACCESS_KEY, SECRET_KEY, "us-east-1",
                                dt.datetime.now(dt.timezone.utc)))
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    conn.putrequest("PUT", u.path + (f"?{u.query}" if u.query else ""))
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.endheaders()
    conn.send(first)
    return conn


def test_orphans_of_a_frontend_killed_mid_put_are_removed_after_the_grace_period(gc_killed):
    gc = gc_killed
    s3 = make_client(gc.endpoint)
    s3.create_bucket(Bucket="orph")
    rng = random.Random(9)
    keep = _put_many(s3, "orph", 6, rng, prefix="keep")
    before = set(gc.fragment_files())
    # A PUT whose fragments all land but whose commit never happens: the
    # metadata replicas freeze while its body is on the way, then the
    # frontend is killed (kill -9) while it waits for a write quorum.
    body = rng.randbytes(3 * MiB)
    conn = _slow_put(gc, "orph", "victim", body[:MiB], body[MiB:])
    time.sleep(0.5)                                      # the frontend has checked the bucket
    metas = [gc.az_state(az.name)["children"][az.meta.id] for az in gc.topo.azs]
    for pid in metas:
        os.kill(pid, signal.SIGSTOP)
    try:
        conn.send(body[MiB:])
        deadline = time.monotonic() + 30
        while len(set(gc.fragment_files()) - before) < 6:
            assert time.monotonic() < deadline, "the victim's fragments never landed"
            time.sleep(0.05)
        time.sleep(0.5)                                  # its commit is on the way to the replicas
        gc.cluster.frontend.kill()
        gc.cluster.frontend.wait()
        # The dead frontend's commit is still in the frozen replicas' sockets.
        # Thawed after the commit window, they refuse it (StaleCommit): it can
        # never land after GC has judged its fragments.
        time.sleep(GRACE_KILLED / 4 + 0.5)
    finally:
        for pid in metas:
            os.kill(pid, signal.SIGCONT)
        conn.close()
    orphans = set(gc.fragment_files()) - before
    assert len({oid for oid, _ in orphans}) == 1
    gc.cluster.frontend = _spawn(["frontend", *_cli_args(gc.topo)], log_dir(gc.topo) / "frontend.log",
                                 new_group=True)
    gc.wait_healthy()
    with pytest.raises(s3.exceptions.ClientError):
        s3.head_object(Bucket="orph", Key="victim")
    young = gc.scrub_now("--no-audit")["pass"]           # inside the grace period: kept
    assert young["orphans_removed"] == 0 and orphans <= set(gc.fragment_files())
    time.sleep(GRACE_KILLED + 0.5)
    old = gc.scrub_now("--no-audit")["pass"]
    # (more than 6 when the scrubber also moved fragments home earlier: the
    # handoff copies left behind are garbage too)
    assert old["orphans_removed"] >= 6, old
    assert not (orphans & set(gc.fragment_files()))
    assert_read_back(s3, "orph", keep)


def test_a_replica_refuses_a_new_version_older_than_the_commit_window(gc):
    """The replica's half of the GC rule, on a real replica: a commit that
    arrives late (stuck in a socket, a frozen replica thawed) is refused."""
    import json
    from minis3.core.hlc import HLC
    meta = gc.topo.metas[0]
    s3 = make_client(gc.endpoint)
    s3.create_bucket(Bucket="late")
    old_clock = HLC(clock=lambda: int((time.time() - GRACE / 4 - 1) * 1000))
    rec = {"ts": old_clock.now(), "vid": "late", "size": 5, "etag": "x", "mtime": 0,
           "ec": {"id": "0" * 32, "k": 4, "m": 2, "nodes": ["a1"] * 6, "seg": 1 << 20, "segsums": ""}}

    def post(record: dict, commit: bool) -> tuple[int, dict]:
        path = "/v/object"
        status, body = sync.call(gc.topo.cluster_secret, "POST", meta.url, path,
                                 {"bucket": "late", "key": "k", "record": record, "commit": commit})
        return status, json.loads(body)
    status, body = post(rec, commit=True)
    assert (status, body["code"]) == (409, "StaleCommit")
    fresh = dict(rec, ts=HLC().now())
    assert post(fresh, commit=True) == (200, {"applied": True})
    # Repairs (read repair, anti-entropy, catch-up) copy old versions freely.
    # (older than fresh: not kept, and the answer says the stamp it holds: meta/lww.py)
    assert post(dict(rec, vid="repair"), commit=False) == (200, {"applied": False, "newer_ts": fresh["ts"]})
    s3.delete_object(Bucket="late", Key="k")          # (its fragments never existed)


def test_gc_racing_writes_never_removes_a_committed_fragment(gc):
    """Writers overwrite and delete keys (making garbage) while GC passes run
    back to back; afterwards every acknowledged object reads byte for byte and
    the nodes hold exactly the fragments the metadata points at."""
    s3 = make_client(gc.endpoint)
    s3.create_bucket(Bucket="race")
    stop = threading.Event()
    reports: list[dict] = []
    errors: list[BaseException] = []

    def scrub_loop() -> None:
        while not stop.is_set():
            try:
                reports.append(gc.scrub_now("--no-audit")["pass"])
            except BaseException as exc:       # noqa: BLE001 - reported below
                errors.append(exc)
                return

    def writer(w: int, model: dict) -> None:
        rng = random.Random(w)
        client = make_client(gc.endpoint)
        try:
            while not stop.is_set():
                key = f"w{w}/{rng.randrange(8)}"
                if rng.random() < 0.2:
                    client.delete_object(Bucket="race", Key=key)
                    model[key] = None
                else:
                    body = rng.randbytes(rng.randrange(5 * KiB, 700 * KiB))
                    client.put_object(Bucket="race", Key=key, Body=body)
                    model[key] = body
        except BaseException as exc:           # noqa: BLE001
            errors.append(exc)

    models = [dict() for _ in range(3)]
    threads = [threading.Thread(target=scrub_loop)] + \
              [threading.Thread(target=writer, args=(w, models[w])) for w in range(3)]
    for t in threads:
        t.start()
    # Two grace periods at least, and on until a few passes have ended and GC has
    # taken some of the garbage the writers make (a slower machine's passes are slower).
    time.sleep(GRACE * 2)
    deadline = time.monotonic() + 60
    while not (len(reports) >= 3 and sum(r["orphans_removed"] for r in reports) > 0) and not errors \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert len(reports) >= 3
    assert sum(r["orphans_removed"] for r in reports) > 0       # overwrites made garbage, GC took it
    time.sleep(GRACE + 0.5)
    final = gc.scrub_now("--no-audit")["pass"]
    assert final["not_full"] == 0 and not final["damaged"], final
    for model in models:
        for key, body in model.items():
            if body is None:
                with pytest.raises(s3.exceptions.ClientError):
                    s3.head_object(Bucket="race", Key=key)
            else:
                assert s3.get_object(Bucket="race", Key=key)["Body"].read() == body, key
    # Exactly what the metadata points at is left on the nodes.
    assert gc.fragment_locations() == _wanted_fragments(gc, ["race", "late"])


def _wanted_fragments(c: TestCluster, buckets: list[str]) -> set[tuple[str, str, int]]:
    """Every (node, object id, index) a committed object (or a part of one) points at."""
    from minis3.scrub.scan import ec_units
    wanted = set()
    for b in buckets:
        for r in c.records(b).values():
            for _, ec, _ in ec_units(r):
                wanted |= {(node, ec["id"], i) for i, node in enumerate(ec["nodes"])}
    return wanted


def test_multipart_leftovers_and_a_frontend_killed_mid_part_leave_nothing_behind(gc):
    """A frontend killed (kill -9) while a part streams in: the upload is still
    listed, resumes and completes. Parts never completed (an aborted upload, a
    part left out of the completion, a part uploaded twice) leave no fragment
    once GC has run."""
    s3 = make_client(gc.endpoint)
    s3.create_bucket(Bucket="mpu")
    rng = random.Random(11)
    parts = [rng.randbytes(5 * MiB), rng.randbytes(5 * MiB), rng.randbytes(2 * MiB)]
    uid = s3.create_multipart_upload(Bucket="mpu", Key="resumed")["UploadId"]
    etags = {}
    for n in (1, 2):
        etags[n] = s3.upload_part(Bucket="mpu", Key="resumed", UploadId=uid, PartNumber=n, Body=parts[n - 1])["ETag"]
    conn = _slow_put(gc, "mpu", "resumed", parts[2][:MiB], parts[2][MiB:], query=f"partNumber=3&uploadId={uid}")
    time.sleep(0.3)
    gc.cluster.frontend.kill()
    gc.cluster.frontend.wait()
    conn.close()
    gc.cluster.frontend = _spawn(["frontend", *_cli_args(gc.topo)], log_dir(gc.topo) / "frontend.log",
                                 new_group=True)
    gc.wait_healthy()
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket="mpu")["Uploads"]] == [uid]
    assert [p["PartNumber"] for p in s3.list_parts(Bucket="mpu", Key="resumed", UploadId=uid)["Parts"]] == [1, 2]
    etags[3] = s3.upload_part(Bucket="mpu", Key="resumed", UploadId=uid, PartNumber=3, Body=parts[2])["ETag"]
    s3.upload_part(Bucket="mpu", Key="resumed", UploadId=uid, PartNumber=4, Body=b"left out")
    s3.upload_part(Bucket="mpu", Key="resumed", UploadId=uid, PartNumber=2, Body=parts[1])   # twice
    s3.complete_multipart_upload(Bucket="mpu", Key="resumed", UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": n, "ETag": etags[n]} for n in (1, 2, 3)]})
    assert s3.get_object(Bucket="mpu", Key="resumed")["Body"].read() == b"".join(parts)

    # An upload left in a bucket that is then deleted (S3 drops it with the bucket).
    s3.create_bucket(Bucket="doomed")
    left = s3.create_multipart_upload(Bucket="doomed", Key="k")["UploadId"]
    s3.upload_part(Bucket="doomed", Key="k", UploadId=left, PartNumber=1, Body=rng.randbytes(2 * MiB))
    s3.delete_bucket(Bucket="doomed")

    gone = s3.create_multipart_upload(Bucket="mpu", Key="aborted")["UploadId"]
    s3.upload_part(Bucket="mpu", Key="aborted", UploadId=gone, PartNumber=1, Body=rng.randbytes(3 * MiB))
    s3.abort_multipart_upload(Bucket="mpu", Key="aborted", UploadId=gone)

    # After the grace period: one pass cleans the finished uploads' part
    # records, the next removes every fragment nothing points at any more.
    time.sleep(GRACE + 0.5)
    first = gc.scrub_now("--no-audit")["pass"]
    second = gc.scrub_now("--no-audit")["pass"]
    assert first["parts_cleaned"] >= 6 and first["orphans_removed"] + second["orphans_removed"] > 0
    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert gc.fragment_locations() == _wanted_fragments(gc, buckets)
    assert s3.get_object(Bucket="mpu", Key="resumed")["Body"].read() == b"".join(parts)


def test_every_version_is_scrubbed_kept_and_collected_only_once_removed(gc):
    """Versioning: a version that is not current keeps its
    fragments, the scrubber rebuilds them like any object's, and once every
    version of every key is removed, one grace period later the storage nodes
    hold no fragment of the bucket."""
    s3 = make_client(gc.endpoint)
    s3.create_bucket(Bucket="vgc")
    s3.put_bucket_versioning(Bucket="vgc", VersioningConfiguration={"Status": "Enabled"})
    rng = random.Random(18)
    bodies = {}
    for key in ("a", "b", "c"):
        for _ in range(3):
            body = rng.randbytes(300 * KiB)
            bodies[(key, s3.put_object(Bucket="vgc", Key=key, Body=body)["VersionId"])] = body
    s3.delete_object(Bucket="vgc", Key="c")                    # a marker over three versions
    rows = {k: r for k, r in gc.records("vgc").items() if "\0" in k}
    assert len(rows) == 7                                      # two old versions of a and b, three of c
    ids = {r["ec"]["id"] for r in gc.records("vgc").values() if r.get("ec")}
    assert len(ids) == 9

    # An old version's fragment lost: a pass rebuilds it, as for any object.
    files = gc.fragment_files()
    old = next(r for k, r in rows.items() if k.startswith("a\0"))
    files[(old["ec"]["id"], 0)].unlink()
    time.sleep(GRACE + 0.5)                                     # (versions older than the grace: not fresh)
    rep = gc.scrub_now("--no-audit")["pass"]
    assert any(k.startswith("vgc/a\0") and idx == 0 for k, idx, *_ in rep["fixed"]), rep["fixed"]
    assert (old["ec"]["id"], 0) in gc.fragment_files()
    # Nothing that a version points at was collected.
    assert {oid for _, oid, _ in gc.fragment_locations()} >= ids
    for (key, vid), body in bodies.items():
        assert s3.get_object(Bucket="vgc", Key=key, VersionId=vid)["Body"].read() == body

    # Every version removed: after the grace period nothing of the bucket is left.
    empty_every_version(s3, "vgc")
    s3.delete_bucket(Bucket="vgc")
    time.sleep(GRACE + 0.5)
    gc.scrub_now("--no-audit")
    gc.scrub_now("--no-audit")
    left = {oid for _, oid, _ in gc.fragment_locations()} & ids
    assert not left, left
