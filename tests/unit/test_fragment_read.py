"""The read path of a fragment, both ends: the node's batched read-and-verify
of a fragment file (storage/fragments.py FragmentRange) and the frontend's
cutting of the streamed body into blocks (storage/client.py BlockCutter,
StorageClient.get) across arbitrary chunk boundaries."""
from __future__ import annotations

import asyncio
import os
import random
import socket

import aiohttp
import pytest
from aiohttp import web

from minis3.storage import blocks, fragments
from minis3.storage.client import BlockCutter, FragmentError, StorageClient
from minis3.storage.fragments import READ_BATCH, BadFragmentFile, open_range

OID = "ab" * 16


def fragment_bytes(index: int, payloads: list[bytes]) -> tuple[bytes, int]:
    """A whole fragment file, and the length of its header."""
    head = blocks.file_header(index, blocks.fragment_info(OID, index, "t", 1_700_000_000_000))
    return head + b"".join(blocks.frame(p) for p in payloads), len(head)


def payloads_of(n: int, size: int, last: int | None = None, seed: int = 1) -> list[bytes]:
    rnd = random.Random(seed)
    out = [rnd.randbytes(size) for _ in range(n)]
    if last is not None and n:
        out[-1] = rnd.randbytes(last)
    return out


def read_all(path, idx: int, first: int, last: int, limit: int) -> tuple[bytes, int, str | None, int]:
    """Everything a GET would send: (bytes, data bytes, problem, Content-Length)."""
    rng = open_range(path, idx, first, last)
    assert (rng.direct_fd >= 0) == (fragments.DIRECT_READ_MIN == 0)
    try:
        sent, data, problem = [], 0, None
        while not rng.done and problem is None:
            good, n, problem = rng.read_verified(limit)
            sent.append(bytes(good))
            data += n
        return b"".join(sent), data, problem, rng.length
    finally:
        rng.close()


# -- the node: FragmentRange --------------------------------------------------

@pytest.fixture(params=["page cache", "direct"])
def read_mode(request, monkeypatch):
    """Each FragmentRange test both ways: through the page cache, and with
    direct I/O (storage.fragments.DIRECT_READ_MIN lowered so small test files
    take the path big fragment files take)."""
    if request.param == "direct":
        monkeypatch.setattr(fragments, "DIRECT_READ_MIN", 0)
    return request.param


@pytest.mark.parametrize("limit", [1, 100, 1000, 5000, READ_BATCH])
@pytest.mark.parametrize("first,last", [(0, -1), (0, 9), (3, 6), (9, 9), (9, 20), (0, 0), (7, -1)])
def test_range_sends_exactly_the_blocks_asked_for(read_mode, tmp_path, limit, first, last):
    # 10 blocks of 300 bytes, the last one shorter (a short last segment).
    payloads = payloads_of(10, 300, last=123)
    raw, _ = fragment_bytes(2, payloads)
    p = tmp_path / "f"
    p.write_bytes(raw)
    sent, data, problem, length = read_all(p, 2, first, last, limit)
    end = len(payloads) - 1 if last < 0 else min(last, len(payloads) - 1)
    want = b"".join(blocks.frame(x) for x in payloads[first:end + 1])
    assert problem is None
    assert sent == want and length == len(want)                # Content-Length is what is sent
    assert data == sum(len(x) for x in payloads[first:end + 1])


def test_range_beyond_the_end_and_empty_files(read_mode, tmp_path):
    raw, _ = fragment_bytes(0, payloads_of(3, 50))
    p = tmp_path / "f"
    p.write_bytes(raw)
    assert read_all(p, 0, 5, 9, READ_BATCH) == (b"", 0, None, 0)
    assert read_all(p, 0, 2, 1, READ_BATCH) == (b"", 0, None, 0)     # last before first
    raw, _ = fragment_bytes(0, [])
    p.write_bytes(raw)                                                 # zero segments
    assert read_all(p, 0, 0, -1, READ_BATCH) == (b"", 0, None, 0)


@pytest.mark.parametrize("limit", [1, 700, READ_BATCH])
def test_a_flipped_byte_stops_the_range_before_that_block(read_mode, tmp_path, limit):
    payloads = payloads_of(6, 200)
    raw, hlen = fragment_bytes(1, payloads)
    stride = blocks.BLOCK_HEAD.size + 200
    bad = bytearray(raw)
    bad[hlen + 4 * stride + blocks.BLOCK_HEAD.size + 77] ^= 0x10       # in block 4's data
    p = tmp_path / "f"
    p.write_bytes(bytes(bad))
    sent, data, problem, length = read_all(p, 1, 0, -1, limit)
    assert sent == b"".join(blocks.frame(x) for x in payloads[:4])      # never block 4
    assert problem == "segment 4 checksum mismatch"
    assert length == len(raw) - hlen
    # A range that ends before the bad block never reads it.
    assert read_all(p, 1, 1, 3, limit)[2] is None


@pytest.mark.parametrize("cut", [1, 11, 12, 13, 150])
def test_a_file_cut_short_is_found(read_mode, tmp_path, cut):
    """Cut inside the last block (its head or its data): the layout (by the
    file's size) no longer matches that block's head, or its head is short."""
    payloads = payloads_of(4, 200)
    raw, hlen = fragment_bytes(0, payloads)
    stride = blocks.BLOCK_HEAD.size + 200
    p = tmp_path / "f"
    p.write_bytes(raw[:hlen + 3 * stride + cut])
    sent, _, problem, _ = read_all(p, 0, 0, -1, READ_BATCH)
    assert sent == b"".join(blocks.frame(x) for x in payloads[:3])
    assert problem is not None and "segment 3" in problem


def test_a_bad_length_in_a_middle_block_is_corrupt(read_mode, tmp_path):
    """A head whose length disagrees with block 0's (only the file's last
    block may be shorter) is refused, even with a matching checksum."""
    payloads = [b"a" * 100, b"b" * 60, b"c" * 140]           # 100 + 60 + 140 = 3 × 100
    raw, _ = fragment_bytes(0, payloads)
    p = tmp_path / "f"
    p.write_bytes(raw)
    sent, _, problem, _ = read_all(p, 0, 0, -1, READ_BATCH)
    assert sent == blocks.frame(payloads[0])
    assert problem.startswith("segment 1: block length 60")


def test_a_file_that_shrinks_while_open_is_found(read_mode, tmp_path):
    payloads = payloads_of(4, 100)
    raw, hlen = fragment_bytes(0, payloads)
    p = tmp_path / "f"
    p.write_bytes(raw)
    rng = open_range(p, 0, 0, -1)
    try:
        os.truncate(p, hlen + 2 * (blocks.BLOCK_HEAD.size + 100))      # at a block boundary
        good, _, problem = rng.read_verified(READ_BATCH)
        assert bytes(good) == b"".join(blocks.frame(x) for x in payloads[:2])
        assert problem == "segment 2: file cut short"
    finally:
        rng.close()


def test_bad_headers_are_refused_at_open(tmp_path):
    raw, hlen = fragment_bytes(3, payloads_of(2, 10))
    p = tmp_path / "f"
    p.write_bytes(raw)
    with pytest.raises(BadFragmentFile, match="index"):
        open_range(p, 4, 0, -1)
    bad = bytearray(raw)
    bad[20] ^= 1
    p.write_bytes(bytes(bad))
    with pytest.raises(BadFragmentFile, match="checksum"):
        open_range(p, 3, 0, -1)
    bad = bytearray(raw)
    bad[hlen:hlen + 4] = (blocks.MAX_BLOCK + 1).to_bytes(4, "big")
    p.write_bytes(bytes(bad))
    with pytest.raises(BadFragmentFile, match="block 0"):
        open_range(p, 3, 0, -1)


# -- the frontend: BlockCutter and StorageClient.get --------------------------

def test_block_cutter_takes_pieces_across_any_chunking():
    rnd = random.Random(7)
    for _ in range(200):
        data = rnd.randbytes(rnd.randrange(0, 3000))
        sizes = []
        left = len(data)
        while left:
            sizes.append(min(left, rnd.choice([0, 1, 12, 13, rnd.randrange(1, 500)])))
            left -= sizes[-1]
        chunks, i = [], 0
        while i < len(data):
            n = rnd.randrange(1, 700)
            chunks.append(data[i:i + n])
            i += n
        cut, out = BlockCutter(), []
        for n in sizes:
            as_views = rnd.random() < 0.5           # take_views: the same bytes, as views of the chunks
            while (piece := cut.take_views(n) if as_views else cut.take(n)) is None:
                before = len(cut)
                cut.feed(chunks.pop(0))
                assert len(cut) > before
            if as_views:
                assert all(isinstance(v, memoryview) for v in piece)
                assert blocks.checksum_of_views(piece) == blocks.checksum(b"".join(piece))
                piece = b"".join(piece)
            assert isinstance(piece, bytes) and len(piece) == n
            out.append(piece)
        assert b"".join(out) == data and len(cut) == 0 and not chunks


def test_block_cutter_takes_nothing_when_short_and_hands_over_whole_chunks():
    cut = BlockCutter()
    chunk = b"x" * 100
    cut.feed(chunk)
    assert cut.take(101) is None and len(cut) == 100       # nothing taken
    assert cut.take(100) is chunk                          # no copy of an exact chunk
    cut.feed(b"abc")
    cut.feed(b"")
    cut.feed(b"def")
    assert cut.take(0) == b"" and cut.take(2) == b"ab" and cut.take(3) == b"cde"
    assert cut.take(2) is None and cut.take(1) == b"f"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def fake_node():
    """A stand-in node whose GET answer each test sets: (status, body, how to
    send it: a list of piece sizes, chunked or with a length, cut or not)."""
    answer = {}

    async def get(request):
        status, body, pieces, chunked, close_after = answer["it"]
        if status != 200:
            return web.json_response({"code": "NoSuchFragment"}, status=status)
        resp = web.StreamResponse()
        if chunked:
            resp.enable_chunked_encoding()
        else:
            resp.content_length = answer.get("length", len(body))
        await resp.prepare(request)
        pos = 0
        for n in pieces:
            await resp.write(body[pos:pos + n])
            await asyncio.sleep(0)
            pos += n
        if pos < len(body):
            await resp.write(body[pos:])
        if close_after:
            request.transport.close()
            return resp
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/fragment/{oid}/{idx}", get)
    runner = web.AppRunner(app)
    await runner.setup()
    port = _free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    async with aiohttp.ClientSession() as session:
        sc = StorageClient(session, {"n1": f"http://127.0.0.1:{port}", "gone": f"http://127.0.0.1:{_free_port()}"})
        yield sc, answer
    await runner.cleanup()


async def _get(sc, node="n1", first=0, last=4):
    return [d async for d in sc.get(node, OID, 0, first, last)]


@pytest.mark.parametrize("chunked", [False, True])
async def test_get_cuts_blocks_across_chunk_boundaries(fake_node, chunked):
    sc, answer = fake_node
    payloads = payloads_of(5, 1000, last=321)
    body = b"".join(blocks.frame(p) for p in payloads)
    rnd = random.Random(3)
    for pieces in ([len(body)], [1] * 40, [5, 7, 11, 12, 1, 1011, 13, 2, 3000],
                   [rnd.randrange(1, 600) for _ in range(30)]):
        answer["it"] = (200, body, pieces, chunked, False)
        assert await _get(sc) == payloads


async def test_get_errors_are_the_same_as_before(fake_node):
    sc, answer = fake_node
    payloads = payloads_of(5, 1000)
    body = b"".join(blocks.frame(p) for p in payloads)
    stride = blocks.BLOCK_HEAD.size + 1000
    # The node stops after 2 blocks and a bit (a bad block: it cuts the stream).
    answer["it"] = (200, body[:2 * stride + 30], [100, 2000], False, True)
    answer["length"] = len(body)
    got = []
    with pytest.raises(FragmentError, match="cut short at segment 2") as e:
        async for d in sc.get("n1", OID, 0, 0, 4):
            got.append(d)
    assert got == payloads[:2] and not e.value.unreachable
    del answer["length"]
    # The body ends early (fewer blocks than asked for), chunked or not.
    for chunked in (False, True):
        answer["it"] = (200, body[:3 * stride], [500], chunked, False)
        with pytest.raises(FragmentError, match="cut short at segment 3"):
            await _get(sc)
    # A block whose data does not match its checksum.
    bad = bytearray(body)
    bad[stride + 50] ^= 1
    answer["it"] = (200, bytes(bad), [333], False, False)
    with pytest.raises(FragmentError, match="segment 1 checksum mismatch") as e:
        await _get(sc)
    assert not e.value.unreachable
    # A block head with an impossible length.
    bad = bytearray(body)
    bad[stride:stride + 4] = (blocks.MAX_BLOCK + 1).to_bytes(4, "big")
    answer["it"] = (200, bytes(bad), [333], False, False)
    with pytest.raises(FragmentError, match="cut short at segment 1"):
        await _get(sc)
    # Refused, and not there at all.
    answer["it"] = (404, b"", [], False, False)
    with pytest.raises(FragmentError, match="answered 404") as e:
        await _get(sc)
    assert not e.value.unreachable
    with pytest.raises(FragmentError) as e:
        await _get(sc, node="gone")
    assert e.value.unreachable and e.value.node == "gone"
