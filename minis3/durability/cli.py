"""``minis3 durability``: the annual chance of losing an object, from the cluster's own repair time.

It reads the repair inputs from the running cluster (``measure.py``), runs the Markov model
(``model.py``) for the cluster's scheme and placement, and prints where each input came
from, the nines, which failure mode dominates, how the nines move with the detection time and
the rebuild rate, and a comparison with other schemes and S3's claim. Flags ask what-ifs.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys

from . import model as M
from .measure import RepairInputs, measure

_DURATION = {"ms": 1e-3, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "y": M.SECONDS_PER_YEAR}
_SIZE = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
         "p": 1e15, "pb": 1e15, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40, "pib": 1 << 50}
_NUMBER = r"\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*"


def parse_duration(text: str) -> float:
    """Seconds in ``5s``, ``2h``, ``30min``, ``1.5d``, ``250ms`` (a bare number is seconds)."""
    got = re.fullmatch(_NUMBER + r"([a-z]*)\s*", text.strip().lower())
    if not got or got.group(2) not in _DURATION | {"": 1}:
        raise argparse.ArgumentTypeError(f"a duration is a number and ms, s, min, h, d or y: {text!r}")
    return float(got.group(1)) * (_DURATION.get(got.group(2)) or 1)


def parse_size(text: str) -> float:
    """Bytes in ``1MiB``, ``4TB``, ``1e6`` (decimal units are powers of 10, *iB of 2)."""
    got = re.fullmatch(_NUMBER + r"([a-z]*)\s*", text.strip().lower())
    if not got or got.group(2) not in _SIZE:
        raise argparse.ArgumentTypeError(f"a size is a number and B, KB, MB, GB, TB, KiB, MiB, GiB, TiB: {text!r}")
    return float(got.group(1)) * _SIZE[got.group(2)]


def parse_rate(text: str) -> float:
    """Bytes a second in ``21MB/s``, ``1GB/s`` or ``21MB``."""
    t = text.strip()
    return parse_size(t[:-2] if t.lower().endswith("/s") else t)


def parse_placement(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a placement is fragments per AZ, e.g. 2,2,2: {text!r}") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scheme", help="erasure scheme K+M (default: the topology's, 4+2)")
    p.add_argument("--replicas", type=int, help="N copies instead (replication is K=1, M=N-1)")
    p.add_argument("--placement", type=parse_placement, help="fragments per AZ, e.g. 2,2,2 (default: dealt "
                                                             "round-robin over the topology's AZs)")
    p.add_argument("--afr", type=float, default=0.02, help="annual failure rate of a disk (node), default 0.02")
    p.add_argument("--mttr", type=parse_duration, help="repair time (5s, 2h): instead of the measured one")
    p.add_argument("--scan-interval", type=parse_duration, help="the scrubber's pass interval: detection of a "
                                                                "fragment lost on a live node (default: the running "
                                                                "scrubber's)")
    p.add_argument("--down-after", type=parse_duration, help="detection of a failed node: how long it stays "
                                                             "down before its fragments are rebuilt elsewhere "
                                                             "(default: the running scrubber's down_after_s)")
    p.add_argument("--rebuild-rate", type=parse_rate, help="rebuild rate, e.g. 200MB/s (default: measured)")
    p.add_argument("--node-bytes", type=parse_size, help="fragment bytes on one node, e.g. 4TB (default: the "
                                                         "largest node's)")
    p.add_argument("--objects", type=float, default=1e7, help="how many objects, for objects lost a year "
                                                              "(default 1e7)")
    p.add_argument("--object-size", type=parse_size, default=float(1 << 20),
                   help="object size: a rebuild from the last spare reads this much (default 1MiB)")
    p.add_argument("--az-outages-per-year", type=float, default=0.001,
                   help="per AZ: events that take its fragments away (default 0.001: destructive ones)")
    p.add_argument("--az-outage-hours", type=float, default=24.0, help="how long they stay away (default 24)")
    p.add_argument("--lse-per-tb", type=float, default=0.08,
                   help="latent sector errors per TB read (default 0.08: one per 10^14 bits)")
    p.add_argument("--repair", choices=("serial", "parallel"), default="serial",
                   help="one lost fragment repaired at a time (serial, default) or all at once (parallel)")
    p.add_argument("--no-cluster", action="store_true", help="do not ask the running cluster: stated defaults")
    p.add_argument("--json", action="store_true")


# ------------------------------------------------------------------ what to compute

def scheme_from(args, topo) -> M.Scheme:
    azs = len(topo.azs)
    placement = args.placement
    if args.replicas:
        if args.scheme:
            raise ValueError("--scheme or --replicas, not both")
        s = M.Scheme.replication(args.replicas, azs, placement)
    else:
        s = M.Scheme.parse(args.scheme, azs, placement) if args.scheme else \
            M.Scheme.erasure(topo.erasure.k, topo.erasure.m, azs, placement)
    return _named(s)


def _named(s: M.Scheme) -> M.Scheme:
    zones = sum(1 for p in s.placement if p)
    where = "one zone" if zones == 1 else f"over {zones} AZs"
    return M.Scheme(s.k, s.m, s.placement, f"{s.label} {where}")


def apply_flags(rep: RepairInputs, args) -> RepairInputs:
    from .measure import Measured
    if args.scan_interval is not None:
        rep.scan_interval_s = Measured(args.scan_interval, "s", "--scan-interval")
    if args.down_after is not None:
        rep.down_after_s = Measured(args.down_after, "s", "--down-after")
    if args.rebuild_rate is not None:
        rep.rebuild_bytes_per_s = Measured(args.rebuild_rate, "B/s", "--rebuild-rate")
    if args.node_bytes is not None:
        rep.node_bytes = Measured(args.node_bytes, "B", "--node-bytes")
    return rep


def inputs_from(args, mttr_s: float) -> M.Inputs:
    return M.Inputs(afr=args.afr, mttr_hours=mttr_s / 3600, az_outages_per_year=args.az_outages_per_year,
                    az_outage_hours=args.az_outage_hours, lse_per_tb=args.lse_per_tb,
                    object_bytes=args.object_size, repair=args.repair)


DETECTION_TIMES = (10.0, 60.0, 600.0, 3600.0, 86400.0)
REBUILD_RATES = (21e6, 200e6, 1e9)


def sensitivity(scheme: M.Scheme, inputs: M.Inputs, rep: RepairInputs) -> dict:
    """Nines for each detection time (down timeout) × rebuild rate (the measured ones among
    them), with all failure modes and without AZ outages."""
    intervals = sorted(set(DETECTION_TIMES) | {rep.detection_s})
    rates = sorted(set(REBUILD_RATES) | {rep.rebuild_bytes_per_s.value})
    grid, no_az = [], []
    for iv in intervals:
        row, row2 = [], []
        for rate in rates:
            mttr = iv + max(rep.node_bytes.value / rate, rep.pass_s.value)
            i = inputs.with_(mttr_hours=max(mttr, 1e-3) / 3600)
            row.append(M.evaluate(scheme, i).nines)
            row2.append(M.evaluate(scheme, i.with_(az_outages_per_year=0)).nines)
        grid.append(row)
        no_az.append(row2)
    return {"detection_s": intervals, "rebuild_bytes_per_s": rates, "node_bytes": rep.node_bytes.value,
            "nines": grid, "nines_without_az_outages": no_az,
            "measured": [rep.detection_s, rep.rebuild_bytes_per_s.value]}


def comparison(scheme: M.Scheme, inputs: M.Inputs, azs: int) -> list[M.Result]:
    """The cluster's scheme beside the usual alternatives, at the same rates and MTTR."""
    others = [M.Scheme.erasure(4, 2, azs), M.Scheme.erasure(6, 3, azs), M.Scheme.replication(3, azs),
              M.Scheme.erasure(4, 2, azs, (6,) + (0,) * (azs - 1))]
    out = [M.evaluate(scheme, inputs)]
    for s in map(_named, others):
        if (s.k, s.m, s.placement) != (scheme.k, scheme.m, scheme.placement):
            out.append(M.evaluate(s, inputs))
    return out


def report(args, topo) -> dict:
    scheme = scheme_from(args, topo)
    rep = apply_flags(measure(topo, ask=not args.no_cluster), args)
    mttr_s = args.mttr if args.mttr is not None else rep.mttr_s
    inputs = inputs_from(args, max(mttr_s, 1e-3))
    result = M.evaluate(scheme, inputs)
    return {"scheme": scheme, "repair": rep, "mttr_s": mttr_s, "mttr_source": "--mttr" if args.mttr is not None
            else "detection (down timeout) + max(bytes per node ÷ rebuild rate, last pass)",
            "inputs": inputs, "result": result, "objects": args.objects,
            "sensitivity": sensitivity(scheme, inputs, rep) if args.mttr is None else None,
            "comparison": comparison(scheme, inputs, len(topo.azs))}


def as_json(r: dict) -> dict:
    i: M.Inputs = r["inputs"]
    return {"cluster": r["repair"].cluster, "repair_inputs": r["repair"].as_dict(),
            "mttr_s": r["mttr_s"], "mttr_source": r["mttr_source"],
            "rates": {"afr": i.afr, "lambda_per_year": i.lam, "mu_per_year": i.mu, "repair": i.repair,
                      "az_outages_per_year": i.az_outages_per_year, "az_outage_hours": i.az_outage_hours,
                      "lse_per_tb": i.lse_per_tb, "object_bytes": i.object_bytes, "p_lse": i.p_lse,
                      "q_outage": i.q_outage},
            "result": r["result"].as_dict(r["objects"]), "sensitivity": r["sensitivity"],
            "comparison": [c.as_dict(r["objects"]) for c in r["comparison"]]
            + [{"scheme": "S3's claim", "nines": M.S3_CLAIM_NINES, "p_loss_per_year": 10 ** -M.S3_CLAIM_NINES,
                "durability_percent": M.durability_percent(10 ** -M.S3_CLAIM_NINES),
                "objects_lost_per_year": r["objects"] * 10 ** -M.S3_CLAIM_NINES}]}


# ------------------------------------------------------------------ text

def human_s(s: float) -> str:
    for unit, size in (("y", M.SECONDS_PER_YEAR), ("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{s / size:.3g} {unit}"
    return f"{s:.3g} s"


def human_b(b: float) -> str:
    """Decimal units, or binary ones for a whole number of them (1 MiB)."""
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if b >= size and b % size == 0 and b < 1024 * size:
            return f"{b / size:.0f} {unit}"
    for unit, size in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if b >= size:
            return f"{b / size:.3g} {unit}"
    return f"{b:.0f} B"


def human_rate(b: float) -> str:
    return human_b(b) + "/s"


def _years(y: float) -> str:
    return "never" if math.isinf(y) else f"{y:.3g} years"


def _table(rows: list[list[str]], right: set[int] = frozenset()) -> list[str]:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    return ["  " + "  ".join(c.rjust(w) if j in right else c.ljust(w) for j, (c, w) in enumerate(zip(r, widths)))
            .rstrip() for r in rows]


def render(r: dict) -> str:
    s: M.Scheme = r["scheme"]
    i: M.Inputs = r["inputs"]
    out = [f"minis3 durability: {s.label}, placement {','.join(map(str, s.placement))} (fragments per AZ), "
           f"{r['objects']:.3g} objects of {human_b(i.object_bytes)}", ""]
    out += _repair_lines(r)
    out += ["", "other inputs (flags):"] + _flag_lines(i)
    out += ["", "result:"] + _result_lines(r)
    out += _sensitivity_lines(r["sensitivity"])
    out += ["", "comparison (the same rates and MTTR):"] + _comparison_lines(r)
    return "\n".join(out)


def _repair_lines(r: dict) -> list[str]:
    """The repair inputs, measured or defaulted, and the MTTR they make."""
    rep: RepairInputs = r["repair"]
    if rep.cluster:
        out = [f"repair inputs, measured on the running cluster (scrubber {rep.where}):"]
    else:
        out = [f"repair inputs: NO CLUSTER ANSWERED at {rep.where} (or --no-cluster): stated defaults"]
    cycle, busy = rep.audit_cycle_s, rep.audit_cycle_busy_s
    bitflip = rep.bitflip_detection_s
    share = rep.audit_busy_share.value
    rows = [["down timeout", human_s(rep.down_after_s.value), rep.down_after_s.source
             + "; detection of a failed node (a probe each second: +1 s at most)"],
            ["scan interval", human_s(rep.scan_interval_s.value), rep.scan_interval_s.source
             + "; detection of a fragment lost on a node that is up"],
            ["audit rate", human_rate(rep.audit_bytes_per_s.value),
             rep.audit_bytes_per_s.source + (f"; a silent bitflip is found within {human_s(cycle)} (audit cycle "
                                             f"= bytes per node ÷ audit rate), {human_s(busy)} on a node busy "
                                             f"all the time (its audit runs at {share:g} of the rate: "
                                             f"{rep.audit_busy_share.source}), and rebuilt by the next pass: "
                                             f"detection ≤ {human_s(bitflip)}" if cycle
                                             else "; off: silent bitflips are found by reads only")],
            ["rebuild rate", human_rate(rep.rebuild_bytes_per_s.value), rep.rebuild_bytes_per_s.source],
            ["bytes per node", human_b(rep.node_bytes.value), rep.node_bytes.source],
            ["last pass", human_s(rep.pass_s.value), f"a rebuild ends with its pass ({rep.pass_s.source})"],
            ["MTTR", human_s(r["mttr_s"]), ("= detection (down timeout) + max(bytes per node ÷ rebuild rate, "
                                            f"last pass) = {human_s(rep.detection_s)} + {human_s(rep.rebuild_s)}")
             if r["mttr_source"] != "--mttr" else "--mttr"]]
    out += _table(rows)
    return out


def _flag_lines(i: M.Inputs) -> list[str]:
    return _table([["AFR", f"{i.afr:g}", f"λ = -ln(1 - AFR) = {i.lam:.4g} failures a year per disk; "
                                         f"μ = 1/MTTR = {i.mu:.4g} repairs a year"],
                   ["repair model", i.repair, "one lost fragment rebuilt at a time, at μ" if i.repair == "serial"
                    else "every lost fragment rebuilt at once, i·μ"],
                   ["AZ outages", f"{i.az_outages_per_year:g} a year per AZ",
                    f"each takes the AZ's fragments away for {i.az_outage_hours:g} h; a disk fails meanwhile "
                    f"with q = {i.q_outage:.3g}"],
                   ["latent sectors", f"{i.lse_per_tb:g} per TB read", f"a rebuild with no spare reads "
                    f"{human_b(i.object_bytes)}: p = {i.p_lse:.3g}"]])


def _result_lines(r: dict) -> list[str]:
    res: M.Result = r["result"]
    out = _table([["MTTDL", _years(res.mttdl_years), "mean time to losing a given object"],
                   ["P(loss)", f"{res.p_year:.3g} a year", f"durability {M.durability_percent(res.p_year)}"],
                   ["nines", f"{res.nines:.2f}", f"S3's claim: {M.S3_CLAIM_NINES:g}"],
                   ["objects lost", f"{res.lost_per_year(r['objects']):.3g} a year",
                    f"of {r['objects']:.3g} (one every {human_s(M.SECONDS_PER_YEAR / res.lost_per_year(r['objects']))})"
                    if res.p_year > 0 else ""],
                   ["dominant", res.dominant, f"{res.shares[res.dominant]:.1%} of losses"]])
    out += _table([["", f"  {mode}", f"{res.shares[mode]:.3%}"] for mode in M.MODES], right={2})
    return out


def _sensitivity_lines(sens: dict | None) -> list[str]:
    """The nines by detection time and rebuild rate, with and without AZ outages."""
    out: list[str] = []
    if sens:
        for key, title in (("nines", "all failure modes"), ("nines_without_az_outages", "without AZ outages")):
            out += ["", f"nines by detection time (rows) and rebuild rate (columns), {title}, "
                        f"{human_b(sens['node_bytes'])} per node (* measured):"]
            iv_m, rate_m = sens["measured"]
            head = ["detect \\ rebuild"] + [human_rate(x) + ("*" if x == rate_m else "")
                                         for x in sens["rebuild_bytes_per_s"]]
            rows = [head] + [[human_s(iv) + ("*" if iv == iv_m else "")] + [f"{v:.2f}" for v in row]
                             for iv, row in zip(sens["detection_s"], sens[key])]
            out += _table(rows, right=set(range(1, len(head))))
    return out


def _comparison_lines(r: dict) -> list[str]:
    """Each scheme of the comparison under the same rates and MTTR, and S3's claim."""
    rows = [["scheme", "placement", "overhead", "MTTDL", "P(loss)/year", "lost/year", "nines", "dominant"]]
    for c in r["comparison"]:
        rows.append([c.scheme.label, ",".join(map(str, c.scheme.placement)), f"{c.scheme.overhead:.2f}x",
                     _years(c.mttdl_years), f"{c.p_year:.3g}", f"{c.lost_per_year(r['objects']):.3g}",
                     f"{c.nines:.2f}", c.dominant])
    claim = 10 ** -M.S3_CLAIM_NINES
    rows.append(["S3's claim", "3+ AZs", "-", _years(1 / claim), f"{claim:.3g}", f"{r['objects'] * claim:.3g}",
                 f"{M.S3_CLAIM_NINES:.2f}", "(not published)"])
    return _table(rows, right={2, 4, 5, 6})


def run(topo, args) -> int:
    try:
        r = report(args, topo)
    except ValueError as exc:
        print(f"minis3 durability: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(as_json(r), indent=1) if args.json else render(r))
    return 0
