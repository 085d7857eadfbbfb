"""Hybrid logical clock timestamps for metadata versions.

A timestamp is one integer: wall-clock milliseconds in the high bits and a
16-bit logical counter in the low bits. It never goes backwards in one process,
it advances past any timestamp the process has seen (``observe``), and two
timestamps order writes the way S3 does: the later one wins. Metadata
replicas merge their copies by comparing these integers (meta/server.py).
"""
from __future__ import annotations

import threading
import time

LOGICAL_BITS = 16
LOGICAL_MASK = (1 << LOGICAL_BITS) - 1


def physical_ms(ts: int) -> int:
    return ts >> LOGICAL_BITS


class HLC:
    def __init__(self, clock=lambda: int(time.time() * 1000)):
        self._clock = clock
        self._last = 0
        self._lock = threading.Lock()

    def now(self) -> int:
        with self._lock:
            wall = self._clock() << LOGICAL_BITS
            self._last = wall if wall > self._last else self._last + 1
            return self._last

    def observe(self, ts: int) -> None:
        """Move past a timestamp seen from another process."""
        with self._lock:
            if ts > self._last:
                self._last = ts
