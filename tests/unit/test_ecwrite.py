"""ECWrite, the steps of an erasure-coded PUT: what reaches the nodes decodes to
the body, the commit deadline is the window after the first fragment landed,
and any failure (a node, the body's verification) removes every fragment that
landed and queues the write for GC. Storage is held in memory here: this is
the pipeline's logic alone (tests/integration runs it against real nodes)."""
from __future__ import annotations

import asyncio
import random
import time

import pytest

from minis3.core import errors as E
from minis3.ec.codec import Codec
from minis3.frontend.datapath import DataPath
from minis3.storage import blocks
from minis3.storage.client import FragmentError

SEG = 64 * 1024
NODES = [("az-a", ["a1", "a2"]), ("az-b", ["b1", "b2"]), ("az-c", ["c1", "c2"])]


class MemoryStorage:
    def __init__(self, fail: str | None = None, fail_after: int = 0):
        self.files: dict[tuple[str, int], bytes] = {}
        self.deleted: list[tuple[str, int]] = []
        self.lengths: list[int | None] = []                # each put's promised length
        self.fail, self.fail_after = fail, fail_after

    async def put(self, node, object_id, index, body, length=None) -> dict:
        whole = not hasattr(body, "__aiter__")             # one segment: one plain body
        if whole and node == self.fail:
            raise FragmentError(f"node {node}: gone", node=node, unreachable=True)
        chunks = [bytes(body)] if whole else [c async for c in _fail_after(body, node == self.fail, self.fail_after)]
        # A stream with a length is of (head, data) pairs (storage/client.SealedStream), else of framed blocks.
        assert all(isinstance(c, tuple) == (length is not None) for c in chunks)
        chunks = [b"".join(c) if isinstance(c, tuple) else c for c in chunks]
        self.lengths.append(length)
        if length is not None:                             # a Content-Length: the body must keep it
            assert sum(map(len, chunks)) == length
        await asyncio.sleep(0)
        self.files[(object_id, index)] = b"".join(chunks)
        return {"bytes": sum(map(len, chunks))}

    async def delete(self, node, object_id, index) -> None:
        self.deleted.append((object_id, index))
        self.files.pop((object_id, index), None)


async def _fail_after(body, fail: bool, n: int):
    i = 0
    async for chunk in body:
        if fail and i == n:
            raise FragmentError("node gone mid-upload", unreachable=False)
        i += 1
        yield chunk


class Meta:
    def __init__(self):
        self.gc: list[tuple[str, str]] = []

    async def gc_add(self, ec, reason):
        self.gc.append((ec["id"], reason))


def _path(storage, meta=None) -> DataPath:
    return DataPath(codec=Codec(4, 2), storage=storage, meta=meta or Meta(), azs=NODES, segment_size=SEG,
                    inline_threshold=4096, commit_window_s=150.0)


async def _body(data: bytes, piece: int = 10_000):
    for i in range(0, len(data), piece):
        await asyncio.sleep(0)
        yield data[i:i + piece]


def _fragment_data(framed: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(framed):
        length, _ = blocks.parse_block_head(framed[pos:pos + blocks.BLOCK_HEAD.size])
        pos += blocks.BLOCK_HEAD.size
        out.append(framed[pos:pos + length])
        pos += length
    return out


@pytest.mark.parametrize("size", [4097, SEG, SEG + 1, 5 * SEG + 123])
def test_fragments_decode_to_the_body_and_the_deadline_is_the_window(size):
    data = random.Random(size).randbytes(size)
    storage, hashed = MemoryStorage(), []
    dp = _path(storage)
    t0 = time.monotonic()
    stored = asyncio.run(dp.store(_body(data), on_segment=hashed.append))
    assert b"".join(hashed) == data                     # every byte hashed once, in order
    assert stored.size == size and stored.inline is None
    assert t0 + 150.0 <= stored.commit_by <= time.monotonic() + 150.0
    ec = stored.ec
    per_index = {i: _fragment_data(storage.files[(ec["id"], i)]) for i in range(6)}
    segments = [dp.codec.decode([per_index[i][s] for i in (0, 2, 4, 5)]) for s in range(len(per_index[0]))]
    assert b"".join(segments) == data


@pytest.mark.parametrize("size", [SEG + 1, 2 * SEG, 5 * SEG + 123])
def test_a_body_of_known_size_sends_each_fragment_with_its_exact_length(size):
    """The size known before the bytes (a Content-Length): every streamed
    fragment PUT is told its length up front, and it is the bytes sent."""
    data = random.Random(size).randbytes(size)
    storage = MemoryStorage()
    dp = _path(storage)
    stored = asyncio.run(dp.store(_body(data), size=size))
    ec = stored.ec
    assert storage.lengths == [len(storage.files[(ec["id"], i)]) for i in range(6)]
    per_index = {i: _fragment_data(storage.files[(ec["id"], i)]) for i in range(6)}
    segments = [dp.codec.decode([per_index[i][s] for i in (0, 1, 2, 3)]) for s in range(len(per_index[0]))]
    assert b"".join(segments) == data
    storage = MemoryStorage()
    asyncio.run(_path(storage).store(_body(data)))       # not known: chunked, no length promised
    assert storage.lengths == [None] * 6


def test_a_small_body_stays_inline_with_no_deadline():
    stored = asyncio.run(_path(MemoryStorage()).store(_body(b"x" * 100)))
    assert stored.inline == b"x" * 100 and stored.commit_by is None


def test_a_one_segment_put_hands_the_fragment_its_node_refused_to_another_node():
    """Its fragments are still in memory: the failed one goes to a handoff node
    (the others stay where they landed), and the PUT succeeds."""
    storage, meta = MemoryStorage(fail="b2"), Meta()
    data = random.randbytes(SEG - 1)
    stored = asyncio.run(_path(storage, meta).store(_body(data)))
    nodes = stored.ec["nodes"]
    assert "b2" not in nodes and len(set(nodes)) == 5 and meta.gc == []
    frags = [_fragment_data(storage.files[(stored.ec["id"], i)])[0] for i in range(6)]
    assert Codec(4, 2).decode(frags[2:])[:len(data)] == data


@pytest.mark.parametrize("size", [SEG, 5 * SEG])
def test_a_node_failing_removes_every_landed_fragment_and_notes_gc(size):
    storage, meta = MemoryStorage(fail="b2", fail_after=0), Meta()
    with pytest.raises(E.ServiceUnavailable):
        asyncio.run(_path(storage, meta).store(_body(random.randbytes(size))))
    assert storage.files == {}, "a fragment that landed stayed"
    assert len(storage.deleted) >= 5 and [r for _, r in meta.gc] == ["failed-write"]


def test_a_body_that_fails_verification_leaves_nothing():
    storage, meta = MemoryStorage(), Meta()

    async def verify():
        raise E.BadDigest()
    with pytest.raises(E.BadDigest):
        asyncio.run(_path(storage, meta).store(_body(random.randbytes(3 * SEG)), verify=verify))
    assert storage.files == {} and [r for _, r in meta.gc] == ["failed-write"]
