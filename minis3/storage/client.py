"""The client of storage nodes: stream a fragment up, stream one down, read
many at once, ask a node to rebuild fragments onto itself."""
from __future__ import annotations

import asyncio
from typing import AsyncIterator

import aiohttp
import aiohttp.payload

from ..rpc import auth
from ..rpc.http import json_body
from . import batchread, blocks
from .blocks import BlockCutter
from .audit import cursor_before


#: A node whose disk failed a write (its 503 ``DiskError``) counts as *failing*
#: for this long after the last such failure: it says so on /health
#: (storage/server.py), and frontends send it no new fragments meanwhile
#: (frontend/node_health.py, also between a 503 and its next probe).
FAILING_FOR_S = 10.0


class FragmentError(Exception):
    """A fragment could not be written or read (node down, refused, corrupt).
    ``unreachable`` says the node did not answer at all (as opposed to
    answering with an error or a bad block); ``full`` that it refused a
    write because its disk is full (507), ``failing`` because its disk failed
    the write (503 DiskError)."""

    def __init__(self, message: str, *, node: str | None = None, unreachable: bool = False,
                 full: bool = False, failing: bool = False):
        super().__init__(message)
        self.node, self.unreachable, self.full, self.failing = node, unreachable, full, failing


async def feed(content: aiohttp.StreamReader, cut: BlockCutter) -> None:
    """The next chunk of a response body into ``cut``; IncompleteReadError at
    the body's end (the node stopped early)."""
    while True:
        chunk, end_of_http_chunk = await content.readchunk()
        if chunk:
            cut.feed(chunk)
            return
        if not end_of_http_chunk:          # (b"", True) only marks a chunk's end
            raise asyncio.IncompleteReadError(b"", None)


_SEALED_HEADERS = {auth.BODY_HEADER: auth.SEALED}


def seal_blocks(buf: bytes | memoryview, seal: auth.Seal) -> None:
    """Add the head of every block in ``buf`` (whole blocks, back to back) to ``seal``."""
    pos, size, n = 0, len(buf), blocks.BLOCK_HEAD.size
    while pos < size:
        head = bytes(buf[pos:pos + n])
        length, _ = blocks.parse_block_head(head)
        seal.add(head)
        pos += n + length
    if pos != size:
        raise ValueError("a fragment body must hold whole blocks")


async def sealed_stream(body: AsyncIterator[bytes], seal: auth.Seal) -> AsyncIterator[bytes]:
    """``body``'s chunks (whole blocks each), then the seal."""
    async for chunk in body:
        seal_blocks(chunk, seal)
        yield chunk
    yield seal.frame()


class SealedStream(aiohttp.payload.Payload):
    """Blocks from an async iterator of (head, data) pairs whose total
    ``length`` is known before the first is made: sent with a Content-Length,
    each block as one ``writelines`` of its head and data (one writev with
    uvloop: neither joined nor framed into a new buffer), then the seal.
    Chunked framing would join every block with its size line, and framing
    each block as one bytes object copies its data: a copy of each byte
    either way. A body that turns out longer or shorter than ``length``
    fails the write before the seal goes out: the node sees a cut body and
    keeps nothing."""

    def __init__(self, body: AsyncIterator[tuple[bytes, bytes]], length: int, seal: auth.Seal):
        super().__init__(body, content_type="application/octet-stream")
        self._seal, self._length = seal, length
        self._size = length + auth.SEAL.size

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        raise TypeError("a fragment body is binary")

    async def as_bytes(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        raise TypeError("a fragment stream is sent once, as it is made")

    async def write(self, writer) -> None:
        # The request's head goes first on its own (aiohttp holds it back to
        # send with the first write, which would join it to the first block).
        writer.send_headers()
        sent = 0
        async for head, data in self._value:
            sent += len(head) + len(data)
            if sent > self._length:
                raise ValueError(f"fragment body longer than its {self._length} bytes")
            blocks.parse_block_head(head)
            self._seal.add(head)
            transport = writer.transport
            if transport is None or transport.is_closing():
                raise ConnectionResetError("the node's connection closed mid-fragment")
            transport.writelines((head, data))
            writer.output_size += len(head) + len(data)       # (aiohttp's count of what it sent)
            await writer.drain()                               # waits only while the transport is paused
        if sent != self._length:
            raise ValueError(f"fragment body of {sent} bytes, not {self._length}")
        await writer.write(self._seal.frame())

    async def write_with_length(self, writer, content_length: int | None) -> None:
        await self.write(writer)


class SealedBytes(aiohttp.payload.Payload):
    """Framed blocks known in full, sent with a Content-Length, then the seal
    (whose MAC can only be computed once the request is signed)."""

    def __init__(self, value: bytes, seal: auth.Seal):
        super().__init__(value, content_type="application/octet-stream")
        self._seal = seal
        self._size = len(value) + auth.SEAL.size

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        raise TypeError("a fragment body is binary")

    async def as_bytes(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return self._value + self._tail()

    def _tail(self) -> bytes:
        seal = self._seal.copy()          # (a retried request writes the body again)
        seal_blocks(self._value, seal)
        return seal.frame()

    async def write(self, writer) -> None:
        # One write (with the request's head, which aiohttp holds back to send
        # with the body's first write): the copy costs less than a second
        # send and segment (measured on 64 KiB PUTs).
        await writer.write(self._value + self._tail())

    async def write_with_length(self, writer, content_length: int | None) -> None:
        await self.write(writer)


class StorageClient:
    def __init__(self, session: aiohttp.ClientSession, urls: dict[str, str]):
        self.session, self.urls = session, urls     # node id → base url

    async def put(self, node_id: str, object_id: str, index: int, body: AsyncIterator[bytes] | bytes,
                  length: int | None = None) -> dict:
        """Send framed blocks to a node (``body``: bytes, or an async iterator
        of them, each holding whole blocks), sealed (rpc/auth.py: the node
        makes the fragment visible only if the seal matches); returns once the
        node has fsynced them. ``length``: an iterator's total bytes, when
        known in advance (sent with a Content-Length instead of chunked)."""
        url = f"{self.urls[node_id]}/fragment/{object_id}/{index}"
        seal = auth.Seal()                 # armed when the request is signed
        if isinstance(body, (bytes, bytearray)):
            data = SealedBytes(body, seal)
        elif length is not None:
            data = SealedStream(body, length, seal)
        else:
            data = sealed_stream(body, seal)
        try:
            async with self.session.put(url, data=data, headers=_SEALED_HEADERS, trace_request_ctx=seal) as r:
                if r.status != 200:
                    text = (await r.text())[:200]
                    raise FragmentError(f"node {node_id} answered {r.status}: {text}", node=node_id,
                                        full=r.status == 507, failing=r.status == 503 and "DiskError" in text)
                return await r.json()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise FragmentError(f"node {node_id}: {exc.__class__.__name__}: {exc}", node=node_id,
                                unreachable=True) from exc

    async def get(self, node_id: str, object_id: str, index: int, first: int, last: int
                  ) -> AsyncIterator[bytes]:
        """Yield the fragment data of segments first..last, each block verified."""
        url = f"{self.urls[node_id]}/fragment/{object_id}/{index}?first={first}&last={last}"
        try:
            async with self.session.get(url) as r:
                if r.status != 200:
                    raise FragmentError(f"node {node_id} answered {r.status}")
                # The body's chunks as they arrive (readchunk hands each one
                # over as it is, where readexactly joins them, then joins its
                # reads again), cut into blocks with one copy each.
                content, cut = r.content, BlockCutter()
                for seg in range(first, last + 1):
                    try:
                        while (head := cut.take(blocks.BLOCK_HEAD.size)) is None:
                            await feed(content, cut)
                        length, digest = blocks.parse_block_head(head)
                        while (data := cut.take(length)) is None:
                            await feed(content, cut)
                    except (asyncio.IncompleteReadError, blocks.CorruptBlock, aiohttp.ClientPayloadError) as exc:
                        # The node answered, then stopped: it found a bad block and
                        # quarantined the fragment (or died: its health probe says so).
                        raise FragmentError(f"node {node_id}: fragment {index} cut short at segment {seg}") from exc
                    # End-to-end: the frontend checks every block itself too.
                    if blocks.checksum(data) != digest:
                        raise FragmentError(f"node {node_id}: fragment {index} segment {seg} checksum mismatch")
                    yield data
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise FragmentError(f"node {node_id}: {exc.__class__.__name__}: {exc}", node=node_id,
                                unreachable=True) from exc

    async def read_many(self, node_id: str, wanted: list[batchread.Wanted]) -> list[batchread.Item]:
        """Many fragments of one node in one request (``POST /fragments/read``),
        answered in the order asked: each item its blocks' data (every block
        checked again here) or why not (NoSuchFragment, CorruptFragment).
        Raises FragmentError if the node did not answer or its answer broke off."""
        items: list[batchread.Item] = []
        for start in range(0, len(wanted), batchread.MAX_ITEMS):
            part = wanted[start:start + batchread.MAX_ITEMS]
            got = await self._read_many(node_id, part)
            items += [batchread.Item(start + it.position, it.data, it.code, it.message) for it in got]
        return items

    async def _read_many(self, node_id: str, wanted: list[batchread.Wanted]) -> list[batchread.Item]:
        url = f"{self.urls[node_id]}/fragments/read"
        parser = batchread.BatchParser(len(wanted))
        items: list[batchread.Item] = []
        try:
            async with self.session.post(url, **json_body({"fragments": [w.as_list() for w in wanted]})) as r:
                if r.status != 200:
                    raise FragmentError(f"node {node_id} answered {r.status} to a batch read: "
                                        f"{(await r.text())[:200]}", node=node_id)
                while not parser.done:
                    chunk, end_of_http_chunk = await r.content.readchunk()
                    if not chunk and not end_of_http_chunk:
                        raise FragmentError(f"node {node_id}: batch read cut short at item {parser.position}",
                                            node=node_id)
                    items += parser.feed(chunk)
        except blocks.CorruptBlock as exc:
            raise FragmentError(f"node {node_id}: batch read broken at item {parser.position}: {exc}",
                                node=node_id) from exc
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise FragmentError(f"node {node_id}: {exc.__class__.__name__}: {exc}", node=node_id,
                                unreachable=True) from exc
        return items

    async def rebuild(self, node_id: str, jobs: list[dict], timeout: float = 300.0) -> list[dict]:
        """Ask a node to rebuild fragments onto itself (``POST /rebuild``,
        storage/rebuild.py): one result a job, in order ({"ok", "written",
        "read"} or {"ok": false, "error"}), once every fragment it wrote is
        durable. Raises FragmentError if the node did not answer or refused
        the whole batch."""
        url = f"{self.urls[node_id]}/rebuild"
        try:
            async with self.session.post(url, **json_body({"jobs": jobs}),
                                         timeout=aiohttp.ClientTimeout(total=timeout)) as r:
                if r.status != 200:
                    raise FragmentError(f"node {node_id} answered {r.status} to a rebuild: "
                                        f"{(await r.text())[:200]}", node=node_id)
                results = (await r.json())["results"]
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise FragmentError(f"node {node_id}: {exc.__class__.__name__}: {exc}", node=node_id,
                                unreachable=True) from exc
        if len(results) != len(jobs):
            raise FragmentError(f"node {node_id} answered {len(results)} results for {len(jobs)} jobs", node=node_id)
        return results

    async def delete(self, node_id: str, object_id: str, index: int, timeout: float = 5.0, *,
                     min_age_s: float | None = None) -> bool:
        """Best effort (garbage collection catches what this misses). Returns
        True if the node answered that the fragment is gone (removed now, or
        absent already); False if it refused or could not be asked. With
        ``min_age_s`` the node keeps a fragment younger than that (by its
        file's mtime) and answers 409 TooYoung: a GC pass must never remove a
        fragment that a write in progress may still commit."""
        url = f"{self.urls[node_id]}/fragment/{object_id}/{index}"
        if min_age_s is not None:
            url += f"?min_age_s={float(min_age_s)!r}"
        try:
            async with self.session.delete(url, timeout=aiohttp.ClientTimeout(total=timeout)) as r:
                await r.read()
                return r.status == 204
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            return False

    async def status(self, node_id: str) -> dict:
        async with self.session.get(f"{self.urls[node_id]}/status") as r:
            return await r.json()

    async def _get_json(self, node_id: str, path: str, method: str = "GET") -> dict:
        async with self.session.request(method, f"{self.urls[node_id]}{path}") as r:
            if r.status != 200:
                raise FragmentError(f"node {node_id} answered {r.status} to {method} {path}: "
                                    f"{(await r.text())[:200]}", node=node_id)
            return await r.json()

    async def inventory_pages(self, node_id: str, page_size: int = 10000) -> AsyncIterator[list[list]]:
        """A node's inventory one page at a time: lists of ``[oid, idx,
        size_bytes, age_s]``, sorted by (oid, idx) across pages."""
        after = None
        while True:
            q = f"/inventory?limit={page_size}" + (f"&after={after}" if after else "")
            page = await self._get_json(node_id, q)
            yield page["fragments"]
            after = page["next"]
            if not after:
                return

    async def inventory(self, node_id: str, page_size: int = 10000) -> list[list]:
        """Every fragment on a node, ``[oid, idx, size_bytes, age_s]`` sorted
        by (oid, idx), all pages fetched. Ages are by the node's clock at the
        moment it listed each page."""
        rows: list[list] = []
        async for page in self.inventory_pages(node_id, page_size):
            rows += page
        return rows

    async def fragments_of(self, node_id: str, object_id: str, width: int) -> dict[int, int]:
        """The fragments of one object a node holds, {index: file size}: one
        inventory request of at most ``width`` rows, from just before the
        object's first fragment. Raises FragmentError (the node refused) or an
        aiohttp/OS error (it did not answer)."""
        after = cursor_before(object_id)
        page = await self._get_json(node_id, f"/inventory?limit={width}" + (f"&after={after}" if after else ""))
        return {int(idx): int(size) for oid, idx, size, _ in page["fragments"] if oid == object_id}

    async def quarantine(self, node_id: str) -> list[dict]:
        """The fragments a node moved aside as bad: {"object_id", "index",
        "problem", "detected_by", "detected_unix", "file"} each."""
        return (await self._get_json(node_id, "/quarantine"))["items"]

    async def start_audit(self, node_id: str, rate_mb_per_s: float | None = None) -> dict:
        """Start a full audit pass on a node now (rate 0: unlimited; None: the
        node's configured rate). Returns ``{"pass": id}``: the pass is done once
        ``audit_status(node)["last_pass"]["id"] >= id`` (see storage/audit.py)."""
        q = "/audit" if rate_mb_per_s is None else f"/audit?rate={float(rate_mb_per_s)!r}"
        return await self._get_json(node_id, q, method="POST")

    async def audit_status(self, node_id: str) -> dict:
        return await self._get_json(node_id, "/audit")
