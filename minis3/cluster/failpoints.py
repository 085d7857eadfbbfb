"""`minis3 chaos failpoints` and `minis3 chaos crash-at`: a running cluster's failpoints.

A failpoint is a named step where a process can be made to crash, fail with an
I/O error or sleep (core/failpoints.py names them and says what is on disk at
each; rpc/failpoints.py acts). This module is the operator's side: it asks each
process through the signed internal route every storage node, metadata process
and the scrubber has (``GET``/``POST /failpoints``, rpc/http.py), with
rpc/sync.py's signed requests. Processes are named as in ``minis3 status`` and
``minis3 trace``: ``node-a1`` (or ``a1``), ``meta-az-b``, ``scrubber``.

What is armed this way lives in the process's memory only: a restart (say, by
its AZ supervisor after the crash it was armed for) forgets it.
"""
from __future__ import annotations

import json

from ..config import Topology
from ..core import failpoints as core
from ..rpc import sync
from .chaos import ChaosError

PATH = "/failpoints"


def processes(topo: Topology) -> list[tuple[str, str]]:
    """(name, url) of every process with a failpoints route: the storage nodes,
    the metadata processes, the scrubber."""
    out = [(f"node-{n.id}", n.url) for n in topo.nodes]
    out += [(m.id, m.url) for m in topo.all_metas]
    return out + [("scrubber", topo.scrub.url)]


def resolve(topo: Topology, ident: str) -> tuple[str, str]:
    """(name, url) of the process ``ident`` names (``a1`` is ``node-a1``)."""
    for name, url in processes(topo):
        if ident in (name, name.removeprefix("node-")):
            return name, url
    raise ChaosError(f"no process {ident!r} with failpoints (processes: "
                     f"{', '.join(n for n, _ in processes(topo))})")


def _ask(topo: Topology, name: str, url: str, doc: dict | None = None) -> dict:
    """The process's ``/failpoints`` answer (POST ``doc`` if given, else GET)."""
    try:
        status, body = sync.call(topo.cluster_secret, "POST" if doc is not None else "GET", url, PATH, doc)
    except OSError as exc:
        raise ChaosError(f"{name} does not answer at {url} ({exc})") from None
    got = json.loads(body or b"{}")
    if status != 200:
        raise ChaosError(f"{name}: {got.get('message', status)}")
    return got


def arm(topo: Topology, ident: str, spec: str, *, replace: bool = False) -> str:
    """Arm ``spec`` in one process (checked here first, so a typo is refused
    before anything is sent)."""
    try:
        core.parse(spec)
    except core.FailpointSpecError as exc:
        raise ChaosError(str(exc)) from None
    name, url = resolve(topo, ident)
    got = _ask(topo, name, url, {"spec": spec, "replace": replace})
    return f"{name} (pid {got['pid']}): armed {got['armed'] or 'nothing'}"


def crash_at(topo: Topology, point: str, ident: str) -> str:
    """Crash ``ident`` the next time it reaches ``point`` (``POINT=crash@1``)."""
    armed = arm(topo, ident, f"{point}=crash@1")
    return (f"{armed}\nit crashes (as kill -9) the next time it reaches {point}; "
            f"its AZ supervisor restarts it, and the restart forgets the failpoint")


def clear(topo: Topology, ident: str) -> str:
    """Disarm every failpoint of one process."""
    return arm(topo, ident, "", replace=True)


def show(topo: Topology, ident: str | None = None) -> str:
    """One process's points (armed, fired); or, with no process, every point
    with what it means, and what each running process has armed."""
    if ident is not None:
        name, url = resolve(topo, ident)
        return render_process(name, _ask(topo, name, url))
    width = max(map(len, core.POINTS))
    lines = [f"{n:<{width}}  {what}" for n, what in core.POINTS.items()]
    lines += ["", "armed in the running cluster (`minis3 chaos failpoints PROCESS` for one, with counts):"]
    for name, url in processes(topo):
        try:
            armed = _ask(topo, name, url)["armed"] or "-"
        except ChaosError:
            armed = "(not answering)"
        lines.append(f"  {name:<14} {armed}")
    return "\n".join(lines)


def render_process(name: str, got: dict) -> str:
    """One process's ``GET /failpoints`` answer as a table."""
    width = max(len(p["name"]) for p in got["points"])
    lines = [f"{name} (pid {got['pid']})", f"  {'FAILPOINT':<{width}}  {'ARMED':<14} FIRED"]
    lines += [f"  {p['name']:<{width}}  {p['armed'] or '-':<14} {p['fired']}" for p in got["points"]]
    return "\n".join(lines)


def run(topo: Topology, action: str, target: str | None, extra: str | None, *,
        arm_spec: str | None = None, clear_all: bool = False) -> str:
    """``minis3 chaos failpoints [PROCESS] [--arm SPEC | --clear]`` and
    ``minis3 chaos crash-at FAILPOINT PROCESS``."""
    if action == "crash-at":
        if not target or not extra:
            raise ChaosError("crash-at needs a failpoint and a process: minis3 chaos crash-at "
                             "storage.land.before_rename node-a1")
        return crash_at(topo, target, extra)
    if arm_spec is not None or clear_all:
        if not target:
            raise ChaosError("--arm and --clear need a process: minis3 chaos failpoints node-a1 --clear")
        return clear(topo, target) if clear_all else arm(topo, target, arm_spec)
    return show(topo, target)
