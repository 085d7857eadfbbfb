"""`minis3 chaos clock-skew PROCESS ±DURATION`: make one process's clock wrong.

The fault is a clock offset in the process (rpc/clock.py): its hybrid logical
clock, which stamps the versions last-writer-wins orders, reads the wall
clock plus the offset, as if the machine's clock had jumped. This module is
the operator's side: it sets or shows the offset through the signed route
every process that keeps a clock has (``POST``/``GET /clock``; on a frontend
``/_minis3/clock``), with rpc/sync.py's signed requests.

Processes are named as in ``minis3 status`` and ``minis3 trace``: ``frontend``
(the main one), ``frontend-az-a`` (an AZ's, with ``--frontend-per-az``),
``meta-az-b``, ``scrubber``; ``all`` is every one of them. ``0`` resets an
offset. Storage nodes stamp nothing (a fragment's age is its file's, by the
node's own clock), so they are not offered.

An offset set here lives in the process's memory: a restart takes the one
``$MINIS3_CLOCK_SKEW`` gives it (none, usually). What minis3 does under a
skewed clock and why: docs/faults.md, "Clock skew".
"""
from __future__ import annotations

from ..config import Topology
from ..core import clockskew
from .chaos import ChaosError
from .failpoints import ask_route

PATH = "/clock"
FRONTEND_PATH = "/_minis3/clock"


def processes(topo: Topology) -> list[tuple[str, str, str]]:
    """(name, url, route path) of every process whose clock matters: the
    frontends (they stamp object and bucket versions), the metadata
    processes (their commit window reads the clock), the scrubber (its
    lifecycle rounds write versions)."""
    out = [("frontend", topo.frontend.url, FRONTEND_PATH)]
    if topo.frontend.per_az:
        out += [(f"frontend-{az.name}", topo.az_frontend(az.name).url, FRONTEND_PATH) for az in topo.azs]
    out += [(m.id, m.url, PATH) for m in topo.all_metas]
    return out + [("scrubber", topo.scrub.url, PATH)]


def resolve(topo: Topology, ident: str) -> list[tuple[str, str, str]]:
    """The processes ``ident`` names (``all``: every one)."""
    every = processes(topo)
    if ident == "all":
        return every
    found = [p for p in every if p[0] == ident]
    if not found:
        raise ChaosError(f"no process {ident!r} with a clock (processes: {', '.join(p[0] for p in every)}, all)")
    return found


def set_skew(topo: Topology, ident: str, amount: str) -> str:
    """Set the clock offset of ``ident`` (checked here first, so a typo is refused
    before anything is sent)."""
    try:
        ms = clockskew.parse_offset(amount)
    except clockskew.OffsetError as exc:
        raise ChaosError(str(exc)) from None
    lines = []
    for name, url, path in resolve(topo, ident):
        got = ask_route(topo, name, url, path, {"offset": clockskew.format_offset(ms)})
        lines.append(f"{name} (pid {got['pid']}): clock offset {got['offset']}")
    if ms:
        lines.append(f"its hybrid logical clock now reads the wall clock {clockskew.format_offset(ms)}; "
                     f"`minis3 chaos clock-skew {ident} 0` ends it (a restart forgets it too)")
    return "\n".join(lines)


def show(topo: Topology, ident: str | None = None) -> str:
    """Every process's clock offset (or one's)."""
    lines = [f"{'PROCESS':<16} {'OFFSET':<8} SET BY"]
    for name, url, path in resolve(topo, ident or "all"):
        try:
            got = ask_route(topo, name, url, path)
            lines.append(f"{name:<16} {got['offset']:<8} {got['set_by']}")
        except ChaosError:
            lines.append(f"{name:<16} {'?':<8} (not answering)")
    return "\n".join(lines)


def run(topo: Topology, target: str | None, amount: str | None) -> str:
    """``minis3 chaos clock-skew [PROCESS [±DURATION]]``: set, or show."""
    if target is None or amount is None:
        return show(topo, target)
    return set_skew(topo, target, amount)
