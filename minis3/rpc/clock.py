"""This process's clock offset: the fault ``minis3 chaos clock-skew`` injects.

Each process's hybrid logical clock (core/hlc.py) reads :func:`wall_ms`: the
wall clock plus this process's offset (0 unless skewed). A skewed frontend
then stamps versions as if its clock had jumped, and a skewed metadata
replica judges a commit's age (its commit window) by its skewed clock, which
is how minis3's last-writer-wins rules are tested against clocks that
disagree (docs/faults.md, "Clock skew").

The offset is set when the process starts, from ``$MINIS3_CLOCK_SKEW``
(core/clockskew.py has the language; an AZ supervisor's children inherit
it), and at run time by ``POST /clock`` ``{"offset": "-5m"}`` (``GET`` shows
it), signed with the cluster secret like every internal route (rpc/http.py
mounts them on every internal app; the frontend serves them at
``/_minis3/clock``). A restart forgets an offset set at run time and takes
the environment's again.

Only what reads :func:`wall_ms` is skewed: the HLC and the replicas' commit
window. Other clock reads (SigV4's request dates, lifecycle days, log lines,
fragment ages on disk) keep the true time.
"""
from __future__ import annotations

import os
import threading
import time

from aiohttp import web

from ..core import clockskew

ENV = "MINIS3_CLOCK_SKEW"

_lock = threading.Lock()
_state = {"offset_ms": 0, "process": None, "set_by": "default"}


def wall_ms() -> int:
    """Milliseconds since the epoch as this process's (possibly skewed) clock reads them."""
    return int(time.time() * 1000) + _state["offset_ms"]


def offset_ms() -> int:
    return _state["offset_ms"]


def set_offset_ms(ms: int, set_by: str = "route") -> None:
    with _lock:
        _state["offset_ms"], _state["set_by"] = int(ms), set_by


def skew_from_environment(process: str | None) -> None:
    """Take the offset ``$MINIS3_CLOCK_SKEW`` gives ``process`` (its name: frontend-az-a, meta-az-b)."""
    _state["process"] = process
    raw = os.environ.get(ENV, "")
    if not raw.strip():
        return
    try:
        ms = clockskew.offset_for(clockskew.parse_spec(raw), process)
    except clockskew.OffsetError as exc:
        raise SystemExit(f"${ENV}: {exc}") from None
    if ms:
        set_offset_ms(ms, set_by=f"${ENV}")


def status() -> dict:
    """What ``GET /clock`` answers."""
    ms = _state["offset_ms"]
    return {"process": _state["process"], "pid": os.getpid(), "offset_ms": ms,
            "offset": clockskew.format_offset(ms), "set_by": _state["set_by"], "wall_ms": wall_ms()}


async def clock_get(request: web.Request) -> web.Response:
    """This process's clock offset."""
    return web.json_response(status())


async def clock_post(request: web.Request) -> web.Response:
    """Set this process's clock offset: body ``{"offset": "+5m"}`` (``0`` resets it).
    Answers as GET does; 400 for an offset that does not parse (nothing changes then)."""
    try:
        doc = await request.json()
        if not isinstance(doc, dict) or not isinstance(doc.get("offset"), str):
            raise clockskew.OffsetError('expected {"offset": "+5m"}')
        set_offset_ms(clockskew.parse_offset(doc["offset"]))
    except ValueError as exc:                  # bad JSON, or an OffsetError
        return web.json_response({"code": "InvalidClockOffset", "message": str(exc)}, status=400)
    return web.json_response(status())
