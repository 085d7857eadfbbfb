"""The node audit's pure parts: checking one fragment file, pacing, listing."""
from __future__ import annotations

import asyncio
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minis3.core.ratelimit import TokenBucket
from minis3.storage import audit, blocks
from minis3.storage.auditor import AUDIT_FILE_COST, BUSY_FOR_S, Auditor, Foreground, PassFiles
from minis3.storage.metrics import NodeMetrics

OID = "ab" * 16
HEALTH = [HealthCheck.function_scoped_fixture]


def fragment_bytes(index: int, payloads: list[bytes], oid: str = OID) -> tuple[bytes, list[int]]:
    """A fragment file as the node writes it, and the offsets where each part
    ends (header, then every block): the only places a cut goes unnoticed."""
    head = blocks.file_header(index, {"object_id": oid, "index": index, "created_ms": 1, "node": "a1"})
    raw, ends = head, [len(head)]
    for p in payloads:
        raw += blocks.frame(p)
        ends.append(len(raw))
    return raw, ends


payload_lists = st.lists(st.binary(min_size=0, max_size=300), min_size=0, max_size=5)


def write(tmp_path, raw: bytes, name: str = f"{OID}.3"):
    path = tmp_path / name
    path.write_bytes(raw)
    return path


# -- verify_fragment ----------------------------------------------------------

@settings(max_examples=60, deadline=None, suppress_health_check=HEALTH)
@given(payloads=payload_lists, chunk=st.integers(1, 700))
def test_a_good_fragment_passes_whole(tmp_path, payloads, chunk):
    raw, _ = fragment_bytes(3, payloads)
    res = audit.verify_fragment(write(tmp_path, raw), 3, read_chunk=chunk, expected_object_id=OID)
    assert res == audit.AuditResult(len(raw), len(payloads), None)


@settings(max_examples=400, deadline=None, suppress_health_check=HEALTH)
@given(payloads=payload_lists, data=st.data(), chunk=st.sampled_from([1, 5, 64, 1 << 20]))
def test_any_flipped_byte_is_found(tmp_path, payloads, data, chunk):
    raw, _ = fragment_bytes(3, payloads)
    pos = data.draw(st.integers(0, len(raw) - 1), label="pos")
    mask = data.draw(st.integers(1, 255), label="mask")
    bad = bytearray(raw)
    bad[pos] ^= mask
    res = audit.verify_fragment(write(tmp_path, bytes(bad)), 3, read_chunk=chunk)
    assert res.problem is not None, (pos, mask)
    assert res.bytes <= len(raw)            # never read past the file, whatever a length says


def test_every_byte_of_one_file_flipped_three_ways(tmp_path):
    """Exhaustive over one small file: a zero-length block, a one-byte block
    and a longer one, every position, low bit, high bit and all bits."""
    raw, _ = fragment_bytes(7, [b"", b"z", os.urandom(40)])
    path = tmp_path / "f"
    for pos in range(len(raw)):
        for mask in (0x01, 0x80, 0xFF):
            bad = bytearray(raw)
            bad[pos] ^= mask
            path.write_bytes(bad)
            assert audit.verify_fragment(path, 7).problem is not None, (pos, mask)


@settings(max_examples=300, deadline=None, suppress_health_check=HEALTH)
@given(payloads=payload_lists, data=st.data(), chunk=st.sampled_from([1, 7, 1 << 20]))
def test_a_cut_is_found_unless_it_falls_on_a_block_boundary(tmp_path, payloads, data, chunk):
    raw, ends = fragment_bytes(3, payloads)
    cut = data.draw(st.integers(0, len(raw) - 1), label="cut")
    res = audit.verify_fragment(write(tmp_path, raw[:cut]), 3, read_chunk=chunk)
    if cut in ends:
        # Indistinguishable from a shorter whole fragment: no problem, but the
        # block count is short, which the scrubber checks against metadata.
        assert res.problem is None and res.blocks == ends.index(cut) < len(payloads)
    else:
        assert res.problem is not None


def test_wrong_index_wrong_object_and_empty_files(tmp_path):
    raw, _ = fragment_bytes(3, [b"x" * 10])
    path = write(tmp_path, raw)
    assert "index" in audit.verify_fragment(path, 4).problem
    assert "object" in audit.verify_fragment(path, 3, expected_object_id="cd" * 16).problem
    assert audit.verify_fragment(path, 3).problem is None
    empty = write(tmp_path, b"", "empty")
    assert audit.verify_fragment(empty, 0) == audit.AuditResult(0, 0, "short header (file truncated)")
    with pytest.raises(FileNotFoundError):
        audit.verify_fragment(tmp_path / "missing", 0)


def test_a_huge_length_field_is_refused_without_reading(tmp_path):
    raw, ends = fragment_bytes(0, [b"abc"])
    bad = bytearray(raw)
    bad[ends[0]:ends[0] + 4] = (blocks.MAX_BLOCK + 1).to_bytes(4, "big")
    res = audit.verify_fragment(write(tmp_path, bytes(bad)), 0)
    assert "impossible length" in res.problem and res.bytes == ends[0] + blocks.BLOCK_HEAD.size
    bad[ends[0]:ends[0] + 4] = (1000).to_bytes(4, "big")          # plausible, but past the end
    assert "past the end" in audit.verify_fragment(write(tmp_path, bytes(bad)), 0).problem


def test_a_large_block_is_checked_in_bounded_reads(tmp_path):
    raw, _ = fragment_bytes(1, [os.urandom(300_000)])
    path = write(tmp_path, raw)
    check = audit.open_check(path, 1, read_chunk=4096)
    steps = []
    while not check.done:
        steps.append(check.advance())
    check.close()
    assert max(steps) <= 4096 + blocks.FILE_HEAD.size + 200       # one chunk, or the small header
    assert sum(steps) == len(raw) and check.result.problem is None and check.result.blocks == 1


# -- the token bucket -------------------------------------------------------------

class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_bucket_starts_empty_and_charges_what_was_read():
    clock = FakeClock()
    b = TokenBucket(1000, burst=500, clock=clock)
    b.spend(2000)
    assert b.wait_s() == pytest.approx(2.0)       # 2000 bytes at 1000/s
    clock.t += 1.5
    assert b.wait_s() == pytest.approx(0.5)
    clock.t += 0.5
    assert b.wait_s() == 0.0


def test_bucket_caps_savings_at_burst():
    clock = FakeClock()
    b = TokenBucket(1000, burst=500, clock=clock)
    clock.t += 60                                 # idle for a minute: saves only `burst`
    b.spend(1500)
    assert b.wait_s() == pytest.approx(1.0)


def test_bucket_average_rate_over_many_reads():
    clock = FakeClock()
    b = TokenBucket(1e6, burst=1 << 16, clock=clock)
    start = clock.t
    for _ in range(100):
        b.spend(100_000)
        clock.t += b.wait_s()                    # the reader rests exactly as told
    assert clock.t - start == pytest.approx(10.0)  # 10 MB at 1 MB/s


def test_bucket_rate_changes_and_unlimited():
    clock = FakeClock()
    b = TokenBucket(1000, burst=0, clock=clock)
    b.spend(1000)
    clock.t += 0.5                               # half repaid at 1000/s
    b.set_rate(250)
    assert b.wait_s() == pytest.approx(2.0)       # 500 left at 250/s
    b.set_rate(0)
    assert b.wait_s() == 0.0                      # unlimited forgives the debt
    b.spend(10 ** 9)
    assert b.wait_s() == 0.0


async def test_bucket_take_sleeps_and_wakes_on_rate_change():
    b = TokenBucket(1e9)
    await asyncio.wait_for(b.take(1000), 1)       # a microsecond's worth
    slow = TokenBucket(100)
    task = asyncio.create_task(slow.take(1000))   # 10 s at 100 B/s
    await asyncio.sleep(0.05)
    assert not task.done()
    slow.set_rate(0)
    await asyncio.wait_for(task, 1)


async def test_readers_sharing_a_bucket_each_wait_for_their_own_place_in_line():
    """The first payer rests for its own debt, not for the debt of a reader
    who paid after it (which would release them together, in a burst)."""
    b = TokenBucket(20_000, burst=0)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    first = asyncio.create_task(b.take(2_000))      # 0.1 s
    second = asyncio.create_task(b.take(8_000))     # then 0.4 s more
    await first
    t_first = loop.time() - t0
    assert not second.done()
    await second
    t_second = loop.time() - t0
    assert 0.08 <= t_first < 0.3 and t_second >= 0.45


# -- listing -----------------------------------------------------------------

def make_tree(root, names):
    for name in names:
        oid = name.split(".")[0]
        (root / oid[:2]).mkdir(parents=True, exist_ok=True)
        (root / oid[:2] / name).write_bytes(b"x" * (len(name) % 7))


def test_listing_is_sorted_by_object_then_numeric_index_and_pages_cleanly(tmp_path):
    frag = tmp_path / "fragments"
    oids = ["00" + "1" * 30, "00" + "2" * 30, "7f" + "0" * 30, "ff" + "e" * 30]
    names = [f"{o}.{i}" for o in oids for i in (0, 1, 2, 10, 11)]
    make_tree(frag, names)
    (frag / "00" / "not-a-fragment").write_bytes(b"")       # ignored
    (frag / "zz").mkdir()                                     # ignored
    (tmp_path / "tmp").mkdir()
    expected = sorted((o, i) for o in oids for i in (0, 1, 2, 10, 11))
    rows, nxt = audit.list_fragments(frag, now=0)
    assert [(r[0], r[1]) for r in rows] == expected and nxt is None
    assert rows[0][2] == len(names[0]) % 7 and rows[0][3] < 0     # age = now - mtime
    assert [(o, i) for o, i, _ in audit.fragment_names(frag)] == expected
    assert audit.count_fragments(frag) == len(expected)
    for limit in (1, 3, 5, 7, 19, 20):
        got, after = [], None
        while True:
            rows, after = audit.list_fragments(frag, after, limit)
            assert len(rows) <= limit
            got += [(r[0], r[1]) for r in rows]
            if after is None:
                break
        assert got == expected, limit


def test_listing_after_a_cursor_that_no_longer_exists(tmp_path):
    frag = tmp_path / "fragments"
    make_tree(frag, [f"{'10' + '0' * 30}.0", f"{'30' + '0' * 30}.0"])
    rows, nxt = audit.list_fragments(frag, after=f"{'20' + '0' * 30}.5")
    assert [r[0][:2] for r in rows] == ["30"] and nxt is None
    rows, nxt = audit.list_fragments(frag, after=f"{'10' + '0' * 30}.0")
    assert [r[0][:2] for r in rows] == ["30"]


def test_listing_a_missing_directory_is_empty(tmp_path):
    assert audit.list_fragments(tmp_path / "gone") == ([], None)
    assert list(audit.fragment_names(tmp_path / "gone")) == []
    with pytest.raises(ValueError):
        audit.parse_cursor("../etc.0")


# -- yielding to foreground work (storage/auditor.py) ----------------------------

class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_node_is_busy_while_data_moves_and_for_a_second_after():
    clock = Clock()
    fg = Foreground(clock)
    assert not fg.busy()                       # never served anything
    with fg:
        clock.now += 30                        # a long transfer: busy all along
        assert fg.busy()
        with fg:                               # two at once; one ends, one still runs
            pass
        clock.now += 30
        assert fg.busy()
    clock.now += BUSY_FOR_S - 0.01
    assert fg.busy()
    clock.now += 0.02
    assert not fg.busy()


class Recorder:
    """A limiter that records what each take is charged."""

    def __init__(self):
        self.paid: list[float] = []

    async def take(self, n: float) -> None:
        self.paid.append(n)


def auditor(tmp_path, share: float, fg: Foreground) -> Auditor:
    frag_dir = tmp_path / "fragments"
    return Auditor("a1", frag_dir, lambda oid, idx: frag_dir / oid[:2] / f"{oid}.{idx}", None,
                   NodeMetrics(lambda: 0), 8.0, fg, share)


@pytest.mark.parametrize("busy,requested,share,factor", [
    (False, False, 0.25, 1),     # an idle node: the full rate
    (True, False, 0.25, 4),      # a busy node: each byte costs 1 / share of the rate
    (True, True, 0.25, 1),       # a pass asked for (POST /audit) never yields
    (True, False, 1.0, 1),       # share 1: the audit never yields
])
async def test_a_continuous_pass_on_a_busy_node_pays_one_over_the_share(tmp_path, busy, requested, share, factor):
    fg = Foreground(Clock())
    a = auditor(tmp_path, share, fg)
    raw, _ = fragment_bytes(2, [os.urandom(100_000), os.urandom(50_000)])
    path = tmp_path / "fragments" / OID[:2] / f"{OID}.2"
    path.parent.mkdir(parents=True)
    path.write_bytes(raw)
    p = a._new_pass(8.0)
    p.requested = requested
    limiter = Recorder()
    group = PassFiles(a.frag_dir, [OID[:2]], a.path_for).next_group(1 << 20)
    if busy:
        with fg:
            await a._audit_group(p, group, limiter)
    else:
        await a._audit_group(p, group, limiter)
    assert p.bytes_verified >= 150_000 and p.files_done == 1
    # Every byte read, and the rest of the per-file charge (AUDIT_FILE_COST), at the factor.
    assert sum(limiter.paid) == pytest.approx(factor * max(AUDIT_FILE_COST, p.bytes_verified))
    assert p.bytes_yielding == (p.bytes_verified if factor > 1 else 0)


def test_the_busy_share_is_never_zero(tmp_path):
    for share in (0, -1, 1.5):
        with pytest.raises(ValueError):
            auditor(tmp_path, share, Foreground())


def test_a_pass_checks_small_files_a_group_at_a_time_and_large_ones_a_chunk_at_a_time(tmp_path):
    """Groups of files up to a chunk of the rate (each small file counting AUDIT_FILE_COST);
    a large file ends its group, open, for its other chunks; a bad file is found in its group;
    every file is visited once, in order."""
    frag_dir = tmp_path / "fragments"
    names = []
    for i in range(10):
        oid = f"{i:02d}" * 16
        size = 3 << 20 if i == 6 else 1000
        raw, _ = fragment_bytes(0, [os.urandom(size)], oid)
        if i == 3:
            raw = raw[:-1] + bytes([raw[-1] ^ 1])          # a flipped bit in its last block
        path = frag_dir / oid[:2] / f"{oid}.0"
        path.parent.mkdir(parents=True)
        path.write_bytes(raw)
        names.append(oid)
    files = PassFiles(frag_dir, audit.prefix_dirs(frag_dir), lambda oid, idx: frag_dir / oid[:2] / f"{oid}.{idx}")
    chunk = 4 * AUDIT_FILE_COST
    groups = []
    while group := files.next_group(chunk):
        groups.append(group)
    assert [g.oid for group in groups for g in group] == names
    assert [len(group) for group in groups] == [4, 3, 3]       # 4 small; 2 small + the large one; 3 small
    large = groups[1][-1]
    assert not large.check.done and not large.check.closed and large.n < 3 << 20
    while not large.check.done:
        large.check.advance()
    assert large.check.problem is None
    large.check.close()
    for group in groups:
        for g in group:
            if g is not large:
                assert g.check.done and g.check.closed
                assert (g.check.problem is not None) == (g.oid == names[3])
