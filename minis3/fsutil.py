"""Durability helpers shared by every process that writes files."""
from __future__ import annotations

import errno
import fcntl
import mmap
import os
import threading
from pathlib import Path


def fsync_dir(path) -> None:
    """fsync a directory, so a rename or a new file in it survives a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_once(path: Path, data: bytes) -> bool:
    """Write ``path`` (mode 0600) whole unless it exists, the first of racing processes
    winning: a temporary file, fsynced, hard-linked into place, the directory fsynced.
    False when another process made it first (its content stands)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
        made = True
    except FileExistsError:
        made = False
    finally:
        os.unlink(tmp)
    fsync_dir(path.parent)
    return made


_SYNC_FILE_RANGE_WRITE = 2
try:
    import ctypes
    import ctypes.util
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    _sync_file_range = _libc.sync_file_range
    _sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
except (OSError, AttributeError):          # not Linux/glibc: the final fsync does it all
    _sync_file_range = None

_O_DIRECT = getattr(os, "O_DIRECT", 0)   # 0: not Linux, never direct



def write_json_durably(path, doc) -> None:
    """Replace ``path`` with ``doc`` as JSON atomically: write a temporary
    file, fsync it, rename it over ``path``, fsync the directory."""
    import json
    import uuid
    path = Path(path)
    # A temporary name of its own: two writers of the same file at once must
    # not rename each other's temporary file away.
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "w") as f:
        json.dump(doc, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


#: Direct I/O moves whole blocks of this alignment (the page size covers any
#: device's logical block size and is what the kernel checks against).
DIRECT_ALIGN = 4096


class AlignedBuffers:
    """Page-aligned staging buffers for direct I/O, reused: a buffer this
    process already touched costs nothing to fill again, where a fresh one
    faults in its pages (on this machine's VM, a first-touched page costs
    about as much as the copy into it)."""

    def __init__(self, size: int, keep: int = 16):
        self.size, self.keep = size, keep
        self._free: list[mmap.mmap] = []
        self._lock = threading.Lock()

    def get(self) -> mmap.mmap:
        with self._lock:
            if self._free:
                return self._free.pop()
        return mmap.mmap(-1, self.size)

    def put(self, buf: mmap.mmap) -> None:
        with self._lock:
            if len(self._free) < self.keep:
                self._free.append(buf)
                return
        buf.close()


class DurableFile:
    """A new file written in pieces and made durable at the end.

    It is written with direct I/O (``O_DIRECT``) where the file system allows
    it: the pieces are gathered in a page-aligned buffer (1 MiB) and each full
    buffer goes from it to the device, past the page cache; the last partial
    block, or the whole of a file smaller than the buffer, is written through
    the page cache; then one fsync makes it all durable.
    Measured on this machine (a VM), writing 1 GiB through the page cache
    cost 0.25–3 s of kernel CPU (new page-cache pages, and writing them
    back), and with direct I/O 0.06 s: for a storage node that is most of the
    CPU a large PUT costs it. Where direct I/O is refused (tmpfs), the file is
    written through the page cache, and every ``WRITEBACK_STEP`` bytes the
    kernel is asked to start writing the pages back
    (``sync_file_range(SYNC_FILE_RANGE_WRITE)``, which does not wait), so the
    closing fsync does not flush it all at once.

    Blocking calls: run them in a worker thread. A lock makes close() wait
    for a write still running in a thread whose awaiting task was cancelled,
    so the descriptor is never closed (and its number reused by another file)
    under a write.
    """

    WRITEBACK_STEP = 8 << 20
    BUFFERS = AlignedBuffers(1 << 20)

    def __init__(self, path, *, direct: bool = True, make_parent: bool = False) -> None:
        """``make_parent``: create the directory if it is missing (say, a
        wiped disk's tmp/), rather than fail."""
        try:
            self.fd, is_direct = self._create(path, direct)
        except FileNotFoundError:
            if not make_parent:
                raise
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.fd, is_direct = self._create(path, direct)
        self._buf, self._fill = (self.BUFFERS.get() if is_direct else None), 0
        self.size = 0
        self._started = 0
        self._lock = threading.Lock()

    @staticmethod
    def _create(path, direct: bool) -> tuple[int, bool]:
        """A new file's descriptor, and whether it is open for direct I/O."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        fd = open_direct(path, flags) if direct else -1
        return (fd, True) if fd >= 0 else (os.open(path, flags, 0o644), False)

    @property
    def direct(self) -> bool:
        return self._buf is not None

    def write(self, *pieces: bytes) -> None:
        with self._lock:
            if self.fd < 0:
                raise ValueError("write to a closed DurableFile")
            if self._buf is not None:
                self._stage(pieces)
            else:
                self._write_through(pieces)

    def _stage(self, pieces) -> None:
        buf, cap = self._buf, len(self._buf)
        for piece in pieces:
            view = memoryview(piece).cast("B")
            while view:
                n = min(len(view), cap - self._fill)
                buf[self._fill:self._fill + n] = view[:n]
                self._fill += n
                self.size += n
                view = view[n:]
                if self._fill == cap:
                    self._write_all(memoryview(buf))
                    self._fill = 0

    def _write_all(self, view: memoryview) -> None:
        while view:
            try:
                n = os.write(self.fd, view)
            except OSError as exc:
                # A file system that opened the file for direct I/O but will
                # not write it so: go on through the page cache.
                if exc.errno != errno.EINVAL or not self._clear_direct():
                    raise
                continue
            view = view[n:]

    def _clear_direct(self) -> bool:
        """Turn direct I/O off for this descriptor; False if it was off already."""
        flags = fcntl.fcntl(self.fd, fcntl.F_GETFL)
        if not flags & _O_DIRECT:
            return False
        fcntl.fcntl(self.fd, fcntl.F_SETFL, flags & ~_O_DIRECT)
        return True

    def _write_through(self, pieces) -> None:
        for piece in pieces:
            view = memoryview(piece)
            while view:
                n = os.write(self.fd, view)
                view = view[n:]
                self.size += n
        if _sync_file_range is not None and self.size - self._started >= self.WRITEBACK_STEP:
            _sync_file_range(self.fd, self._started, self.size - self._started, _SYNC_FILE_RANGE_WRITE)
            self._started = self.size

    def _flush_tail(self) -> None:
        """The staged bytes: whole blocks direct, the rest through the page
        cache. A file smaller than one buffer goes through the page cache
        whole, where a read soon after finds it (a storage node reads small
        fragment files through the page cache and big ones direct)."""
        whole = self._fill - self._fill % DIRECT_ALIGN if self.size > self._fill else 0
        if whole:
            self._write_all(memoryview(self._buf)[:whole])
        if whole < self._fill:
            self._clear_direct()
            self._write_all(memoryview(self._buf)[whole:self._fill])
        self._fill = 0

    def _release(self) -> None:
        os.close(self.fd)
        self.fd = -1
        if self._buf is not None:
            self.BUFFERS.put(self._buf)
            self._buf = None

    def sync_and_close(self) -> None:
        with self._lock:
            try:
                if self._buf is not None:
                    self._flush_tail()
                os.fsync(self.fd)
            finally:
                self._release()

    def close(self) -> None:
        with self._lock:
            if self.fd >= 0:
                self._release()

    def __del__(self) -> None:          # a write abandoned by a cancelled task
        if getattr(self, "fd", -1) >= 0:
            os.close(self.fd)
            self.fd = -1


#: Buffers for direct reads: a storage node reads about 1 MiB of blocks at a time.
READ_BUFFERS = AlignedBuffers(4 << 20, keep=8)


def open_direct(path, flags: int = os.O_RDONLY) -> int:
    """A descriptor of ``path`` opened with ``flags`` and direct I/O, or -1
    where there is none (not Linux) or the file system refuses it."""
    if not _O_DIRECT:
        return -1
    try:
        return os.open(path, flags | _O_DIRECT, 0o644)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        return -1


def pread_direct(fd: int, n: int, offset: int) -> bytes | None:
    """``n`` bytes from ``offset`` of a descriptor from open_direct (fewer at
    the end of the file), past the page cache: the whole blocks around them
    are read into a reused aligned buffer and the bytes wanted copied out.
    None when the span does not fit a buffer (read it through the page cache).

    Why (measured on this machine, a VM): reading 512 MiB the page cache did
    not hold cost 1.2 s of kernel CPU, and 0.03 s direct; a fragment written
    with direct I/O (DurableFile) is never in the page cache."""
    start = offset - offset % DIRECT_ALIGN
    span = -(-(offset + n - start) // DIRECT_ALIGN) * DIRECT_ALIGN
    if span > READ_BUFFERS.size:
        return None
    buf = READ_BUFFERS.get()
    view = memoryview(buf)
    try:
        got = 0
        while got < span:
            r = os.preadv(fd, [view[got:span]], start + got)
            got += max(r, 0)
            if r <= 0 or r % DIRECT_ALIGN:        # the end of the file
                break
        lo = offset - start
        return bytes(view[lo:min(got, lo + n)]) if got > lo else b""
    finally:
        view.release()
        READ_BUFFERS.put(buf)
