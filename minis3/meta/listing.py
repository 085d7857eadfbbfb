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

Scan = Callable[[str, bool], Iterator[tuple[str, dict]]]


def after_prefix(p: str) -> str:
    """The smallest string greater than every string that starts with ``p``."""
    return p[:-1] + chr(ord(p[-1]) + 1)


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
