"""Many fragments in one response: the body of ``POST /fragments/read``, with no I/O.

A rebuild reads k fragments of every object it repairs. One request per
fragment costs more CPU than the bytes it moves (two HTTP requests' worth of
work for 262 KB), so a node serves a list of fragments in one response. The
request is JSON, ``{"fragments": [[object id, index], [object id, index,
first, last], …]}`` (segments first..last, -1 for the end; the whole fragment
by default). The response answers every item in the order asked::

    item head:  u8 status | u64 n            (status: OK, MISSING or CORRUPT)
    n bytes:    the item's blocks, framed as on disk (storage/blocks.py)
    item end:   u8 status                    (OK, or CORRUPT: see below)

A missing fragment, or one whose header is bad, is answered in the item's head
(n = 0), not with an error status for the whole response: the other items are
still good. The head's n is the length the file's size promises, so the whole
response has a Content-Length. If a block turns out bad while it is being sent,
the node never sends it: the rest of the item's n bytes are zeros, its end
says CORRUPT, and the node quarantines the file (as a single fragment read
does). A reader checks every block's xxh3 again on receipt.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from . import blocks

OK, MISSING, CORRUPT = 0, 1, 2
CODES = {MISSING: "NoSuchFragment", CORRUPT: "CorruptFragment"}
ITEM_HEAD = struct.Struct(">BQ")
ITEM_END = struct.Struct(">B")
MAX_ITEMS = 256             # fragments one request may ask for (each is an open file while it is answered)
OBJECT_ID = re.compile(r"^[0-9a-f]{32}$")


class BadBatchRequest(ValueError):
    """A ``POST /fragments/read`` body that does not name fragments."""


@dataclass(frozen=True)
class Wanted:
    """One item of a request: segments first..last (-1: to the end) of a fragment."""
    object_id: str
    index: int
    first: int = 0
    last: int = -1

    def as_list(self) -> list:
        return [self.object_id, self.index] + ([self.first, self.last] if (self.first, self.last) != (0, -1)
                                               else [])


def parse_request(doc) -> list[Wanted]:
    """The items of a request body (parsed JSON), each checked (BadBatchRequest)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("fragments"), list):
        raise BadBatchRequest('the body must be {"fragments": [[object id, index], ...]}')
    items = doc["fragments"]
    if len(items) > MAX_ITEMS:
        raise BadBatchRequest(f"at most {MAX_ITEMS} fragments a request")
    out = []
    for it in items:
        if not isinstance(it, list) or len(it) not in (2, 4):
            raise BadBatchRequest("each item is [object id, index] or [object id, index, first, last]")
        oid = it[0]
        try:
            nums = [int(x) for x in it[1:]]
        except (TypeError, ValueError):
            raise BadBatchRequest("index and segments must be integers") from None
        if not isinstance(oid, str) or not OBJECT_ID.match(oid) or not 0 <= nums[0] < 256:
            raise BadBatchRequest("bad object id or index")
        first, last = (nums[1], nums[2]) if len(nums) == 3 else (0, -1)
        if first < 0 or last < -1:
            raise BadBatchRequest("bad segment bounds")
        out.append(Wanted(oid, nums[0], first, last))
    return out


def item_head(status: int, n: int) -> bytes:
    return ITEM_HEAD.pack(status, n)


def item_end(status: int) -> bytes:
    return ITEM_END.pack(status)


@dataclass
class Item:
    """One answered item: its fragment data a segment each (``data``), or why not (``code``, ``message``)."""
    position: int
    data: list[bytes] | None = None
    code: str | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.data is not None


class BatchParser:
    """The response body, fed in chunks of any size (``feed``); hands back
    each item once it is complete (``items``). Every block's xxh3 is checked
    here: an item with a bad block (or marked CORRUPT by the node) comes back
    with code CorruptFragment and no data. An item head that makes no sense
    raises blocks.CorruptBlock (nothing after it can be trusted)."""

    def __init__(self, expected_items: int):
        self.expected = expected_items
        self.cut = blocks.BlockCutter()
        self.position = 0
        self._status: int | None = None     # the current item's head status (None: head not read)
        self._left = 0                      # bytes of its blocks still to come
        self._data: list[bytes] = []
        self._bad: str | None = None        # the first bad block of the current item
        self._block: tuple[int, int] | None = None   # the head of a block whose data is still to come
        self._seg = 0
        self._ready: list[Item] = []

    @property
    def done(self) -> bool:
        return self.position >= self.expected

    def feed(self, chunk: bytes) -> list[Item]:
        self.cut.feed(chunk)
        self._advance()
        ready, self._ready = self._ready, []
        return ready

    def _advance(self) -> None:
        cut = self.cut
        while not self.done:
            if self._status is None:
                head = cut.take(ITEM_HEAD.size)
                if head is None:
                    return
                self._status, self._left = ITEM_HEAD.unpack(head)
                self._data, self._bad, self._seg = [], None, 0
                if self._status not in (OK, MISSING, CORRUPT) or (self._status != OK and self._left):
                    raise blocks.CorruptBlock(f"bad item head for item {self.position}")
            while self._left > 0:
                if self._bad is not None:
                    # The rest of a bad item: skipped (zeros from the node).
                    n = min(self._left, len(cut))
                    if n == 0:
                        return
                    cut.take(n)
                    self._left -= n
                    continue
                if self._block is None:
                    if self._left < blocks.BLOCK_HEAD.size:
                        self._bad = f"segment {self._seg}: a block head cut by the item's end"
                        continue
                    head = cut.take(blocks.BLOCK_HEAD.size)
                    if head is None:
                        return
                    length, digest = blocks.BLOCK_HEAD.unpack(head)
                    if length > blocks.MAX_BLOCK or length > self._left - blocks.BLOCK_HEAD.size:
                        self._left -= blocks.BLOCK_HEAD.size
                        self._bad = f"segment {self._seg}: block length {length} past the item's end"
                        continue
                    self._block = length, digest
                length, digest = self._block
                data = cut.take(length)
                if data is None:
                    return
                self._block = None
                self._left -= blocks.BLOCK_HEAD.size + length
                if blocks.checksum(data) != digest:
                    self._bad = f"segment {self._seg} checksum mismatch on receipt"
                    continue
                self._data.append(data)
                self._seg += 1
            end = cut.take(ITEM_END.size)
            if end is None:
                return
            (end_status,) = ITEM_END.unpack(end)
            status = self._status if self._status != OK else end_status
            if status == OK and self._bad is None:
                item = Item(self.position, self._data)
            elif status == MISSING:
                item = Item(self.position, code=CODES[MISSING], message="no such fragment")
            else:
                item = Item(self.position, code=CODES[CORRUPT],
                            message=self._bad or "the node found a bad block and quarantined the fragment")
            self._ready.append(item)
            self.position += 1
            self._status = None
