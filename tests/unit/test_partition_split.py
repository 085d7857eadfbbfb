"""Splitting a partition in place: durable, atomic, and no write lost while it happens."""
from __future__ import annotations

import asyncio
import json

from minis3.meta.partition import MANIFEST, PartitionSet

from .partition_support import quiesce


def rec(ts: int) -> dict:
    return {"ts": ts, "vid": f"v{ts}", "size": ts}


async def write(ps: PartitionSet, key: str, value: dict) -> None:
    """What the metadata server does: find the key's partition, write to it with no await between."""
    await ps.for_key(key).write(key, value)


async def test_split_cuts_in_place_and_survives_reopening(tmp_path):
    ps = PartitionSet(("g",), tmp_path)
    for i in range(300):
        await write(ps, f"h/{i:04d}", rec(i + 1))
    await write(ps, "a/x", rec(1))
    took = await ps.split("p001", "h/0150", "p002", "p003")
    assert took["pause_s"] >= 0 and took["keys"] == 300
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


def slow_halves(monkeypatch, seconds: float) -> None:
    """Make a split's preparing of its halves (in a thread) take ``seconds``, so writes land meanwhile."""
    import time as _time
    from minis3.meta import split
    real = split._halves

    def slow(*args):
        _time.sleep(seconds)
        return real(*args)
    monkeypatch.setattr(split, "_halves", slow)


async def test_writes_landing_while_the_halves_are_prepared_reach_the_right_half(tmp_path, monkeypatch):
    ps = PartitionSet((), tmp_path)
    for i in range(200):
        await write(ps, f"k/{i:04d}", rec(1))
    slow_halves(monkeypatch, 0.3)
    split = asyncio.ensure_future(ps.split("p000", "k/0100", "p001", "p002"))
    await asyncio.sleep(0.05)                        # the table is copied; the halves are being made
    assert ps.by_id["p000"].splitting and ps.by_id["p000"].changed is not None
    expect = {f"k/{i:04d}": 1 for i in range(200)}
    for i in range(0, 200, 3):                       # overwrites, new keys and tombstones on both sides
        await write(ps, f"k/{i:04d}", rec(2))
        expect[f"k/{i:04d}"] = 2
    for i in range(200, 260):
        await write(ps, f"k/{i:04d}", rec(3))
        expect[f"k/{i:04d}"] = 3
    await write(ps, "k/0001", {"ts": 4, "vid": "v4", "deleted": True})
    await write(ps, "a", rec(5))                     # below the split key
    expect.update({"k/0001": 4, "a": 5})
    took = await split
    assert took["caught_up"] >= len(range(0, 200, 3)) + 60 and took["pause_s"] < 0.1, took
    assert [p.id for p in ps.partitions] == ["p001", "p002"]
    for k, ts in expect.items():
        assert ps.for_key(k).get(k)["ts"] == ts, k
    assert "a" in ps.by_id["p001"].table and "k/0250" in ps.by_id["p002"].table
    await quiesce(ps)
    again = PartitionSet((), tmp_path)
    for k, ts in expect.items():
        assert again.for_key(k).get(k)["ts"] == ts, k
    assert sum(len(p.table) for p in again.partitions) == len(expect)


async def test_writes_queued_for_the_old_wal_at_the_cut_land_in_the_halves_and_survive_a_crash(tmp_path, monkeypatch):
    """The cut does not wait for the partition's queued writes: they land in
    its WAL file, which each half links, and in the halves' tables; meanwhile
    a half's conditions see them. A crash before the halves' own snapshots
    recovers them from the linked file."""
    import time as _time
    ps = PartitionSet((), tmp_path)
    for i in range(100):
        await write(ps, f"k/{i:04d}", rec(1))
    p = ps.by_id["p000"]
    real = p.wal._write_sync

    def slow_write(data):
        _time.sleep(0.5)
        real(data)
    p.wal._write_sync = slow_write                   # the old partition's next batch is slow to land
    from minis3.meta import wal
    monkeypatch.setattr(wal, "INLINE_AFTER", 10**9)  # in a worker thread, as on a disk known to be slow
    monkeypatch.setattr(wal.WAL, "request_snapshot", lambda self: None)   # a crash before the halves' own
    late = [asyncio.ensure_future(write(ps, f"k/{i:04d}", rec(7))) for i in (10, 90)]
    await asyncio.sleep(0.05)
    assert p.inflight == 2
    split = asyncio.ensure_future(ps.split("p000", "k/0050", "p001", "p002"))
    for _ in range(200):
        if "p002" in ps.by_id:
            break
        await asyncio.sleep(0.005)
    right = ps.by_id["p002"]
    assert not any(t.done() for t in late) and right.parent is p
    assert right.get("k/0090")["ts"] == 1 and right.latest("k/0090")["ts"] == 7   # queued, seen by conditions
    assert right.landing() and not split.done()
    await write(ps, "k/0091", rec(8))                # the half takes writes meanwhile
    await asyncio.gather(*late)
    took = await split
    assert took["pause_s"] < 0.25 and took["landing_s"] > 0.2, took
    assert ps.for_key("k/0010").get("k/0010")["ts"] == 7 and right.get("k/0090")["ts"] == 7
    assert right.parent is None and not p.successors
    monkeypatch.undo()
    await quiesce(ps)
    again = PartitionSet((), tmp_path)
    assert [p.id for p in again.partitions] == ["p001", "p002"]
    assert [again.for_key(f"k/{i:04d}").get(f"k/{i:04d}")["ts"] for i in (10, 90, 91, 11)] == [7, 7, 8, 1]


async def test_a_crash_just_after_the_new_list_is_durable_recovers_both_halves(tmp_path, monkeypatch):
    """The list names the halves while the partition still takes writes:
    whatever it acknowledged is in the files the halves link."""
    import shutil
    from minis3.meta import split as split_mod
    ps = PartitionSet((), tmp_path / "live", snapshot_every=20)
    for i in range(100):
        await write(ps, f"k/{i:04d}", rec(1))
    slow_halves(monkeypatch, 0.2)
    real = split_mod.write_json_durably

    def crash_image(path, doc):
        real(path, doc)
        shutil.copytree(tmp_path / "live", tmp_path / "image")   # the disk as a crash would leave it
    monkeypatch.setattr(split_mod, "write_json_durably", crash_image)
    split = asyncio.ensure_future(ps.split("p000", "k/0050", "p001", "p002"))
    await asyncio.sleep(0.05)
    await write(ps, "k/0003", rec(2))                # acknowledged during the split, before the list
    for i in range(60, 90):                          # more than snapshot_every: its WAL must not move on
        await write(ps, f"k/{i:04d}", rec(2))
    await split
    monkeypatch.undo()
    await quiesce(ps)
    image = PartitionSet((), tmp_path / "image")
    assert [p.id for p in image.partitions] == ["p001", "p002"] and not (tmp_path / "image" / "p000").exists()
    assert [len(p.table) for p in image.partitions] == [50, 50]
    assert image.for_key("k/0003").get("k/0003")["ts"] == 2
    assert all(image.for_key(f"k/{i:04d}").get(f"k/{i:04d}")["ts"] == 2 for i in range(60, 90))


async def test_a_split_whose_list_cannot_be_written_leaves_the_partition_as_it_was(tmp_path, monkeypatch):
    from minis3.meta import split
    ps = PartitionSet((), tmp_path, snapshot_every=50)
    for i in range(100):
        await write(ps, f"k/{i:04d}", rec(1))

    def fail(path, doc):
        raise OSError("disk full")
    monkeypatch.setattr(split, "write_json_durably", fail)
    try:
        await ps.split("p000", "k/0050", "p001", "p002")
        raise AssertionError("the split went on")
    except OSError:
        pass
    monkeypatch.undo()
    p = ps.by_id["p000"]
    assert [x.id for x in ps.partitions] == ["p000"] and not p.splitting and p.changed is None
    assert not (tmp_path / "p001").exists() and not (tmp_path / "p002").exists()
    for i in range(100, 160):                        # it takes writes, and snapshots again
        await write(ps, f"k/{i:04d}", rec(2))
    assert not p.wal._snapshots_held and p.wal.generation > 0
    took = await ps.split("p000", "k/0050", "p001", "p002")   # and can be split after all
    assert took["keys"] == 160
    await quiesce(ps)
    assert [len(x.table) for x in PartitionSet((), tmp_path).partitions] == [50, 110]


async def test_version_rows_live_apart_from_heads_and_follow_them_through_splits_and_restarts(tmp_path):
    """Versioning: a key's version rows (``key\\0<id>``) are kept in
    a sorted map of their own, so a heads-only scan never walks them; a raw
    scan merges both in key order; a split and a restart (WAL, snapshot)
    keep every row on its head's side."""
    ps = PartitionSet((), tmp_path, snapshot_every=150)
    for i in range(100):
        head = f"b/k{i:03d}"
        await write(ps, head, rec(1000 + i))
        for j in range(3):
            await write(ps, f"{head}\0{j:028x}", rec(j + 1))
    await write(ps, "\0u/b/k000\0upload", rec(5))               # a raw record with \0: not a row
    p = ps.partitions[0]
    assert len(p.table) == 101 and len(p.rows) == 300 and len(p) == 401
    heads = [k for k, _ in ps.scan("b/", heads=True)]
    assert heads == [f"b/k{i:03d}" for i in range(100)]
    raw = [k for k, _ in ps.scan("b/")]
    assert raw == sorted(raw) and len(raw) == 400 and raw[1] == "b/k000\0" + "0" * 28
    await ps.split("p000", "b/k050", "p001", "p002")
    left, right = ps.by_id["p001"], ps.by_id["p002"]
    assert (len(left.table), len(left.rows), len(right.table), len(right.rows)) == (51, 150, 50, 150)
    await write(ps, "b/k070\0" + "f" * 28, rec(9))            # a row written after the split
    await quiesce(ps)
    again = PartitionSet((), tmp_path)
    l2, r2 = again.by_id["p001"], again.by_id["p002"]
    assert (len(l2.table), len(l2.rows), len(r2.table), len(r2.rows)) == (51, 150, 50, 151)
    assert r2.get("b/k070\0" + "f" * 28)["ts"] == 9 and [k for k, _ in again.scan("b/k07", heads=True)][:1] == ["b/k070"]


async def test_a_split_failing_just_after_its_list_is_durable_puts_the_list_back(tmp_path):
    """The new list may be on disk when its write fails (its rename done, the
    directory's fsync failed): the split puts the list naming the partition
    back before removing the halves, or the next start would find a list of
    halves with no files, and the range empty on this replica."""
    from minis3.rpc import failpoints
    ps = PartitionSet((), tmp_path)
    for i in range(100):
        await write(ps, f"k/{i:04d}", rec(1))
    failpoints.arm("meta.split.after_manifest=error@1")
    try:
        await ps.split("p000", "k/0050", "p001", "p002")
        raise AssertionError("the split went on")
    except OSError:
        pass
    finally:
        failpoints.reset()
    assert [x.id for x in ps.partitions] == ["p000"]
    assert [d["id"] for d in json.loads((tmp_path / MANIFEST).read_text())["partitions"]] == ["p000"]
    assert not (tmp_path / "p001").exists() and not (tmp_path / "p002").exists()
    await quiesce(ps)
    again = PartitionSet((), tmp_path)
    assert [len(p.table) for p in again.partitions] == [100]
