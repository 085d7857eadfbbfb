"""The workloads: small objects, large objects, LIST pages, and a mix.

Each is bounded in time and count, verifies what it reads (length and xxh3 of
every GET body, key count of every LIST page: a wrong answer is an error, not
a fast one), and cleans up what it wrote, except the LIST buckets, which are
kept so a second run need not load 100,000 keys again.
"""
from __future__ import annotations

import asyncio
import os
import random
import re
from dataclasses import dataclass, field

from .client import Payload, Result
from .runner import Runner, size_label
from .stats import Phase

KiB, MiB = 1 << 10, 1 << 20
_KEY = re.compile(rb"<Key>([^<]*)</Key>")


@dataclass
class Settings:
    workloads: tuple[str, ...] = ("small", "large", "list", "mixed", "multipart", "versioning")
    duration: float = 5.0                     # seconds per small-object phase
    max_ops: int = 50_000                     # most ops in any one phase
    sizes: tuple[int, ...] = (4 * KiB, 64 * KiB)
    # The small workload's timed operations after its PUTs (which are always
    # timed: they write what the others read); what it does not time it still
    # cleans up.
    small_ops: tuple[str, ...] = ("GET", "HEAD", "DELETE")
    concurrency: tuple[int, ...] = (1, 8, 32)
    large_sizes: tuple[int, ...] = (16 * MiB, 256 * MiB)   # two sizes: RSS must not grow with size
    large_count: int = 2
    list_keys: tuple[int, ...] = (1_000, 100_000)
    list_pages: int = 30
    load_concurrency: int = 64
    mixed_duration: float = 30.0
    mixed_concurrency: int = 32
    mixed_objects: int = 1_000
    mixed_size: int = 4 * KiB
    # Multipart, as (object size, part size): 10 MiB and 2 GiB in two parts each,
    # so their completions differ only in bytes (which completion must not
    # read), and 1 GiB in the aws CLI's 8 MiB parts with 4 in flight, against
    # the single-stream figures.
    multipart_sizes: tuple[tuple[int, int], ...] = ((10 * MiB, 5 * MiB), (1024 * MiB, 8 * MiB),
                                                    (2048 * MiB, 1024 * MiB))
    multipart_concurrency: int = 4
    # Idle time before each timed CompleteMultipartUpload, longer than a
    # minis3 frontend keeps a bucket's state (AccessStore.TTL, 1 s): else a
    # completion after fast parts finds it cached and one after slow parts
    # reads it again (four metadata reads, ~3 ms), and the bytes look as if
    # they cost what the upload's duration did.
    complete_pause_s: float = 1.5
    # Uploads of each multipart size, each completed and timed: a completion
    # takes ~15 ms, and one sample of it moves by half that from run to run
    # (three runs in a row read 10 MiB ÷ 2 GiB as 1.34, 0.73 and 1.07); the
    # report's COMPLETE row is their median (p50), its PUT row all uploads.
    # Five: medians of three still read 0.85, then 0.64, in two runs with no
    # change to the completion's code.
    complete_samples: int = 5
    # The index (suite only): buckets of these sizes filled by the bulk loader,
    # and a hot-prefix run of this many seconds.
    index_keys: tuple[int, ...] = (1_000, 1_000_000)
    hot_seconds: float = 30.0
    # Versioning (suite only): GET and HEAD of a key with 1 and with this many
    # versions; LIST pages in a bucket of version_list_keys keys with no old
    # versions and in one whose every key has version_old.
    version_count: int = 1_000
    version_list_keys: int = 1_000
    version_old: int = 100
    version_list_pages: int = 100
    bucket_prefix: str = "minis3-bench"
    seed: int = 1
    notes: list[str] = field(default_factory=list)


def _check_get(r: Result, payload: Payload) -> Result:
    if not r.error and (r.nbytes != len(payload.data) or r.digest != payload.xxh3):
        r.error = "WrongBytes"
    return r


async def _ensure_bucket(runner: Runner, bucket: str) -> None:
    r = await runner.client.create_bucket(bucket)
    if r.error:
        raise RuntimeError(f"cannot create bucket {bucket}: {r.error}")


async def _drain(runner: Runner, bucket: str, prefix: str = "") -> None:
    """Delete what is left under a prefix (untimed clean-up)."""
    keys = await runner.client.list_all_keys(bucket, prefix)
    sem = asyncio.Semaphore(32)

    async def rm(k):
        async with sem:
            await runner.client.delete(bucket, k)
    await asyncio.gather(*(rm(k) for k in keys))


async def small(runner: Runner, s: Settings, run_id: str) -> None:
    """PUT for a while, then GET and HEAD random ones of those, then DELETE them all
    (each of those timed if ``small_ops`` names it)."""
    bucket = f"{s.bucket_prefix}-{run_id}"
    await _ensure_bucket(runner, bucket)
    rng = random.Random(s.seed)
    for size in s.sizes:
        payload = Payload.of(rng.randbytes(size))
        for conc in s.concurrency:
            prefix = f"small/{size}/{conc}/"
            key = lambda i: f"{prefix}{i:08d}"  # noqa: E731
            put = await runner.phase("small", "PUT", size, conc,
                                     lambda i: runner.client.put(bucket, key(i), payload),
                                     count=s.max_ops, duration=s.duration)
            n = put.ops + sum(put.errors.values())
            if n == 0:
                continue
            picks = [rng.randrange(n) for _ in range(s.max_ops)]
            if "GET" in s.small_ops:
                await runner.phase("small", "GET", size, conc,
                                   lambda i: _get_checked(runner, bucket, key(picks[i]), payload),
                                   count=s.max_ops, duration=s.duration)
            if "HEAD" in s.small_ops:
                await runner.phase("small", "HEAD", size, conc,
                                   lambda i: runner.client.head(bucket, key(picks[i])),
                                   count=s.max_ops, duration=s.duration)
            if "DELETE" in s.small_ops:
                await runner.phase("small", "DELETE", size, conc,
                                   lambda i: runner.client.delete(bucket, key(i)),
                                   count=n, duration=max(s.duration, 60))
            await _drain(runner, bucket, prefix)
    await runner.client.delete_bucket(bucket)


async def _get_checked(runner: Runner, bucket: str, key: str, payload: Payload) -> Result:
    return _check_get(await runner.client.get(bucket, key), payload)


async def large(runner: Runner, s: Settings, run_id: str) -> None:
    """Single-stream PUTs, then GETs, of large objects (one request each), smallest size first."""
    bucket = f"{s.bucket_prefix}-{run_id}"
    await _ensure_bucket(runner, bucket)
    for size in sorted(s.large_sizes):
        payload = Payload.of(os.urandom(size))
        key = lambda i: f"large/{size}/{i:04d}"  # noqa: E731
        await runner.phase("large", "PUT", size, 1,
                           lambda i: runner.client.put(bucket, key(i), payload), count=s.large_count)
        await runner.phase("large", "GET", size, 1,
                           lambda i: _get_checked(runner, bucket, key(i), payload), count=s.large_count)
        for i in range(s.large_count):
            await runner.client.delete(bucket, key(i))
    await runner.client.delete_bucket(bucket)


async def _load_keys(runner: Runner, bucket: str, n: int, s: Settings) -> None:
    """Fill a bucket with n empty objects k/0000000 … unless a previous run did."""
    await _ensure_bucket(runner, bucket)
    if not (await runner.client.head(bucket, "_loaded")).error:
        return
    empty = Payload.of(b"")
    await runner.phase("list", "load-PUT", 0, s.load_concurrency,
                       lambda i: runner.client.put(bucket, f"k/{i:07d}", empty), count=n,
                       label=f"loading {n:,} keys")
    runner.phases.pop()  # set-up, not a result; its rate is shown while it runs
    await runner.client.put(bucket, "_loaded", empty)


async def listing(runner: Runner, s: Settings, run_id: str) -> None:
    """The time of one 1,000-key page, from random places in buckets of each size."""
    rng = random.Random(s.seed)
    for n in s.list_keys:
        bucket = f"{s.bucket_prefix}-list-{n}"
        await _load_keys(runner, bucket, n, s)
        starts = [f"k/{rng.randrange(max(1, n - 1000)):07d}" if n > 1000 else "" for _ in range(s.list_pages)]

        async def page(i: int) -> Result:
            r = await runner.client.list_page(bucket, prefix="k/", start_after=starts[i])
            want = min(1000, n - (int(starts[i][2:]) + 1 if starts[i] else 0))
            got = len(_KEY.findall(r.body))
            if not r.error and got != want:
                r.error = f"WrongKeyCount({got}!={want})"
            return r
        ph = await runner.phase("list", "LIST", n, 1, page, count=s.list_pages,
                                label=f"LIST 1000-key page, bucket of {n:,}")
        ph.extra["bucket_keys"] = n


async def mixed(runner: Runner, s: Settings, run_id: str) -> None:
    """70% GET, 20% PUT, 10% LIST, with `mixed_concurrency` in flight, for a fixed time."""
    bucket = f"{s.bucket_prefix}-{run_id}"
    await _ensure_bucket(runner, bucket)
    rng = random.Random(s.seed)
    payload = Payload.of(rng.randbytes(s.mixed_size))
    key = lambda i: f"mixed/{i:06d}"  # noqa: E731
    await runner.phase("mixed", "load-PUT", s.mixed_size, s.load_concurrency,
                       lambda i: runner.client.put(bucket, key(i), payload), count=s.mixed_objects,
                       label=f"loading {s.mixed_objects:,} objects")
    runner.phases.pop()
    choices = rng.choices(["GET", "PUT", "LIST"], weights=[70, 20, 10], k=s.max_ops * 4)
    picks = [rng.randrange(s.mixed_objects) for _ in choices]
    by_op = {op: Phase("mixed", op, s.mixed_size, s.mixed_concurrency) for op in ("GET", "PUT", "LIST")}

    async def one(i: int) -> Result:
        op = choices[i]
        t0 = asyncio.get_running_loop().time()
        if op == "GET":
            r = _check_get(await runner.client.get(bucket, key(picks[i])), payload)
        elif op == "PUT":
            r = await runner.client.put(bucket, key(picks[i]), payload)
        else:
            r = await runner.client.list_page(bucket, prefix="mixed/", start_after=key(picks[i]))
        by_op[op].record(asyncio.get_running_loop().time() - t0, r.nbytes, r.error)
        return r
    total = await runner.phase("mixed", "ALL", s.mixed_size, s.mixed_concurrency, one,
                               count=len(choices), duration=s.mixed_duration,
                               label=f"mixed 70/20/10 ×{s.mixed_concurrency}")
    for ph in by_op.values():   # each op's share of the one timed run; CPU is on the ALL row
        ph.wall, ph.cpu_measured = total.wall, False
        ph.extra = {"share_of_ops": round(ph.ops / max(1, total.ops), 3)}
        runner.phases.append(ph)
    await _drain(runner, bucket, "mixed/")
    await runner.client.delete_bucket(bucket)


async def multipart(runner: Runner, s: Settings, run_id: str) -> None:
    """Each size uploaded in parts (multipart_concurrency in flight), then its
    CompleteMultipartUpload timed alone after a pause (complete_pause_s), both
    ``complete_samples`` times (a new upload each time, the one before deleted;
    one row each for PUT and COMPLETE); the last upload is read back in
    part-sized ranges with the same concurrency (as `aws s3 cp` downloads),
    every range checked. (Ranges, not ?partNumber: moto_server answers that
    with the whole object.)"""
    bucket = f"{s.bucket_prefix}-{run_id}"
    await _ensure_bucket(runner, bucket)
    for size, part_size in sorted(s.multipart_sizes):
        part = Payload.of(os.urandom(min(part_size, size)))
        n_parts = max(1, -(-size // part_size))
        last = Payload.of(part.data[:size - (n_parts - 1) * part_size])
        payloads = [part] * (n_parts - 1) + [last]
        key = f"multipart/{size}"
        put_row = done_row = None
        for sample in range(max(1, s.complete_samples)):
            if sample:
                await runner.client.delete(bucket, key)
            state: dict = {}

            def upload(_i: int, key=key, payloads=payloads, state=state):
                return _upload_in_parts(runner, bucket, key, payloads, s.multipart_concurrency, state)

            def complete(_i: int, key=key, state=state):
                return runner.client.complete_multipart(bucket, key, state["uid"], state["etags"])

            put = await runner.phase("multipart", "PUT parts", size, s.multipart_concurrency, upload, count=1,
                                     label=f"multipart PUT {size_label(size)} ({n_parts} parts "
                                           f"×{s.multipart_concurrency})")
            put.extra["parts"] = n_parts
            put_row = _merged(runner, put_row, put)
            if put.errors:
                break
            await asyncio.sleep(s.complete_pause_s)
            done = await runner.phase("multipart", "COMPLETE", size, 1, complete, count=1,
                                      label=f"CompleteMultipartUpload {size_label(size)} ({n_parts} parts)")
            done.extra["parts"] = n_parts
            done_row = _merged(runner, done_row, done)
            if done.errors:
                break
        if done_row is None or done_row.errors:
            continue

        def read(_i: int, key=key, payloads=payloads, part_size=part_size):
            return _read_in_ranges(runner, bucket, key, payloads, part_size, s.multipart_concurrency)
        got = await runner.phase("multipart", "GET parts", size, s.multipart_concurrency, read, count=1,
                                 label=f"multipart GET {size_label(size)} by part-sized ranges "
                                       f"×{s.multipart_concurrency}")
        got.extra["parts"] = n_parts
        await runner.client.delete(bucket, key)
    await runner.client.delete_bucket(bucket)


def _merged(runner: Runner, row: Phase | None, ph: Phase) -> Phase:
    """``ph`` as the row of its operation, or merged into the row already run."""
    if row is None:
        return ph
    runner.merge(row, ph)
    return row


async def _upload_in_parts(runner: Runner, bucket: str, key: str, payloads: list[Payload], concurrency: int,
                           state: dict) -> Result:
    """CreateMultipartUpload, then every part (``concurrency`` in flight); the upload id
    and the parts' ETags go into ``state`` for the CompleteMultipartUpload."""
    r, uid = await runner.client.create_multipart(bucket, key)
    if r.error or uid is None:
        return Result(r.status, error=r.error or "NoUploadId")
    state["uid"], etags = uid, [None] * len(payloads)
    sem = asyncio.Semaphore(concurrency)

    async def one(n: int) -> Result:
        async with sem:
            pr = await runner.client.upload_part(bucket, key, uid, n + 1, payloads[n])
            etags[n] = pr.etag
            return pr
    results = await asyncio.gather(*(one(n) for n in range(len(payloads))))
    bad = next((x for x in results if x.error), None)
    state["etags"] = etags
    return bad or Result(200, sum(x.nbytes for x in results))


async def _read_in_ranges(runner: Runner, bucket: str, key: str, payloads: list[Payload], part_size: int,
                          concurrency: int) -> Result:
    """The object read back in part-sized ranges (``concurrency`` in flight), each checked."""
    sem = asyncio.Semaphore(concurrency)

    async def one(n: int) -> Result:
        async with sem:
            first = n * part_size
            return _check_get(await runner.client.get_range(bucket, key, first,
                                                            first + len(payloads[n].data) - 1), payloads[n])
    results = await asyncio.gather(*(one(n) for n in range(len(payloads))))
    bad = next((x for x in results if x.error), None)
    return bad or Result(200, sum(x.nbytes for x in results))


WORKLOADS = {"small": small, "large": large, "list": listing, "mixed": mixed, "multipart": multipart}
#: Run by `minis3 bench --suite` only, on the cluster it starts (they load
#: through its metadata service): "versioning" (bench/versioning.py).
SUITE_WORKLOADS = ("versioning",)


def describe(s: Settings) -> str:
    return (f"small {'/'.join(size_label(x) for x in s.sizes)} at ×{'/'.join(map(str, s.concurrency))} "
            f"for {s.duration:g} s a phase; large {' and '.join(size_label(x) for x in s.large_sizes)} "
            f"×{s.large_count} each; "
            f"LIST in buckets of {', '.join(f'{n:,}' for n in s.list_keys)} keys ({s.list_pages} pages); "
            f"mixed ×{s.mixed_concurrency} for {s.mixed_duration:g} s; multipart "
            f"{', '.join(f'{size_label(n)} in {size_label(p)} parts' for n, p in s.multipart_sizes)}, "
            f"×{s.multipart_concurrency} in flight, each uploaded and completed {s.complete_samples}×"
            + (f"; versioning: GET/HEAD of a key with 1 and {s.version_count:,} versions, LIST in buckets of "
               f"{s.version_list_keys:,} keys with 0 and {s.version_old} old versions a key ({s.version_list_pages} "
               f"pages)" if "versioning" in s.workloads else ""))
