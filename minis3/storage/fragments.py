"""Fragment files on a storage node's disk: reading them verified, writing them durably.

Reading: :func:`open_range` opens a fragment file for a range of its blocks
(:class:`FragmentRange`), checking its header and the layout its first block
gives; :func:`open_many` opens every fragment a batch read asks for and
answers them as one body (:class:`BatchRead`, in the format of
storage/batchread.py). Every block is checked against its xxh3 before it is
sent; a file found bad raises :class:`BadFragmentFile` or is reported as a
problem, for the caller to quarantine (storage/quarantine.py).

Writing: :class:`IncomingFragment` gathers the verified blocks of a PUT into
a temporary file in tmp/ and :func:`land` makes it durable at its final path
(fsync the file, rename it into place, fsync the directory). The file format
is the one storage/blocks.py describes. Nothing here speaks HTTP:
storage/server.py does.
"""
from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

from ..fsutil import DurableFile, fsync_dir, open_direct, pread_direct
from ..rpc import tracing
from ..rpc.failpoints import disk, failpoint
from . import batchread, blocks

#: Verified blocks are written to the temp file in batches of about this size.
WRITE_BATCH = 1 << 20

#: Blocks are read from disk and verified in batches of about this size.
READ_BATCH = 1 << 20

#: A fragment file at least this big is read with direct I/O, past the page
#: cache (fsutil.pread_direct says why); a smaller one through it, where
#: a hot small object stays cached.
DIRECT_READ_MIN = 1 << 20


class BadFragmentFile(blocks.CorruptBlock):
    """A fragment file whose header is bad, with the identity (st_dev, st_ino)
    of the file that was read, for quarantine."""

    def __init__(self, message: str, identity: tuple[int, int]):
        super().__init__(message)
        self.identity = identity


class FragmentRange:
    """Blocks ``first``..``last`` (-1: to the end) of an open fragment file,
    read and verified a batch at a time (in a worker thread).

    The layout is the one storage/blocks.py describes: every block has the
    length of block 0 but the file's last one, which may be shorter and ends
    the file. So the bytes a read sends (``length``) are known from the
    file's size before any block is read, and a batch is one read of whole
    blocks. A block is good if its head agrees with that layout and its data
    with its xxh3; a file that breaks the layout is corrupt like one whose
    checksum does not match.
    """

    def __init__(self, f, identity: tuple[int, int], size: int, hlen: int, length0: int,
                 first: int, last: int, direct_fd: int = -1):
        self.f, self.identity = f, identity
        self.direct_fd = direct_fd                  # -1: read through the page cache
        self.length0 = length0
        self.stride = blocks.BLOCK_HEAD.size + length0
        body = size - hlen
        #: Blocks in the file by its size, and the data length of its last one.
        self.n_blocks = 0 if body <= 0 else -(-body // self.stride)
        self.last_length = body - (self.n_blocks - 1) * self.stride - blocks.BLOCK_HEAD.size
        end_seg = self.n_blocks - 1 if last < 0 else min(last, self.n_blocks - 1)
        self.seg = first                            # the next block to read
        self.pos = hlen + first * self.stride       # where it starts in the file
        #: The bytes this range sends when every block is good.
        self.length = max(0, min(size, hlen + (end_seg + 1) * self.stride) - self.pos) if first <= end_seg else 0
        self.end = self.pos + self.length
        # close() waits for a read still running in a thread whose awaiting
        # task was cancelled (reads go by file descriptor, so a descriptor
        # closed and reused under one would read another file).
        self._lock = threading.Lock()

    @property
    def done(self) -> bool:
        return self.pos >= self.end

    def close(self) -> None:
        with self._lock:
            self.f.close()
            if self.direct_fd >= 0:
                os.close(self.direct_fd)
                self.direct_fd = -1

    def read_verified(self, limit: int) -> tuple[bytes | memoryview, int, str | None]:
        """The next whole blocks, heads included: ``limit`` bytes or just
        over (at least one block) in one read, each block checked. Returns (the good
        blocks' bytes, their data bytes, what was wrong with the first bad
        block, or None). A bad block ends the batch: only what comes before
        it is returned."""
        with self._lock:
            disk("read")
            want = min(self.end - self.pos, max(1, -(-limit // self.stride)) * self.stride)
            buf = pread_direct(self.direct_fd, want, self.pos) if self.direct_fd >= 0 else None
            if buf is None:
                buf = _pread_exactly(self.f.fileno(), want, self.pos)
        view = memoryview(buf)
        n, head_size = len(buf), blocks.BLOCK_HEAD.size
        pos = data_bytes = 0
        seg = self.seg
        problem = None
        while pos < n:
            expected = self.length0 if seg < self.n_blocks - 1 else self.last_length
            try:
                if n - pos < head_size:
                    raise blocks.CorruptBlock(f"segment {seg}: truncated block header")
                length, digest = blocks.parse_block_head(view[pos:pos + head_size])
                if length != expected:
                    raise blocks.CorruptBlock(f"segment {seg}: block length {length} where the file's "
                                              f"layout has {expected}")
                end = pos + head_size + length
                if end > n or blocks.checksum(view[pos + head_size:end]) != digest:
                    raise blocks.CorruptBlock(f"segment {seg} checksum mismatch")
            except blocks.CorruptBlock as exc:
                problem = str(exc)
                break
            pos = end
            seg += 1
            data_bytes += length
        if problem is None and n < want:
            problem = f"segment {seg}: file cut short"   # since it was opened
        self.seg, self.pos = seg, self.pos + pos
        return (buf if pos == n else view[:pos]), data_bytes, problem


def _pread_exactly(fd: int, n: int, offset: int) -> bytes:
    """``n`` bytes from ``offset``, in one read as a rule (fewer only at the
    end of the file)."""
    buf = os.pread(fd, n, offset)
    if len(buf) == n or not buf:
        return buf
    parts, got = [buf], len(buf)
    while got < n:
        more = os.pread(fd, n - got, offset + got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def open_range(path: Path, idx: int, first: int, last: int) -> FragmentRange:
    """Open a fragment file for blocks ``first``..``last``: checks its header
    and block 0's head, which give the layout."""
    f = open(path, "rb", buffering=0)
    try:
        disk("read")
        st = os.fstat(f.fileno())
        identity = st.st_dev, st.st_ino
        head = os.pread(f.fileno(), 64 * 1024, 0)
        try:
            index, _info, hlen = blocks.parse_file_header(head)
        except (blocks.CorruptBlock, ValueError) as exc:   # ValueError: JSON that will not parse
            raise BadFragmentFile(str(exc), identity) from exc
        if index != idx:
            raise BadFragmentFile("fragment index in header differs from its name", identity)
        bh = head[hlen:hlen + blocks.BLOCK_HEAD.size]
        if len(bh) < blocks.BLOCK_HEAD.size and len(head) == 64 * 1024:
            bh = os.pread(f.fileno(), blocks.BLOCK_HEAD.size, hlen)
        length0 = 0
        if len(bh) == blocks.BLOCK_HEAD.size:          # else: zero segments, or a cut head (found on reading)
            try:
                length0, _ = blocks.parse_block_head(bh)
            except blocks.CorruptBlock as exc:
                raise BadFragmentFile(f"block 0: {exc}", identity) from exc
        direct_fd = open_direct(path) if st.st_size >= DIRECT_READ_MIN else -1
        return FragmentRange(f, identity, st.st_size, hlen, length0, first, last, direct_fd)
    except BaseException:
        f.close()
        raise


class BatchRead:
    """The answer to one ``POST /fragments/read`` (storage/batchread.py), a
    batch of bytes at a time: ``next_pieces`` runs in a worker thread, reads
    and verifies whole blocks of as many fragments as fit in ``limit`` bytes,
    and returns the pieces to send in order (item heads, blocks, item ends).
    A bad block found on the way is never sent: the rest of its item is
    zeros, its end says CORRUPT, and ``problems`` names the file for quarantine."""

    ZEROS = 1 << 20            # the most zero bytes made at once for a bad item's rest

    def __init__(self, opened: list):
        self.opened = opened               # FragmentRange, or (status, problem, identity | None)
        self.pos = 0
        self.started = False               # the current item's head has been sent
        self.zeros_left = 0                # of a bad item
        self.data_bytes = 0
        self.fragments = 0
        self.unreadable = 0                # items the disk failed to read (EIO)

    @property
    def length(self) -> int:
        """The whole body's bytes, known before any block is read."""
        return sum(batchread.ITEM_HEAD.size + batchread.ITEM_END.size
                   + (o.length if isinstance(o, FragmentRange) else 0) for o in self.opened)

    @property
    def done(self) -> bool:
        return self.pos >= len(self.opened)

    def next_pieces(self, limit: int) -> tuple[list, list[tuple[int, str, tuple[int, int]]]]:
        pieces: list = []
        problems: list[tuple[int, str, tuple[int, int]]] = []
        used = 0
        while not self.done and used < limit:
            o = self.opened[self.pos]
            if not isinstance(o, FragmentRange):
                pieces.append(batchread.item_head(o[0], 0) + batchread.item_end(batchread.OK))
                self.pos += 1
                continue
            if not self.started:
                pieces.append(batchread.item_head(batchread.OK, o.length))
                self.started = True
            if self.zeros_left:
                n = min(self.zeros_left, self.ZEROS)
                pieces.append(bytes(n))
                used += n
                self.zeros_left -= n
                if self.zeros_left:
                    continue
                end = batchread.CORRUPT
            elif not o.done:
                try:
                    good, data_bytes, problem = o.read_verified(max(1, limit - used))
                except OSError:
                    # The disk failed the read (EIO): nothing is known to be wrong
                    # with the file, so it is not quarantined; the item's rest is
                    # zeros and it ends bad, and the reader gets this fragment
                    # elsewhere. The auditor reads the file again later.
                    self.zeros_left = o.end - o.pos           # > 0: the range was not done
                    o.pos = o.end
                    self.unreadable += 1
                    continue
                if good:
                    pieces.append(good)
                    used += len(good)
                    self.data_bytes += data_bytes
                if problem:
                    problems.append((self.pos, problem, o.identity))
                    self.zeros_left = o.end - o.pos
                    o.pos = o.end
                    if self.zeros_left:
                        continue
                    end = batchread.CORRUPT
                elif not o.done:
                    continue
                else:
                    end = batchread.OK
            else:
                end = batchread.OK
            pieces.append(batchread.item_end(end))
            if end == batchread.OK:
                self.fragments += 1
            o.close()
            self.pos += 1
            self.started = False
        return pieces, problems

    def close(self) -> None:
        for o in self.opened:
            if isinstance(o, FragmentRange):
                o.close()


def open_many(paths: list[tuple[Path, int, int, int]]) -> BatchRead:
    """Open every fragment a batch read asks for (path, index, first, last), in order."""
    opened: list = []
    try:
        for path, idx, first, last in paths:
            try:
                opened.append(open_range(path, idx, first, last))
            except FileNotFoundError:
                opened.append((batchread.MISSING, "no such fragment", None))
            except BadFragmentFile as exc:
                opened.append((batchread.CORRUPT, str(exc), exc.identity))
            except OSError as exc:                       # the disk failed the read (EIO)
                opened.append((batchread.MISSING, f"unreadable: {exc}", None))
    except BaseException:
        BatchRead(opened).close()
        raise
    return BatchRead(opened)


def land(out: DurableFile | None, tmp: Path, pieces: list[bytes], final: Path, lock: threading.Lock) -> None:
    """The last pieces, then durable: fsync the file, rename it into place,
    fsync the directory (so the new name survives a crash too). The rename
    holds `lock`, so a quarantine or a GC delete that checked the file at
    `final` never acts on the new file that replaced it. Each step has its
    failpoint (core/failpoints.py says what is on disk at each)."""
    out = write_some(out, tmp, pieces)
    try:
        failpoint("storage.land.before_fsync")
        disk("sync")
        out.sync_and_close()
    finally:
        out.close()                 # after a failpoint's error; a no-op once sync_and_close closed it
    final.parent.mkdir(parents=True, exist_ok=True)
    failpoint("storage.land.before_rename")
    with lock:
        os.replace(tmp, final)
    failpoint("storage.land.before_dir_fsync")
    disk("sync")
    fsync_dir(final.parent)


def write_some(out: DurableFile | None, tmp: Path, pieces: list[bytes]) -> DurableFile:
    """Append ``pieces`` to the temporary file ``out`` (opened at ``tmp``
    first if it is None) and return it; closed if the write fails."""
    if out is None:
        out = DurableFile(tmp, make_parent=True)     # tmp/ may be gone (say, a wiped disk)
    try:
        disk("write")
        out.write(*pieces)
    except BaseException:
        out.close()
        raise
    return out


def probe_write(tmp_dir: Path) -> None:
    """Write, fsync and remove a one-block file in ``tmp_dir``: raises the
    OSError a fragment's landing would meet now (ENOSPC on a full disk)."""
    tmp = tmp_dir / f"probe.{os.getpid()}.{threading.get_ident()}"
    try:
        out = write_some(None, tmp, [b"\0" * 4096])
        try:
            disk("sync")
            out.sync_and_close()
        finally:
            out.close()
    finally:
        tmp.unlink(missing_ok=True)


class IncomingFragment:
    """A fragment being received (``PUT /fragment``): its verified blocks
    wait in memory until about ``WRITE_BATCH`` bytes are ready, then go to
    the temporary file ``tmp`` in one thread hop; :meth:`land` writes the
    rest and makes the file durable at ``final``. A small fragment is
    written, fsynced, renamed and its directory fsynced in a single hop at
    the end."""

    def __init__(self, tmp: Path, final: Path, header: bytes):
        self.tmp, self.final = tmp, final
        self.out: DurableFile | None = None       # opened with the first batch written
        self.waiting: list[bytes] = [header]
        self.waiting_bytes = 0
        self.blocks = 0                           # blocks received
        self.bytes = 0                            # their data bytes

    async def add(self, head: bytes, data: list[memoryview]) -> None:
        """One block, already verified against its checksum: its head, and
        its data as the pieces it arrived in."""
        size = sum(len(piece) for piece in data)
        self.waiting.append(head)
        self.waiting += data
        self.waiting_bytes += len(head) + size
        self.blocks += 1
        self.bytes += size
        if self.waiting_bytes >= WRITE_BATCH:
            with tracing.TRACER.span("write blocks", bytes=self.waiting_bytes):
                self.out = await asyncio.to_thread(write_some, self.out, self.tmp, self.waiting)
            self.waiting, self.waiting_bytes = [], 0

    async def land(self, lock: threading.Lock) -> None:
        """The blocks still waiting, then durable at ``final`` (:func:`land`)."""
        await asyncio.to_thread(land, self.out, self.tmp, self.waiting, self.final, lock)

    async def discard(self) -> None:
        """Close and remove the temporary file: nothing of this fragment is kept."""
        if self.out is not None:
            await asyncio.to_thread(self.out.close)
        await asyncio.to_thread(self.tmp.unlink, True)
