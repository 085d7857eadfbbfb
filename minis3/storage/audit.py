"""Node audit: re-read every fragment file, check it, and list what is on disk.

Bits rot. A fragment verified when it arrived can go bad on disk months later,
and nobody would notice until a GET needs it — possibly at the moment another
fragment of the same segment is lost too. So each storage node keeps
re-reading its own files in the background (the *audit*), at a modest rate so
it never competes with client traffic, and moves any bad file aside
(*quarantine*). The cluster scrubber then rebuilds the missing fragment from
the others.

This module holds the parts that need no server: checking one file
(:func:`verify_fragment`, :class:`FragmentCheck`) and the sorted listing of the fragments directory
(:func:`list_fragments`, :func:`fragment_names`). ``storage/auditor.py`` runs
the node's audit passes with them, ``storage/quarantine.py`` moves a bad file
aside, and ``storage/server.py`` serves the listing (``GET /inventory``).

What a check can and cannot see
-------------------------------
Every byte of a fragment file is covered by something that notices a change:
the header's magic, version and reserved field are fixed values, its index must
equal the one in the file name, its JSON has its own xxh3, every block's data
has an xxh3 in the block head, and a block head's length must fit in the
file. So any single flipped byte is reported, and so is a file cut off in the
middle of the header, of a block head or of a block's data.

One thing the file alone cannot show: a file cut off *exactly* at a block
boundary looks like a whole, shorter fragment (there is no block count in the
header, because the node writes the header before it knows how many blocks
will come). The cluster scrubber catches it instead: it compares each file's
size in the node's inventory with the exact size the object's metadata implies
(``storage.blocks.expected_file_size``). A check still reports how many good
blocks it saw (:attr:`AuditResult.blocks`).

The audit contract (``POST /audit`` and ``GET /audit`` on a storage node)
-------------------------------------------------------------------------
Pass ids are the pass's start time in unix milliseconds, forced to grow by at
least 1 per pass: strictly increasing within a process and, unless the wall
clock steps back, across restarts of the node too.

* ``POST /audit?rate=MBps`` starts a new full pass *now* (``rate=0``: as fast
  as the disk goes; no ``rate``: the configured ``audit_mb_per_s``, or
  unlimited if that is 0) and answers ``{"pass": P}``. A pass already running
  is abandoned and the new one starts over from the first file: it is not
  recorded as finished, and the new pass's id is larger.
* ``GET /audit`` answers ``{"running", "pass", "rate_mb_per_s",
  "continuous_mb_per_s", "busy_share", "node_busy", "yielding",
  "bytes_yielding", "files_done", "files_total", "bytes_verified",
  "corrupt_found", "started", "last_pass": {"id", "files", "bytes",
  "bytes_yielding", "corrupt", "seconds", "finished_unix"} | null}``.
  ``yielding``: the continuous pass runs at ``busy_share`` of its rate now,
  because the node serves data (``node_busy``); ``bytes_yielding``: the bytes
  a pass checked so (storage/auditor.py).
* **Once ``last_pass.id >= P``**, a pass that started after the POST arrived
  has finished: every fragment file that was in ``fragments/`` when the POST
  arrived and is still there has been read in full and checked after the POST,
  and every bad one found is in ``GET /quarantine``. (A file deleted meanwhile
  is skipped; a file written meanwhile may or may not be included, so
  ``files_done`` may end a little off ``files_total``, which is counted when
  the pass starts.)
* The ``pass``, ``files_*``, ``bytes_verified``, ``corrupt_found`` and
  ``started`` fields describe the pass running now or, if none is, the latest
  one started (finished or abandoned); ``last_pass`` is the latest *finished*
  pass, ``corrupt`` counting the files it quarantined.
* If the node restarted and lost the request, ``GET /audit`` shows
  ``running: false`` with ``last_pass`` older than P (or null): POST again.

After a requested pass the node goes back to its continuous audit (if
``audit_mb_per_s > 0``), at the configured rate.
"""
from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import xxhash

from ..rpc.failpoints import disk
from . import blocks

#: "<32 hex object id>.<fragment index>", the name of a fragment file.
FRAGMENT_NAME = re.compile(r"^([0-9a-f]{32})\.(\d{1,3})$")
PREFIX_NAME = re.compile(r"^[0-9a-f]{2}$")

#: The most rows one inventory page may hold (and the default).
INVENTORY_MAX = 10000


# -- checking one file --------------------------------------------------------

@dataclass(frozen=True)
class AuditResult:
    """What a check of one fragment file found.

    ``bytes``: bytes read and checked (the file size when it is good);
    ``blocks``: whole blocks whose checksum matched; ``problem``: None, or what
    was wrong with the first bad part (the check stops there).
    """
    bytes: int
    blocks: int
    problem: str | None


class FragmentCheck:
    """A check of one open fragment file, done a bounded piece at a time.

    Each :meth:`advance` reads about ``read_chunk`` bytes (never much more,
    whatever length a block head claims: a block's data is hashed as a stream),
    so memory stays bounded and the caller can pace the reads and run each
    piece in a worker thread. A lock makes :meth:`close` wait for a read still
    running in a thread whose awaiting task was cancelled.
    """

    def __init__(self, f, expected_index: int, *, expected_object_id: str | None = None,
                 read_chunk: int = 1 << 20) -> None:
        st = os.fstat(f.fileno())
        self.f, self.size = f, st.st_size
        #: Which file this is (st_dev, st_ino): a quarantine moves the path
        #: only if it still names this very file.
        self.identity = (st.st_dev, st.st_ino)
        self.expected_index, self.expected_object_id = expected_index, expected_object_id
        self.read_chunk = max(1, read_chunk)
        self.pos = 0                    # bytes read so far
        self.blocks = 0                 # whole blocks verified
        self.problem: str | None = None
        self.done = False
        self._header_done = False
        self._left = 0                  # data bytes of the current block still to hash
        self._in_block = False
        self._hasher = xxhash.xxh3_64()
        self._digest = 0
        self._lock = threading.Lock()

    @property
    def result(self) -> AuditResult:
        return AuditResult(self.pos, self.blocks, self.problem)

    def _read(self, n: int) -> bytes:
        disk("read")
        data = self.f.read(n)
        self.pos += len(data)
        return data

    def _fail(self, problem: str) -> None:
        self.problem, self.done = problem, True

    def advance(self) -> int:
        """Read and check the next piece; returns how many bytes it read."""
        with self._lock:
            if self.f.closed:
                raise ValueError("advance on a closed check")
            start = self.pos
            while not self.done and self.pos - start < self.read_chunk:
                if not self._header_done:
                    self._check_header()
                elif self._in_block:
                    self._hash_some(self.read_chunk - (self.pos - start))
                else:
                    self._start_block()
            return self.pos - start

    def _check_header(self) -> None:
        head = self._read(blocks.FILE_HEAD.size)
        if len(head) < blocks.FILE_HEAD.size:
            return self._fail("short header (file truncated)")
        n = blocks.FILE_HEAD.unpack(head)[4]
        if n > blocks.MAX_HEADER_JSON:
            return self._fail(f"impossible header length {n}")
        if blocks.FILE_HEAD.size + n + 8 > self.size:
            return self._fail(f"header length {n} runs past the end of the file (truncated, or a corrupt length)")
        head += self._read(n + 8)
        try:
            index, info, _ = blocks.parse_file_header(head)
        except (blocks.CorruptBlock, ValueError) as exc:     # ValueError: JSON that passed its xxh3 yet does not parse
            return self._fail(f"bad header: {exc}")
        if index != self.expected_index:
            return self._fail(f"header says fragment index {index}, the file name says {self.expected_index}")
        if not isinstance(info, dict):
            return self._fail("header JSON is not an object")
        if self.expected_object_id is not None and info.get("object_id", self.expected_object_id) != self.expected_object_id:
            return self._fail(f"header names object {info.get('object_id')!r}, the file name {self.expected_object_id}")
        self._header_done = True

    def _start_block(self) -> None:
        head = self._read(blocks.BLOCK_HEAD.size)
        if not head:
            self.done = True                   # the end, at a block boundary
            return
        if len(head) < blocks.BLOCK_HEAD.size:
            return self._fail(f"block {self.blocks}: truncated block head")
        length, self._digest = blocks.BLOCK_HEAD.unpack(head)
        if length > blocks.MAX_BLOCK:
            return self._fail(f"block {self.blocks}: impossible length {length}")
        if length > self.size - self.pos:
            return self._fail(f"block {self.blocks}: length {length} runs past the end of the file "
                              f"({self.size - self.pos} bytes left: truncated, or a corrupt length)")
        self._hasher.reset()
        self._left, self._in_block = length, True
        if length == 0:
            self._finish_block()

    def _hash_some(self, budget: int) -> None:
        data = self._read(min(self._left, max(budget, 1)))
        if not data:      # the file shrank under us (its length was checked at the head)
            return self._fail(f"block {self.blocks}: data truncated")
        self._hasher.update(data)
        self._left -= len(data)
        if self._left == 0:
            self._finish_block()

    def _finish_block(self) -> None:
        self._in_block = False
        if self._hasher.intdigest() != self._digest:
            return self._fail(f"block {self.blocks}: checksum mismatch")
        self.blocks += 1

    def close(self) -> None:
        with self._lock:
            self.f.close()

    @property
    def closed(self) -> bool:
        return self.f.closed


def open_check(path: str | os.PathLike, expected_index: int, *, expected_object_id: str | None = None,
               read_chunk: int = 1 << 20) -> FragmentCheck:
    """Open a fragment file for checking (raises FileNotFoundError if it is gone)."""
    f = open(path, "rb")
    try:
        return FragmentCheck(f, expected_index, expected_object_id=expected_object_id, read_chunk=read_chunk)
    except BaseException:
        f.close()
        raise


def verify_fragment(path: str | os.PathLike, expected_index: int, read_chunk: int = 1 << 20, *,
                    expected_object_id: str | None = None) -> AuditResult:
    """Read a whole fragment file and check every part of it (see the module
    docstring for what is and is not detectable). Raises FileNotFoundError if
    there is no such file; every other problem is in the result."""
    check = open_check(path, expected_index, expected_object_id=expected_object_id, read_chunk=read_chunk)
    try:
        while not check.done:
            check.advance()
        return check.result
    finally:
        check.close()


# -- listing ------------------------------------------------------------------

def _scandir_names(path: Path) -> list[str]:
    try:
        with os.scandir(path) as it:
            return [e.name for e in it]
    except (FileNotFoundError, NotADirectoryError):
        return []


def prefix_dirs(frag_dir: Path) -> list[str]:
    """The two-hex-digit directories under fragments/, sorted."""
    return sorted(n for n in _scandir_names(frag_dir) if PREFIX_NAME.match(n))


def fragments_in(prefix_path: Path) -> list[tuple[str, int]]:
    """(object id, index) of the fragment files in one prefix directory, in
    (object id, index) order — numeric index order, so "….2" comes before "….10"."""
    out = []
    for name in _scandir_names(prefix_path):
        m = FRAGMENT_NAME.match(name)
        if m:
            out.append((m.group(1), int(m.group(2))))
    out.sort()
    return out


def fragment_names(frag_dir: Path) -> Iterator[tuple[str, int, Path]]:
    """Every fragment file under fragments/, sorted by (object id, index),
    read one prefix directory at a time (so memory holds one directory's names)."""
    for prefix in prefix_dirs(frag_dir):
        for oid, idx in fragments_in(frag_dir / prefix):
            yield oid, idx, frag_dir / prefix / f"{oid}.{idx}"


def count_fragments(frag_dir: Path) -> int:
    return sum(len(fragments_in(frag_dir / p)) for p in prefix_dirs(frag_dir))


def parse_cursor(cursor: str) -> tuple[str, int]:
    """ "<oid>.<idx>" → (oid, idx); ValueError if it is not a fragment name."""
    m = FRAGMENT_NAME.match(cursor)
    if not m:
        raise ValueError(f"bad cursor {cursor!r}: expected <32 hex digits>.<index>")
    return m.group(1), int(m.group(2))


def cursor_before(object_id: str) -> str | None:
    """The cursor just before an object's first fragment (None: list from the
    start), so one inventory page from it begins with that object's fragments."""
    n = int(object_id, 16)
    return f"{n - 1:032x}.999" if n else None


def list_fragments(frag_dir: Path, after: str | None = None, limit: int = INVENTORY_MAX,
                   now: float | None = None) -> tuple[list[list], str | None]:
    """One inventory page: ``[[oid, idx, size_bytes, age_s], …]`` sorted by
    (oid, idx), of the fragments after the cursor ``after`` ("<oid>.<idx>"),
    and the cursor of the next page (None when this page ended the listing).

    Cheap on purpose: no file is opened, only directories listed and the
    page's own files stat'ed; prefix directories before the cursor's are
    skipped without listing them. A full page always carries a cursor, which
    may lead to an empty last page. ``age_s`` is ``now - mtime`` by this
    node's clock (``now`` defaults to time.time()).
    """
    now = time.time() if now is None else now
    start = parse_cursor(after) if after else None
    rows: list[list] = []
    for prefix in prefix_dirs(frag_dir):
        if start is not None and prefix < start[0][:2]:
            continue
        for oid, idx in fragments_in(frag_dir / prefix):
            if start is not None and (oid, idx) <= start:
                continue
            try:
                st = os.stat(frag_dir / prefix / f"{oid}.{idx}")
            except FileNotFoundError:             # deleted since the directory was read
                continue
            rows.append([oid, idx, st.st_size, round(now - st.st_mtime, 3)])
            if len(rows) >= limit:
                return rows, f"{oid}.{idx}"
    return rows, None
