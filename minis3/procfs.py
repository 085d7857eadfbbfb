"""Reading /proc/<pid>/stat (Linux): used by `minis3 status` and `minis3 bench`."""
from __future__ import annotations

import os

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
