"""The scrubber's rebuild batches: jobs grouped by the node that receives them.

A repair no longer streams fragments through the scrubber: each rebuild job
(ec/rebuild.py) goes to the node that will hold the rebuilt fragment, which
reads the k sources from their nodes and writes the fragment itself
(storage/rebuild.py). Sending one job a request would cost a request's CPU a
fragment; :class:`RebuildBatcher` queues the jobs of every object being
repaired by target node and sends them in batches (``POST /rebuild``), at most
``max_jobs`` jobs and ``max_source_bytes`` of source fragments a batch, a few
batches in flight a node, several nodes at once.

Batches are sent as soon as a node has a free slot: while one is in flight
the next fills, so batches are small when the walk finds few fixes and grow
to the caps when it finds many. **Rate limit**: before a batch is sent, its
fragment bytes to be written are paid into the pass's ``TokenBucket``
(core/ratelimit.py); under a limit a batch holds about ``rate × paced_batch_s``
of them (at least one job), so the pace is smooth rather than a burst a second.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from ..ec.rebuild import RebuildJob
from ..core.ratelimit import TokenBucket
from ..storage.client import FragmentError, StorageClient

log = logging.getLogger("minis3.scrub")


@dataclass
class Queued:
    job: RebuildJob
    source_bytes: int                  # what the node reads for it
    write_bytes: int                   # what it writes (what the rate limit counts)
    result: asyncio.Future = field(repr=False)


def batch_length(queued: list[tuple[int, int]], max_jobs: int, max_source_bytes: int,
                 max_write_bytes: int | None = None) -> int:
    """How many of the first ``queued`` jobs ((source bytes, write bytes) each)
    make the next batch: as many as fit under every cap, at least one."""
    n = src = wr = 0
    for s, w in queued[:max_jobs]:
        if n and (src + s > max_source_bytes or (max_write_bytes is not None and wr + w > max_write_bytes)):
            break
        n, src, wr = n + 1, src + s, wr + w
    return n


class RebuildBatcher:
    """Batches rebuild jobs by target node for one scrub pass.

    ``submit`` returns a future of the job's result ({"ok", "written", "read"}
    or {"ok": False, "error"}): a batch that fails as a whole (the node did not
    answer) fails each of its jobs, never the pass. ``busy(+1 / -1)`` is called
    as a batch starts (before it pays the rate limit) and ends: the scrubber's
    rebuild clock."""

    def __init__(self, client: StorageClient, pacer: TokenBucket, *, max_jobs: int, max_source_bytes: int,
                 max_write_bytes: int | None, per_node: int, busy: Callable[[int], None] = lambda d: None):
        self.client, self.pacer = client, pacer
        self.max_jobs, self.max_source_bytes, self.max_write_bytes = max_jobs, max_source_bytes, max_write_bytes
        self.per_node = per_node
        self.busy = busy
        self.queues: dict[str, deque[Queued]] = {}
        self.in_flight: dict[str, int] = {}
        self.tasks: set[asyncio.Task] = set()
        self.batches = 0

    def submit(self, node: str, job: RebuildJob, source_bytes: int, write_bytes: int) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self.queues.setdefault(node, deque()).append(Queued(job, source_bytes, write_bytes, fut))
        self._pump(node)
        return fut

    def _pump(self, node: str) -> None:
        q = self.queues.get(node)
        while q and self.in_flight.get(node, 0) < self.per_node:
            sizes = [(it.source_bytes, it.write_bytes) for it in list(q)[:self.max_jobs]]
            n = batch_length(sizes, self.max_jobs, self.max_source_bytes, self.max_write_bytes)
            batch = [q.popleft() for _ in range(n)]
            self.in_flight[node] = self.in_flight.get(node, 0) + 1
            task = asyncio.ensure_future(self._send(node, batch))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _send(self, node: str, batch: list[Queued]) -> None:
        self.busy(+1)
        try:
            await self.pacer.take(sum(it.write_bytes for it in batch))      # the rebuild rate limit
            self.batches += 1
            try:
                results = await self.client.rebuild(node, [it.job.to_wire() for it in batch])
            except FragmentError as exc:
                log.warning("rebuild batch of %d jobs on %s failed: %s", len(batch), node, exc)
                results = [{"ok": False, "error": str(exc)} for _ in batch]
            for it, res in zip(batch, results):
                if not it.result.done():
                    it.result.set_result(res)
        except BaseException as exc:
            for it in batch:
                if not it.result.done():
                    it.result.set_exception(exc if isinstance(exc, Exception) else FragmentError("cancelled"))
            raise
        finally:
            self.busy(-1)
            self.in_flight[node] -= 1
            self._pump(node)

    async def close(self) -> None:
        """Wait for every batch sent (the walk waits for each object's own results first)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)
