"""Clock offsets for ``minis3 chaos clock-skew``: how an offset is written and read (pure).

A process's clock offset is how far its wall clock is from the true time, in
milliseconds: +300000 runs five minutes ahead, -300000 five minutes behind.
The hybrid logical clock of a process (core/hlc.py) reads the wall clock plus
this offset, so a skewed process stamps versions as a process whose clock had
jumped would (rpc/clock.py holds the offset of the running process).

Written as a signed duration with its unit: ``+5m``, ``-300s``, ``1500ms``,
``0`` (no unit is needed for zero; any other bare number is refused, since it
could mean seconds or milliseconds). ``$MINIS3_CLOCK_SKEW`` names an offset
per process, ``frontend-az-a=-5m;meta-az-b=+300s``, or one for every process
started with it, ``-5m``.
"""
from __future__ import annotations

import re

UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "min": 60_000}
_OFFSET = re.compile(r"([+-]?)(\d+(?:\.\d*)?)(ms|s|min|m)?")


class OffsetError(ValueError):
    """A clock offset or an offset spec that does not parse (the message says how to write one)."""


def parse_offset(text: str) -> int:
    """Milliseconds from ``+5m``, ``-300s``, ``250ms``, ``0``."""
    m = _OFFSET.fullmatch((text or "").strip())
    if m is None or (m[3] is None and float(m[2]) != 0):
        raise OffsetError(f"expected a clock offset like +5m, -300s, 1500ms or 0, not {text!r}")
    ms = round(float(m[2]) * UNITS_MS[m[3] or "ms"])
    return -ms if m[1] == "-" else ms


def format_offset(ms: int) -> str:
    """``+5m``, ``-300.5s``, ``+120ms``, ``0``: the shortest exact unit."""
    if ms == 0:
        return "0"
    sign, n = ("-" if ms < 0 else "+"), abs(ms)
    if n % 60_000 == 0:
        return f"{sign}{n // 60_000}m"
    if n % 1000 == 0:
        return f"{sign}{n // 1000}s"
    return f"{sign}{n}ms"


def parse_spec(spec: str) -> dict[str | None, int]:
    """``{process name or None (every process): offset ms}`` from a
    ``$MINIS3_CLOCK_SKEW`` value: ``NAME=OFFSET`` entries separated by ``;``
    or ``,``, or a bare ``OFFSET`` for every process."""
    out: dict[str | None, int] = {}
    for entry in re.split(r"[;,]", spec or ""):
        entry = entry.strip()
        if not entry:
            continue
        name, eq, amount = entry.rpartition("=")
        if eq and not name.strip():
            raise OffsetError(f"{entry!r}: expected PROCESS=OFFSET (frontend-az-a=-5m) or OFFSET")
        out[name.strip() if eq else None] = parse_offset(amount)
    return out


def offset_for(spec: dict[str | None, int], process: str | None) -> int:
    """The offset a process named ``process`` takes from a parsed spec: its
    own entry, else the entry for every process, else none."""
    if process is not None and process in spec:
        return spec[process]
    return spec.get(None, 0)
