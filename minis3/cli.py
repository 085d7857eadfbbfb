"""The `minis3` command. Thin: parses arguments and calls the packages."""
from __future__ import annotations

import argparse
import json
import sys


def _topology_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--topology", help="topology TOML file (default: the built-in local cluster)")
    p.add_argument("--data-dir", help="where every process keeps its data (default ./data)")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Internal process entry points parse their own arguments.
    if argv and argv[0] == "bench":        # its own, long option list
        from .bench.main import main as bench
        return bench(argv[1:])
    if argv and argv[0] in ("frontend", "storage", "meta", "scrubber"):
        if argv[0] == "frontend":
            from .frontend.app import main as run
        elif argv[0] == "storage":
            from .storage.server import main as run
        elif argv[0] == "scrubber":
            from .scrub.scrubber import main as run
        else:
            from .meta.server import main as run
        run(argv[1:])
        return 0

    p = argparse.ArgumentParser(prog="minis3", description="A runnable S3-compatible object store")
    sub = p.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up", help="start the local cluster in the foreground")
    _topology_args(u)
    u.add_argument("--frontend-per-az", action="store_true",
                   help="also run a frontend in each AZ (ports 9010, 9011, 9012 by default)")
    s = sub.add_parser("status", help="every process: AZ, up/down, disk use")
    _topology_args(s)
    s.add_argument("--json", action="store_true")
    a = sub.add_parser("az", help="run one AZ's processes (its supervisor)")
    a.add_argument("name")
    a.add_argument("--frontend-per-az", action="store_true")
    _topology_args(a)
    sub.add_parser("bench", help="benchmark any S3 endpoint and this machine (minis3 bench -h)")
    c = sub.add_parser("chaos", help="kill, freeze, thaw or revive an AZ or a node of the running cluster")
    c.add_argument("action", choices=["kill-az", "freeze-az", "thaw-az", "revive-az", "kill-node", "revive-node"])
    c.add_argument("target", help="an AZ name (az-b) or a node id (a1, meta-az-b)")
    _topology_args(c)
    sc = sub.add_parser("scrub", help="run one scrub pass now: audit, rebuild, move home, repair metadata, GC")
    sc.add_argument("--now", action="store_true", required=True, help="start a pass now and wait for it")
    sc.add_argument("--no-audit", action="store_true", help="skip re-verifying every fragment file first")
    sc.add_argument("--audit-rate", type=float, default=0.0, help="audit MB/s per node (0: as fast as it can)")
    sc.add_argument("--json", action="store_true")
    _topology_args(sc)
    pa = sub.add_parser("partitions", help="the index's partition map: ranges, keys, load, replicas, history")
    pa.add_argument("--json", action="store_true")
    _topology_args(pa)
    sub.add_parser("frontend", help="run the S3 frontend (internal)")
    sub.add_parser("scrubber", help="run the cluster scrubber (internal)")
    sub.add_parser("storage", help="run one storage node (internal)")
    sub.add_parser("meta", help="run one metadata process (internal)")
    args = p.parse_args(argv)

    from .cluster import topology
    topo = topology.load(args.topology, data_dir=args.data_dir)
    if getattr(args, "frontend_per_az", False):
        topo = topo.with_frontend_per_az()
    if args.cmd == "up":
        from .cluster.supervisor import up
        return up(topo)
    if args.cmd == "az":
        from .cluster.supervisor import run_az
        return run_az(topo, args.name)
    if args.cmd == "chaos":
        from .cluster.chaos import ACTIONS, ChaosError
        try:
            print(ACTIONS[args.action](topo, args.target))
        except ChaosError as exc:
            print(f"minis3 chaos: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.cmd == "scrub":
        from .scrub.cli import run as scrub_now
        return scrub_now(topo, audit=not args.no_audit, rate=args.audit_rate, as_json=args.json)
    if args.cmd == "partitions":
        from .cluster.partitions import collect as collect_partitions, render as render_partitions
        data = collect_partitions(topo)
        print(json.dumps(data, indent=1) if args.json else render_partitions(data))
        return 0 if data["map"] is not None else 1
    if args.cmd == "status":
        from .cluster.status import collect, render
        rows = collect(topo)
        print(json.dumps(rows, indent=1) if args.json else render(rows))
        return 0 if all(r["up"] for r in rows) else 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
