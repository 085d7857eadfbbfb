"""One LIST page: walk the sorted index from a marker, roll keys up into
common prefixes, stop after max_keys. Pure: it is given a ``scan`` function
(start, inclusive) → iterator of (index key, record) in key order.

Cost is proportional to the page, not the bucket: it starts with a seek, skips
a whole common prefix with one seek, and stops after ``max_keys`` results (or
``max_scan`` tombstones, returning a truncated page with a marker to go on).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import chain
from typing import Callable, Iterator

from ..core import versions as V
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

    def as_dict(self) -> dict:
        return {"entries": list(self.entries), "prefixes": self.prefixes, "truncated": self.truncated,
                "next_marker": self.next_marker}


def list_page(scan: Scan, bucket: str, prefix: str = "", delimiter: str = "", marker: str = "",
              max_keys: int = 1000, max_scan: int = 10_000, markers: bool = False) -> Page:
    """``markers``: delete markers count as entries (else, like tombstones, they are skipped)."""
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
            if rec.get("deleted") and not (markers and rec.get("marker")):
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


@dataclass
class VersionsPage:
    entries: list[tuple[str, dict, bool]] = field(default_factory=list)   # (key, record, is latest)
    prefixes: list[str] = field(default_factory=list)
    truncated: bool = False
    next_key_marker: str | None = None
    next_version_marker: str | None = None

    def as_dict(self) -> dict:
        return {"entries": list(self.entries), "prefixes": self.prefixes, "truncated": self.truncated,
                "next_key_marker": self.next_key_marker, "next_version_marker": self.next_version_marker}


class _Peek:
    def __init__(self, it):
        self.it, self.buf = iter(it), []

    def peek(self):
        if not self.buf:
            self.buf.append(next(self.it, None))
        return self.buf[0]

    def pop(self):
        item = self.peek()
        self.buf.clear()
        return item


def _rows_of(src: _Peek, ikey: str):
    """The version rows of head ``ikey`` that follow it in the scan."""
    run = ikey + V.SEP
    while True:
        nxt = src.peek()
        if nxt is None or not nxt[0].startswith(run):
            return
        yield src.pop()


def versions_page(scan: Scan, bucket: str, prefix: str = "", delimiter: str = "", key_marker: str = "",
                  version_marker: str = "", max_keys: int = 1000) -> VersionsPage:
    """One ListObjectVersions page from a scan of raw rows (heads, version rows
    and tombstones, core/versions.py): each key's versions newest first, keys
    in order, rolled up into common prefixes by ``delimiter``. Resuming after
    (``key_marker``, ``version_marker``) reads that key's head and null row,
    then seeks to the marker's row: a page costs a page, however many
    versions the key has."""
    walk = _VersionsWalk(scan, bucket + "/", prefix, delimiter, max_keys)
    if max_keys <= 0:
        return walk.page
    start = walk.base + prefix
    if key_marker and key_marker >= prefix:
        start = walk.base + key_marker + "\x01"        # after every version of key_marker
        if delimiter and key_marker.startswith(prefix) and key_marker.find(delimiter, len(prefix)) >= 0:
            i = key_marker.find(delimiter, len(prefix))
            start = walk.base + after_prefix(key_marker[:i + len(delimiter)])
        elif version_marker and not walk.resume_in_key(key_marker, version_marker):
            return walk.page
    walk.from_(start)
    return walk.page


class _VersionsWalk:
    """One ListObjectVersions page being filled: :meth:`emit` adds a key's versions,
    :meth:`resume_in_key` the rest of the marker's key, :meth:`from_` every key on."""

    def __init__(self, scan: Scan, base: str, prefix: str, delimiter: str, max_keys: int):
        self.scan, self.base, self.prefix, self.delimiter, self.max_keys = scan, base, prefix, delimiter, max_keys
        self.page = VersionsPage()
        self.count = 0

    def emit(self, key: str, head: dict | None, rows, after: str | None) -> bool:
        """List one key's versions (those after version ``after``); False once the page is full."""
        page = self.page
        skipping = after is not None
        for vrec, latest in V.key_versions(head, rows):
            vid = V.id_of(vrec)
            if skipping:
                if vid == after:
                    skipping = False
                    continue
                if after == V.NULL or V.vts(vrec) > V.stamp_of(after):
                    continue
                skipping = False                # the marker's version is gone: go on after where it was
            if self.count >= self.max_keys:
                page.truncated = True
                return False
            page.entries.append((key, vrec, latest))
            page.next_key_marker, page.next_version_marker = key, vid
            self.count += 1
        return True

    def resume_in_key(self, key_marker: str, version_marker: str) -> bool:
        """The marker's key: its head and null row, then its rows after the marker.
        False once the page is full."""
        base, scan = self.base, self.scan
        hk = base + key_marker
        src = _Peek(scan(hk, True))
        head = src.pop()[1] if (src.peek() or ("",))[0] == hk else None
        null_key = base + V.row_key(key_marker, V.NULL)
        null = [src.pop()] if (src.peek() or ("",))[0] == null_key else []
        if version_marker != V.NULL:
            rest = _Peek(scan(base + V.row_key(key_marker, version_marker), False))
        else:                               # the null version's place: by when it was made
            nrec = null[0][1] if null else (head if V.is_version(head) and V.id_of(head) == V.NULL else None)
            rest = _Peek(scan(base + V.rows_after(key_marker, nrec), False) if nrec else iter(()))
        return self.emit(key_marker, head, chain(null, _rows_of(rest, hk)), version_marker)

    def from_(self, start: str) -> None:
        """Every key from ``start`` on, until the page is full or the prefix ends; a
        common prefix is one entry, and the scan starts again after it."""
        base, prefix = self.base, self.prefix
        while start is not None:
            src, start = _Peek(self.scan(start, True)), None
            while True:
                item = src.pop()
                if item is None or not item[0].startswith(base + prefix):
                    return
                ikey, rec = item
                if V.is_row(ikey):                  # rows whose head is not in the scan
                    head_key, head, rows = V.head_of_row(ikey), None, chain([item], _rows_of(src, V.head_of_row(ikey)))
                else:
                    head_key, head, rows = ikey, rec, _rows_of(src, ikey)
                key = head_key[len(base):]
                cp = self._common_prefix(key)
                if cp is not None:
                    if not self._roll_up(cp):
                        return
                    start = base + after_prefix(cp)
                    break
                if not self.emit(key, head, rows, None):
                    return

    def _common_prefix(self, key: str) -> str | None:
        if not self.delimiter:
            return None
        i = key.find(self.delimiter, len(self.prefix))
        return key[:i + len(self.delimiter)] if i >= 0 else None

    def _roll_up(self, cp: str) -> bool:
        """A common prefix as one entry of the page; False if the page is full."""
        if self.count >= self.max_keys:
            self.page.truncated = True
            return False
        self.page.prefixes.append(cp)
        self.page.next_key_marker, self.page.next_version_marker = cp, None
        self.count += 1
        return True
