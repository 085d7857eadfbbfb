"""A storage node: one process, one data directory, fragment files in it.

HTTP API (every request HMAC-signed with the cluster secret, see rpc.auth):

    PUT    /fragment/{object_id}/{index}        body: framed blocks → 200 {"blocks", "bytes"}
    GET    /fragment/{object_id}/{index}?first=&last=   → framed blocks of those segments
    DELETE /fragment/{object_id}/{index}        → 204 (idempotent)
    GET    /status                              → {"id", "az", "fragments", "disk_bytes"}
    GET    /health                              → 200 (unsigned)

Durability: a fragment is written to tmp/, every block's xxh3 verified as it
arrives, fsynced, renamed into fragments/ and the directory fsynced *before* the
200. The frontend commits metadata only after every fragment got its 200, so a
committed object never points at bytes that a crash can take back.

Keys never reach this process: names come from the object id (32 hex digits,
checked) and the fragment index, so no request can name a file outside the
data directory.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import time
import uuid
from pathlib import Path

import aiofiles
import aiofiles.os
from aiohttp import web

from ..rpc.http import auth_middleware, use_fast_event_loop
from ..fsutil import DurableFile, fsync_dir
from . import blocks

#: Bytes a request body may buffer before aiohttp pauses the socket. Its
#: default (64 KiB) stalls a stream of 256 KiB blocks every few kilobytes.
STREAM_BUFSIZE = 1 << 20

log = logging.getLogger("minis3.storage")

#: Verified blocks are written to the temp file in batches of about this size.
WRITE_BATCH = 1 << 20


def _write_some(out: DurableFile | None, tmp: Path, pieces: list[bytes]) -> DurableFile:
    f = out or DurableFile(tmp)
    try:
        f.write(*pieces)
    except BaseException:
        f.close()
        raise
    return f


#: Blocks are read from disk and verified in batches of about this size.
READ_BATCH = 1 << 20


def _open_at_segment(path: Path, idx: int, first: int):
    """Open a fragment file positioned at block `first` (checks its header)."""
    f = open(path, "rb")
    try:
        index, _info, hlen = blocks.parse_file_header(f.read(64 * 1024))
        if index != idx:
            raise blocks.CorruptBlock("fragment index in header differs from its name")
        f.seek(hlen)
        bh = f.read(blocks.BLOCK_HEAD.size)
        if len(bh) == blocks.BLOCK_HEAD.size:          # else: zero segments, or EOF comes next
            length0, _ = blocks.parse_block_head(bh)
            f.seek(hlen + first * (blocks.BLOCK_HEAD.size + length0))
        return f
    except BaseException:
        f.close()
        raise


def _read_verified(f, seg: int, last: int, limit: int) -> tuple[list[tuple[bytes, bytes]], str | None]:
    """Blocks from the file's position, each checked against its xxh3, until
    `limit` bytes, block `last`, or the end. Returns the good blocks and, if
    one was bad, what was wrong with it (reading stops there)."""
    got, size = [], 0
    while (last < 0 or seg <= last) and size < limit:
        bh = f.read(blocks.BLOCK_HEAD.size)
        if not bh:
            break
        try:
            if len(bh) != blocks.BLOCK_HEAD.size:
                raise blocks.CorruptBlock("truncated block header")
            length, digest = blocks.parse_block_head(bh)
            data = f.read(length)
            if len(data) != length or blocks.checksum(data) != digest:
                raise blocks.CorruptBlock(f"segment {seg} checksum mismatch")
        except blocks.CorruptBlock as exc:
            return got, str(exc)
        got.append((bh, data))
        size += length
        seg += 1
    return got, None


def _land(out: DurableFile | None, tmp: Path, pieces: list[bytes], final: Path) -> None:
    """The last pieces, then durable: fsync the file, rename it into place,
    fsync the directory (so the new name survives a crash too)."""
    _write_some(out, tmp, pieces).sync_and_close()
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)
    fsync_dir(final.parent)
OBJECT_ID = re.compile(r"^[0-9a-f]{32}$")


class StorageNode:
    def __init__(self, node_id: str, az: str, data_dir: Path):
        self.node_id, self.az = node_id, az
        self.root = Path(data_dir).resolve()
        self.frag_dir = self.root / "fragments"
        self.tmp_dir = self.root / "tmp"
        for d in (self.frag_dir, self.tmp_dir):
            d.mkdir(parents=True, exist_ok=True)
        # A tmp file left by a crash was never acknowledged: drop it.
        for p in self.tmp_dir.iterdir():
            p.unlink(missing_ok=True)
        self.stats = {"fragments_written": 0, "fragments_read": 0, "bytes_written": 0,
                      "bytes_read": 0, "corrupt_blocks": 0}

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
        info = {"object_id": oid, "index": idx, "created_ms": int(time.time() * 1000),
                "node": self.node_id}
        tmp = self.tmp_dir / f"{oid}.{idx}.{uuid.uuid4().hex[:8]}"
        n_blocks = n_bytes = 0
        reader = request.content
        final = self.path_for(oid, idx)
        out: DurableFile | None = None
        # Verified blocks wait here until a buffer's worth is ready, then go to
        # disk in one thread hop; a small fragment is written, fsynced, renamed
        # and its directory fsynced in a single hop at the end.
        waiting, waiting_bytes = [blocks.file_header(idx, info)], 0
        try:
            while True:
                try:
                    head = await reader.readexactly(blocks.BLOCK_HEAD.size)
                except asyncio.IncompleteReadError as e:
                    if e.partial:
                        raise blocks.CorruptBlock("truncated block header")
                    break
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
                    out = await asyncio.to_thread(_write_some, out, tmp, waiting)
                    waiting, waiting_bytes = [], 0
            await asyncio.to_thread(_land, out, tmp, waiting, final)
        except (blocks.CorruptBlock, asyncio.IncompleteReadError) as exc:
            if out is not None:
                await asyncio.to_thread(out.close)
            await asyncio.to_thread(tmp.unlink, True)
            log.warning("refused fragment %s.%d: %s", oid, idx, exc)
            return web.json_response({"code": "BadDigest", "message": str(exc)}, status=400)
        except BaseException:
            if out is not None:
                await asyncio.to_thread(out.close)
            await asyncio.to_thread(tmp.unlink, True)
            raise
        self.stats["fragments_written"] += 1
        self.stats["bytes_written"] += n_bytes
        return web.json_response({"blocks": n_blocks, "bytes": n_bytes})

    async def get_fragment(self, request: web.Request) -> web.StreamResponse:
        oid, idx = self.parse_name(request)
        path = self.path_for(oid, idx)
        try:
            first = int(request.query.get("first", 0))
            last = int(request.query.get("last", -1))
        except ValueError:
            raise web.HTTPBadRequest(text="bad segment bounds")
        try:
            f = await asyncio.to_thread(_open_at_segment, path, idx, first)
        except FileNotFoundError:
            return web.json_response({"code": "NoSuchFragment"}, status=404)
        except blocks.CorruptBlock as exc:
            self.stats["corrupt_blocks"] += 1
            log.error("corrupt fragment %s: %s", path, exc)
            return web.json_response({"code": "CorruptFragment", "message": str(exc)}, status=409)
        resp = web.StreamResponse()
        try:
            await resp.prepare(request)
            seg = first
            while last < 0 or seg <= last:
                # A batch of blocks, read and verified in one thread hop.
                got, problem = await asyncio.to_thread(_read_verified, f, seg, last, READ_BATCH)
                for bh, data in got:
                    await resp.write(bh)
                    await resp.write(data)
                    self.stats["bytes_read"] += len(data)
                    seg += 1
                if problem:
                    # Never serve a bad block: cut the response short so the
                    # reader notices and decodes from other fragments.
                    self.stats["corrupt_blocks"] += 1
                    log.error("corrupt fragment %s: %s", path, problem)
                    if request.transport is not None:
                        request.transport.close()
                    return resp
                if not got:
                    break
            await resp.write_eof()
            self.stats["fragments_read"] += 1
            return resp
        finally:
            await asyncio.to_thread(f.close)

    async def delete_fragment(self, request: web.Request) -> web.Response:
        oid, idx = self.parse_name(request)
        path = self.path_for(oid, idx)
        try:
            await aiofiles.os.remove(path)
        except FileNotFoundError:
            pass
        return web.Response(status=204)

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
                                  "fragments": count, "disk_bytes": size, "stats": self.stats})

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "id": self.node_id})

    def app(self, secret: str) -> web.Application:
        app = web.Application(middlewares=[auth_middleware(secret)], client_max_size=1 << 20,
                              handler_args={"read_bufsize": STREAM_BUFSIZE})
        app.router.add_put("/fragment/{oid}/{idx}", self.put_fragment)
        app.router.add_get("/fragment/{oid}/{idx}", self.get_fragment)
        app.router.add_delete("/fragment/{oid}/{idx}", self.delete_fragment)
        app.router.add_get("/status", self.status)
        app.router.add_get("/health", self.health)
        return app


def main(argv: list[str] | None = None) -> None:
    from ..cluster import topology as topo_mod
    from ..cluster.logs import setup_logging
    p = argparse.ArgumentParser(prog="minis3 storage")
    p.add_argument("--topology")
    p.add_argument("--data-dir")
    p.add_argument("--id", required=True)
    a = p.parse_args(argv)
    topo = topo_mod.load(a.topology, data_dir=a.data_dir)
    spec = topo.node(a.id)
    setup_logging(f"storage {spec.id}")
    node = StorageNode(spec.id, spec.az, spec.data_dir)
    log.info("storage node %s (%s) on %s, data in %s (%s)", spec.id, spec.az, spec.url, node.root,
             use_fast_event_loop())
    web.run_app(node.app(topo.cluster_secret), host=spec.host, port=spec.port,
                print=None, access_log=None, handle_signals=True)
