"""Inline payloads on a metadata replica's disk, not in its memory: the blob log.

An object of at most ``erasure.inline_threshold`` bytes (64 KiB) is not
erasure-coded: its bytes travel in its metadata record (base64, field
``inline``) to the key's three replicas, one per AZ, like MinIO's inlined
objects. Six fragment writes would cost six internal requests and twelve
fsyncs for a few KiB; the record is written anyway.

Durability comes from the WAL: the line a replica fdatasyncs before it
answers holds the whole record, payload included; or, for a payload of
``wal.BLOB_FIRST`` characters or more, names it in the blob log, which the
group commit fdatasynced before it wrote the line (meta/wal.py: such a
payload is written once, not twice). But the table in memory
must not hold the payloads (a million 64 KiB objects would be 64 GiB of RAM),
so when a replica applies a record it appends the payload (unless it is tiny:
``IN_MEMORY_MAX``) to its **blob log**
(``blobs/blob-NNNNNN.dat``, no fsync) and keeps a :class:`BlobRef` in its place:
file, offset, length and xxh3-64, ~100 bytes. The log holds the payload as the
record carries it, base64 text: a third more disk, but neither a write nor a
read decodes or encodes it (that was ~10% of a replica's CPU on 64 KiB PUTs). The ref is turned
back into the payload when the record leaves the process:

* in an answer (a GET, a peer's catch-up scan, a move): the bytes are read
  (``pread``) and their xxh3 checked; a mismatch fails the answer, so the
  reader asks another replica;
* in a WAL line (a record re-written from the table): the payload again
  (only the group commit, which syncs the blob log first, writes a line
  naming a payload);
* in a snapshot: the ref itself (``{"$ref": [file, offset, length, xxh3]}``),
  after the blob log is fdatasynced (:meth:`BlobStore.sync`), so a snapshot
  never names bytes a crash could lose; recovery turns it back into a ref;
* in a scrubber's scan: a marker (``{"$blob": [length, xxh3]}``) that lets
  replicas be compared without moving payloads; a repair fetches the record.

A WAL replayed after a restart appends the payloads its lines hold again
(the old copies become garbage). Space of overwritten or deleted payloads is not reclaimed
yet: the log only grows (docs/ARCHITECTURE.md, "Choices and why").
"""
from __future__ import annotations

import base64
import logging
import os
import threading
from pathlib import Path

import xxhash

from ..fsutil import fsync_dir
from ..rpc.failpoints import disk

log = logging.getLogger("minis3.meta.blobs")

#: A new blob file is started past this size.
ROTATE_BYTES = 256 << 20
#: A payload this small (base64 characters) stays in the record in memory: a
#: ref (~150 bytes with its integers) would cost as much as the bytes themselves.
IN_MEMORY_MAX = 512


class CorruptBlob(Exception):
    """The bytes read for a ref are not the bytes written (xxh3 mismatch, short read)."""


class BlobRef:
    """Where one payload is in a replica's blob log."""

    __slots__ = ("store", "file", "offset", "length", "digest")

    def __init__(self, store: "BlobStore", file: int, offset: int, length: int, digest: int):
        self.store, self.file, self.offset, self.length, self.digest = store, file, offset, length, digest

    def read(self) -> bytes:
        """The stored bytes (the payload's base64 text), checked."""
        return self.store.read(self)

    def b64(self) -> str:
        return self.read().decode("ascii")

    def payload(self) -> bytes:
        return base64.b64decode(self.read())

    def ref_doc(self) -> dict:
        return {"$ref": [self.file, self.offset, self.length, f"{self.digest:016x}"]}

    def marker(self) -> dict:
        return {"$blob": [self.length, f"{self.digest:016x}"]}

    def __repr__(self) -> str:
        return f"BlobRef(file={self.file}, offset={self.offset}, length={self.length}, xxh3={self.digest:016x})"


class BlobStore:
    """One metadata process's blob log: append-only files of payloads."""

    def __init__(self, directory, rotate_bytes: int = ROTATE_BYTES):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.rotate_bytes = rotate_bytes
        self._lock = threading.Lock()          # sync() runs in a snapshot's thread
        self._sync_lock = threading.Lock()     # one sync() at a time (sync says why)
        self._fds: dict[int, int] = {}
        self._dirty: set[int] = set()
        self._new_names = False                # a file was created since the last sync
        files = sorted(int(p.stem.split("-")[1]) for p in self.dir.glob("blob-*.dat"))
        self.current = files[-1] if files else 1
        self._open(self.current)
        self.size = os.fstat(self._fds[self.current]).st_size
        self.appended = 0                      # bytes appended by this process

    def _path(self, n: int) -> Path:
        return self.dir / f"blob-{n:06d}.dat"

    def _open(self, n: int) -> int:
        fd = self._fds.get(n)
        if fd is None:
            path = self._path(n)
            self._new_names |= not path.exists()
            fd = self._fds[n] = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        return fd

    def put(self, data: bytes) -> BlobRef:
        """Append ``data`` (not yet durable: the WAL line holding it is)."""
        with self._lock:
            if self.size >= self.rotate_bytes:
                self.current, self.size = self.current + 1, 0
                self._open(self.current)
            fd = self._fds[self.current]
            view = memoryview(data)
            try:
                disk("write")
                while view:
                    view = view[os.write(fd, view):]
            except OSError:
                # A full disk or an I/O error mid-append: cut the part written
                # off again, so the next payload's offset is where its bytes go.
                try:
                    os.ftruncate(fd, self.size)
                except OSError:
                    self.size = os.fstat(fd).st_size
                raise
            ref = BlobRef(self, self.current, self.size, len(data), xxhash.xxh3_64_intdigest(data))
            self.size += len(data)
            self.appended += len(data)
            self._dirty.add(self.current)
        return ref

    def read(self, ref: BlobRef) -> bytes:
        try:
            fd = self._fds.get(ref.file)
            if fd is None:
                with self._lock:
                    fd = self._open(ref.file)
            data = os.pread(fd, ref.length, ref.offset)
        except OSError as exc:
            raise CorruptBlob(f"{ref}: {exc}") from exc
        if len(data) != ref.length or xxhash.xxh3_64_intdigest(data) != ref.digest:
            raise CorruptBlob(f"{ref}: the bytes read do not match their checksum")
        return data

    def ref(self, doc: list) -> BlobRef:
        """A ref from its snapshot form (``[file, offset, length, xxh3 hex]``)."""
        file, offset, length, digest = doc
        return BlobRef(self, int(file), int(offset), int(length), int(digest, 16))

    def sync(self) -> None:
        """fdatasync every blob file appended to since the last sync (and fsync
        the directory if a file was created since): on return, every byte
        appended before the call is durable, so a snapshot may name it.

        One sync at a time: every partition of the process shares this log and
        their snapshots run in threads, so a second sync that found nothing
        dirty while the first was still inside the fdatasync of its bytes would
        return early, and its snapshot would name bytes a crash can still take.
        A sync that fails leaves its files dirty, so the next one (the next
        snapshot's) syncs them again rather than finding them clean."""
        with self._sync_lock:
            with self._lock:
                dirty, self._dirty = self._dirty, set()
                new_names, self._new_names = self._new_names, False
                fds = [self._fds[n] for n in dirty]
            try:
                for fd in fds:
                    disk("sync")
                    os.fdatasync(fd)
                if new_names:
                    fsync_dir(self.dir)
            except BaseException:
                with self._lock:
                    self._dirty |= dirty
                    self._new_names |= new_names
                raise

    def stats(self) -> dict:
        files = sorted(self._fds)
        return {"files": len(files), "bytes": sum(os.fstat(self._fds[n]).st_size for n in files),
                "appended_bytes": self.appended}

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()


def externalize(store: "BlobStore | None", value):
    """The record to keep in memory for ``value`` as applied: its inline
    payload (base64 text, or a snapshot's ``$ref``) made a :class:`BlobRef`.
    A new dict when anything changed: records are replaced, never changed."""
    if store is None or not isinstance(value, dict):
        return value
    inline = value.get("inline")
    if isinstance(inline, str):
        if len(inline) <= IN_MEMORY_MAX:
            return value
        try:
            return {**value, "inline": store.put(inline.encode("ascii"))}
        except OSError as exc:
            # The record is durable already (its WAL line holds the payload):
            # keep the payload in memory rather than fail the write after the
            # fact or stop the WAL's flusher. Memory grows only while the blob
            # log cannot be written.
            log.warning("blob log append failed (%s): payload of %d bytes kept in memory", exc, len(inline))
            return value
    if isinstance(inline, dict) and "$ref" in inline:
        return {**value, "inline": store.ref(inline["$ref"])}
    return value


# -- how a BlobRef is written out (orjson/json ``default`` hooks) ---------------------------
def as_payload(obj):
    """Answers and WAL lines: the payload itself, base64."""
    if isinstance(obj, BlobRef):
        return obj.b64()
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def as_ref(obj):
    """Snapshots (after :meth:`BlobStore.sync`): where the payload is."""
    if isinstance(obj, BlobRef):
        return obj.ref_doc()
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def as_marker(obj):
    """Scans for the scrubber: the payload's length and checksum only."""
    if isinstance(obj, BlobRef):
        return obj.marker()
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def is_marker(value) -> bool:
    return isinstance(value, dict) and "$blob" in value
