"""The block framing used for fragments, on the wire and on disk.

A fragment file is a header followed by one block per segment::

    header:  b"MS3F" | u8 version | u8 fragment index | u16 0 | u32 n | n bytes JSON | u64 xxh3_64(JSON)
    block:   u32 length | u64 xxh3_64(data) | data            (data = one pyeclib fragment)

The frontend sends exactly the blocks (same framing) in the PUT body, so the
node can verify every block's checksum as it arrives, before it fsyncs; the
node verifies them again on every read, and the frontend once more on receipt.
All full segments have the same fragment length, so block i of a file starts at
``header_len + i * (12 + len(block 0))``.
"""
from __future__ import annotations

import json
import struct
from collections import deque

import xxhash

MAGIC = b"MS3F"
VERSION = 1
BLOCK_HEAD = struct.Struct(">IQ")       # length, xxh3_64
FILE_HEAD = struct.Struct(">4sBBHI")     # magic, version, index, reserved, json length
MAX_BLOCK = 64 << 20
#: The header's JSON is a few hundred bytes; readers fetch the first 64 KiB of a
#: file to parse it, so a longer one can only be a corrupt length field.
MAX_HEADER_JSON = 64 * 1024 - FILE_HEAD.size - 8


class CorruptBlock(Exception):
    pass


def checksum(data: bytes) -> int:
    return xxhash.xxh3_64_intdigest(data)


def head(data: bytes) -> bytes:
    """A block's head: its length and xxh3."""
    return BLOCK_HEAD.pack(len(data), checksum(data))


def frame(data: bytes) -> bytes:
    """A whole block: head and data in one buffer (a copy of ``data``)."""
    return head(data) + data


def parse_block_head(head: bytes) -> tuple[int, int]:
    length, digest = BLOCK_HEAD.unpack(head)
    if length > MAX_BLOCK:
        raise CorruptBlock(f"block length {length} exceeds {MAX_BLOCK}")
    return length, digest


def fragment_info(object_id: str, index: int, node: str, created_ms: int) -> dict:
    """The JSON a fragment file's header carries."""
    return {"object_id": object_id, "index": index, "created_ms": created_ms, "node": node}


def expected_file_size(object_id: str, index: int, node: str, fragment_size: int,
                       last_fragment_size: int, segments: int) -> int:
    """The exact size of a whole fragment file as stored on ``node``: what a
    file cut short at a block boundary (which its own checksums cannot show)
    fails. ``created_ms`` has 13 digits from 2001 to 2286."""
    head = len(file_header(index, fragment_info(object_id, index, node, 10 ** 12)))
    return head + blocks_length(fragment_size, last_fragment_size, segments)


def blocks_length(fragment_size: int, last_fragment_size: int, segments: int) -> int:
    """The bytes of a fragment's blocks, framed (a file's after its header, a PUT body's before its seal)."""
    if segments == 0:
        return 0
    return (segments - 1) * (BLOCK_HEAD.size + fragment_size) + BLOCK_HEAD.size + last_fragment_size


def file_header(index: int, info: dict) -> bytes:
    body = json.dumps(info, sort_keys=True).encode()
    return FILE_HEAD.pack(MAGIC, VERSION, index, 0, len(body)) + body + struct.pack(">Q", checksum(body))


def parse_file_header(buf: bytes) -> tuple[int, dict, int]:
    """Return (fragment index, info, header length) or raise CorruptBlock."""
    if len(buf) < FILE_HEAD.size:
        raise CorruptBlock("short header")
    magic, version, index, reserved, n = FILE_HEAD.unpack_from(buf)
    if magic != MAGIC or version != VERSION:
        raise CorruptBlock("bad magic or version")
    # Every header field is checked, so that any one flipped byte is noticed:
    # the reserved field is always written as 0, and the JSON has its own xxh3.
    if reserved != 0:
        raise CorruptBlock("reserved header field is not zero")
    if n > MAX_HEADER_JSON:
        raise CorruptBlock(f"header length {n} exceeds {MAX_HEADER_JSON}")
    end = FILE_HEAD.size + n
    if len(buf) < end + 8:
        raise CorruptBlock("short header")
    body = buf[FILE_HEAD.size:end]
    (digest,) = struct.unpack_from(">Q", buf, end)
    if checksum(body) != digest:
        raise CorruptBlock("header checksum mismatch")
    return index, json.loads(body), end + 8


class BlockCutter:
    """Bytes that arrive in chunks of any size, taken out in pieces of given
    sizes (a block head, then its data): a piece inside one chunk is a slice
    of it (the chunk itself when it is exactly that), one across chunks is
    joined from views of them, so every byte is copied at most once."""

    def __init__(self) -> None:
        self._chunks: deque[bytes] = deque()
        self._offset = 0            # bytes of _chunks[0] already taken
        self._buffered = 0          # bytes not yet taken

    def __len__(self) -> int:
        return self._buffered

    def feed(self, chunk: bytes) -> None:
        if chunk:
            self._chunks.append(chunk)
            self._buffered += len(chunk)

    def take(self, n: int) -> bytes | None:
        """The next ``n`` bytes, or None (nothing taken) if fewer are buffered."""
        views = self.take_views(n)
        if views is None:
            return None
        if len(views) != 1:
            return b"".join(views)               # b"" for n == 0
        view = views[0]
        return view.obj if len(view) == len(view.obj) else bytes(view)

    def take_views(self, n: int) -> list[memoryview] | None:
        """The next ``n`` bytes as views of the chunks they arrived in (no
        copy), or None (nothing taken) if fewer are buffered."""
        if n > self._buffered:
            return None
        self._buffered -= n
        chunks, off, views = self._chunks, self._offset, []
        while n:
            view = memoryview(chunks[0])[off:]
            if len(view) <= n:
                views.append(view)
                chunks.popleft()
                n -= len(view)
                off = 0
            else:
                views.append(view[:n])
                off += n
                n = 0
        self._offset = off
        return views


def checksum_of_views(views: list[memoryview]) -> int:
    """:func:`checksum` of the bytes ``views`` hold, back to back, without joining them."""
    if len(views) == 1:
        return xxhash.xxh3_64_intdigest(views[0])
    h = xxhash.xxh3_64()
    for v in views:
        h.update(v)
    return h.intdigest()
