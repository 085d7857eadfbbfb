"""LIST over replicas: one page from a read quorum's scans, merged, a partition at a time.

A page function (``meta/listing.py``) walks one sorted key space. Over
replicas there are several, each possibly missing a version the others have,
and each key range is on the replicas its partition names. So
:func:`merged_page` gives the page function a :class:`MergedScan`: the
versions of a read quorum's scans merged (newest wins). Where the page walks
past what has been fetched, the scan raises :class:`NeedMore`; the next
range is fetched (up to the end of its partition) and the page, which is
pure, runs again.
"""
from __future__ import annotations

from bisect import bisect_right
from typing import Awaitable, Callable

from sortedcontainers import SortedDict

from ..core import errors as E
from .listing import after_prefix
from .partition import version
from .index_router import IndexRouter


class NeedMore(Exception):
    """A page needs the replicas' versions from ``pos`` on, not fetched yet."""
    def __init__(self, pos: tuple[str, bool]):
        self.pos = pos


_END = ("\U0010ffff" * 4, True)


class MergedScan:
    """The versions of several replicas' scans merged (newest wins), over the
    key ranges fetched so far. ``scan`` serves a page function
    (``meta/listing.py``); where it needs keys not fetched yet it raises
    :class:`NeedMore` and the caller fetches them and runs the (pure) page
    again. A position is (key, after): (k, False) is k itself, (k, True) just
    after it."""

    def __init__(self) -> None:
        self.versions: SortedDict = SortedDict()
        self.intervals: list[tuple[tuple[str, bool], tuple[str, bool]]] = []   # [lo, hi), by lo

    def add(self, lo: tuple[str, bool], replies: list[dict], upto: str | None = None) -> None:
        """Replicas' scans from ``lo``; ``upto``: the scans stopped at this key
        (a partition's end), so what they cover ends there."""
        hi = _END if upto is None else (upto, False)
        for body in replies:
            if not body["exhausted"] and body["items"]:
                hi = min(hi, (body["items"][-1][0], True))
        for body in replies:
            for k, v in body["items"]:
                if (k, False) < hi and version(v) > version(self.versions.get(k)):
                    self.versions[k] = v
        i = bisect_right([iv[0] for iv in self.intervals], lo)
        self.intervals.insert(i, (lo, hi))

    def _interval_at(self, pos: tuple[str, bool]):
        for lo, hi in self.intervals:
            if lo <= pos < hi:
                return lo, hi
        return None

    def scan(self, start: str, inclusive: bool):
        pos = (start, not inclusive)
        while True:
            iv = self._interval_at(pos)
            if iv is None:
                raise NeedMore(pos)
            _, hi = iv
            for k in self.versions.irange(minimum=pos[0], inclusive=(not pos[1], True)):
                if (k, False) >= hi:
                    break
                yield k, self.versions[k]
            if hi == _END:
                return
            pos = hi



async def merged_page(router: IndexRouter, read: Callable[..., Awaitable[list]], bucket: str, prefix: str,
                      heads: bool, full: bool, make_page, max_keys: int) -> dict:
    """Run the (pure) page function ``make_page(scan)`` over replicas' scans
    merged, fetching the key ranges it asks for, a partition at a time, with
    ``read`` (a read quorum: ``MetaClient._read``)."""
    merged = MergedScan()
    base = bucket + "/"
    end = base + after_prefix(prefix) if prefix else bucket + chr(ord("/") + 1)
    limit = max(16, min(5000, max_keys + 16))
    await router.ensure()
    for _ in range(10_000):
        try:
            page = make_page(merged.scan)
        except NeedMore as need:
            start, after = need.pos
            # One partition at a time: the scan stops at its end, and the
            # page goes on in the next one (each with its own replicas).
            e = router.entry(start)
            upto = e.hi if e is not None and e.hi is not None and e.hi < end else None
            params = {"table": "objects", "start": start, "inclusive": "0" if after else "1",
                      "end": upto or end, "limit": limit}
            if not full:
                params["fields"] = "list"
            if heads:
                params["heads"] = "1"
            seen = router.version
            try:
                replies = await read("/v/scan", params, start, follow=False)
            except E.ServiceUnavailable:
                if router.version == seen:
                    raise
                continue                      # the range moved or split: again, with the new map
            merged.add(need.pos, [body for _, body in replies], upto)
            limit = min(5000, limit * 2)      # runs of tombstones: fetch more each time
            continue
        return page.as_dict()
    raise E.InternalError("listing did not converge")
