"""The frontend's client of storage nodes: stream a fragment up, stream one down."""
from __future__ import annotations

import asyncio
from typing import AsyncIterator

import aiohttp

from . import blocks


class FragmentError(Exception):
    """A fragment could not be written or read (node down, refused, corrupt).
    ``unreachable`` says the node did not answer at all (as opposed to
    answering with an error or a bad block)."""

    def __init__(self, message: str, *, node: str | None = None, unreachable: bool = False):
        super().__init__(message)
        self.node, self.unreachable = node, unreachable


class StorageClient:
    def __init__(self, session: aiohttp.ClientSession, urls: dict[str, str]):
        self.session, self.urls = session, urls     # node id → base url

    async def put(self, node_id: str, object_id: str, index: int, body: AsyncIterator[bytes]) -> dict:
        """Stream framed blocks to a node; returns once the node has fsynced them."""
        url = f"{self.urls[node_id]}/fragment/{object_id}/{index}"
        try:
            async with self.session.put(url, data=body) as r:
                if r.status != 200:
                    raise FragmentError(f"node {node_id} answered {r.status}: {(await r.text())[:200]}")
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
                for seg in range(first, last + 1):
                    try:
                        head = await r.content.readexactly(blocks.BLOCK_HEAD.size)
                        length, digest = blocks.parse_block_head(head)
                        data = await r.content.readexactly(length)
                    except (asyncio.IncompleteReadError, blocks.CorruptBlock) as exc:
                        raise FragmentError(f"node {node_id}: fragment {index} cut short at segment {seg}") from exc
                    # End-to-end: the frontend checks every block itself too.
                    if blocks.checksum(data) != digest:
                        raise FragmentError(f"node {node_id}: fragment {index} segment {seg} checksum mismatch")
                    yield data
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise FragmentError(f"node {node_id}: {exc.__class__.__name__}: {exc}", node=node_id,
                                unreachable=True) from exc

    async def delete(self, node_id: str, object_id: str, index: int, timeout: float = 5.0) -> None:
        """Best effort (garbage collection catches what this misses)."""
        url = f"{self.urls[node_id]}/fragment/{object_id}/{index}"
        try:
            async with self.session.delete(url, timeout=aiohttp.ClientTimeout(total=timeout)) as r:
                await r.read()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            pass

    async def status(self, node_id: str) -> dict:
        async with self.session.get(f"{self.urls[node_id]}/status") as r:
            return await r.json()
