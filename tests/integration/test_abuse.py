"""Abuse from a client that can reach the S3 port: stalled uploads
are given up after the body idle timeout with S3's 400 RequestTimeout, release
their memory (the frontend's RSS returns to its baseline) and node connections,
and never make the storage nodes look down to other clients (health probes
have a pool of their own)."""
from __future__ import annotations

import datetime as dt
import os
import socket
import time
from urllib.parse import urlsplit

import pytest

from minis3.core.signing import sign_request

from .cluster import ACCESS_KEY, SECRET_KEY, TestCluster, rss_kib
from .conftest import make_client
from .wire import recv_until

IDLE_S = 3
STALLED = 70                     # more than the frontend's 64 connections a node
PER_CLIENT = 100                 # requests one address may have in flight here (256 by default)
#: "Back to its baseline": within this of the RSS before the burst. What stays is
#: Python's small-object arenas (1 MiB each, given back only when wholly empty) and
#: the trace ring of recent requests: measured 9-11 MiB after 70 stalled uploads.
CLOSE_MIB = 20
MiB = 1 << 20


@pytest.fixture(scope="module")
def ac(tmp_path_factory):
    settings = {"MINIS3_BODY_IDLE_S": str(IDLE_S), "MINIS3_MAX_REQUESTS_PER_CLIENT": str(PER_CLIENT)}
    old = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)                           # the cluster's processes take them from here
    try:
        c = TestCluster(tmp_path_factory.mktemp("abuse")).start()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k)
            else:
                os.environ[k] = v
    yield c
    c.discard()


def _rss_mib(pid: int) -> float:
    return rss_kib(pid) / 1024


def _stalled_put(endpoint: str, bucket: str, key: str, declared: int, sent: int) -> socket.socket:
    """A signed PUT that declares ``declared`` bytes, sends ``sent`` and stops."""
    url = f"{endpoint}/{bucket}/{key}"
    u = urlsplit(url)
    headers = {"Content-Length": str(declared)}
    headers.update(sign_request("PUT", url, headers, "UNSIGNED-PAYLOAD", ACCESS_KEY, SECRET_KEY, "us-east-1",
                                dt.datetime.now(dt.timezone.utc)))
    s = socket.create_connection((u.hostname, u.port), timeout=30)
    head = f"PUT {u.path} HTTP/1.1\r\nHost: {u.netloc}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    s.sendall(head.encode() + b"\r\n" + os.urandom(sent))
    return s


def _response(s: socket.socket) -> bytes:
    return recv_until(s, b"</Error>")


def _idle_rss(pid: int) -> float:
    """The frontend's RSS after 3 s idle (it gives its free heap back after 2 s): a baseline."""
    time.sleep(3)
    return _rss_mib(pid)


def _settled_rss(pid: int, below: float, wait_s: float = 15) -> float:
    """The frontend's RSS once it is below ``below`` (it gives its free heap back after
    2 s idle), polled, or after ``wait_s`` if it stays above."""
    deadline = time.monotonic() + wait_s
    while (rss := _rss_mib(pid)) >= below and time.monotonic() < deadline:
        time.sleep(0.25)
    return rss


def test_stalled_uploads_time_out_release_memory_and_never_take_nodes_down(ac):
    s3 = make_client(ac.endpoint)
    s3.create_bucket(Bucket="abuse")
    pid = ac.cluster.frontend.pid
    for i in range(20):                                   # warm up: pools, caches, allocator
        s3.put_object(Bucket="abuse", Key=f"warm/{i}", Body=os.urandom(2 * MiB if i % 2 else 1000))
    baseline = _idle_rss(pid)
    rounds = []
    for burst in range(2):
        socks = [_stalled_put(ac.endpoint, "abuse", f"stalled/{burst}/{i}", 8 * MiB, 1300 * 1024)
                 for i in range(STALLED)]
        time.sleep(1)
        during = _rss_mib(pid)
        # Other clients are served meanwhile: a small object at once, a large one
        # (it needs node connections) at the latest once the stalled ones let go.
        t0 = time.monotonic()
        s3.put_object(Bucket="abuse", Key="small-during", Body=b"x" * 1000)
        small_s = time.monotonic() - t0
        s3.put_object(Bucket="abuse", Key="large-during", Body=os.urandom(3 * MiB))
        assert s3.get_object(Bucket="abuse", Key="large-during")["ContentLength"] == 3 * MiB
        assert small_s < 2.0
        # Each stalled upload is answered with S3's error after the idle timeout.
        answers = [_response(s) for s in socks]
        for s in socks:
            s.close()
        assert all(a.startswith(b"HTTP/1.1 400") and b"<Code>RequestTimeout</Code>" in a
                   and b"x-amz-request-id" in a.lower() for a in answers), answers[0][:400]
        rounds.append((during, _settled_rss(pid, baseline + CLOSE_MIB), small_s))
    print(f"\nfrontend RSS: {baseline:.0f} MiB before; with {STALLED} stalled uploads, then after they timed "
          f"out and the frontend went idle: " + "; ".join(f"{d:.0f} then {a:.0f}" for d, a, _ in rounds) +
          f"; a small PUT during a stall took {max(r[2] for r in rounds) * 1000:.0f} ms")
    # Back to the baseline once idle, after each burst: the garbage cycles of the
    # aborted uploads collected, every thread's free heap given back.
    assert all(d > baseline + 100 and a <= baseline + CLOSE_MIB for d, a, _ in rounds), (baseline, rounds)
    # Nothing of the stalled uploads is visible; the nodes never looked down.
    assert "Contents" not in s3.list_objects_v2(Bucket="abuse", Prefix="stalled/")
    for i in range(5):
        s3.put_object(Bucket="abuse", Key=f"after/{i}", Body=os.urandom(2 * MiB))


def test_one_client_past_its_cap_gets_slow_down_at_once(ac):
    """Past MINIS3_MAX_REQUESTS_PER_CLIENT requests in flight from one address,
    the next ones are answered 503 SlowDown before their body (S3's answer to
    too much at once), and the address is served again once its requests end."""
    s3 = make_client(ac.endpoint)
    s3.create_bucket(Bucket="capped")
    socks = [_stalled_put(ac.endpoint, "capped", f"stalled/{i}", 8 * MiB, 64 * 1024) for i in range(PER_CLIENT + 10)]
    t0 = time.monotonic()
    answers = [_response(s) for s in socks]
    for s in socks:
        s.close()
    slow = [a for a in answers if a.startswith(b"HTTP/1.1 503") and b"<Code>SlowDown</Code>" in a]
    timed_out = [a for a in answers if b"<Code>RequestTimeout</Code>" in a]
    assert len(slow) >= 10 and len(slow) + len(timed_out) == len(answers), [a[:200] for a in answers[:3]]
    assert all(b"x-amz-request-id" in a.lower() for a in slow)
    print(f"\n{len(slow)} of {len(answers)} stalled uploads from one address answered SlowDown, "
          f"the rest RequestTimeout after {time.monotonic() - t0:.1f} s")
    s3.put_object(Bucket="capped", Key="after", Body=b"served again")
    assert s3.get_object(Bucket="capped", Key="after")["Body"].read() == b"served again"
