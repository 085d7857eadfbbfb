"""`minis3 chaos clock-skew`: one process's clock ±5 minutes off, and last-writer-wins still
orders writes the way they were acknowledged.

One cluster with a frontend per AZ. Writes go through two frontends in turn (az-a's, whose
clock is skewed, and az-b's); every read goes through a third (az-c's), so that a reader's
own clock, which moves past every version it reads, never hides a wrongly ordered write.
"""
from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import botocore.exceptions
import pytest

from minis3.cluster import clock as chaos_clock
from minis3.rpc import sync

from .chaos_workload import Workload, client
from .cluster import started_cluster
from .crash_sweep import put_table

#: How long the workload runs with a frontend behind: 3 s in `make test` (~800 operations
#: on 2 cores, against the 50 acknowledged the test needs); `make chaos`
#: (MINIS3_CHAOS_SECONDS, MINIS3_CHAOS_ALL=1) runs it longer and writes its result to
#: docs/faults-clock.json and its table into docs/faults.md.
SECONDS = float(os.environ.get("MINIS3_CHAOS_SECONDS", "3"))
DOCS = Path(__file__).resolve().parents[2] / "docs"

SKEWED, OTHER, READER = "frontend-az-a", "frontend-az-b", "frontend-az-c"
INLINE, CODED = 700, 150_000           # an inline record, and one with erasure-coded fragments


@pytest.fixture(scope="module")
def sc(tmp_path_factory):
    # $MINIS3_CLOCK_SKEW at start: the processes inherit it (here, a harmless second for the scrubber).
    saved = os.environ.get("MINIS3_CLOCK_SKEW")
    os.environ["MINIS3_CLOCK_SKEW"] = "scrubber=+1s"
    try:
        gen = started_cluster(tmp_path_factory, "clockskew", frontend_per_az=True)
        c = next(gen)
    finally:
        if saved is None:
            os.environ.pop("MINIS3_CLOCK_SKEW", None)
        else:
            os.environ["MINIS3_CLOCK_SKEW"] = saved
    c.clients = {f"frontend-{az.name}": client(c.topo.az_frontend(az.name).url) for az in c.topo.azs}
    yield c
    chaos_clock.set_skew(c.topo, "all", "0")
    next(gen, None)


class skewed:
    """``with skewed(c, "frontend-az-a", "-5m"):`` the process's clock is off, then reset."""

    def __init__(self, c, process: str, amount: str):
        self.c, self.process, self.amount = c, process, amount

    def __enter__(self):
        print(chaos_clock.set_skew(self.c.topo, self.process, self.amount))

    def __exit__(self, *exc):
        chaos_clock.set_skew(self.c.topo, self.process, "0")


def _read_state(s3, bucket: str, key: str) -> bytes | None:
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except botocore.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] != "NoSuchKey":
            raise
        return None


def _sequence(c, bucket: str, keys: int = 3) -> list[str]:
    """PUT → PUT → DELETE → PUT on each key, each step through the other writing
    frontend than the one before; after each acknowledgement a read (through the
    reading frontend) must show that state. Returns what went wrong."""
    reader = c.clients[READER]
    wrong = []
    for k in range(keys):
        key = f"key-{k}"
        writers = itertools.cycle([OTHER, SKEWED] if k % 2 == 0 else [SKEWED, OTHER])
        for step, op in enumerate(["PUT", "PUT", "DELETE", "PUT", "DELETE", "PUT"]):
            via = next(writers)
            s3 = c.clients[via]
            if op == "PUT":
                body = f"{key} step {step} via {via} ".encode() * ((INLINE if step % 2 else CODED) // 30)
                s3.put_object(Bucket=bucket, Key=key, Body=body)
            else:
                s3.delete_object(Bucket=bucket, Key=key)
                body = None
            got = _read_state(reader, bucket, key)
            if got != body:
                wrong.append(f"{key} step {step} ({op} via {via}): read "
                             f"{'nothing' if got is None else got[:40]!r}, acknowledged "
                             f"{'nothing' if body is None else body[:40]!r}")
    return wrong


def test_the_offset_is_set_and_shown_through_the_cli(sc):
    minis3 = str(Path(sys.executable).parent / "minis3")
    run = lambda *a: subprocess.run([minis3, "chaos", "clock-skew", *a, "--topology", str(sc.topo_path)],
                                    capture_output=True, text=True, timeout=30)
    r = run(SKEWED, "-5m")
    assert r.returncode == 0, r.stderr
    shown = run().stdout
    assert any(line.split()[:2] == [SKEWED, "-5m"] for line in shown.splitlines()), shown
    assert any(line.split()[:3] == ["scrubber", "+1s", "$MINIS3_CLOCK_SKEW"] for line in shown.splitlines()), shown
    assert run(SKEWED, "0").returncode == 0
    # The frontend's route is the cluster's only: unsigned, it is an S3 request (refused), and
    # signed with another secret, 403; neither changes the clock.
    url = sc.topo.az_frontend("az-a").url
    req = urllib.request.Request(url + "/_minis3/clock", data=b'{"offset": "+5m"}', method="POST")
    with pytest.raises(urllib.error.HTTPError) as unsigned:
        urllib.request.urlopen(req, timeout=5)
    assert unsigned.value.code in (400, 403, 405)
    status, _ = sync.call("not-the-cluster-secret", "POST", url, "/_minis3/clock", {"offset": "+5m"})
    assert status == 403
    assert sync.call_json(sc.topo.cluster_secret, "GET", url, "/_minis3/clock")["offset"] == "0"
    assert run("node-a1", "+5m").returncode == 2            # a storage node stamps nothing
    assert run(SKEWED, "5").returncode == 2                 # a bare number: seconds or ms?


def test_a_frontend_five_minutes_behind_never_loses_an_acknowledged_write(sc):
    c = sc
    c.clients[OTHER].create_bucket(Bucket="behind")
    with skewed(c, SKEWED, "-5m"):
        assert _sequence(c, "behind") == []


def test_versions_are_listed_in_the_order_they_were_acknowledged(sc):
    c = sc
    c.clients[OTHER].create_bucket(Bucket="versions-behind")
    c.clients[OTHER].put_bucket_versioning(Bucket="versions-behind", VersioningConfiguration={"Status": "Enabled"})
    acked = []                                     # (version id, is a delete marker), in acknowledgement order
    with skewed(c, SKEWED, "-5m"):
        for step, via in enumerate([OTHER, SKEWED, OTHER, SKEWED, SKEWED, OTHER, SKEWED]):
            s3 = c.clients[via]
            if step in (3, 5):
                r = s3.delete_object(Bucket="versions-behind", Key="k")
                acked.append((r["VersionId"], True))
            else:
                r = s3.put_object(Bucket="versions-behind", Key="k", Body=b"v%d" % step * (INLINE if step % 2 else CODED // 2))
                acked.append((r["VersionId"], False))
        listed = c.clients[READER].list_object_versions(Bucket="versions-behind")
    versions, markers = listed.get("Versions", []), listed.get("DeleteMarkers", [])
    # Newest first, as S3 lists them (boto3 hands versions and delete markers over apart).
    newest_first = list(reversed(acked))
    assert [v["VersionId"] for v in versions] == [v for v, marker in newest_first if not marker]
    assert [m["VersionId"] for m in markers] == [v for v, marker in newest_first if marker]
    # And across the two kinds: minis3's version ids sort newest first.
    assert sorted(v["VersionId"] for v in versions + markers) == [v for v, _ in newest_first]
    assert [v["VersionId"] for v in versions + markers if v["IsLatest"]] == [acked[-1][0]]
    body = c.clients[READER].get_object(Bucket="versions-behind", Key="k")["Body"].read()
    assert body.startswith(b"v6")


def test_a_short_workload_through_both_frontends_with_one_behind(sc):
    """The chaos tests' judge (every acknowledged operation checked against what
    reads see) with each operation sent through az-a's or az-b's frontend at random."""
    c = sc
    c.clients[OTHER].create_bucket(Bucket="workload-behind")
    urls = [c.topo.az_frontend("az-a").url, c.topo.az_frontend("az-b").url]

    def make_client():
        return _EitherFrontend([client(u) for u in urls])
    wl = Workload(make_client, "workload-behind", workers=3, keys_per_worker=8, sizes=[0, 10, 5000, 100_000])
    with skewed(c, SKEWED, "-5m"):
        wl.start()
        time.sleep(SECONDS)
        wl.stop()
        wl.final_check(client(c.topo.az_frontend("az-c").url))
    ok = sum(o.ok for o in wl.ops)
    print(f"{len(wl.ops)} operations, {ok} acknowledged")
    if os.environ.get("MINIS3_CHAOS_ALL") == "1":
        doc = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "seconds": SECONDS,
               "fault": f"clock-skew {SKEWED} -5m", "operations": len(wl.ops), "failed": len(wl.ops) - ok,
               "anomalies": len(wl.violations)}
        (DOCS / "faults-clock.json").write_text(json.dumps(doc, indent=1) + "\n")
        put_table(DOCS / "faults.md", render_table(doc), TABLE_BEGIN, TABLE_END)
    assert ok > 50
    assert wl.violations == []


TABLE_BEGIN = "<!-- clock-skew table: made by tests/integration/test_clock_skew.py from docs/faults-clock.json -->"
TABLE_END = "<!-- end of clock-skew table -->"


def render_table(doc: dict) -> str:
    return "\n".join([
        f"Last run (`make chaos`): {doc['when']}, {doc['seconds']:g} s, every operation through az-a's or "
        "az-b's frontend at random, read back through az-c's.", "",
        "| fault | operations | failed | anomalies | time to recover |", "|---|---:|---:|---:|---:|",
        f"| {doc['fault']} | {doc['operations']} | {doc['failed']} | {doc['anomalies']} | none needed: "
        "no process stops |"])


def test_a_metadata_process_five_minutes_off_changes_nothing(sc):
    c = sc
    for amount in ("+5m", "-5m"):
        bucket = f"meta{amount.replace('+', 'ahead').replace('-', 'behind')}"
        c.clients[OTHER].create_bucket(Bucket=bucket)
        with skewed(c, "meta-az-b", amount):
            assert _sequence(c, bucket, keys=2) == []


def test_a_frontend_five_minutes_ahead_never_hides_a_later_write(sc):
    """Last, since its stamps stay five minutes ahead in the store (and in the
    clock of every frontend that reads them) once it is over."""
    c = sc
    c.clients[OTHER].create_bucket(Bucket="ahead")
    with skewed(c, SKEWED, "+5m"):
        assert _sequence(c, "ahead") == []


class _EitherFrontend:
    """A boto3 client that sends each call through one of several frontends at random."""

    def __init__(self, clients):
        self._clients, self._rng = clients, random.Random(len(clients))

    def __getattr__(self, name):
        return getattr(self._rng.choice(self._clients), name)
