"""`minis3 bulk-load`: a bucket of a million small objects in about a minute, for measurement.

Through the S3 API this machine stores a few hundred small objects a second,
so a bucket of 1,000,000 keys would take most of an hour. This loader skips
what a PUT does *before* the commit (SigV4, reading the body, hashing) but not
the commit itself: it builds the same inline record a PUT of the same bytes
would (ETag, CRC64NVME checksum, size, inline payload), and the quorum
coordinator (``MetaClient.put_objects``) stamps each with a version and sends
them in batches to every metadata replica, which checks the bucket and its
owner, keeps each version only if it is newer (``MetaService.put_version``,
as for any PUT), appends it to its partition's WAL and acknowledges after the fdatasync
(group commit). The ack comes from a write quorum (2 of 3), as for a PUT. The
objects read back through S3 like any other (GET, HEAD, LIST).

It skips the per-partition request budgets (a batch is one request for many
keys); splits happen as usual while it runs.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import time

from ..core import checksums
from ..core import errors as E
from ..core.hlc import HLC
from ..rpc.http import client_session
from .client import MetaClient
from .replica import drain_background


def inline_record(body: bytes, content_type: str = "binary/octet-stream") -> dict:
    """What a PUT of ``body`` (at most the inline threshold) stores in its record,
    before the coordinator stamps it."""
    return {"etag": hashlib.md5(body).hexdigest(),
            "checksum": {"alg": "crc64nvme", "value": base64.b64encode(checksums.compute("crc64nvme", body)).decode()},
            "headers": {"content-type": content_type}, "meta": {}, "size": len(body),
            "inline": base64.b64encode(body).decode()}


async def load(topo, bucket: str, keys: int, *, prefix: str = "k/", body: bytes = b"", batch: int = 1000,
               in_flight: int = 4, start: int = 0, on_progress=None) -> dict:
    """Create ``bucket`` (if needed) for the topology's first access key's
    account and commit ``keys`` objects named ``{prefix}{i:07d}``."""
    record = inline_record(body)
    return await load_records(topo, bucket, ((f"{prefix}{i:07d}", record) for i in range(start, start + keys)),
                              batch=batch, in_flight=in_flight, on_progress=on_progress)


async def load_records(topo, bucket: str, items, *, batch: int = 1000, in_flight: int = 4,
                       on_progress=None) -> dict:
    """Create ``bucket`` (if needed) as :func:`load` does and commit the
    (key, record) pairs of ``items`` (an iterable, read a batch at a time),
    each record as :func:`inline_record` makes it, perhaps with more fields."""
    account = topo.accounts[next(iter(topo.credentials))]
    started = time.monotonic()
    done = 0
    async with client_session(topo.cluster_secret, timeout_s=300) as session:
        meta = MetaClient.for_topology(session, topo, hlc=HLC()).as_account(account)
        try:
            await meta.create_bucket(bucket, topo.region)
        except E.BucketAlreadyOwnedByYou:
            pass
        sem = asyncio.Semaphore(in_flight)

        async def one(chunk: list) -> None:
            nonlocal done
            try:
                await meta.put_objects(bucket, chunk)
            finally:
                sem.release()
            done += len(chunk)
            if on_progress:
                on_progress(done)
        tasks, it = [], iter(items)
        while chunk := list(itertools.islice(it, batch)):
            await sem.acquire()             # at most in_flight batches built and sent at once
            tasks.append(asyncio.ensure_future(one(chunk)))
        await asyncio.gather(*tasks)
        await drain_background()            # the third replica's writes, before the session closes
    seconds = time.monotonic() - started
    return {"bucket": bucket, "keys": done, "seconds": round(seconds, 2), "keys_per_s": round(done / seconds, 1)}


def main(topo, bucket: str, keys: int, prefix: str, size: int, batch: int, in_flight: int) -> int:
    from rich.progress import Progress
    with Progress(transient=True) as bar:
        task = bar.add_task(f"loading {keys:,} keys into {bucket}", total=keys)
        out = asyncio.run(load(topo, bucket, keys, prefix=prefix, body=b"x" * size, batch=batch,
                               in_flight=in_flight, on_progress=lambda n: bar.update(task, completed=n)))
    print(f"committed {out['keys']:,} objects of {size} bytes to s3://{bucket}/{prefix}… in {out['seconds']:.1f} s "
          f"({out['keys_per_s']:,.0f} keys/s)")
    return 0
