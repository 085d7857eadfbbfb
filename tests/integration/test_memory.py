"""Memory stays bounded: a 1 GiB PUT and GET keep the frontend's peak RSS
under 200 MiB (a bound on memory, not a timing)."""
import hashlib

import pytest

from .cluster import TestCluster
from .conftest import make_client

MiB = 1 << 20
SIZE = 1024 * MiB


def peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.fixture(scope="module")
def mc(tmp_path_factory):
    c = TestCluster(tmp_path_factory.mktemp("memory")).start()
    yield c
    c.stop()


def test_one_gib_put_and_get_keep_frontend_rss_bounded(mc, tmp_path):
    s3 = make_client(mc.endpoint)
    s3.create_bucket(Bucket="mem")
    path = tmp_path / "big"
    pattern = hashlib.sha256(b"x").digest() * (MiB // 32)
    want = hashlib.md5()
    with open(path, "wb") as f:
        for i in range(SIZE // MiB):
            block = i.to_bytes(4, "big") + pattern[4:]
            want.update(block)
            f.write(block)
    with open(path, "rb") as f:
        s3.put_object(Bucket="mem", Key="big", Body=f)
    path.unlink()
    got = hashlib.md5()
    n = 0
    for chunk in s3.get_object(Bucket="mem", Key="big")["Body"].iter_chunks(MiB):
        got.update(chunk)
        n += len(chunk)
    assert n == SIZE and got.hexdigest() == want.hexdigest()
    rss = peak_rss_mib(mc.cluster.frontend.pid)
    print(f"frontend peak RSS after 1 GiB PUT + GET: {rss:.0f} MiB")
    assert rss < 200, f"frontend peak RSS {rss:.0f} MiB"
    s3.delete_object(Bucket="mem", Key="big")
