"""`minis3 scrub --now`: ask the scrubber for a pass, watch it, say what it found and fixed."""
from __future__ import annotations

import asyncio
import json
import sys
import time

from ..cluster.topology import Topology
from ..rpc.http import client_session


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def summary(p: dict, recovery: dict | None = None) -> str:
    damaged = p.get("damaged") or {}
    rebuilt = p.get("rebuilt") or {}
    moved = rebuilt.get("handoff", 0)
    fixed = sum(v for k, v in rebuilt.items() if k != "handoff")
    lines = [f"scrub pass {p['id']}: {p['phase']} in {p.get('seconds') or 0:.2f} s"]
    if p.get("audit"):
        lines.append(f"  audited     {p['audit_fragments']} fragment files, {_mb(p['audit_bytes'])}, on "
                     f"{len(p['nodes_up'])} nodes: {p['corrupt_found']} corrupt (quarantined)")
    if p.get("nodes_down"):
        lines.append(f"  nodes down  {', '.join(p['nodes_down'])} (their fragments are unknown, not lost)")
    lines.append(f"  checked     {p['objects']} erasure-coded objects, {p['fragments']} fragments "
                 f"({p['keys_done']} index entries)")
    lines.append("  damaged     " + (", ".join(f"{v} {k}" for k, v in sorted(damaged.items())) or "none"))
    lines.append(f"  rebuilt     {fixed} fragments; {moved} moved home from handoff nodes "
                 f"({_mb(p['rebuilt_bytes'])} written)" + (f"; {p['repair_failures']} repairs failed"
                                                         if p.get("repair_failures") else ""))
    lines.append(f"  metadata    {p['meta_repairs']} stale replica versions repaired; "
                 f"{p['replicas_scanned']} replicas scanned")
    gc = (f"{p['orphans_removed']} orphan fragments removed ({_mb(p['orphan_bytes'])}); "
          f"{p.get('parts_cleaned', 0)} part records of finished uploads cleaned")
    if p.get("gc_skipped"):
        gc = f"skipped: {p['gc_skipped']}"
    lines.append(f"  garbage     {gc}")
    lines.append("  redundancy  " + ("full: every object has all its fragments, at home" if not p["not_full"]
                                     else f"{p['not_full']} objects not at full redundancy"))
    for key, problem in (p.get("unrepairable") or [])[:10]:
        lines.append(f"      {key}: {problem}")
    if recovery:
        lines.append(f"  recovery    full redundancy {recovery['seconds']:.2f} s after "
                     f"{', '.join(recovery['nodes'])} came back")
    return "\n".join(lines)


async def _run(topo: Topology, audit: bool, rate: float, as_json: bool, timeout: float) -> int:
    import aiohttp
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    url = topo.scrub.url
    deadline = time.monotonic() + timeout
    async with client_session(topo.cluster_secret, timeout_s=30) as s:
        try:
            async with s.post(f"{url}/pass", params={"audit": int(audit), "audit_rate": rate}) as r:
                if r.status != 200:
                    print(f"minis3 scrub: the scrubber answered {r.status}: {(await r.text())[:200]}", file=sys.stderr)
                    return 2
                started = await r.json()
            want, instance = started["pass"], started["started_unix"]
            console = Console(stderr=True)
            progress = Progress(TextColumn("[bold]scrub pass {task.fields[id]}[/] {task.description}"), BarColumn(),
                                TextColumn("{task.completed}/{task.total} keys"), TimeElapsedColumn(),
                                transient=True, disable=as_json or not console.is_terminal, console=console)
            with progress:
                task = progress.add_task("starting", total=None, id=want)
                while True:
                    async with s.get(f"{url}/status") as r:
                        st = await r.json()
                    if st.get("started_unix") != instance:
                        print("minis3 scrub: the scrubber restarted during the pass; run it again", file=sys.stderr)
                        return 2
                    last = st.get("last_pass")
                    if last and last["id"] >= want:
                        break
                    if time.monotonic() > deadline:
                        print(f"minis3 scrub: no result after {timeout:.0f} s", file=sys.stderr)
                        return 2
                    cur = st.get("running")
                    if cur and cur["id"] == want:
                        progress.update(task, description=cur["phase"], completed=cur["keys_done"],
                                        total=max(cur["keys_total"], cur["keys_done"]) or None)
                    await asyncio.sleep(0.2)
        except (aiohttp.ClientError, OSError) as exc:
            print(f"minis3 scrub: the scrubber at {url} does not answer ({exc.__class__.__name__}); "
                  "is the cluster up?", file=sys.stderr)
            return 2
    if as_json:
        print(json.dumps({"pass": last, "last_recovery": st.get("last_recovery")}, indent=1))
    else:
        print(summary(last, st.get("last_recovery")))
    return 0 if last["phase"] == "done" and not last["not_full"] else 1


def run(topo: Topology, *, audit: bool = True, rate: float = 0.0, as_json: bool = False,
        timeout: float = 7200.0) -> int:
    return asyncio.run(_run(topo, audit, rate, as_json, timeout))
