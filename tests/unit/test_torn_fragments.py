"""Torn or damaged fragment files: cut at every byte, zeroed anywhere, one bit flipped.

A node writes a fragment to tmp/, fsyncs it, and only then renames it to
its name, so a crash never leaves a torn fragment *at its name*; what a
crash leaves in tmp/ is never read. A disk can still damage a file later
(cut it, zero a range, flip a bit). Each damage must be seen: by the node's
audit (``storage.audit.verify_fragment``, every block's xxh3), or, for a
cut that falls exactly between two blocks (which per-block checksums cannot
see), by the scrubber's size check (the exact size the object's record
implies: ``storage.blocks.expected_file_size``, which scrub/repair.py
compares with the node's inventory). And a GET (``open_range`` /
``read_verified``) never sends a damaged block as good.

The fragment is made by the real code: an object erasure-coded by the codec,
framed, written and landed by ``storage.fragments.IncomingFragment``.
"""
from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import xxhash
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minis3.ec.codec import Codec
from minis3.storage import audit, blocks
from minis3.storage.fragments import READ_BATCH, BadFragmentFile, IncomingFragment, open_range

OID = "3f" * 16
IDX = 4                         # a parity fragment of a 4+2 object
NODE = "node-b2"
SEGMENT = 1024
SIZE = 3 * SEGMENT + 300        # three whole segments and a short last one
HEALTH = [HealthCheck.function_scoped_fixture]


@dataclass
class Fragment:
    raw: bytes                  # the file as landed
    frames: list[bytes]         # its blocks (head + data), in order
    header_len: int
    expected_size: int          # what the scrubber expects, from the object's size alone

    @property
    def part_ends(self) -> list[int]:
        """Where the header and each block end: the only cuts the audit cannot see."""
        ends, pos = [self.header_len], self.header_len
        for f in self.frames:
            pos += len(f)
            ends.append(pos)
        return ends


@pytest.fixture(scope="module")
def fragment(tmp_path_factory) -> Fragment:
    root = tmp_path_factory.mktemp("node")
    codec = Codec(4, 2)
    data = random.Random(7).randbytes(SIZE)
    datas = [codec.encode(data[i:i + SEGMENT])[IDX] for i in range(0, SIZE, SEGMENT)]
    info = blocks.fragment_info(OID, IDX, NODE, int(time.time() * 1000))
    final = root / "fragments" / OID[:2] / f"{OID}.{IDX}"

    async def land() -> None:
        incoming = IncomingFragment(root / "tmp" / f"{OID}.{IDX}.x", final, blocks.file_header(IDX, info))
        for d in datas:
            await incoming.add(blocks.BLOCK_HEAD.pack(len(d), blocks.checksum(d)), [memoryview(d)])
        await incoming.land(threading.Lock())
    asyncio.run(land())
    raw = final.read_bytes()
    _, _, hlen = blocks.parse_file_header(raw)
    frames = [blocks.frame(d) for d in datas]
    assert raw == raw[:hlen] + b"".join(frames)
    expected = blocks.expected_file_size(OID, IDX, NODE, *codec.fragment_sizes(SIZE, SEGMENT))
    assert expected == len(raw)                          # the scrubber's arithmetic agrees with the writer
    assert len(frames) == 4 and len(frames[-1]) < len(frames[0])
    return Fragment(raw, frames, hlen, expected)


# -- the two checks, and what a GET sends -------------------------------------

def audit_problem(path: Path) -> str | None:
    return audit.verify_fragment(path, IDX, expected_object_id=OID).problem


def scrubber_says_wrong_size(path: Path, fragment: Fragment) -> bool:
    """scrub/repair.py's test of an inventory row: its size against the record's."""
    return os.path.getsize(path) != fragment.expected_size


def get_all(path: Path, limit: int = READ_BATCH) -> tuple[bytes, str | None, int] | None:
    """What a GET of every block sends (bytes, the problem it stopped at,
    Content-Length), or None if the file is refused at open."""
    try:
        rng = open_range(path, IDX, 0, -1)
    except BadFragmentFile:
        return None
    try:
        sent, problem = [], None
        while not rng.done and problem is None:
            good, _, problem = rng.read_verified(limit)
            sent.append(bytes(good))
        return b"".join(sent), problem, rng.length
    finally:
        rng.close()


def check_get(path: Path, fragment: Fragment, damaged: bool) -> None:
    """A GET sends only whole blocks exactly as written, and a damaged file
    never reads as the whole fragment: it is refused at open, stops at a
    problem, or (cut between blocks) is short of blocks, which the reader,
    who asks for every segment it needs by number, sees as a body cut short."""
    got = get_all(path)
    if got is None:
        assert damaged
        return
    sent, problem, _length = got
    whole = [b"".join(fragment.frames[:j]) for j in range(len(fragment.frames) + 1)]
    assert sent in whole, "a GET sent bytes that are not the blocks as written"
    if damaged:
        assert problem is not None or sent != whole[-1]


def detected(path: Path, fragment: Fragment) -> bool:
    return audit_problem(path) is not None or scrubber_says_wrong_size(path, fragment)


# -- cuts ---------------------------------------------------------------------

def test_a_cut_at_every_byte_is_detected(fragment, tmp_path):
    """Every cut: the audit sees it, except a cut exactly at the end of the
    header or of a block; those, and only those, the size check sees."""
    path = tmp_path / f"{OID}.{IDX}"
    audit_blind = []
    for at in range(len(fragment.raw)):
        path.write_bytes(fragment.raw[:at])
        if audit_problem(path) is None:
            audit_blind.append(at)
        assert scrubber_says_wrong_size(path, fragment)
        assert detected(path, fragment), at
        check_get(path, fragment, damaged=True)
    assert audit_blind == fragment.part_ends[:-1]
    path.write_bytes(fragment.raw)                       # and the whole file passes both
    assert not detected(path, fragment)
    check_get(path, fragment, damaged=False)


def test_zeros_appended_past_the_end_are_detected(fragment, tmp_path):
    """A file system that extends a file with zero-filled blocks."""
    path = tmp_path / f"{OID}.{IDX}"
    for extra in (1, blocks.BLOCK_HEAD.size, blocks.BLOCK_HEAD.size + 1, 4096 - len(fragment.raw) % 4096):
        path.write_bytes(fragment.raw + bytes(extra))
        assert audit_problem(path) is not None and scrubber_says_wrong_size(path, fragment), extra
        check_get(path, fragment, damaged=True)


# -- zeros --------------------------------------------------------------------

def test_a_zeroed_block_head_is_not_an_empty_block():
    """A zeroed head reads as length 0 and xxh3 0; the xxh3 of no bytes is
    not 0, so it fails its own checksum (and a GET's layout check besides)."""
    assert xxhash.xxh3_64_intdigest(b"") != 0
    assert blocks.parse_block_head(bytes(blocks.BLOCK_HEAD.size)) == (0, 0)


def test_every_part_zeroed_whole_is_detected(fragment, tmp_path):
    """The header, each block head, each block's data, each whole block,
    everything from each part on (a zero-filled tail): the size is right, so
    the audit alone must see it."""
    path = tmp_path / f"{OID}.{IDX}"
    ends = fragment.part_ends
    spans = [(0, ends[0])]
    for start, end in zip(ends, ends[1:]):
        head_end = start + blocks.BLOCK_HEAD.size
        spans += [(start, head_end), (head_end, end), (start, end), (start, len(fragment.raw))]
    for start, end in spans:
        path.write_bytes(fragment.raw[:start] + bytes(end - start) + fragment.raw[end:])
        assert not scrubber_says_wrong_size(path, fragment)
        assert audit_problem(path) is not None, (start, end)
        check_get(path, fragment, damaged=True)


@settings(max_examples=300, deadline=None, suppress_health_check=HEALTH)
@given(data=st.data())
def test_a_zeroed_range_anywhere_is_detected(fragment, tmp_path, data):
    raw = fragment.raw
    start = data.draw(st.integers(0, len(raw) - 1), label="start")
    length = data.draw(st.integers(1, len(raw) - start), label="length")
    damaged = raw[:start] + bytes(length) + raw[start + length:]
    path = tmp_path / f"{OID}.{IDX}"
    path.write_bytes(damaged)
    changed = damaged != raw                             # the bytes may have been zeros already
    assert detected(path, fragment) == changed
    check_get(path, fragment, damaged=changed)


# -- flipped bits --------------------------------------------------------------

def test_a_flipped_bit_in_every_byte_is_detected(fragment, tmp_path):
    path = tmp_path / f"{OID}.{IDX}"
    for pos in range(len(fragment.raw)):
        bad = bytearray(fragment.raw)
        bad[pos] ^= 1 << (pos % 8)
        path.write_bytes(bytes(bad))
        assert audit_problem(path) is not None, pos
        check_get(path, fragment, damaged=True)


@settings(max_examples=200, deadline=None, suppress_health_check=HEALTH)
@given(data=st.data())
def test_any_flipped_bit_is_detected_and_never_sent(fragment, tmp_path, data):
    raw = fragment.raw
    pos = data.draw(st.integers(0, len(raw) - 1), label="pos")
    bit = data.draw(st.integers(0, 7), label="bit")
    limit = data.draw(st.sampled_from([1, 400, READ_BATCH]), label="limit")
    bad = bytearray(raw)
    bad[pos] ^= 1 << bit
    path = tmp_path / f"{OID}.{IDX}"
    path.write_bytes(bytes(bad))
    assert audit_problem(path) is not None
    got = get_all(path, limit)
    if got is not None:
        sent, problem, _ = got
        assert sent in [b"".join(fragment.frames[:j]) for j in range(len(fragment.frames))]
        assert problem is not None
