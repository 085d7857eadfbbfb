"""Inline payloads in a replica's blob log, not in its memory (meta/blobs.py), with no processes."""
from __future__ import annotations

import asyncio
import base64
import os

import pytest

from minis3.meta import blobs, wal
from minis3.meta.blobs import BlobRef, BlobStore, CorruptBlob
from minis3.meta.partition import PartitionSet
from minis3.meta.wal import decode_line, encode_line
from minis3.rpc import fastjson

from .partition_support import quiesce


def inline(data: bytes, ts: int = 1) -> dict:
    return {"ts": ts, "vid": f"v{ts}", "size": len(data), "inline": base64.b64encode(data).decode()}


def test_a_payload_goes_to_the_log_and_comes_back_checked(tmp_path):
    store = BlobStore(tmp_path / "blobs", rotate_bytes=100_000)
    datas = [os.urandom(n) for n in (1, 4096, 65536, 65536, 30000)]
    refs = [store.put(d) for d in datas]
    assert [r.read() for r in refs] == datas
    assert refs[-1].file == 2                               # rotated past 100,000 bytes
    # Answers get the payload; snapshots the ref; the scrubber a marker.
    b64 = store.put(base64.b64encode(datas[2]))             # what a record's payload is: base64 text
    rec = {"inline": b64}
    assert fastjson.loads(fastjson.dumps(rec, blobs.as_payload))["inline"] == base64.b64encode(datas[2]).decode()
    assert b64.payload() == datas[2]
    doc = fastjson.loads(fastjson.dumps(rec, blobs.as_ref))["inline"]
    assert store.ref(doc["$ref"]).payload() == datas[2]
    assert blobs.is_marker(fastjson.loads(fastjson.dumps(rec, blobs.as_marker))["inline"])
    with pytest.raises(TypeError):
        fastjson.dumps({"x": object()}, blobs.as_payload)
    # A flipped byte on disk is caught, never returned.
    path = tmp_path / "blobs" / "blob-000001.dat"
    raw = bytearray(path.read_bytes())
    raw[refs[1].offset + 7] ^= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptBlob):
        refs[1].read()
    with pytest.raises(CorruptBlob):
        BlobRef(store, 1, path.stat().st_size - 3, 10, 0).read()     # past the end: a short read
    store.close()


def test_externalize_replaces_the_record_never_changes_it(tmp_path):
    store = BlobStore(tmp_path)
    assert blobs.externalize(store, inline(b"hello")) == inline(b"hello")   # tiny: stays in memory
    rec = inline(os.urandom(4096))
    out = blobs.externalize(store, rec)
    assert isinstance(out["inline"], BlobRef) and isinstance(rec["inline"], str)
    assert blobs.externalize(store, out) is out                         # already a ref
    assert blobs.externalize(store, {"ts": 1, "inline": ""})["inline"] == ""      # an empty object
    assert blobs.externalize(None, rec) is rec
    # A WAL line holds the payload itself; a snapshot line the ref.
    assert decode_line(encode_line({"k": "b/k", "v": out}))["v"]["inline"] == rec["inline"]
    assert "$ref" in decode_line(encode_line({"k": "b/k", "v": out}, refs=True))["v"]["inline"]
    store.close()


def test_a_failed_append_keeps_the_payload_in_memory_and_the_next_offsets_right(tmp_path, monkeypatch):
    """A full disk mid-append: the part written is cut off again (so the next
    payload's ref points at its own bytes) and the record keeps its payload in
    memory (its WAL line already holds it durably), instead of failing a write
    that is already durable."""
    store = BlobStore(tmp_path)
    first = blobs.externalize(store, inline(os.urandom(4096), 1))
    real, state = os.write, {"done": False}

    def write(fd, data):
        if state["done"]:
            return real(fd, data)
        state["done"] = True
        real(fd, bytes(data[:100]))
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(blobs.os, "write", write)
    rec = inline(os.urandom(4096), 2)
    kept = blobs.externalize(store, rec)
    assert kept is rec and isinstance(kept["inline"], str)          # in memory, as it came
    later = inline(os.urandom(5000), 3)
    out = blobs.externalize(store, later)
    assert out["inline"].payload() == base64.b64decode(later["inline"])
    assert first["inline"].payload() and store.stats()["bytes"] == out["inline"].offset + out["inline"].length
    store.close()


@pytest.mark.parametrize("size", [1000, 20_000])      # in the WAL line / named by it (wal.BLOB_FIRST)
async def test_payloads_stay_out_of_memory_and_survive_snapshots_splits_and_restarts(tmp_path, size):
    store = BlobStore(tmp_path / "blobs")
    ps = PartitionSet(("b/m",), tmp_path / "objects", snapshot_every=40, blob_store=store)
    datas = {f"b/{c}{i:03d}": os.urandom(size + i) for c in "az" for i in range(60)}
    await asyncio.gather(*(ps.for_key(k).write(k, inline(d)) for k, d in datas.items()))
    for p in ps.partitions:
        assert p.wal.generation >= 1                             # snapshots were written (with refs)
        assert all(isinstance(v["inline"], BlobRef) for v in p.table.values())
    await ps.split(ps.partitions[0].id, "b/a030", "L", "R")
    await asyncio.gather(*(ps.for_key(k).write(k, inline(d[::-1], ts=2)) for k, d in list(datas.items())[::7]))
    for k in list(datas)[::7]:
        datas[k] = datas[k][::-1]
    await quiesce(ps)
    store.close()
    # A restart: snapshots' refs and the WALs' payloads give back every byte.
    store2 = BlobStore(tmp_path / "blobs")
    ps2 = PartitionSet(None, tmp_path / "objects", snapshot_every=40, blob_store=store2)
    got = {k: v["inline"].payload() for p in ps2.partitions for k, v in p.table.items()}
    assert got == datas
    await quiesce(ps2)
    store2.close()


async def test_a_big_payload_is_written_once_and_durable_before_the_line_that_names_it(tmp_path, monkeypatch):
    """A payload of ``wal.BLOB_FIRST`` base64 characters or more goes to the
    blob log in the group commit, which fdatasyncs the blob log before it
    writes the line; the line names the payload instead of holding it. A
    smaller one stays in its line (and reaches the blob log unsynced)."""
    store = BlobStore(tmp_path / "blobs")
    ps = PartitionSet((), tmp_path / "objects", blob_store=store)
    p = ps.partitions[0]
    events = []
    real_write, real_sync = os.write, os.fdatasync

    def name(fd):
        return os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))

    def write(fd, data):
        events.append(("write", name(fd)))
        return real_write(fd, data)

    def fdatasync(fd):
        events.append(("sync", name(fd)))
        real_sync(fd)
    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(os, "fdatasync", fdatasync)
    big, small = os.urandom(30_000), os.urandom(5_000)
    await asyncio.gather(p.write("b/big", inline(big)), p.write("b/small", inline(small)))
    monkeypatch.undo()
    wal_name, blob_name = f"wal-{p.wal.generation:06d}.log", "blob-000001.dat"
    assert events.index(("sync", blob_name)) < events.index(("write", wal_name)) < events.index(("sync", wal_name))
    lines = [decode_line(x) for x in (p.wal.dir / wal_name).read_bytes().splitlines(keepends=True)]
    held = {e["k"]: e["v"]["inline"] for e in lines}
    assert "$ref" in held["b/big"] and held["b/small"] == inline(small)["inline"]
    assert (p.wal.dir / wal_name).stat().st_size < 8_000                 # the big payload only by name
    assert p.get("b/big")["inline"].payload() == big and p.get("b/small")["inline"].payload() == small
    await quiesce(ps)
    store.close()
    assert after_a_restart(tmp_path) == {"b/big": big, "b/small": small}


async def test_a_big_payload_the_blob_log_refuses_goes_in_its_line(tmp_path, monkeypatch):
    """A full blob disk: the payload is written in its WAL line (as a small
    one is), the write is acknowledged and survives a restart; the lines
    after it name their payloads again once the blob log takes them."""
    store = BlobStore(tmp_path / "blobs")
    ps = PartitionSet((), tmp_path / "objects", blob_store=store)
    p = ps.partitions[0]
    first, second = os.urandom(wal.BLOB_FIRST), os.urandom(wal.BLOB_FIRST)
    real_put = store.put
    monkeypatch.setattr(store, "put", lambda data: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    await p.write("b/one", inline(first))
    monkeypatch.setattr(store, "put", real_put)
    await p.write("b/two", inline(second, ts=2))
    wal_path = p.wal.dir / f"wal-{p.wal.generation:06d}.log"
    lines = [decode_line(x) for x in wal_path.read_bytes().splitlines(keepends=True)]
    assert lines[0]["v"]["inline"] == inline(first)["inline"] and "$ref" in lines[1]["v"]["inline"]
    await quiesce(ps)
    store.close()
    assert after_a_restart(tmp_path) == {"b/one": first, "b/two": second}


def after_a_restart(tmp_path) -> dict[str, bytes]:
    """Every payload of the one partition in ``tmp_path``, as a restarted replica recovers it."""
    store = BlobStore(tmp_path / "blobs")
    again = PartitionSet(None, tmp_path / "objects", blob_store=store).partitions[0]
    try:
        return {k: v["inline"].payload() for k, v in again.table.items()}
    finally:
        again.wal.close()
        store.close()
