"""A mixed S3 workload that logs every acknowledged operation and checks the
store against that log: the judge of the chaos tests.

Each worker thread owns its keys (so the order of operations on a key is the
order that worker made them) and overwrites, reads, lists and deletes them
at random. An operation that raised after boto3's own retries has an unknown
outcome (S3 says the same of a 5xx): the key may hold either its last
acknowledged state or that attempt's. Anything else is a violation:

* a GET or HEAD that returns bytes (or a size) no acknowledged or unknown
  PUT wrote, or a 404 for a key whose last acknowledged PUT nothing could
  have undone (read-after-write);
* a deleted key that reappears;
* a LIST that misses a key that must exist or shows one that must not.

With ``versioned`` (the bucket keeps versions), every acknowledged PUT's
version and every delete marker is noted, and old versions are removed by
id now and then: at the end, every acknowledged version must still be
listed and read back with its bytes, and no removed version may come back.
"""
from __future__ import annotations

import hashlib
import random
import threading
import time
from dataclasses import dataclass, field

import boto3
import botocore.exceptions
from botocore.config import Config

from .cluster import ACCESS_KEY, SECRET_KEY

SIZES = [0, 1, 1024, 4096, 4097, 100_000, 1_500_000, 3_200_000]
ABSENT = None          # the state of a key with no object


def body_for(key: str, version: int, size: int) -> bytes:
    seed = hashlib.sha256(f"{key}#{version}".encode()).digest()
    return (seed * (size // 32 + 1))[:size]


def digest(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@dataclass
class KeyState:
    acked: str | None = ABSENT                        # md5 of the last acknowledged state (None: absent)
    acked_size: int = 0
    unknown: dict = field(default_factory=dict)       # md5 (or None for delete) → size, of failed attempts
    versions: list = field(default_factory=list)      # acknowledged (version id, md5 or None for a marker, size)
    removed: set = field(default_factory=set)         # version ids removed for good (acknowledged)

    def allowed(self) -> dict:
        out = {self.acked: self.acked_size}
        out.update(self.unknown)
        return out


@dataclass
class OpRecord:
    t: float
    op: str
    ok: bool
    seconds: float


class Workload:
    def __init__(self, make_client, bucket: str, workers: int = 4, keys_per_worker: int = 6, seed: int = 7,
                 sizes: list[int] = SIZES, list_page: int | None = None, versioned: bool = False):
        """``list_page``: LIST with pages of this many keys (small pages cross
        more partition boundaries); ``versioned``: the bucket keeps versions."""
        self.versioned = versioned
        self.make_client, self.bucket = make_client, bucket
        self.workers, self.keys_per_worker = workers, keys_per_worker
        self.sizes, self.list_page = sizes, list_page
        self.seed = seed
        self.state: dict[str, KeyState] = {}
        self.ops: list[OpRecord] = []
        self.violations: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    # -- running -----------------------------------------------------------------
    def start(self) -> None:
        for w in range(self.workers):
            keys = [f"w{w}/k{i}" for i in range(self.keys_per_worker)]
            for k in keys:
                self.state[k] = KeyState()
            t = threading.Thread(target=self._run, args=(w, keys), daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(120)

    def _note(self, op: str, ok: bool, t0: float) -> None:
        with self._lock:
            self.ops.append(OpRecord(t0, op, ok, time.monotonic() - t0))

    def _violation(self, text: str) -> None:
        with self._lock:
            self.violations.append(text)

    def _run(self, w: int, keys: list[str]) -> None:
        s3 = self.make_client()
        rng = random.Random(self.seed * 1000 + w)
        version = 0
        while not self._stop.is_set():
            key = rng.choice(keys)
            st = self.state[key]
            op = rng.choices(["PUT", "GET", "HEAD", "DELETE", "LIST", "REMOVE"],
                             weights=[35, 30, 10, 10, 15, 8 if self.versioned else 0])[0]
            t0 = time.monotonic()
            try:
                if op == "PUT":
                    version += 1
                    size = rng.choice(self.sizes)
                    data = body_for(key, version, size)
                    try:
                        r = s3.put_object(Bucket=self.bucket, Key=key, Body=data)
                    except Exception:
                        st.unknown[digest(data)] = size
                        raise
                    st.acked, st.acked_size, st.unknown = digest(data), size, {}
                    if self.versioned:
                        st.versions.append((r["VersionId"], digest(data), size))
                elif op == "DELETE":
                    try:
                        r = s3.delete_object(Bucket=self.bucket, Key=key)
                    except Exception:
                        st.unknown[ABSENT] = 0
                        raise
                    st.acked, st.acked_size, st.unknown = ABSENT, 0, {}
                    if self.versioned:
                        st.versions.append((r["VersionId"], None, 0))
                elif op == "REMOVE":
                    # An old version (never the newest acknowledged one, so the
                    # key's current state stays what the model says).
                    if len(st.versions) < 2:
                        continue
                    vid = rng.choice(st.versions[:-1])[0]
                    s3.delete_object(Bucket=self.bucket, Key=key, VersionId=vid)
                    st.versions = [v for v in st.versions if v[0] != vid]
                    st.removed.add(vid)
                elif op == "GET":
                    self._check_read(s3, key, st, body=True)
                elif op == "HEAD":
                    self._check_read(s3, key, st, body=False)
                else:
                    self._check_list(s3, f"w{w}/", keys)
                self._note(op, True, t0)
            except Exception:
                self._note(op, False, t0)

    def _check_read(self, s3, key: str, st: KeyState, body: bool) -> None:
        allowed = st.allowed()
        try:
            if body:
                r = s3.get_object(Bucket=self.bucket, Key=key)
                got = digest(r["Body"].read())
                if got not in allowed:
                    self._violation(f"GET {key} returned bytes no acknowledged or pending PUT wrote")
            else:
                r = s3.head_object(Bucket=self.bucket, Key=key)
                if r["ContentLength"] not in [sz for d, sz in allowed.items() if d is not ABSENT]:
                    self._violation(f"HEAD {key} size {r['ContentLength']} not in {allowed}")
        except botocore.exceptions.ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code in ("NoSuchKey", "404"):
                if ABSENT not in allowed:
                    self._violation(f"{'GET' if body else 'HEAD'} {key}: 404, but its last acknowledged PUT "
                                    f"stands (read-after-write broken)")
                return
            raise

    def _check_list(self, s3, prefix: str, keys: list[str]) -> None:
        before = {k: self.state[k].allowed() for k in keys}
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix, PaginationConfig={"PageSize": self.list_page} if self.list_page else {})
        in_order = [o["Key"] for page in pages for o in page.get("Contents", [])]
        if in_order != sorted(set(in_order)):
            self._violation(f"LIST {prefix} is not in key order or repeats a key")
        listed = set(in_order)
        after = {k: self.state[k].allowed() for k in keys}
        for k in keys:
            must_exist = ABSENT not in before[k] and ABSENT not in after[k]
            must_not = set(before[k]) == {ABSENT} and set(after[k]) == {ABSENT}
            if must_exist and k not in listed:
                self._violation(f"LIST {prefix} misses {k}, whose last acknowledged PUT stands")
            if must_not and k in listed:
                self._violation(f"LIST {prefix} shows {k}, which is deleted")

    # -- judging -------------------------------------------------------------------
    def final_check(self, s3) -> None:
        """After the run: every key holds its last acknowledged state (or a pending one)."""
        listed = {o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
                  for o in page.get("Contents", [])}
        for key, st in self.state.items():
            allowed = st.allowed()
            try:
                got = digest(s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
            except botocore.exceptions.ClientError as exc:
                if exc.response["Error"]["Code"] != "NoSuchKey":
                    raise
                got = ABSENT
            if got not in allowed:
                self._violation(f"final: {key} holds {'nothing' if got is ABSENT else 'other bytes'}, "
                                f"expected one of {len(allowed)} allowed states (acked: "
                                f"{'absent' if st.acked is ABSENT else st.acked_size})")
            if (got is ABSENT) == (key in listed):
                self._violation(f"final: LIST and GET disagree on {key}")
        if self.versioned:
            self._check_versions(s3)

    def _check_versions(self, s3) -> None:
        """Every acknowledged version listed and readable with its bytes; no removed one back."""
        listed: dict[tuple[str, str], bool] = {}
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=self.bucket):
            for v in page.get("Versions", []):
                listed[(v["Key"], v["VersionId"])] = False
            for m in page.get("DeleteMarkers", []):
                listed[(m["Key"], m["VersionId"])] = True
        for key, st in self.state.items():
            for vid, md5, size in st.versions:
                if (key, vid) not in listed:
                    self._violation(f"final: {key} version {vid} was acknowledged and is not listed")
                    continue
                if listed[(key, vid)] != (md5 is None):
                    self._violation(f"final: {key} version {vid} is listed as the wrong kind")
                if md5 is not None:
                    got = digest(s3.get_object(Bucket=self.bucket, Key=key, VersionId=vid)["Body"].read())
                    if got != md5:
                        self._violation(f"final: {key} version {vid} reads other bytes")
            for vid in st.removed:
                if (key, vid) in listed:
                    self._violation(f"final: {key} version {vid} was removed and is listed again")
                try:
                    s3.head_object(Bucket=self.bucket, Key=key, VersionId=vid)
                    self._violation(f"final: {key} version {vid} was removed and reads again")
                except botocore.exceptions.ClientError:
                    pass

    def summary(self, windows: dict[str, tuple[float, float]]) -> dict:
        out = {}
        for name, (lo, hi) in windows.items():
            ops = [o for o in self.ops if lo <= o.t < hi]
            lat = sorted(o.seconds for o in ops if o.ok)
            p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else None
            out[name] = {"ops": len(ops), "ok": sum(o.ok for o in ops),
                         "ok_fraction": round(sum(o.ok for o in ops) / len(ops), 4) if ops else None,
                         "p99_ms": round(p99 * 1000, 1) if p99 is not None else None}
        return out


# ----------------------------------------------------------------------------- running one

def client(endpoint, retries: dict | None = None):
    """A boto3 client as a workload's workers use one: boto3's standard
    retries (an operation that fails after them has an unknown outcome),
    5 s to connect, 30 s to read."""
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY,
                        config=Config(retries=retries or {"mode": "standard"}, connect_timeout=5, read_timeout=30))


def run_workload(c, bucket: str, seconds: float, during=None) -> Workload:
    """Four workers of 50 keys each (sizes 0 to 5000 bytes, LIST pages of 7
    keys, so pages cross partition boundaries) on ``bucket`` of cluster
    ``c`` for ``seconds``, calling ``during()`` once they have started; then
    the final check against the log. The caller asserts on ``violations``."""
    s3 = client(c.endpoint)
    wl = Workload(lambda: client(c.endpoint), bucket, workers=4, keys_per_worker=50,
                  sizes=[0, 10, 1000, 5000], list_page=7)
    wl.start()
    if during:
        during()
    time.sleep(seconds)
    wl.stop()
    wl.final_check(s3)
    return wl
