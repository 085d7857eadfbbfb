"""`minis3 chaos failpoints` and `minis3 chaos crash-at`: a running cluster's failpoints.

A failpoint is a named step where a process can be made to crash, fail with an
I/O error or sleep (core/failpoints.py names them and says what is on disk at
each; rpc/failpoints.py acts). This module is the operator's side: it asks each
process through the signed internal route every storage node, metadata process
and the scrubber has (``GET``/``POST /failpoints``, rpc/http.py), and a
frontend at ``/_minis3/failpoints`` (frontend/app.py), with rpc/sync.py's
signed requests. Processes are named as in ``minis3 status`` and ``minis3
trace``: ``node-a1`` (or ``a1``), ``meta-az-b``, ``scrubber``, ``frontend``
(and ``frontend-az-a`` when each AZ has its own).

The disk-fault verbs set a process's disk faults (core/failpoints.DiskFaults)
through the same route: ``disk-full NODE|AZ`` (every write fails with ENOSPC;
an AZ: its storage nodes and its metadata process), ``disk-errors NODE RATE``
(EIO on that fraction of reads, writes and syncs), ``slow-disk NODE 200ms``
(every sync and read that much slower); ``heal`` clears them.

What is armed this way lives in the process's memory only: a restart (say, by
its AZ supervisor after the crash it was armed for; the frontend and the
scrubber are started again by ``minis3 up``) forgets it.
"""
from __future__ import annotations

import json

from ..config import Topology, tls
from ..core import failpoints as core
from ..rpc import sync
from .chaos import ChaosError

PATH = "/failpoints"
FRONTEND_PATH = "/_minis3/failpoints"      # beside the S3 API, signed (frontend/app.py)


def processes(topo: Topology) -> list[tuple[str, str]]:
    """(name, url) of every process with a failpoints route: the storage nodes,
    the metadata processes, the scrubber, the frontends."""
    out = [(f"node-{n.id}", n.url) for n in topo.nodes]
    out += [(m.id, m.url) for m in topo.all_metas]
    out += [("scrubber", topo.scrub.url), ("frontend", topo.frontend.url)]
    if topo.frontend.per_az:
        out += [(f"frontend-{az.name}", topo.az_frontend(az.name).url) for az in topo.azs]
    return out


def resolve(topo: Topology, ident: str) -> tuple[str, str]:
    """(name, url) of the process ``ident`` names (``a1`` is ``node-a1``)."""
    for name, url in processes(topo):
        if ident in (name, name.removeprefix("node-")):
            return name, url
    raise ChaosError(f"no process {ident!r} with failpoints (processes: "
                     f"{', '.join(n for n, _ in processes(topo))})")


def _ask(topo: Topology, name: str, url: str, doc: dict | None = None) -> dict:
    """The process's ``/failpoints`` answer (POST ``doc`` if given, else GET)."""
    return ask_route(topo, name, url, FRONTEND_PATH if name.startswith("frontend") else PATH, doc)


def ask_route(topo: Topology, name: str, url: str, path: str, doc: dict | None = None) -> dict:
    """A process's signed admin route's JSON answer (POST ``doc`` if given,
    else GET); ChaosError, saying which process, if it does not answer 200
    (cluster/clock.py asks the clock routes the same way)."""
    try:
        status, body = sync.call(topo.cluster_secret, "POST" if doc is not None else "GET", url, path, doc,
                                 context=tls.client_context(topo) if url.startswith("https:") else None)
    except OSError as exc:
        raise ChaosError(f"{name} does not answer at {url} ({exc})") from None
    try:
        got = json.loads(body or b"{}")
    except ValueError:                     # not the route's answer (an S3 error, say)
        got = {}
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
    who = ("`minis3 up` starts it again" if ident in ("frontend", "scrubber")
           else "its AZ supervisor restarts it")
    return (f"{armed}\nit crashes (as kill -9) the next time it reaches {point}; "
            f"{who}, and the restart forgets the failpoint")


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


# -- disk faults --------------------------------------------------------------

DISK_ACTIONS = ("disk-full", "disk-errors", "slow-disk")


def disk_targets(topo: Topology, ident: str) -> list[tuple[str, str]]:
    """(name, url) of the processes ``ident`` names: one process, or an AZ's
    storage nodes and metadata process, or (``all``) every one of them."""
    azs = [a.name for a in topo.azs]
    if ident == "all" or ident in azs:
        want = set(azs) if ident == "all" else {ident}
        return ([(f"node-{n.id}", n.url) for n in topo.nodes if n.az in want]
                + [(m.id, m.url) for m in topo.all_metas if m.az in want])
    return [resolve(topo, ident)]


def set_disk(topo: Topology, ident: str, doc: dict | None) -> list[str]:
    """Send ``{"disk": doc}`` to every process ``ident`` names; one line each."""
    lines = []
    for name, url in disk_targets(topo, ident):
        got = _ask(topo, name, url, {"disk": doc})
        lines.append(f"{name} (pid {got['pid']}): disk {got['disk']['state']}")
    return lines


def disk_fault(topo: Topology, action: str, target: str | None, amount: str | None) -> str:
    """``disk-full NODE|AZ``, ``disk-errors NODE RATE``, ``slow-disk NODE 200ms``."""
    usage = {"disk-full": "disk-full NODE|AZ (a1, meta-az-b, az-b)",
             "disk-errors": "disk-errors NODE RATE (a1 10%)", "slow-disk": "slow-disk NODE TIME (a1 200ms)"}[action]
    if not target or (action != "disk-full" and not amount):
        raise ChaosError(f"usage: minis3 chaos {usage}")
    try:
        if action == "disk-full":
            doc = {"full": True}
        elif action == "disk-errors":
            doc = {"errors": core.parse_rate(amount)}
        else:
            doc = {"slow_ms": core.parse_duration("slow-disk", amount) * 1000}
    except core.FailpointSpecError as exc:
        raise ChaosError(str(exc)) from None
    what = {"disk-full": "every write now fails with ENOSPC",
            "disk-errors": f"{amount} of reads, writes and syncs now fail with EIO",
            "slow-disk": f"every sync and read now takes {amount} longer"}[action]
    return "\n".join(set_disk(topo, target, doc) + [f"{what}; `minis3 chaos heal {target}` ends it"])


def heal_disks(topo: Topology, ident: str) -> list[str]:
    """Heal the disks of the processes ``ident`` names (lines only for those
    that had a fault; a process that does not answer is skipped)."""
    lines = []
    for name, url in disk_targets(topo, ident):
        try:
            before = _ask(topo, name, url)["disk"]["state"]
            if before != "healthy":
                _ask(topo, name, url, {"disk": None})
                lines.append(f"{name}: disk healed (was {before})")
        except ChaosError:
            continue
    return lines


def run(topo: Topology, action: str, target: str | None, extra: str | None, *,
        arm_spec: str | None = None, clear_all: bool = False) -> str:
    """``minis3 chaos failpoints [PROCESS] [--arm SPEC | --clear]`` and
    ``minis3 chaos crash-at FAILPOINT PROCESS``."""
    if action in DISK_ACTIONS:
        return disk_fault(topo, action, target, extra)
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
