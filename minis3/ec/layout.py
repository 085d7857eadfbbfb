"""Segments and fragments: the arithmetic of an erasure-coded object.

An object of ``size`` bytes is cut into segments of ``segment_size`` bytes (the
last one shorter). Each segment is encoded into k+m fragments; fragment i of
every segment goes to the same node, so a node holds one *fragment file* per
object, made of one *block* per segment. This module only does the offsets.
"""
from __future__ import annotations

from dataclasses import dataclass


def segment_count(size: int, segment_size: int) -> int:
    return -(-size // segment_size) if size > 0 else 0


def segment_bounds(index: int, size: int, segment_size: int) -> tuple[int, int]:
    """[start, end) of segment ``index`` in the object."""
    start = index * segment_size
    return start, min(start + segment_size, size)


@dataclass(frozen=True)
class SegmentSpan:
    """Which segments a byte range [first_byte, last_byte] needs, and how to trim them."""
    first: int          # first segment index
    last: int           # last segment index (inclusive)
    skip: int           # bytes to drop from the start of the first segment
    take: int           # total bytes to emit


def span_for_range(first_byte: int, last_byte: int, segment_size: int) -> SegmentSpan:
    if first_byte > last_byte:
        raise ValueError("empty range")
    first = first_byte // segment_size
    last = last_byte // segment_size
    return SegmentSpan(first=first, last=last, skip=first_byte - first * segment_size,
                       take=last_byte - first_byte + 1)
