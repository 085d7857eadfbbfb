"""Reading another process's CPU time (minis3/procfs.py), as `minis3 bench`
does for every server process before and after each phase."""
from __future__ import annotations

import subprocess
import sys

from minis3.procfs import proc_stat, process_cpu_seconds

# The child spins until its own CPU clock has moved on by the amount it is
# sent, prints that clock, and waits for the next amount.
CHILD = """
import sys, time
for line in sys.stdin:
    end = time.process_time() + float(line)
    while time.process_time() < end:
        pass
    print(repr(time.process_time()), flush=True)
"""


def test_another_process_cpu_time_to_the_millisecond():
    """Read while the child waits, its CPU time is what the child itself saw
    (plus the little it spent printing), not /proc's count of 10 ms ticks,
    which falls short of it by up to a tick: a short phase read in ticks can
    cost a server nothing."""
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    try:
        for spin in (0.003, 0.0045, 0.007):
            child.stdin.write(f"{spin}\n")
            child.stdin.flush()
            own = float(child.stdout.readline())
            read = process_cpu_seconds(child.pid, proc_stat(child.pid))
            assert own <= read < own + 0.002, (spin, own, read)
    finally:
        child.kill()
        child.wait()
