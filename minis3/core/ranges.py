"""HTTP ``Range`` for S3 GET/HEAD (RFC 7233 as S3 applies it).

S3 serves a single byte range per request:

* ``bytes=a-b`` (b clamped to the last byte), ``bytes=a-`` and ``bytes=-n``
  (the last n bytes, the whole object if n >= size);
* a header that isn't a syntactically valid single byte range -- another unit,
  garbage, ``b < a``, or several ranges (S3 does not do multipart/byteranges) --
  is ignored: the whole object is returned with 200;
* a valid range that cannot be satisfied -- first byte at or beyond the
  object's size (any ``a-`` form on an empty object included), or a zero-length
  suffix ``bytes=-0`` -- is 416 InvalidRange, with ``Content-Range: bytes */size``;
* a suffix range on an empty object (``bytes=-5`` on 0 bytes) has nothing to
  cut and nothing to fail: the (empty) whole object is returned with 200.
"""
from __future__ import annotations

import re

from minis3.core import errors as E

_SPEC_RE = re.compile(r"[ \t]*([0-9]*)[ \t]*-[ \t]*([0-9]*)[ \t]*", re.ASCII)


def invalid_range(header: str, size: int) -> E.S3Error:
    """The InvalidRange error S3 returns for ``header`` against ``size`` bytes."""
    err = E.InvalidRange(RangeRequested=header, ActualObjectSize=str(size))
    err.headers["Content-Range"] = f"bytes */{size}"
    return err


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Inclusive ``(start, end)`` for a satisfiable ``Range`` header, ``None``
    for "send the whole object", or raise E.InvalidRange (see module doc)."""
    if header is None:
        return None
    unit, eq, spec = header.strip().partition("=")
    if not eq or unit.strip().lower() != "bytes" or "," in spec:
        return None
    m = _SPEC_RE.fullmatch(spec)
    if m is None:
        return None
    first, last = m.group(1), m.group(2)
    if first:
        start = int(first)
        if last:
            end = int(last)
            if end < start:
                return None  # syntactically invalid: ignored (RFC 7233 §2.1)
        else:
            end = size - 1
        if start >= size:
            raise invalid_range(header, size)
        return start, min(end, size - 1)
    if not last:
        return None  # "bytes=-"
    suffix = int(last)
    if suffix == 0:
        raise invalid_range(header, size)
    if size == 0:
        return None
    return max(0, size - suffix), size - 1


def content_range(start: int, end: int, size: int) -> str:
    """``Content-Range`` value for a 206 response."""
    return f"bytes {start}-{end}/{size}"


def unsatisfied_content_range(size: int) -> str:
    """``Content-Range`` value for a 416 response."""
    return f"bytes */{size}"
