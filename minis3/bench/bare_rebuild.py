"""A bare rebuild: a wiped node's fragments rebuilt with none of minis3's work beside the bytes.

The yardstick ``make bench-scrub`` sets beside minis3's own rebuild (what
``bench/bare.py``'s relay is to a PUT or GET): the same shape of work, the
least Python can do of it on this machine. Objects are erasure-coded with
the cluster's scheme into one file per fragment, on five "nodes" (directories
served by their own processes, as minis3's storage nodes are); the sixth is
the wiped one. The receiver then rebuilds it as a storage node does:

* **reads** each batch's k sources a fragment (batches cut as the scrubber
  cuts them: ``BATCH_JOBS`` jobs and ``BATCH_SOURCE_BYTES`` of sources at
  most), one ``POST /batch`` a source process, the files concatenated;
* **reconstructs** the lost fragment of every segment (pyeclib), in a worker
  thread, ``BATCHES_AT_ONCE`` batches at a time;
* **writes** each fragment to a file of its own: create, write, fsync, rename
  into a fan-out directory, then one fsync a directory a batch.

It leaves out everything else a rebuild does: no block checksums read or
written, no segment checked against its recorded checksum, no file header, no
scrubber walk, no metadata, no rate limit, no tracing. So minis3's MB/s over
the bare MB/s is what all of that costs; the bare figure is what this design
(k sources over loopback HTTP, pyeclib, a file a fragment) can do here.

Each round starts from an empty output directory after deleting the last
round's files, as ``bench-scrub`` wipes its node. After the timed rounds every
rebuilt file is compared with the fragment it replaces.

**Other designs.** The same rebuild can move and land the bytes two other
ways each (``DESIGNS``; ``measure(designs=...)``), so that what each of the
design's choices costs on this machine is measured, not guessed:

* transport ``stream`` for ``http``: each source also listens on a plain TCP
  port, takes a line of file names and answers each file as a length and the
  file itself by ``sendfile`` (no copy through the process); the receiver
  reads a batch's answer straight into one preallocated buffer
  (``sock_recv_into``), with no HTTP parser and no chunks to join;
* landing ``extent`` for ``files``: a batch's fragments appended to one new
  file, then one fsync of it and one of its directory, as a log-structured
  fragment store would land them (an index of where each fragment lies is
  left out: it is a few bytes a fragment).

The rounds of the designs asked for are interleaved (this VM's speed moves
from one minute to the next), and every design's output is checked.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import socketserver
import statistics
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from ..fsutil import fsync_dir
from ..rpc.http import use_fast_event_loop
from ..scrub.batches import batch_length
from ..scrub.repair import BATCH_JOBS, BATCH_SOURCE_BYTES
from ..storage.rebuild import BATCHES_AT_ONCE
from .bare import wait_port
from .runner import process_tree_cpu_seconds

SEGMENT = 1 << 20
LOST = 2                       # the fragment index of the wiped node
_LEN = struct.Struct("<I")
#: How the sources' fragments reach the receiver, and how it lands what it rebuilt.
TRANSPORTS = ("http", "stream")
LANDINGS = ("files", "extent")
#: (transport, landing): minis3's own design first, then the other three.
DESIGNS = (("http", "files"), ("http", "extent"), ("stream", "files"), ("stream", "extent"))


# -- a source: a directory of fragment files, served a batch at a time -----------------
def serve(directory: Path, port: int) -> None:
    """A source: ``POST /batch`` on ``port`` (HTTP), and the ``stream``
    transport on ``port + STREAM_OFFSET`` (:func:`serve_stream`)."""
    serve_stream(directory, port + STREAM_OFFSET)

    async def batch(request: web.Request) -> web.StreamResponse:
        names = (await request.read()).decode().split()

        def read_all() -> list[bytes]:
            out: list[bytes] = []
            for name in names:
                data = (directory / name).read_bytes()
                out += (_LEN.pack(len(data)), data)
            return out
        parts = await asyncio.to_thread(read_all)
        resp = web.StreamResponse()
        resp.content_length = sum(map(len, parts))
        await resp.prepare(request)
        for i in range(0, len(parts), 16):
            await resp.write(b"".join(parts[i:i + 16]))
        await resp.write_eof()
        return resp
    use_fast_event_loop()
    app = web.Application(client_max_size=1 << 20)
    app.router.add_post("/batch", batch)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


#: A source's stream port is its HTTP port plus this (measure() spaces the ports so).
STREAM_OFFSET = 50


def serve_stream(directory: Path, port: int) -> socketserver.ThreadingTCPServer:
    """The ``stream`` transport, in threads of this process: a connection
    carries batches one after the other, each asked as a line of file names
    and answered as each file's length (u32) and the file, sent by
    ``sendfile``."""
    class Batch(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            for line in self.rfile:
                for name in line.decode().split():
                    with open(directory / name, "rb") as f:
                        n = os.fstat(f.fileno()).st_size
                        self.request.sendall(_LEN.pack(n))
                        self.request.sendfile(f, 0, n)

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = daemon_threads = True
    server = Server(("127.0.0.1", port), Batch)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# -- the receiver --------------------------------------------------------------------
class Receiver:
    """Rebuilds fragment ``LOST`` of ``objects`` objects into ``out``, from
    the sources at ``ports`` (fragment index → HTTP port). ``pieces``: the
    size of each segment's fragment in a fragment file (the last segment's
    may be shorter). ``transport`` and ``landing``: one of ``DESIGNS``."""

    def __init__(self, driver, objects: int, pieces: list[int], ports: dict[int, int], out: Path,
                 transport: str = "http", landing: str = "files"):
        if transport not in TRANSPORTS or landing not in LANDINGS:
            raise ValueError(f"no such design: {transport}, {landing}")
        self.driver, self.objects, self.pieces = driver, objects, pieces
        self.ports, self.out = ports, out
        self.transport, self.landing = transport, landing
        self.written = 0
        self.extents: list[tuple[Path, list[int]]] = []     # landing "extent": each file, its objects in order
        self._session: aiohttp.ClientSession | None = None   # while run() runs: transport "http"
        self._idle: dict[int, list[socket.socket]] = {}      # transport "stream": open connections a source

    def batches(self) -> list[list[int]]:
        """The objects in batches as the scrubber cuts them (scrub/batches.py)."""
        job = (len(self.ports) * sum(self.pieces), sum(self.pieces))
        out, start = [], 0
        while start < self.objects:
            n = batch_length([job] * (self.objects - start), BATCH_JOBS, BATCH_SOURCE_BYTES)
            out.append(list(range(start, start + n)))
            start += n
        return out

    async def run(self) -> None:
        gate = asyncio.Semaphore(BATCHES_AT_ONCE)
        fetch = self._http if self.transport == "http" else self._stream
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), read_bufsize=1 << 20) as http:
            self._session, self._idle = http, {idx: [] for idx in self.ports}
            try:
                async def one(batch: list[int]) -> None:
                    async with gate:
                        got = await asyncio.gather(*(fetch(idx, batch) for idx in self.ports))
                        await asyncio.to_thread(self._rebuild, batch, got)
                await asyncio.gather(*(one(b) for b in self.batches()))
            finally:
                for socks in self._idle.values():
                    for sock in socks:
                        sock.close()

    async def _http(self, idx: int, batch: list[int]) -> list[bytes]:
        """One source's files of a batch: ``POST /batch``, the body read whole, then cut."""
        names = " ".join(f"o{i}" for i in batch)
        async with self._session.post(f"http://127.0.0.1:{self.ports[idx]}/batch", data=names) as r:
            r.raise_for_status()
            return _cut(await r.read())

    async def _stream(self, idx: int, batch: list[int]) -> list[bytes]:
        """One source's files of a batch over the stream transport, read into
        one buffer (every file is ``sum(pieces)`` bytes, so its size is known)."""
        loop = asyncio.get_running_loop()
        if self._idle[idx]:
            sock = self._idle[idx].pop()
        else:
            sock = socket.socket()
            sock.setblocking(False)
            await loop.sock_connect(sock, ("127.0.0.1", self.ports[idx] + STREAM_OFFSET))
        each = _LEN.size + sum(self.pieces)
        buf = memoryview(bytearray(each * len(batch)))
        try:
            await loop.sock_sendall(sock, (" ".join(f"o{i}" for i in batch) + "\n").encode())
            got = 0
            while got < len(buf):
                n = await loop.sock_recv_into(sock, buf[got:])
                if n == 0:
                    raise ConnectionError(f"source {idx} closed a batch {got} bytes in")
                got += n
        except BaseException:
            sock.close()
            raise
        self._idle[idx].append(sock)
        parts = _cut(buf)
        if [len(p) for p in parts] != [each - _LEN.size] * len(batch):
            raise ConnectionError(f"source {idx} sent files of {[len(p) for p in parts]} bytes, "
                                  f"not {len(batch)} of {each - _LEN.size}")
        return parts

    def _rebuild(self, batch: list[int], got: list[list[bytes]]) -> None:
        rebuilt = []
        for j in range(len(batch)):
            sources, frags, off = [g[j] for g in got], [], 0
            for n in self.pieces:
                frags.append(self.driver.reconstruct([s[off:off + n] for s in sources], [LOST])[0])
                off += n
            rebuilt.append(frags)
        if self.landing == "files":
            self._land_files(batch, rebuilt)
        else:
            self._land_extent(batch, rebuilt)
        self.written += sum(len(f) for frags in rebuilt for f in frags)

    def _land_files(self, batch: list[int], rebuilt: list[list[bytes]]) -> None:
        """A file a fragment: created in tmp/, written, fsynced, renamed into a
        fan-out directory; one fsync a directory a batch."""
        dirs: set[Path] = set()
        for i, frags in zip(batch, rebuilt):
            tmp = self.out / "tmp" / f"o{i}"
            _write_new(tmp, frags)
            final = self.out / f"{i % 256:02x}"
            final.mkdir(exist_ok=True)
            os.replace(tmp, final / f"o{i}")
            dirs.add(final)
        for d in dirs:
            fsync_dir(d)

    def _land_extent(self, batch: list[int], rebuilt: list[list[bytes]]) -> None:
        """A batch's fragments appended to one new file: one fsync of it, one of its directory."""
        path = self.out / f"extent-{batch[0]:06d}"
        _write_new(path, [f for frags in rebuilt for f in frags])
        fsync_dir(self.out)
        self.extents.append((path, batch))

    def wrong(self, originals: Path) -> list[int]:
        """The objects whose rebuilt fragment differs from ``originals``/o{i}."""
        if self.landing == "files":
            return [i for i in range(self.objects)
                    if (self.out / f"{i % 256:02x}" / f"o{i}").read_bytes() != (originals / f"o{i}").read_bytes()]
        bad, size, landed = [], sum(self.pieces), set()
        for path, batch in self.extents:
            data = path.read_bytes()
            bad += [i for j, i in enumerate(batch) if data[j * size:(j + 1) * size] != (originals / f"o{i}").read_bytes()]
            landed.update(batch)
        return bad + [i for i in range(self.objects) if i not in landed]


def _cut(body: bytes | memoryview) -> list[bytes]:
    """A source's answer cut into its files (each sent as its length, u32, then the file)."""
    parts, off = [], 0
    while off < len(body):
        (n,) = _LEN.unpack_from(body, off)
        parts.append(bytes(body[off + _LEN.size:off + _LEN.size + n]))
        off += _LEN.size + n
    return parts


def _write_new(path: Path, pieces: list[bytes]) -> None:
    """Blocking: a new file of ``pieces``, fsynced."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        for start in range(0, len(pieces), 512):             # IOV_MAX is 1024 on Linux
            chunk = pieces[start:start + 512]
            if os.writev(fd, chunk) != sum(map(len, chunk)):
                raise OSError(f"short write of {path}")
        os.fsync(fd)
    finally:
        os.close(fd)


def prepare(root: Path, driver, k: int, m: int, objects: int, size: int) -> list[int]:
    """Erasure-code ``objects`` objects of ``size`` bytes into files
    root/n0/o0 … root/n{k+m-1}/o{objects-1}; the size of each segment's
    fragment in a file."""
    for n in range(k + m):
        (root / f"n{n}").mkdir(parents=True)
    bodies = [os.urandom(size) for _ in range(4)]
    files: list[list[bytes]] = []
    for i in range(objects):
        body = bodies[i % 4]
        files = [[] for _ in range(k + m)]
        for off in range(0, size, SEGMENT):
            for n, frag in enumerate(driver.encode(body[off:off + SEGMENT])):
                files[n].append(frag)
        for n, frags in enumerate(files):
            (root / f"n{n}" / f"o{i}").write_bytes(b"".join(frags))
    return [len(f) for f in files[LOST]] if files else []


def measure(root: Path, objects: int, size: int, k: int = 4, m: int = 2, backend: str = "isa_l_rs_vand",
            rounds: int = 3, base_port: int = 0, designs: tuple = DESIGNS[:1]) -> dict:
    """The bare rebuild of ``objects`` objects of ``size`` bytes, ``rounds``
    times in each of ``designs`` (``DESIGNS``; their rounds interleaved): for
    the first, the median MB/s written and CPU (receiver and sources) a MB
    written; for each, the same under ``designs``."""
    from pyeclib.ec_iface import ECDriver

    from .. import config
    if LOST >= k + m:
        raise ValueError(f"{k}+{m} has no fragment {LOST}")
    designs = tuple(tuple(d) for d in designs)
    if not designs or any(d not in DESIGNS for d in designs):
        raise ValueError(f"designs: some of {DESIGNS}")
    driver = ECDriver(k=k, m=m, ec_type=backend)
    root.mkdir(parents=True, exist_ok=True)
    pieces = prepare(root, driver, k, m, objects, size)
    # k sources, as the scrubber picks k of the fragments left
    sources = [n for n in range(k + m) if n != LOST][:k]
    base = base_port or config.free_base_port()
    ports = {n: base + j for j, n in enumerate(sources)}
    procs = [subprocess.Popen([sys.executable, "-m", "minis3.bench.bare_rebuild", "--serve",
                               str(root / f"n{n}"), str(port)]) for n, port in ports.items()]
    runs: dict[tuple, tuple[list, list]] = {d: ([], []) for d in designs}
    out = root / "rebuilt"
    try:
        for port in ports.values():
            wait_port(port)
            wait_port(port + STREAM_OFFSET)
        for r in range(rounds):
            for design in (designs if r % 2 == 0 else designs[::-1]):
                shutil.rmtree(out, ignore_errors=True)       # the last round's files deleted, as a wipe
                (out / "tmp").mkdir(parents=True)
                receiver = Receiver(driver, objects, pieces, ports, out, *design)
                c0, t0, w0 = process_tree_cpu_seconds([p.pid for p in procs]), os.times(), time.perf_counter()
                _run(receiver.run())
                wall = time.perf_counter() - w0
                t1 = os.times()
                cpu = (process_tree_cpu_seconds([p.pid for p in procs]) - c0
                       + (t1.user - t0.user) + (t1.system - t0.system))
                mb = receiver.written / 1e6
                runs[design][0].append(mb / wall)
                runs[design][1].append(cpu * 1000 / mb)
                wrong = receiver.wrong(root / f"n{LOST}")
                if wrong:
                    raise RuntimeError(f"the bare rebuild ({'+'.join(design)}) got {len(wrong)} of {objects} "
                                       "fragments wrong")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)
    each = [{"transport": t, "landing": land, "mb_s": round(statistics.median(runs[(t, land)][0]), 1),
             "mb_s_each": [round(x, 1) for x in runs[(t, land)][0]],
             "cpu_ms_per_mb": round(statistics.median(runs[(t, land)][1]), 2)} for t, land in designs]
    first = {key: each[0][key] for key in ("mb_s", "mb_s_each", "cpu_ms_per_mb")}
    return {"objects": objects, "size": size, "fragment_bytes": sum(pieces), "rounds": rounds,
            "mb_written": round(objects * sum(pieces) / 1e6, 1), **first, "designs": each}


def _run(coro) -> None:
    """Run ``coro`` on a loop of its own, uvloop's where installed (as minis3's
    nodes run), without changing this process's event loop policy."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(coro)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m minis3.bench.bare_rebuild", description=__doc__.split("\n")[0])
    p.add_argument("--serve", nargs=2, metavar=("DIR", "PORT"), help="run one source (internal)")
    p.add_argument("--objects", type=int, default=500)
    p.add_argument("--size-mib", type=float, default=1.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--dir", type=Path, help="where to put the fragments (default: a temporary directory)")
    p.add_argument("--designs", default="http+files",
                   help="transport+landing, comma-separated, or all: " + ", ".join("+".join(d) for d in DESIGNS))
    args = p.parse_args(argv)
    if args.serve:
        serve(Path(args.serve[0]), int(args.serve[1]))
        return
    import json
    import tempfile
    root = Path(tempfile.mkdtemp(prefix="minis3-bare-rebuild-", dir=args.dir))
    try:
        designs = DESIGNS if args.designs == "all" else tuple(tuple(d.split("+")) for d in args.designs.split(","))
        print(json.dumps(measure(root / "work", args.objects, int(args.size_mib * (1 << 20)), rounds=args.rounds,
                                 designs=designs)))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
