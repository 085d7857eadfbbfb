"""`minis3 bench --limits`: this machine's ceilings, measured with the sizes minis3 uses.

CPU ceilings (one core, one thread): pyeclib encode and decode of 1 MiB
segments in the configured scheme, MD5, SHA-256, xxh3 and CRC32C. Disk:
fsync'd 4 KiB file creates per second in the data directory, plain and the
way a storage node lands a fragment (temp file, fsync, rename, fsync of the
directory). Network stack: a bare aiohttp handler's requests/s and
single-stream MB/s, driven by the benchmark's own client on this machine.

The CPU part runs in a child process started with the same malloc tuning the
cluster's processes get (``MALLOC_MMAP_THRESHOLD_``), so the encode figure is
the one the storage path can reach. Run it alone: ``python -m minis3.bench.limits``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEGMENT = 1 << 20


def _rate(fn, nbytes: int, seconds: float = 0.6) -> float:
    """MB/s of fn() (which processes nbytes), best of three timed runs."""
    fn()
    best = 0.0
    for _ in range(3):
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 3:
            fn()
            n += 1
        best = max(best, n * nbytes / (time.perf_counter() - t0) / 1e6)
    return round(best, 1)


def cpu_limits(k: int, m: int, backend: str) -> dict:
    import xxhash
    from awscrt import checksums

    from ..ec.codec import Codec
    seg = os.urandom(SEGMENT)
    codec = Codec(k, m, backend)
    frags = codec.encode(seg)
    data_only, missing_m = frags[:k], frags[m:]       # all data fragments / the first m missing
    return {
        "ec_scheme": f"{backend} {k}+{m}, 1 MiB segments",
        "ec_encode_mb_s": _rate(lambda: codec.encode(seg), SEGMENT),
        "ec_decode_data_mb_s": _rate(lambda: codec.decode(data_only), SEGMENT),
        "ec_decode_degraded_mb_s": _rate(lambda: codec.decode(missing_m), SEGMENT),
        "md5_mb_s": _rate(lambda: hashlib.md5(seg).digest(), SEGMENT),
        "sha256_mb_s": _rate(lambda: hashlib.sha256(seg).digest(), SEGMENT),
        "xxh3_mb_s": _rate(lambda: xxhash.xxh3_64_intdigest(seg), SEGMENT),
        "crc32c_mb_s": _rate(lambda: checksums.crc32c(seg), SEGMENT),
    }


def disk_limits(data_dir: Path, seconds: float = 1.0) -> dict:
    data_dir.mkdir(parents=True, exist_ok=True)
    block = os.urandom(4096)
    with tempfile.TemporaryDirectory(dir=data_dir, prefix=".bench-") as d:
        def plain(i):
            fd = os.open(f"{d}/p{i}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, block)
            os.fsync(fd)
            os.close(fd)

        dfd = os.open(d, os.O_RDONLY)

        def landed(i):
            fd = os.open(f"{d}/t{i}.tmp", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, block)
            os.fsync(fd)
            os.close(fd)
            os.rename(f"{d}/t{i}.tmp", f"{d}/t{i}")
            os.fsync(dfd)

        out = {}
        for name, fn in (("fsync_creates_per_s", plain), ("fsync_rename_creates_per_s", landed)):
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                fn(n)
                n += 1
            out[name] = round(n / (time.perf_counter() - t0), 1)
        os.close(dfd)
    return out


def measure_in_child(k: int, m: int, backend: str, data_dir: Path) -> dict:
    """CPU and disk ceilings from a child with the cluster's malloc tuning."""
    from ..ec.codec import MALLOC_ENV
    env = dict(os.environ, **MALLOC_ENV)
    out = subprocess.run([sys.executable, "-m", "minis3.bench.limits", "--k", str(k), "--m", str(m),
                          "--backend", backend, "--data-dir", str(data_dir)],
                         env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m minis3.bench.limits")
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--m", type=int, default=2)
    p.add_argument("--backend", default="isa_l_rs_vand")
    p.add_argument("--data-dir", default="./data")
    a = p.parse_args(argv)
    out = cpu_limits(a.k, a.m, a.backend)
    out.update(disk_limits(Path(a.data_dir)))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
