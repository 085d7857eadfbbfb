"""One frontend per AZ (`minis3 up --frontend-per-az`): stateless, so a client
pointed at any live frontend sees the same store, and losing an AZ (its
frontend included) leaves the others serving."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import botocore.exceptions
import pytest

from minis3.cluster import chaos

from .cluster import started_cluster
from .conftest import make_client


@pytest.fixture(scope="module")
def fc(tmp_path_factory):
    yield from started_cluster(tmp_path_factory, "frontends", frontend_per_az=True)


def test_every_frontend_serves_the_same_store(fc):
    urls = [f.url for f in fc.topo.frontends]
    assert len(urls) == 4
    clients = [make_client(u) for u in urls]
    clients[1].create_bucket(Bucket="everywhere")
    for i, s3 in enumerate(clients):
        s3.put_object(Bucket="everywhere", Key=f"from-{i}", Body=f"written via {urls[i]}".encode() * 1000)
    for s3 in clients:                     # read-after-write through any other frontend
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="everywhere")["Contents"]]
        assert keys == [f"from-{i}" for i in range(4)]
        for i in range(4):
            assert s3.get_object(Bucket="everywhere", Key=f"from-{i}")["Body"].read() == \
                f"written via {urls[i]}".encode() * 1000
    # `minis3 status` lists each AZ's frontend.
    out = subprocess.run([str(Path(sys.executable).parent / "minis3"), "status", "--topology", str(fc.topo_path)],
                         capture_output=True, text=True, timeout=30).stdout
    assert all(f"frontend-{az.name}" in out for az in fc.topo.azs)


def test_an_az_dies_with_its_frontend_and_the_others_serve(fc):
    a_url, b_url = fc.topo.az_frontend("az-a").url, fc.topo.az_frontend("az-b").url
    make_client(a_url).create_bucket(Bucket="survivors")
    print(chaos.kill_az(fc.topo, "az-a"))
    try:
        with pytest.raises(botocore.exceptions.EndpointConnectionError):
            make_client(a_url).list_buckets()
        for url in (fc.endpoint, b_url):
            s3 = make_client(url)
            s3.put_object(Bucket="survivors", Key=url, Body=b"x" * 300_000)
            assert s3.get_object(Bucket="survivors", Key=url)["Body"].read() == b"x" * 300_000
    finally:
        print(chaos.revive_az(fc.topo, "az-a"))
        from minis3.cluster.supervisor import wait_healthy
        wait_healthy(fc.topo, 60)
    assert make_client(a_url).get_object(Bucket="survivors", Key=b_url)["Body"].read() == b"x" * 300_000


def _race(clients, write) -> list:
    """Run write(client, i) on every client at the same moment; each one's
    outcome: "won", or the S3 error code it got."""
    import threading
    barrier = threading.Barrier(len(clients))
    out = [None] * len(clients)

    def one(i):
        barrier.wait()
        try:
            write(clients[i], i)
            out[i] = "won"
        except botocore.exceptions.ClientError as exc:
            out[i] = exc.response["Error"]["Code"]
    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_racing_conditional_writes_through_two_frontends_have_exactly_one_winner(fc):
    """If-None-Match: * and If-Match, sent at once through two frontends (two
    coordinators): the check is a compare-and-set at the metadata replicas, so
    exactly one write wins each time and the other gets 412 (or 409
    ConditionalRequestConflict, which S3 answers to a write that raced)."""
    a, b = make_client(fc.topo.az_frontend("az-a").url), make_client(fc.topo.az_frontend("az-b").url)
    a.create_bucket(Bucket="races")
    losers = set()
    for i in range(20):
        key = f"new-{i}"
        out = _race([a, b], lambda s3, j: s3.put_object(Bucket="races", Key=key, Body=f"writer {j}".encode(),
                                                         IfNoneMatch="*"))
        assert out.count("won") == 1, (key, out)
        loser = [o for o in out if o != "won"][0]
        assert loser in ("PreconditionFailed", "ConditionalRequestConflict"), out
        losers.add(loser)
        body = a.get_object(Bucket="races", Key=key)["Body"].read()
        assert body == f"writer {out.index('won')}".encode()
    for i in range(20):
        key = f"existing-{i}"
        etag = a.put_object(Bucket="races", Key=key, Body=b"first")["ETag"]
        out = _race([a, b], lambda s3, j: s3.put_object(Bucket="races", Key=key, Body=f"writer {j}".encode(),
                                                         IfMatch=etag))
        assert out.count("won") == 1, (key, out)
        assert b.get_object(Bucket="races", Key=key)["Body"].read() == f"writer {out.index('won')}".encode()
    print("losers answered:", losers)


def test_versions_written_at_once_through_two_frontends_are_all_kept(fc):
    """Versioning enabled through one frontend; another, which never saw the
    bucket, writes there too (its first one-round write is refused by the
    replicas and goes the versioned way). Writes racing on one key through
    both frontends: every acknowledged one is a version, none is lost."""
    a, b = make_client(fc.topo.az_frontend("az-a").url), make_client(fc.topo.az_frontend("az-c").url)
    a.create_bucket(Bucket="vraces")
    b.put_object(Bucket="vraces", Key="k", Body=b"before")            # b knows the bucket unversioned
    a.put_bucket_versioning(Bucket="vraces", VersioningConfiguration={"Status": "Enabled"})
    first = b.put_object(Bucket="vraces", Key="k", Body=b"through b")
    assert first["VersionId"] != "null"
    made = {first["VersionId"]: b"through b"}
    for i in range(10):
        ids = [None, None]

        def write(s3, j):
            ids[j] = s3.put_object(Bucket="vraces", Key="k", Body=f"round {i} writer {j}".encode())["VersionId"]
        out = _race([a, b], write)
        assert out == ["won", "won"], out
        made.update({ids[j]: f"round {i} writer {j}".encode() for j in (0, 1)})
    listed = a.list_object_versions(Bucket="vraces")
    ids_listed = [v["VersionId"] for v in listed["Versions"]]
    assert set(ids_listed) == set(made) | {"null"} and len(ids_listed) == len(made) + 1
    assert sum(v["IsLatest"] for v in listed["Versions"]) == 1
    latest = next(v["VersionId"] for v in listed["Versions"] if v["IsLatest"])
    assert ids_listed[0] == latest                          # newest first
    for vid, body in made.items():
        assert b.get_object(Bucket="vraces", Key="k", VersionId=vid)["Body"].read() == body
    assert a.get_object(Bucket="vraces", Key="k")["Body"].read() == made[latest]
    assert a.get_object(Bucket="vraces", Key="k", VersionId="null")["Body"].read() == b"before"


def test_a_coordinator_whose_clock_runs_ahead_does_not_block_the_key(fc):
    """A frontend whose clock ran 20 s ahead promised itself the key on every
    replica and died before its accept round. A tagging change and a
    conditional PUT through a frontend with the right time still succeed: a
    refusal tells the coordinator the newer ballot, and its clock moves past it.
    (Last in this module: every clock of this cluster is then 20 s ahead.)"""
    import asyncio
    import time as _time
    from minis3.rpc.http import client_session, json_body
    s3, bucket = make_client(fc.endpoint), "skewed"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"v1")

    async def promise_the_future():
        session = client_session(fc.topo.cluster_secret)
        try:
            ballot = [(int(_time.time() * 1000) + 20_000) << 16, "ahead"]
            for m in fc.topo.metas:
                async with session.post(m.url + "/v/prepare",
                                        **json_body({"bucket": bucket, "key": "k", "ballot": ballot})) as r:
                    assert r.status == 200, await r.text()
        finally:
            await session.close()
    asyncio.run(promise_the_future())
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": [{"Key": "after", "Value": "skew"}]})
    etag = s3.head_object(Bucket=bucket, Key="k")["ETag"]
    s3.put_object(Bucket=bucket, Key="k", Body=b"v2", IfMatch=etag)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v2"
