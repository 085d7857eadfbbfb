"""Durability on the real cluster: kill -9 of a storage node, corrupt fragment
files, and a whole-cluster restart (graceful and kill -9) lose nothing.

These tests damage their cluster, so they get one of their own.
"""
import hashlib
import os
import signal
import struct
import time

import pytest
import xxhash

from minis3.storage import blocks

from .cluster import fragment_path, meta_record, started_cluster
from .conftest import make_client

MiB = 1 << 20


@pytest.fixture(scope="module")
def dc(tmp_path_factory):
    yield from started_cluster(tmp_path_factory, "durability")


@pytest.fixture(scope="module")
def ds3(dc):
    s3 = make_client(dc.endpoint)
    s3.create_bucket(Bucket="durable")
    return s3


def block_offsets(path) -> list[tuple[int, int]]:
    """(offset of data, length) of every block in a fragment file."""
    raw = path.read_bytes()
    _, _, pos = blocks.parse_file_header(raw)
    out = []
    while pos < len(raw):
        length, _ = blocks.BLOCK_HEAD.unpack_from(raw, pos)
        out.append((pos + blocks.BLOCK_HEAD.size, length))
        pos += blocks.BLOCK_HEAD.size + length
    return out


def flip(path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xFF]))


def test_placement_spreads_fragments_over_azs(dc, ds3):
    ds3.put_object(Bucket="durable", Key="spread", Body=os.urandom(MiB))
    rec = meta_record(dc, "durable", "spread")
    nodes = rec["ec"]["nodes"]
    assert len(set(nodes)) == 6, "each fragment on its own node"
    per_az = {}
    for n in nodes:
        per_az[dc.topo.node(n).az] = per_az.get(dc.topo.node(n).az, 0) + 1
    assert sorted(per_az.values()) == [2, 2, 2]
    for i in range(6):
        assert fragment_path(dc, rec, i).exists()


def test_flipped_bytes_are_never_served(dc, ds3):
    data = os.urandom(3 * MiB + 1234)
    ds3.put_object(Bucket="durable", Key="flip", Body=data)
    rec = meta_record(dc, "durable", "flip")
    # Damage two data fragments (m=2), in different segments.
    for index, seg in ((0, 1), (2, 0)):
        path = fragment_path(dc, rec, index)
        off, length = block_offsets(path)[seg]
        flip(path, off + length // 2)
    for _ in range(2):
        assert ds3.get_object(Bucket="durable", Key="flip")["Body"].read() == data
    got = ds3.get_object(Bucket="durable", Key="flip", Range=f"bytes={MiB - 10}-{2 * MiB + 10}")["Body"].read()
    assert got == data[MiB - 10:2 * MiB + 11]


def test_corrupt_header_is_never_served(dc, ds3):
    data = os.urandom(2 * MiB)
    ds3.put_object(Bucket="durable", Key="hdr", Body=data)
    rec = meta_record(dc, "durable", "hdr")
    flip(fragment_path(dc, rec, 1), 12)                 # inside the JSON header
    assert ds3.get_object(Bucket="durable", Key="hdr")["Body"].read() == data


def test_self_consistent_corruption_caught_by_segment_checksum(dc, ds3):
    """A block rewritten with a matching block checksum (say, a bug that wrote
    the wrong bytes) passes the node's check; the frontend's per-segment
    checksum from metadata still catches it and decodes from other fragments."""
    data = os.urandom(MiB + 77)
    ds3.put_object(Bucket="durable", Key="sneaky", Body=data)
    rec = meta_record(dc, "durable", "sneaky")
    path = fragment_path(dc, rec, 0)
    off, length = block_offsets(path)[0]
    raw = bytearray(path.read_bytes())
    # Keep pyeclib's 80-byte fragment header intact; change payload bytes.
    raw[off + 100] ^= 0x55
    struct.pack_into(">Q", raw, off - 8, xxhash.xxh3_64_intdigest(bytes(raw[off:off + length])))
    path.write_bytes(bytes(raw))
    assert ds3.get_object(Bucket="durable", Key="sneaky")["Body"].read() == data


def test_kill_any_storage_node(dc, ds3):
    objects = {}
    for i, size in enumerate([5000, MiB, 2 * MiB + 3, 7 * MiB + 11]):
        objects[f"kill/{i}"] = os.urandom(size)
        ds3.put_object(Bucket="durable", Key=f"kill/{i}", Body=objects[f"kill/{i}"])
    for node in ("a1", "b2", "c1"):
        pid = dc.node_pid(node)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
                time.sleep(0.05)
            except ProcessLookupError:
                break
        for key, data in objects.items():
            assert ds3.get_object(Bucket="durable", Key=key)["Body"].read() == data, (node, key)
        # Only one node down at a time: its AZ supervisor starts it again (as it does any
        # child that exits); wait until it answers and the frontend sees it up before the next.
        dc.wait_healthy()


def test_restart_keeps_every_acknowledged_object(dc, ds3):
    objects = {}
    for i in range(40):
        size = [0, 1, 4096, 4097, MiB - 1, MiB + 1][i % 6] + i
        objects[f"restart/{i:03d}"] = os.urandom(size)
        ds3.put_object(Bucket="durable", Key=f"restart/{i:03d}", Body=objects[f"restart/{i:03d}"])
    ds3.delete_object(Bucket="durable", Key="restart/000")
    del objects["restart/000"]

    def check():
        listed = [o["Key"] for p in ds3.get_paginator("list_objects_v2").paginate(Bucket="durable", Prefix="restart/")
                  for o in p.get("Contents", [])]
        assert listed == sorted(objects)
        for key, data in objects.items():
            assert ds3.get_object(Bucket="durable", Key=key)["Body"].read() == data, key

    dc.restart()                                     # graceful: SIGTERM everywhere
    check()
    # kill -9 of every process at once: nothing acknowledged may be lost.
    for az in dc.topo.azs:
        os.killpg(dc.az_state(az.name)["pgid"], signal.SIGKILL)
    os.killpg(dc.cluster.frontend.pid, signal.SIGKILL)
    dc.restart()
    check()
    assert "durable" in [b["Name"] for b in ds3.list_buckets()["Buckets"]]
    assert hashlib.md5(objects["restart/005"]).hexdigest() in ds3.head_object(Bucket="durable",
                                                                            Key="restart/005")["ETag"]
