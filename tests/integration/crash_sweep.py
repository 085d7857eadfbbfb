"""The crash sweep's machinery: for one failpoint, a mixed workload, a crash
exactly there, the restart, and the invariants (tests/integration/test_crash_sweep.py
runs it for every point; docs/faults.md, "Crash sweep", shows the results).

Each point needs its own way in: which kind of process holds it, and what
work reaches it (:data:`CASES`). A case then

1. writes a few *fixed* objects (two inline, four erasure-coded) that the
   workload never touches: they must read back byte for byte at the end;
2. runs chaos_workload's mixed workload (four clients, overwrites, GET with
   content checks, HEAD, LIST, DELETE) on a bucket of its own;
3. arms ``POINT=crash@N`` (N small, drawn from the point's name, so a run is
   repeatable) in one process through the signed ``POST /failpoints`` route
   (a frontend's: ``/_minis3/failpoints``), and does what reaches the point
   (a scrub pass that rebuilds or collects, a burst of keys that splits a
   partition, a replica move, or nothing: PUTs, and for the multipart points
   a stream of multipart uploads beside the workload, reach the rest);
4. waits until the process died *there* (its log has the failpoint's crash
   line), its supervisor started it again (a storage node's or a metadata
   process's: its AZ supervisor; the frontend's and the scrubber's: ``minis3
   up``'s loop, which :class:`Supervising` runs here) and the cluster is
   healthy: the time from the crash to then is the *time to recover*;
5. lets the workload go on a little, stops it, and checks it: no
   acknowledged write lost, nothing unacknowledged half visible, every key
   readable or cleanly absent, LIST and GET agreeing (``final_check``); every
   multipart upload completes (again, if its Complete failed) and reads back;
   every metadata process holds exactly the partitions the newest map names
   it for, each serving (a split or a move the crash cut short was finished
   or undone);
6. waits out the GC grace period and runs scrub passes (at most
   :data:`MAX_PASSES`) until the fragment files on the nodes' disks are
   exactly the ones the metadata records point at: none missing, no orphan
   left (a crashed frontend's uncommitted fragments among them). Nothing
   half-written may stay either: every node's tmp/ is empty and no metadata
   partition directory keeps a ``.tmp`` snapshot.

The cluster's scrubber runs only when asked and its GC grace period is
:data:`GRACE` (10 min by default; nothing a test can wait for), so step 6
takes seconds. The grace period sets the commit window too (a quarter of
it: 2.5 s in `make chaos`, 1.25 s in `make test`'s sample), which a PUT must
keep between its first fragment landing and its commit; on a busy machine a
slow PUT can miss it, and then fails cleanly (a failed operation, never an
anomaly). (The slowest commit measured in the sample on 2 cores: ~0.07 s.)
"""
from __future__ import annotations

import datetime as dt
import json
import os
import random
import re
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import ClientError

from minis3.cluster.failpoints import FRONTEND_PATH
from minis3.cluster.partitions import move
from minis3.cluster.supervisor import log_dir
from minis3.rpc import sync

from .chaos_workload import Workload, body_for, client
from .cluster import TestCluster

#: `make chaos` (MINIS3_CHAOS_ALL=1): the whole sweep, whose results make docs/faults.md's
#: table; else `make test`'s sample of two points, with the shorter settings below.
WHOLE_SWEEP = os.environ.get("MINIS3_CHAOS_ALL") == "1"
#: The sweep cluster's GC grace period, s (its commit window is a quarter of it): 10 s
#: in the whole sweep; 5 s in the sample, whose cases wait it out once each.
GRACE = 10.0 if WHOLE_SWEEP else 5.0
#: A partition of more keys than this splits (a split is what makes a snapshot
#: in a short run: the WALs' own threshold is 50,000 records).
SPLIT_KEYS = 600
#: Scrub passes a case may take to converge. A crashed replica's stale
#: version is repaired in one pass and the fragments it kept alive become
#: orphans for the next; a handoff copy moved home in one pass is collected
#: by the next; so two or three are usual.
MAX_PASSES = 4
#: Seconds the workload runs before the crash is armed, and after the cluster is healthy
#: again: 2 and 3 in `make chaos`, 1 and 2 in `make test`'s sample (some 100 operations a second).
BEFORE_S, AFTER_S = (2.0, 3.0) if WHOLE_SWEEP else (1.0, 2.0)
#: Sizes the workload writes: inline (up to 64 KiB: 30,000 bytes is big enough for
#: its payload to go to the blob log before its WAL line, meta/wal.py), one segment,
#: two segments (test_chaos.py's mix).
SIZES = [0, 1, 1024, 4097, 30_000, 100_000, 1_100_000]

SCRUB = {"interval_s": 3600, "audit_mb_per_s": 0, "gc_grace_s": GRACE, "rebuild_mb_per_s": 0}
INDEX = {"split_keys": SPLIT_KEYS, "check_every_s": 0.5, "split_ops_per_s": 0}
#: Seconds every metadata process has, after the cluster is healthy again, to
#: hold exactly what the partition map names it for (a split or move finished).
SETTLE_S = 30.0
#: Multipart uploads' sizes (one part each; every third upload has a 5 MiB part first).
MULTIPART_SIZES = [1000, 70_000, 300_000]


@dataclass(frozen=True)
class Case:
    """How the sweep reaches one failpoint.

    ``process``: ``node`` (a storage node), ``meta`` (a metadata replica),
    ``frontend``, ``scrubber`` (where the index manager runs), or, for a
    replica move, ``old-holder``/``new-holder`` (the metadata process the
    replica moves from / to);
    ``reach``: ``put`` (the workload's PUTs: erasure-coded ones land fragments on
    every node, and every one is committed by the frontend), ``commit`` (every
    write is a WAL group commit on every replica), ``rebuild`` (fragments
    wiped on the node, then a scrub pass), ``collect`` (the workload's
    overwrites leave orphans; once older than the grace period, a scrub pass
    deletes them), ``split`` (a burst of keys splits a partition; each half
    takes its first snapshot), ``move`` (the case bucket's partition's
    replica in one AZ moves to the other metadata process of that AZ),
    ``multipart`` (multipart uploads beside the workload); ``most``: the
    largest N of ``crash@N``."""
    process: str
    reach: str
    most: int
    how: str


CASES: dict[str, Case] = {
    "storage.land.before_fsync": Case("node", "put", 5, "erasure-coded PUTs of the workload"),
    "storage.land.before_rename": Case("node", "put", 5, "erasure-coded PUTs of the workload"),
    "storage.land.before_dir_fsync": Case("node", "put", 5, "erasure-coded PUTs of the workload"),
    "storage.rebuild.before_fsync": Case("node", "rebuild", 3,
                                         "the fixed objects' fragments wiped on the node, then a scrub pass"),
    "storage.rebuild.before_rename": Case("node", "rebuild", 3,
                                          "the fixed objects' fragments wiped on the node, then a scrub pass"),
    "storage.delete.before_unlink": Case("node", "collect", 3,
                                         "the workload's overwrites, older than the grace period, then a "
                                         "scrub pass (GC)"),
    "meta.wal.before_blob_sync": Case("meta", "commit", 5, "the workload's writes of objects of 16 to 64 KiB "
                                      "(their payloads go to the blob log first)"),
    "meta.wal.before_write": Case("meta", "commit", 5, "every write of the workload (a group commit)"),
    "meta.wal.before_fdatasync": Case("meta", "commit", 5, "every write of the workload (a group commit)"),
    "meta.wal.after_fdatasync": Case("meta", "commit", 5, "every write of the workload (a group commit)"),
    "meta.snapshot.before_rename": Case("meta", "split", 2,
                                        f"{SPLIT_KEYS + 60} more keys split a partition; each half's "
                                        "first snapshot"),
    "meta.split.before_manifest": Case("meta", "split", 1, f"{SPLIT_KEYS + 60} more keys split a partition"),
    "meta.split.after_manifest": Case("meta", "split", 1, f"{SPLIT_KEYS + 60} more keys split a partition"),
    "meta.move.after_copy": Case("scrubber", "move", 1, "the bucket's partition's replica moved (`minis3 "
                                 "partitions move`): the index manager crashes"),
    "meta.move.after_switch": Case("scrubber", "move", 1, "the bucket's partition's replica moved: the index "
                                   "manager crashes"),
    "meta.move.after_fence": Case("old-holder", "move", 1, "the bucket's partition's replica moved: the "
                                  "old holder crashes"),
    "meta.move.before_serving": Case("new-holder", "move", 1, "the bucket's partition's replica moved: the "
                                     "new holder crashes"),
    "meta.move.before_release": Case("scrubber", "move", 1, "the bucket's partition's replica moved: the index "
                                     "manager crashes"),
    "frontend.put.before_commit": Case("frontend", "put", 4, "erasure-coded PUTs of the workload"),
    "frontend.put.after_commit": Case("frontend", "put", 5, "PUTs of the workload"),
    "frontend.multipart.before_commit": Case("frontend", "multipart", 3,
                                             "multipart uploads beside the workload (Complete retried "
                                             "after a failure)"),
    "frontend.multipart.after_commit_before_cleanup": Case("frontend", "multipart", 3,
                                                           "multipart uploads beside the workload (Complete "
                                                           "retried after a failure)"),
}


def case_for(point: str) -> Case:
    """The sweep's case for ``point``; a point added to core/failpoints.POINTS
    without one fails here, naming it."""
    if point not in CASES:
        raise KeyError(f"failpoint {point!r} has no crash-sweep case: add one to "
                       "tests/integration/crash_sweep.py CASES (which process, what reaches it)")
    return CASES[point]


@dataclass(frozen=True)
class Victim:
    """The process a case crashes: its name (as ``minis3 status`` says it), AZ
    (None: not an AZ supervisor's child, but ``minis3 up``'s) and URL."""
    name: str
    az: str | None
    url: str
    node: str | None = None        # a storage node's id
    path: str = "/failpoints"      # its failpoints route


@dataclass(frozen=True)
class Move:
    """A move case's move: partition ``partition``'s replica in ``az`` from ``frm`` to ``to``."""
    partition: str
    az: str
    frm: str
    to: str


def plan(c: TestCluster, point: str) -> tuple[Victim, int, Move | None]:
    """The process to crash, the N of ``crash@N`` and (a move case) the move,
    drawn from the point's name (not Python's salted hash): the same every run."""
    case = case_for(point)
    rng = random.Random(zlib.crc32(point.encode()))
    mv = None
    if case.process == "node":
        n = rng.choice(c.topo.nodes)
        victim = Victim(f"node-{n.id}", n.az, n.url, n.id)
    elif case.process == "meta":
        m = rng.choice(c.topo.metas)
        victim = Victim(m.id, m.az, m.url)
    elif case.process == "frontend":
        victim = Victim("frontend", None, c.topo.frontend.url, path=FRONTEND_PATH)
    elif case.process == "scrubber":
        victim = Victim("scrubber", None, c.topo.scrub.url)
    else:
        mv = planned_move(c, bucket_for(point), rng.choice(c.topo.azs).name)
        m = c.topo.meta(mv.frm if case.process == "old-holder" else mv.to)
        victim = Victim(m.id, m.az, m.url)
    if case.reach == "move" and mv is None:
        mv = planned_move(c, bucket_for(point), rng.choice(c.topo.azs).name)
    return victim, rng.randint(1, case.most), mv


def planned_move(c: TestCluster, bucket: str, az: str) -> Move:
    """Moving ``bucket``'s partition's replica in ``az`` to the AZ's other
    metadata process (the sweep cluster has two per AZ: each move case moves
    it to whichever does not hold it now)."""
    e = c.partition_map().locate(bucket + "/")
    spec = next(a for a in c.topo.azs if a.name == az)
    frm = e.replica_in(az)
    to = next(m.id for m in spec.all_metas if m.id != frm)
    return Move(e.id, az, frm, to)


def bucket_for(point: str) -> str:
    """The case's bucket. Keys of a bucket named ``sweep-*`` fall in the
    partition from "n" to "t" of the index; the split cases' (``fill-*``) in
    the one below "g", which only they fill, so only they split anything;
    the move cases' (``move-*``) in the one from "g" to "n", which they move."""
    slug = point.replace(".", "-").replace("_", "-")
    prefix = {"split": "fill-", "move": "move-"}.get(CASES[point].reach, "sweep-")
    return prefix + slug


# ----------------------------------------------------------------------------- the crash
class Supervising:
    """``minis3 up``'s loop (supervisor.Cluster.restart_exited: the frontend,
    the scrubber and the console started again when one exits), run in a
    thread while a case runs: a test cluster has no ``minis3 up`` process."""

    def __init__(self, c: TestCluster):
        self.c, self.stop_flag = c, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop_flag.wait(0.1):
            self.c.cluster.restart_exited()

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_flag.set()
        self.thread.join(30)


def pid_of(c: TestCluster, victim: Victim) -> int | None:
    """The victim's pid now; None while it is down."""
    if victim.az is not None:
        return c.az_state(victim.az)["children"].get(victim.name)
    p = getattr(c.cluster, victim.name)
    return p.pid if p is not None and p.poll() is None else None


class CrashWatch:
    """Sees one process crash at one failpoint and come back."""

    def __init__(self, c: TestCluster, victim: Victim, point: str):
        self.c, self.victim, self.point = c, victim, point
        self.old_pid = pid_of(c, victim)
        self.log = log_dir(c.topo) / f"{victim.name}.log"
        self.offset = self.log.stat().st_size if self.log.exists() else 0

    def crash_line(self) -> str | None:
        with open(self.log, "rb") as f:
            f.seek(self.offset)
            text = f.read().decode(errors="replace")
        return next((line for line in text.splitlines() if f"failpoint {self.point}: crash" in line), None)

    def wait_crashed(self, timeout: float) -> float:
        """The crash's wall-clock time (from its log line), once the
        supervisor has seen the process gone. AssertionError if the process
        did not die there within ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while pid_of(self.c, self.victim) == self.old_pid:
            assert time.monotonic() < deadline, (f"{self.victim.name} never reached {self.point} "
                                                 f"(armed crash) in {timeout:.0f} s")
            time.sleep(0.05)
        seen = time.time()
        line = self.crash_line()
        assert line is not None, f"{self.victim.name} died, but not at {self.point} (see {self.log})"
        try:
            logged = dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        except ValueError:
            logged = seen
        return min(logged, seen)

    def wait_back(self) -> int:
        """The new pid, once the supervisor restarted the process and every
        process of the cluster is healthy again (a metadata replica answers
        its health check only once caught up)."""
        deadline = time.monotonic() + 30
        while pid_of(self.c, self.victim) in (None, self.old_pid):
            assert time.monotonic() < deadline, f"{self.victim.name} was not restarted"
            time.sleep(0.05)
        self.c.wait_healthy()
        return pid_of(self.c, self.victim)


def arm(c: TestCluster, victim: Victim, spec: str) -> dict:
    return sync.call_json(c.topo.cluster_secret, "POST", victim.url, victim.path, {"spec": spec})


def fired(answer: dict, point: str) -> int:
    """How often ``point`` fired, from a ``/failpoints`` answer."""
    return next(p["fired"] for p in answer["points"] if p["name"] == point)


# ----------------------------------------------------------------------------- the invariants
def referenced(c: TestCluster, s3) -> set[tuple[str, str, int]]:
    """(node, object id, index) of every fragment a current record points at, in every bucket."""
    out = set()
    for b in s3.list_buckets()["Buckets"]:
        for rec in c.records(b["Name"]).values():
            for ec in [rec.get("ec")] + [p.get("ec") for p in rec.get("parts", [])]:
                if ec:
                    out |= {(node, ec["id"], i) for i, node in enumerate(ec["nodes"])}
    return out


def leftovers(c: TestCluster) -> list[str]:
    """Half-written files a crash may leave and a restart must clear: anything
    in a node's tmp/, a metadata snapshot still named ``.tmp``."""
    out = [str(p) for n in c.topo.nodes if (n.data_dir / "tmp").exists() for p in (n.data_dir / "tmp").iterdir()]
    for m in c.topo.all_metas:
        out += [str(p) for p in Path(m.data_dir).rglob("snapshot-*.tmp")]
    return out


def index_unsettled(c: TestCluster) -> list[str]:
    """How the metadata processes' partitions differ from the newest map: a
    partition a process holds that the map gives to another, or one the map
    names it for that it does not hold (or holds with other bounds, or still
    as incoming). Empty once every split and move has finished."""
    pmap = c.partition_map()
    out = []
    for m in c.topo.all_metas:
        held = {p["id"]: p for p in c.signed_get(m.url, "/index/stats")["partitions"]}
        named = {e.id: e for e in pmap.held_by(m.id)}
        for pid in sorted(set(held) | set(named)):
            if pid not in held:
                out.append(f"{m.id} does not hold {pid} (map version {pmap.version} names it)")
            elif pid not in named:
                out.append(f"{m.id} still holds {pid} (map version {pmap.version} does not name it)")
            elif (held[pid]["lo"], held[pid]["hi"]) != (named[pid].lo, named[pid].hi):
                out.append(f"{m.id} holds {pid} with other bounds than the map's")
            elif held[pid]["state"] != "serving":
                out.append(f"{m.id} holds {pid} as {held[pid]['state']}")
    return out


def wait_settled(c: TestCluster, timeout: float = SETTLE_S) -> list[str]:
    """:func:`index_unsettled`, once it is empty or ``timeout`` s have passed."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            left = index_unsettled(c)
        except OSError as exc:
            left = [f"a metadata process did not answer: {exc}"]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


class Multipart:
    """Multipart uploads (``mp/N``: one part, or a 5 MiB part and one more)
    beside the workload, one at a time: create, upload the parts, complete.
    One whose step failed (its outcome unknown, as for any S3 request) is
    finished by :meth:`finish`, as a client would: the parts not yet
    acknowledged uploaded (again), then Complete again."""

    def __init__(self, endpoint: str, bucket: str, seed: int):
        self.endpoint, self.bucket, self.rng = endpoint, bucket, random.Random(seed)
        self.done: dict[str, bytes] = {}              # completed (acknowledged): key → its bytes
        #: Not acknowledged yet: key → [upload id (None: Create unanswered), parts, acknowledged parts' ETags].
        self.open: dict[str, list] = {}
        self.ops = self.failed = 0
        self.finished = 0                             # uploads finish() completed after a failure
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_flag.set()
        self.thread.join(120)

    def _run(self) -> None:
        s3 = client(self.endpoint)
        i = 0
        while not self.stop_flag.is_set():
            key = f"mp/{i}"
            size = self.rng.choice(MULTIPART_SIZES)
            parts = ([body_for(key, 0, 5 * 1024 * 1024)] if i % 3 == 2 else []) + [body_for(key, 1, size)]
            self.open[key] = [None, parts, []]
            self.ops += 1
            try:
                self.open[key][0] = s3.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
                self._complete(s3, key)
            except Exception:
                self.failed += 1
            i += 1
            time.sleep(0.1)

    def _complete(self, s3, key: str) -> None:
        uid, parts, etags = self.open[key]
        for n in range(len(etags), len(parts)):
            etags.append(s3.upload_part(Bucket=self.bucket, Key=key, UploadId=uid, PartNumber=n + 1,
                                        Body=parts[n])["ETag"])
        s3.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=uid, MultipartUpload={
            "Parts": [{"PartNumber": n + 1, "ETag": e} for n, e in enumerate(etags)]})
        self.done[key] = b"".join(parts)
        del self.open[key]

    def finish(self, s3) -> list[str]:
        """Finish every upload whose outcome was unknown (a retried Complete of
        one that was completed answers as the first would have), abort those
        whose Create went unanswered, then check: every completed upload reads
        back byte for byte, no other is visible, none is still listed. The
        anomalies."""
        out = []
        for key, (uid, _, _) in sorted(self.open.items()):
            if uid is None:
                # A Create whose answer was lost may have made an upload all
                # the same: the client aborts what it does not know of.
                for u in s3.list_multipart_uploads(Bucket=self.bucket, Prefix=key).get("Uploads", []):
                    if u["Key"] == key:
                        s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=u["UploadId"])
                continue
            try:
                self._complete(s3, key)
                self.finished += 1
            except ClientError as exc:
                out.append(f"multipart {key}: finishing its upload failed: {exc.response['Error']['Code']}")
        for key, body in sorted(self.done.items()):
            try:
                if s3.get_object(Bucket=self.bucket, Key=key)["Body"].read() != body:
                    out.append(f"multipart {key}: reads other bytes")
            except ClientError as exc:
                out.append(f"multipart {key}: completed, then {exc.response['Error']['Code']}")
        for key in self.open:
            try:
                s3.head_object(Bucket=self.bucket, Key=key)
                out.append(f"multipart {key}: visible, but never completed")
            except ClientError:
                pass
        listed = s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])
        out += [f"multipart {u['Key']}: upload {u['UploadId']} still listed" for u in listed]
        return out


def converge(c: TestCluster, s3, quiet_since: float) -> dict:
    """Scrub passes, after the grace period since the last write, until the
    fragment files on disk are exactly those the records point at (or
    :data:`MAX_PASSES`): what was left, and how many passes it took."""
    time.sleep(max(0.0, quiet_since + GRACE + 0.5 - time.time()))
    passes, removed, rebuilt = 0, 0, 0
    while True:
        rep = c.scrub_now("--no-audit")["pass"]
        passes += 1
        removed += rep.get("orphans_removed", 0)
        rebuilt += sum((rep.get("rebuilt") or {}).values())
        want, have = referenced(c, s3), c.fragment_locations()
        if want == have or passes >= MAX_PASSES:
            break
    return {"passes": passes, "orphans_removed": removed, "rebuilt": rebuilt,
            "orphans_left": sorted(have - want)[:10], "orphans_left_n": len(have - want),
            "missing": sorted(want - have)[:10], "missing_n": len(want - have),
            "gc_skipped": rep.get("gc_skipped"), "not_full": rep.get("not_full")}


# ----------------------------------------------------------------------------- one case
def fixed_objects(point: str) -> dict[str, bytes]:
    """Objects written before the crash and never touched again: two inline, four erasure-coded."""
    rng = random.Random(zlib.crc32(b"fixed " + point.encode()))
    return {f"fixed/{i}": rng.randbytes(n) for i, n in enumerate([0, 3000, 70_000, 150_000, 400_000, 1_100_000])}


def wipe_on(c: TestCluster, bucket: str, node: str, keys) -> int:
    """Delete, on ``node``'s disk, the fragments of ``keys`` it holds: work for a rebuild."""
    gone = 0
    recs = c.records(bucket)
    data = c.topo.node(node).data_dir / "fragments"
    for key in keys:
        ec = recs[key].get("ec")
        for i, n in enumerate(ec["nodes"] if ec else []):
            if n == node:
                (data / ec["id"][:2] / f"{ec['id']}.{i}").unlink()
                gone += 1
    return gone


def fill(c: TestCluster, bucket: str, count: int, stop: threading.Event) -> None:
    """``count`` empty objects (fill/00000...), four writers: enough keys to
    split the partition the bucket is in. An error is left to the workload's
    checks (these keys are not in its log)."""
    def writer(w: int) -> None:
        s3 = client(c.endpoint)
        for i in range(w, count, 4):
            if stop.is_set():
                return
            try:
                s3.put_object(Bucket=bucket, Key=f"fill/{i:05d}", Body=b"")
            except Exception:
                pass
    threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def run_case(c: TestCluster, point: str) -> dict:
    """One point's crash under the workload, start to convergence: the result (see module doc)."""
    case = case_for(point)
    victim, n, mv = plan(c, point)
    spec = f"{point}=crash@{n}"
    bucket = bucket_for(point)
    s3 = client(c.endpoint)
    t_start = time.monotonic()
    s3.create_bucket(Bucket=bucket)
    fixed = fixed_objects(point)
    for key, body in fixed.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    fixed_at = time.time()

    wl = Workload(lambda: client(c.endpoint), bucket, sizes=SIZES, seed=zlib.crc32(point.encode()))
    mp = Multipart(c.endpoint, bucket, zlib.crc32(b"multipart " + point.encode())) \
        if case.reach == "multipart" else None
    stop_fill = threading.Event()
    side: list[threading.Thread] = []
    side_errors: list[str] = []

    def in_background(fn, *args) -> None:
        def run() -> None:
            try:
                fn(*args)
            except Exception as exc:             # the pass the crash cut short: reported, not fatal
                side_errors.append(f"{fn.__name__}: {exc!r}"[:300])
        t = threading.Thread(target=run, daemon=True)
        t.start()
        side.append(t)

    def move_replica(m: Move) -> None:
        ok, got = move(c.topo, m.partition, m.to, timeout=120)
        if not ok:                               # the crash cut it short: the manager finishes or undoes it
            raise RuntimeError(f"move of {m.partition} to {m.to}: {got.get('message', got)}")

    supervising = Supervising(c)
    supervising.start()
    wl.start()
    if mp is not None:
        mp.start()
    try:
        time.sleep(BEFORE_S)
        if case.reach == "collect":
            # Overwritten fragments become orphans; GC removes them only once older than the grace period.
            time.sleep(GRACE + 1.0)
        wiped = 0
        if case.reach == "rebuild":
            time.sleep(max(0.0, fixed_at + 1.5 - time.time()))   # (a pass leaves versions younger than ~1 s)
            wiped = wipe_on(c, bucket, victim.node, [k for k, b in fixed.items() if len(b) > 65536])
            assert wiped >= case.most, f"only {wiped} fragments wiped on {victim.node}"

        watch = CrashWatch(c, victim, point)
        armed = arm(c, victim, spec)
        # (Its answer is the process's state a moment later: a hot point may
        # already have counted a hit, or fired, by then.)
        assert f"{point}=crash" in armed["armed"] or fired(armed, point), armed["armed"]
        t_armed = time.time()
        if case.reach in ("rebuild", "collect"):
            in_background(c.scrub_now, "--no-audit", "--rebuild-rate", "0")
        if case.reach == "split":
            in_background(fill, c, bucket, SPLIT_KEYS + 60, stop_fill)
        if case.reach == "move":
            in_background(move_replica, mv)

        t_crash = watch.wait_crashed(60)
        watch.wait_back()
        t_back = time.time()
        time.sleep(AFTER_S)
    finally:
        # Also when the case failed: nothing of it may go on into the next one.
        stop_fill.set()
        wl.stop()
        if mp is not None:
            mp.stop()
        for t in side:
            t.join(120)
        supervising.stop()
        try:
            arm(c, victim, f"{point}=off")
        except Exception:                        # down, or restarted: nothing armed there
            pass
    unsettled = wait_settled(c)
    quiet = time.time()

    wl.final_check(s3)
    multipart = mp.finish(s3) if mp is not None else []
    if mp is not None:
        quiet = time.time()                      # its last parts and Completes are writes too
    unreadable = []
    for key, body in fixed.items():
        try:
            if s3.get_object(Bucket=bucket, Key=key)["Body"].read() != body:
                unreadable.append(f"{key}: other bytes")
        except ClientError as exc:
            unreadable.append(f"{key}: {exc.response['Error']['Code']}")
    conv = converge(c, s3, quiet)
    left = leftovers(c)
    ops = len(wl.ops) + (mp.ops if mp is not None else 0)
    failed = sum(not o.ok for o in wl.ops) + (mp.failed if mp is not None else 0)
    anomalies = (wl.violations + [f"fixed object {u}" for u in unreadable] + multipart
                 + [f"index not settled: {u}" for u in unsettled]
                 + [f"orphan fragment left: {x}" for x in conv["orphans_left"]]
                 + [f"fragment missing: {x}" for x in conv["missing"]]
                 + [f"half-written file left: {p}" for p in left])
    n_anomalies = (len(wl.violations) + len(unreadable) + len(multipart) + len(unsettled)
                   + conv["orphans_left_n"] + conv["missing_n"] + len(left))
    return {"point": point, "process": victim.name, "spec": spec, "reach": case.how,
            "ops": ops, "failed": failed,
            "ops_while_down": sum(1 for o in wl.ops if t_crash <= _wall(o.t) < t_back),
            "anomalies": n_anomalies, "anomaly_examples": anomalies[:20],
            "recover_s": round(t_back - t_crash, 2), "crash_after_arm_s": round(t_crash - t_armed, 2),
            "wiped": wiped, "side_errors": side_errors, **conv,
            **({"move": f"{mv.partition} in {mv.az}: {mv.frm} to {mv.to}"} if mv else {}),
            **({"multipart_uploads": mp.ops, "multipart_completed": len(mp.done),
                "multipart_finished_after_failure": mp.finished} if mp else {}),
            "seconds": round(time.monotonic() - t_start, 1)}


_MONO_TO_WALL = time.time() - time.monotonic()


def _wall(mono: float) -> float:
    return mono + _MONO_TO_WALL


# ----------------------------------------------------------------------------- the report
TABLE_BEGIN = "<!-- crash-sweep table: made by tests/integration/crash_sweep.py from docs/faults-sweep.json -->"
TABLE_END = "<!-- end of crash-sweep table -->"


def render_table(doc: dict) -> str:
    """The results table of docs/faults.md, from a sweep's JSON."""
    lines = [f"Last run of the sweep (`make chaos`): {doc['when']}, {doc['wall_s']:.0f} s for the whole sweep "
             f"({len(doc['results'])} failpoints; GC grace {doc['grace_s']:g} s).", "",
             "| fault | crashed | operations | failed | anomalies | time to recover | scrub passes to converge |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in doc["results"]:
        lines.append(f"| `{r['spec']}` | {r['process']} | {r['ops']} | {r['failed']} | {r['anomalies']} | "
                     f"{r['recover_s']:.1f} s | {r['passes']} |")
    return "\n".join(lines)


def write_report(results: list[dict], wall_s: float, json_path: Path, md_path: Path) -> None:
    """Write the sweep's JSON, and its table into ``md_path`` between the
    table's markers (the rest of that file is left as it is)."""
    doc = {"when": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "wall_s": round(wall_s, 1),
           "grace_s": GRACE, "results": results}
    json_path.write_text(json.dumps(doc, indent=1) + "\n")
    put_table(md_path, render_table(doc))


def put_table(md_path: Path, table: str, begin: str = TABLE_BEGIN, end: str = TABLE_END) -> None:
    """Put ``table`` between the markers ``begin`` and ``end`` of ``md_path``
    (test_disk_faults.py uses it for its own table, with its own markers)."""
    text = md_path.read_text()
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    assert pattern.search(text), f"{md_path} has no {begin} ... {end} markers"
    md_path.write_text(pattern.sub(lambda _: f"{begin}\n{table}\n{end}", text))


if __name__ == "__main__":
    # python -m tests.integration.crash_sweep: the table of docs/faults.md again, from docs/faults-sweep.json.
    root = Path(__file__).resolve().parents[2]
    put_table(root / "docs" / "faults.md", render_table(json.loads((root / "docs" / "faults-sweep.json").read_text())))
