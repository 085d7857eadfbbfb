"""`minis3 status`: every process of the cluster, its AZ, up or down, disk use."""
from __future__ import annotations

import urllib.error
import urllib.request

from ..rpc.sync import signed_get
from ..procfs import proc_stat
from ..config import Topology


def _frontend_up(url: str, topo: Topology) -> bool:
    from ..config import tls
    try:
        urllib.request.urlopen(url + "/_minis3/health", timeout=2, context=tls.client_context(topo))
        return True
    except urllib.error.HTTPError:
        return True          # any answer is an answer (an older frontend: 403 AccessDenied)
    except OSError:
        return False


def run_pids(topo: Topology) -> dict[str, int | None]:
    """Child name → pid, from the AZ supervisors' run files."""
    from .supervisor import az_state
    pids: dict[str, int | None] = {}
    for az in topo.azs:
        pids.update((az_state(topo, az.name) or {}).get("children", {}))
    return pids


def _frozen(pid: int | None) -> bool:
    """Stopped by SIGSTOP (state T in /proc): alive, holding its sockets, answering nothing."""
    fields = proc_stat(pid) if pid else None
    return bool(fields) and fields[0] in (b"T", b"t")


def _state(st: dict | None, pid: int | None, cut: bool = False) -> str:
    if _frozen(pid):
        return "frozen"
    if cut:
        return "partitioned"
    return "up" if st is not None else "down"


def _network(cond: dict | None) -> str:
    """What `minis3 chaos` did to an AZ's network, and by which mechanism."""
    if not cond:
        return ""
    parts = []
    if cond.get("partitioned"):
        parts.append(f"PARTITIONED: {cond['partition_mechanism']} to/from {', '.join(cond['partitioned'])}")
    if cond.get("latency_ms"):
        parts.append(f"+{cond['latency_ms']:g} ms per request crossing the AZ: {cond['latency_mechanism']}")
    return "; ".join(parts)


def collect(topo: Topology) -> list[dict]:
    from ..core.hlc import physical_ms
    from .chaos import network_conditions
    conds = network_conditions(topo)
    pids = run_pids(topo)
    fe_up = _frontend_up(topo.frontend.url, topo)
    rows = [{"process": "frontend", "az": "-", "address": topo.frontend.url, "up": fe_up,
             "state": "up" if fe_up else "down", "pid": None, "disk_bytes": None, "detail": ""}]
    if topo.frontend.per_az:
        for az in topo.azs:
            spec, pid = topo.az_frontend(az.name), pids.get(f"frontend-{az.name}")
            up = az.name not in conds or not conds[az.name].get("partitioned")
            up = up and not _frozen(pid) and _frontend_up(spec.url, topo)
            rows.append({"process": f"frontend-{az.name}", "az": az.name, "address": spec.url, "up": up,
                         "state": _state({} if up else None, pid), "pid": pid, "disk_bytes": None, "detail": ""})
    metas = []
    for az in topo.azs:
        cut = bool(conds.get(az.name, {}).get("partitioned"))     # a probe would only hang
        for meta in az.all_metas:
            pid = pids.get(meta.id)
            st = None if _frozen(pid) or cut else signed_get(topo.cluster_secret, meta.url, "/status?ts=1")
            row = {"process": meta.id, "az": az.name, "address": meta.url, "up": st is not None,
                   "state": _state(st, pid, cut), "pid": (st and st["pid"]) or pid,
                   "disk_bytes": st and st["disk_bytes"], "replica": st and st.get("state"),
                   "max_ts": st and st.get("max_ts"), "workers": (st or {}).get("workers", []),
                   "detail": st and f"{st.get('state', '?')}; {st['buckets']} buckets, "
                                    f"{sum(p['live_keys'] for p in st['partitions'])} keys in "
                                    f"{len(st['partitions'])} partitions"
                                    + (f"; blob log {human_bytes(st['blob_log']['bytes'])}" if st.get("blob_log") else "")
                                    + disk_text(st)}
            rows.append(row)
            if meta is az.meta:
                metas.append(row)
        for n in az.nodes:
            pid = pids.get(f"node-{n.id}")
            st = None if _frozen(pid) or cut else signed_get(topo.cluster_secret, n.url, "/status")
            rows.append({"process": f"node-{n.id}", "az": az.name, "address": n.url, "up": st is not None,
                         "state": _state(st, pid, cut), "pid": (st and st["pid"]) or pid,
                         "disk_bytes": st and st["disk_bytes"],
                         "detail": st and f"{st['fragments']} fragments" + disk_text(st),
                         "workers": (st or {}).get("workers", [])})
    for r in rows:
        if r["az"] in conds:
            r["network"] = _network(conds[r["az"]])
    rows.append(_scrubber_row(topo))
    # Replica lag: how far behind the newest version any replica holds.
    newest = max((m["max_ts"] or 0 for m in metas), default=0)
    for m in metas:
        if m["max_ts"] is not None:          # an empty cluster: lag 0
            m["lag_ms"] = physical_ms(newest) - physical_ms(m["max_ts"])
            m["detail"] += f"; lag {m['lag_ms']} ms"
    return rows


def _scrubber_row(topo: Topology) -> dict:
    import time
    st = signed_get(topo.cluster_secret, topo.scrub.url, "/status")
    detail = ""
    if st:
        last, cur = st.get("last_pass"), st.get("running")
        if cur:
            detail = f"pass {cur['id']} running: {cur['phase']}; "
        if last:
            ago = time.time() - last["started_unix"] - (last.get("seconds") or 0)
            rebuilt = sum((last.get("rebuilt") or {}).values())
            detail += (f"last pass {last['id']} {ago:.0f} s ago, {last['seconds']:.1f} s: {last['objects']} objects, "
                       f"{sum((last.get('damaged') or {}).values())} damaged, {rebuilt} fragments written, "
                       f"{last['orphans_removed']} orphans removed, "
                       + ("full redundancy" if not last["not_full"] else f"{last['not_full']} not full"))
        else:
            detail += "no pass yet"
        if st.get("last_recovery"):
            detail += f"; last recovery {st['last_recovery']['seconds']:.1f} s"
        lc = (st.get("lifecycle") or {}).get("totals")
        if lc and any(lc.values()):
            detail += (f"; lifecycle so far: {lc['expired']} expired, {lc['noncurrent_expired']} noncurrent and "
                       f"{lc['markers_removed']} delete markers removed, {lc['uploads_aborted']} uploads aborted, "
                       f"{lc['transitioned']} transitioned")
    return {"process": "scrubber", "az": "-", "address": topo.scrub.url, "up": st is not None,
            "state": "up" if st else "down", "pid": st and st["pid"], "disk_bytes": None, "detail": detail,
            "scrub": st, "workers": (st or {}).get("workers", [])}


def disk_text(st: dict) -> str:
    """What a process's /status says of its disk, when anything is wrong:
    the faults injected (`minis3 chaos disk-*`), full (refusing writes), slow syncs."""
    out = ""
    if st.get("disk", "healthy") != "healthy":
        out += f"; DISK FAULT: {st['disk']}"
    if st.get("full"):
        out += "; disk FULL, refusing writes (fragments go to handoff nodes)"
    if (st.get("sync_ms") or 0) > 50:
        out += f"; landing a fragment takes {st['sync_ms']:.0f} ms lately"
    return out


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def workers_text(workers: list[dict]) -> str:
    """A process's background workers (rpc/worker.py) in a few words: each one's
    rounds, and FAILING with its error while its last round failed."""
    return ", ".join(f"{w['name']} {w['rounds']}" + (f" FAILING: {w['last_error']}" if w.get("last_error") else "")
                     + ("" if w.get("running", True) else " (stopped)") for w in workers) or "-"


def render(rows: list[dict]) -> str:
    head = ("PROCESS", "AZ", "ADDRESS", "STATE", "PID", "DISK", "WORKERS (rounds)", "DETAIL")
    table = [head] + [(r["process"], r["az"], r["address"], r["state"].upper() if r["state"] != "up" else "up",
                       str(r["pid"] or "-"), human_bytes(r["disk_bytes"]), workers_text(r.get("workers", [])),
                       r["detail"] or "") for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table]
    network = {r["az"]: r["network"] for r in rows if r.get("network")}
    lines += [f"network {az}: {what}" for az, what in sorted(network.items())]
    return "\n".join(lines)
