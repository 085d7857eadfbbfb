"""`minis3 scrub --now`: ask the scrubber for a pass, watch it, say what it found and fixed."""
from __future__ import annotations

import asyncio
import json
import sys
import time

from ..config import Topology
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
    gone = set(p.get("nodes_gone") or [])
    if set(p.get("nodes_down") or []) - gone:
        lines.append(f"  nodes down  {', '.join(sorted(set(p['nodes_down']) - gone))} "
                     "(their fragments are unknown, not lost)")
    if p.get("nodes_full"):
        lines.append(f"  nodes full  {', '.join(p['nodes_full'])} (read from; nothing rebuilt or moved home "
                     "there until its disk has room)")
    if gone:
        lines.append(f"  nodes gone  {', '.join(sorted(gone))} (down longer than scrub.down_after_s: "
                     "their fragments are lost and rebuilt on other nodes)")
    lines.append(f"  checked     {p['objects']} erasure-coded objects, {p['fragments']} fragments "
                 f"({p['keys_done']} index entries)")
    lines.append("  damaged     " + (", ".join(f"{v} {k}" for k, v in sorted(damaged.items())) or "none"))
    lines.append(f"  rebuilt     {fixed} fragments; {moved} moved home from handoff nodes "
                 f"({_mb(p['rebuilt_bytes'])} written, {_mb(p.get('rebuild_read_bytes', 0))} read)"
                 + (f"; {p['repair_failures']} repairs failed" if p.get("repair_failures") else ""))
    if p.get("rebuilt_bytes") and p.get("rebuild_seconds"):
        limit = p.get("rebuild_rate_mb_per_s") or 0
        lines.append(f"  rebuild     {p['rebuilt_bytes'] / 1e6 / p['rebuild_seconds']:.0f} MB/s written over "
                     f"{p['rebuild_seconds']:.2f} s of repairs (limit: "
                     + (f"{limit:g} MB/s)" if limit else "none)"))
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


class ScrubError(Exception):
    """The pass could not be asked for or watched (the message says why)."""


async def request_pass(topo: Topology, *, audit: bool = True, rate: float = 0.0, timeout: float = 7200.0,
                       progress: bool = True, rebuild_rate: float | None = None) -> tuple[dict, dict | None]:
    """Ask the scrubber for a pass that starts after now and wait for it to
    finish; return its report and the scrubber's last recovery (see
    :func:`summary`). With ``progress``, a progress bar on a terminal's stderr.
    ``rebuild_rate``: MB/s of fragments the pass may rebuild (0: no limit;
    None: the topology's ``scrub.rebuild_mb_per_s``)."""
    import aiohttp
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    url = topo.scrub.url
    deadline = time.monotonic() + timeout
    async with client_session(topo.cluster_secret, timeout_s=30) as s:
        try:
            params = {"audit": int(audit), "audit_rate": rate}
            if rebuild_rate is not None:
                params["rebuild_rate"] = rebuild_rate
            async with s.post(f"{url}/pass", params=params) as r:
                if r.status != 200:
                    raise ScrubError(f"the scrubber answered {r.status}: {(await r.text())[:200]}")
                started = await r.json()
            want, instance = started["pass"], started["started_unix"]
            console = Console(stderr=True)
            bar = Progress(TextColumn("[bold]scrub pass {task.fields[id]}[/] {task.description}"), BarColumn(),
                           TextColumn("{task.completed}/{task.total} keys"), TimeElapsedColumn(),
                           transient=True, disable=not progress or not console.is_terminal, console=console)
            with bar:
                task = bar.add_task("starting", total=None, id=want)
                while True:
                    async with s.get(f"{url}/status") as r:
                        st = await r.json()
                    if st.get("started_unix") != instance:
                        raise ScrubError("the scrubber restarted during the pass; run it again")
                    last = st.get("last_pass")
                    if last and last["id"] >= want:
                        return last, st.get("last_recovery")
                    if time.monotonic() > deadline:
                        raise ScrubError(f"no result after {timeout:.0f} s")
                    cur = st.get("running")
                    if cur and cur["id"] == want:
                        bar.update(task, description=cur["phase"], completed=cur["keys_done"],
                                   total=max(cur["keys_total"], cur["keys_done"]) or None)
                    await asyncio.sleep(0.2)
        except (aiohttp.ClientError, OSError) as exc:
            raise ScrubError(f"the scrubber at {url} does not answer ({exc.__class__.__name__}); "
                             "is the cluster up?") from exc


async def _run(topo: Topology, audit: bool, rate: float, as_json: bool, timeout: float,
               rebuild_rate: float | None) -> int:
    try:
        last, recovery = await request_pass(topo, audit=audit, rate=rate, timeout=timeout, progress=not as_json,
                                            rebuild_rate=rebuild_rate)
    except ScrubError as exc:
        print(f"minis3 scrub: {exc}", file=sys.stderr)
        return 2
    if as_json:
        print(json.dumps({"pass": last, "last_recovery": recovery}, indent=1))
    else:
        print(summary(last, recovery))
    return 0 if last["phase"] == "done" and not last["not_full"] else 1


def run(topo: Topology, *, audit: bool = True, rate: float = 0.0, as_json: bool = False,
        timeout: float = 7200.0, rebuild_rate: float | None = None) -> int:
    return asyncio.run(_run(topo, audit, rate, as_json, timeout, rebuild_rate))
