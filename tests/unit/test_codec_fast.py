"""The GET fast path: with all k data fragments a segment is their payloads
joined (Codec.decode_segment / data_pieces), and it must give exactly what
pyeclib's decode gives; with a data fragment missing it must fall back."""
from __future__ import annotations

import asyncio
import base64
import random
import struct
import zlib

import pytest

from minis3.ec import codec as codec_mod
from minis3.ec.codec import HEADER_SIZE, SYSTEMATIC_BACKENDS, Codec
from minis3.frontend import datapath as dp_mod
from minis3.frontend.datapath import DataPath, segment_checksum
from minis3.storage.client import FragmentError

MiB = 1 << 20
SIZES = [1, 2, 3, 15, 16, 17, 63, 64, 65, 100, 1000, 4095, 4096, 4097, 65535, 65537,
         MiB - 1, MiB, MiB + 1, 3 * 333_333 + 7]
SCHEMES = [(2, 1), (3, 2), (4, 2), (5, 3), (6, 3), (8, 4), (10, 4)]


class CountingCodec(Codec):
    """Counts the calls that reach pyeclib's decode."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.pyeclib_decodes = 0
        real = self._driver.decode

        def counted(frags):
            self.pyeclib_decodes += 1
            return real(frags)
        self._driver = _DriverProxy(self._driver, counted)


class _DriverProxy:
    def __init__(self, driver, decode):
        self._d, self.decode = driver, decode

    def __getattr__(self, name):
        return getattr(self._d, name)


def _codecs():
    return {(k, m): CountingCodec(k, m, "isa_l_rs_vand") for k, m in SCHEMES}


@pytest.fixture(scope="module")
def codecs():
    return _codecs()


def test_default_backend_is_whitelisted_and_checked():
    c = Codec(4, 2)
    assert c.backend in SYSTEMATIC_BACKENDS
    assert c.fast


def encoded_segments(c, seed: int):
    """``(rng, size, segment, its fragments)`` for each of SIZES, random bytes from ``seed``."""
    rng = random.Random(seed)
    for size in SIZES:
        seg = rng.randbytes(size)
        yield rng, size, seg, c.encode(seg)


@pytest.mark.parametrize("k,m", SCHEMES)
def test_fast_join_equals_pyeclib_decode(codecs, k, m):
    c = codecs[(k, m)]
    for rng, size, seg, frags in encoded_segments(c, k * 100 + m):
        expected = c.decode(frags[:k])                 # pyeclib, from the data fragments
        assert expected == seg
        for given in (frags[:k], frags[:k][::-1], rng.sample(frags, len(frags)),
                      [*frags[k:], *frags[:k]]):
            pieces = c.data_pieces(given)
            assert pieces is not None, (k, m, size)
            assert sum(len(p) for p in pieces) == size
            before = c.pyeclib_decodes
            got = c.decode_segment(given)
            assert c.pyeclib_decodes == before, "the fast path must not call pyeclib"
            assert type(got) is bytes and got == expected, (k, m, size)


@pytest.mark.parametrize("k,m", SCHEMES)
def test_one_data_fragment_missing_falls_back(codecs, k, m):
    c = codecs[(k, m)]
    for rng, size, seg, frags in encoded_segments(c, k * 7 + m):
        for missing in {0, k - 1, rng.randrange(k)}:
            given = [f for i, f in enumerate(frags) if i != missing][:k]   # k-1 data + 1 parity
            assert c.data_pieces(given) is None
            before = c.pyeclib_decodes
            assert c.decode_segment(given) == seg == c.decode(given)
            assert c.pyeclib_decodes > before


@pytest.mark.parametrize("backend", sorted(SYSTEMATIC_BACKENDS))
def test_every_whitelisted_backend(backend):
    rng = random.Random(1)
    for k, m in ((2, 1), (4, 2), (6, 3)):
        c = Codec(k, m, backend)
        assert c.fast, backend
        for size in (1, 17, 4096, 65537, MiB, MiB + 1):
            seg = rng.randbytes(size)
            frags = c.encode(seg)
            assert c.decode_segment(frags[:k]) == seg == c.decode(frags[:k])
            assert c.decode_segment(frags[1:k + 1]) == seg


def test_backend_not_whitelisted_uses_pyeclib(monkeypatch):
    monkeypatch.setattr(codec_mod, "SYSTEMATIC_BACKENDS", frozenset())
    c = CountingCodec(4, 2, "isa_l_rs_vand")
    assert not c.fast
    seg = random.Random(2).randbytes(MiB + 1)
    frags = c.encode(seg)
    assert c.data_pieces(frags[:4]) is None
    assert c.decode_segment(frags[:4]) == seg and c.pyeclib_decodes == 1


def _corrupt(frag: bytes, offset: int, value: bytes) -> bytes:
    return frag[:offset] + value + frag[offset + len(value):]


def test_headers_that_do_not_parse_fall_back(codecs):
    c = codecs[(4, 2)]
    seg = random.Random(3).randbytes(MiB + 1)
    frags = c.encode(seg)
    size = len(frags[0]) - HEADER_SIZE

    def refresh_sum(f: bytes) -> bytes:       # keep the metadata checksum right
        return _corrupt(f, 67, struct.pack("<I", zlib.crc32(f[:59])))

    bad = {
        "magic": _corrupt(frags[1], 59, b"\0\0\0\0"),
        "metadata checksum": _corrupt(frags[1], 12, struct.pack("<Q", 5)),       # orig size, old sum
        "orig size disagrees": refresh_sum(_corrupt(frags[1], 12, struct.pack("<Q", len(seg) - 1))),
        "size field": refresh_sum(_corrupt(frags[1], 4, struct.pack("<I", size - 1))),
        "backend metadata": refresh_sum(_corrupt(frags[1], 8, struct.pack("<I", 16))),
        "inline checksum": refresh_sum(_corrupt(frags[1], 20, b"\x02")),
        "truncated": frags[1][:-1],
        "short": frags[1][:HEADER_SIZE - 1],
    }
    for why, f in bad.items():
        assert c.data_pieces([frags[0], f, frags[2], frags[3]]) is None, why
    # A parity fragment that disagrees on the original size also stops the join.
    p = refresh_sum(_corrupt(frags[4], 12, struct.pack("<Q", len(seg) + 1)))
    assert c.data_pieces([*frags[:4], p]) is None
    # Duplicated data fragment (index 1 twice, index 3 absent): not all k data.
    assert c.data_pieces([frags[0], frags[1], frags[2], frags[1]]) is None


def test_fragments_of_another_k_are_not_joined_wrongly():
    """A record coded with more data fragments than this codec's k: joining
    only k of them would drop bytes, so it must not take the fast path."""
    c6, c4 = Codec(6, 2), Codec(4, 2)
    seg = random.Random(4).randbytes(MiB)
    frags = c6.encode(seg)
    assert c4.data_pieces(frags[:6]) is None


# ---------------------------------------------------------------- the read path
class FakeStorage:
    """storage.get over fragments held in memory; ``down`` nodes fail."""

    def __init__(self, frags_by_index: dict[int, list[bytes]], down: set[str] = frozenset()):
        self.frags, self.down, self.asked = frags_by_index, set(down), []

    async def get(self, node, object_id, index, first, last):
        self.asked.append(index)
        if node in self.down:
            raise FragmentError(f"node {node}: down", node=node, unreachable=True)
        for seg in range(first, last + 1):
            await asyncio.sleep(0)
            yield self.frags[index][seg]


def _object(c: Codec, size: int, seg_size: int, seed: int):
    data = random.Random(seed).randbytes(size)
    segs = [data[i:i + seg_size] for i in range(0, size, seg_size)]
    frags: dict[int, list[bytes]] = {i: [] for i in range(c.width)}
    for s in segs:
        for i, f in enumerate(c.encode(s)):
            frags[i].append(f)
    nodes = [f"n{i}" for i in range(c.width)]
    ec = {"id": "obj", "k": c.k, "m": c.m, "backend": c.backend, "seg": seg_size, "nodes": nodes,
          "segsums": base64.b64encode(b"".join(segment_checksum(s) for s in segs)).decode()}
    return data, frags, {"size": size, "ec": ec}


async def _read(dp: DataPath, rec: dict, start: int, end: int) -> bytes:
    return b"".join([bytes(p) async for p in dp.read(rec, start, end)])


@pytest.mark.parametrize("down", [set(), {"n0"}, {"n2", "n5"}])
def test_read_path_whole_and_ranges(down):
    c = CountingCodec(4, 2)
    seg_size = 64 * 1024 + 5
    size = 5 * seg_size + 1234
    data, frags, rec = _object(c, size, seg_size, seed=len(down))
    storage = FakeStorage(frags, down={d for d in down})
    dp = DataPath(codec=c, storage=storage, meta=None, azs=[("az1", rec["ec"]["nodes"])],
                  segment_size=seg_size, inline_threshold=4096)
    for start, end in [(0, size - 1), (0, 0), (size - 1, size - 1), (1, seg_size), (seg_size - 1, 3 * seg_size + 2),
                       (100, 101), (2 * seg_size, size - 1)]:
        assert asyncio.run(_read(dp, rec, start, end)) == data[start:end + 1], (start, end)
    if not down:
        assert c.pyeclib_decodes == 0, "all data fragments were there: no pyeclib decode"
    elif any(int(n[1:]) < c.k for n in down):
        assert c.pyeclib_decodes > 0


def test_read_path_bad_fast_join_is_caught_by_segment_checksum(monkeypatch):
    """If the joined bytes were ever wrong, read()'s segment checksum fails and
    repair (pyeclib over every combination) returns the right bytes."""
    c = Codec(4, 2)
    seg_size = 4096 * 4
    data, frags, rec = _object(c, 3 * seg_size, seg_size, seed=9)
    real = Codec.data_pieces

    def wrong(self, fragments):
        pieces = real(self, fragments)
        return None if pieces is None else pieces[::-1]      # right bytes, wrong order
    monkeypatch.setattr(Codec, "data_pieces", wrong)
    dp = DataPath(codec=c, storage=FakeStorage(frags), meta=None, azs=[("az1", rec["ec"]["nodes"])],
                  segment_size=seg_size, inline_threshold=4096)
    monkeypatch.setattr(dp_mod.log, "warning", lambda *a, **kw: None)
    assert asyncio.run(_read(dp, rec, 0, len(data) - 1)) == data


@pytest.mark.parametrize("size", [1, 3, 4, 5, 1 << 20, (1 << 20) + 1, (1 << 20) + 3, (1 << 20) + 4,
                                  2 << 20, (3 << 20) + 1, (3 << 20) + 77])
def test_fragment_sizes_are_those_the_put_path_writes(size):
    """The scrubber, `where` and `inspect` judge a fragment file by its size:
    it must be what encoding the PUT path's segments gives, including a last
    segment of fewer than k bytes (which pyeclib's get_segment_info folds
    into the segment before: every fragment of such an object once looked
    truncated to the scrubber)."""
    codec, seg = Codec(4, 2), 1 << 20
    full, last, n = codec.fragment_sizes(size, seg)
    cuts = [seg] * (-(-size // seg) - 1) + [size - seg * (-(-size // seg) - 1)]
    assert n == len(cuts)
    assert last == len(codec.encode(b"x" * cuts[-1])[0])
    assert full == len(codec.encode(b"x" * cuts[0])[0])
