"""A storage node rebuilds fragments onto itself: the I/O shell around ec/rebuild.py.

``POST /rebuild`` carries a batch of rebuild jobs (ec/rebuild.py ``RebuildJob``:
an object id, its erasure-code parameters and recorded segment checksums, the
k source fragments and the nodes holding them, the indexes to write here). The
node runs the batch in *windows* of at most ``WINDOW_BYTES`` of source
fragments (``rebuild.windows``: small jobs share one, a large job is cut into
segment ranges), so its memory stays bounded whatever the objects' sizes. For
each window it:

1. **reads** the sources from their nodes, one ``POST /fragments/read`` a source
   node (storage/batchread.py), every block's xxh3 checked on receipt;
2. **rebuilds** each job's segments in a worker thread: decode, check the
   segment against its recorded checksum (invariant 10: a job whose sources do
   not decode to it fails, and writes nothing), reconstruct the missing
   fragments; then appends them, framed, to the job's temporary files in tmp/.

When every window is done, each job's files are fsynced as they finish, then
renamed into fragments/ together, and each directory they landed in is fsynced
**once for the whole batch**, before the answer: every fragment the answer
calls written is durable (invariant 1 holds for a rebuild as for a PUT, and
invariant 13: the scrubber records a new placement only after this answer).
A job that fails (a source missing, corrupt or unreachable, a checksum
mismatch) leaves nothing behind and does not stop the others.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..ec import rebuild as R
from ..ec.codec import Codec, codec_for
from ..fsutil import DurableFile, fsync_dir
from ..rpc.failpoints import disk, failpoint
from . import batchread, blocks
from .client import FragmentError, StorageClient

log = logging.getLogger("minis3.storage.rebuild")

#: Source fragment bytes one window of a batch holds in memory at most.
WINDOW_BYTES = 32 << 20
#: Jobs one request may carry.
MAX_JOBS = 1024
#: Batches a node runs at once (more wait): bounds its memory to a few windows.
BATCHES_AT_ONCE = 3


class BadRebuildRequest(ValueError):
    """A ``POST /rebuild`` body that is not a list of rebuild jobs."""


def parse_request(doc) -> list[R.RebuildJob]:
    if not isinstance(doc, dict) or not isinstance(doc.get("jobs"), list):
        raise BadRebuildRequest('the body must be {"jobs": [...]}')
    if not 0 < len(doc["jobs"]) <= MAX_JOBS:
        raise BadRebuildRequest(f"1 to {MAX_JOBS} jobs a request")
    return [R.RebuildJob.from_wire(j) for j in doc["jobs"]]


@dataclass
class _Job:
    """One job of a batch as it runs: its temporary files, what it moved, or why it failed."""
    job: R.RebuildJob
    codec: Codec | None = None
    files: dict[int, tuple[Path, DurableFile]] = field(default_factory=dict)
    written: int = 0
    read: int = 0
    error: str | None = None
    synced: bool = False

    def result(self) -> dict:
        if self.error is not None:
            return {"ok": False, "error": self.error, "read": self.read}
        return {"ok": True, "written": self.written, "read": self.read}

    def discard(self) -> None:
        """Blocking: close and remove the temporary files (a failed job leaves nothing)."""
        for tmp, out in self.files.values():
            out.close()
            tmp.unlink(missing_ok=True)
        self.files.clear()


class Rebuilder:
    """Runs rebuild batches for one node. ``node``: the StorageNode (its
    paths, landing lock, id, counters); ``client``: a StorageClient that knows
    every peer node's URL (None: this node cannot reach its peers)."""

    def __init__(self, node, client: StorageClient | None):
        self.node, self.client = node, client
        self.gate = asyncio.Semaphore(BATCHES_AT_ONCE)

    async def run(self, jobs: list[R.RebuildJob]) -> list[dict]:
        async with self.gate:
            state = [_Job(j) for j in jobs]
            for s in state:
                try:
                    s.codec = codec_for(s.job.k, s.job.m, s.job.backend)
                except Exception as exc:          # an unknown backend: pyeclib's own errors
                    s.error = f"no codec for {s.job.k}+{s.job.m} {s.job.backend}: {exc}"
            live = [s for s in state if s.error is None]
            try:
                for window in R.windows([s.job for s in live], [s.codec for s in live], WINDOW_BYTES):
                    pieces = [(live[w.job], w) for w in window if live[w.job].error is None]
                    if pieces:
                        await self._window(pieces)
                done = [s for s in state if s.error is None]
                await asyncio.to_thread(self._land, done)
            finally:
                await asyncio.to_thread(lambda: [s.discard() for s in state])
            return [s.result() for s in state]

    # -- one window: read the sources, rebuild, append to the files -----------------
    async def _window(self, pieces: list[tuple[_Job, R.Window]]) -> None:
        got = await self._read_sources(pieces)
        live = [(s, w) for s, w in pieces if s.error is None]
        # One thread hop for the window's decoding, writing and fsyncs: pyeclib
        # holds the GIL, so more threads would only take turns (a futex and a
        # context switch each), and batches in flight at once fsync side by side.
        await asyncio.to_thread(self._rebuild_all, live, got)

    async def _read_sources(self, pieces: list[tuple[_Job, R.Window]]) -> dict[tuple[int, int], list[bytes]]:
        """Every source of every piece, one batch read a source node, all at
        once: (id of the job's state, source index) → its segments' data. A
        source that cannot be had fails its job (``error``)."""
        by_node: dict[str, list[tuple[_Job, R.Window, int]]] = {}
        for s, w in pieces:
            for idx, node in s.job.sources:
                by_node.setdefault(node, []).append((s, w, idx))
        out: dict[tuple[int, int], list[bytes]] = {}

        async def one(node: str, wants: list[tuple[_Job, R.Window, int]]) -> None:
            if self.client is None or node not in self.client.urls:
                for s, _, idx in wants:
                    s.error = s.error or f"source {idx} is on node {node}, which this node does not know"
                return
            try:
                items = await self.client.read_many(
                    node, [batchread.Wanted(s.job.object_id, idx, w.first, w.last) for s, w, idx in wants])
            except FragmentError as exc:
                for s, _, idx in wants:
                    s.error = s.error or f"source {idx}: {exc}"
                return
            for (s, w, idx), item in zip(wants, items):
                if not item.ok:
                    s.error = s.error or f"source {idx} on {node}: {item.code}: {item.message}"
                elif len(item.data) != w.last - w.first + 1:
                    s.error = s.error or (f"source {idx} on {node} holds {len(item.data)} of segments "
                                          f"{w.first}..{w.last}")
                else:
                    out[(id(s), idx)] = item.data
                    s.read += sum(map(len, item.data))
        await asyncio.gather(*(one(n, ws) for n, ws in by_node.items()))
        return out

    def _rebuild_all(self, live: list[tuple[_Job, R.Window]], got: dict) -> None:
        """Blocking (a worker thread): every piece of a window in turn, then
        an fsync of each job whose last segment this window wrote."""
        finished = []
        for s, w in live:
            try:
                self._rebuild_and_write(s, w, {idx: got[(id(s), idx)] for idx, _ in s.job.sources})
            except Exception as exc:      # a checksum mismatch, a fragment pyeclib refuses, a full disk
                s.error = str(exc) or exc.__class__.__name__
                log.warning("rebuild of %s on %s failed: %s", s.job.object_id, self.node.node_id, s.error)
                continue
            if w.last >= s.job.segments - 1:
                finished.append(s)
        for s in finished:
            self._sync(s)

    def _rebuild_and_write(self, s: _Job, w: R.Window, sources: dict[int, list[bytes]]) -> None:
        """Rebuild a window's segments of one job and append them to its temporary files."""
        frags = R.rebuild_segments(s.codec, s.job, w.first, sources)
        for idx, pieces in frags.items():
            if idx not in s.files:
                tmp = self.node.tmp_dir / f"{s.job.object_id}.{idx}.{uuid.uuid4().hex[:8]}"
                out = DurableFile(tmp, make_parent=True)     # tmp/ may be gone (a wiped disk)
                s.files[idx] = (tmp, out)
                info = blocks.fragment_info(s.job.object_id, idx, self.node.node_id, int(time.time() * 1000))
                out.write(blocks.file_header(idx, info))
            out = s.files[idx][1]
            disk("write")
            framed = []
            for p in pieces:
                framed += (blocks.BLOCK_HEAD.pack(len(p), blocks.checksum(p)), p)
                s.written += len(p)
            out.write(*framed)

    def _sync(self, s: _Job) -> None:
        """Blocking: fsync a finished job's files (a failure fails the job)."""
        try:
            failpoint("storage.rebuild.before_fsync")
            disk("sync")
            for _, out in s.files.values():
                out.sync_and_close()
            s.synced = True
        except OSError as exc:
            s.error = f"fsync: {exc}"

    # -- landing: rename every finished job's files, one fsync a directory -----------
    def _land(self, done: list[_Job]) -> None:
        """Blocking: rename each fsynced file into fragments/ (under the
        landing lock, as a PUT does), then fsync each directory once."""
        dirs: set[Path] = set()
        landed = landed_bytes = 0
        for s in done:
            if not s.synced:
                continue
            for idx, (tmp, _) in list(s.files.items()):
                final = self.node.path_for(s.job.object_id, idx)
                final.parent.mkdir(parents=True, exist_ok=True)
                failpoint("storage.rebuild.before_rename")
                with self.node.land_lock:
                    os.replace(tmp, final)
                dirs.add(final.parent)
                del s.files[idx]
                landed += 1
            landed_bytes += s.written
        for d in dirs:
            fsync_dir(d)
        self.node.count_written(landed, landed_bytes)
