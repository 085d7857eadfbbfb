"""Torn writes in a metadata replica's WAL: cut, zeroed or garbled at every byte.

A power cut can leave the last, unsynced part of a file in any state: cut
anywhere, zero-filled (some file systems extend a file before its data
blocks reach the disk), or holding stale garbage. Whatever it leaves, a
restart must bring back every record that was acknowledged (its batch's
fdatasync had returned) byte for byte, bring back nothing past the first
damaged line, and cut the damage off, so that a write after the restart is
not stranded behind it at the next one.

One history is written once with the real code (a Partition over its WAL,
with a blob log and a snapshot whose lines name payloads in it), then each
test damages copies of its files and recovers them, again with the real code.
"""
from __future__ import annotations

import asyncio
import base64
import logging
import math
import os
import random
import shutil
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minis3.meta import blobs, wal as wal_module
from minis3.meta.blobs import BlobRef, BlobStore
from minis3.meta.partition import Partition
from minis3.meta.wal import decode_line
from minis3.rpc import failpoints

#: Payloads of more than this many base64 characters go to the blob log. The
#: real threshold (512) would make every line ~700 bytes; a smaller one keeps
#: the same code path with lines of ~100, so a loop over every byte stays fast.
SMALL_IN_MEMORY_MAX = 16
#: Payloads of at least this many go to the blob log before their line, which
#: names them (meta/wal.py's BLOB_FIRST, 16 KiB), for the same reason.
SMALL_BLOB_FIRST = 60
ENTRIES_PER_BATCH = 5
BATCHES_BEFORE_SNAPSHOT = 3
BATCHES_AFTER_SNAPSHOT = 5
KEYS = [f"b/k{i}" for i in range(6)]
LATER_TS = 10 ** 9
HEALTH = [HealthCheck.function_scoped_fixture]


@pytest.fixture(autouse=True)
def small_payloads_go_to_the_blob_log(monkeypatch):
    monkeypatch.setattr(blobs, "IN_MEMORY_MAX", SMALL_IN_MEMORY_MAX)
    monkeypatch.setattr(wal_module, "BLOB_FIRST", SMALL_BLOB_FIRST)


@pytest.fixture(autouse=True)
def quiet_recovery(caplog):
    """Every recovery here logs its cut (thousands of warnings)."""
    caplog.set_level(logging.ERROR, logger="minis3.meta.wal")


@dataclass
class History:
    """The files of a replica after acknowledged batches, and what each holds."""
    root: Path
    snapshot_table: dict          # the table the snapshot holds (payloads as base64 text)
    entries: list[dict]           # the WAL's entries in order, as written
    line_ends: list[int]          # the byte offset where each of the WAL's lines ends
    batch_ends: list[int]         # the WAL's size once each batch was acknowledged
    blob_synced: int              # the blob log's size when the snapshot synced it
    blob_durable: int = 0         # its size at its last sync (a group commit's, for the payloads its lines name)

    @property
    def wal(self) -> bytes:
        return (self.root / "p0" / "wal-000001.log").read_bytes()

    @property
    def blob_log(self) -> bytes:
        return (self.root / "blobs" / "blob-000001.dat").read_bytes()

    def expected(self, lines: int) -> dict:
        """The table after the snapshot and the WAL's first ``lines`` lines:
        every write has a newer timestamp than all before it, so the last one wins."""
        table = dict(self.snapshot_table)
        for e in self.entries[:lines]:
            if e["v"] is None:
                table.pop(e["k"], None)              # a hard removal
            else:
                table[e["k"]] = e["v"]
        return table

    def lines_before(self, offset: int) -> int:
        """How many lines end at or before ``offset``: the ones a damage there leaves whole."""
        return sum(1 for end in self.line_ends if end <= offset)

    def lines_intact(self, damaged: bytes) -> int:
        """How many lines come before the first byte ``damaged`` changed (garbage
        may happen to repeat the byte that was there, a newline say)."""
        wal = self.wal
        n = min(len(wal), len(damaged))
        first = next((i for i in range(n) if wal[i] != damaged[i]), n)
        return self.lines_before(first)


def batch(rnd: random.Random, ts: int) -> list[dict]:
    """One group commit's entries: a payload for the blob log, one small
    enough to stay in memory, a delete (a tombstone), a hard removal, and a
    payload big enough to go to the blob log before its line (which names
    it), each of a different key (keys come back across batches:
    overwrites, deletes of what was there)."""
    a, b, c, d, e = rnd.sample(KEYS, ENTRIES_PER_BATCH)

    def inline(key: str, n: int, t: int) -> dict:
        return {"k": key, "v": {"ts": t, "vid": f"v{t}", "size": n,
                                "inline": base64.b64encode(rnd.randbytes(n)).decode()}}
    return [inline(a, rnd.randrange(20, 40), ts), inline(b, rnd.randrange(0, 10), ts + 1),
            {"k": c, "v": {"ts": ts + 2, "vid": f"v{ts + 2}", "deleted": True}},
            {"k": d, "v": None}, inline(e, rnd.randrange(50, 80), ts + 3)]


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> History:
    root = tmp_path_factory.mktemp("history")
    rnd = random.Random(20240611)
    saved = blobs.IN_MEMORY_MAX, wal_module.BLOB_FIRST                     # (module scope: no monkeypatch)
    blobs.IN_MEMORY_MAX, wal_module.BLOB_FIRST = SMALL_IN_MEMORY_MAX, SMALL_BLOB_FIRST
    try:
        return asyncio.run(_write_history(root, rnd))
    finally:
        blobs.IN_MEMORY_MAX, wal_module.BLOB_FIRST = saved


async def _write_history(root: Path, rnd: random.Random) -> History:
    store = BlobStore(root / "blobs")
    synced_at = []
    real_sync = store.sync

    def sync():                                # what a crash cannot take: appended before a sync
        synced_at.append(store.size)
        real_sync()
    store.sync = sync
    p = Partition("p0", "", None, root / "p0", blob_store=store)
    before, after, batch_ends = [], [], []
    ts = 1
    for i in range(BATCHES_BEFORE_SNAPSHOT + BATCHES_AFTER_SNAPSHOT):
        if i == BATCHES_BEFORE_SNAPSHOT:
            p.wal.request_snapshot()
            while p.wal.generation < 1 or p.wal.snapshotting:
                await asyncio.sleep(0.001)
            blob_synced = store.size
        entries = batch(rnd, ts)
        ts += len(entries)
        await asyncio.gather(*(p.write(e["k"], e["v"]) for e in entries))    # acknowledged
        if i < BATCHES_BEFORE_SNAPSHOT:
            before += entries
        else:
            after += entries
            batch_ends.append(p.wal.bytes_in_wal)
    p.wal.close()
    store.close()
    assert sorted(x.name for x in (root / "p0").iterdir()) == ["snapshot-000001.jsonl", "wal-000001.log"]
    snapshot_lines = (root / "p0" / "snapshot-000001.jsonl").read_bytes().splitlines(keepends=True)
    assert any("$ref" in str(decode_line(x)) for x in snapshot_lines)      # it names payloads in the blob log
    wal = (root / "p0" / "wal-000001.log").read_bytes()
    lines = wal.splitlines(keepends=True)
    blob_log = (root / "blobs" / "blob-000001.dat").read_bytes()
    assert [with_payload(decode_line(x), blob_log) for x in lines] == after   # what was written, in order
    named = [x for x in lines if "$ref" in str(decode_line(x))]
    assert len(named) == BATCHES_AFTER_SNAPSHOT                           # each batch's big payload, by name
    assert all(len(x) < 200 for x in named)                              # (not the payload itself)
    h = History(root, {}, after, [], batch_ends, blob_synced, synced_at[-1])
    h.snapshot_table = History(root, {}, before, [], [], 0).expected(len(before))
    h.line_ends = [sum(len(x) for x in lines[:n + 1]) for n in range(len(lines))]
    assert batch_ends[-1] == len(wal) and set(batch_ends) <= set(h.line_ends)
    return h


def with_payload(entry: dict, blob_log: bytes) -> dict:
    """A WAL line's entry with the payload it names in the blob log (base64 text) in place of the name."""
    inline = (entry["v"] or {}).get("inline")
    if isinstance(inline, dict):
        _, offset, length, _ = inline["$ref"]
        return {**entry, "v": {**entry["v"], "inline": blob_log[offset:offset + length].decode("ascii")}}
    return entry


# -- damaging a copy and recovering it ----------------------------------------

def copy_of(history: History, into: Path) -> Path:
    for name in ("p0", "blobs"):
        shutil.rmtree(into / name, ignore_errors=True)
        shutil.copytree(history.root / name, into / name)
    return into


def table_of(p: Partition) -> dict:
    """The recovered table, every payload read back (through its xxh3) from the blob log."""
    out = {}
    for k, v in p.table.items():
        if isinstance(v.get("inline"), BlobRef):
            v = {**v, "inline": v["inline"].b64()}
        out[k] = v
    return out


def open_replica(root: Path) -> tuple[Partition, BlobStore]:
    store = BlobStore(root / "blobs")
    return Partition("p0", "", None, root / "p0", blob_store=store), store


async def recover_and_check(root: Path, expected: dict, what: str) -> None:
    """Recover ``root``; its table must be ``expected`` exactly. Then one more
    write, and a restart: the write must be there (the damage was cut off,
    not left in the middle of the log) and nothing else changed."""
    p, store = open_replica(root)
    try:
        assert table_of(p) == expected, what
        assert not list((root / "p0").glob("*.tmp"))
        await p.write("b/after", {"ts": LATER_TS})
    finally:
        p.wal.close()
        store.close()
    q, store = open_replica(root)
    try:
        assert table_of(q) == {**expected, "b/after": {"ts": LATER_TS}}, what
    finally:
        q.wal.close()
        store.close()


def torn(wal: bytes, at: int, kind: str, seed: int = 0) -> bytes:
    """The WAL as a crash may leave it when everything from ``at`` on was
    not yet durable: cut there, zero-filled from there to the end of its last
    4 KiB block, or garbage there (random bytes with newlines among them, so
    that they form "lines")."""
    if kind == "cut":
        return wal[:at]
    if kind == "zeros":
        return wal[:at] + bytes(max(len(wal), math.ceil(max(len(wal), 1) / 4096) * 4096) - at)
    rnd = random.Random(seed * 1_000_003 + at)
    junk = bytearray(rnd.randbytes(len(wal) - at + rnd.randrange(0, 200)))
    for i in range(0, len(junk), 23):
        junk[i] = 0x0A
    return wal[:at] + bytes(junk)


# -- the WAL, every byte ------------------------------------------------------

@pytest.mark.parametrize("kind", ["cut", "zeros", "garbage"])
async def test_a_tear_at_every_byte_of_the_last_two_batches_keeps_exactly_the_lines_before_it(
        history, tmp_path, kind):
    """Every offset in the last two batches' bytes (and the end: no tear): the
    records of every batch acknowledged before the tear are there, with their
    exact values (payloads read back from the blob log, deletes as
    tombstones, hard removals gone), and not one line at or past the tear."""
    wal = history.wal
    root = copy_of(history, tmp_path)
    path = root / "p0" / "wal-000001.log"
    snapshot = root / "p0" / "snapshot-000001.jsonl"
    blob_path = root / "blobs" / "blob-000001.dat"
    blob_log, snapshot_bytes = history.blob_log, snapshot.read_bytes()
    start = history.batch_ends[-3]
    assert len(wal) - start > 200                     # the loop below covers two whole batches
    for at in range(start, len(wal) + 1):
        damaged = torn(wal, at, kind)
        path.write_bytes(damaged)
        blob_path.write_bytes(blob_log)               # recovery appended to it: as the crash left it
        snapshot.write_bytes(snapshot_bytes)
        lines = history.lines_intact(damaged)
        assert lines >= history.lines_before(at)
        acknowledged = sum(1 for end in history.batch_ends if end <= at) * ENTRIES_PER_BATCH
        assert lines >= acknowledged                  # every acknowledged batch is among them
        await recover_and_check(root, history.expected(lines), f"{kind} at {at}")


@settings(max_examples=40, deadline=None, suppress_health_check=HEALTH)
@given(data=st.data(), kind=st.sampled_from(["cut", "zeros", "garbage"]))
async def test_a_tear_anywhere_in_the_wal(history, tmp_path_factory, data, kind):
    wal = history.wal
    at = data.draw(st.integers(0, len(wal)), label="at")
    root = copy_of(history, tmp_path_factory.mktemp("anywhere"))
    damaged = torn(wal, at, kind, seed=7)
    (root / "p0" / "wal-000001.log").write_bytes(damaged)
    await recover_and_check(root, history.expected(history.lines_intact(damaged)), f"{kind} at {at}")


@settings(max_examples=40, deadline=None, suppress_health_check=HEALTH)
@given(data=st.data())
async def test_a_hole_in_the_unsynced_batch_drops_what_follows_it(history, tmp_path_factory, data):
    """The pages of an unsynced batch can reach the disk in any order: a hole
    of zeros in it, with its later lines whole after the hole. Recovery
    stops at the hole (those later lines were never acknowledged)."""
    wal = history.wal
    first = history.batch_ends[-2]
    start = data.draw(st.integers(first, len(wal) - 1), label="start")
    length = data.draw(st.integers(1, len(wal) - start), label="length")
    damaged = wal[:start] + bytes(length) + wal[start + length:]
    root = copy_of(history, tmp_path_factory.mktemp("hole"))
    (root / "p0" / "wal-000001.log").write_bytes(damaged)
    await recover_and_check(root, history.expected(history.lines_before(start)), f"hole {start}+{length}")


# -- snapshots ----------------------------------------------------------------

async def test_a_snapshot_torn_before_its_rename_is_never_read(history, tmp_path):
    """A snapshot is written to ``snapshot-N.tmp``, fsynced, and only then
    renamed: a crash while it is written leaves the temp file (cut anywhere)
    beside the WALs that still hold everything. Recovery ignores it and
    removes it."""
    root = copy_of(history, tmp_path / "whole")
    p, store = open_replica(root)                     # a real second snapshot, for its bytes
    p.wal.request_snapshot()
    while p.wal.generation < 2 or p.wal.snapshotting:
        await asyncio.sleep(0.001)
    p.wal.close()
    store.close()
    full = (root / "p0" / "snapshot-000002.jsonl").read_bytes()
    work = copy_of(history, tmp_path / "crashed")
    tmp = work / "p0" / "snapshot-000002.tmp"
    everything = history.expected(len(history.entries))
    for at in sorted({*range(0, len(full) + 1, 7), len(full)}):
        copy_of(history, work)
        (work / "p0" / "wal-000002.log").write_bytes(b"")      # the new generation, opened before the snapshot
        tmp.write_bytes(full[:at])
        await recover_and_check(work, everything, f"snapshot temp file cut at {at}")


def test_a_damaged_snapshot_is_refused_loudly(history, tmp_path):
    """A renamed snapshot was fsynced before its rename, so a crash cannot
    tear it; if a disk does, recovery stops with an error rather than load
    part of the table (the replica is rebuilt from its peers)."""
    root = copy_of(history, tmp_path)
    snap = root / "p0" / "snapshot-000001.jsonl"
    snap.write_bytes(snap.read_bytes()[:-5])
    with pytest.raises(RuntimeError, match="corrupt snapshot"):
        open_replica(root)


# -- the blob log -------------------------------------------------------------
#
# A replica appends small payloads to its blob log without an fsync (the WAL
# line holds them) and fdatasyncs the log before a snapshot or a WAL line names
# any of its bytes (a big payload's line names it, after the group commit's
# sync). So a crash can tear the blob log only past the last sync, below
# payloads that only WAL lines hold (recovery appends those again); bytes a
# snapshot or a line names were durable before it was written.

def snapshot_refs(root: Path) -> dict[str, list]:
    """key → [file, offset, length, xxh3] of every payload the snapshot names."""
    out = {}
    for line in (root / "p0" / "snapshot-000001.jsonl").read_bytes().splitlines(keepends=True):
        e = decode_line(line)
        inline = e["v"].get("inline") if e["v"] else None
        if isinstance(inline, dict):
            out[e["k"]] = inline["$ref"]
    return out


@pytest.mark.parametrize("kind", ["cut", "zeros"])
async def test_a_blob_log_torn_past_its_last_sync_loses_no_payload(history, tmp_path, kind):
    """Every offset past the last sync: every record comes back with its
    exact payload (the WAL lines hold the small ones, and recovery appends
    them to the blob log again, after whatever the tear left)."""
    blob_log = history.blob_log
    assert len(blob_log) - history.blob_durable > 20      # the last batch's small payload, applied after its sync
    root = copy_of(history, tmp_path)
    wal_path, blob_path = root / "p0" / "wal-000001.log", root / "blobs" / "blob-000001.dat"
    everything = history.expected(len(history.entries))
    for at in range(history.blob_durable, len(blob_log) + 1):
        wal_path.write_bytes(history.wal)
        blob_path.write_bytes(torn(blob_log, at, kind))
        await recover_and_check(root, everything, f"blob log {kind} at {at}")


def read_or_corrupt(value) -> str | None:
    """A recovered record's payload (base64), or None if reading it failed loudly."""
    try:
        return value["inline"].b64()
    except blobs.CorruptBlob:
        return None


@settings(max_examples=60, deadline=None, suppress_health_check=HEALTH)
@given(data=st.data())
def test_blob_bytes_a_snapshot_names_never_come_back_wrong(history, tmp_path_factory, data):
    """Bytes a snapshot names were fdatasynced before it was written, so no
    crash takes them; a disk that damages them anyway (cut the file, or zero
    a range) makes the read fail with CorruptBlob (each ref carries its
    xxh3), never return other bytes. Recovery itself succeeds (it reads no
    payload), and the reader is sent to another replica."""
    root = copy_of(history, tmp_path_factory.mktemp("blob-damage"))
    (root / "p0" / "wal-000001.log").write_bytes(b"")     # the snapshot's records only
    refs = snapshot_refs(root)
    assert refs
    blob_log = history.blob_log
    start = data.draw(st.integers(0, history.blob_synced - 1), label="start")
    if data.draw(st.booleans(), label="cut"):
        end, damaged = len(blob_log), blob_log[:start]
    else:
        end = data.draw(st.integers(start + 1, history.blob_synced), label="end")
        damaged = blob_log[:start] + bytes(end - start) + blob_log[end:]
    (root / "blobs" / "blob-000001.dat").write_bytes(damaged)
    p, store = open_replica(root)
    try:
        for key, want in history.snapshot_table.items():
            got = p.table[key]
            if key not in refs:
                assert got == want                           # kept in the snapshot line itself
                continue
            payload = read_or_corrupt(got)
            _, offset, length, _ = refs[key]
            if offset + length <= start or offset >= end:
                assert payload == want["inline"], key        # untouched bytes: read as written
            else:
                touched = blob_log[offset:offset + length] != damaged[offset:offset + length]
                assert payload is None if touched else payload == want["inline"], key
            if payload is not None:
                assert {**got, "inline": payload} == want
    finally:
        p.wal.close()
        store.close()


def test_a_sync_returns_only_once_the_bytes_appended_before_it_are_durable(tmp_path, monkeypatch):
    """Every partition of a process shares its blob log, and their snapshots
    run in threads, so two syncs can overlap. The second must not return
    while the first is still inside the fdatasync that makes the second's
    payloads durable: its snapshot would name bytes a crash can still take."""
    store = BlobStore(tmp_path)
    store.put(b"x" * 100)
    inside, release = threading.Event(), threading.Event()
    real = os.fdatasync

    def slow_fdatasync(fd):
        if not inside.is_set():
            inside.set()
            release.wait(10)
        real(fd)
    monkeypatch.setattr(blobs.os, "fdatasync", slow_fdatasync)
    first = threading.Thread(target=store.sync)
    first.start()
    assert inside.wait(10)
    second_returned = threading.Event()
    second = threading.Thread(target=lambda: (store.sync(), second_returned.set()))
    second.start()
    early = second_returned.wait(0.3)
    release.set()
    first.join()
    second.join()
    store.close()
    assert not early, "a sync returned while an earlier one was still making its bytes durable"


def test_a_failed_sync_leaves_its_files_to_sync_again(tmp_path, monkeypatch):
    """A snapshot whose sync failed is not written; the next one must sync
    the same files again, not find them clean and name their bytes."""
    store = BlobStore(tmp_path)
    store.put(b"x" * 100)
    calls = []
    real = os.fdatasync

    def failing_once(fd):
        calls.append(fd)
        if len(calls) == 1:
            raise OSError(5, "Input/output error")
        real(fd)
    monkeypatch.setattr(blobs.os, "fdatasync", failing_once)
    with pytest.raises(OSError):
        store.sync()
    store.sync()
    store.close()
    assert len(calls) == 2, "the second sync skipped the file whose sync failed"


def test_a_new_blob_file_is_in_its_directory_before_a_snapshot_names_it(tmp_path, monkeypatch):
    """A snapshot may name bytes of a blob file created since the last sync
    (the first, or one past ROTATE_BYTES): the file's name must be durable
    too (its directory fsynced), as a fragment's or a WAL's is."""
    dir_syncs = []
    real = os.fsync

    def fsync(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            dir_syncs.append(sorted(os.listdir(tmp_path / "blobs")))
        real(fd)
    monkeypatch.setattr(os, "fsync", fsync)
    store = BlobStore(tmp_path / "blobs", rotate_bytes=100)
    store.put(b"x" * 150)
    store.sync()
    assert dir_syncs and "blob-000001.dat" in dir_syncs[-1]
    store.put(b"y" * 10)                                   # rotates: blob-000002.dat
    store.sync()
    assert "blob-000002.dat" in dir_syncs[-1]
    n = len(dir_syncs)
    store.put(b"z" * 10)
    store.sync()
    assert len(dir_syncs) == n                             # no new file: no directory fsync
    store.close()


def test_a_new_wal_generation_is_in_its_directory_before_a_write_in_it_is_acknowledged(tmp_path, monkeypatch):
    """A snapshot starts a new WAL file, and writes go on into it while the
    snapshot is written; the snapshot fsyncs the directory only after its
    rename (never, if it fails). A write acknowledged from the new file must
    not depend on that: the file's name is made durable first."""
    dir_syncs = []
    real = os.fsync

    def fsync(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            dir_syncs.append(sorted(os.listdir(tmp_path)))
        real(fd)
    monkeypatch.setattr(os, "fsync", fsync)
    failpoints.arm("meta.snapshot.before_rename=error")      # the snapshot fails before its directory fsync
    try:
        p = Partition("p0", "", None, tmp_path)

        async def go():
            await p.write("b/a", {"ts": 1})
            p.wal.request_snapshot()
            while p.wal.generation < 1 or p.wal.snapshotting:
                await asyncio.sleep(0.001)
            await p.write("b/b", {"ts": 2})                # acknowledged from wal-000001.log
            assert any("wal-000001.log" in names for names in dir_syncs)
        asyncio.run(go())
        p.wal.close()
    finally:
        failpoints.reset()
    assert list(Partition("p0", "", None, tmp_path).table) == ["b/a", "b/b"]
