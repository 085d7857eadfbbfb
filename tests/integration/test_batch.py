"""Metadata calls batched per event-loop tick (meta/batch.py), carried on a
channel to each replica (rpc/channel.py), and inline objects in the replicas'
blob logs (meta/blobs.py), through boto3 against the real cluster."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from .conftest import make_client

KiB = 1024


def test_concurrent_requests_share_batched_calls_and_every_byte_comes_back(cluster, bucket):
    s3 = make_client(cluster.endpoint, max_pool_connections=32)
    before = [cluster.signed_get(m.url, "/status") for m in cluster.topo.metas]
    bodies = {f"k/{i:04d}": os.urandom(1 + (i * 7919) % (64 * KiB)) for i in range(256)}     # all inline

    def put(key):
        s3.put_object(Bucket=bucket, Key=key, Body=bodies[key])

    def get(key):
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with ThreadPoolExecutor(32) as ex:
        list(ex.map(put, bodies))
        got = dict(zip(bodies, ex.map(get, bodies)))
    assert got == bodies
    after = [cluster.signed_get(m.url, "/status") for m in cluster.topo.metas]

    def grew(field):
        return sum(a["batches"][field] - b["batches"][field] for a, b in zip(after, before))
    # The frontend's calls went as messages on its channels, several calls a message.
    assert all(a["channels"] >= 1 for a in after), [a["channels"] for a in after]
    assert grew("messages") > 0 and grew("calls") > grew("messages") + grew("requests"), \
        (grew("messages"), grew("requests"), grew("calls"))
    # The payloads are in the replicas' blob logs, not in their tables (a write's
    # third replica may still be on its way: two of three at least).
    assert sum(a["blob_log"]["appended_bytes"] - b["blob_log"]["appended_bytes"] >= sum(map(len, bodies.values()))
               for a, b in zip(after, before)) >= 2
