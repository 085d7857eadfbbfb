"""The erasure codec: one segment in, k+m fragments out, and back.

A thin wrapper around pyeclib (liberasurecode). Fragments keep pyeclib's own
80-byte header, which records the fragment index and sizes, so any k of them
decode without other bookkeeping.
"""
from __future__ import annotations

import ctypes
import ctypes.util

from pyeclib.ec_iface import ECDriver

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 8 << 20
TRIM_THRESHOLD = 32 << 20
#: The same tuning for a child process, through glibc's environment variables.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD), "MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD)}


def tune_malloc() -> bool:
    """Keep 1 MiB codec buffers in glibc's heap, hot, instead of fresh pages.

    With the defaults every encode mmaps its output buffers and page-faults
    them in. Raising only the mmap threshold is not enough: freeing them at the
    top of the heap then trims it (brk shrinks, the next encode faults the pages
    back in). Measured here: encode ~1,000 MB/s by default, 900-5,500 (erratic)
    with the mmap threshold alone, a steady ~4,000 with both thresholds raised.
    Returns True when mallopt accepted both (False on non-glibc systems).
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
            bool(libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    except (OSError, AttributeError):
        return False


class Codec:
    def __init__(self, k: int, m: int, backend: str = "isa_l_rs_vand"):
        self.k, self.m, self.backend = k, m, backend
        self._driver = ECDriver(k=k, m=m, ec_type=backend)

    @property
    def width(self) -> int:
        return self.k + self.m

    def encode(self, segment: bytes) -> list[bytes]:
        return self._driver.encode(segment)

    def decode(self, fragments: list[bytes]) -> bytes:
        """Any k (or more) fragments of one segment → the segment's bytes."""
        return self._driver.decode(fragments)

    def fragment_sizes(self, size: int, segment_size: int) -> tuple[int, int, int]:
        """(fragment size of a full segment, of the last segment, segments) for
        an object of ``size`` bytes: what each block of a fragment file holds."""
        if size == 0:
            return 0, 0, 0
        info = self._driver.get_segment_info(size, segment_size)
        return info["fragment_size"], info["last_fragment_size"], info["num_segments"]

    def reconstruct(self, fragments: list[bytes], indexes: list[int]) -> list[bytes]:
        return self._driver.reconstruct(fragments, indexes)
