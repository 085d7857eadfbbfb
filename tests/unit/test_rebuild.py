"""Rebuilding fragments, without a cluster: the pure core (ec/rebuild.py), the
batch read's body both ways (storage/batchread.py and the node's BatchRead),
how the scrubber sizes batches (scrub/batches.py), and a node's rebuild of a
batch (storage/rebuild.py) against sources held in memory."""
from __future__ import annotations

import base64
import random

import pytest

from minis3.ec import rebuild as R
from minis3.ec.codec import Codec
from minis3.scrub.batches import batch_length
from minis3.storage import batchread, blocks
from minis3.storage.rebuild import Rebuilder, parse_request
from minis3.storage.fragments import open_many
from minis3.storage.server import StorageNode

K, M = 4, 2
SEG = 64 * 1024


@pytest.fixture(scope="module")
def codec():
    return Codec(K, M)


def encode_object(codec: Codec, data: bytes, seg: int = SEG) -> tuple[list[list[bytes]], bytes]:
    """Every fragment's segments (fragment index → one bytes a segment), and the segment checksums."""
    frags: list[list[bytes]] = [[] for _ in range(K + M)]
    sums = b""
    for start in range(0, len(data), seg):
        piece = data[start:start + seg]
        sums += R.segment_checksum(piece)
        for i, f in enumerate(codec.encode(piece)):
            frags[i].append(f)
    return frags, sums


def make_job(oid: str, size: int, sums: bytes, sources, indexes, seg: int = SEG) -> R.RebuildJob:
    return R.RebuildJob(oid, K, M, "isa_l_rs_vand", seg, size, sums, tuple((i, f"n{i}") for i in sources),
                        tuple(indexes))


# -- ec/rebuild.py ---------------------------------------------------------------

def test_rebuild_segment_computes_the_lost_fragments_and_refuses_a_wrong_source(codec):
    seg = random.Random(1).randbytes(100_000)
    frags = codec.encode(seg)
    want = R.segment_checksum(seg)
    for sources, missing in (([0, 1, 2, 3], [4, 5]), ([1, 2, 4, 5], [0, 3]), ([0, 3, 4, 5], [1]),
                             ([0, 1, 2, 4], [5]), ([1, 2, 3, 4], [0]), ([0, 1, 3, 5], [4])):
        for have in (None, sources):             # (without the sources' indexes: decode, then reconstruct)
            got = R.rebuild_segment(codec, [frags[i] for i in sources], missing, want, have)
            assert got == [frags[i] for i in missing]
            for wrong in range(K):
                bad = [bytearray(frags[i]) for i in sources]
                bad[wrong][-1] ^= 1              # one byte of one source's payload
                assert R.rebuild_segment(codec, [bytes(b) for b in bad], missing, want, have) is None
    assert R.rebuild_segment(codec, frags[:4], [], R.segment_checksum(seg[:-1] + b"x")) is None


def test_rebuild_segments_over_many_segments_copies_and_computes(codec):
    data = random.Random(2).randbytes(5 * SEG + 777)
    frags, sums = encode_object(codec, data)
    job = make_job("ab" * 16, len(data), sums, [1, 2, 3, 5], [0, 5])       # 5 is a source: copied as it is
    assert job.segments == 6 and job.missing == [0]
    out = R.rebuild_segments(codec, job, 2, {i: frags[i][2:5] for i in (1, 2, 3, 5)})
    assert out == {0: frags[0][2:5], 5: frags[5][2:5]}
    wrong = {i: list(frags[i][2:5]) for i in (1, 2, 3, 5)}
    wrong[3][1] = frags[3][0]                    # segment 3 gets another segment's fragment
    with pytest.raises(R.SegmentMismatch) as e:
        R.rebuild_segments(codec, job, 2, wrong)
    assert e.value.segment == 3
    with pytest.raises(ValueError):
        R.rebuild_segments(codec, job, 2, {1: frags[1][2:5], 2: frags[2][2:4], 3: frags[3][2:5], 5: frags[5][2:5]})


def test_a_job_goes_over_the_wire_and_back_and_bad_ones_are_refused(codec):
    data = b"x" * (3 * SEG)
    _, sums = encode_object(codec, data)
    ec = {"id": "cd" * 16, "k": K, "m": M, "seg": SEG, "backend": "isa_l_rs_vand",
          "segsums": base64.b64encode(sums).decode(), "nodes": ["a1", "a2", "b1", "b2", "c1", "c2"]}
    job = R.RebuildJob.for_fixes(ec, len(data), [0, 1, 3, 4], [2])
    assert job.sources == ((0, "a1"), (1, "a2"), (3, "b2"), (4, "c1"))
    assert R.RebuildJob.from_wire(job.to_wire()) == job
    assert parse_request({"jobs": [job.to_wire()]}) == [job]
    for change in ({"object_id": "../etc"}, {"k": 0}, {"segment_sums": "AAAA"}, {"sources": [[0, "a1"]]},
                   {"indexes": []}, {"indexes": [9]}, {"sources": [[0, "a"], [0, "b"], [1, "c"], [3, "d"]]},
                   {"segment_sums": "not base64!"}, {"size": "big"}):
        with pytest.raises(R.InvalidRebuildJob):
            R.RebuildJob.from_wire(dict(job.to_wire(), **change))
    with pytest.raises(ValueError):
        parse_request({"jobs": []})
    # Bytes: a fragment of 3 full segments, k of them to read.
    frag, _, _ = codec.fragment_sizes(len(data), SEG)
    assert job.fragment_bytes(codec) == 3 * frag and job.source_bytes(codec) == 3 * K * frag
    assert job.fragment_bytes(codec, 1, 1) == frag


def test_windows_share_small_jobs_and_cut_large_ones(codec):
    small = make_job("ab" * 16, SEG, b"\0" * 8, [0, 1, 2, 3], [4])
    large = make_job("cd" * 16, 10 * SEG, b"\0" * 80, [0, 1, 2, 3], [4])
    per_seg = small.source_bytes(codec)
    ws = R.windows([small, small, large, small], [codec] * 4, 3 * per_seg)
    assert ws == [[R.Window(0, 0, 0), R.Window(1, 0, 0)],
                  [R.Window(2, 0, 2)], [R.Window(2, 3, 5)], [R.Window(2, 6, 8)], [R.Window(2, 9, 9)],
                  [R.Window(3, 0, 0)]]
    # A cap under one segment still moves one segment a window.
    assert R.windows([large], [codec], 10)[1] == [R.Window(0, 1, 1)]


def test_batch_length_fills_each_cap_and_takes_at_least_one():
    sizes = [(100, 25)] * 10
    assert batch_length(sizes, 64, 1000) == 10
    assert batch_length(sizes, 4, 1000) == 4
    assert batch_length(sizes, 64, 350) == 3
    assert batch_length(sizes, 64, 1000, 60) == 2
    assert batch_length([(5000, 5000)] + sizes, 64, 1000, 60) == 1          # one job larger than every cap
    assert batch_length([], 64, 1000) == 0


# -- the batch read: the node's answer, and the parser ---------------------------------

def write_fragment(node: StorageNode, oid: str, idx: int, payloads: list[bytes]) -> None:
    p = node.path_for(oid, idx)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(blocks.file_header(idx, blocks.fragment_info(oid, idx, node.node_id, 1_700_000_000_000))
                  + b"".join(blocks.frame(x) for x in payloads))


def answer(node: StorageNode, wanted: list[batchread.Wanted], limit: int) -> tuple[bytes, list]:
    batch = open_many([(node.path_for(w.object_id, w.index), w.index, w.first, w.last) for w in wanted])
    body, problems = [], []
    try:
        while not batch.done:
            pieces, found = batch.next_pieces(limit)
            body += [bytes(p) for p in pieces]
            problems += found
    finally:
        batch.close()
    raw = b"".join(body)
    assert len(raw) == batch.length                 # the Content-Length is what is sent
    return raw, problems


def parse(raw: bytes, n: int, rng: random.Random) -> list[batchread.Item]:
    parser, items, pos = batchread.BatchParser(n), [], 0
    while pos < len(raw):
        step = rng.choice([1, 7, 12, 100, 4096, 1 << 20])
        items += parser.feed(raw[pos:pos + step])
        pos += step
    assert parser.done
    return items


@pytest.mark.parametrize("limit", [1, 1000, 1 << 20])
def test_a_batch_read_answers_every_item_in_order(tmp_path, limit):
    node = StorageNode("n1", "az-a", tmp_path / "n1")
    rng = random.Random(limit)
    a, b, c = "aa" * 16, "bb" * 16, "cc" * 16
    pa = [rng.randbytes(700) for _ in range(5)]
    pb = [rng.randbytes(300) for _ in range(3)] + [rng.randbytes(10)]
    write_fragment(node, a, 0, pa)
    write_fragment(node, b, 3, pb)
    bad = [rng.randbytes(500) for _ in range(4)]
    write_fragment(node, c, 1, bad)
    path = node.path_for(c, 1)
    raw = bytearray(path.read_bytes())
    raw[-600] ^= 0x10                              # inside block 2's data
    path.write_bytes(bytes(raw))
    wanted = [batchread.Wanted(a, 0), batchread.Wanted("dd" * 16, 2), batchread.Wanted(c, 1),
              batchread.Wanted(b, 3, 1, 2), batchread.Wanted(b, 3, 2, -1), batchread.Wanted(a, 0, 9, 9)]
    body, problems = answer(node, wanted, limit)
    assert [(i, "segment 2" in p) for i, p, _ in problems] == [(2, True)]
    assert b"".join(bad[2:]) not in body                  # the bad block is never sent, nor what follows
    items = parse(body, len(wanted), rng)
    assert [it.position for it in items] == list(range(6))
    assert items[0].data == pa
    assert (items[1].ok, items[1].code) == (False, "NoSuchFragment")
    assert (items[2].ok, items[2].code) == (False, "CorruptFragment")
    assert items[3].data == pb[1:3] and items[4].data == pb[2:] and items[5].data == []


def test_a_block_changed_on_the_way_fails_its_item_only(tmp_path):
    node = StorageNode("n1", "az-a", tmp_path / "n1")
    a, b = "aa" * 16, "bb" * 16
    write_fragment(node, a, 0, [b"x" * 400] * 3)
    write_fragment(node, b, 0, [b"y" * 400] * 3)
    body, _ = answer(node, [batchread.Wanted(a, 0), batchread.Wanted(b, 0)], 1 << 20)
    changed = bytearray(body)
    changed[batchread.ITEM_HEAD.size + blocks.BLOCK_HEAD.size + 5] ^= 1
    items = parse(bytes(changed), 2, random.Random(3))
    assert not items[0].ok and "checksum" in items[0].message
    assert items[1].data == [b"y" * 400] * 3
    with pytest.raises(blocks.CorruptBlock):
        batchread.BatchParser(1).feed(batchread.item_head(7, 0) + batchread.item_end(0))


def test_a_batch_request_is_checked():
    assert batchread.parse_request({"fragments": [["ab" * 16, 3], ["ab" * 16, 4, 2, 5]]}) == [
        batchread.Wanted("ab" * 16, 3), batchread.Wanted("ab" * 16, 4, 2, 5)]
    for bad in ({}, {"fragments": "x"}, {"fragments": [["../x", 1]]}, {"fragments": [["ab" * 16, 300]]},
                {"fragments": [["ab" * 16, 1, -2, 3]]}, {"fragments": [["ab" * 16]]},
                {"fragments": [["ab" * 16, 1]] * (batchread.MAX_ITEMS + 1)}):
        with pytest.raises(batchread.BadBatchRequest):
            batchread.parse_request(bad)


# -- a node's rebuild of a batch, against sources held in memory ----------------------------

class MemorySources:
    """A StorageClient's read_many, from fragments in memory: node → {(oid, idx): segments}."""

    def __init__(self, held: dict[str, dict[tuple[str, int], list[bytes]]]):
        self.held = held
        self.urls = {n: f"http://{n}" for n in held}
        self.requests = 0

    async def read_many(self, node, wanted):
        self.requests += 1
        out = []
        for pos, w in enumerate(wanted):
            segs = self.held[node].get((w.object_id, w.index))
            if segs is None:
                out.append(batchread.Item(pos, code="NoSuchFragment"))
            else:
                last = len(segs) - 1 if w.last < 0 else w.last
                out.append(batchread.Item(pos, list(segs[w.first:last + 1])))
        return out


def test_a_node_rebuilds_a_batch_lands_the_good_jobs_and_writes_nothing_for_a_bad_one(tmp_path, codec,
                                                                                     monkeypatch):
    import minis3.storage.rebuild as node_rebuild
    monkeypatch.setattr(node_rebuild, "WINDOW_BYTES", 200_000)        # the large object takes several windows
    node = StorageNode("t", "az-a", tmp_path / "t")
    rng = random.Random(9)
    objects = {f"{i:02x}" * 16: rng.randbytes(n) for i, n in enumerate([SEG + 5, 9 * SEG + 1, 3000, SEG])}
    held: dict = {f"n{i}": {} for i in range(K + M)}
    jobs = []
    for oid, data in objects.items():
        frags, sums = encode_object(codec, data)
        for i in range(K + M):
            held[f"n{i}"][(oid, i)] = frags[i]
        jobs.append((make_job(oid, len(data), sums, [1, 2, 3, 5], [0, 4]), frags))
    bad_oid = list(objects)[2]
    held["n3"][(bad_oid, 3)] = [held["n3"][(bad_oid, 3)][0][:-1] + b"!"]       # a source that lies
    missing_oid = list(objects)[3]
    del held["n5"][(missing_oid, 5)]
    sources = MemorySources(held)
    results = asyncio_run(Rebuilder(node, sources).run([j for j, _ in jobs]))
    assert [r["ok"] for r in results] == [True, True, False, False]
    assert "checksum" in results[2]["error"] and "NoSuchFragment" in results[3]["error"]
    for (job, frags), res in zip(jobs, results):
        for idx in (0, 4):
            path = node.path_for(job.object_id, idx)
            if not res["ok"]:
                assert not path.exists()
                continue
            raw = path.read_bytes()
            index, info, hlen = blocks.parse_file_header(raw)
            assert index == idx and info["object_id"] == job.object_id and info["node"] == "t"
            assert raw[hlen:] == b"".join(blocks.frame(p) for p in frags[idx])
            f, last, n = codec.fragment_sizes(job.size, SEG)
            assert len(raw) == blocks.expected_file_size(job.object_id, idx, "t", f, last, n)
        if res["ok"]:
            assert res["written"] == 2 * job.fragment_bytes(codec) and res["read"] == job.source_bytes(codec)
    assert list(node.tmp_dir.iterdir()) == []          # nothing left behind
    assert node.stats["fragments_written"] == 4


def asyncio_run(coro):
    import asyncio
    return asyncio.run(coro)

