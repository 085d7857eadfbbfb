"""Versioning (`make bench`): what old versions cost the requests
that read only the current one.

A key's current version is its **head**, every older version a **row**
beside it (core/versions.py). GET and HEAD read the head only, and a
ListObjectsV2 page asks the replicas for heads only (a partition keeps its
rows in a sorted map apart from its heads), so neither should cost more as
versions pile up:

1. GET and HEAD, one request at a time, of a key with 1 version and of a key
   with ``version_count`` (1,000) versions, every one made by a real
   versioned PUT, in the same bucket.
2. 1,000-key LIST pages (max-keys 1000), one at a time, in a versioned bucket
   of ``version_list_keys`` (1,000) keys with no old versions and in one whose
   every key has ``version_old`` (100) old versions.

Each is read as a ratio: the time with many versions over the time with one
(the target: at most 1.5).
"""
from __future__ import annotations

import os
import time
import uuid

from ..core import versions as V
from ..core.hlc import LOGICAL_BITS, HLC
from ..meta import bulkload
from .client import Payload, Result, S3Client
from .index import scrub_idle, settle
from .runner import Runner
from .workloads import _KEY, Settings, _check_get

BODY = b"v" * 100                 # stored inline, as the index bench's bulk-loaded objects


def version_records(n_keys: int, old: int, body: bytes = BODY, prefix: str = "k/"):
    """Every key's head and its ``old`` rows, as (key within the bucket,
    record) in index order: records as a PUT of ``body`` makes them, with a
    version id and stamp each, the head newest, its rows one millisecond
    apart before it (so they list, and order, as versions made by PUTs)."""
    base = bulkload.inline_record(body)
    now = HLC().now()
    for i in range(n_keys):
        key = f"{prefix}{i:07d}"
        yield key, dict(base, version_id=V.make_id(now, uuid.uuid4().hex), vts=now)
        for j in range(1, old + 1):
            vts = now - (j << LOGICAL_BITS)
            vid = V.make_id(vts, uuid.uuid4().hex)
            yield V.row_key(key, vid), dict(base, version_id=vid, vts=vts)


def _row(ph, versions: int) -> dict:
    row = ph.row(os.cpu_count() or 1)
    row["versions"] = versions
    return row


def ratio(many: dict, one: dict, field: str) -> float | None:
    return round(many[field] / one[field], 3) if one[field] else None


async def run(topo, endpoint: str, s: Settings, progress, access_key: str = "minis3admin",
              secret_key: str = "minis3secret", region: str = "us-east-1", *, quiet: bool = True) -> dict:
    """Make the buckets, measure, and return the rows and their ratios.
    ``access_key`` must be the topology's first (the bulk loader's account).
    ``quiet``: wait for the index to settle and the scrubber to be idle
    before measuring (as the index bench does)."""
    run_id = uuid.uuid4().hex[:6]
    lookup_bucket = f"{s.bucket_prefix}-ver-{run_id}"
    list_buckets = {k: f"{s.bucket_prefix}-ver{k}-{run_id}" for k in (0, s.version_old)}   # k old versions a key
    n, old, count = s.version_list_keys, s.version_old, s.version_count
    started = time.monotonic()
    out: dict = {"body_bytes": len(BODY), "version_count": count, "list_keys": n, "list_old": old,
                 "buckets": {"lookup": lookup_bucket, **{str(k): b for k, b in list_buckets.items()}}}
    payload = Payload.of(BODY)
    async with S3Client(endpoint, access_key, secret_key, region, max_connections=8) as client:
        runner = Runner(client, progress=progress, sample_rss=False)
        out["puts"] = await _lookup_bucket(client, runner, lookup_bucket, count, payload)
        out["loads"] = await _list_buckets(topo, client, list_buckets, n, progress)
        if quiet:
            out["settle_s"] = await settle(topo)
            out["scrub_wait_s"] = await scrub_idle(topo)
        # The measurements, each pair back to back.
        lookups = await _lookups(client, runner, s, lookup_bucket, count, payload)
        pages = await _pages(client, runner, s, list_buckets, n)
    out["rows"] = lookups + pages
    by = {(r["op"], r["versions"]): r for r in out["rows"]}
    out["ratios"] = [
        {"op": op, "few": few, "many": many,
         "p50": ratio(by[(op, many)], by[(op, few)], "p50_ms"), "p99": ratio(by[(op, many)], by[(op, few)], "p99_ms")}
        for op, few, many in (("HEAD", 1, count), ("GET", 1, count), ("LIST", 1, 1 + old))]
    out["errors"] = sum(r["errors"] for r in out["rows"])
    out["seconds"] = round(time.monotonic() - started, 1)
    return out


def _must(r: Result, what: str) -> None:
    if r.error:
        raise RuntimeError(f"versioning bench: {what}: {r.error}")


async def _lookup_bucket(client: S3Client, runner: Runner, bucket: str, count: int, payload: Payload) -> dict:
    """The lookup bucket: "one" with a single version, "many" with ``count``, every one a
    real versioned PUT (a few metadata rounds each: prepare and accept of the head, the old
    head to its row)."""
    _must(await client.create_bucket(bucket), "CreateBucket")
    _must(await client.put_bucket_versioning(bucket), "PutBucketVersioning")
    _must(await client.put(bucket, "one", payload), "PUT")
    put = await runner.phase("versioning", "PUT", len(BODY), 1,
                             lambda i: client.put(bucket, "many", payload), count=count,
                             label=f"{count:,} versioned PUTs of one key")
    runner.phases.pop()           # set-up, not a result; its rate is shown in the report
    if put.errors:
        raise RuntimeError(f"versioning bench: versioned PUTs failed: {dict(put.errors)}")
    return {"count": count, "seconds": round(put.wall, 2), "p50_ms": put.row(1)["p50_ms"]}


async def _list_buckets(topo, client: S3Client, buckets: dict[int, str], n: int, progress) -> dict:
    """The LIST buckets, through the bulk loader: each key's head and its old versions'
    rows are committed as plain index records (key = versions.row_key(key, version id)),
    as `minis3 bulk-load` commits objects, before versioning is enabled on the bucket (its
    replicas refuse a bulk load once it is). This is how 100,000 old versions are made in
    seconds: a versioned PUT takes ~4 metadata rounds, so making them by PUT would take
    most of an hour here."""
    loads = {}
    for k, bucket in buckets.items():
        total = n * (1 + k)
        task = progress.add_task(f"bulk-load {n:,} keys × {1 + k} versions", total=total) \
            if progress is not None else None
        loads[str(k)] = await bulkload.load_records(
            topo, bucket, version_records(n, k),
            on_progress=(lambda d, task=task: progress.update(task, completed=d)) if task is not None else None)
        _must(await client.put_bucket_versioning(bucket), "PutBucketVersioning")
    return loads


async def _lookups(client: S3Client, runner: Runner, s: Settings, bucket: str, count: int,
                   payload: Payload) -> list[dict]:
    """HEAD and GET of the current version of a key with one version and of one with ``count``."""
    rows = []
    for op in ("HEAD", "GET"):
        for key, versions in (("one", 1), ("many", count)):
            if op == "HEAD":
                fn = lambda i, key=key: client.head(bucket, key)  # noqa: E731
            else:
                fn = lambda i, key=key: _get_checked(client, bucket, key, payload)  # noqa: E731
            ph = await runner.phase("versioning", op, len(BODY), 1, fn, count=s.max_ops, duration=s.duration,
                                    label=f"{op} of the current version, {versions:,} version(s)")
            rows.append(_row(ph, versions))
    return rows


async def _pages(client: S3Client, runner: Runner, s: Settings, buckets: dict[int, str], n: int) -> list[dict]:
    """A LIST page of 1000 current keys, in a bucket without old versions and in one with ``k`` a key."""
    rows = []
    for k, bucket in buckets.items():
        async def page(i: int, bucket=bucket) -> Result:
            r = await client.list_page(bucket, prefix="k/", max_keys=1000)
            got = len(_KEY.findall(r.body or b""))
            if not r.error and got != min(n, 1000):
                r.error = f"WrongKeyCount({got}!={min(n, 1000)})"
            return r
        ph = await runner.phase("versioning", "LIST", n, 1, page, count=s.version_list_pages,
                                label=f"LIST 1000-key page, {n:,} keys × {k} old versions")
        rows.append(_row(ph, 1 + k))
    return rows


async def _get_checked(client: S3Client, bucket: str, key: str, payload: Payload) -> Result:
    return _check_get(await client.get(bucket, key), payload)

