"""Failpoints, pure: the named steps where a crash or an error changes what is
on disk or who knows what, and the little language that arms them.

A *failpoint* is a named place in the code (``failpoint("storage.land.before_rename")``,
see rpc/failpoints.py) where a test or an operator can make the process crash
(exit at once, as ``kill -9`` would), fail with an I/O error, or sleep. Crashes
are most interesting exactly between two steps of making something durable:
after the fsync and before the rename, after the WAL's fdatasync and before the
answer. A plain ``kill -9`` lands there only by luck; a failpoint lands there
every time, so a test can say "a crash *here* loses nothing acknowledged".

:data:`POINTS` lists every point with what is on disk at that moment (a test
checks that every name in it has one call site and every call site a name in
it). This module parses and formats the arming *spec*, and counts a point's
hits down; it does no I/O. The spec is entries separated by ``;``::

    storage.land.before_rename=crash@1; meta.wal.before_fdatasync=error*3; meta.wal.before_write=sleep(200ms)

    NAME=ACTION[COUNT]      ACTION: crash | error | error(ENOSPC) | sleep(200ms) | sleep(2s) | off
                            COUNT:  (none) every time | *N the next N times | @N the Nth time only
    PROCESS:NAME=ACTION     only in that process (node-a1, meta-az-b, scrubber, frontend): for an
                            environment that every process of a cluster inherits

*Disk faults* are the other half: not one step but every disk operation of a
process's data directory. :class:`DiskFaults` says how a process's disk
misbehaves (full: every write fails with ENOSPC; a fraction of reads, writes
and syncs failing with EIO; every sync and read taking longer) and
:meth:`DiskFaults.outcome` what one operation meets; rpc/failpoints.py's
``disk(op)`` is called at each write, sync and read of fragment files, the
WAL, the blob log and snapshots (``minis3 chaos disk-full``, ``disk-errors``,
``slow-disk``).
"""
from __future__ import annotations

import difflib
import errno
import re
from dataclasses import dataclass

#: Every failpoint: its name (``layer.what.when``) and the state of the disk
#: (and of everyone's knowledge) when it is reached. A *crash* here leaves
#: exactly that; an *error* makes the step fail as a failing disk would.
POINTS: dict[str, str] = {
    "storage.land.before_fsync":
        "a PUT's fragment: every block is written to its tmp/ file, maybe only in the page cache; "
        "nothing at its final name; the frontend has no answer",
    "storage.land.before_rename":
        "a PUT's fragment: its tmp/ file is fsynced, complete and durable, but not at its final "
        "name (a restart empties tmp/); the frontend has no answer",
    "storage.land.before_dir_fsync":
        "a PUT's fragment: renamed to its final name, the directory not yet fsynced (a power loss "
        "could take the rename back); the frontend has no answer",
    "storage.rebuild.before_fsync":
        "a rebuild: a finished job's rebuilt fragments are written to tmp/, not fsynced; "
        "nothing renamed; the scrubber has no answer",
    "storage.rebuild.before_rename":
        "a rebuild: the batch's fragments are fsynced in tmp/; this one is not renamed yet "
        "(those before it in the batch are); the scrubber has no answer",
    "storage.delete.before_unlink":
        "a fragment DELETE (the scrubber's GC, a failed PUT's clean-up): the file's age is checked "
        "under the landing lock and the file is still there; the caller has no answer",
    "meta.wal.before_blob_sync":
        "a metadata group commit with big inline payloads: they are appended to the blob log "
        "(page cache), not yet durable; no line naming them is written, no writer answered",
    "meta.wal.before_write":
        "a metadata group commit: the batch's lines are encoded (its big payloads durable in the "
        "blob log), nothing of them in the WAL file; not applied, no writer answered",
    "meta.wal.before_fdatasync":
        "a metadata group commit: the batch is written to the WAL file (page cache), not yet "
        "durable; not applied, no writer answered",
    "meta.wal.after_fdatasync":
        "a metadata group commit: the batch is durable in the WAL, but not applied to the table "
        "and no writer answered (a crash here: on disk, and no caller heard of it)",
    "meta.snapshot.before_rename":
        "a partition snapshot: fsynced as its .tmp file, not renamed; the older snapshot and the "
        "WALs since still hold everything (recovery removes the .tmp)",
    "meta.split.before_manifest":
        "a partition split on one replica: each half's directory holds hard links to the partition's "
        "snapshot and WAL files and an empty WAL of its own; the partition list still names the "
        "partition alone (a restart removes the halves' directories as leftovers, and splits again)",
    "meta.split.after_manifest":
        "a partition split on one replica: the partition list names the two halves, durably; the "
        "partition's own directory is still there, no longer listed, and writes it accepted are still "
        "landing in the WAL file the halves link to (a restart recovers each half from the links, "
        "keeping its range, and removes the partition's directory)",
    "meta.move.after_copy":
        "a replica move, in the index manager (scrubber): the new holder lists the partition as "
        "incoming, with a full copy of the range; the map does not name it yet, the old holder serves "
        "(a restarted manager releases the copy: the move is abandoned)",
    "meta.move.after_switch":
        "a replica move, in the index manager (scrubber): the map naming the new holder is published "
        "(adopted by every metadata process that answered); the old holder is not fenced, so frontends "
        "with the old map still write there (a restarted manager fences, catches up and releases)",
    "meta.move.after_fence":
        "a replica move, on the old holder: it has adopted the map that gives the range away "
        "(map.json, durably) and every write it accepted is durable; the new holder has not pulled "
        "them yet, and the manager has no answer",
    "meta.move.before_serving":
        "a replica move, on the new holder: it has pulled every version since the copy began, but "
        "its partition list still says incoming (it answers no reads); the old holder is fenced and "
        "still holds its copy",
    "meta.move.before_release":
        "a replica move, in the index manager (scrubber): the new holder serves the range; the old "
        "holder is fenced but still lists and keeps its copy on disk (a restarted manager releases it)",
    "frontend.put.before_commit":
        "a PUT (or a POST form upload, an upload part): every fragment is durable on its node; no metadata replica was "
        "sent the record, and the client has no answer (the fragments are orphans the scrubber's GC "
        "removes once older than its grace period)",
    "frontend.put.after_commit":
        "a PUT (or a POST form upload, an upload part): its record is durable on a write quorum of metadata replicas, "
        "so the object is visible; the client has no answer (an outcome it cannot know: its retry "
        "writes the object again)",
    "frontend.multipart.before_commit":
        "a CompleteMultipartUpload: the upload and part records (and the parts' fragments) are "
        "durable and checked against the client's list; no object record yet, nothing visible, the "
        "client has no answer (a retry completes it)",
    "frontend.multipart.after_commit_before_cleanup":
        "a CompleteMultipartUpload: the object's manifest record is committed (the object is "
        "visible, pointing at the parts' fragments); the upload record is not yet deleted, so the "
        "upload is still listed; the client has no answer (a retry answers the same 200 and "
        "deletes the upload record)",
}

ACTIONS = ("crash", "error", "sleep", "off")


class FailpointSpecError(ValueError):
    """A spec that names no known failpoint or action, or a count or a time that is not one."""


@dataclass(frozen=True)
class Arm:
    """What one armed failpoint does, and when.

    ``skip`` hits pass first, then it fires ``times`` times (None: for ever),
    then it disarms itself. ``crash@1`` is skip 0, times 1; ``error@3`` skip 2,
    times 1; ``error*3`` skip 0, times 3; ``sleep(1s)`` skip 0, times None."""
    action: str                         # crash | error | sleep
    sleep_s: float = 0.0
    errno_: int = errno.EIO
    skip: int = 0
    times: int | None = None

    def describe(self) -> str:
        """The arm as a spec's action text (``crash@1``, ``sleep(200ms)*2``)."""
        text = self.action
        if self.action == "sleep":
            text += f"({self.sleep_s * 1000:g}ms)"
        elif self.action == "error" and self.errno_ != errno.EIO:
            text += f"({errno.errorcode.get(self.errno_, self.errno_)})"
        if self.skip or self.times == 1:
            text += f"@{self.skip + 1}"
        if self.times not in (None, 1):
            text += f"*{self.times}"
        return text


def hit(arm: Arm) -> tuple[bool, Arm | None]:
    """One pass through an armed point: whether it fires this time, and the arm
    that stays (None: it has fired its last time and disarms)."""
    if arm.skip:
        return False, Arm(arm.action, arm.sleep_s, arm.errno_, arm.skip - 1, arm.times)
    if arm.times is None:
        return True, arm
    rest = arm.times - 1
    return True, (Arm(arm.action, arm.sleep_s, arm.errno_, 0, rest) if rest else None)


@dataclass(frozen=True)
class Entry:
    """One entry of a spec: ``arm`` None means ``off`` (disarm the point)."""
    name: str
    arm: Arm | None
    process: str | None = None          # only in this process; None: in whichever reads it


_ENTRY = re.compile(r"(?:(?P<process>[A-Za-z0-9_.-]+):)?(?P<name>[a-z0-9_.]+)=(?P<action>[a-z]+)"
                    r"(?:\((?P<arg>[^)]*)\))?(?P<counts>(?:[@*]\d+)*)")


def parse(spec: str) -> list[Entry]:
    """Every entry of ``spec`` (entries separated by ``;``; blanks ignored), or
    FailpointSpecError saying which one is wrong and why."""
    out = []
    for raw in (spec or "").split(";"):
        text = "".join(raw.split())
        if not text:
            continue
        m = _ENTRY.fullmatch(text)
        if m is None:
            raise FailpointSpecError(f"{raw.strip()!r}: expected NAME=ACTION, e.g. "
                                     "storage.land.before_rename=crash@1")
        name = m["name"]
        if name not in POINTS:
            near = difflib.get_close_matches(name, POINTS, n=1)
            raise FailpointSpecError(f"no failpoint {name!r}" + (f" (did you mean {near[0]}?)" if near else "")
                                     + "; `minis3 chaos failpoints` lists them")
        out.append(Entry(name, _arm(name, m["action"], m["arg"], m["counts"]), m["process"]))
    return out


def _arm(name: str, action: str, arg: str | None, counts: str) -> Arm | None:
    if action not in ACTIONS:
        raise FailpointSpecError(f"{name}: no action {action!r} (actions: {', '.join(ACTIONS)})")
    sleep_s, err = 0.0, errno.EIO
    if action == "sleep":
        sleep_s = parse_duration(name, arg)
    elif action == "error" and arg is not None:
        err = getattr(errno, arg, None) if arg.isupper() else None
        if not isinstance(err, int):
            raise FailpointSpecError(f"{name}: error({arg}): expected an errno name such as EIO or ENOSPC")
    elif arg is not None:
        raise FailpointSpecError(f"{name}: {action} takes no argument")
    if action == "off":
        if counts:
            raise FailpointSpecError(f"{name}: off takes no count")
        return None
    skip, times = _counts(name, counts)
    return Arm(action, sleep_s, err, skip, times)


def _counts(name: str, counts: str) -> tuple[int, int | None]:
    """(skip, times) from ``@N`` (the Nth hit only), ``*N`` (N times), both, or neither."""
    at = re.findall(r"@(\d+)", counts)
    star = re.findall(r"\*(\d+)", counts)
    if len(at) > 1 or len(star) > 1 or any(int(n) < 1 for n in at + star):
        raise FailpointSpecError(f"{name}: counts are @N (the Nth time only) or *N (the next N times), N ≥ 1")
    skip = int(at[0]) - 1 if at else 0
    times = int(star[0]) if star else (1 if at else None)
    return skip, times


def parse_duration(name: str, arg: str | None) -> float:
    """Seconds from ``200ms``, ``1.5s`` (a unit is required: a bare number is ambiguous)."""
    m = re.fullmatch(r"(\d+(?:\.\d*)?)(ms|s)", arg or "")
    if m is None:
        raise FailpointSpecError(f"{name}: sleep needs a time with its unit, e.g. sleep(200ms) or sleep(2s)")
    value = float(m[1])
    return value / 1000 if m[2] == "ms" else value


def for_process(entries: list[Entry], process: str | None) -> list[Entry]:
    """The entries that apply in ``process`` (its own, and those naming no process)."""
    return [e for e in entries if e.process is None or e.process == process]


def apply(armed: dict[str, Arm], entries: list[Entry], *, replace: bool = False) -> dict[str, Arm]:
    """The armed points after ``entries`` (each replaces its point's arm, ``off``
    removes it); ``replace``: start from nothing armed instead of ``armed``."""
    out = {} if replace else dict(armed)
    for e in entries:
        if e.arm is None:
            out.pop(e.name, None)
        else:
            out[e.name] = e.arm
    return out


def format_spec(armed: dict[str, Arm]) -> str:
    """``armed`` as a spec that :func:`parse` reads back to the same arms."""
    return ";".join(f"{name}={arm.describe()}" for name, arm in sorted(armed.items()))


# -- disk faults ----------------------------------------------------------------

#: The disk operations a process reports to its disk faults (rpc/failpoints.disk).
DISK_OPS = ("write", "sync", "read")


@dataclass(frozen=True)
class DiskFaults:
    """How one process's disk misbehaves; the default, a healthy disk.

    * ``full``: every write fails with ENOSPC (syncs, reads and deletes still
      work, as on a real full disk: what is written stays readable);
    * ``errors``: this fraction (0..1) of writes, syncs and reads fail with
      EIO, as a disk with bad sectors or a failing controller;
    * ``slow_s``: every sync and every read takes this much longer, as a disk
      that retries internally or a saturated volume.
    """
    full: bool = False
    errors: float = 0.0
    slow_s: float = 0.0

    def __bool__(self) -> bool:
        return self.full or self.errors > 0 or self.slow_s > 0

    def outcome(self, op: str, draw: float) -> tuple[int, float]:
        """What one ``op`` meets, given a uniform ``draw`` in [0, 1): (the errno
        it fails with, 0 if none; seconds it is delayed first)."""
        delay = self.slow_s if op in ("sync", "read") else 0.0
        if op == "write" and self.full:
            return errno.ENOSPC, delay
        if draw < self.errors:
            return errno.EIO, delay
        return 0, delay

    def describe(self) -> str:
        """``full``, ``errors 10%``, ``slow 200ms``, joined; ``healthy`` when none."""
        parts = ["full"] if self.full else []
        if self.errors:
            parts.append(f"errors {self.errors * 100:g}%")
        if self.slow_s:
            parts.append(f"slow {self.slow_s * 1000:g}ms")
        return ", ".join(parts) or "healthy"

    def to_doc(self) -> dict:
        return {"full": self.full, "errors": self.errors, "slow_ms": self.slow_s * 1000}

    @classmethod
    def from_doc(cls, doc: dict | None) -> "DiskFaults":
        """From ``{"full": bool, "errors": 0..1, "slow_ms": ms}`` (missing keys:
        healthy); FailpointSpecError for a value out of range."""
        doc = doc or {}
        try:
            errors, slow_ms = float(doc.get("errors", 0)), float(doc.get("slow_ms", 0))
        except (TypeError, ValueError):
            raise FailpointSpecError("disk faults: errors and slow_ms must be numbers") from None
        if not 0 <= errors <= 1:
            raise FailpointSpecError(f"disk faults: errors is a fraction from 0 to 1, not {errors:g}")
        if not 0 <= slow_ms <= 60_000:
            raise FailpointSpecError(f"disk faults: slow_ms is from 0 to 60000, not {slow_ms:g}")
        return cls(bool(doc.get("full", False)), errors, slow_ms / 1000)

    def merged(self, doc: dict) -> "DiskFaults":
        """These faults with the keys of ``doc`` changed (the others kept)."""
        return DiskFaults.from_doc({**self.to_doc(), **doc})


def parse_rate(text: str) -> float:
    """A fraction from ``0.1``, ``10%`` or ``1/10``; FailpointSpecError if it is
    not one from 0 to 1."""
    t = (text or "").strip()
    try:
        if t.endswith("%"):
            value = float(t[:-1]) / 100
        elif "/" in t:
            num, den = t.split("/", 1)
            value = float(num) / float(den)
        else:
            value = float(t)
    except (ValueError, ZeroDivisionError):
        raise FailpointSpecError(f"{text!r}: expected a rate such as 0.1, 10% or 1/10") from None
    if not 0 <= value <= 1:
        raise FailpointSpecError(f"{text!r}: a rate is from 0 to 1 (0% to 100%)")
    return value
