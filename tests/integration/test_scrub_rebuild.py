"""Rebuilds run on the node that receives the fragments (storage/rebuild.py), in batches.

Real processes: boto3 against the frontend, `minis3 scrub --now` as a user runs
it, and signed `POST /rebuild` and `POST /fragments/read` requests sent straight
to a storage node, as the scrubber sends them. A wiped node gets back exactly
the fragment bytes it lost; a source that was changed (with block checksums
that still match, so only the recorded segment checksum can tell) is never
used, and the rest of its batch lands all the same; a rate limit still paces.
"""
from __future__ import annotations

import json
import random
import shutil
import time

from minis3.cluster import chaos
from minis3.ec.codec import Codec
from minis3.ec.rebuild import RebuildJob
from minis3.rpc import sync
from minis3.scrub.repair import REBUILD_BURST
from minis3.storage import batchread, blocks

from .cluster import TestCluster, fragment_path
from .s3helpers import assert_read_back

KiB, MiB = 1024, 1024 * 1024


def _put_many(s3, bucket: str, n: int, rng: random.Random, low: int = 80 * KiB, high: int = 3 * MiB,
              scrubbed: bool = True) -> dict[str, bytes]:
    """``scrubbed``: a scrub pass follows, so wait until the last version is older than ~1 s."""
    s3.create_bucket(Bucket=bucket)
    objs = {}
    for i in range(n):
        body = rng.randbytes(rng.randrange(low, high))
        s3.put_object(Bucket=bucket, Key=f"o/{i:03d}", Body=body)
        objs[f"o/{i:03d}"] = body
    if scrubbed:
        time.sleep(1.2)        # (a pass leaves versions younger than ~1 s to the next)
    return objs


def _blocks_of(path) -> bytes:
    """A fragment file's blocks (its header holds the time it was written)."""
    raw = path.read_bytes()
    _, _, hlen = blocks.parse_file_header(raw)
    return raw[hlen:]


def _wipe(node) -> None:
    for child in node.data_dir.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()


def _signed_post(c: TestCluster, url: str, path: str, doc: dict) -> tuple[int, bytes]:
    return sync.call(c.topo.cluster_secret, "POST", url, path, doc, timeout=60)


def _node_stat(c: TestCluster, node_id: str, name: str) -> int:
    return c.signed_get(c.topo.node(node_id).url, "/status")["stats"][name]


def test_a_wiped_node_gets_back_exactly_the_fragments_it_lost(hc, hs3):
    objs = _put_many(hs3, "wiped", 40, random.Random(1))
    recs = hc.records("wiped")
    node = hc.topo.node("b1")
    lost = {}
    for key, r in recs.items():
        for i, n in enumerate(r["ec"]["nodes"]):
            if n == node.id:
                lost[(r["ec"]["id"], i)] = _blocks_of(fragment_path(hc, r, i))
    assert len(lost) >= 20
    written_before = _node_stat(hc, node.id, "fragments_written")
    _wipe(node)
    rep = hc.scrub_now("--no-audit", "--rebuild-rate", "0")["pass"]
    assert rep["phase"] == "done" and rep["not_full"] == 0 and rep["repair_failures"] == 0
    assert rep["rebuilt"] == {"missing": len(lost)}
    # The node wrote them itself (POST /rebuild), not a PUT from the scrubber: its own count.
    assert _node_stat(hc, node.id, "fragments_written") - written_before == len(lost)
    for (oid, i), want in lost.items():
        path = node.data_dir / "fragments" / oid[:2] / f"{oid}.{i}"
        assert _blocks_of(path) == want, (oid, i)         # the very bytes the PUT wrote
    codec = Codec(4, 2)
    sizes = {r["ec"]["id"]: codec.fragment_sizes(r["size"], r["ec"]["seg"]) for r in recs.values()}
    total = sum(f * (n - 1) + last for f, last, n in (sizes[oid] for oid, _ in lost))
    assert rep["rebuilt_bytes"] == total and rep["rebuild_read_bytes"] == 4 * total
    assert not list((node.data_dir / "tmp").iterdir())
    # Read back through S3 with the wiped node's AZ partner down, so reads need b1's fragments.
    chaos.kill_node(hc.topo, "b2")
    try:
        assert_read_back(hs3, "wiped", objs)
    finally:
        chaos.revive_node(hc.topo, "b2")
    hc.wait_healthy()


def _job(rec: dict, sources: list[int], indexes: list[int]) -> dict:
    return RebuildJob.for_fixes(rec["ec"], rec["size"], sources, indexes).to_wire()


def test_a_changed_source_is_never_used_and_the_rest_of_its_batch_lands(hc, hs3):
    _put_many(hs3, "liar", 3, random.Random(2), low=300 * KiB, high=600 * KiB)
    recs = [hc.records("liar")[k] for k in ("o/000", "o/001", "o/002")]
    # Fragment 1 of the first object gets other data, framed with block checksums
    # that match it: only the segment checksum in the metadata can tell.
    liar = fragment_path(hc, recs[0], 1)
    raw = liar.read_bytes()
    _, _, hlen = blocks.parse_file_header(raw)
    length, _ = blocks.parse_block_head(raw[hlen:hlen + 12])
    data = bytearray(raw[hlen + 12:hlen + 12 + length])
    data[-1] ^= 0xFF
    liar.write_bytes(raw[:hlen] + blocks.frame(bytes(data)) + raw[hlen + 12 + length:])
    # Fragment 0 of every object is lost; its node rebuilds all three in one batch.
    target = {r["ec"]["nodes"][0] for r in recs}
    lost = [fragment_path(hc, r, 0) for r in recs]
    want = [_blocks_of(p) for p in lost]
    for p in lost:
        p.unlink()
    jobs = [_job(r, [1, 2, 3, 4], [0]) for r in recs]
    for node_id in sorted(target):
        mine = [j for j, r in zip(jobs, recs) if r["ec"]["nodes"][0] == node_id]
        status, body = _signed_post(hc, hc.topo.node(node_id).url, "/rebuild", {"jobs": mine})
        assert status == 200, body
        for j, res in zip(mine, json.loads(body)["results"]):
            if j["object_id"] == recs[0]["ec"]["id"]:
                assert res["ok"] is False and "checksum" in res["error"], res
            else:
                assert res["ok"] is True and res["written"] > 0, res
    assert not lost[0].exists()                      # nothing landed from the lying source
    assert [_blocks_of(p) for p in lost[1:]] == want[1:]
    # The scrubber's pass picks the same sources (fragment 1 is the right size, so
    # it looks present): the repair fails, the pass goes on, nothing is written.
    rep = hc.scrub_now("--no-audit", "--rebuild-rate", "0")["pass"]
    assert rep["phase"] == "done" and rep["repair_failures"] == 1 and rep["not_full"] == 1
    assert not lost[0].exists()
    for node in hc.topo.nodes:
        assert not list((node.data_dir / "tmp").iterdir())
    hs3.delete_object(Bucket="liar", Key="o/000")        # (so later passes here have nothing left to do)


def test_a_batch_read_reports_missing_and_corrupt_fragments_in_band(hc, hs3):
    _put_many(hs3, "batchread", 2, random.Random(3), low=200 * KiB, high=300 * KiB, scrubbed=False)
    recs = list(hc.records("batchread").values())
    node_id = recs[0]["ec"]["nodes"][0]
    mine = [(r["ec"]["id"], i) for r in recs for i, n in enumerate(r["ec"]["nodes"]) if n == node_id]
    bad = fragment_path(hc, recs[0], mine[0][1])
    raw = bytearray(bad.read_bytes())
    raw[-5] ^= 1
    bad.write_bytes(bytes(raw))
    wanted = [[oid, idx] for oid, idx in mine] + [["ee" * 16, 0]]
    status, body = _signed_post(hc, hc.topo.node(node_id).url, "/fragments/read", {"fragments": wanted})
    assert status == 200
    items = batchread.BatchParser(len(wanted)).feed(body)
    assert [it.code for it in items] == ["CorruptFragment"] + [None] * (len(mine) - 1) + ["NoSuchFragment"]
    assert not bad.exists()                                    # quarantined, as a single read does
    assert list((hc.topo.node(node_id).data_dir / "quarantine").glob(f"{mine[0][0]}.*.json"))
    status, _ = _signed_post(hc, hc.topo.node(node_id).url, "/fragments/read", {"fragments": [["../x", 1]]})
    assert status == 400


def test_the_rate_limit_still_paces_a_rebuild(hc, hs3):
    _put_many(hs3, "paced", 24, random.Random(4), low=1 * MiB, high=1 * MiB + 1)
    # A pass with nothing left to repair first: the scrubber starts one of its own
    # soon after a pass that repaired (or failed to), and that one must not do this rebuild.
    assert hc.scrub_now("--no-audit")["pass"]["not_full"] == 0
    node = hc.topo.node("c2")
    _wipe(node)
    # MB/s: c2 held fragments of this module's earlier objects too (~22 MB in all), which an
    # unpaced rebuild writes at ~70 MB/s here: 5 MB/s paces it to ~4 s, far below that speed.
    rate = 5.0
    t = time.monotonic()
    rep = hc.scrub_now("--no-audit", "--rebuild-rate", str(rate))["pass"]
    took = time.monotonic() - t
    assert rep["not_full"] == 0 and rep["rebuild_rate_mb_per_s"] == rate
    mb = rep["rebuilt_bytes"] / 1e6
    assert mb > 2.0
    # Each batch pays before it is sent, so the rebuild cannot beat the rate
    # (after the bucket's burst, saved while it was idle), and batches of about
    # rate × 0.25 s keep it near the rate rather than far below.
    least = (mb - REBUILD_BURST / 1e6) / rate * 0.95
    assert took >= least and rep["rebuild_seconds"] >= least
    assert rep["rebuild_seconds"] <= mb / rate * 1.5 + 1.0
