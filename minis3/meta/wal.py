"""Write-ahead log and snapshots for one key-range partition.

On disk, in the partition's directory::

    snapshot-000007.jsonl   the whole table as of the start of wal-000007
    wal-000007.log          every change since: one line each, "crc32hex json\\n"

A change is applied to the in-memory table only after its line is fdatasynced
(group commit: every writer waiting in the same moment shares one fdatasync).
Recovery loads the newest snapshot and replays the WALs from its generation on,
stopping at the first torn or corrupt line (a write that was never acknowledged)
and cutting it off.

A record's inline payload of ``BLOB_FIRST`` base64 characters or more (an
object of ~12 KiB to 64 KiB, meta/blobs.py) is written once, not twice: the
group commit appends it to the blob log, fdatasyncs the blob log, and only
then writes the line, which names the payload (``{"$ref": ...}``) instead of
holding it. So a durable line never names bytes a crash can take. Smaller
payloads stay in the line (and go to the blob log unsynced when applied):
for them a second fdatasync per batch costs more than writing them twice
(measured: docs/performance.md).

Where a group commit is written: on the event loop's own thread while the
disk has been quick (its last ``INLINE_AFTER`` commits each under
``INLINE_UNDER_S``), else in a worker thread. Handing a commit to a thread
and back costs two thread wake-ups and asyncio's plumbing, ~17% of a
replica's CPU on small PUTs, while a healthy disk's fdatasync takes ~0.15 ms
here (a loaded 2-core machine adds a few ms of waiting for a core to the
wall time; a slow or failing disk, tens to hundreds). A slow commit sends
the next ones to the thread, so that a disk stall holds up this process's
writes but not its reads, until the disk has been quick again for
``INLINE_AFTER`` commits: a stall costs the loop at most one commit's wait.
"""
from __future__ import annotations

import asyncio
import errno
import logging
import os
import time
import zlib
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ..fsutil import fsync_dir
from ..rpc.failpoints import disk, failpoint
from ..rpc.fastjson import dumpb, loads
from . import blobs

log = logging.getLogger("minis3.meta.wal")

#: A snapshot is due once the WAL holds this many bytes (whatever its records).
SNAPSHOT_BYTES = 256 << 20
#: A group commit is written on the event loop's thread once this many in a row
#: took under INLINE_UNDER_S (the module's docstring says why).
INLINE_AFTER = 32
INLINE_UNDER_S = 0.05
#: An inline payload this long (base64 characters) goes to the blob log before
#: its line is written, and the line names it (the module's docstring says why).
BLOB_FIRST = 16 * 1024


def encode_line(entry: dict, refs: bool = False) -> bytes:
    """One line: a WAL line holds inline payloads themselves (``blobs.as_payload``);
    a snapshot line (``refs``) may name them in the blob log (meta/blobs.py)."""
    body = dumpb(entry, blobs.as_ref if refs else blobs.as_payload)
    return b"%08x " % zlib.crc32(body) + body + b"\n"


def decode_line(line: bytes) -> dict | None:
    """The entry, or None for a torn/corrupt line."""
    if not line.endswith(b"\n") or len(line) < 10 or line[8:9] != b" ":
        return None
    body = line[9:-1]
    try:
        if int(line[:8], 16) != zlib.crc32(body):
            return None
        return loads(body)
    except ValueError:
        return None


class WAL:
    """Durable, group-committed log of one partition."""

    def __init__(self, directory: Path, apply: Callable[[dict], None],
                 rows: Callable[[], Iterable[dict]], snapshot_every: int = 50_000,
                 blob_store: "blobs.BlobStore | None" = None):
        """``apply`` puts one durable entry into the in-memory table; ``rows``
        returns the table as entries (for snapshots), as of the call, that
        another thread can go through while the table changes. With
        ``blob_store``, a snapshot names inline payloads where the blob log
        holds them, after syncing it (meta/blobs.py)."""
        self.apply, self.rows = apply, rows
        self.blob_store = blob_store
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.snapshot_every = snapshot_every
        self.generation = 0
        self.records_in_wal = 0
        self.bytes_in_wal = 0
        self._file = None
        self._unusable: str | None = None         # why the log takes no more writes (_write_sync)
        self._name_durable = True                 # the current file's directory entry (_write_sync)
        self._pending: list[tuple[bytes, asyncio.Future]] = []
        self._wakeup: asyncio.Event | None = None
        self._flusher: asyncio.Task | None = None
        self._flushing = False                    # a batch is being written
        self._snapshot_task: asyncio.Task | None = None
        self._snapshot_wanted = False
        self._snapshots_held = False              # a split links this WAL's files: no new generation
        self.syncs = 0
        self.syncs_on_loop = 0                    # of them, written on the event loop's thread
        self._quick_commits = 0                   # in a row, each under INLINE_UNDER_S

    # -- recovery ------------------------------------------------------------
    def _gens(self, prefix: str, suffix: str) -> list[int]:
        out = []
        for p in self.dir.glob(f"{prefix}-*{suffix}"):
            try:
                out.append(int(p.name[len(prefix) + 1:-len(suffix)]))
            except ValueError:
                pass
        return sorted(out)

    def recover(self) -> int:
        """Apply every durable entry in order: the snapshot's rows, then WAL lines."""
        n = 0
        for entry in self._recover():
            self.apply(entry)
            n += 1
        return n

    def _recover(self) -> Iterator[dict]:
        snaps = self._gens("snapshot", ".jsonl")
        base = snaps[-1] if snaps else 0
        if snaps:
            with open(self.dir / f"snapshot-{base:06d}.jsonl", "rb") as f:
                for line in f:
                    e = decode_line(line)
                    if e is None:
                        raise RuntimeError(f"corrupt snapshot in {self.dir}")
                    yield e
        wals = [g for g in self._gens("wal", ".log") if g >= base] or [base]
        for g in wals:
            path = self.dir / f"wal-{g:06d}.log"
            if not path.exists():
                continue
            good = 0
            n = 0
            with open(path, "rb") as f:
                for line in f:
                    e = decode_line(line)
                    if e is None:
                        log.warning("%s: torn entry at byte %d, cutting the log there", path, good)
                        break
                    good += len(line)
                    n += 1
                    yield e
            if good != path.stat().st_size:
                with open(path, "r+b") as f:
                    f.truncate(good)
                    os.fsync(f.fileno())
            self.records_in_wal, self.bytes_in_wal = n, good
        self.generation = wals[-1]
        # Older files are covered by the snapshot.
        for g in self._gens("wal", ".log"):
            if g < base:
                (self.dir / f"wal-{g:06d}.log").unlink(missing_ok=True)
        # A snapshot a crash cut short before its rename was never used: the
        # WALs since the last snapshot hold all it held. Later snapshots have
        # newer generations, so nothing else would ever remove it.
        for p in self.dir.glob("snapshot-*.tmp"):
            p.unlink(missing_ok=True)

    def open(self) -> None:
        self._file = open(self.dir / f"wal-{self.generation:06d}.log", "ab", buffering=0)
        fsync_dir(self.dir)

    # -- appending -------------------------------------------------------------
    async def append(self, entry: dict) -> None:
        """Return once ``entry`` is on disk (fdatasync'd) and applied to the table.

        Visibility follows durability: the flusher applies a batch only after
        its fdatasync, so no reader sees a change a crash could take back.
        """
        self._ensure_flusher()
        fut = asyncio.get_running_loop().create_future()
        # A big payload's line is made by the group commit, once the payload
        # is in the blob log (_write_batch); every other line, now.
        line = None if self._blob_first(entry) else encode_line(entry)
        self._pending.append((line, entry, fut))
        self._wakeup.set()
        await fut

    def _blob_first(self, entry: dict) -> bool:
        value = entry["v"]
        return (self.blob_store is not None and value is not None
                and isinstance(value.get("inline"), str) and len(value["inline"]) >= BLOB_FIRST)

    def _ensure_flusher(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._wakeup = asyncio.Event()
            self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())

    def request_snapshot(self) -> None:
        """Take a snapshot soon (between batches), even if no write comes."""
        self._snapshot_wanted = True
        self._ensure_flusher()
        self._wakeup.set()

    def hold_snapshots(self, held: bool) -> None:
        """While held, the WAL stays in its generation (no snapshot starts), so
        its files only grow: a split links them into its halves' directories,
        and a half's parent's WAL may still be landing writes into the
        generation the half recovers from. A snapshot asked for meanwhile is
        taken once released."""
        self._snapshots_held = held
        if not held and self._snapshot_wanted:
            self.request_snapshot()

    @property
    def writing(self) -> bool:
        """A batch is waiting or being written (a snapshot may still be)."""
        return bool(self._pending) or self._flushing

    @property
    def busy(self) -> bool:
        """A batch or a snapshot is being written."""
        return self.writing or self.snapshotting

    async def snapshot_written(self) -> None:
        """Return once no snapshot is being written (one that fails is logged, not raised)."""
        if self._snapshot_task is not None:
            await asyncio.gather(self._snapshot_task, return_exceptions=True)

    async def _flush_loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            self._flushing = True
            try:
                await self._flush_pending()
            finally:
                self._flushing = False

    async def _flush_pending(self) -> None:
        while self._pending or (self._snapshot_wanted and not self._snapshots_held):
            if self._pending:
                batch, self._pending = self._pending, []
                try:
                    entries, written = await self._commit(batch)
                except Exception as exc:  # disk full, I/O error: fail the writers, never ack
                    log.exception("WAL write failed in %s", self.dir)
                    for _, _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                self.syncs += 1
                self.records_in_wal += len(batch)
                self.bytes_in_wal += written
                for entry, (_, _, fut) in zip(entries, batch):
                    # The entry as written, not its line parsed again (a JSON
                    # decode per write, for nothing): records are replaced,
                    # never changed in place, so it is what the line holds.
                    self.apply(entry)
                    if not fut.done():
                        fut.set_result(None)
            if self._snapshots_held:
                continue
            if (self.needs_snapshot() or self._snapshot_wanted) and not self.snapshotting:
                self._snapshot_wanted = False
                self.snapshot()
            elif self._snapshot_wanted and not self._pending:
                return                            # one is being written; this one waits for the next batch

    async def _commit(self, batch: list) -> tuple[list[dict], int]:
        """One group commit, on the loop's thread while the disk is quick (the
        module's docstring), else in a worker thread."""
        if self._quick_commits >= INLINE_AFTER:
            done = self._timed_write(batch)
            self.syncs_on_loop += 1
            return done
        return await asyncio.to_thread(self._timed_write, batch)

    def _timed_write(self, batch: list) -> tuple[list[dict], int]:
        start = time.perf_counter()
        try:
            return self._write_batch(batch)
        finally:
            quick = time.perf_counter() - start < INLINE_UNDER_S
            self._quick_commits = self._quick_commits + 1 if quick else 0

    def _write_batch(self, batch: list) -> tuple[list[dict], int]:
        """One group commit (where ``_commit`` says): each big payload appended
        to the blob log and its line made to name it, the blob log fdatasynced,
        then the lines written and fdatasynced (``_write_sync``). Returns the
        entries to apply (a big payload as its :class:`~.blobs.BlobRef`) and
        the bytes written to the WAL.

        A payload the blob log cannot take (a full disk: ``blobs.externalize``
        keeps it as it came) stays in its line, as a small one does: the
        write still lands, in one place."""
        entries, lines, named = [], [], False
        for line, entry, _ in batch:
            if line is None:
                entry = {"k": entry["k"], "v": blobs.externalize(self.blob_store, entry["v"])}
                named |= isinstance(entry["v"]["inline"], blobs.BlobRef)
                line = encode_line(entry, refs=True)        # the payload's ref, or the payload
            entries.append(entry)
            lines.append(line)
        if named:
            failpoint("meta.wal.before_blob_sync")
            self.blob_store.sync()        # what the lines name, durable before any of them is written
        data = b"".join(lines)
        self._write_sync(data)
        return entries, len(data)

    def _write_sync(self, data: bytes) -> None:
        """One group commit's lines, durable (wherever ``_commit`` runs it; each step has
        its failpoint, core/failpoints.py says what is on disk at each).

        A batch that fails (a full disk, an I/O error) is cut off again before
        its writers hear of it: otherwise a line written in part would sit in
        the middle of the log once later batches succeed, and recovery, which
        stops at the first torn line, would drop those acknowledged batches;
        and a whole line whose fdatasync failed would become durable with the
        next batch's, a write answered as failed coming back after a restart.
        If even the cut fails, the log takes no more writes until the process
        restarts (recovery then cuts it): this replica stops acknowledging,
        and the quorum goes on without it."""
        if self._unusable is not None:
            raise OSError(errno.EIO, f"WAL in {self.dir} takes no writes: {self._unusable}")
        fd = self._file.fileno()
        start = os.lseek(fd, 0, os.SEEK_END)      # appended, so this batch starts at the end
        try:
            failpoint("meta.wal.before_write")
            disk("write")
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            failpoint("meta.wal.before_fdatasync")
            disk("sync")
            os.fdatasync(fd)
            if not self._name_durable:
                # A new generation's file (snapshot() opened it): its name must
                # be durable before a line in it is acknowledged, and the
                # snapshot fsyncs the directory only after its rename, if ever.
                fsync_dir(self.dir)
                self._name_durable = True
            failpoint("meta.wal.after_fdatasync")
        except BaseException as exc:
            try:
                os.ftruncate(fd, start)
                os.fdatasync(fd)
            except OSError as cut:
                self._unusable = f"a failed batch could not be cut off ({cut}) after {exc!r}"
                log.critical("WAL in %s: %s", self.dir, self._unusable)
            raise

    def needs_snapshot(self) -> bool:
        """After ``snapshot_every`` records, or ``SNAPSHOT_BYTES`` of them
        (lines holding inline payloads of up to 64 KiB: recovery replays at
        most that much)."""
        return self.records_in_wal >= self.snapshot_every or self.bytes_in_wal >= SNAPSHOT_BYTES

    @property
    def snapshotting(self) -> bool:
        return self._snapshot_task is not None and not self._snapshot_task.done()

    def snapshot(self) -> asyncio.Task:
        """Start a new generation and write the table as of its start, in the background.

        Called by the flusher between batches, so the table holds exactly what
        the closed WAL generations hold when ``rows()`` is taken (records are
        replaced, never changed in place, so the captured rows stay as they
        were). Writes go on into the new generation while the snapshot file
        is written (its entries made and encoded in a thread, off the event
        loop); until it is durable, recovery still has the older snapshot and
        every WAL since.
        """
        gen = self.generation + 1
        old_file, self._file = self._file, open(self.dir / f"wal-{gen:06d}.log", "ab", buffering=0)
        self.generation, self.records_in_wal, self.bytes_in_wal = gen, 0, 0
        self._name_durable = False                # fsynced into the directory by the first batch
        old_file.close()
        data = self.rows()

        async def write() -> None:
            try:
                await asyncio.to_thread(self._write_snapshot, gen, data)
            except Exception:
                log.exception("snapshot failed in %s (the WAL still has everything)", self.dir)
            if self._snapshot_wanted and self._wakeup is not None:
                self._wakeup.set()                # one was asked for while this one ran
        self._snapshot_task = asyncio.get_running_loop().create_task(write())
        return self._snapshot_task

    def _write_snapshot(self, gen: int, data: Iterable[dict]) -> None:
        tmp = self.dir / f"snapshot-{gen:06d}.tmp"
        if self.blob_store is not None:
            self.blob_store.sync()       # every payload the snapshot names is durable first
        try:
            with open(tmp, "wb") as f:
                disk("write")
                for e in data:
                    f.write(encode_line(e, refs=self.blob_store is not None))
                f.flush()
                disk("sync")
                os.fsync(f.fileno())
            failpoint("meta.snapshot.before_rename")
            os.replace(tmp, self.dir / f"snapshot-{gen:06d}.jsonl")
        except BaseException:
            # No snapshot, then (the WALs still hold everything): not a
            # partition-sized file left behind that no later snapshot replaces.
            tmp.unlink(missing_ok=True)
            raise
        fsync_dir(self.dir)
        # Only now is everything before `gen` redundant.
        for g in self._gens("wal", ".log"):
            if g < gen:
                (self.dir / f"wal-{g:06d}.log").unlink(missing_ok=True)
        for g in self._gens("snapshot", ".jsonl"):
            if g < gen:
                (self.dir / f"snapshot-{g:06d}.jsonl").unlink(missing_ok=True)

    def close(self, keep_snapshot: bool = False) -> None:
        """Stop appending. ``keep_snapshot``: let a snapshot being written finish."""
        if self._flusher:
            self._flusher.cancel()
        if self._snapshot_task is not None and not keep_snapshot:
            self._snapshot_task.cancel()
        if self._file:
            self._file.close()
