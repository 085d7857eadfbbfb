"""WAL + snapshot recovery of a partition, with no processes."""
import asyncio
import os

import pytest

from minis3.meta.partition import Partition, PartitionSet
from minis3.meta.wal import decode_line, encode_line


def test_line_round_trip_and_corruption():
    line = encode_line({"k": "a/é", "v": {"ts": 1}})
    assert decode_line(line) == {"k": "a/é", "v": {"ts": 1}}
    assert decode_line(line[:-1]) is None                       # torn
    assert decode_line(line.replace(b"1}", b"2}")) is None       # crc mismatch


def test_recovery_replays_wal_and_snapshots(tmp_path):
    async def write(p, n, start=0):
        await asyncio.gather(*(p.write(f"b/{i:04d}", {"ts": i + 1, "v": i}) for i in range(start, start + n)))

    p = Partition("p0", "", None, tmp_path, snapshot_every=50)
    for r in range(4):                        # 4 rounds of 30 concurrent writers
        asyncio.run(write(p, 30, 30 * r))
    assert p.wal.generation >= 2              # snapshots were taken
    assert p.wal.syncs < 120                  # group commit shared fdatasyncs
    p.wal.close()
    q = Partition("p0", "", None, tmp_path, snapshot_every=50)
    assert dict(q.table) == dict(p.table) and len(q.table) == 120


def test_torn_tail_is_cut_and_later_writes_survive(tmp_path):
    p = Partition("p0", "", None, tmp_path)
    asyncio.run(p.write("b/x", {"ts": 1}))
    p.wal.close()
    wal = sorted(tmp_path.glob("wal-*.log"))[-1]
    with open(wal, "ab") as f:
        f.write(b"0000abcd {\"k\": \"b/torn")            # a crash mid-append
    q = Partition("p0", "", None, tmp_path)
    assert list(q.table) == ["b/x"]
    asyncio.run(q.write("b/y", {"ts": 2}))
    q.wal.close()
    r = Partition("p0", "", None, tmp_path)
    assert list(r.table) == ["b/x", "b/y"]


def test_last_writer_wins_by_timestamp(tmp_path):
    p = Partition("p0", "", None, tmp_path)

    async def go():
        await p.write("b/k", {"ts": 10, "v": "new"})
        await p.write("b/k", {"ts": 5, "v": "old"})
    asyncio.run(go())
    assert p.get("b/k")["v"] == "new"


def test_not_durable_is_not_visible(tmp_path):
    p = Partition("p0", "", None, tmp_path)

    async def go():
        t = asyncio.ensure_future(p.write("b/k", {"ts": 1}))
        await asyncio.sleep(0)
        assert p.get("b/k") is None and p.latest("b/k") == {"ts": 1}
        await t
        assert p.get("b/k") == {"ts": 1}
    asyncio.run(go())


def test_partition_set_routes_and_scans_in_order(tmp_path):
    ps = PartitionSet(("g", "n"), tmp_path)
    assert [p.lo for p in ps.partitions] == ["", "g", "n"]
    keys = ["a/1", "h/2", "m/3", "z/4", "n/0"]

    async def go():
        for i, k in enumerate(keys):
            await ps.for_key(k).write(k, {"ts": i + 1})
    asyncio.run(go())
    assert ps.for_key("h/2").id == "p001" and ps.for_key("n/0").id == "p002"
    assert [k for k, _ in ps.scan("", True)] == sorted(keys)
    assert [k for k, _ in ps.scan("h/2", False)] == ["m/3", "n/0", "z/4"]


def test_snapshot_entries_are_the_table_as_of_the_call(tmp_path):
    """A snapshot's entries are made in its writing thread, later: they must
    still be the table as it was when the WAL generation was cut."""
    p = Partition("p0", "", None, tmp_path)

    async def go():
        for i in range(5):
            await p.write(f"b/{i}", {"ts": 1})
        rows = p._rows()
        await p.write("b/0", {"ts": 2})                      # replaced after the cut
        await p.write("b/9", {"ts": 2})                      # added after the cut
        assert list(rows) == [{"k": f"b/{i}", "v": {"ts": 1}} for i in range(5)]
    asyncio.run(go())
    p.wal.close()


def test_estimated_bytes_samples_again_only_after_enough_writes(tmp_path):
    p = Partition("p0", "", None, tmp_path)
    small = {"ts": 1, "x": "a"}
    big = {"ts": 2, "x": "a" * 1000}

    async def go():
        for i in range(100):
            await p.write(f"b/{i:03d}", small)
        first = p.estimated_bytes(sample=100)               # samples again after 100 writes
        assert first == len(encode_line({"k": "b/000", "v": small})) * 100
        for i in range(50):                                  # 50 writes: no new sample
            await p.write(f"b/{i:03d}", big)
        assert p.estimated_bytes(sample=100) == first
        for i in range(50, 100):                             # now the records are all big
            await p.write(f"b/{i:03d}", big)
        assert p.estimated_bytes(sample=100) == len(encode_line({"k": "b/000", "v": big})) * 100
    asyncio.run(go())
    p.wal.close()


def _torn_once(monkeypatch, errno_=28):
    """os.write in the WAL writes half of what it is given, then fails (a disk
    that filled up mid-line), once."""
    from minis3.meta import wal as wal_module
    real, state = os.write, {"done": False}

    def write(fd, data):
        if state["done"]:
            return real(fd, data)
        state["done"] = True
        real(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno_, "No space left on device")
    monkeypatch.setattr(wal_module.os, "write", write)


def test_a_line_torn_by_a_failed_write_never_hides_the_batches_acknowledged_after_it(tmp_path, monkeypatch):
    """Recovery stops at the first torn line, so a half-written line left in
    the middle of the log would drop every later, acknowledged batch: the
    failed batch is cut off before its writers hear of the error."""
    p = Partition("p0", "", None, tmp_path)
    asyncio.run(p.write("b/before", {"ts": 1}))
    _torn_once(monkeypatch)
    with pytest.raises(OSError):
        asyncio.run(p.write("b/torn", {"ts": 2}))
    asyncio.run(p.write("b/after", {"ts": 3}))
    p.wal.close()
    assert list(Partition("p0", "", None, tmp_path).table) == ["b/after", "b/before"]


def test_a_log_whose_failed_batch_cannot_be_cut_off_takes_no_more_writes(tmp_path, monkeypatch):
    """If even the cut fails, the log refuses every later write (this replica
    stops acknowledging, the quorum goes on) until a restart, whose recovery
    cuts the torn tail and keeps everything acknowledged before it."""
    from minis3.meta import wal as wal_module
    p = Partition("p0", "", None, tmp_path)
    asyncio.run(p.write("b/before", {"ts": 1}))
    _torn_once(monkeypatch, errno_=5)

    def no_truncate(fd, length):
        raise OSError(5, "Input/output error")
    monkeypatch.setattr(wal_module.os, "ftruncate", no_truncate)
    with pytest.raises(OSError):
        asyncio.run(p.write("b/torn", {"ts": 2}))
    with pytest.raises(OSError, match="takes no writes"):
        asyncio.run(p.write("b/refused", {"ts": 3}))
    p.wal.close()
    monkeypatch.undo()
    assert list(Partition("p0", "", None, tmp_path).table) == ["b/before"]


def test_commits_move_onto_the_loop_while_the_disk_is_quick_and_off_it_when_it_is_slow(tmp_path, monkeypatch):
    """A fresh log commits in a worker thread; after INLINE_AFTER quick
    commits in a row, on the event loop's own thread (no hand-off); one slow
    commit (a slow disk, as `minis3 chaos slow-disk` makes one) sends the
    next ones back to the thread until the disk has been quick again as long.
    Every write lands either way."""
    import threading

    from minis3.meta import wal as wal_module
    from minis3.rpc import failpoints
    # "Quick" generously (a busy machine's fdatasync), "slow" well past it.
    monkeypatch.setattr(wal_module, "INLINE_UNDER_S", 0.25)
    p = Partition("p0", "", None, tmp_path)
    on_loop: list[bool] = []
    write_sync = p.wal._write_sync

    def recorded(data):
        on_loop.append(threading.current_thread() is threading.main_thread())
        write_sync(data)
    monkeypatch.setattr(p.wal, "_write_sync", recorded)
    n = wal_module.INLINE_AFTER

    async def writes(first: int, count: int):
        for i in range(first, first + count):              # one at a time: a commit each
            await p.write(f"b/{i:04d}", {"ts": i + 1})

    asyncio.run(writes(0, n + 3))
    assert on_loop == [False] * n + [True] * 3 and p.wal.syncs_on_loop == 3
    failpoints.set_disk({"slow_ms": 300})
    try:
        asyncio.run(writes(n + 3, 2))
    finally:
        failpoints.set_disk(None)
    assert on_loop[n + 3:] == [True, False]                # the first slow one ran on the loop, the next did not
    asyncio.run(writes(n + 5, n + 1))
    assert on_loop[n + 5:] == [False] * n + [True]          # quick again: back after INLINE_AFTER in a row
    p.wal.close()
    assert len(Partition("p0", "", None, tmp_path).table) == 2 * n + 6
