"""One LIST page: walk the sorted index from a marker, roll keys up into
common prefixes, stop after max_keys. Pure: it is given a ``scan`` function
(start, inclusive) → iterator of (index key, record) in key order.

Cost is proportional to the page, not the bucket: it starts with a seek, skips
a whole common prefix with one seek, and stops after ``max_keys`` results (or
``max_scan`` tombstones, returning a truncated page with a marker to go on).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator

from ..core.names import MAX_KEY_BYTES

Scan = Callable[[str, bool], Iterator[tuple[str, dict]]]


_LAST_CHAR = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)
#: Greater than every key: a key can't hold 257 U+10FFFF (4 bytes each).
_BEYOND_KEYS = chr(_LAST_CHAR) * (MAX_KEY_BYTES // 4 + 1)


def after_prefix(p: str) -> str:
    """A string greater than every key that starts with ``p``, and not greater
    than any other key greater than ``p``: the end of ``p``'s key range.

    Increment the last character that can be incremented: trailing U+10FFFF
    (the last code point) are dropped first, and U+D7FF goes to U+E000
    (surrogates are never in a key, and can't be encoded to send in a scan).
    A ``p`` of U+10FFFF only has no such string; keys are at most
    MAX_KEY_BYTES long, so a run of U+10FFFF longer than any key will do."""
    q = p.rstrip(chr(_LAST_CHAR))
    if not q:
        return _BEYOND_KEYS
    nxt = ord(q[-1]) + 1
    if nxt in _SURROGATES:
        nxt = _SURROGATES.stop
    return q[:-1] + chr(nxt)


@dataclass
class Page:
    entries: list[tuple[str, dict]] = field(default_factory=list)   # (key within bucket, record)
    prefixes: list[str] = field(default_factory=list)
    truncated: bool = False
    next_marker: str | None = None      # last key or common prefix returned (or scanned)


def list_page(scan: Scan, bucket: str, prefix: str = "", delimiter: str = "", marker: str = "",
              max_keys: int = 1000, max_scan: int = 10_000) -> Page:
    page = Page()
    base = bucket + "/"
    if max_keys <= 0:
        return page
    start, inclusive = base + prefix, True
    if marker and marker >= prefix:
        start, inclusive = base + marker, False
        if delimiter:
            # Resuming after a common prefix (or a key inside one): skip it whole.
            i = marker.find(delimiter, len(prefix))
            if marker.startswith(prefix) and i >= 0:
                start, inclusive = base + after_prefix(marker[:i + len(delimiter)]), True
    scanned = 0
    count = 0
    while True:
        restart = None
        for ikey, rec in scan(start, inclusive):
            if not ikey.startswith(base + prefix):
                return page
            key = ikey[len(base):]
            scanned += 1
            if rec.get("deleted"):
                if scanned >= max_scan:
                    page.truncated, page.next_marker = True, key
                    return page
                continue
            if count >= max_keys:
                page.truncated = True
                return page
            if delimiter:
                i = key.find(delimiter, len(prefix))
                if i >= 0:
                    cp = key[:i + len(delimiter)]
                    page.prefixes.append(cp)
                    page.next_marker = cp
                    count += 1
                    restart = base + after_prefix(cp)
                    break
            page.entries.append((key, rec))
            page.next_marker = key
            count += 1
        else:
            return page
        start, inclusive = restart, True
