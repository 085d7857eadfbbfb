"""What a benchmark run prints and writes: tables, ceilings, targets, Markdown.

Pure functions of the rows a run produced (see :meth:`stats.Phase.row`) and
the measured limits; the terminal and the Markdown share the same cells.
"""
from __future__ import annotations

import datetime as dt
import os
import platform

from .runner import size_label
from .stats import bottleneck, harmonic_ceiling

RESULT_COLUMNS = ["workload", "op", "size", "conc", "ops", "ops/s", "MB/s", "p50 ms", "p90 ms", "p99 ms",
                  "errors", "client CPU %", "machine CPU %", "server CPU ms/op", "bound by", "frontend RSS MiB"]


def _n(v, digits: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and v >= 100:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}" if isinstance(v, float) else f"{v:,}"


def _size(row: dict) -> str:
    if row["workload"] == "list":
        return f"{row['size']:,} keys"
    return size_label(row["size"])


def result_cells(rows: list[dict]) -> list[list[str]]:
    return [[r["workload"], r["op"], _size(r), str(r["concurrency"]), f"{r['ops']:,}", _n(r["ops_per_s"]),
             _n(r["mb_per_s"]), _n(r["p50_ms"], 2), _n(r["p90_ms"], 2), _n(r["p99_ms"], 2),
             str(r["errors"]), _n(r["client_cpu_pct"]), _n(r["machine_cpu_pct"]),
             _n(r["server_cpu_ms_per_op"], 2), bottleneck(r), _n(r.get("frontend_rss_peak_mb"))]
            for r in rows]


def machine() -> dict:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


# ------------------------------------------------------------------ ceilings and targets
def _find(rows: list[dict], workload: str, op: str, size: int | None = None, conc: int | None = None) -> dict | None:
    hits = [r for r in rows if r["workload"] == workload and r["op"] == op
            and (size is None or r["size"] == size) and (conc is None or r["concurrency"] == conc)]
    return hits[-1] if hits else None


def derived_ceilings(limits: dict) -> dict:
    """Single-core ceilings of the per-byte work each large operation must do."""
    out = {}
    if "md5_mb_s" in limits:
        out["put_work_mb_s"] = round(harmonic_ceiling([limits["md5_mb_s"], limits["sha256_mb_s"],
                                                       limits["ec_encode_mb_s"], limits["xxh3_mb_s"]]), 1)
        out["get_work_mb_s"] = round(harmonic_ceiling([limits["ec_decode_data_mb_s"], limits["xxh3_mb_s"],
                                                       limits["xxh3_mb_s"]]), 1)
    # The whole machine: every core busy, each MB costing the bare two hops'
    # CPU (client, relay and origins, as measured) plus the work on its bytes.
    # Nothing minis3 does beyond both (SigV4, SSE, the disk, its own code) is
    # in it, so no large transfer here can pass it, however well spread.
    for op in ("put", "get"):
        hops, work = limits.get(f"relay_{op}_cpu_ms_per_mb"), out.get(f"{op}_work_mb_s")
        if hops and work and limits.get("cores"):
            out[f"{op}_machine_mb_s"] = round(limits["cores"] / (hops / 1000 + 1 / work), 1)
    return out


#: What bounds a large single-stream transfer: the CPU work on its bytes, and the HTTP stack.
LARGE_CEILINGS = {
    "PUT": [("put_work_mb_s", "one core doing MD5+SHA-256+encode+xxh3"),
            ("bare_put_mb_s", "bare aiohttp single-stream upload"),
            ("relay_put_mb_s", "bare two-hop upload (relay to k+m origins)"),
            ("put_machine_mb_s", "every core doing the two hops and the work")],
    "GET": [("get_work_mb_s", "one core doing decode+2×xxh3"),
            ("bare_get_mb_s", "bare aiohttp single-stream download"),
            ("relay_get_mb_s", "bare two-hop download (k origins, relay)"),
            ("get_machine_mb_s", "every core doing the two hops and the work")],
}


def ceilings(rows: list[dict], limits: dict, *, width: int = 6) -> list[dict]:
    """Each headline result beside the ceiling it is bound by, as a ratio."""
    lim = dict(limits, **derived_ceilings(limits))
    top = max((r["concurrency"] for r in rows if r["workload"] == "small"), default=None)
    checks = []
    for size in sorted({r["size"] for r in rows if r["workload"] == "small"}):
        for op in ("PUT", "GET", "HEAD", "DELETE"):
            r = _find(rows, "small", op, size, top)
            if r and "bare_req_per_s" in lim:
                checks.append((f"small {op} {size_label(size)} ×{top} ops/s", r["ops_per_s"],
                               "bare aiohttp req/s", lim["bare_req_per_s"]))
        r = _find(rows, "small", "PUT", size, top)
        if r and size > 4096 and "fsync_rename_creates_per_s" in lim:
            checks.append((f"small PUT {size_label(size)} ×{top} ops/s", r["ops_per_s"],
                           f"fsync'd fragment creates/s ÷ {width} fragments", lim["fsync_rename_creates_per_s"] / width))
    for op, bounds in LARGE_CEILINGS.items():
        r = _find(rows, "large", op)
        for key, label in bounds if r else ():
            if key in lim:
                checks.append((f"large {op} {size_label(r['size'])} MB/s", r["mb_per_s"], label, lim[key]))
    return [{"result": a, "value": v, "ceiling": c, "ceiling_value": round(cv, 1),
             "ratio": round(v / cv, 3) if cv else None} for a, v, c, cv in checks]


def targets(mine: list[dict], moto: list[dict] | None, limits: dict, versioning: dict | None = None,
            side: dict | None = None) -> list[dict]:
    """The ratios minis3 is held to, each from this one run
    (``versioning``: the suite's versioning results, bench/versioning.py;
    ``side``: the rows measured side by side, bench/paired.py: where it has a
    ratio's two rows, the ratio is read from them, and the note gives the one
    from the workloads run one after the other)."""
    lim = dict(limits, **derived_ceilings(limits))
    out = []

    def add(name, value, goal, note=""):
        out.append({"target": name, "value": None if value is None else round(value, 3), "goal": goal,
                    "met": None if value is None or goal is None else value >= goal, "note": note})

    def ratio(name, goal, metric, *key, inverted=False):
        """minis3 ÷ moto_server on one metric of one row (moto ÷ minis3 if ``inverted``)."""
        def of(rows_a, rows_b):
            a, b = _find(rows_a, *key), _find(rows_b, *key)
            if not (a and b and a[metric] and b[metric]):
                return None
            return b[metric] / a[metric] if inverted else a[metric] / b[metric]
        apart = of(mine, moto)
        together = of(side["minis3"], side["moto"]) if side else None
        if together is None:
            add(name, apart, goal)
        else:
            add(name, together, goal, f"side by side ({side['order']}); one after the other: "
                + ("-" if apart is None else f"{apart:.2f}"))

    top = max((r["concurrency"] for r in mine if r["workload"] == "small"), default=None)
    if moto is not None:
        for size, op, goal in ((4096, "PUT", 3.0), (4096, "GET", 4.0), (65536, "PUT", 1.5), (65536, "GET", 2.0)):
            ratio(f"{size_label(size)} {op} ops/s at ×{top}, minis3 ÷ moto_server", goal, "ops_per_s",
                  "small", op, size, top)
        for op in ("PUT", "GET"):
            ratio(f"large {op} MB/s, minis3 ÷ moto_server", 2.0, "mb_per_s", "large", op)
        if any(r["workload"] == "small" and r["concurrency"] == 1 for r in mine):
            ratio("4 KiB PUT p50 at ×1, moto_server ÷ minis3 (latency)", 1.0, "p50_ms", "small", "PUT", 4096, 1,
                  inverted=True)
    a = _find(mine, "large", "PUT")
    if a and "put_work_mb_s" in lim:
        add("large PUT MB/s ÷ one-core ceiling of its work", a["mb_per_s"] / lim["put_work_mb_s"], 0.5)
    _flatness_targets(mine, versioning, add)
    return out


def _flatness_targets(mine: list[dict], versioning: dict | None, add) -> None:
    """The targets that say a cost does not grow with size (object, parts, keys,
    versions), and the multipart-vs-single-stream ratios to show."""
    small_rss = max((r.get("frontend_rss_peak_mb") or 0 for r in mine if r["workload"] == "small"), default=0)
    sizes = sorted({r["size"] for r in mine if r["workload"] == "large"})
    peak = {n: max((r.get("frontend_rss_peak_mb") or 0 for r in mine
                    if r["workload"] == "large" and r["size"] == n), default=0) for n in sizes}
    if len(sizes) >= 2 and peak[sizes[0]] and peak[sizes[-1]]:
        lo, hi = sizes[0], sizes[-1]
        add(f"frontend RSS flat in object size: peak at {size_label(lo)} ÷ peak at {size_label(hi)}",
            peak[lo] / peak[hi], 0.8, f"{peak[lo]:.0f} MiB at {size_label(lo)}, {peak[hi]:.0f} MiB at "
            f"{size_label(hi)}; {small_rss:.0f} MiB with small objects")
    done = sorted((r for r in mine if r["workload"] == "multipart" and r["op"] == "COMPLETE"),
                  key=lambda r: r["size"])
    if len(done) >= 2 and done[-1]["p50_ms"]:
        lo, hi = done[0], done[-1]
        parts = lambda r: r.get("parts", "?")  # noqa: E731
        others = "; ".join(f"{size_label(r['size'])} in {parts(r)} parts: {r['p50_ms']:.0f} ms" for r in done[1:-1])
        add(f"CompleteMultipartUpload flat in object size: time at {size_label(lo['size'])} ÷ time at "
            f"{size_label(hi['size'])} ({parts(lo)} and {parts(hi)} parts)", lo["p50_ms"] / hi["p50_ms"], 1 / 1.5,
            f"{lo['p50_ms']:.0f} ms vs {hi['p50_ms']:.0f} ms ({hi['size'] // lo['size']}× the bytes"
            + (f"; medians of {lo['ops']} and {hi['ops']} completions" if max(lo["ops"], hi["ops"]) > 1 else "")
            + ")"
            + (f"; {others}" if others else ""))
    for op, big in (("PUT parts", "PUT"), ("GET parts", "GET")):
        mp = [r for r in mine if r["workload"] == "multipart" and r["op"] == op and r["size"] >= 1 << 30]
        one = _find(mine, "large", big)
        if mp and one:
            r = min(mp, key=lambda r: r["size"])
            add(f"multipart {big} MB/s ({size_label(r['size'])}, {r['concurrency']} parts in flight) ÷ "
                f"single-stream {big} ({size_label(one['size'])})", r["mb_per_s"] / one["mb_per_s"], None,
                f"{r['mb_per_s']:.0f} vs {one['mb_per_s']:.0f} MB/s (a ratio to show, not a target)")
    lists = sorted((r for r in mine if r["workload"] == "list"), key=lambda r: r["size"])
    if len(lists) >= 2:
        lo, hi = lists[0], lists[-1]
        add(f"LIST page time flat: p50 at {lo['size']:,} keys ÷ p50 at {hi['size']:,} keys",
            lo["p50_ms"] / hi["p50_ms"] if hi["p50_ms"] else None, 1 / 1.5,
            f"{lo['p50_ms']:.1f} ms vs {hi['p50_ms']:.1f} ms")
    for r in (versioning or {}).get("ratios", []):
        what = "a 1,000-key LIST page" if r["op"] == "LIST" else f"{r['op']} of the current version"
        many = f"{r['many'] - 1:,} old versions a key" if r["op"] == "LIST" else f"{r['many']:,} versions"
        few = "none" if r["op"] == "LIST" else "1"
        add(f"{what} flat in versions: p50 with {few} ÷ p50 with {many}",
            1 / r["p50"] if r["p50"] else None, 1 / 1.5,
            f"{many} ÷ {few}: p50 {r['p50']:.2f}×, p99 {r['p99']:.2f}×" if r["p50"] and r["p99"] else "")


# ------------------------------------------------------------------ rendering
def markdown_table(header: list[str], cells: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
    return "\n".join(lines)


def rich_table(title: str, header: list[str], cells: list[list[str]]):
    from rich.table import Table
    t = Table(title=title, title_justify="left")
    for h in header:
        t.add_column(h, justify="left" if h in ("workload", "op", "size", "result", "ceiling", "target", "bound by")
                     else "right")
    for row in cells:
        t.add_row(*row)
    return t


LIMIT_LABELS = {
    "ec_encode_mb_s": "erasure encode MB/s", "ec_decode_data_mb_s": "erasure decode (data fragments) MB/s",
    "ec_decode_degraded_mb_s": "erasure decode (m fragments missing) MB/s", "md5_mb_s": "MD5 MB/s",
    "sha256_mb_s": "SHA-256 MB/s", "xxh3_mb_s": "xxh3-64 MB/s", "crc32c_mb_s": "CRC32C MB/s",
    "fsync_creates_per_s": "4 KiB file create+fsync /s",
    "fsync_rename_creates_per_s": "4 KiB create+fsync+rename+dir fsync /s",
    "bare_req_per_s": "bare aiohttp handler req/s (×32, client on this box)",
    "bare_get_mb_s": "bare aiohttp single-stream download MB/s", "bare_put_mb_s": "bare aiohttp single-stream upload MB/s",
    "relay_get_mb_s": "bare two-hop download MB/s (k origins → relay → client: minis3's hops, none of its work)",
    "relay_put_mb_s": "bare two-hop upload MB/s (client → relay → k+m origins, 1.5× the bytes for 4+2)",
    "bare_get_cpu_ms_per_mb": "bare aiohttp single-stream download: CPU ms per MB (server and client)",
    "bare_put_cpu_ms_per_mb": "bare aiohttp single-stream upload: CPU ms per MB (server and client)",
    "relay_get_cpu_ms_per_mb": "bare two-hop download: CPU ms per MB (origins, relay and client)",
    "relay_put_cpu_ms_per_mb": "bare two-hop upload: CPU ms per MB (client, relay and origins)",
    "cores": "cores",
    "put_work_mb_s": "one core: MD5+SHA-256+encode+xxh3 MB/s", "get_work_mb_s": "one core: decode+2×xxh3 MB/s",
    "put_machine_mb_s": "every core: the two-hop upload's CPU + MD5+SHA-256+encode+xxh3, MB/s",
    "get_machine_mb_s": "every core: the two-hop download's CPU + decode+2×xxh3, MB/s",
}


def limit_cells(limits: dict) -> list[list[str]]:
    lim = dict(limits, **derived_ceilings(limits))
    return [[LIMIT_LABELS.get(k, k), _n(v) if isinstance(v, (int, float)) else str(v)] for k, v in lim.items()]


def ceiling_cells(checks: list[dict]) -> list[list[str]]:
    return [[c["result"], _n(c["value"]), c["ceiling"], _n(c["ceiling_value"]),
             "-" if c["ratio"] is None else f"{c['ratio']:.2f}"] for c in checks]


def target_cells(ts: list[dict], before: list[dict] | None = None) -> list[list[str]]:
    """The targets table's cells; with ``before`` (the targets of an earlier
    run), a "before" column after the value: the same target's value then."""
    then = {t["target"]: t["value"] for t in before or []}
    cells = []
    for t in ts:
        row = [t["target"], "-" if t["value"] is None else f"{t['value']:.2f}"]
        if before is not None:
            row.append("-" if then.get(t["target"]) is None else f"{then[t['target']]:.2f}")
        row += ["-" if t["goal"] is None else f"≥ {t['goal']:.2f}",
                "shown" if t["goal"] is None else {True: "met", False: "**missed**", None: "not measured"}[t["met"]],
                t["note"]]
        cells.append(row)
    return cells


def target_columns(with_before: bool = False) -> list[str]:
    return ["target", "value", *(["before"] if with_before else []), "goal", "", "note"]


def comparison_ratio(a: dict, b: dict | None) -> float | None:
    """minis3 ÷ moto_server for one row: ops/s (small, mixed), MB/s (large,
    multipart), moto's page time ÷ minis3's (LIST, COMPLETE)."""
    metric = ("p50_ms" if a["workload"] == "list" or a["op"] == "COMPLETE"
              else "mb_per_s" if a["workload"] in ("large", "multipart") else "ops_per_s")
    if not b or not b[metric]:
        return None
    if metric == "p50_ms":
        return b[metric] / a[metric] if a[metric] else None
    return a[metric] / b[metric]


SIDE_BY_SIDE_COLUMNS = ["workload", "op", "size", "conc", "minis3 ops/s", "moto ops/s", "minis3 MB/s", "moto MB/s",
                        "minis3 p50/p99 ms", "moto p50/p99 ms", "minis3 ÷ moto side by side",
                        "minis3 ÷ moto one after the other", "errors (minis3/moto)",
                        "each turn, minis3 / moto (ops/s or MB/s)"]


def side_by_side_cells(side: dict, mine: list[dict], moto: list[dict]) -> list[list[str]]:
    """The rows measured side by side (bench/paired.py), each with its ratio
    (``comparison_ratio``) and the same ratio from the workloads run one after
    the other (``mine`` and ``moto``)."""
    cells = []
    for a in side["minis3"]:
        b = _find(side["moto"], *_key(a))
        cells.append(_pair_cells(a, b) + [_times(comparison_ratio(a, b)), _times(_ratio_in(mine, moto, _key(a))),
                                          f"{a['errors']} / {b['errors'] if b else '-'}", f"{_turns(a)} / {_turns(b)}"])
    return cells


def _turns(row: dict | None) -> str:
    return ", ".join(_n(x) for x in (row or {}).get("turns", [])) or "-"


def _key(row: dict) -> tuple:
    return row["workload"], row["op"], row["size"], row["concurrency"]


def _ratio_in(rows_a: list[dict], rows_b: list[dict], key: tuple) -> float | None:
    """``comparison_ratio`` of the rows with this key in two other lists (None: no such row)."""
    a = _find(rows_a, *key)
    return comparison_ratio(a, _find(rows_b, *key)) if a else None


def _times(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}×"


def _pair_cells(a: dict, b: dict | None) -> list[str]:
    """The columns a minis3 row and its moto_server row (``b``, or None) share in
    every comparison table: the phase, then each side's ops/s, MB/s and p50/p99."""
    return [a["workload"], a["op"], _size(a), str(a["concurrency"]),
            _n(a["ops_per_s"]), _n(b and b["ops_per_s"]), _n(a["mb_per_s"]), _n(b and b["mb_per_s"]),
            f"{_n(a['p50_ms'], 2)} / {_n(a['p99_ms'], 2)}", f"{_n(b and b['p50_ms'], 2)} / {_n(b and b['p99_ms'], 2)}"]


def comparison_cells(mine: list[dict], moto: list[dict], before: dict | None = None) -> list[list[str]]:
    """The minis3-vs-moto table; with ``before`` (an earlier run's JSON, with its
    "minis3" and "moto" rows), a last column: that run's minis3 ÷ moto for the
    same workload, op, size and concurrency ("-" where it had no such row)."""
    cells = []
    for a in mine:
        b = _find(moto, *_key(a))
        row = _pair_cells(a, b) + [_n(a["server_cpu_ms_per_op"], 2), _n(b and b["server_cpu_ms_per_op"], 2),
                                   _times(comparison_ratio(a, b))]
        if before is not None:
            row.append(_times(_ratio_in(before.get("minis3") or [], before.get("moto") or [], _key(a))))
        row.append(f"{a['errors']} / {b['errors'] if b else '-'}")
        cells.append(row)
    return cells


COMPARISON_COLUMNS = ["workload", "op", "size", "conc", "minis3 ops/s", "moto ops/s", "minis3 MB/s", "moto MB/s",
                      "minis3 p50/p99 ms", "moto p50/p99 ms", "minis3 server CPU ms/op",
                      "moto server CPU ms/op", "minis3 ÷ moto", "errors (minis3/moto)"]


def comparison_columns(with_before: bool = False) -> list[str]:
    cols = list(COMPARISON_COLUMNS)
    if with_before:
        cols.insert(cols.index("minis3 ÷ moto") + 1, "before minis3 ÷ moto")
    return cols


#: The CPU table's columns after the row's name: each role (runner.ROLES), the client, the total.
CPU_ROLE_COLUMNS = [("frontend", "frontend"), ("nodes", "storage nodes"), ("replicas", "metadata replicas"),
                    ("other", "other"), ("client", "client")]
CPU_COLUMNS = ["workload", "op", "size", "conc", *(label for _, label in CPU_ROLE_COLUMNS), "total"]


def cpu_cells(rows: list[dict]) -> list[list[str]]:
    """Where the CPU goes: for each row whose CPU was split by process (a
    minis3 cluster's; not a mixed run's per-op shares), ms of CPU per operation
    of the frontend, the storage nodes, the metadata replicas, the rest of the
    cluster, the client, and their total."""
    cells = []
    for r in rows:
        by = r.get("cpu_ms_per_op_by_role")
        if not by:
            continue
        vals = [by.get(key) for key, _ in CPU_ROLE_COLUMNS]
        cells.append([r["workload"], r["op"], _size(r), str(r["concurrency"]),
                      *(_n(v, 2) for v in vals),
                      _n(sum(v or 0.0 for v in vals), 2)])
    return cells
