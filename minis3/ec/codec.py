"""The erasure codec: one segment in, k+m fragments out, and back.

A thin wrapper around pyeclib (liberasurecode). Fragments keep pyeclib's own
80-byte header, which records the fragment index and sizes, so any k of them
decode without other bookkeeping.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import struct
import zlib
from typing import Sequence

from pyeclib.ec_iface import ECDriver

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MMAP_THRESHOLD = 8 << 20
TRIM_THRESHOLD = 32 << 20
#: The same tuning for a child process, through glibc's environment variables.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD), "MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD)}


@functools.lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL:
    """glibc, found once (``find_library`` runs a subprocess)."""
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def tune_malloc(one_arena: bool = False) -> bool:
    """Keep 1 MiB codec buffers in glibc's heap, hot, instead of fresh pages.

    With the defaults every encode mmaps its output buffers and page-faults
    them in. Raising only the mmap threshold is not enough: freeing them at the
    top of the heap then trims it (brk shrinks, the next encode faults the pages
    back in). Measured here: encode ~1,000 MB/s by default, 900-5,500 (erratic)
    with the mmap threshold alone, a steady ~4,000 with both thresholds raised.

    ``one_arena``: every thread allocates from the main heap, for a process
    that gives its memory back when idle (``give_back_memory``). Otherwise
    each worker thread that hashes or codes gets an arena of its own, and
    ``malloc_trim`` never shrinks the free top of those (glibc trims a thread
    arena only on a free, and only past the 32 MiB trim threshold): measured,
    the frontend kept 60-135 MiB of free thread-arena pages after 70 stalled
    uploads, 0 with one arena. Call it before any thread starts.
    Returns True when mallopt accepted every setting (False on non-glibc systems).
    """
    try:
        libc = _libc()
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
            bool(libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)) and \
            (not one_arena or bool(libc.mallopt(_M_ARENA_MAX, 1)))
    except (OSError, AttributeError):
        return False


def give_back_memory() -> bool:
    """Return the heap's free pages to the system (glibc's ``malloc_trim(0)``).

    The tuning above keeps freed buffers in the heap, which is what a busy
    process wants; but after a burst that ends badly (70 stalled uploads, each
    holding a few segments) the heap stays at its peak. A process calls this
    when it goes idle, so its RSS returns to its baseline. False off glibc."""
    try:
        _libc().malloc_trim(0)
        return True
    except (OSError, AttributeError):
        return False


#: liberasurecode's fragment header (fragment_header_t, packed, host byte
#: order: little-endian here): fragment_metadata_t {u32 idx, u32 size (the
#: payload after the header), u32 frag_backend_metadata_size, u64
#: orig_data_size, u8 chksum_type, u32 chksum[8], u8 chksum_mismatch, u8
#: backend_id, u32 backend_version} = 59 bytes, then u32 magic, u32
#: libec_version, u32 metadata_chksum (zlib's CRC-32 of the 59 bytes), padding.
HEADER_SIZE = 80
_META = struct.Struct("<IIIQB")          # idx, size, backend metadata size, orig data size, chksum type
_META_LEN = 59
_TAIL = struct.Struct("<III")            # magic, libec_version, metadata checksum (at _META_LEN)
_MAGIC = 0xB0C5ECC
_CHKSUM_NONE = 1                         # no inline payload checksum (pyeclib's default)
#: Backends whose data fragments were checked to be the segment's bytes in
#: order (systematic codes: data fragment i carries bytes [i*size, (i+1)*size)
#: of the segment, zero-padded), so that with all k of them "decoding" is a
#: join: tests/unit/test_codec_fast.py compares with pyeclib's decode for each.
#: Each Codec also re-checks its backend once at start (``_layout_ok``).
SYSTEMATIC_BACKENDS = frozenset({"isa_l_rs_vand", "isa_l_rs_vand_inv", "isa_l_rs_cauchy",
                                 "liberasurecode_rs_vand"})


def codec_for(k: int, m: int, backend: str) -> "Codec":
    """The codec of a k+m scheme, made once per process and shared (a storage
    class's scheme, or the one an older record was written with)."""
    return _codec_for(int(k), int(m), backend)


@functools.lru_cache(maxsize=16)
def _codec_for(k: int, m: int, backend: str) -> "Codec":
    return Codec(k, m, backend)


class Codec:
    def __init__(self, k: int, m: int, backend: str = "isa_l_rs_vand"):
        self.k, self.m, self.backend = k, m, backend
        self._driver = ECDriver(k=k, m=m, ec_type=backend)
        self.fast = backend in SYSTEMATIC_BACKENDS and self._layout_ok()

    @property
    def width(self) -> int:
        return self.k + self.m

    def encode(self, segment: bytes) -> list[bytes]:
        return self._driver.encode(segment)

    def decode(self, fragments: list[bytes]) -> bytes:
        """Any k (or more) fragments of one segment → the segment's bytes (pyeclib)."""
        return self._driver.decode(fragments)

    def decode_segment(self, fragments: Sequence[bytes]) -> bytes:
        """Like ``decode``, but when all k data fragments are among
        ``fragments`` (and the backend is systematic) the segment is their
        payloads joined: one copy, no pyeclib call. Anything else (a data
        fragment missing, a header that does not parse) goes to pyeclib."""
        pieces = self.data_pieces(fragments)
        if pieces is None:
            return self._driver.decode(list(fragments))
        return b"".join(pieces)

    def data_pieces(self, fragments: Sequence[bytes]) -> list[memoryview] | None:
        """The segment's bytes as views into the k data fragments, in order
        (no copy), or None when they cannot be had that way: a data fragment
        missing, a header that is not liberasurecode's (bad magic, metadata
        checksum, sizes), an inline checksum or backend metadata, or a backend
        not in SYSTEMATIC_BACKENDS. Like liberasurecode's own shortcut, every
        fragment given must agree on the original size."""
        if not self.fast:
            return None
        k = self.k
        data: list = [None] * k
        orig = -1
        for frag in fragments:
            if len(frag) < HEADER_SIZE:
                return None
            idx, size, backend_meta, orig_size, chksum_type = _META.unpack_from(frag)
            magic, _version, meta_sum = _TAIL.unpack_from(frag, _META_LEN)
            if (magic != _MAGIC or backend_meta or chksum_type != _CHKSUM_NONE
                    or len(frag) != HEADER_SIZE + size or (orig >= 0 and orig_size != orig)
                    or zlib.crc32(memoryview(frag)[:_META_LEN]) != meta_sum):
                return None
            orig = orig_size
            if idx < k:
                data[idx] = frag
        if orig < 0 or any(f is None for f in data):
            return None
        pieces, left = [], orig
        for frag in data:
            if left <= 0:
                break
            take = min(len(frag) - HEADER_SIZE, left)
            pieces.append(memoryview(frag)[HEADER_SIZE:HEADER_SIZE + take])
            left -= take
        return pieces if left == 0 else None

    def _layout_ok(self) -> bool:
        """Check on this backend, once, that the data fragments of a few
        segments are the segment's bytes (what ``data_pieces`` relies on)."""
        self.fast = True
        try:
            for n in (1, 4096 * self.k + 1, 65537):
                seg = os.urandom(n)
                frags = self._driver.encode(seg)
                pieces = self.data_pieces(frags[::-1])
                if pieces is None or b"".join(pieces) != seg:
                    return False
            return True
        except Exception:
            return False
        finally:
            self.fast = False

    def fragment_sizes(self, size: int, segment_size: int) -> tuple[int, int, int]:
        """(fragment size of a full segment, of the last segment, segments) for
        an object of ``size`` bytes: what each block of a fragment file holds."""
        if size == 0:
            return 0, 0, 0
        # As the PUT path cuts it (ecwrite.segments): whole segments, then what
        # is left as a segment of its own, however small. (pyeclib's
        # get_segment_info folds a last segment of fewer than k bytes into the
        # one before, which the PUT path never does.)
        segments = -(-size // segment_size)
        last_len = size - (segments - 1) * segment_size
        last = self._driver.get_segment_info(last_len, segment_size)["fragment_size"]
        if segments == 1:
            return last, last, 1
        return self._driver.get_segment_info(segment_size, segment_size)["fragment_size"], last, segments

    def reconstruct(self, fragments: list[bytes], indexes: list[int]) -> list[bytes]:
        return self._driver.reconstruct(fragments, indexes)
