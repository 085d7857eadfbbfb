"""Reading /proc/<pid>/stat (Linux): used by `minis3 status` and `minis3 bench`."""
from __future__ import annotations

import os
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def proc_stat(pid: int) -> list[bytes] | None:
    """The fields of /proc/<pid>/stat after the command name, from ``state``
    on (so index 0 is state, 1 ppid, 11 utime, 12 stime, 21 rss in pages);
    None if the process is gone. The name is skipped by its last ``)``: it
    may contain spaces and parentheses."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None


def cpu_seconds(fields: list[bytes]) -> float:
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _cpu_clock(pid: int) -> int:
    """The id of a process's CPU-time clock, as ``clock_getcpuclockid(3)``
    makes it on Linux (Python's time module has no such call): the pid's
    bitwise complement shifted left by three, with 2 for "scheduler time,
    the whole process"."""
    return ((~pid) << 3) | 2


def process_cpu_seconds(pid: int, fields: list[bytes]) -> float:
    """CPU seconds a process has used, every thread of it (exited ones too).

    From its CPU-time clock, which counts nanoseconds, where the kernel lets
    us read it; else from ``fields`` (its /proc stat), which counts 10 ms
    ticks: there a phase that cost a process 6 ms reads 0 or 10 ms, and a
    short phase spread over a cluster's ten processes can read 0 in all."""
    try:
        return time.clock_gettime(_cpu_clock(pid))
    except OSError:
        return cpu_seconds(fields)
