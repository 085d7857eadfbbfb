"""Memory stays bounded in object size: a 1 GiB PUT and GET through boto3, and
the aws CLI's own ranged download of it, keep the frontend's RSS far below the
object's size (bounds on memory, not timings).

The test has its own cluster, removed afterwards, and no body touches the
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


class PeakRSS:
    """The highest RSS of a process, sampled every 0.1 s while in a ``with`` block."""

    def __init__(self, pid: int):
        self.pid, self.kib, self.stop = pid, rss_kib(pid), threading.Event()

    def __enter__(self) -> "PeakRSS":
        self.thread = threading.Thread(target=self._sample)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while not self.stop.is_set():
            self.kib = max(self.kib, rss_kib(self.pid))
            time.sleep(0.1)

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


def test_a_1_gib_object_in_and_out_keeps_frontend_memory_bounded(mc):
    """One request each way with boto3 (a single streamed PUT of 1 GiB, a single
    GET of it), then the aws CLI's own download (8 MiB ranged GETs, 10 at once) to
    its stdout, bytes compared each time. The frontend's peak RSS stays a small
    fraction of the object: it never holds more than a few segments a request."""
    s3 = make_client(mc.endpoint)
    s3.create_bucket(Bucket="mem")
    body = PatternBody(GiB)
    pid = mc.cluster.frontend.pid
    with PeakRSS(pid) as single:
        s3.put_object(Bucket="mem", Key="big", Body=body)
        got, n = hashlib.md5(), 0
        for chunk in s3.get_object(Bucket="mem", Key="big")["Body"].iter_chunks(MiB):
            got.update(chunk)
            n += len(chunk)
    assert n == GiB and got.hexdigest() == body.md5()
    hwm = rss_kib(pid, "VmHWM") / 1024
    with PeakRSS(pid) as ranged:
        t0 = time.monotonic()
        down = subprocess.Popen(_aws(mc) + ["s3://mem/big", "-"], env=_aws_env(mc), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        got, n = hashlib.md5(), 0
        while chunk := down.stdout.read(MiB):
            got.update(chunk)
            n += len(chunk)
        err = down.stderr.read()
        down.wait(timeout=600)
        t_down = time.monotonic() - t0
    assert down.returncode == 0, err.decode()
    assert n == GiB and got.hexdigest() == body.md5()
    print(f"\nfrontend peak RSS: boto3 1 GiB PUT + GET {single.kib / 1024:.0f} MiB (VmHWM {hwm:.0f} MiB); "
          f"aws s3 cp down at {GiB / MiB / t_down:.0f} MiB/s {ranged.kib / 1024:.0f} MiB")
    assert hwm < 200, f"frontend peak RSS {hwm:.0f} MiB after a 1 GiB PUT and GET"
    assert ranged.kib < 400 * 1024, f"frontend RSS reached {ranged.kib / 1024:.0f} MiB during the CLI's download"
    s3.delete_object(Bucket="mem", Key="big")


def _aws(mc) -> list[str]:
    return [str(Path(sys.executable).parent / "aws"), "--endpoint-url", mc.endpoint, "s3", "cp", "--no-progress"]


def _aws_env(mc) -> dict:
    cfg = mc.root / "aws-config"
    cfg.write_text("[default]\nregion = us-east-1\n")
    return dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
                AWS_CONFIG_FILE=str(cfg), AWS_SHARED_CREDENTIALS_FILE=str(mc.root / "none"))
