"""The index at scale (`make bench`).

1. Buckets of ``index_keys`` keys (1,000 and 1,000,000), filled by the
   metadata-level bulk loader (``minis3 bulk-load``: the same commit path as a
   PUT, in batches): HEAD and GET of random keys one at a time, and 1,000-key
   LIST pages from random places. A sorted, range-partitioned index should
   make all three flat in bucket size.
2. Memory per key: the metadata processes' RSS before and after the load.
3. Restart: kill -9 one metadata process holding every key, start it again,
   and time it until it serves (it loads its partitions' snapshots and WALs,
   then catches up from its peers).
4. A hot prefix: a separate cluster whose partitions have a small request
   budget (so this machine can reach it), PUTs to random keys under one
   prefix as fast as they go; the partition answers SlowDown above its
   budget, the index manager sees it stay hot and splits it, and throughput
   rises with each split.
"""
from __future__ import annotations

import asyncio
import os
import random
import time
from pathlib import Path

import aiohttp

from ..cluster.status import run_pids
from ..rpc.sync import signed_get
from ..meta import bulkload
from ..rpc.http import client_session
from .client import Payload, S3Client
from .runner import Runner

HOT = {"write_ops_per_s": 100, "read_ops_per_s": 0, "split_ops_per_s": 80, "hot_seconds": 3,
       "check_every_s": 0.5, "split_keys": 10**9}


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def meta_pids(topo) -> dict[str, int]:
    pids = run_pids(topo)
    return {m.id: pids[m.id] for m in topo.metas if pids.get(m.id)}


async def _lookups(runner: Runner, bucket: str, n: int, seconds: float, pages: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    keys = [f"k/{rng.randrange(n):07d}" for _ in range(100_000)]
    head = await runner.phase("index", "HEAD", n, 1, lambda i: runner.client.head(bucket, keys[i]),
                              count=len(keys), duration=seconds, label=f"HEAD, bucket of {n:,}")
    get = await runner.phase("index", "GET", n, 1, lambda i: runner.client.get(bucket, keys[i]),
                             count=len(keys), duration=seconds, label=f"GET, bucket of {n:,}")
    if not pages:
        return [_row(ph, n) for ph in (head, get)]
    starts = [f"k/{rng.randrange(max(1, n - 1000)):07d}" if n > 1000 else "" for _ in range(pages)]
    lst = await runner.phase("index", "LIST", n, 1,
                             lambda i: runner.client.list_page(bucket, prefix="k/", start_after=starts[i]),
                             count=pages, label=f"LIST 1000-key page, bucket of {n:,}")
    return [_row(ph, n) for ph in (head, get, lst)]


def _row(ph, n: int) -> dict:
    row = ph.row(os.cpu_count() or 1)
    row["bucket_keys"] = n
    return row


async def restart_meta(topo) -> dict:
    """kill -9 one metadata process and time it until it serves again."""
    from ..cluster import chaos
    meta = topo.metas[0]
    chaos.kill_node(topo, meta.id)
    await asyncio.sleep(0.5)
    t0 = time.monotonic()
    chaos.revive_node(topo, meta.id)
    loop = asyncio.get_running_loop()
    serving = None
    while True:
        st = await loop.run_in_executor(None, signed_get, topo.cluster_secret, meta.url, "/status", 5)
        if st is not None and st.get("state") == "serving" and serving is None:
            serving = time.monotonic() - t0          # reads served: one peer merged
        if serving is not None and "seconds" in (st.get("catch_up") or {}):
            break                                  # every peer merged
        if time.monotonic() - t0 > 900:
            raise TimeoutError("the metadata process did not come back")
        await asyncio.sleep(0.1)
    return {"process": meta.id, "seconds_until_serving": round(serving, 2),
            "seconds_until_caught_up": round(time.monotonic() - t0, 2),
            "catch_up": st.get("catch_up"), "keys": sum(p["keys"] for p in st["partitions"])}


async def settle(topo, timeout: float = 300) -> float:
    """Wait until the index is quiet after a load: every replica holds the same
    number of keys, no partition is over the split thresholds or splitting,
    and the map version has not changed for two of the manager's looks.
    Lookups are then measured in the steady state (a split's work, and a
    replica still draining the load, show in the time this took)."""
    loop, t0 = asyncio.get_running_loop(), time.monotonic()
    spec, last_version, since = topo.index, None, time.monotonic()
    while time.monotonic() - t0 < timeout:
        stats = [await loop.run_in_executor(None, signed_get, topo.cluster_secret, m.url, "/index/stats", 5) for m in topo.metas]
        if all(stats):
            keys = {sum(p["keys"] for p in s["partitions"]) for s in stats}
            busy = any(p["splitting"] or p["keys"] > spec.split_keys or p["bytes"] > spec.split_bytes
                       for s in stats for p in s["partitions"])
            version = max(s["map_version"] for s in stats)
            if version != last_version:
                last_version, since = version, time.monotonic()
            if len(keys) == 1 and not busy and time.monotonic() - since >= 2 * spec.check_every_s:
                break
        await asyncio.sleep(0.5)
    return round(time.monotonic() - t0, 1)


async def _scrub_status(session, topo) -> dict | None:
    try:
        async with session.get(topo.scrub.url + "/status") as r:
            return await r.json() if r.status == 200 else None
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError, ValueError):
        return None


async def scrub_idle(topo, timeout: float = 900) -> float:
    """Wait until no scrub pass is running (the bench's cluster starts none by
    itself: its interval is an hour), so lookups measure the index alone."""
    t0 = time.monotonic()
    async with client_session(topo.cluster_secret, timeout_s=5) as session:
        while time.monotonic() - t0 < timeout:
            st = await _scrub_status(session, topo)
            if st is not None and not st.get("running"):
                break
            await asyncio.sleep(1)
    return round(time.monotonic() - t0, 1)


async def start_scrub_pass(topo, timeout: float = 60) -> None:
    """Start a scrub pass (without the nodes' audit) and return once it walks."""
    async with client_session(topo.cluster_secret, timeout_s=10) as session:
        async with session.post(topo.scrub.url + "/pass") as r:
            r.raise_for_status()
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            st = await _scrub_status(session, topo)
            if st is not None and st.get("running") and st["running"].get("keys_done", 0) > 0:
                return
            await asyncio.sleep(0.2)


async def scaling(cluster, endpoint: str, s, progress, access_key="minis3admin", secret_key="minis3secret") -> dict:
    topo = cluster.topo
    pids = meta_pids(topo)
    rss0 = {m: _rss(p) for m, p in pids.items()}
    out: dict = {"sizes": [], "body_bytes": 100}
    total = 0
    async with S3Client(endpoint, access_key, secret_key, "us-east-1", max_connections=16) as client:
        runner = Runner(client, progress=progress, sample_rss=False)
        for n in s.index_keys:
            bucket = f"{s.bucket_prefix}-idx-{n}"
            task = progress.add_task(f"bulk-load {n:,} keys", total=n) if progress is not None else None
            load = await bulkload.load(topo, bucket, n, body=b"x" * out["body_bytes"],
                                       on_progress=(lambda d: progress.update(task, completed=d)) if task is not None
                                       else None)
            total += n
            settled = await settle(topo)
            quiet = await scrub_idle(topo)
            rows = await _lookups(runner, bucket, n, s.duration, s.list_pages, s.seed)
            # The same lookups while a scrub pass walks the index (paced: scrub.meta_keys_per_s).
            await start_scrub_pass(topo)
            during = await _lookups(runner, bucket, n, s.duration, 0, s.seed + 1)
            for r in during:
                r["op"] += " (scrub pass running)"
            out["sizes"].append({"keys": n, "load": load, "settle_s": settled, "scrub_wait_s": quiet,
                                 "rows": rows + [r for r in during if not r["op"].startswith("LIST")]})
    rss1 = {m: _rss(p) for m, p in meta_pids(topo).items()}
    out["rss_before"], out["rss_after"] = rss0, rss1
    out["bytes_per_key"] = round(sum(rss1[m] - rss0.get(m, 0) for m in rss1) / len(rss1) / total, 1)
    st = signed_get(topo.cluster_secret, topo.metas[0].url, "/index/stats", timeout=5)
    out["partitions"] = len(st["partitions"]) if st else None
    out["map_version"] = st["map_version"] if st else None
    # How long each split paused its partition's writes, on every replica.
    reports = [signed_get(topo.cluster_secret, m.url, "/index/stats", timeout=5) or {} for m in topo.metas]
    pauses = sorted(sp["pause_s"] for rep in reports for sp in rep.get("splits", []))
    out["split_pauses_s"] = {"count": len(pauses), "max": pauses[-1] if pauses else None,
                             "median": pauses[len(pauses) // 2] if pauses else None}
    out["restart"] = await restart_meta(topo)
    return out


async def hot_prefix(root: Path, seconds: float, progress, concurrency: int = 32) -> dict:
    """PUTs to random keys under one prefix against a cluster with small
    partition budgets: successes per second, SlowDowns, and the splits."""
    from .. import config
    from ..cluster.supervisor import Cluster
    base = config.free_base_port()
    path = root / "hot-topology.toml"
    path.write_text(config.local_toml(base, root / "hot-data", index=HOT))
    topo = config.load(path)
    cluster = Cluster(topo)
    cluster.start(timeout=60)
    ok_at: list[float] = []
    refused = 0
    wall0 = time.time()
    try:
        async with S3Client(topo.frontend.url, "minis3admin", "minis3secret", "us-east-1",
                            max_connections=concurrency) as client:
            await client.create_bucket("hot")
            payload = Payload.of(b"h" * 1024)
            t0, wall0 = time.monotonic(), time.time()
            rng = random.Random(1)

            async def worker():
                nonlocal refused
                while time.monotonic() - t0 < seconds:
                    r = await client.put("hot", f"logs/{rng.getrandbits(64):016x}", payload)
                    if r.error:
                        refused += 1
                        await asyncio.sleep(0.05)          # a client backing off
                    else:
                        ok_at.append(time.monotonic() - t0)
            task = progress.add_task("hot prefix", total=None) if progress is not None else None
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            if task is not None:
                progress.remove_task(task)
        pmap = signed_get(topo.cluster_secret, topo.metas[0].url, "/index/map", timeout=5)
    finally:
        cluster.stop()
    bins = [0] * int(seconds)
    for t in ok_at:
        if int(t) < len(bins):
            bins[int(t)] += 1
    started_ms, splits = None, []
    if pmap:
        events = [e for e in pmap["map"]["events"] if e["kind"] == "split"]
        started_ms = min((e["at_ms"] for e in events), default=None)
        splits = [{"key": e["key"], "reason": e["reason"], "at_s": round(e["at_ms"] / 1000 - wall0, 1)}
                  for e in events]
    return {"seconds": seconds, "concurrency": concurrency, "ok_per_s": bins, "refused": refused,
            "budget": HOT, "splits": splits, "first_split_ms": started_ms,
            "first_3s": round(sum(bins[:3]) / 3, 1), "last_5s": round(sum(bins[-5:]) / 5, 1)}
