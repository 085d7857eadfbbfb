"""Splitting a partition in place: durable, atomic, and no write lost while it happens."""
from __future__ import annotations

import asyncio
import json

from minis3.meta.partition import MANIFEST, PartitionSet


def rec(ts: int) -> dict:
    return {"ts": ts, "vid": f"v{ts}", "size": ts}


async def quiesce(ps: PartitionSet) -> None:
    """Wait for background snapshots, then close (a test reopens the same files)."""
    for _ in range(500):
        if not any(p.wal.busy for p in ps.partitions):
            break
        await asyncio.sleep(0.01)
    for p in ps.partitions:
        p.wal.close()


async def write(ps: PartitionSet, key: str, value: dict) -> None:
    """What the metadata server does: wait out a split of the key's partition, then write."""
    p = ps.for_key(key)
    while p.splitting is not None:
        await p.splitting.wait()
        p = ps.for_key(key)
    await p.write(key, value)


async def test_split_cuts_in_place_and_survives_reopening(tmp_path):
    ps = PartitionSet(("g",), tmp_path)
    for i in range(300):
        await write(ps, f"h/{i:04d}", rec(i + 1))
    await write(ps, "a/x", rec(1))
    pause = await ps.split("p001", "h/0150", "p002", "p003")
    assert pause >= 0
    assert [(p.id, p.lo, p.hi) for p in ps.partitions] == [("p000", "", "g"), ("p002", "g", "h/0150"),
                                                            ("p003", "h/0150", None)]
    assert len(ps.by_id["p002"].table) == 150 and len(ps.by_id["p003"].table) == 150
    assert not (tmp_path / "p001").exists()
    assert [d["id"] for d in json.loads((tmp_path / MANIFEST).read_text())["partitions"]] == ["p000", "p002", "p003"]
    await write(ps, "h/0200", rec(999))                        # the new halves take writes
    await quiesce(ps)
    again = PartitionSet(("g",), tmp_path)                     # bounds are ignored once a manifest exists
    assert [p.id for p in again.partitions] == ["p000", "p002", "p003"]
    assert again.for_key("h/0200").get("h/0200")["ts"] == 999
    assert sum(len(p.table) for p in again.partitions) == 301


async def test_writes_during_a_split_wait_and_none_is_lost(tmp_path):
    ps = PartitionSet((), tmp_path)
    for i in range(2000):
        await write(ps, f"k/{i:05d}", rec(1))
    # Writers hammer both halves while the split runs.
    writers = [asyncio.ensure_future(write(ps, f"k/{i:05d}", rec(2))) for i in range(0, 2000, 7)]
    split = asyncio.ensure_future(ps.split("p000", "k/01000", "p001", "p002"))
    writers += [asyncio.ensure_future(write(ps, f"k/{i:05d}", rec(3))) for i in range(3, 2000, 7)]
    await asyncio.gather(split, *writers)
    for i in range(2000):
        got = ps.for_key(f"k/{i:05d}").get(f"k/{i:05d}")
        assert got["ts"] == (2 if i % 7 == 0 else 3 if i % 7 == 3 else 1), i
    await quiesce(ps)
    again = PartitionSet((), tmp_path)
    assert [len(p.table) for p in again.partitions] == [1000, 1000]
    assert again.for_key("k/01004").get("k/01004")["ts"] == 3 and 1004 % 7 == 3
    assert all(again.for_key(f"k/{i:05d}").get(f"k/{i:05d}")["ts"] == (2 if i % 7 == 0 else 3 if i % 7 == 3 else 1)
               for i in range(2000))


def test_half_built_leftovers_of_a_crashed_split_are_removed(tmp_path):
    ps = PartitionSet(("m",), tmp_path)
    for p in ps.partitions:
        p.wal.close()
    (tmp_path / "p007").mkdir()                               # a half written before the list changed
    (tmp_path / "p007" / "snapshot-000001.jsonl").write_text("")
    again = PartitionSet(("m",), tmp_path)
    assert [p.id for p in again.partitions] == ["p000", "p001"] and not (tmp_path / "p007").exists()


async def test_a_half_recovers_from_its_parents_files_until_its_own_snapshot(tmp_path, monkeypatch):
    ps = PartitionSet((), tmp_path, snapshot_every=100)
    for i in range(250):                                   # two snapshots and a WAL tail in the parent
        await write(ps, f"k/{i:04d}", rec(i + 1))
    await quiesce(ps)
    ps = PartitionSet((), tmp_path, snapshot_every=100)
    from minis3.meta import wal
    monkeypatch.setattr(wal.WAL, "request_snapshot", lambda self: None)   # a crash before the halves' own
    await ps.split("p000", "k/0100", "p001", "p002")
    monkeypatch.undo()
    await quiesce(ps)
    again = PartitionSet((), tmp_path, snapshot_every=100)
    assert [len(p.table) for p in again.partitions] == [100, 150]
    assert again.by_id["p002"].get("k/0249")["ts"] == 250 and again.by_id["p001"].get("k/0100") is None
    # Once a half has written its own snapshot, its parent's files are gone from its directory.
    for p in again.partitions:
        p.wal.request_snapshot()
    await asyncio.sleep(0.05)
    gen = again.by_id["p001"].wal.generation
    await quiesce(again)
    names = sorted(f.name for f in (tmp_path / "p001").iterdir())
    assert names == [f"snapshot-{gen:06d}.jsonl", f"wal-{gen:06d}.log"]
    third = PartitionSet((), tmp_path, snapshot_every=100)
    assert [len(p.table) for p in third.partitions] == [100, 150]


async def test_an_extra_process_starts_empty_adds_an_incoming_partition_and_drops_it(tmp_path):
    ps = PartitionSet(None, tmp_path)
    assert ps.partitions == [] and ps.for_key("b/k") is None and not ps.covers("a", "c")
    p = await ps.add("p001", "g", "n")
    assert p.state == "incoming" and ps.for_key("h/1") is p and ps.for_key("a") is None
    assert ps.covers("h", "m") and not ps.covers("a", "h") and not ps.covers("h", None)
    try:
        await ps.add("p009", "m", "z")
        raise AssertionError("an overlapping partition was added")
    except ValueError:
        pass
    await write(ps, "h/1", rec(5))
    await ps.set_state("p001", "serving")
    await quiesce(ps)
    again = PartitionSet(None, tmp_path)               # the state and the record survive reopening
    assert [(x.id, x.state) for x in again.partitions] == [("p001", "serving")]
    assert again.for_key("h/1").table["h/1"] == rec(5)
    await again.drop("p001")
    assert again.partitions == [] and not (tmp_path / "p001").exists()
    assert json.loads((tmp_path / MANIFEST).read_text()) == {"partitions": []}
    assert PartitionSet(None, tmp_path).partitions == []
