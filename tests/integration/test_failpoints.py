"""Failpoints in a real cluster: a storage node crashed exactly between the
fsync of a fragment and its rename, during a PUT, and a metadata replica whose
WAL fdatasync fails once. Armed through the signed ``/failpoints`` route
(rpc/http.py), as ``minis3 chaos crash-at`` does. Afterwards every
acknowledged object reads back byte for byte."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from urllib.parse import urlencode

from botocore.exceptions import ClientError

from minis3.cluster.supervisor import log_dir
from minis3.rpc import sync

MiB = 1 << 20


def failpoints(c, url: str, spec: str | None = None) -> dict:
    """A process's ``/failpoints`` answer, after arming ``spec`` if given."""
    doc = {"spec": spec} if spec is not None else None
    return sync.call_json(c.topo.cluster_secret, "POST" if doc else "GET", url, "/failpoints", doc)


def fired(c, url: str, name: str) -> int:
    return next(p["fired"] for p in failpoints(c, url)["points"] if p["name"] == name)


def wait_for(what: str, ok, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        got = ok()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def put_all(s3, bucket: str, objects: dict[str, bytes]) -> None:
    for key, data in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=data)


def assert_reads_back(s3, bucket: str, objects: dict[str, bytes]) -> None:
    for key, data in objects.items():
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data, key


def test_a_node_crashing_between_fsync_and_rename_loses_no_acknowledged_object(hc, hs3):
    hs3.create_bucket(Bucket="fp-land")
    acked = {f"before/{i}": os.urandom(n) for i, n in enumerate([1000, MiB + 5, 3 * MiB + 1])}
    put_all(hs3, "fp-land", acked)
    node = hc.topo.node("b1")
    old_pid = hc.node_pid("b1")
    assert failpoints(hc, node.url, "storage.land.before_rename=crash@1")["armed"] == \
        "storage.land.before_rename=crash@1"

    data = os.urandom(MiB + 333)            # erasure-coded: every node of the six gets a fragment
    try:
        hs3.put_object(Bucket="fp-land", Key="during", Body=data)
        acked["during"] = data
    except ClientError as exc:              # allowed: a clean S3 error, never a 500 with a traceback
        err, status = exc.response["Error"], exc.response["ResponseMetadata"]["HTTPStatusCode"]
        assert status == 503 and err.get("Code") == "ServiceUnavailable", (status, err)

    # The node died at the failpoint (its log says so) and its supervisor started it again.
    new_pid = wait_for("node-b1 restarted", lambda: (hc.az_state("az-b")["children"].get("node-b1")
                                                     not in (None, old_pid)) and hc.node_pid("b1"))
    log = (log_dir(hc.topo) / "node-b1.log").read_text()
    assert "failpoint storage.land.before_rename: crash" in log
    hc.wait_healthy()
    after = failpoints(hc, node.url)
    assert after["pid"] == new_pid and after["armed"] == ""              # a restart forgets
    assert list((node.data_dir / "tmp").iterdir()) == []                # the durable tmp file is gone

    acked["after"] = os.urandom(2 * MiB + 9)
    hs3.put_object(Bucket="fp-land", Key="after", Body=acked["after"])
    assert_reads_back(hs3, "fp-land", acked)
    if "during" not in acked:               # not acknowledged: absent, or whole
        try:
            assert hs3.get_object(Bucket="fp-land", Key="during")["Body"].read() == data
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "NoSuchKey"


def test_a_replica_failing_its_fdatasync_once_still_leaves_a_write_quorum(hc, hs3):
    hs3.create_bucket(Bucket="fp-wal")
    meta = hc.topo.meta("meta-az-b")
    failpoints(hc, meta.url, "meta.wal.before_fdatasync=error@1")
    objects = {"small": os.urandom(3000), "big": os.urandom(MiB + 7)}
    hs3.put_object(Bucket="fp-wal", Key="small", Body=objects["small"])
    wait_for("the failpoint to fire", lambda: fired(hc, meta.url, "meta.wal.before_fdatasync") == 1, 5)
    # The write that failed was this PUT's: meta-az-b answered an error and kept nothing;
    # the other two replicas made the quorum.
    path = "/v/object?" + urlencode({"bucket": "fp-wal", "key": "small"})
    held = {m.id: sync.call_json(hc.topo.cluster_secret, "GET", m.url, path)["object"] is not None
            for m in hc.topo.metas}
    assert held == {"meta-az-a": True, "meta-az-b": False, "meta-az-c": True}
    hs3.put_object(Bucket="fp-wal", Key="big", Body=objects["big"])     # it fired once: all three again
    assert failpoints(hc, meta.url)["armed"] == ""
    assert_reads_back(hs3, "fp-wal", objects)


def test_the_chaos_commands_list_arm_and_clear_failpoints(hc):
    def chaos(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "minis3", "chaos", *args, "--topology", str(hc.topo_path)],
                              capture_output=True, text=True, timeout=60)

    r = chaos("failpoints", "a1", "--arm", "storage.delete.before_unlink=sleep(1ms)*2")
    assert r.returncode == 0 and "armed storage.delete.before_unlink=sleep(1ms)*2" in r.stdout, r.stderr
    listed = chaos("failpoints")
    assert listed.returncode == 0 and "meta.wal.after_fdatasync" in listed.stdout
    assert any(line.split() == ["node-a1", "storage.delete.before_unlink=sleep(1ms)*2"]
               for line in listed.stdout.splitlines()), listed.stdout
    one = chaos("failpoints", "node-a1")
    assert "storage.delete.before_unlink" in one.stdout and "sleep(1ms)*2" in one.stdout
    assert chaos("failpoints", "node-a1", "--clear").returncode == 0
    assert failpoints(hc, hc.topo.node("a1").url)["armed"] == ""
    typo = chaos("crash-at", "storage.land.before_renam", "node-a1")
    assert typo.returncode == 2 and "did you mean storage.land.before_rename" in typo.stderr
    nobody = chaos("crash-at", "storage.land.before_rename", "node-x9")
    assert nobody.returncode == 2 and "no process 'node-x9'" in nobody.stderr


def test_the_frontend_arms_its_failpoints_at_its_signed_route_only(hc, hs3):
    """`minis3 chaos failpoints frontend`: the frontend's own steps (a PUT's
    commit) armed through ``/_minis3/failpoints``, signed; unsigned, the path
    is S3's (a key of a bucket named ``_minis3`` cannot exist), never the route."""
    import urllib.error
    import urllib.request

    r = subprocess.run([sys.executable, "-m", "minis3", "chaos", "failpoints", "frontend", "--arm",
                        "frontend.put.before_commit=error@1", "--topology", str(hc.topo_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "armed frontend.put.before_commit=error@1" in r.stdout, r.stdout + r.stderr
    hs3.create_bucket(Bucket="fp-frontend")
    body = os.urandom(200_000)                        # erasure-coded: fragments land, then the commit
    hs3.put_object(Bucket="fp-frontend", Key="k", Body=body)      # the 500 once, boto3's retry succeeds
    assert hs3.get_object(Bucket="fp-frontend", Key="k")["Body"].read() == body
    got = sync.call_json(hc.topo.cluster_secret, "GET", hc.endpoint, "/_minis3/failpoints")
    assert got["process"] == "frontend" and got["armed"] == ""
    assert next(p["fired"] for p in got["points"] if p["name"] == "frontend.put.before_commit") == 1
    try:
        with urllib.request.urlopen(hc.endpoint + "/_minis3/failpoints", timeout=5) as resp:
            status, text = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read()
    assert status in (400, 403, 404) and b"<Error>" in text and b"frontend.put" not in text
