"""Failpoints in a running process: ``failpoint(name)`` at a step, and what arms it.

The names, the spec language and the counting are core/failpoints.py; this is
the I/O around them. A point is armed in a process

* when it starts, from ``$MINIS3_FAILPOINTS`` (:func:`arm_from_environment`,
  called by rpc/process.py's ``begin``): a spec that does not parse stops the
  process, since a typo that armed nothing would let a test pass for nothing.
  Its counts hold across the process's restarts: a crash writes what is
  still armed to ``<data_dir>/run/failpoints-<process>.json`` just before it
  kills itself, and the restarted process arms from the environment only
  what that file says is left (the same spec; a changed one starts again).
  So ``crash@1`` crashes a supervised process once, not at every restart;
* at run time, by the signed internal route ``POST /failpoints`` every internal
  app has (rpc/http.py; ``minis3 chaos crash-at``, ``minis3 chaos failpoints``).
  A restart forgets it.

What each action does where it fires:

* ``crash``: one CRITICAL log line, then SIGKILL to itself: no clean-up, no
  atexit, no flushed buffers, as ``kill -9``. It is a process crash, not a power
  loss: what the process wrote but did not fsync is still in the page cache and
  survives it.
* ``error``: raises ``OSError(EIO)`` (or the errno armed), as the failing
  system call would.
* ``sleep``: ``time.sleep``, blocking the calling thread. The points of
  blocking code run in a worker thread (``asyncio.to_thread``: a fragment's
  landing, a rebuild's fsync and renames, a delete's unlink, the WAL's group
  commit, a snapshot, a split's new partition list), so a sleep stalls that
  step, as a slow disk would, and never the event loop. The points of async
  steps (a replica move's, the frontend's commit of a PUT and of a multipart
  upload) are on the event loop thread: a sleep there blocks the whole
  process while it lasts, and :func:`failpoint` says so in the log. Crash
  and error are what those points are for.

Disk faults (``disk(op)``, core/failpoints.DiskFaults) act on every write,
sync and read of the process's data files rather than on one step: a full disk
(ENOSPC on every write), a failing one (EIO on a fraction of operations), a
slow one (every sync and read delayed). They are set at run time only, by the
same route (``{"disk": {...}}``; ``minis3 chaos disk-full``, ``disk-errors``,
``slow-disk``, and ``heal`` to clear them), and a restart forgets them, as it
forgets run-time failpoints: a process restarted on a "full" disk finds it
healthy.

When nothing is armed a point costs one call and one dict truth test:
measured with ``timeit`` on this machine (CPython 3.11, 2 cores, best of 7
runs of 2 million calls), ``failpoint("storage.land.before_rename")`` took
33 ns disarmed (an empty loop: 7 ns), against tens of microseconds or more
for the fsync next to it. With any point armed every point takes the lock:
236 ns.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import signal
import threading
import time

from ..core import failpoints as core

log = logging.getLogger("minis3.failpoints")

#: The environment variable a process reads its failpoints from when it starts.
ENV = "MINIS3_FAILPOINTS"

#: name → Arm of every armed point. Empty (false) when nothing is armed: the
#: one test a disarmed point costs.
_ARMED: dict[str, core.Arm] = {}
_FIRED: dict[str, int] = {}           # how many times each point fired in this process
_LOCK = threading.Lock()              # points are hit from worker threads
_state = {"process": None, "counts_file": None, "env_spec": ""}   # this process's name; where a crash leaves its counts
#: This process's disk faults; falsy (a healthy disk) is the one test ``disk`` costs.
_DISK = {"faults": core.DiskFaults()}
_DISK_HITS: dict[str, int] = {}       # "write ENOSPC", "read EIO", "sync slow" → how often


def failpoint(name: str) -> None:
    """Crash, fail or sleep here if ``name`` is armed in this process; else nothing."""
    if _ARMED:
        _hit(name)


def _hit(name: str) -> None:
    with _LOCK:
        arm = _ARMED.get(name)
        if arm is None:
            return
        fires, rest = core.hit(arm)
        if rest is None:
            del _ARMED[name]
        else:
            _ARMED[name] = rest
        if fires:
            _FIRED[name] = _FIRED.get(name, 0) + 1
    if fires:
        _fire(name, arm)


def _fire(name: str, arm: core.Arm) -> None:
    if arm.action == "crash":
        log.critical("failpoint %s: crash (SIGKILL to itself, pid %d)", name, os.getpid())
        _save_counts()
        for h in logging.getLogger().handlers:
            h.flush()
        os.kill(os.getpid(), signal.SIGKILL)
        os._exit(137)                                  # (not reached)
    if arm.action == "error":
        log.warning("failpoint %s: error (%s)", name, os.strerror(arm.errno_))
        raise OSError(arm.errno_, f"failpoint {name}: {os.strerror(arm.errno_)}")
    if _on_event_loop():
        log.warning("failpoint %s: sleeping %.3f s on the event loop thread: the whole process stalls",
                    name, arm.sleep_s)
    time.sleep(arm.sleep_s)


def disk(op: str) -> None:
    """A ``op`` ("write", "sync", "read") on this process's data files: fail it
    or delay it as the disk faults set here say; nothing on a healthy disk.
    Called next to the system call it stands for: in worker threads, and
    on the event loop's thread where a WAL commits there (meta/wal.py)."""
    faults = _DISK["faults"]
    if faults:
        _disk_hit(faults, op)


def _disk_hit(faults: core.DiskFaults, op: str) -> None:
    err, delay = faults.outcome(op, random.random())
    if delay:
        _count(f"{op} slow")
        time.sleep(delay)
    if err:
        _count(f"{op} {errno_name(err)}")
        raise OSError(err, f"disk fault: {os.strerror(err)}")


def _count(what: str) -> None:
    with _LOCK:
        _DISK_HITS[what] = _DISK_HITS.get(what, 0) + 1


def errno_name(err: int) -> str:
    import errno as errnos
    return errnos.errorcode.get(err, str(err))


def set_disk(doc: dict | None, *, replace: bool = True) -> core.DiskFaults:
    """Set this process's disk faults from ``{"full", "errors", "slow_ms"}``
    (``replace`` False: change only the keys given); None or {} heals the
    disk. Raises core.FailpointSpecError, changing nothing, for a bad value."""
    faults = core.DiskFaults.from_doc(doc) if replace else _DISK["faults"].merged(doc or {})
    if faults != _DISK["faults"]:
        log.warning("disk faults: %s", faults.describe())
    _DISK["faults"] = faults
    return faults


def disk_faults() -> core.DiskFaults:
    return _DISK["faults"]


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False


def arm(spec: str, *, replace: bool = False) -> str:
    """Arm the entries of ``spec`` that apply to this process (``off`` disarms
    a point; ``replace``: disarm every other point first). Returns what is armed
    now, as a spec. Raises core.FailpointSpecError, arming nothing, if the spec
    does not parse."""
    entries = core.for_process(core.parse(spec), _state["process"])
    with _LOCK:
        now = core.apply(_ARMED, entries, replace=replace)
        _ARMED.clear()
        _ARMED.update(now)
        text = core.format_spec(_ARMED)
    if entries or replace:
        log.warning("failpoints armed: %s", text or "none")
    return text


def arm_from_environment(process: str | None, counts_file=None) -> None:
    """Arm what ``$MINIS3_FAILPOINTS`` says, as process ``process`` (the name
    a spec's ``PROCESS:`` prefix is matched against: node-a1, meta-az-b,
    scrubber), less what an earlier run of this process spent before it
    crashed (``counts_file``, a pathlib.Path: see the module docstring)."""
    _state["process"], _state["counts_file"] = process, counts_file
    spec = _state["env_spec"] = os.environ.get(ENV, "")
    if not spec.strip():
        if counts_file is not None:
            counts_file.unlink(missing_ok=True)
        return
    try:
        entries = core.for_process(core.parse(spec), process)
    except core.FailpointSpecError as exc:
        raise SystemExit(f"${ENV}: {exc}") from None
    left = _counts_left(counts_file, spec)
    if left is not None:
        entries = [left[e.name] for e in entries if e.name in left]
    with _LOCK:
        _ARMED.update(core.apply({}, entries))
    log.warning("failpoints armed from $%s: %s%s", ENV, core.format_spec(_ARMED) or "none",
                " (what an earlier run left)" if left is not None else "")


def _counts_left(counts_file, spec: str) -> dict | None:
    """name → Entry still armed, as the last crash of this process left them
    for the same spec; None if there is no such record."""
    try:
        doc = json.loads(counts_file.read_text()) if counts_file is not None else None
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("spec") != spec:
        return None
    return {e.name: e for e in core.parse(doc.get("armed", ""))}


def _save_counts() -> None:
    """Before a crash: what is still armed, for the restart (arm_from_environment)."""
    path = _state["counts_file"]
    if path is None or not _state["env_spec"].strip():
        return
    with _LOCK:
        armed = core.format_spec(_ARMED)
    try:
        path.write_text(json.dumps({"spec": _state["env_spec"], "armed": armed}))
    except OSError as exc:
        log.error("failpoints: could not record the counts left (%s): a restart arms the whole spec again", exc)


def status() -> dict:
    """Every point, what it means, how it is armed here and how often it fired
    (the answer to ``GET /failpoints``)."""
    with _LOCK:
        armed, fired = dict(_ARMED), dict(_FIRED)
    faults = _DISK["faults"]
    with _LOCK:
        hits = dict(_DISK_HITS)
    return {"process": _state["process"], "pid": os.getpid(), "armed": core.format_spec(armed),
            "disk": dict(faults.to_doc(), state=faults.describe(), hits=hits),
            "points": [{"name": n, "what": what, "armed": armed[n].describe() if n in armed else None,
                        "fired": fired.get(n, 0)} for n, what in core.POINTS.items()]}


def reset() -> None:
    """Disarm everything and forget the counts (for tests that arm points in their own process)."""
    with _LOCK:
        _ARMED.clear()
        _FIRED.clear()
        _DISK_HITS.clear()
    _state.update(counts_file=None, env_spec="")
    _DISK["faults"] = core.DiskFaults()
