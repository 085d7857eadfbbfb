"""A storage node: one process, one data directory, fragment files in it.

HTTP API (every request HMAC-signed with the cluster secret, see rpc.auth,
except /health and /metrics):

    PUT    /fragment/{object_id}/{index}        body: framed blocks, then the seal (rpc/auth.py)
                                                  → 200 {"blocks", "bytes"}; 403 if the seal is
                                                  missing or does not match the blocks
    GET    /fragment/{object_id}/{index}?first=&last=   → framed blocks of those segments, with a
                                                  Content-Length (404 NoSuchFragment; 409 CorruptFragment
                                                  for a bad header; a bad block cuts the body short)
    DELETE /fragment/{object_id}/{index}[?min_age_s=S]  → 204 (removed, or already absent);
                                                  409 {"code": "TooYoung", "age_s"} if the file is
                                                  younger than S seconds (by its mtime): it is kept
    POST   /fragments/read                       body: {"fragments": [[oid, idx(, first, last)], …]} (≤ 256)
                                                  → every fragment asked for, in order, in one body
                                                  (storage/batchread.py); a missing or corrupt one is
                                                  answered in its item, and a corrupt one quarantined
    POST   /rebuild                              body: {"jobs": [rebuild job, …]} (ec/rebuild.py) →
                                                  {"results": [{"ok", "written", "read"} | {"ok": false,
                                                  "error"}, …]} once every fragment written is durable:
                                                  this node reads the sources from their nodes and
                                                  writes the rebuilt fragments itself (storage/rebuild.py)
    GET    /inventory?after=<oid>.<idx>&limit=N → {"fragments": [[oid, idx, size_bytes, age_s], …],
                                                  "next": "<oid>.<idx>" | null}   (N ≤ 10000, default 10000)
    POST   /audit?rate=MBps                      → {"pass": id}    start a full audit pass now
    GET    /audit                                → the audit's progress (see storage/audit.py for
                                                  the fields and the exact POST-then-poll contract)
    GET    /quarantine                           → {"items": [{"object_id", "index", "problem",
                                                  "detected_by", "detected_unix", "file"}, …]}
    GET    /status                               → {"id", "az", "fragments", "disk_bytes", "stats", "audit"}
    GET    /metrics                              → Prometheus text (unsigned)
    GET    /health                               → 200 (unsigned)

Layout of the data directory::

    fragments/<oid[:2]>/<oid>.<idx>      one fragment file (format: storage/blocks.py)
    tmp/                                 PUTs in flight (emptied at start-up)
    quarantine/<oid>.<idx>.<unix_ms>     a fragment found bad, moved aside, never deleted here
    quarantine/<oid>.<idx>.<unix_ms>.json   why: {"object_id", "index", "problem",
                                         "detected_by": "audit" | "read", "detected_unix"}
                                         (storage/quarantine.py)

Durability: a fragment is written to tmp/, every block's xxh3 verified as it
arrives, fsynced, renamed into fragments/ and the directory fsynced *before* the
200. The frontend commits metadata only after every fragment got its 200, so a
committed object never points at bytes that a crash can take back. A rebuild
lands its fragments the same way, except that a batch's files are renamed
together and each directory is fsynced once for the batch, before the answer.

Afterwards the node keeps checking what it holds: every read verifies the
blocks it serves, and a background *audit* re-reads every file at
``[scrub] audit_mb_per_s`` (at ``audit_busy_share`` of it while the node moves
fragment bytes for a client or a rebuild). A file found bad either way is moved to
quarantine/ (so it is never served again, and a person can still look at it);
the cluster scrubber notices the missing fragment and rebuilds it.

Keys never reach this process: names come from the object id (32 hex digits,
checked) and the fragment index, so no request can name a file outside the
data directory.

This module holds the HTTP handlers and :class:`StorageNode`, which wires
the node's parts together: fragment files read and written in
storage/fragments.py, the quarantine in storage/quarantine.py, the
background audit in storage/auditor.py, rebuilds in storage/rebuild.py and
the metrics in storage/metrics.py.
"""
from __future__ import annotations

import asyncio
import errno
import logging
import math
import os
import re
import struct
import threading
import time
import uuid
from pathlib import Path

import prometheus_client
from aiohttp import web

from ..rpc import auth, tracing
from ..rpc.delay import InterAZDelay
from ..rpc.failpoints import disk_faults, failpoint
from ..rpc.http import VERIFIER, client_session, internal_app, use_fast_event_loop
from ..rpc.process import begin, process_args, serve
from ..rpc.worker import Worker
from . import audit, batchread, blocks
from .auditor import Auditor, Foreground
from .client import FAILING_FOR_S, StorageClient, feed
from .fragments import READ_BATCH, BadFragmentFile, FragmentRange, IncomingFragment, open_many, open_range, probe_write
from .metrics import NodeMetrics
from .quarantine import Quarantine
from .rebuild import Rebuilder, parse_request as parse_rebuild_request

#: A node whose landings took longer than this lately probes its disk when
#: idle, so that it is seen to recover once frontends stop sending it work.
SLOW_PROBE_MS = 50.0

#: Bytes a request body may buffer before aiohttp pauses the socket. Its
#: default (64 KiB) stalls a stream of 256 KiB blocks every few kilobytes.
STREAM_BUFSIZE = 1 << 20

log = logging.getLogger("minis3.storage")

SEAL_MARK = struct.pack(">I", auth.SEAL_MARK)     # a block head that starts so is the seal
OBJECT_ID = re.compile(r"^[0-9a-f]{32}$")


class StorageNode:
    """One storage node: its data directory, its HTTP handlers (``app``), and
    the parts they use (quarantine, auditor, rebuilder, metrics)."""

    def __init__(self, node_id: str, az: str, data_dir: Path, *, audit_mb_per_s: float = 0.0,
                 audit_busy_share: float = 1.0, peers: dict[str, str] | None = None,
                 rpc_options: dict | None = None):
        self.node_id, self.az = node_id, az
        #: Every node's URL (this one's too), for the sources of a rebuild
        #: (storage/rebuild.py); rpc_options: client_session's source_host and delay.
        self.peers = dict(peers or {})
        self.rpc_options = rpc_options or {}
        self._peer_session = None
        self._rebuilder: Rebuilder | None = None
        self.root = Path(data_dir).resolve()
        self.frag_dir = self.root / "fragments"
        self.tmp_dir = self.root / "tmp"
        self.quarantine_dir = self.root / "quarantine"
        for d in (self.frag_dir, self.tmp_dir):
            d.mkdir(parents=True, exist_ok=True)
        # A tmp file left by a crash was never acknowledged: drop it.
        for p in self.tmp_dir.iterdir():
            p.unlink(missing_ok=True)
        self.stats = {"fragments_written": 0, "fragments_read": 0, "bytes_written": 0,
                      "bytes_read": 0, "corrupt_blocks": 0}
        #: Held while a file is renamed into fragments/ and while a quarantine
        #: or a GC delete checks which file a path names and then acts on it.
        self.land_lock = threading.Lock()
        self.metrics = NodeMetrics(lambda: self.quarantine.count())
        self.quarantine = Quarantine(self.quarantine_dir, self.path_for, self.land_lock, self.metrics.corrupt)
        # The audit: continuous at this rate (0: only passes asked for by POST /audit),
        # at audit_busy_share of it while the data handlers (``foreground``) are busy.
        self.foreground = Foreground()
        self.auditor = Auditor(node_id, self.frag_dir, self.path_for, self.quarantine, self.metrics,
                               audit_mb_per_s, self.foreground, audit_busy_share)
        #: Since when its disk refused a write with ENOSPC (None: it takes writes).
        self.full_since: float | None = None
        #: A moving average of how long landing a fragment (fsyncs included) takes, ms,
        #: and when the last one landed: /health reports it, frontends avoid a slow disk.
        self.sync_ms, self.last_land = 0.0, 0.0
        #: Until when (monotonic) the disk counts as failing: a write failed with an I/O error.
        self.failing_until = 0.0
        self.disk_probe = Worker("disk-probe", self.probe_disk, 1.0, registry=self.metrics.registry)

    # -- names -----------------------------------------------------------
    def path_for(self, object_id: str, index: int) -> Path:
        return self.frag_dir / object_id[:2] / f"{object_id}.{index}"

    @staticmethod
    def parse_name(request: web.Request) -> tuple[str, int]:
        oid = request.match_info["oid"]
        try:
            idx = int(request.match_info["idx"])
        except ValueError:
            raise web.HTTPBadRequest(text="bad fragment index")
        if not OBJECT_ID.match(oid) or not 0 <= idx < 256:
            raise web.HTTPBadRequest(text="bad object id or index")
        return oid, idx

    # -- handlers ----------------------------------------------------------
    async def put_fragment(self, request: web.Request) -> web.Response:
        oid, idx = self.parse_name(request)
        info = blocks.fragment_info(oid, idx, self.node_id, int(time.time() * 1000))
        tmp = self.tmp_dir / f"{oid}.{idx}.{uuid.uuid4().hex[:8]}"
        incoming = IncomingFragment(tmp, self.path_for(oid, idx), blocks.file_header(idx, info))
        # The body ends with a seal over its block heads (rpc/auth.py), keyed
        # with this request's nonce: checked before the fragment is landed.
        if request.headers.get(auth.BODY_HEADER) != auth.SEALED:
            return web.json_response({"code": "AccessDenied", "message": "a fragment body must be sealed"},
                                     status=403)
        seal = auth.Seal(self.secret, request.headers[auth.NONCE_HEADER])
        try:
            if not await self._receive_blocks(request.content, seal, incoming):
                return await self._refuse_unsealed(incoming, oid, idx)
            with tracing.TRACER.span("land: write, fsync, rename, fsync dir", blocks=incoming.blocks,
                                     bytes=incoming.bytes):
                t0 = time.monotonic()
                await incoming.land(self.land_lock)
                land_ms = round((time.monotonic() - t0) * 1000, 3)
                self.note_sync(land_ms)
        except (blocks.CorruptBlock, asyncio.IncompleteReadError) as exc:
            await incoming.discard()
            log.warning("refused fragment %s.%d: %s", oid, idx, exc)
            return web.json_response({"code": "BadDigest", "message": str(exc)}, status=400)
        except OSError as exc:
            await incoming.discard()
            if isinstance(exc, (ConnectionError, TimeoutError)) or exc.errno is None:
                raise                  # the sender went away or stalled: not the disk's doing
            return self.disk_refusal(exc, f"fragment {oid}.{idx}")
        except BaseException:
            await incoming.discard()
            raise
        self.count_written(1, incoming.bytes)
        return web.json_response({"blocks": incoming.blocks, "bytes": incoming.bytes, "fsync_ms": land_ms})

    @staticmethod
    async def _receive_blocks(reader, seal: auth.Seal, incoming: IncomingFragment) -> bool:
        """Read a PUT body's blocks into ``incoming``, each verified against
        its checksum, up to the seal. True if the seal matches the blocks and
        nothing follows it; raises CorruptBlock (or IncompleteReadError) for
        a bad or cut body. A block's data goes on as views of the chunks it
        arrived in: the file's write is its only copy here (a readexactly
        would join each block first)."""
        cut = blocks.BlockCutter()

        async def fill(n: int) -> None:
            """At least ``n`` bytes buffered in ``cut`` (IncompleteReadError if the body ends first)."""
            while len(cut) < n:
                await feed(reader, cut)

        while True:
            try:
                await fill(blocks.BLOCK_HEAD.size)
            except asyncio.IncompleteReadError:
                raise blocks.CorruptBlock("truncated block header" if len(cut) else "body ended without its seal")
            head = cut.take(blocks.BLOCK_HEAD.size)
            if head[:4] == SEAL_MARK:
                rest = auth.SEAL.size - blocks.BLOCK_HEAD.size
                await fill(rest)
                mac = cut.take(rest)
                return head == auth.SEAL_HEAD and seal.matches(mac) and not len(cut) and not await reader.read(1)
            seal.add(head)
            length, digest = blocks.parse_block_head(head)
            await fill(length)
            data = cut.take_views(length)
            # Verify before anything is made durable: a block that
            # changed on the way is refused, never stored.
            if blocks.checksum_of_views(data) != digest:
                raise blocks.CorruptBlock(f"block {incoming.blocks} checksum mismatch on receipt")
            await incoming.add(head, data)

    async def _refuse_unsealed(self, incoming: IncomingFragment, oid: str, idx: int) -> web.Response:
        """The blocks are not the ones the sender sealed (or more follow the seal): nothing is kept."""
        await incoming.discard()
        self.verifier.count("body")
        log.warning("refused fragment %s.%d: its seal does not match its blocks", oid, idx)
        return web.json_response({"code": "AccessDenied", "message": "the fragment's seal does not match its blocks"},
                                 status=403)

    async def get_fragment(self, request: web.Request) -> web.StreamResponse:
        oid, idx = self.parse_name(request)
        path = self.path_for(oid, idx)
        try:
            first = int(request.query.get("first", 0))
            last = int(request.query.get("last", -1))
        except ValueError:
            raise web.HTTPBadRequest(text="bad segment bounds")
        if first < 0:
            raise web.HTTPBadRequest(text="bad segment bounds")
        try:
            rng = await asyncio.to_thread(open_range, path, idx, first, last)
        except FileNotFoundError:
            return web.json_response({"code": "NoSuchFragment"}, status=404)
        except BadFragmentFile as exc:
            await self._quarantine_after_read(oid, idx, exc.identity, str(exc))
            return web.json_response({"code": "CorruptFragment", "message": str(exc)}, status=409)
        except OSError as exc:
            return self.disk_refusal(exc, f"read of fragment {oid}.{idx}", write=False)
        # The length is known from the file's size and layout, so the body is
        # plain, not chunked (aiohttp's chunked framing copies every block on
        # Python 3.11), and each batch goes out in one write.
        resp = web.StreamResponse()
        resp.content_length = rng.length
        try:
            await resp.prepare(request)
            while not rng.done:
                # One read of whole blocks, verified in the same thread hop.
                try:
                    good, data_bytes, problem = await asyncio.to_thread(rng.read_verified, READ_BATCH)
                except OSError as exc:
                    # The disk failed the read: cut the response short, as for a
                    # bad block (the reader decodes from other fragments), but
                    # keep the file: the auditor reads it again.
                    log.warning("read of fragment %s.%d: the disk failed it: %s", oid, idx, exc)
                    if request.transport is not None:
                        request.transport.close()
                    return resp
                if good:
                    await resp.write(good)
                    self.stats["bytes_read"] += data_bytes
                    self.metrics.bytes_read.inc(data_bytes)
                if problem:
                    # Never serve a bad block: cut the response short (the
                    # reader sees fewer bytes than the Content-Length) so it
                    # decodes from other fragments; then move the file aside
                    # so no later read trips on it.
                    # Quarantine first: once the reader sees the cut, the
                    # file is already out of the way of every later read.
                    await self._quarantine_after_read(oid, idx, rng.identity, problem)
                    if request.transport is not None:
                        request.transport.close()
                    return resp
            await resp.write_eof()
            self.stats["fragments_read"] += 1
            self.metrics.fragments_read.inc()
            return resp
        finally:
            await asyncio.to_thread(rng.close)

    async def read_fragments(self, request: web.Request) -> web.StreamResponse:
        """``POST /fragments/read``: many fragments in one response
        (storage/batchread.py). A missing or corrupt fragment is answered in
        its item; a corrupt one is quarantined, as a single read does."""
        try:
            wanted = batchread.parse_request(await request.json())
        except ValueError as exc:            # (BadBatchRequest, or JSON that does not parse)
            return web.json_response({"code": "InvalidRequest", "message": str(exc)}, status=400)
        batch = await asyncio.to_thread(open_many, [(self.path_for(w.object_id, w.index), w.index, w.first, w.last)
                                                     for w in wanted])
        try:
            for i, o in enumerate(batch.opened):
                if not isinstance(o, FragmentRange) and o[0] == batchread.CORRUPT:
                    await self._quarantine_after_read(wanted[i].object_id, wanted[i].index, o[2], o[1])
            resp = web.StreamResponse()
            resp.content_length = batch.length
            resp.content_type = "application/octet-stream"
            await resp.prepare(request)
            while not batch.done:
                pieces, problems = await asyncio.to_thread(batch.next_pieces, READ_BATCH)
                # Quarantine first: once the reader sees the item marked bad,
                # the file is already out of the way of every later read.
                for i, problem, identity in problems:
                    await self._quarantine_after_read(wanted[i].object_id, wanted[i].index, identity, problem)
                for piece in pieces:
                    await resp.write(piece)
            await resp.write_eof()
            self.stats["fragments_read"] += batch.fragments
            self.stats["bytes_read"] += batch.data_bytes
            self.metrics.fragments_read.inc(batch.fragments)
            self.metrics.bytes_read.inc(batch.data_bytes)
            return resp
        finally:
            await asyncio.to_thread(batch.close)

    async def rebuild(self, request: web.Request) -> web.Response:
        """``POST /rebuild``: rebuild fragments onto this node from their
        sources on other nodes (storage/rebuild.py); answers one result a job
        once every fragment written is durable."""
        try:
            jobs = parse_rebuild_request(await request.json())
        except ValueError as exc:     # (BadRebuildRequest, InvalidRebuildJob, JSON that does not parse)
            return web.json_response({"code": "InvalidRequest", "message": str(exc)}, status=400)
        with tracing.TRACER.span("rebuild", jobs=len(jobs)):
            results = await self.rebuilder().run(jobs)
        return web.json_response({"results": results})

    def rebuilder(self) -> Rebuilder:
        if self._rebuilder is None:
            client = None
            if self.peers:
                self._peer_session = client_session(self.secret, **self.rpc_options)
                client = StorageClient(self._peer_session, self.peers)
            self._rebuilder = Rebuilder(self, client)
        return self._rebuilder

    def count_written(self, fragments: int, data_bytes: int) -> None:
        """Fragments landed (by a PUT or a rebuild), for /status and /metrics."""
        self.stats["fragments_written"] += fragments
        self.stats["bytes_written"] += data_bytes
        self.metrics.fragments_written.inc(fragments)
        self.metrics.bytes_written.inc(data_bytes)

    def _delete_if_old(self, path: Path, min_age_s: float | None) -> tuple[str, float | None]:
        """("removed" | "absent" | "young", the file's age). The age check and
        the unlink hold the landing lock: a file that a PUT (say, a rebuild)
        puts in place meanwhile is never removed on the strength of the old
        file's age."""
        with self.land_lock:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                return "absent", None
            age = time.time() - st.st_mtime
            if min_age_s is not None and age < min_age_s:
                return "young", age
            failpoint("storage.delete.before_unlink")
            try:
                os.unlink(path)
            except FileNotFoundError:
                return "absent", None
            return "removed", age

    async def delete_fragment(self, request: web.Request) -> web.Response:
        oid, idx = self.parse_name(request)
        min_age_s = None
        if "min_age_s" in request.query:
            try:
                min_age_s = float(request.query["min_age_s"])
            except ValueError:
                raise web.HTTPBadRequest(text="bad min_age_s")
            if not math.isfinite(min_age_s):
                raise web.HTTPBadRequest(text="bad min_age_s")
        outcome, age = await asyncio.to_thread(self._delete_if_old, self.path_for(oid, idx), min_age_s)
        if outcome == "young":
            return web.json_response({"code": "TooYoung", "age_s": round(age, 3), "min_age_s": min_age_s,
                                      "message": f"fragment is {age:.1f}s old, younger than {min_age_s}s"},
                                     status=409)
        if outcome == "removed":
            self.metrics.fragments_deleted.inc()
        return web.Response(status=204)

    # -- quarantine (storage/quarantine.py) ------------------------------------
    async def _quarantine_after_read(self, oid: str, idx: int, identity: tuple[int, int], problem: str) -> None:
        """Count, log and quarantine what a read (single or batched) found
        bad; a failure to quarantine (say, the disk went away) is logged,
        never turned into the read's answer."""
        self.stats["corrupt_blocks"] += 1
        log.error("corrupt fragment %s: %s", self.path_for(oid, idx), problem)
        try:
            await asyncio.to_thread(self.quarantine.move, oid, idx, identity, problem, "read")
        except Exception:
            log.exception("could not quarantine %s.%d", oid, idx)

    async def get_quarantine(self, request: web.Request) -> web.Response:
        return web.json_response({"items": await asyncio.to_thread(self.quarantine.items)})

    # -- inventory ---------------------------------------------------------
    async def inventory(self, request: web.Request) -> web.Response:
        after = request.query.get("after") or None
        try:
            limit = int(request.query.get("limit", audit.INVENTORY_MAX))
            if after:
                audit.parse_cursor(after)
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc))
        if limit < 1:
            raise web.HTTPBadRequest(text="limit must be at least 1")
        limit = min(limit, audit.INVENTORY_MAX)
        rows, nxt = await asyncio.to_thread(audit.list_fragments, self.frag_dir, after, limit)
        return web.json_response({"fragments": rows, "next": nxt})

    # -- audit (storage/auditor.py) -----------------------------------------
    async def post_audit(self, request: web.Request) -> web.Response:
        rate = None
        if request.query.get("rate", "") != "":
            try:
                rate = float(request.query["rate"])
            except ValueError:
                raise web.HTTPBadRequest(text="bad rate")
            if not math.isfinite(rate) or rate < 0:
                raise web.HTTPBadRequest(text="rate must be a number of MB/s >= 0")
        p = await self.auditor.start(rate)
        return web.json_response({"pass": p.id})

    async def get_audit(self, request: web.Request) -> web.Response:
        return web.json_response(self.auditor.status())

    # -- a full or failing disk ---------------------------------------------
    def disk_refusal(self, exc: OSError, what: str, write: bool = True) -> web.Response:
        """The answer to a write (or a read) the disk refused: 507
        ``InsufficientStorage`` for a full disk (this node then says it is full
        on /health, so frontends place fragments elsewhere until a probe write
        succeeds), 503 ``DiskError`` for any other I/O error (a failed write
        makes the node *failing* for ``FAILING_FOR_S``: frontends hand its
        fragments off too). Either way nothing of the write is kept."""
        log.warning("%s: the disk refused it: %s", what, exc)
        if exc.errno == errno.ENOSPC:
            self.mark_full(str(exc))
            return web.json_response({"code": "InsufficientStorage", "message": f"{self.node_id}: disk full"},
                                     status=507)
        if write:
            self.note_write_error()
        return web.json_response({"code": "DiskError", "message": f"{self.node_id}: {exc.strerror or exc}"},
                                 status=503)

    def mark_full(self, why: str) -> None:
        if self.full_since is None:
            self.full_since = time.time()
            log.warning("storage node %s: disk full (%s); writes refused until a probe write succeeds",
                        self.node_id, why)

    def note_write_error(self) -> None:
        if time.monotonic() >= self.failing_until:
            log.warning("storage node %s: its disk failed a write; failing for %.0f s after the last such error",
                        self.node_id, FAILING_FOR_S)
        self.failing_until = time.monotonic() + FAILING_FOR_S

    @property
    def failing(self) -> bool:
        return time.monotonic() < self.failing_until

    def note_sync(self, ms: float) -> None:
        self.sync_ms += 0.3 * (ms - self.sync_ms)
        self.last_land = time.monotonic()

    async def probe_disk(self) -> None:
        """Every second, only while the disk is full or was slow lately and
        nothing landed for a second: a small write, fsync and delete. Its
        success ends ``full``; its time updates ``sync_ms``. (Frontends send a
        full or slow node no fragments, so without the probe it would never
        be seen to recover.)"""
        if self.full_since is None and not self.failing and (
                self.sync_ms < SLOW_PROBE_MS or time.monotonic() - self.last_land < 1.0):
            return
        t0 = time.monotonic()
        try:
            await asyncio.to_thread(probe_write, self.tmp_dir)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                self.note_write_error()     # still failing: its writes still fail
            return
        self.note_sync((time.monotonic() - t0) * 1000)
        if self.full_since is not None:
            log.warning("storage node %s: disk writable again after %.1f s", self.node_id,
                        time.time() - self.full_since)
            self.full_since = None

    async def _on_startup(self, app: web.Application) -> None:
        self.auditor.start_continuous()
        self.disk_probe.start()

    async def _on_cleanup(self, app: web.Application) -> None:
        await self.disk_probe.stop()
        await self.auditor.stop()
        if self._peer_session is not None:
            await self._peer_session.close()

    # -- status --------------------------------------------------------------
    def disk_usage(self) -> tuple[int, int]:
        count = size = 0
        for dirpath, _dirs, files in os.walk(self.frag_dir):
            for name in files:
                count += 1
                try:
                    size += os.stat(os.path.join(dirpath, name)).st_size
                except FileNotFoundError:
                    pass
        return count, size

    async def status(self, request: web.Request) -> web.Response:
        count, size = await asyncio.to_thread(self.disk_usage)
        return web.json_response({"id": self.node_id, "az": self.az, "role": "storage", "pid": os.getpid(),
                                  "fragments": count, "disk_bytes": size, "stats": self.stats,
                                  "disk": disk_faults().describe(), **self.disk_health(),
                                  "audit": self.auditor.status(), "workers": [self.auditor.worker.status()]})

    async def metrics_page(self, request: web.Request) -> web.Response:
        """Prometheus text, unauthenticated like any scrape endpoint: counts
        only, never names."""
        body = await asyncio.to_thread(prometheus_client.generate_latest, self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST})

    async def health(self, request: web.Request) -> web.Response:
        """Up; whether its disk takes writes (``full``) and how long landing a
        fragment takes lately (``sync_ms``): frontends hand a full or slow
        node's new fragments off to other nodes, and still read from it."""
        return web.json_response({"ok": True, "id": self.node_id, **self.disk_health()})

    def disk_health(self) -> dict:
        """What /health and /status say of the disk: full, failing, recent landing time."""
        return {"full": self.full_since is not None, "failing": self.failing, "sync_ms": round(self.sync_ms, 3)}

    def _foreground(self, handler):
        """``handler``, counted as the node's foreground work while it runs."""
        async def run(request: web.Request) -> web.StreamResponse:
            with self.foreground:
                return await handler(request)
        return run

    def app(self, secret: str) -> web.Application:
        self.secret = secret
        data = self._foreground            # the handlers that move fragment bytes: the audit yields to them
        routes = [web.put("/fragment/{oid}/{idx}", data(self.put_fragment)),
                  web.get("/fragment/{oid}/{idx}", data(self.get_fragment)),
                  web.delete("/fragment/{oid}/{idx}", self.delete_fragment),
                  web.post("/fragments/read", data(self.read_fragments)), web.post("/rebuild", data(self.rebuild)),
                  web.get("/inventory", self.inventory), web.post("/audit", self.post_audit),
                  web.get("/audit", self.get_audit), web.get("/quarantine", self.get_quarantine),
                  web.get("/status", self.status), web.get("/metrics", self.metrics_page),
                  web.get("/health", self.health)]
        app = internal_app(secret, client_max_size=1 << 20, handler_args={"read_bufsize": STREAM_BUFSIZE},
                           registry=self.metrics.registry, sealed_paths=("/fragment/",), routes=routes,
                           on_startup=[self._on_startup], on_cleanup=[self._on_cleanup])
        self.verifier = app[VERIFIER]
        return app


def main(argv: list[str] | None = None) -> None:
    a, topo = process_args("minis3 storage", argv, lambda p: p.add_argument("--id", required=True))
    spec = topo.node(a.id)
    begin(f"storage {spec.id}", topo, log, trace_name=f"node-{spec.id}")
    node = StorageNode(spec.id, spec.az, spec.data_dir, audit_mb_per_s=topo.scrub.audit_mb_per_s,
                       audit_busy_share=topo.scrub.audit_busy_share,
                       peers={n.id: n.url for n in topo.nodes},
                       rpc_options={"source_host": spec.host, "delay": InterAZDelay.for_topology(topo, spec.az),
                                    "peer_names": topo.process_names()})
    log.info("storage node %s (%s) on %s, data in %s (%s, audit %s MB/s, %g of it while busy)", spec.id,
             spec.az, spec.url, node.root, use_fast_event_loop(), node.auditor.rate_mb_per_s,
             node.auditor.busy_share)
    serve(node.app(topo.cluster_secret), spec.host, spec.port)
