"""`minis3 partitions`: the index's partition map, live.

For each partition: its key range, how many keys and bytes of records it
holds, how many requests a second it is asked to serve (as the index manager
last measured), the metadata process holding its replica in each AZ, and the
history that made it (splits, moves, merges, with their reasons).
"""
from __future__ import annotations

import json
import time

from ..meta.pmap import PartitionMap, newest
from ..rpc.sync import call, signed_get
from .status import human_bytes
from ..config import Topology


def collect(topo: Topology) -> dict:
    maps, stats = [], {}
    for m in topo.all_metas:
        got = signed_get(topo.cluster_secret, m.url, "/index/map", timeout=3)
        if got:
            maps.append(PartitionMap.from_doc(got["map"]))
        st = signed_get(topo.cluster_secret, m.url, "/index/stats", timeout=3)
        if st:
            stats[m.id] = st
    pmap = newest(maps)
    manager = signed_get(topo.cluster_secret, topo.scrub.url, "/index", timeout=3) or {}
    if pmap is None:
        return {"map": None, "partitions": [], "manager": manager, "answered": list(stats)}
    rows = []
    for e in pmap.partitions:
        holders = set(dict(e.replicas).values())
        held = [p for mid, st in stats.items() if mid in holders for p in st["partitions"] if p["id"] == e.id]
        incoming = sorted(mid for mid, st in stats.items() if mid in holders
                          for p in st["partitions"] if p["id"] == e.id and p.get("state") == "incoming")
        rows.append({"id": e.id, "lo": e.lo, "hi": e.hi, "replicas": dict(e.replicas), "incoming": incoming,
                     "keys": max((p["keys"] for p in held), default=None),
                     "bytes": max((p["bytes"] for p in held), default=None),
                     "requests_per_s": (manager.get("rates") or {}).get(e.id),
                     "replicas_reporting": len(held),
                     "history": pmap.history_of(e.id)})
    return {"map": {"version": pmap.version, "events": list(pmap.events)}, "partitions": rows,
            "manager": manager, "answered": list(stats),
            "splits_here": {mid: st.get("splits", []) for mid, st in stats.items()},
            "moves_here": {mid: st.get("moves", []) for mid, st in stats.items() if st.get("moves")}}


def move(topo: Topology, partition: str, to: str, timeout: float = 3600) -> tuple[bool, dict]:
    """Ask the index manager (in the scrubber's process) to move a replica; wait for the move."""
    try:
        status, body = call(topo.cluster_secret, "POST", topo.scrub.url, "/index/move",
                            {"partition": partition, "to": to}, timeout=timeout)
    except OSError as exc:
        return False, {"message": f"the scrubber ({topo.scrub.url}) did not answer: {exc}"}
    try:
        return status < 300, json.loads(body)
    except ValueError:
        return False, {"message": f"the scrubber answered {status}"}


def render_move(ev: dict) -> str:
    c, f, u = ev["copied"], ev["fenced"], ev["caught_up"]
    return "\n".join([
        f"moved {ev['partition']}'s replica in {ev['az']} from {ev['from']} to {ev['to']} "
        f"(map version {ev['version']}, {ev['seconds']:.2f} s)",
        f"  1. copy     {c['versions']:,} versions from {ev['from']} in {c['seconds']:.2f} s, while it served",
        f"  2. switch   map version {ev['version']} adopted by {ev['adopted_by']} metadata processes",
        f"  3. fence    {ev['from']} refuses the range's writes; in-flight ones landed in {f['drained_s']:.3f} s",
        f"  4. catch up {u['versions']:,} newer versions pulled in {u['seconds']:.2f} s; {ev['to']} serves reads "
        f"({u['keys']:,} keys)",
        f"  5. release  {ev['from']} dropped {', '.join(ev['released']['dropped']) or 'nothing'}"])


def _range(lo: str, hi: str | None) -> str:
    show = lambda k: json.dumps(k)  # noqa: E731 - "\u0000u/" shows the multipart key spaces plainly
    return f"[{show(lo)}, {show(hi) if hi is not None else 'end'})"


def _event(ev: dict) -> str:
    if ev["kind"] == "split":
        return f"v{ev['version']} split of {ev['partition']} at {json.dumps(ev['key'])} ({ev['reason']})"
    if ev["kind"] == "move":
        return f"v{ev['version']} moved in {ev['az']} from {ev['from']} to {ev['to']} ({ev['reason']})"
    return f"v{ev['version']} merged from {' and '.join(ev['partitions'])} ({ev['reason']})"


def render(data: dict) -> str:
    if data["map"] is None:
        return "no metadata process answered: is the cluster running?"
    m = data["manager"]
    s = m.get("settings") or {}
    ago = f"{time.time() - m['last_check_unix']:.0f} s ago" if m.get("last_check_unix") else "not yet"
    head = [f"partition map version {data['map']['version']}: {len(data['partitions'])} partitions; "
            f"metadata processes answering: {', '.join(data['answered'])}",
            f"index manager: last look {ago}" + (f"; splits at {s['split_keys']:,} keys, "
                                                 f"{human_bytes(s['split_bytes'])}, or {s['split_ops_per_s']:,.0f} "
                                                 f"requests/s for {s['hot_seconds']:g} s" if s else
                                                 " (not answering)"), ""]
    table = [("ID", "RANGE", "KEYS", "SIZE", "REQ/S", "REPLICAS", "HISTORY")]
    for r in data["partitions"]:
        h = r["history"]
        hist = (_event(h[-1]) + (f" (+{len(h) - 1} earlier)" if len(h) > 1 else "")) if h else "initial"
        rate = r["requests_per_s"]
        table.append((r["id"], _range(r["lo"], r["hi"]), "-" if r["keys"] is None else f"{r['keys']:,}",
                      human_bytes(r["bytes"]), "-" if rate is None else f"{rate:,.0f}",
                      " ".join(f"{az}:{mid}" + (" (incoming)" if mid in r.get("incoming", ()) else "")
                               for az, mid in r["replicas"].items()), hist))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row[:-1], widths)) + "  " + row[-1] for row in table]
    return "\n".join(head + [ln.rstrip() for ln in lines])
