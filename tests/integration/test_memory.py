"""Memory stays bounded in object size: a 1 GiB PUT and GET through boto3, and
the aws CLI's own multipart defaults both ways, keep the frontend's RSS far
below the object's size (bounds on memory, not timings).

Each test has its own cluster, removed afterwards, and no body touches the
client's disk (it is generated and hashed as it streams): the suite's disk
use stays that of one object's fragments (1.5× its size), so it runs on a CI
machine with only a few GiB free."""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .cluster import ACCESS_KEY, SECRET_KEY, TestCluster, rss_kib
from .conftest import make_client

MiB = 1 << 20
GiB = 1 << 30


class PatternBody(io.RawIOBase):
    """`size` bytes made of 1 MiB blocks that differ in their first 8 bytes
    (no two alike, so a misplaced block is seen), produced on demand: seekable,
    as boto3 wants a body it can hash and then send."""

    def __init__(self, size: int):
        self.size, self.pos = size, 0
        self.block = bytearray(hashlib.sha256(b"x").digest() * (MiB // 32))

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self.pos = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence] + offset
        return self.pos

    def readinto(self, buf) -> int:
        n = min(len(buf), self.size - self.pos, MiB - self.pos % MiB)
        if n <= 0:
            return 0
        i, off = divmod(self.pos, MiB)
        self.block[:8] = i.to_bytes(8, "big")
        buf[:n] = self.block[off:off + n]
        self.pos += n
        return n

    def md5(self) -> str:
        h = hashlib.md5()
        for i in range(self.size // MiB):
            self.block[:8] = i.to_bytes(8, "big")
            h.update(self.block)
        return h.hexdigest()


@pytest.fixture
def mc(tmp_path):
    (tmp_path / "cluster").mkdir()
    c = TestCluster(tmp_path / "cluster").start()
    yield c
    c.discard()


def test_one_gib_put_and_get_keep_frontend_rss_bounded(mc):
    s3 = make_client(mc.endpoint)
    s3.create_bucket(Bucket="mem")
    body = PatternBody(GiB)
    s3.put_object(Bucket="mem", Key="big", Body=body)
    got, n = hashlib.md5(), 0
    for chunk in s3.get_object(Bucket="mem", Key="big")["Body"].iter_chunks(MiB):
        got.update(chunk)
        n += len(chunk)
    assert n == GiB and got.hexdigest() == body.md5()
    rss = rss_kib(mc.cluster.frontend.pid, "VmHWM") / 1024
    print(f"frontend peak RSS after 1 GiB PUT + GET: {rss:.0f} MiB")
    assert rss < 200, f"frontend peak RSS {rss:.0f} MiB"
    s3.delete_object(Bucket="mem", Key="big")


def test_aws_cli_copies_1_gib_up_and_down_in_parts_with_bounded_frontend_memory(mc, tmp_path):
    """`aws s3 cp` with the CLI's own multipart defaults (8 MiB parts, 10 at
    once) of 1 GiB streamed from its stdin, then back to its stdout, bytes
    compared; the frontend's RSS sampled all along stays bounded (it never
    holds more than a few segments a part)."""
    s3 = make_client(mc.endpoint)
    s3.create_bucket(Bucket="cli")
    cfg = tmp_path / "config"
    cfg.write_text("[default]\nregion = us-east-1\n")
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
               AWS_CONFIG_FILE=str(cfg), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"))
    aws = [str(Path(sys.executable).parent / "aws"), "--endpoint-url", mc.endpoint, "s3", "cp", "--no-progress"]
    pid = mc.cluster.frontend.pid
    peak, stop = [rss_kib(pid)], threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kib(pid))
            time.sleep(0.1)
    sampler = threading.Thread(target=sample)
    sampler.start()
    body = PatternBody(GiB)
    try:
        t0 = time.monotonic()
        up = subprocess.Popen(aws + ["-", "s3://cli/big.bin"], env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        while chunk := body.read(MiB):
            up.stdin.write(chunk)
        up.stdin.close()
        err = up.stderr.read()
        up.wait(timeout=600)
        t_up = time.monotonic() - t0
        assert up.returncode == 0, err.decode()
        t0 = time.monotonic()
        down = subprocess.Popen(aws + ["s3://cli/big.bin", "-"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        got, n = hashlib.md5(), 0
        while chunk := down.stdout.read(MiB):
            got.update(chunk)
            n += len(chunk)
        err = down.stderr.read()
        down.wait(timeout=600)
        t_down = time.monotonic() - t0
        assert down.returncode == 0, err.decode()
    finally:
        stop.set()
        sampler.join()
    assert n == GiB and got.hexdigest() == body.md5()
    parts = s3.head_object(Bucket="cli", Key="big.bin")["ETag"].strip('"').split("-")
    assert len(parts) == 2 and int(parts[1]) == GiB // (8 * MiB), parts   # the CLI's own 8 MiB parts
    print(f"\naws s3 cp 1 GiB: up {GiB / MiB / t_up:.0f} MiB/s, down {GiB / MiB / t_down:.0f} MiB/s, "
          f"frontend peak RSS {peak[0] / 1024:.0f} MiB")
    assert peak[0] < 400 * 1024, f"frontend RSS reached {peak[0] / 1024:.0f} MiB"
    s3.delete_object(Bucket="cli", Key="big.bin")
