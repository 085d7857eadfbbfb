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
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import struct
import subprocess
import sys
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


# -- a source: a directory of fragment files, served a batch at a time -----------------
def serve(directory: Path, port: int) -> None:
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


# -- the receiver --------------------------------------------------------------------
class Receiver:
    """Rebuilds fragment ``LOST`` of ``objects`` objects into ``out``, from
    the sources at ``ports`` (fragment index → port). ``pieces``: the size of
    each segment's fragment in a fragment file (the last segment's may be
    shorter)."""

    def __init__(self, driver, objects: int, pieces: list[int], ports: dict[int, int], out: Path):
        self.driver, self.objects, self.pieces = driver, objects, pieces
        self.ports, self.out = ports, out
        self.written = 0

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
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), read_bufsize=1 << 20) as http:
            async def fetch(idx: int, names: str) -> list[bytes]:
                async with http.post(f"http://127.0.0.1:{self.ports[idx]}/batch", data=names) as r:
                    r.raise_for_status()
                    body = await r.read()
                parts, off = [], 0
                while off < len(body):
                    (n,) = _LEN.unpack_from(body, off)
                    parts.append(body[off + 4:off + 4 + n])
                    off += 4 + n
                return parts

            async def one(batch: list[int]) -> None:
                async with gate:
                    names = " ".join(f"o{i}" for i in batch)
                    got = await asyncio.gather(*(fetch(idx, names) for idx in self.ports))
                    await asyncio.to_thread(self._rebuild, batch, got)
            await asyncio.gather(*(one(b) for b in self.batches()))

    def _rebuild(self, batch: list[int], got: list[list[bytes]]) -> None:
        dirs: set[Path] = set()
        for j, i in enumerate(batch):
            sources, frags, off = [g[j] for g in got], [], 0
            for n in self.pieces:
                frags.append(self.driver.reconstruct([s[off:off + n] for s in sources], [LOST])[0])
                off += n
            tmp = self.out / "tmp" / f"o{i}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                if os.writev(fd, frags) != sum(map(len, frags)):
                    raise OSError(f"short write of {tmp}")
                os.fsync(fd)
            finally:
                os.close(fd)
            final = self.out / f"{i % 256:02x}"
            final.mkdir(exist_ok=True)
            os.replace(tmp, final / f"o{i}")
            dirs.add(final)
            self.written += sum(map(len, frags))
        for d in dirs:
            fsync_dir(d)


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
            rounds: int = 3, base_port: int = 0) -> dict:
    """The bare rebuild of ``objects`` objects of ``size`` bytes, ``rounds`` times:
    the median MB/s written and CPU (receiver and sources) a MB written."""
    from pyeclib.ec_iface import ECDriver

    from .. import config
    if LOST >= k + m:
        raise ValueError(f"{k}+{m} has no fragment {LOST}")
    driver = ECDriver(k=k, m=m, ec_type=backend)
    root.mkdir(parents=True, exist_ok=True)
    pieces = prepare(root, driver, k, m, objects, size)
    # k sources, as the scrubber picks k of the fragments left
    sources = [n for n in range(k + m) if n != LOST][:k]
    base = base_port or config.free_base_port()
    ports = {n: base + j for j, n in enumerate(sources)}
    procs = [subprocess.Popen([sys.executable, "-m", "minis3.bench.bare_rebuild", "--serve",
                               str(root / f"n{n}"), str(port)]) for n, port in ports.items()]
    rates, cpu_ms = [], []
    out = root / "rebuilt"
    try:
        for port in ports.values():
            wait_port(port)
        for _ in range(rounds):
            shutil.rmtree(out, ignore_errors=True)           # the last round's files deleted, as a wipe
            (out / "tmp").mkdir(parents=True)
            receiver = Receiver(driver, objects, pieces, ports, out)
            c0, t0, w0 = process_tree_cpu_seconds([p.pid for p in procs]), os.times(), time.perf_counter()
            _run(receiver.run())
            wall = time.perf_counter() - w0
            t1 = os.times()
            cpu = (process_tree_cpu_seconds([p.pid for p in procs]) - c0
                   + (t1.user - t0.user) + (t1.system - t0.system))
            mb = receiver.written / 1e6
            rates.append(mb / wall)
            cpu_ms.append(cpu * 1000 / mb)
        wrong = [i for i in range(objects)
                 if (out / f"{i % 256:02x}" / f"o{i}").read_bytes() != (root / f"n{LOST}" / f"o{i}").read_bytes()]
        if wrong:
            raise RuntimeError(f"the bare rebuild got {len(wrong)} of {objects} fragments wrong")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)
    return {"objects": objects, "size": size, "fragment_bytes": sum(pieces), "rounds": rounds,
            "mb_written": round(objects * sum(pieces) / 1e6, 1),
            "mb_s": round(statistics.median(rates), 1), "mb_s_each": [round(r, 1) for r in rates],
            "cpu_ms_per_mb": round(statistics.median(cpu_ms), 2)}


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
    args = p.parse_args(argv)
    if args.serve:
        serve(Path(args.serve[0]), int(args.serve[1]))
        return
    import json
    import tempfile
    root = Path(tempfile.mkdtemp(prefix="minis3-bare-rebuild-", dir=args.dir))
    try:
        print(json.dumps(measure(root / "work", args.objects, int(args.size_mib * (1 << 20)), rounds=args.rounds)))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
