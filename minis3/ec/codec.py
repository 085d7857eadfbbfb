"""The erasure codec: one segment in, k+m fragments out, and back.

A thin wrapper around pyeclib (liberasurecode). Fragments keep pyeclib's own
80-byte header, which records the fragment index and sizes, so any k of them
decode without other bookkeeping.
"""
from __future__ import annotations

import ctypes
import ctypes.util

from pyeclib.ec_iface import ECDriver

_M_MMAP_THRESHOLD = -3


def tune_malloc(threshold: int = 8 << 20) -> bool:
    """Raise glibc's mmap threshold in this process.

    With the default, every 1 MiB encode mmaps fresh buffers and page-faults
    them in; measured here that makes isa_l several times slower. Returns True
    when mallopt accepted it (False on non-glibc systems).
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold))
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

    def reconstruct(self, fragments: list[bytes], indexes: list[int]) -> list[bytes]:
        return self._driver.reconstruct(fragments, indexes)
