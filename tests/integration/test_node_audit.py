"""A real storage node process: audit, quarantine, inventory, GC-safe delete,
a wiped disk, and its /metrics.

One node (a1, continuous audit off) serves most tests; a second (a2) starts
with files already on disk and a continuous audit at a set rate, to measure
the pacing. The tests share a1 and use their own object ids; the one that
wipes a1's data directory runs last.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from minis3 import config
from minis3.rpc.http import client_session
from minis3.storage import blocks
from minis3.storage.client import FragmentError, StorageClient

SECRET = "audit-test-secret"
KiB, MiB = 1 << 10, 1 << 20
A2_RATE = 2.0                  # MB/s of a2's continuous audit
A2_BYTES = 2 * MiB             # on a2's disk before it starts


def start_node(topo_path: Path, node_id: str, log_path: Path) -> subprocess.Popen:
    log = open(log_path, "ab")
    return subprocess.Popen([sys.executable, "-m", "minis3", "storage", "--topology", str(topo_path),
                             "--id", node_id], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def wait_health(url: str, proc: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"node exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(url)


def fragment_file(index: int, payloads: list[bytes], oid: str) -> bytes:
    head = blocks.file_header(index, {"object_id": oid, "index": index, "created_ms": 0, "node": "test"})
    return head + b"".join(blocks.frame(p) for p in payloads)


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    root = tmp_path_factory.mktemp("node-audit")
    base = config.free_base_port()
    t1 = root / "topo1.toml"
    t1.write_text(config.local_toml(base, root / "data", cluster_secret=SECRET, scrub={"audit_mb_per_s": 0}))
    # Same ports, another audit rate: only a2 is started from this one.
    t2 = root / "topo2.toml"
    t2.write_text(config.local_toml(base, root / "data", cluster_secret=SECRET, scrub={"audit_mb_per_s": A2_RATE}))
    topo = config.load(t1)
    a1, a2 = topo.node("a1"), topo.node("a2")
    # a2's files are there before it starts, so its first pass sees them all.
    for i in range(8):
        oid = uuid.uuid4().hex
        path = a2.data_dir / "fragments" / oid[:2] / f"{oid}.0"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(fragment_file(0, [os.urandom(A2_BYTES // 8)], oid))
    procs = [start_node(t1, "a1", root / "a1.log"), start_node(t2, "a2", root / "a2.log")]
    try:
        wait_health(a1.url, procs[0])
        wait_health(a2.url, procs[1])
        yield {"a1": a1, "a2": a2, "root": root}
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture
async def sc(nodes):
    async with client_session(SECRET) as session:
        yield StorageClient(session, {"a1": nodes["a1"].url, "a2": nodes["a2"].url})


async def put(sc: StorageClient, oid: str, idx: int, payloads: list[bytes], node: str = "a1") -> dict:
    async def body():
        for p in payloads:
            yield blocks.frame(p)
    return await sc.put(node, oid, idx, body())


def path_of(node, oid: str, idx: int) -> Path:
    return node.data_dir / "fragments" / oid[:2] / f"{oid}.{idx}"


def flip_in_block(path: Path, block: int) -> None:
    """Flip one byte in the middle of a block's data."""
    raw = bytearray(path.read_bytes())
    _, _, pos = blocks.parse_file_header(bytes(raw))
    for _ in range(block):
        length, _ = blocks.BLOCK_HEAD.unpack_from(raw, pos)
        pos += blocks.BLOCK_HEAD.size + length
    length, _ = blocks.BLOCK_HEAD.unpack_from(raw, pos)
    with open(path, "r+b") as f:                # in place: the same file (inode)
        f.seek(pos + blocks.BLOCK_HEAD.size + length // 2)
        f.write(bytes([raw[pos + blocks.BLOCK_HEAD.size + length // 2] ^ 0x40]))


async def run_pass(sc: StorageClient, node: str, rate: float, timeout: float = 20) -> tuple[int, dict, float]:
    """POST /audit, then poll GET /audit until last_pass.id >= the pass id (the contract)."""
    t0 = time.monotonic()
    pid = (await sc.start_audit(node, rate))["pass"]
    deadline = t0 + timeout
    while True:
        st = await sc.audit_status(node)
        if st["last_pass"] and st["last_pass"]["id"] >= pid:
            return pid, st, time.monotonic() - t0
        assert time.monotonic() < deadline, st
        await asyncio.sleep(0.02)


async def inventory(sc: StorageClient, node: str = "a1", page_size: int = 10000) -> list:
    return await sc.inventory(node, page_size)


async def test_audit_quarantines_exactly_the_flipped_fragment(nodes, sc):
    a1 = nodes["a1"]
    oids = [uuid.uuid4().hex for _ in range(4)]
    for oid in oids:
        for idx in (0, 1):
            got = await put(sc, oid, idx, [os.urandom(10 * KiB), os.urandom(10 * KiB)])
            assert (got["blocks"], got["bytes"]) == (2, 20 * KiB) and got["fsync_ms"] >= 0
    bad = (oids[2], 1)
    flip_in_block(path_of(a1, *bad), 1)

    pid, st, _ = await run_pass(sc, "a1", rate=0)
    assert st["running"] is False and st["pass"] == pid and st["corrupt_found"] == 1
    assert st["files_done"] == st["files_total"] >= 8 and st["last_pass"]["corrupt"] == 1

    items = [q for q in await sc.quarantine("a1") if q["object_id"] in oids]
    assert [(q["object_id"], q["index"], q["detected_by"]) for q in items] == [(bad[0], bad[1], "audit")]
    assert "block 1" in items[0]["problem"]
    qfile = a1.data_dir / "quarantine" / items[0]["file"]
    assert qfile.exists() and qfile.with_name(qfile.name + ".json").exists()
    assert not path_of(a1, *bad).exists()
    listed = {(r[0], r[1]) for r in await inventory(sc)}
    assert {(o, i) for o in oids for i in (0, 1)} - listed == {bad}
    with pytest.raises(FragmentError, match="404"):
        async for _ in sc.get("a1", bad[0], bad[1], 0, 1):
            pass
    got = [d async for d in sc.get("a1", oids[2], 0, 0, 1)]
    assert len(got) == 2                               # its sibling is untouched

    # A second pass finds nothing new.
    _, st, _ = await run_pass(sc, "a1", rate=0)
    assert st["last_pass"]["corrupt"] == 0


async def test_post_during_a_pass_restarts_it_with_a_larger_id(nodes, sc):
    oid = uuid.uuid4().hex
    await put(sc, oid, 0, [os.urandom(256 * KiB)] * 4)     # ≥ 1 MB: > 1 s at 0.5 MB/s
    slow = (await sc.start_audit("a1", 0.5))["pass"]
    await asyncio.sleep(0.2)
    assert (await sc.audit_status("a1"))["running"] is True
    pid, st, _ = await run_pass(sc, "a1", rate=0)
    assert pid > slow and st["last_pass"]["id"] == pid   # the slow pass was abandoned, not recorded


async def test_a_bad_block_is_cut_short_on_read_and_quarantined(nodes, sc):
    a1 = nodes["a1"]
    oid = uuid.uuid4().hex
    await put(sc, oid, 5, [os.urandom(4 * KiB) for _ in range(3)])
    flip_in_block(path_of(a1, oid, 5), 2)
    got = []
    # The node closes the connection at the bad block: the client sees the
    # stream end early (or, depending on timing, the chunked body broken).
    with pytest.raises(FragmentError, match="cut short|payload"):
        async for d in sc.get("a1", oid, 5, 0, 2):
            got.append(d)
    assert len(got) <= 2                               # never the bad block
    items = [q for q in await sc.quarantine("a1") if q["object_id"] == oid]
    assert [(q["index"], q["detected_by"]) for q in items] == [(5, "read")]
    assert "segment 2" in items[0]["problem"]
    with pytest.raises(FragmentError, match="404"):
        async for _ in sc.get("a1", oid, 5, 0, 2):
            pass

    # A bad header: refused at once (409), and quarantined too.
    oid2 = uuid.uuid4().hex
    await put(sc, oid2, 0, [b"data"])
    p = path_of(a1, oid2, 0)
    raw = bytearray(p.read_bytes())
    raw[20] ^= 1                                       # inside the header's JSON
    with open(p, "r+b") as f:
        f.write(raw)
    with pytest.raises(FragmentError, match="409"):
        async for _ in sc.get("a1", oid2, 0, 0, 0):
            pass
    items = [q for q in await sc.quarantine("a1") if q["object_id"] == oid2]
    assert [(q["index"], q["detected_by"]) for q in items] == [(0, "read")]


def test_quarantine_moves_only_the_file_that_was_checked(tmp_path):
    """In-process: a fragment found bad, then replaced at its path by a fresh
    copy (a rebuild's PUT renames a new file over it) before the quarantine
    runs. The finding was about the old file, so the new one stays."""
    from minis3.storage.server import StorageNode
    node = StorageNode("t1", "az-t", tmp_path)
    oid = uuid.uuid4().hex
    path = node.path_for(oid, 0)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"the bad old copy")
    st = path.stat()
    old = (st.st_dev, st.st_ino)
    fresh = tmp_path / "tmp" / "fresh"
    fresh.write_bytes(fragment_file(0, [b"good"], oid))
    os.replace(fresh, path)                           # what fragments.land does
    assert node.quarantine.move(oid, 0, old, "checksum mismatch", "audit") is None
    assert path.exists() and node.quarantine.items() == []
    st = path.stat()
    name = node.quarantine.move(oid, 0, (st.st_dev, st.st_ino), "checksum mismatch", "audit")
    assert name and name.startswith(f"{oid}.0.") and not path.exists()
    [item] = node.quarantine.items()
    assert item == {"object_id": oid, "index": 0, "problem": "checksum mismatch", "detected_by": "audit",
                    "detected_unix": item["detected_unix"], "file": name}
    assert node.quarantine.move(oid, 0, (st.st_dev, st.st_ino), "again", "read") is None    # already gone
    assert node.quarantine.count() == 1


async def test_delete_keeps_a_fragment_younger_than_min_age(nodes, sc):
    a1 = nodes["a1"]
    oid = uuid.uuid4().hex
    await put(sc, oid, 3, [b"young"])
    assert await sc.delete("a1", oid, 3, min_age_s=60) is False
    assert path_of(a1, oid, 3).exists()
    async with sc.session.delete(f"{a1.url}/fragment/{oid}/3?min_age_s=60") as r:
        body = await r.json()
        assert r.status == 409 and body["code"] == "TooYoung" and 0 <= body["age_s"] < 60
    assert await sc.delete("a1", oid, 3, min_age_s=0) is True
    assert not path_of(a1, oid, 3).exists()
    assert await sc.delete("a1", oid, 3, min_age_s=0) is True      # idempotent
    await put(sc, oid, 4, [b"plain"])
    assert await sc.delete("a1", oid, 4) is True                     # no min_age: as before


async def test_inventory_pages_and_status(nodes, sc):
    oid = "0" * 31 + "1"                 # sorts first
    for idx in (2, 10, 1):
        await put(sc, oid, idx, [b"x" * 100])
    rows = await inventory(sc)
    assert rows == sorted(rows, key=lambda r: (r[0], r[1]))
    assert [(r[0], r[1], r[2]) for r in rows[:3]] == [(oid, i, path_of(nodes["a1"], oid, i).stat().st_size)
                                                      for i in (1, 2, 10)]
    assert all(0 <= r[3] < 60 for r in rows)
    assert [r[:3] for r in await inventory(sc, page_size=2)] == [r[:3] for r in rows]   # ages move on
    async with sc.session.get(f"{nodes['a1'].url}/inventory?limit=2") as r:
        page = await r.json()
        assert page["next"] == f"{oid}.2" and len(page["fragments"]) == 2
    async with sc.session.get(f"{nodes['a1'].url}/inventory?after=..%2Fx") as r:
        assert r.status == 400
    st = await sc.status("a1")
    assert st["stats"]["fragments_written"] >= 3 and "last_pass" in st["audit"]


def test_metrics_need_no_signature_and_count(nodes):
    url = nodes["a1"].url
    with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
        text = r.read().decode()
    for name in ("minis3_audit_bytes_verified_total", "minis3_audit_fragments_verified_total",
                 'minis3_audit_corrupt_fragments_total{detected_by="audit"}',
                 'minis3_audit_corrupt_fragments_total{detected_by="read"}',
                 "minis3_audit_passes_total", "minis3_audit_last_pass_seconds",
                 "minis3_fragments_quarantined", "minis3_storage_fragments_written_total",
                 "minis3_storage_bytes_read_total", "minis3_storage_fragments_deleted_total"):
        assert name in text, name
    values = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
              if line and not line.startswith("#")}
    assert values["minis3_storage_fragments_written_total"] >= 1
    assert values["minis3_audit_passes_total"] >= 1      # the tests before ran passes
    assert values["minis3_fragments_quarantined"] >= 1
    with pytest.raises(urllib.error.HTTPError) as e:      # everything else is signed
        urllib.request.urlopen(url + "/inventory", timeout=5)
    assert e.value.code == 403


async def test_audit_rate_is_honoured(nodes, sc):
    """A requested pass at 2 MB/s over ~3 MB (an unpaced one reads it in a few hundredths
    of a second), and a2's continuous audit at A2_RATE over what was on its disk: each
    takes about bytes / rate."""
    for _ in range(2):        # with what the tests before left: ~3 MB
        await put(sc, uuid.uuid4().hex, 0, [os.urandom(256 * KiB) for _ in range(4)])
    _, st, _ = await run_pass(sc, "a1", rate=0)
    total = st["last_pass"]["bytes"]
    assert total >= 2 * MiB
    print(f"\naudit unlimited: {total / 1e6:.1f} MB in {st['last_pass']['seconds']:.3f}s "
          f"({total / 1e6 / max(st['last_pass']['seconds'], 1e-6):.0f} MB/s)")
    _, st, wall = await run_pass(sc, "a1", rate=2)
    expected = st["last_pass"]["bytes"] / 1e6 / 2
    print(f"audit at 2 MB/s: {st['last_pass']['bytes'] / 1e6:.2f} MB in {wall:.2f}s (expected {expected:.2f}s)")
    # Paced: never faster than the rate allows (a slow machine only makes it slower,
    # so no upper bound is asserted: timing belongs to benchmarks, not tests).
    assert wall >= 0.6 * expected
    assert 0.6 * expected <= st["last_pass"]["seconds"] <= wall

    # a2 audits on its own from start-up; its first pass saw all 8 files.
    deadline = time.monotonic() + 60                     # a wait, not a timing: CI may be slow
    while True:
        st2 = await sc.audit_status("a2")
        lp = st2["last_pass"]
        if lp and lp["files"] == 8:
            break
        assert time.monotonic() < deadline, st2
        await asyncio.sleep(0.1)
    expected2 = lp["bytes"] / 1e6 / A2_RATE
    print(f"a2 continuous at {A2_RATE} MB/s: {lp['bytes'] / 1e6:.2f} MB in {lp['seconds']:.2f}s "
          f"(expected {expected2:.2f}s)")
    assert lp["bytes"] >= A2_BYTES and lp["seconds"] >= 0.6 * expected2
    assert lp["corrupt"] == 0 and st2["continuous_mb_per_s"] == A2_RATE


async def test_the_continuous_audit_yields_to_fragment_traffic_but_keeps_going(nodes, sc):
    """While a2 takes fragment PUTs, its continuous audit runs at the busy share of its
    rate (yielding) and still checks bytes; once the traffic stops, it is back to its rate."""
    stop = asyncio.Event()

    async def traffic():
        while not stop.is_set():
            await put(sc, uuid.uuid4().hex, 0, [os.urandom(64 * KiB)], node="a2")

    load = asyncio.ensure_future(traffic())
    try:
        deadline = time.monotonic() + 30                 # a wait, not a timing
        while True:
            st = await sc.audit_status("a2")
            if st["yielding"] and st["bytes_yielding"] > 0:
                break
            assert time.monotonic() < deadline, st
            await asyncio.sleep(0.05)
        assert st["node_busy"] and st["busy_share"] == config.ScrubSpec().audit_busy_share < 1
    finally:
        stop.set()
        await load
    deadline = time.monotonic() + 30
    while True:
        st = await sc.audit_status("a2")
        if not st["node_busy"]:
            break
        assert time.monotonic() < deadline, st
        await asyncio.sleep(0.05)
    assert not st["yielding"]


async def test_a_wiped_data_directory_is_survived(nodes, sc):
    """rm -rf <data_dir>/* under a running node: it keeps answering, and
    the next PUT recreates what it needs. (Runs last: it empties a1.)"""
    a1 = nodes["a1"]
    for child in a1.data_dir.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    assert await inventory(sc) == []
    assert await sc.quarantine("a1") == []
    _, st, _ = await run_pass(sc, "a1", rate=0)
    assert st["last_pass"]["files"] == 0
    assert (await sc.status("a1"))["fragments"] == 0
    oid = uuid.uuid4().hex
    got = await put(sc, oid, 7, [b"after the wipe"])
    assert (got["blocks"], got["bytes"]) == (1, 14)
    assert [(r[0], r[1]) for r in await inventory(sc)] == [(oid, 7)]
    assert [d async for d in sc.get("a1", oid, 7, 0, 0)] == [b"after the wipe"]
