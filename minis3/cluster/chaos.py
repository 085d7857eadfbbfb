"""`minis3 chaos …`: break the running local cluster on purpose, and mend it.

    kill-az NAME      kill -9 every process of the AZ (its process group)
    freeze-az NAME    SIGSTOP them all: they hold their sockets but never answer
    thaw-az NAME      SIGCONT
    revive-az NAME    start the AZ's supervisor again (after kill-az)
    kill-node ID      kill -9 one storage node (a1, b2, …) or metadata replica
                      (meta-az-b), and keep it down
    revive-node ID    let its supervisor start it again

Everything is found through the run files the AZ supervisors write
(``<data_dir>/run/<az>.json``), so this works on any cluster ``minis3 up``
started from the same topology and data directory.
"""
from __future__ import annotations

import os
import signal
import time

from .supervisor import az_group, az_state, hold_path, run_dir, spawn_az
from .topology import Topology


class ChaosError(Exception):
    pass


def _az(topo: Topology, name: str):
    az = next((a for a in topo.azs if a.name == name), None)
    if az is None:
        raise ChaosError(f"no AZ named {name!r} (AZs: {', '.join(a.name for a in topo.azs)})")
    return az


def _group(topo: Topology, name: str) -> int:
    _az(topo, name)
    pgid = az_group(topo, name)
    if pgid is None:
        raise ChaosError(f"{name} is not running (no {run_dir(topo) / (name + '.json')})")
    return pgid


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def kill_az(topo: Topology, name: str) -> str:
    pgid = _group(topo, name)
    _signal_group(pgid, signal.SIGKILL)
    (run_dir(topo) / f"{name}.json").unlink(missing_ok=True)   # its supervisor cannot do it now
    return f"killed {name} (process group {pgid}, kill -9)"


def freeze_az(topo: Topology, name: str) -> str:
    pgid = _group(topo, name)
    _signal_group(pgid, signal.SIGSTOP)
    return f"froze {name} (process group {pgid}, SIGSTOP): its sockets accept but nothing answers"


def thaw_az(topo: Topology, name: str) -> str:
    pgid = _group(topo, name)
    _signal_group(pgid, signal.SIGCONT)
    return f"thawed {name} (SIGCONT)"


def revive_az(topo: Topology, name: str, wait: float = 30) -> str:
    _az(topo, name)
    pgid = az_group(topo, name)
    if pgid is not None:
        try:
            os.killpg(pgid, 0)
            return f"{name} is already running (process group {pgid})"
        except ProcessLookupError:
            pass
    proc = spawn_az(topo, name)
    deadline = time.monotonic() + wait
    while az_group(topo, name) != proc.pid and time.monotonic() < deadline:
        time.sleep(0.05)
    return f"revived {name} (supervisor pid {proc.pid}); its metadata replica catches up before serving reads"


def _child_name(topo: Topology, ident: str) -> tuple[str, str]:
    """(AZ name, run-file child name) of a storage node id or a metadata replica id."""
    for az in topo.azs:
        if ident in (az.meta.id, az.name + "-meta"):
            return az.name, az.meta.id
        for n in az.nodes:
            if ident in (n.id, f"node-{n.id}"):
                return az.name, f"node-{n.id}"
    raise ChaosError(f"no node or metadata replica {ident!r}")


def _child_pid(topo: Topology, az: str, child: str) -> int | None:
    state = az_state(topo, az)
    if state is None:
        raise ChaosError(f"{az} is not running")
    return state["children"].get(child)


def kill_node(topo: Topology, ident: str) -> str:
    az, child = _child_name(topo, ident)
    pid = _child_pid(topo, az, child)
    hold = hold_path(topo, child)
    hold.parent.mkdir(parents=True, exist_ok=True)
    hold.touch()
    if pid is None:
        return f"{child} is already down (held down)"
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return f"killed {child} (pid {pid}, kill -9); held down until `minis3 chaos revive-node {ident}`"


def revive_node(topo: Topology, ident: str) -> str:
    az, child = _child_name(topo, ident)
    hold_path(topo, child).unlink(missing_ok=True)
    return f"released {child}: the {az} supervisor starts it again"


ACTIONS = {"kill-az": kill_az, "freeze-az": freeze_az, "thaw-az": thaw_az, "revive-az": revive_az,
           "kill-node": kill_node, "revive-node": revive_node}
