"""The `minis3` command. Thin: parses arguments and calls the packages."""
from __future__ import annotations

import argparse
import json
import os
import re
import sys

INSECURE_DEMO = "--insecure-demo"
INSECURE_DEMO_HELP = ("start even with secrets everyone knows (the demo values of minis3's files, or no cluster "
                      "secret given): a demo on your own machine only (also $MINIS3_INSECURE_DEMO=1)")


def _topology_args(p: argparse.ArgumentParser) -> None:
    from .config import add_arguments
    add_arguments(p)


#: The processes a cluster runs, each a ``minis3 NAME`` command that parses its own
#: arguments: the module whose ``main(argv)`` runs it.
PROCESSES = {"frontend": "frontend.app", "storage": "storage.server", "meta": "meta.server",
             "scrubber": "scrub.scrubber", "console": "console.app", "dns": "dns.process"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "bench":        # its own, long option list
        from .bench.main import main as bench
        return bench(argv[1:])
    if argv and argv[0] in PROCESSES:
        return _run_process(argv[0], argv[1:])
    p = parser()
    args = p.parse_args(argv)
    from . import config
    if getattr(args, "regions", None):
        if args.topology:
            p.error("--regions makes its own topology: give it --data-dir, not --topology")
        if args.tls:
            p.error("--tls is not built for several regions (one region: minis3 up --tls)")
        args.topology = _write_regions_topology(args.regions, args.data_dir)
    topo = config.from_args(args)
    if getattr(args, "frontend_per_az", False):
        topo = topo.with_frontend_per_az()
    command = "partitions move" if args.cmd == "partitions" and args.action == "move" else args.cmd
    if args.cmd == "user":
        command = f"user {args.action}"
    return COMMANDS[command](topo, args)


def _run_process(name: str, argv: list[str]) -> int:
    """``minis3 frontend|storage|meta|scrubber|console|dns ...``: one process of a cluster."""
    if name in ("frontend", "scrubber"):         # a deployment's entry points (docker-compose.yml)
        insecure = INSECURE_DEMO in argv
        argv = [a for a in argv if a != INSECURE_DEMO]
        if not _deployed_secrets_ok(name, argv, insecure):
            return 2
    import importlib
    importlib.import_module(f".{PROCESSES[name]}", __package__).main(argv)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="minis3", description="A runnable S3-compatible object store")
    sub = p.add_subparsers(dest="cmd", required=True)
    _add_cluster_commands(sub)
    _add_tool_commands(sub)
    _add_user_commands(sub)
    _add_process_commands(sub)
    return p


def _add_cluster_commands(sub) -> None:
    """Starting, watching and hurting a cluster: up, status, az, bench, chaos, scrub, health."""
    u = sub.add_parser("up", help="start the local cluster in the foreground")
    _topology_args(u)
    u.add_argument("--frontend-per-az", action="store_true",
                   help="also run a frontend in each AZ (ports 9010, 9011, 9012 by default)")
    u.add_argument("--regions", help="several regions, e.g. us-east-1,eu-west-1: one cluster each (the first is "
                                     "the global region, the others smaller) and a DNS server; the topology "
                                     "made is written to <data-dir>/regions.toml")
    s = sub.add_parser("status", help="every process: AZ, up/down, disk use")
    _topology_args(s)
    s.add_argument("--json", action="store_true")
    a = sub.add_parser("az", help="run one AZ's processes (its supervisor)")
    a.add_argument("name")
    a.add_argument("--frontend-per-az", action="store_true")
    a.add_argument(INSECURE_DEMO, action="store_true", help=INSECURE_DEMO_HELP)
    _topology_args(a)
    sub.add_parser("bench", help="benchmark any S3 endpoint and this machine (minis3 bench -h)")
    c = sub.add_parser("chaos", help="kill, freeze, partition, slow down or revive an AZ or a node of the running "
                                     "cluster; crash or fail a process at a named step (failpoints)",
                       epilog="failpoints: `minis3 chaos failpoints` lists every failpoint and what each process "
                              "has armed; `failpoints PROCESS` shows one process's, `failpoints PROCESS --arm SPEC` "
                              "arms (SPEC like storage.land.before_rename=crash@1;meta.wal.before_write=sleep(200ms); "
                              "actions crash, error, sleep(T), off; counts @N the Nth time only, *N the next N "
                              "times), `failpoints PROCESS --clear` disarms all; `crash-at FAILPOINT PROCESS` crashes "
                              "PROCESS (node-a1, meta-az-b, scrubber, frontend) the next time it reaches FAILPOINT. "
                              "$MINIS3_FAILPOINTS arms the same SPEC in every process started with it. "
                              "Disks: `disk-full NODE|AZ` (writes fail with ENOSPC), `disk-errors NODE RATE` (EIO on "
                              "that fraction of reads, writes, syncs), `slow-disk NODE 200ms` (syncs and reads "
                              "slower); `heal NODE|AZ|all` ends them (and an AZ's partition and latency). "
                              "clock-skew: `clock-skew PROCESS -5m` sets the clock offset of a frontend, metadata "
                              "process or the scrubber (+5m, -300s, 1500ms; 0 ends it; PROCESS `all` for every "
                              "one); `clock-skew` alone shows every process's. $MINIS3_CLOCK_SKEW "
                              "(frontend-az-a=-5m;meta-az-b=+5m) sets them at start.")
    c.add_argument("action", choices=["kill-az", "freeze-az", "thaw-az", "revive-az", "kill-node", "revive-node",
                                      "partition-az", "latency", "heal", "failpoints", "crash-at",
                                      "disk-full", "disk-errors", "slow-disk", "clock-skew"])
    c.add_argument("target", nargs="?", help="an AZ name (az-b; `all` for latency and heal), a process (a1, "
                                             "meta-az-b, scrubber, frontend), or for crash-at the failpoint; "
                                             "for clock-skew a process (frontend-az-a, meta-az-b, scrubber, all)")
    c.add_argument("amount", nargs="?", help="for latency: the delay added to each request crossing the AZ (5ms, 0); "
                                             "for crash-at: the process; for disk-errors: the rate (10%%, 0.1); "
                                             "for slow-disk: the delay of each sync and read (200ms); "
                                             "for clock-skew: the offset (+5m, -300s, 0)")
    # A negative offset (-5m) is a value here, not an option: argparse takes only
    # bare negative numbers as values unless told what else looks like one.
    c._negative_number_matcher = re.compile(r"^-\d+(\.\d*)?(ms|s|m|min)?$")
    c.add_argument("--arm", metavar="SPEC", help="failpoints PROCESS: arm these failpoints in it")
    c.add_argument("--clear", action="store_true", help="failpoints PROCESS: disarm all of its failpoints")
    _topology_args(c)
    sc = sub.add_parser("scrub", help="run one scrub pass now: audit, rebuild, move home, repair metadata, GC")
    sc.add_argument("--now", action="store_true", required=True, help="start a pass now and wait for it")
    sc.add_argument("--no-audit", action="store_true", help="skip re-verifying every fragment file first")
    sc.add_argument("--audit-rate", type=float, default=0.0, help="audit MB/s per node (0: as fast as it can)")
    sc.add_argument("--rebuild-rate", type=float, default=None, metavar="MBPS",
                    help="rebuild at most this many MB/s of fragments in this pass (0: no limit; "
                         "default: the topology's scrub.rebuild_mb_per_s)")
    sc.add_argument("--json", action="store_true")
    _topology_args(sc)


def _add_user_commands(sub) -> None:
    """Access keys of a running cluster: user add, list, remove (cluster/users.py)."""
    us = sub.add_parser("user", help="access keys of the running cluster: add, list, remove (docs/access.md)")
    us_sub = us.add_subparsers(dest="action", required=True)
    ua = us_sub.add_parser("add", help="a new access key for an account (and one of its users)")
    ua.add_argument("--account", required=True, help="the account's name (a new name makes a new account)")
    ua.add_argument("--user", help="the user it signs as (arn:aws:iam::ACCOUNT:user/NAME); default: the account's root")
    ua.add_argument("--json", action="store_true")
    _topology_args(ua)
    ul = us_sub.add_parser("list", help="every access key: the topology's and the ones added")
    ul.add_argument("--json", action="store_true")
    _topology_args(ul)
    ur = us_sub.add_parser("remove", help="remove an added access key")
    ur.add_argument("access_key")
    _topology_args(ur)


def _add_tool_commands(sub) -> None:
    """Looking inside: demo, inspect, trace, partitions, durability, bulk-load."""
    d = sub.add_parser("demo", help="a narrated tour of the running cluster: put, locate, kill an AZ, read, heal")
    d.add_argument("--yes", action="store_true", help="never prompt (the default)")
    d.add_argument("--pause", action="store_true", help="wait for Enter between steps")
    d.add_argument("--az", help="the AZ to kill (default: the second one, az-b)")
    d.add_argument("--bucket", default="minis3-demo", help="the demo's own bucket (default minis3-demo): the demo's keys in it are overwritten, then deleted")
    d.add_argument("--no-damage", action="store_true", help="do not flip a byte in a fragment file")
    d.add_argument("--keep", action="store_true", help="keep the demo's objects at the end")
    _topology_args(d)
    h = sub.add_parser("health", help="exit 0 if a service's processes answer (a container's health check)")
    h.add_argument("target", nargs="?", help="frontend, scrubber, all or an AZ name (default: $MINIS3_SERVICE)")
    _topology_args(h)
    ins = sub.add_parser("inspect", help="one object: its record, partition, fragments and their live health")
    ins.add_argument("url", help="s3://BUCKET/KEY")
    ins.add_argument("--json", action="store_true")
    ins.add_argument("--no-verify", action="store_true", help="do not read the fragments back (only ask the nodes)")
    ins.add_argument("--segment", type=int, help="with --bytes: which segment (default 0)")
    ins.add_argument("--bytes", action="store_true", help="the first bytes of each fragment of the segment")
    ins.add_argument("--count", type=int, default=16, help="how many bytes --bytes shows (default 16)")
    ins.add_argument("--version-id", help="this version of the key (default: the current one)")
    _topology_args(ins)
    tr = sub.add_parser("trace", help="a request's spans in every process it touched, as a waterfall")
    tr.add_argument("request_id", nargs="?", help="the request's x-amz-request-id")
    tr.add_argument("--last", action="store_true", help="the most recent request")
    tr.add_argument("--follow", action="store_true", help="every request as it finishes (Ctrl-C to stop)")
    tr.add_argument("--json", action="store_true", help="the spans as JSON (OpenTelemetry's fields)")
    _topology_args(tr)
    pa = sub.add_parser("partitions", help="the index's partition map: ranges, keys, load, replicas, history")
    pa.add_argument("--json", action="store_true")
    _topology_args(pa)
    pa_sub = pa.add_subparsers(dest="action")
    mv = pa_sub.add_parser("move", help="move a partition's replica to another metadata process of the same AZ")
    mv.add_argument("partition", help="partition id (see `minis3 partitions`)")
    mv.add_argument("--to", required=True, help="metadata process id, e.g. meta-az-a-2")
    mv.add_argument("--json", action="store_true")
    _topology_args(mv)
    du = sub.add_parser("durability", help="the annual chance of losing an object: a Markov model fed by the "
                                           "cluster's measured repair time (docs/course/02)")
    from .durability.cli import add_arguments as durability_args
    durability_args(du)
    _topology_args(du)
    bl = sub.add_parser("bulk-load", help="commit many small objects fast, through the metadata commit path "
                                          "(for measurement; see minis3/meta/bulkload.py)")
    bl.add_argument("bucket")
    bl.add_argument("--keys", type=int, default=1_000_000)
    bl.add_argument("--prefix", default="k/")
    bl.add_argument("--size", type=int, default=0, help="bytes per object (at most the inline threshold)")
    bl.add_argument("--batch", type=int, default=1000)
    bl.add_argument("--in-flight", type=int, default=4)
    _topology_args(bl)


def _add_process_commands(sub) -> None:
    """The processes (:data:`PROCESSES`), listed for ``minis3 -h``; each parses its own arguments."""
    sub.add_parser("frontend", help=f"run the S3 frontend (internal; a deployment's: {INSECURE_DEMO} as for az)")
    sub.add_parser("scrubber", help=f"run the cluster scrubber (internal; a deployment's: {INSECURE_DEMO} as for az)")
    sub.add_parser("console", help="run the web console (internal; `minis3 up` starts it)")
    sub.add_parser("storage", help="run one storage node (internal)")
    sub.add_parser("meta", help="run one metadata process (internal)")
    sub.add_parser("dns", help="run the authoritative DNS server of a topology with several regions (internal)")


# ----------------------------------------------------------------------------- the commands

def _up(topo, args) -> int:
    from .cluster.supervisor import up
    return up(topo)


def _az(topo, args) -> int:
    if args.topology is not None and not _secrets_ok("az", topo, args.insecure_demo):
        return 2
    from .cluster.supervisor import run_az
    return run_az(topo, args.name)


def _chaos(topo, args) -> int:
    from .cluster.chaos import ACTIONS, ChaosError, set_latency
    from .cluster import failpoints
    try:
        if args.action in ("failpoints", "crash-at", *failpoints.DISK_ACTIONS):
            print(failpoints.run(topo, args.action, args.target, args.amount, arm_spec=args.arm,
                                 clear_all=args.clear))
        elif args.action == "clock-skew":
            from .cluster import clock
            print(clock.run(topo, args.target, args.amount))
        elif args.target is None:
            raise ChaosError(f"{args.action} needs an AZ name or a node id")
        elif args.action == "heal":
            healed = failpoints.heal_disks(topo, args.target)
            is_az = args.target == "all" or args.target in {a.name for a in topo.azs}
            network = ACTIONS["heal"](topo, args.target) if is_az else ""
            lines = ([network] if network and not network.startswith("nothing") else []) + healed
            print("\n".join(lines) or f"nothing to heal on {args.target}")
        elif args.action == "latency":
            print(set_latency(topo, args.target, args.amount or ""))
        else:
            print(ACTIONS[args.action](topo, args.target))
    except ChaosError as exc:
        print(f"minis3 chaos: {exc}", file=sys.stderr)
        return 2
    return 0


def _scrub(topo, args) -> int:
    from .scrub.cli import run as scrub_now
    return scrub_now(topo, audit=not args.no_audit, rate=args.audit_rate, as_json=args.json,
                     rebuild_rate=args.rebuild_rate)


def _demo(topo, args) -> int:
    from .demo import main as demo
    return demo(topo, az=args.az, bucket=args.bucket, pause=args.pause and not args.yes,
                damage=not args.no_damage, keep=args.keep)


def _durability(topo, args) -> int:
    from .durability.cli import run as durability
    return durability(topo, args)


def _health(topo, args) -> int:
    from .cluster.healthcheck import run as health
    return health(topo, args.target)


def _bulk_load(topo, args) -> int:
    if args.size > topo.erasure.inline_threshold:
        print(f"minis3 bulk-load: --size is at most the inline threshold ({topo.erasure.inline_threshold})",
              file=sys.stderr)
        return 2
    from .meta.bulkload import main as bulk_load
    return bulk_load(topo, args.bucket, args.keys, args.prefix, args.size, args.batch, args.in_flight)


def _inspect(topo, args) -> int:
    from .cluster.inspect import main as inspect_main
    return inspect_main(topo, args.url, as_json=args.json, verify=not args.no_verify, segment=args.segment,
                        show_bytes=args.bytes, count=args.count, version_id=args.version_id)


def _trace(topo, args) -> int:
    from .cluster.trace import main as trace_main
    return trace_main(topo, args.request_id, args.last, args.follow, args.json)


def _partitions_move(topo, args) -> int:
    from .cluster.partitions import move, render_move
    ok, got = move(topo, args.partition, args.to)
    print(json.dumps(got, indent=1) if args.json else render_move(got) if ok else
          f"minis3 partitions move: {got.get('message', got)}")
    return 0 if ok else 1


def _partitions(topo, args) -> int:
    from .cluster.partitions import collect as collect_partitions, render as render_partitions
    data = collect_partitions(topo)
    print(json.dumps(data, indent=1) if args.json else render_partitions(data))
    return 0 if data["map"] is not None else 1


def _status(topo, args) -> int:
    from .cluster.status import collect, render
    rows = collect(topo)
    print(json.dumps(rows, indent=1) if args.json else render(rows))
    return 0 if all(r["up"] for r in rows) else 1


def _user(topo, args) -> int:
    from .cluster import users
    if args.action == "add":
        return users.add(topo, args.account, args.user, args.json)
    if args.action == "list":
        return users.list_users(topo, args.json)
    return users.remove(topo, args.access_key)


COMMANDS = {"up": _up, "az": _az, "chaos": _chaos, "scrub": _scrub, "demo": _demo, "durability": _durability,
            "health": _health, "bulk-load": _bulk_load, "inspect": _inspect, "trace": _trace,
            "partitions move": _partitions_move, "partitions": _partitions, "status": _status,
            "user add": _user, "user list": _user, "user remove": _user}


def _deployed_secrets_ok(cmd: str, argv: list[str], insecure: bool) -> bool:
    """For ``minis3 frontend`` and ``minis3 scrubber``, before their own
    argument parsing: :func:`_secrets_ok` with the topology their arguments name."""
    from . import config
    p = argparse.ArgumentParser(add_help=False)
    config.add_arguments(p)
    a, _ = p.parse_known_args(argv)
    if a.topology is None or os.environ.get(config.SUPERVISED_ENV):
        return True
    try:
        topo = config.from_args(a)
    except Exception:            # the process itself says what is wrong with its topology
        return True
    return _secrets_ok(cmd, topo, insecure)


def _secrets_ok(cmd: str, topo, insecure: bool) -> bool:
    """May a deployment's process start with these secrets? The processes a
    deployment starts from a topology file (docker-compose.yml, deploy/README.md)
    refuse secrets everyone knows, and a missing cluster secret, unless told
    ``--insecure-demo`` ($MINIS3_INSECURE_DEMO=1). Processes started by
    minis3's own supervisors (``minis3 up``, an AZ supervisor) are not judged:
    the local cluster's internal secret is never a constant, and an AZ's
    children were judged with their supervisor."""
    from . import config
    if os.environ.get(config.SUPERVISED_ENV):
        return True
    problems = config.deploy_problems(topo)
    if not problems:
        return True
    insecure = insecure or config.env_flag(config.INSECURE_DEMO_ENV)
    listed = "".join(f"\n  - {p}" for p in problems)
    if insecure:
        print(f"minis3 {cmd}: WARNING: starting with insecure secrets ({INSECURE_DEMO}):{listed}",
              file=sys.stderr, flush=True)
        return True
    print(f"minis3 {cmd}: refusing to start:{listed}\n"
          f"Give every process the same secrets of your own, made with `openssl rand -hex 32`: "
          f"{config.SECRET_ENV} and {config.SECRET_KEY_ENV} (with {config.ACCESS_KEY_ENV}) in "
          f"deploy/minis3.env for docker compose, or their *_FILE variants naming files (Docker secrets), or "
          f"cluster_secret and [[credentials]] in the topology (docs/security.md). "
          f"For a demo on your own machine only: {INSECURE_DEMO} (or {config.INSECURE_DEMO_ENV}=1).",
          file=sys.stderr, flush=True)
    return False


def _write_regions_topology(regions: str, data_dir: str | None) -> str:
    """``minis3 up --regions a,b``: the local topology of those regions, as a
    file every process of them reads (``<data-dir>/regions.toml``)."""
    from pathlib import Path
    from . import config
    names = tuple(r.strip() for r in regions.split(",") if r.strip())
    root = Path(data_dir or "./data").resolve()
    root.mkdir(parents=True, exist_ok=True)
    path = root / "regions.toml"
    path.write_text(config.regions_toml(9000, root, names, console=True))
    return str(path)


if __name__ == "__main__":
    sys.exit(main())
