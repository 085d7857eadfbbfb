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

Durability: a fragment is written to tmp/, every block's xxh3 verified as it
arrives, fsynced, renamed into fragments/ and the directory fsynced *before* the
200. The frontend commits metadata only after every fragment got its 200, so a
committed object never points at bytes that a crash can take back. A rebuild
lands its fragments the same way, except that a batch's files are renamed
together and each directory is fsynced once for the batch, before the answer.

Afterwards the node keeps checking what it holds: every read verifies the
blocks it serves, and a background *audit* re-reads every file at
``[scrub] audit_mb_per_s``. A file found bad either way is moved to
quarantine/ (so it is never served again, and a person can still look at it);
the cluster scrubber notices the missing fragment and rebuilds it.

Keys never reach this process: names come from the object id (32 hex digits,
checked) and the fragment index, so no request can name a file outside the
data directory.
"""
from __future__ import annotations

import argparse
import asyncio
import errno
import json
import logging
import math
import os
import re
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import prometheus_client
from aiohttp import web

from ..rpc import auth, tracing
from ..core.ratelimit import TokenBucket
from ..rpc.delay import InterAZDelay
from ..rpc.http import VERIFIER, client_session, internal_app, use_fast_event_loop
from ..fsutil import DurableFile, fsync_dir, open_direct, pread_direct
from . import audit, batchread, blocks
from .client import StorageClient
from .rebuild import Rebuilder, parse_request as parse_rebuild_request

#: Bytes a request body may buffer before aiohttp pauses the socket. Its
#: default (64 KiB) stalls a stream of 256 KiB blocks every few kilobytes.
STREAM_BUFSIZE = 1 << 20

log = logging.getLogger("minis3.storage")

#: The node audit charges each file at least this many bytes of its rate.
AUDIT_FILE_COST = 256 << 10

#: Verified blocks are written to the temp file in batches of about this size.
WRITE_BATCH = 1 << 20

#: A continuous audit pass that took less than this waits out the rest before
#: the next one, so a node with few files does not spin re-reading them.
MIN_PASS_S = 1.0


def _write_some(out: DurableFile | None, tmp: Path, pieces: list[bytes]) -> DurableFile:
    if out is None:
        out = DurableFile(tmp, make_parent=True)     # tmp/ may be gone (say, a wiped disk)
    try:
        out.write(*pieces)
    except BaseException:
        out.close()
        raise
    return out


#: Blocks are read from disk and verified in batches of about this size.
READ_BATCH = 1 << 20

#: A fragment file at least this big is read with direct I/O, past the page
#: cache (fsutil.pread_direct says why); a smaller one through it, where
#: a hot small object stays cached.
DIRECT_READ_MIN = 1 << 20


class BadFragmentFile(blocks.CorruptBlock):
    """A fragment file whose header is bad, with the identity (st_dev, st_ino)
    of the file that was read, for quarantine."""

    def __init__(self, message: str, identity: tuple[int, int]):
        super().__init__(message)
        self.identity = identity


class FragmentRange:
    """Blocks ``first``..``last`` (-1: to the end) of an open fragment file,
    read and verified a batch at a time (in a worker thread).

    The layout is the one storage/blocks.py describes: every block has the
    length of block 0 but the file's last one, which may be shorter and ends
    the file. So the bytes a read sends (``length``) are known from the
    file's size before any block is read, and a batch is one read of whole
    blocks. A block is good if its head agrees with that layout and its data
    with its xxh3; a file that breaks the layout is corrupt like one whose
    checksum does not match.
    """

    def __init__(self, f, identity: tuple[int, int], size: int, hlen: int, length0: int,
                 first: int, last: int, direct_fd: int = -1):
        self.f, self.identity = f, identity
        self.direct_fd = direct_fd                  # -1: read through the page cache
        self.length0 = length0
        self.stride = blocks.BLOCK_HEAD.size + length0
        body = size - hlen
        #: Blocks in the file by its size, and the data length of its last one.
        self.n_blocks = 0 if body <= 0 else -(-body // self.stride)
        self.last_length = body - (self.n_blocks - 1) * self.stride - blocks.BLOCK_HEAD.size
        end_seg = self.n_blocks - 1 if last < 0 else min(last, self.n_blocks - 1)
        self.seg = first                            # the next block to read
        self.pos = hlen + first * self.stride       # where it starts in the file
        #: The bytes this range sends when every block is good.
        self.length = max(0, min(size, hlen + (end_seg + 1) * self.stride) - self.pos) if first <= end_seg else 0
        self.end = self.pos + self.length
        # close() waits for a read still running in a thread whose awaiting
        # task was cancelled (reads go by file descriptor, so a descriptor
        # closed and reused under one would read another file).
        self._lock = threading.Lock()

    @property
    def done(self) -> bool:
        return self.pos >= self.end

    def close(self) -> None:
        with self._lock:
            self.f.close()
            if self.direct_fd >= 0:
                os.close(self.direct_fd)
                self.direct_fd = -1

    def read_verified(self, limit: int) -> tuple[bytes | memoryview, int, str | None]:
        """The next whole blocks, heads included: ``limit`` bytes or just
        over (at least one block) in one read, each block checked. Returns (the good
        blocks' bytes, their data bytes, what was wrong with the first bad
        block, or None). A bad block ends the batch: only what comes before
        it is returned."""
        with self._lock:
            want = min(self.end - self.pos, max(1, -(-limit // self.stride)) * self.stride)
            buf = pread_direct(self.direct_fd, want, self.pos) if self.direct_fd >= 0 else None
            if buf is None:
                buf = _pread_exactly(self.f.fileno(), want, self.pos)
        view = memoryview(buf)
        n, head_size = len(buf), blocks.BLOCK_HEAD.size
        pos = data_bytes = 0
        seg = self.seg
        problem = None
        while pos < n:
            expected = self.length0 if seg < self.n_blocks - 1 else self.last_length
            try:
                if n - pos < head_size:
                    raise blocks.CorruptBlock(f"segment {seg}: truncated block header")
                length, digest = blocks.parse_block_head(view[pos:pos + head_size])
                if length != expected:
                    raise blocks.CorruptBlock(f"segment {seg}: block length {length} where the file's "
                                              f"layout has {expected}")
                end = pos + head_size + length
                if end > n or blocks.checksum(view[pos + head_size:end]) != digest:
                    raise blocks.CorruptBlock(f"segment {seg} checksum mismatch")
            except blocks.CorruptBlock as exc:
                problem = str(exc)
                break
            pos = end
            seg += 1
            data_bytes += length
        if problem is None and n < want:
            problem = f"segment {seg}: file cut short"   # since it was opened
        self.seg, self.pos = seg, self.pos + pos
        return (buf if pos == n else view[:pos]), data_bytes, problem


def _pread_exactly(fd: int, n: int, offset: int) -> bytes:
    """``n`` bytes from ``offset``, in one read as a rule (fewer only at the
    end of the file)."""
    buf = os.pread(fd, n, offset)
    if len(buf) == n or not buf:
        return buf
    parts, got = [buf], len(buf)
    while got < n:
        more = os.pread(fd, n - got, offset + got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _open_range(path: Path, idx: int, first: int, last: int) -> FragmentRange:
    """Open a fragment file for blocks ``first``..``last``: checks its header
    and block 0's head, which give the layout."""
    f = open(path, "rb", buffering=0)
    try:
        st = os.fstat(f.fileno())
        identity = st.st_dev, st.st_ino
        head = os.pread(f.fileno(), 64 * 1024, 0)
        try:
            index, _info, hlen = blocks.parse_file_header(head)
        except (blocks.CorruptBlock, ValueError) as exc:   # ValueError: JSON that will not parse
            raise BadFragmentFile(str(exc), identity) from exc
        if index != idx:
            raise BadFragmentFile("fragment index in header differs from its name", identity)
        bh = head[hlen:hlen + blocks.BLOCK_HEAD.size]
        if len(bh) < blocks.BLOCK_HEAD.size and len(head) == 64 * 1024:
            bh = os.pread(f.fileno(), blocks.BLOCK_HEAD.size, hlen)
        length0 = 0
        if len(bh) == blocks.BLOCK_HEAD.size:          # else: zero segments, or a cut head (found on reading)
            try:
                length0, _ = blocks.parse_block_head(bh)
            except blocks.CorruptBlock as exc:
                raise BadFragmentFile(f"block 0: {exc}", identity) from exc
        direct_fd = open_direct(path) if st.st_size >= DIRECT_READ_MIN else -1
        return FragmentRange(f, identity, st.st_size, hlen, length0, first, last, direct_fd)
    except BaseException:
        f.close()
        raise


class BatchRead:
    """The answer to one ``POST /fragments/read`` (storage/batchread.py), a
    batch of bytes at a time: ``next_pieces`` runs in a worker thread, reads
    and verifies whole blocks of as many fragments as fit in ``limit`` bytes,
    and returns the pieces to send in order (item heads, blocks, item ends).
    A bad block found on the way is never sent: the rest of its item is
    zeros, its end says CORRUPT, and ``problems`` names the file for quarantine."""

    ZEROS = 1 << 20            # the most zero bytes made at once for a bad item's rest

    def __init__(self, opened: list):
        self.opened = opened               # FragmentRange, or (status, problem, identity | None)
        self.pos = 0
        self.started = False               # the current item's head has been sent
        self.zeros_left = 0                # of a bad item
        self.data_bytes = 0
        self.fragments = 0

    @property
    def length(self) -> int:
        """The whole body's bytes, known before any block is read."""
        return sum(batchread.ITEM_HEAD.size + batchread.ITEM_END.size
                   + (o.length if isinstance(o, FragmentRange) else 0) for o in self.opened)

    @property
    def done(self) -> bool:
        return self.pos >= len(self.opened)

    def next_pieces(self, limit: int) -> tuple[list, list[tuple[int, str, tuple[int, int]]]]:
        pieces: list = []
        problems: list[tuple[int, str, tuple[int, int]]] = []
        used = 0
        while not self.done and used < limit:
            o = self.opened[self.pos]
            if not isinstance(o, FragmentRange):
                pieces.append(batchread.item_head(o[0], 0) + batchread.item_end(batchread.OK))
                self.pos += 1
                continue
            if not self.started:
                pieces.append(batchread.item_head(batchread.OK, o.length))
                self.started = True
            if self.zeros_left:
                n = min(self.zeros_left, self.ZEROS)
                pieces.append(bytes(n))
                used += n
                self.zeros_left -= n
                if self.zeros_left:
                    continue
                end = batchread.CORRUPT
            elif not o.done:
                good, data_bytes, problem = o.read_verified(max(1, limit - used))
                if good:
                    pieces.append(good)
                    used += len(good)
                    self.data_bytes += data_bytes
                if problem:
                    problems.append((self.pos, problem, o.identity))
                    self.zeros_left = o.end - o.pos
                    o.pos = o.end
                    if self.zeros_left:
                        continue
                    end = batchread.CORRUPT
                elif not o.done:
                    continue
                else:
                    end = batchread.OK
            else:
                end = batchread.OK
            pieces.append(batchread.item_end(end))
            if end == batchread.OK:
                self.fragments += 1
            o.close()
            self.pos += 1
            self.started = False
        return pieces, problems

    def close(self) -> None:
        for o in self.opened:
            if isinstance(o, FragmentRange):
                o.close()


def _open_many(paths: list[tuple[Path, int, int, int]]) -> BatchRead:
    """Open every fragment a batch read asks for (path, index, first, last), in order."""
    opened: list = []
    try:
        for path, idx, first, last in paths:
            try:
                opened.append(_open_range(path, idx, first, last))
            except FileNotFoundError:
                opened.append((batchread.MISSING, "no such fragment", None))
            except BadFragmentFile as exc:
                opened.append((batchread.CORRUPT, str(exc), exc.identity))
    except BaseException:
        BatchRead(opened).close()
        raise
    return BatchRead(opened)


def _land(out: DurableFile | None, tmp: Path, pieces: list[bytes], final: Path, lock: threading.Lock) -> None:
    """The last pieces, then durable: fsync the file, rename it into place,
    fsync the directory (so the new name survives a crash too). The rename
    holds `lock`, so a quarantine or a GC delete that checked the file at
    `final` never acts on the new file that replaced it."""
    _write_some(out, tmp, pieces).sync_and_close()
    final.parent.mkdir(parents=True, exist_ok=True)
    with lock:
        os.replace(tmp, final)
    fsync_dir(final.parent)


SEAL_MARK = struct.pack(">I", auth.SEAL_MARK)     # a block head that starts so is the seal
OBJECT_ID = re.compile(r"^[0-9a-f]{32}$")


class NodeMetrics:
    """The node's Prometheus metrics, in a registry of its own (so that two
    nodes in one test process do not share counters)."""

    def __init__(self, quarantined_count):
        r = self.registry = prometheus_client.CollectorRegistry()
        c, g = prometheus_client.Counter, prometheus_client.Gauge
        self.audit_bytes = c("minis3_audit_bytes_verified", "Bytes of fragment files re-read and checked by the audit", registry=r)
        self.audit_fragments = c("minis3_audit_fragments_verified", "Fragment files checked to their end by the audit", registry=r)
        self.corrupt = c("minis3_audit_corrupt_fragments", "Fragment files found bad and quarantined", ["detected_by"], registry=r)
        self.passes = c("minis3_audit_passes", "Audit passes finished", registry=r)
        self.last_pass_seconds = g("minis3_audit_last_pass_seconds", "How long the last finished audit pass took", registry=r)
        self.quarantined = g("minis3_fragments_quarantined", "Fragment files in quarantine/ now", registry=r)
        self.quarantined.set_function(quarantined_count)
        self.fragments_written = c("minis3_storage_fragments_written", "Fragments stored (PUT answered 200)", registry=r)
        self.bytes_written = c("minis3_storage_bytes_written", "Fragment data bytes stored", registry=r)
        self.fragments_read = c("minis3_storage_fragments_read", "Fragment reads served to their end", registry=r)
        self.bytes_read = c("minis3_storage_bytes_read", "Fragment data bytes served", registry=r)
        self.fragments_deleted = c("minis3_storage_fragments_deleted", "Fragment files removed by DELETE", registry=r)
        for label in ("audit", "read"):
            self.corrupt.labels(label)            # show both series from the start, at 0
        prometheus_client.ProcessCollector(registry=r)


@dataclass
class AuditPass:
    """The progress of one audit pass (GET /audit shows the current or latest one)."""
    id: int
    rate_mb_per_s: float                 # 0: unlimited
    started_unix: float
    started_mono: float
    running: bool = True
    files_total: int = 0                 # counted when the pass starts
    files_done: int = 0
    bytes_verified: int = 0
    corrupt_found: int = 0
    requested: bool = False              # by POST /audit (else one of the continuous passes)
    task: asyncio.Task | None = field(default=None, repr=False)


class StorageNode:
    def __init__(self, node_id: str, az: str, data_dir: Path, *, audit_mb_per_s: float = 0.0,
                 peers: dict[str, str] | None = None, rpc_options: dict | None = None):
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
        self.metrics = NodeMetrics(self.quarantined_count)
        # The audit: continuous at this rate (0: only passes asked for by POST /audit).
        self.audit_mb_per_s = float(audit_mb_per_s)
        self.audit_pass: AuditPass | None = None     # the current pass, or the latest
        self.last_pass: dict | None = None           # the latest *finished* pass
        self._last_pass_id = 0
        self._audit_task: asyncio.Task | None = None
        self._audit_switch = asyncio.Lock()

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
        n_blocks = n_bytes = 0
        reader = request.content
        final = self.path_for(oid, idx)
        out: DurableFile | None = None
        # Verified blocks wait here until a buffer's worth is ready, then go to
        # disk in one thread hop; a small fragment is written, fsynced, renamed
        # and its directory fsynced in a single hop at the end.
        waiting, waiting_bytes = [blocks.file_header(idx, info)], 0
        # The body ends with a seal over its block heads (rpc/auth.py), keyed
        # with this request's nonce: checked before the fragment is landed.
        if request.headers.get(auth.BODY_HEADER) != auth.SEALED:
            return web.json_response({"code": "AccessDenied", "message": "a fragment body must be sealed"},
                                     status=403)
        seal = auth.Seal(self.secret, request.headers[auth.NONCE_HEADER])
        try:
            while True:
                try:
                    head = await reader.readexactly(blocks.BLOCK_HEAD.size)
                except asyncio.IncompleteReadError as e:
                    raise blocks.CorruptBlock("truncated block header" if e.partial else "body ended without its seal")
                if head[:4] == SEAL_MARK:
                    mac = await reader.readexactly(auth.SEAL.size - blocks.BLOCK_HEAD.size)
                    if head != auth.SEAL_HEAD or not seal.matches(mac) or await reader.read(1):
                        return await self._refuse_unsealed(out, tmp, oid, idx)
                    break
                seal.add(head)
                length, digest = blocks.parse_block_head(head)
                data = await reader.readexactly(length)
                # Verify before anything is made durable: a block that
                # changed on the way is refused, never stored.
                if blocks.checksum(data) != digest:
                    raise blocks.CorruptBlock(f"block {n_blocks} checksum mismatch on receipt")
                waiting += (head, data)
                waiting_bytes += len(head) + length
                n_blocks += 1
                n_bytes += length
                if waiting_bytes >= WRITE_BATCH:
                    with tracing.TRACER.span("write blocks", bytes=waiting_bytes):
                        out = await asyncio.to_thread(_write_some, out, tmp, waiting)
                    waiting, waiting_bytes = [], 0
            with tracing.TRACER.span("land: write, fsync, rename, fsync dir", blocks=n_blocks, bytes=n_bytes):
                t0 = time.monotonic()
                await asyncio.to_thread(_land, out, tmp, waiting, final, self.land_lock)
                land_ms = round((time.monotonic() - t0) * 1000, 3)
        except (blocks.CorruptBlock, asyncio.IncompleteReadError) as exc:
            await self._discard(out, tmp)
            log.warning("refused fragment %s.%d: %s", oid, idx, exc)
            return web.json_response({"code": "BadDigest", "message": str(exc)}, status=400)
        except BaseException:
            if out is not None:
                await asyncio.to_thread(out.close)
            await asyncio.to_thread(tmp.unlink, True)
            raise
        self.count_written(1, n_bytes)
        return web.json_response({"blocks": n_blocks, "bytes": n_bytes, "fsync_ms": land_ms})

    @staticmethod
    async def _discard(out: DurableFile | None, tmp: Path) -> None:
        if out is not None:
            await asyncio.to_thread(out.close)
        await asyncio.to_thread(tmp.unlink, True)

    async def _refuse_unsealed(self, out: DurableFile | None, tmp: Path, oid: str, idx: int) -> web.Response:
        """The blocks are not the ones the sender sealed (or more follow the seal): nothing is kept."""
        await self._discard(out, tmp)
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
            rng = await asyncio.to_thread(_open_range, path, idx, first, last)
        except FileNotFoundError:
            return web.json_response({"code": "NoSuchFragment"}, status=404)
        except BadFragmentFile as exc:
            await self._quarantine_after_read(oid, idx, exc.identity, str(exc))
            return web.json_response({"code": "CorruptFragment", "message": str(exc)}, status=409)
        # The length is known from the file's size and layout, so the body is
        # plain, not chunked (aiohttp's chunked framing copies every block on
        # Python 3.11), and each batch goes out in one write.
        resp = web.StreamResponse()
        resp.content_length = rng.length
        try:
            await resp.prepare(request)
            while not rng.done:
                # One read of whole blocks, verified in the same thread hop.
                good, data_bytes, problem = await asyncio.to_thread(rng.read_verified, READ_BATCH)
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
        batch = await asyncio.to_thread(_open_many, [(self.path_for(w.object_id, w.index), w.index, w.first, w.last)
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

    # -- quarantine --------------------------------------------------------
    def quarantine(self, oid: str, idx: int, identity: tuple[int, int], problem: str,
                   detected_by: str) -> str | None:
        """Move a bad fragment file to quarantine/ with a sidecar saying why.

        Blocking (run it in a thread). Moves the file only if the path still
        names the very file that was found bad (same st_dev and st_ino): a PUT
        may have put a fresh copy there since (a rebuild, say), and that one
        must stay. Returns the quarantined file's name, or None if nothing was
        moved (gone, or replaced).
        """
        path = self.path_for(oid, idx)
        self.quarantine_dir.mkdir(parents=True, exist_ok=True)
        now = time.time()
        with self.land_lock:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                return None
            if (st.st_dev, st.st_ino) != identity:
                log.info("not quarantining %s: replaced since it was checked", path)
                return None
            ms = int(now * 1000)
            while any((self.quarantine_dir / (audit.quarantine_name(oid, idx, ms) + ext)).exists()
                      for ext in ("", ".json")):
                ms += 1                      # the same fragment twice in one millisecond
            dest = self.quarantine_dir / audit.quarantine_name(oid, idx, ms)
            os.rename(path, dest)
        sidecar = {"object_id": oid, "index": idx, "problem": problem, "detected_by": detected_by,
                   "detected_unix": round(now, 3)}
        with open(dest.with_name(dest.name + ".json"), "x") as f:
            json.dump(sidecar, f)
            f.flush()
            os.fsync(f.fileno())
        fsync_dir(self.quarantine_dir)
        fsync_dir(path.parent)
        self.metrics.corrupt.labels(detected_by).inc()
        log.error("quarantined %s as %s (%s, found by %s)", path, dest.name, problem, detected_by)
        return dest.name

    async def _quarantine_after_read(self, oid: str, idx: int, identity: tuple[int, int], problem: str) -> None:
        """Count, log and quarantine what a read (single or batched) found
        bad; a failure to quarantine (say, the disk went away) is logged,
        never turned into the read's answer."""
        self.stats["corrupt_blocks"] += 1
        log.error("corrupt fragment %s: %s", self.path_for(oid, idx), problem)
        try:
            await asyncio.to_thread(self.quarantine, oid, idx, identity, problem, "read")
        except Exception:
            log.exception("could not quarantine %s.%d", oid, idx)

    def quarantined_count(self) -> int:
        try:
            with os.scandir(self.quarantine_dir) as it:
                return sum(1 for e in it if audit.QUARANTINE_NAME.match(e.name))
        except FileNotFoundError:
            return 0

    def quarantine_items(self) -> list[dict]:
        try:
            names = sorted(os.listdir(self.quarantine_dir))
        except FileNotFoundError:
            return []
        items = []
        for name in names:
            m = audit.QUARANTINE_NAME.match(name)
            if not m:
                continue
            try:
                with open(self.quarantine_dir / (name + ".json")) as f:
                    item = json.load(f)
            except (FileNotFoundError, ValueError):      # a crash between the move and the sidecar
                item = {"object_id": m.group(1), "index": int(m.group(2)), "problem": None,
                        "detected_by": None, "detected_unix": int(m.group(3)) / 1000}
            item["file"] = name
            items.append(item)
        return items

    async def get_quarantine(self, request: web.Request) -> web.Response:
        return web.json_response({"items": await asyncio.to_thread(self.quarantine_items)})

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

    # -- audit -------------------------------------------------------------
    def _new_pass(self, rate_mb_per_s: float) -> AuditPass:
        # The start time in unix ms, at least one more than the last id: ids
        # grow within a process and (clock permitting) across restarts.
        now = time.time()
        self._last_pass_id = max(self._last_pass_id + 1, int(now * 1000))
        p = AuditPass(self._last_pass_id, rate_mb_per_s, now, time.monotonic())
        self.audit_pass = p
        return p

    async def _audit_file(self, p: AuditPass, oid: str, idx: int, limiter: TokenBucket,
                          chunk: int) -> None:
        path = self.path_for(oid, idx)
        try:
            check = await asyncio.to_thread(audit.open_check, path, idx, expected_object_id=oid,
                                            read_chunk=chunk)
        except FileNotFoundError:
            return                                # deleted (by GC) since the directory was listed
        try:
            while not check.done:
                try:
                    n = await asyncio.to_thread(check.advance)
                except OSError as exc:
                    if exc.errno != errno.EIO:
                        raise
                    check.problem, check.done = f"read error: {exc}", True   # a bad sector
                    break
                p.bytes_verified += n
                self.metrics.audit_bytes.inc(n)
                await limiter.take(n)
        finally:
            await asyncio.to_thread(check.close)
        # Opening and checking a file costs CPU whatever its size: a small
        # file is paced as if it were AUDIT_FILE_COST bytes.
        await limiter.take(max(0, AUDIT_FILE_COST - check.result.bytes))
        p.files_done += 1
        self.metrics.audit_fragments.inc()
        if check.problem:
            log.error("audit: fragment %s is bad: %s", path, check.problem)
            moved = await asyncio.to_thread(self.quarantine, oid, idx, check.identity, check.problem, "audit")
            if moved:
                p.corrupt_found += 1

    async def _run_pass(self, p: AuditPass) -> None:
        """One pass over fragments/ in sorted order, each file checked in a
        worker thread a chunk at a time, paced by a token bucket."""
        rate_bytes = p.rate_mb_per_s * 1e6
        # Smaller reads at low rates, so the pacing is smooth rather than bursty.
        chunk = int(min(1 << 20, max(64 << 10, rate_bytes / 8))) if rate_bytes > 0 else 1 << 20
        limiter = TokenBucket(rate_bytes, burst=chunk)
        try:
            p.files_total = await asyncio.to_thread(audit.count_fragments, self.frag_dir)
            for prefix in await asyncio.to_thread(audit.prefix_dirs, self.frag_dir):
                for oid, idx in await asyncio.to_thread(audit.fragments_in, self.frag_dir / prefix):
                    try:
                        await self._audit_file(p, oid, idx, limiter, chunk)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        log.exception("audit: could not check %s.%d; going on", oid, idx)
            seconds = time.monotonic() - p.started_mono
            self.last_pass = {"id": p.id, "files": p.files_done, "bytes": p.bytes_verified,
                              "corrupt": p.corrupt_found, "seconds": round(seconds, 3),
                              "finished_unix": round(time.time(), 3)}
            self.metrics.passes.inc()
            self.metrics.last_pass_seconds.set(seconds)
            log.log(logging.INFO if p.corrupt_found or p.requested else logging.DEBUG,
                    "audit pass %d: %d files, %.1f MB in %.1fs, %d corrupt", p.id, p.files_done,
                    p.bytes_verified / 1e6, seconds, p.corrupt_found)
        finally:
            p.running = False

    async def _audit_loop(self, first: AuditPass | None) -> None:
        """Run the requested pass (if any), then continuous passes at the
        configured rate for as long as that rate is above 0."""
        if first is not None:
            try:
                await self._run_pass(first)
            except asyncio.CancelledError:
                raise
            except Exception:       # not recorded as finished: GET /audit shows it (running: false)
                log.exception("audit pass %d failed", first.id)
        while self.audit_mb_per_s > 0:
            p = self._new_pass(self.audit_mb_per_s)
            try:
                await self._run_pass(p)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("audit pass %d failed", p.id)
            await asyncio.sleep(max(0.0, MIN_PASS_S - (time.monotonic() - p.started_mono)))

    async def start_audit(self, rate_mb_per_s: float | None) -> AuditPass:
        """Abandon the pass running (if any) and start a new full pass now."""
        async with self._audit_switch:
            await self._stop_audit_task()
            p = self._new_pass(self.audit_mb_per_s if rate_mb_per_s is None else rate_mb_per_s)
            p.requested = True
            self._audit_task = asyncio.create_task(self._audit_loop(p), name=f"audit-{self.node_id}")
            return p

    async def _stop_audit_task(self) -> None:
        task, self._audit_task = self._audit_task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])

    def audit_status(self) -> dict:
        p = self.audit_pass
        return {"running": bool(p and p.running), "pass": p.id if p else 0,
                "rate_mb_per_s": p.rate_mb_per_s if p else self.audit_mb_per_s,
                "continuous_mb_per_s": self.audit_mb_per_s,
                "files_done": p.files_done if p else 0, "files_total": p.files_total if p else 0,
                "bytes_verified": p.bytes_verified if p else 0, "corrupt_found": p.corrupt_found if p else 0,
                "started": round(p.started_unix, 3) if p else None, "last_pass": self.last_pass}

    async def post_audit(self, request: web.Request) -> web.Response:
        rate = None
        if request.query.get("rate", "") != "":
            try:
                rate = float(request.query["rate"])
            except ValueError:
                raise web.HTTPBadRequest(text="bad rate")
            if not math.isfinite(rate) or rate < 0:
                raise web.HTTPBadRequest(text="rate must be a number of MB/s >= 0")
        p = await self.start_audit(rate)
        return web.json_response({"pass": p.id})

    async def get_audit(self, request: web.Request) -> web.Response:
        return web.json_response(self.audit_status())

    async def _on_startup(self, app: web.Application) -> None:
        if self.audit_mb_per_s > 0:
            self._audit_task = asyncio.create_task(self._audit_loop(None), name=f"audit-{self.node_id}")

    async def _on_cleanup(self, app: web.Application) -> None:
        await self._stop_audit_task()
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
                                  "audit": self.audit_status()})

    async def metrics_page(self, request: web.Request) -> web.Response:
        """Prometheus text, unauthenticated like any scrape endpoint: counts
        only, never names."""
        body = await asyncio.to_thread(prometheus_client.generate_latest, self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST})

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "id": self.node_id})

    def app(self, secret: str) -> web.Application:
        self.secret = secret
        app = internal_app(secret, client_max_size=1 << 20, handler_args={"read_bufsize": STREAM_BUFSIZE},
                           registry=self.metrics.registry, sealed_paths=("/fragment/",))
        self.verifier = app[VERIFIER]
        app.router.add_put("/fragment/{oid}/{idx}", self.put_fragment)
        app.router.add_get("/fragment/{oid}/{idx}", self.get_fragment)
        app.router.add_delete("/fragment/{oid}/{idx}", self.delete_fragment)
        app.router.add_post("/fragments/read", self.read_fragments)
        app.router.add_post("/rebuild", self.rebuild)
        app.router.add_get("/inventory", self.inventory)
        app.router.add_post("/audit", self.post_audit)
        app.router.add_get("/audit", self.get_audit)
        app.router.add_get("/quarantine", self.get_quarantine)
        app.router.add_get("/status", self.status)
        app.router.add_get("/metrics", self.metrics_page)
        app.router.add_get("/health", self.health)
        app.on_startup.append(self._on_startup)
        app.on_cleanup.append(self._on_cleanup)
        return app


def main(argv: list[str] | None = None) -> None:
    from .. import config
    from ..rpc.logs import setup_logging
    p = argparse.ArgumentParser(prog="minis3 storage")
    config.add_arguments(p)
    p.add_argument("--id", required=True)
    a = p.parse_args(argv)
    topo = config.from_args(a)
    spec = topo.node(a.id)
    setup_logging(f"storage {spec.id}")
    config.warn_if_demo_secret(topo, log)
    tracing.configure(f"node-{spec.id}")
    node = StorageNode(spec.id, spec.az, spec.data_dir, audit_mb_per_s=topo.scrub.audit_mb_per_s,
                       peers={n.id: n.url for n in topo.nodes},
                       rpc_options={"source_host": spec.host, "delay": InterAZDelay.for_topology(topo, spec.az),
                                    "peer_names": topo.process_names()})
    log.info("storage node %s (%s) on %s, data in %s (%s, audit %s MB/s)", spec.id, spec.az, spec.url,
             node.root, use_fast_event_loop(), node.audit_mb_per_s)
    web.run_app(node.app(topo.cluster_secret), host=spec.host, port=spec.port,
                print=None, access_log=None, handle_signals=True)
