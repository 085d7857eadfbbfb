"""`minis3 status`: every process of the cluster, its AZ, up or down, disk use."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

from ..rpc import auth
from .topology import Topology


def _get(topo: Topology, url: str, path: str) -> dict | None:
    req = urllib.request.Request(url + path, headers={auth.HEADER: auth.sign(topo.cluster_secret, "GET", path)})
    try:
        with urllib.request.urlopen(req, timeout=2) as r:
            return json.loads(r.read())
    except (OSError, ValueError):
        return None


def _frontend_up(url: str) -> bool:
    try:
        urllib.request.urlopen(url + "/", timeout=2)
        return True
    except urllib.error.HTTPError:
        return True          # an S3 error (AccessDenied) is an answer
    except OSError:
        return False


def collect(topo: Topology) -> list[dict]:
    rows = [{"process": "frontend", "az": "-", "address": topo.frontend.url,
             "up": _frontend_up(topo.frontend.url), "pid": None, "disk_bytes": None, "detail": ""}]
    for az in topo.azs:
        st = _get(topo, az.meta.url, "/status")
        rows.append({"process": az.meta.id, "az": az.name, "address": az.meta.url, "up": st is not None,
                     "pid": st and st["pid"], "disk_bytes": st and st["disk_bytes"],
                     "detail": st and f"{st['buckets']} buckets, {sum(p['live_keys'] for p in st['partitions'])} "
                                      f"keys in {len(st['partitions'])} partitions"})
        for n in az.nodes:
            st = _get(topo, n.url, "/status")
            rows.append({"process": f"node-{n.id}", "az": az.name, "address": n.url, "up": st is not None,
                         "pid": st and st["pid"], "disk_bytes": st and st["disk_bytes"],
                         "detail": st and f"{st['fragments']} fragments"})
    return rows


def _human(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def render(rows: list[dict]) -> str:
    head = ("PROCESS", "AZ", "ADDRESS", "STATE", "PID", "DISK", "DETAIL")
    table = [head] + [(r["process"], r["az"], r["address"], "up" if r["up"] else "DOWN", str(r["pid"] or "-"),
                       _human(r["disk_bytes"]), r["detail"] or "") for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table)
