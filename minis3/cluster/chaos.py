"""`minis3 chaos …`: break the running local cluster on purpose, and mend it.

    kill-az NAME      kill -9 every process of the AZ (its process group)
    freeze-az NAME    SIGSTOP them all: they hold their sockets but never answer
    thaw-az NAME      SIGCONT
    revive-az NAME    start the AZ's supervisor again (after kill-az)
    kill-node ID      kill -9 one storage node (a1, b2, …) or metadata replica
                      (meta-az-b), and keep it down
    revive-node ID    let its supervisor start it again
    partition-az NAME cut the AZ off the network (root: iptables drops every
                      packet to and from its address; connections hang, unlike
                      a kill, which refuses them)
    latency NAME 5ms  add 5 ms to every request crossing the AZ's boundary
                      (NAME may be `all`; `0` removes it)
    heal NAME         remove the AZ's partition and latency
    failpoints [PROCESS] [--arm SPEC | --clear]
                      list the named failpoints and what each process has
                      armed; arm or disarm them in one process
    crash-at FAILPOINT PROCESS
                      crash PROCESS (as kill -9) the next time it reaches
                      FAILPOINT (the last two: cluster/failpoints.py)
    clock-skew [PROCESS [±DURATION]]
                      set the clock offset of a frontend, metadata process
                      or the scrubber (+5m, -300s; 0 ends it; `all`), or show
                      every process's (cluster/clock.py)

Processes are found through the run files the AZ supervisors write
(``<data_dir>/run/<az>.json``), so this works on any cluster ``minis3 up``
started from the same topology and data directory. A partition needs every
AZ on an address of its own (the default on Linux: 127.0.1.1, 127.0.2.1,
127.0.3.1; see config.az_address).

Latency is applied by the RPC layer of every minis3 process
(``minis3.rpc.delay``), not by ``tc netem``: this machine's kernel has no
queueing disciplines, so a netem path could not be tested here and is not
built. ``minis3 status`` says which mechanism is active.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time

from .supervisor import az_group, az_state, hold_path, run_dir, spawn_az
from ..rpc import delay as rpc_delay
from ..config import Topology


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
        if ident in {m.id for m in az.extra_metas}:
            return az.name, ident
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


# ----------------------------------------------------------------------------- the network
RULE_COMMENT = "minis3-partition"


def _resolve(host: str) -> str:
    try:
        return socket.gethostbyname(host)
    except OSError as exc:
        raise ChaosError(f"cannot resolve {host!r}: {exc}") from None


def az_addresses(topo: Topology, name: str) -> list[str]:
    """The IPv4 addresses an AZ's processes listen on (and send from)."""
    az = _az(topo, name)
    hosts = {az.meta.host, *(n.host for n in az.nodes)}
    if topo.frontend.per_az:
        hosts.add(topo.az_frontend(name).host)
    return sorted({_resolve(h) for h in hosts})


def _shared_addresses(topo: Topology, name: str, addrs: list[str]) -> list[str]:
    """What else listens on the AZ's addresses (a partition would cut it off too)."""
    others = [(f"frontend {topo.frontend.url}", topo.frontend.host), (f"scrubber {topo.scrub.url}", topo.scrub.host)]
    others += [(a.name, a.meta.host) for a in topo.azs if a.name != name]
    return [what for what, host in others if _resolve(host) in addrs]


def _iptables(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["iptables", "-w", *args], capture_output=True, text=True)


def _can_partition() -> None:
    if os.geteuid() != 0:
        raise ChaosError("partition-az needs root (it adds iptables rules); nothing was changed")
    if shutil.which("iptables") is None:
        raise ChaosError("partition-az needs iptables (Debian: apt-get install iptables); nothing was changed")


def _partition_rules(comment: str | None = None) -> list[str]:
    """minis3's partition rules in the OUTPUT chain (all AZs', or those with
    this exact comment), as `iptables -S` prints them, without its quotes."""
    if os.geteuid() != 0 or shutil.which("iptables") is None:
        return []
    rules = [r.replace('"', "") for r in _iptables("-S", "OUTPUT").stdout.splitlines()]
    if comment is not None:
        return [r for r in rules if f"--comment {comment} " in r + " "]
    return [r for r in rules if f"--comment {RULE_COMMENT}:" in r]


def partitioned(topo: Topology) -> dict[str, list[str]]:
    """AZ name → its addresses whose packets are being dropped (for `minis3 status`)."""
    rules = _partition_rules()
    out: dict[str, list[str]] = {}
    for az in topo.azs:
        mine = [r for r in rules if f"--comment {RULE_COMMENT}:{az.name}" in r]
        if mine:
            out[az.name] = sorted({m.group(1) for r in mine for m in [re.search(r"-[ds] ([0-9.]+)/32", r)] if m})
    return out


def partition_az(topo: Topology, name: str) -> str:
    """Drop every packet to or from the AZ's addresses (OUTPUT carries all of
    loopback's packets, both ways). A connection attempt then hangs until the
    caller's timeout, and an open connection goes silent: what a cut fibre or
    a dead switch does, and harder on clients than a kill, which refuses."""
    _can_partition()
    addrs = az_addresses(topo, name)
    shared = _shared_addresses(topo, name, addrs)
    if shared:
        raise ChaosError(f"{name} shares its address {', '.join(addrs)} with {', '.join(shared)}: a partition "
                         "would cut those off too; give each AZ its own address in the topology")
    if name in partitioned(topo):
        return f"{name} is already partitioned ({', '.join(addrs)})"
    comment = f"{RULE_COMMENT}:{name}"
    for addr in addrs:
        for direction in ("-d", "-s"):
            r = _iptables("-I", "OUTPUT", direction, addr, "-m", "comment", "--comment", comment, "-j", "DROP")
            if r.returncode != 0:
                heal(topo, name)
                raise ChaosError(f"iptables failed: {r.stderr.strip()}")
    return (f"partitioned {name}: iptables drops every packet to and from {', '.join(addrs)} "
            f"(connections hang); `minis3 chaos heal {name}` ends it")


def _parse_latency(amount: str) -> float:
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*(ms|s)?\s*", amount or "")
    if not m:
        raise ChaosError(f"latency: expected an amount like 5ms, 0.2s or 0, not {amount!r}")
    value = float(m.group(1))
    return value * 1000 if m.group(2) == "s" else value


def set_latency(topo: Topology, name: str, amount: str) -> str:
    ms = _parse_latency(amount)
    names = [a.name for a in topo.azs] if name == "all" else [_az(topo, name).name]
    delays = rpc_delay.read_settings(topo.data_dir)
    delays.update({n: ms for n in names})
    rpc_delay.write_settings(topo.data_dir, delays)
    if not ms:
        return f"removed the latency of {', '.join(names)}"
    return (f"every request crossing the boundary of {', '.join(names)} now takes {ms:g} ms longer "
            f"(an RPC-layer delay in every minis3 process, not tc netem)")


def heal(topo: Topology, name: str) -> str:
    """End the AZ's partition and latency (NAME may be `all`)."""
    names = [a.name for a in topo.azs] if name == "all" else [_az(topo, name).name]
    done = []
    for n in names:
        for rule in _partition_rules(f"{RULE_COMMENT}:{n}"):
            args = rule.split()
            if args[:2] == ["-A", "OUTPUT"]:
                _iptables("-D", "OUTPUT", *args[2:])
                done.append(f"{n}: removed `{rule}`")
    delays = rpc_delay.read_settings(topo.data_dir)
    for n in names:
        if delays.pop(n, None):
            done.append(f"{n}: latency removed")
    rpc_delay.write_settings(topo.data_dir, delays)
    return "\n".join(done) if done else f"nothing to heal on {', '.join(names)}"


def network_conditions(topo: Topology) -> dict[str, dict]:
    """AZ → {partitioned: [addresses], latency_ms, mechanism} for every AZ with one."""
    out: dict[str, dict] = {}
    for az, addrs in partitioned(topo).items():
        out.setdefault(az, {})["partitioned"] = addrs
        out[az]["partition_mechanism"] = "iptables DROP (OUTPUT chain)"
    for az, ms in rpc_delay.read_settings(topo.data_dir).items():
        out.setdefault(az, {})["latency_ms"] = ms
        out[az]["latency_mechanism"] = "RPC-layer delay (not tc netem)"
    return out


ACTIONS = {"kill-az": kill_az, "freeze-az": freeze_az, "thaw-az": thaw_az, "revive-az": revive_az,
           "kill-node": kill_node, "revive-node": revive_node, "partition-az": partition_az, "heal": heal}
