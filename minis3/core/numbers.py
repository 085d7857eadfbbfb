"""Integers in S3 requests (query parameters, headers), parsed strictly.

``int()`` and ``str.isdigit()`` are Unicode-aware: ``int("١")`` is 1,
``int(" 7 ")`` is 7, ``int("1_0")`` is 10, and ``"²".isdigit()`` is true
while ``int("²")`` raises. S3 reads these values as ASCII decimal numbers,
so every handler parses them here and nowhere else: an optional sign, then
ASCII digits only, no spaces, no underscores.
"""
from __future__ import annotations

import re

#: Optional sign, then 1..30 ASCII digits ([0-9] is exactly the ten ASCII
#: digits). 30 digits bounds the work (Python's int() refuses > 4300 digits)
#: and is beyond any range S3 accepts, so a longer number is just out of range.
_INTEGER = re.compile(r"[+-]?[0-9]{1,30}")


def parse_int(raw: str | None) -> int | None:
    """``raw`` as an integer, or None when it is not one (module doc)."""
    if raw is None or not _INTEGER.fullmatch(raw):
        return None
    return int(raw)
