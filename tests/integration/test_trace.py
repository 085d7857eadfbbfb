"""`minis3 trace`: one request's spans from the frontend, the storage nodes and the metadata processes."""
from __future__ import annotations

import json
import subprocess
import sys

import boto3
import botocore.exceptions
import pytest

from minis3.core.trace import Span, ordered

from .cluster import ACCESS_KEY, SECRET_KEY, started_cluster


@pytest.fixture(scope="module")
def tc(tmp_path_factory):
    yield from started_cluster(tmp_path_factory, "trace")


def s3(c, secret=SECRET_KEY):
    return boto3.client("s3", endpoint_url=c.endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=secret)


def trace(c, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "minis3", "trace", *args, "--topology", str(c.topo_path)],
                          capture_output=True, text=True, timeout=60)


def spans_of(c, request_id: str) -> list[Span]:
    r = trace(c, request_id, "--json")
    assert r.returncode == 0, r.stderr
    return [Span.from_doc(d) for d in json.loads(r.stdout)]


def test_a_put_is_traced_through_frontend_nodes_and_metadata_in_order(tc):
    client = s3(tc)
    client.create_bucket(Bucket="traced")
    client.put_object(Bucket="traced", Key="warm", Body=b"w")          # the frontend learns the partition map
    rid = client.put_object(Bucket="traced", Key="big", Body=b"x" * (2 << 20))["ResponseMetadata"]["RequestId"]
    spans = spans_of(tc, rid)
    assert {s.trace_id for s in spans} == {"0" * 16 + rid.lower()}
    services = {s.service for s in spans}
    assert "frontend" in services
    assert len({s for s in services if s.startswith("node-")}) == 6, services      # every fragment's node
    assert len({s for s in services if s.startswith("meta-")}) == 3, services      # every replica
    tree = ordered(spans)
    assert tree[0][0] == 0 and tree[0][1].name == "PUT /traced/big" and all(d > 0 for d, _ in tree[1:])
    by_id = {s.span_id: s for s in spans}
    for s in spans:
        assert s.end_ns >= s.start_ns
        if s.parent_span_id:
            p = by_id[s.parent_span_id]                 # every parent is in the trace
            if s.service != p.service:                  # a server span inside its caller's client span
                assert p.start_ns <= s.start_ns and s.end_ns <= p.end_ns + 2_000_000
    writes = [s for s in spans if s.name.startswith("write fragment")]
    assert len(writes) == 6 and all(s.attributes.get("bytes") and s.attributes.get("node") for s in writes)
    fsyncs = [s for s in spans if s.service.startswith("node-") and s.name.startswith("land")]
    wal = [s for s in spans if s.service.startswith("meta-") and s.name.startswith("WAL append")]
    assert len(fsyncs) == 6 and len(wal) == 3 and all(s.duration_ms > 0 for s in fsyncs + wal)
    # The record is committed only after every fragment is durable.
    commits = [s for s in spans if s.service == "frontend" and s.attributes.get("path") == "/v/object"]
    assert len(commits) == 3
    assert min(c.start_ns for c in commits) >= max(w.end_ns for w in writes)
    # Where the PUT's time went, step by step: two segments through the hash
    # and encode stages, each of which worked, and no wait below zero.
    pipeline = [s for s in spans if s.name.startswith("pipeline")]
    assert len(pipeline) == 1, [s.name for s in spans]
    times = pipeline[0].attributes
    assert times["segments"] == 2 and times["hashing"] > 0 and times["encoding"] > 0, times
    assert all(times[k] >= 0 for k in ("waiting_for_client", "behind_hashing", "behind_encoding", "behind_nodes"))
    encodes = [s for s in spans if s.name.startswith("encode segment")]
    assert len(encodes) == 2 and all(s.parent_span_id == pipeline[0].span_id for s in encodes)
    # The text waterfall shows the same trace.
    text = trace(tc, rid).stdout
    assert f"(request {rid})" in text and "write fragment 5 (parity)" in text and "node-" in text
    assert "pipeline: read, hash, encode" in text and "behind_nodes=" in text


def test_a_failed_signature_shows_what_the_server_computed_and_last_finds_it(tc):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3(tc, secret="not-the-secret").get_object(Bucket="traced", Key="big")
    assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    r = trace(tc, "--last")
    assert r.returncode == 0, r.stderr
    assert "code=SignatureDoesNotMatch" in r.stdout
    assert "canonical request:\nGET\n/traced/big\n" in r.stdout and "string to sign:\nAWS4-HMAC-SHA256\n" in r.stdout
    assert SECRET_KEY not in r.stdout and "not-the-secret" not in r.stdout


def test_an_unknown_request_id_says_so(tc):
    r = trace(tc, "0123456789ABCDEF")
    assert r.returncode == 1 and "no spans" in r.stderr
