"""Encryption at rest (`make bench`): what SSE-S3 costs against the same objects in the clear.

Every new object is SSE-S3 (core/sse.py), so the suite's cluster names one
bucket pattern it leaves in the clear (the topology's ``[frontend]
plaintext_buckets``, a switch S3 does not have, kept for exactly this), and
runs the same workloads back to back in a bucket of each: small objects at the
top concurrency (4 KiB are sealed inline, 64 KiB in one segment) and large
single-stream PUT and GET. Read as a ratio: SSE-S3 ÷ plaintext, for throughput
and for the server's CPU per operation.

Each group of phases runs twice a side, in the order plaintext, SSE, SSE,
plaintext (bench/paired.py), and each side's turns are pooled: a cluster's
second run of a workload differs from its first by more than the cipher costs
(measured: one order showed SSE 25% slower, the reverse 10% faster), so the
order must cancel out.
"""
from __future__ import annotations

import dataclasses

from . import paired, report
from .runner import size_label
from .workloads import KiB, MiB, Settings

PLAIN_PREFIX = "minis3-bench-plain"
SEALED_PREFIX = "minis3-bench-sse"
#: The suite's topology: the plaintext bucket's name pattern.
PLAINTEXT_BUCKETS = (f"{PLAIN_PREFIX}-*",)


def settings(s: Settings) -> Settings:
    return dataclasses.replace(s, workloads=("small", "large"), sizes=(4 * KiB, 64 * KiB),
                               concurrency=(max(s.concurrency),), small_ops=("GET", "HEAD"),
                               large_sizes=(256 * MiB,), duration=min(s.duration, 5.0))


async def run(endpoint: str, s: Settings, pids: list[int], progress) -> dict:
    """The same workloads in the clear and sealed, in turn (bench/paired.py):
    {"plain": rows, "sse": rows}, each row that side's turns pooled."""
    sides = [paired.Side(name, endpoint, "minis3admin", "minis3secret", pids, frontend_pid=pids[0],
                         bucket_prefix=prefix) for name, prefix in (("plain", PLAIN_PREFIX), ("sse", SEALED_PREFIX))]
    return await paired.run(*sides, settings(s), 2, progress, log=lambda _line: None)


def cells(enc: dict) -> list[list[str]]:
    sealed = {(r["workload"], r["op"], r["size"]): r for r in enc["sse"]}
    rows = []
    for p in enc["plain"]:
        e = sealed.get((p["workload"], p["op"], p["size"]))
        if e is None or p["op"] == "DELETE":
            continue
        large = p["workload"] == "large"
        unit = "mb_per_s" if large else "ops_per_s"
        cpu_p, cpu_e = p.get("server_cpu_ms_per_op"), e.get("server_cpu_ms_per_op")
        rows.append([f"{p['op']} {size_label(p['size'])} ×{p['concurrency']}",
                     f"{p[unit]:,.0f} {'MB/s' if large else 'ops/s'}", f"{e[unit]:,.0f}",
                     f"{e[unit] / p[unit]:.2f}×" if p[unit] else "-",
                     f"{p['p50_ms']:.2f} / {e['p50_ms']:.2f}",
                     f"{cpu_p:.2f} / {cpu_e:.2f}" if cpu_p is not None and cpu_e is not None else "-",
                     f"{(cpu_e - cpu_p) / cpu_p * 100:+.0f}%" if cpu_p and cpu_e is not None else "-"])
    return rows


def section(enc: dict | None) -> list[str]:
    if not enc:
        return []
    return [
        "## Encryption at rest: SSE-S3 against plaintext",
        "",
        "Every new object is encrypted (SSE-S3, as S3 does): the frontend seals each segment with "
        "AES-256-GCM under the object's own data key before erasure coding, and opens it after "
        "decoding on a GET (docs/course/04, \"Where encryption sits\"). The same workloads, back to "
        "back on the same cluster, in a bucket the suite's topology leaves in the clear "
        "(`plaintext_buckets`) and in an ordinary one, each group of phases twice a side (plaintext, "
        "SSE, SSE, plaintext: the order cancels out), each side's turns pooled. *ratio* is SSE-S3 ÷ plaintext (1.00×: free); the CPU "
        "columns are the whole server's, per operation. What the cipher itself costs, timed alone: "
        "~8 µs to seal or open a 4 KiB object, ~12 µs for 64 KiB, ~3 µs to make and wrap a data key "
        "(AES-NI; core/seal.py).",
        "",
        report.markdown_table(["request", "plaintext", "SSE-S3", "ratio", "p50 ms plain / SSE",
                               "server CPU ms/op plain / SSE", "CPU added"], cells(enc)),
        "",
    ]
