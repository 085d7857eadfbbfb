"""Process management: the AZ supervisor and ``minis3 up``.

``minis3 up`` starts one *AZ supervisor* per AZ, each the leader of its own
process group, plus the frontend and the scrubber. An AZ supervisor (``minis3 az NAME``) starts
that AZ's storage nodes and metadata process as its children, so they share
its process group: ``kill -9 -PGID`` takes a whole AZ down at once, the way a
chaos test (or a burning building) does.

Each supervisor writes ``<data_dir>/run/<az>.json`` (its pid, pgid and its
children's pids, rewritten whenever a child exits or is restarted) so tools
and tests can find processes. A child that exits is restarted with back-off
(0.2 s doubling to 10 s), unless ``<data_dir>/run/hold/<child>`` exists: that
is how ``minis3 chaos kill-node`` keeps a node down until ``revive-node``.
``minis3 up`` itself starts the frontend, the scrubber and the console again
when one exits (after a second). Logs go to ``<data_dir>/logs/<process>.log``.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..ec.codec import MALLOC_ENV
from ..config import tls
from ..config import SUPERVISED_ENV, Topology

CHILD_ENV = {
    # glibc malloc tuned so 1 MiB codec buffers stay hot in the heap
    # (see minis3.ec.codec.tune_malloc for the measurements).
    **MALLOC_ENV,
    "PYTHONUNBUFFERED": "1",
    # Not a deployment's entry point: its starter judged the secrets (cli._secrets_ok).
    SUPERVISED_ENV: "1",
}


def _cli_args(topo: Topology) -> list[str]:
    if topo.world is not None:               # one region of several: the file, their root, which one
        return ["--topology", str(topo.world.source), "--data-dir", str(topo.world.data_dir),
                "--region", topo.region]
    args = ["--data-dir", str(topo.data_dir)]
    if topo.source:
        args = ["--topology", topo.source] + args
    if topo.frontend.tls and topo.console.tls:       # `minis3 up --tls`
        args.append("--tls")
    return args


def _spawn(argv: list[str], log_path: Path, *, new_group: bool) -> subprocess.Popen:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")
    env = dict(os.environ, **CHILD_ENV)
    return subprocess.Popen([sys.executable, "-m", "minis3", *argv], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=env, start_new_session=new_group)


def run_dir(topo: Topology) -> Path:
    return topo.data_dir / "run"


def log_dir(topo: Topology) -> Path:
    return topo.data_dir / "logs"


# ----------------------------------------------------------------------------- one AZ
def hold_path(topo: Topology, child: str) -> Path:
    """While this file exists the AZ supervisor does not restart `child`
    (``minis3 chaos kill-node`` creates it, ``revive-node`` removes it)."""
    return run_dir(topo) / "hold" / child


def _write_state(topo: Topology, az_name: str, children: dict[str, subprocess.Popen | None]) -> None:
    state = {"az": az_name, "pid": os.getpid(), "pgid": os.getpgid(0),
             "children": {name: (p.pid if p is not None and p.poll() is None else None)
                          for name, p in children.items()}}
    run_dir(topo).mkdir(parents=True, exist_ok=True)
    tmp = run_dir(topo) / f".{az_name}.json"
    tmp.write_text(json.dumps(state, indent=1))
    os.replace(tmp, run_dir(topo) / f"{az_name}.json")


RESTART_BACKOFF = (0.2, 10.0)       # first delay, most delay (doubling) before restarting a child


class StopRequested:
    """Whether SIGTERM or SIGINT (Ctrl-C) has arrived: a supervisor's loop runs until
    then, then stops its children itself. A plain attribute, not a threading.Event: a
    signal handler can run inside another one (a second Ctrl-C, or SIGTERM with it), and
    Event.set takes a lock the interrupted handler already holds, which deadlocked."""

    def __init__(self) -> None:
        self.requested = False


def stop_on_signals() -> StopRequested:
    stopping = StopRequested()

    def handler(signum, frame) -> None:
        stopping.requested = True
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
    return stopping


def run_az(topo: Topology, az_name: str) -> int:
    """Start an AZ's metadata replica and storage nodes, restart any that
    exits (with back-off, unless held down), stop them all on SIGTERM."""
    az = next((a for a in topo.azs if a.name == az_name), None)
    if az is None:
        print(f"no AZ named {az_name} in the topology", file=sys.stderr)
        return 2
    args = _cli_args(topo)
    specs = {az.meta.id: ["meta", "--az", az.name, *args]}
    specs.update({m.id: ["meta", "--id", m.id, *args] for m in az.extra_metas})
    specs.update({f"node-{n.id}": ["storage", "--id", n.id, *args] for n in az.nodes})
    if topo.frontend.per_az:
        specs[f"frontend-{az.name}"] = ["frontend", "--az", az.name, *args]
    children: dict[str, subprocess.Popen | None] = {}
    for name in specs:
        children[name] = (None if hold_path(topo, name).exists()
                          else _spawn(specs[name], log_dir(topo) / f"{name}.log", new_group=False))
    _write_state(topo, az.name, children)
    backoff = {name: RESTART_BACKOFF[0] for name in specs}
    next_start: dict[str, float] = {}

    stopping = stop_on_signals()
    while not stopping.requested:
        time.sleep(0.1)
        changed = False
        now = time.monotonic()
        for name, p in children.items():
            if p is not None and p.poll() is not None:
                print(f"{name} exited with {p.returncode}", file=sys.stderr, flush=True)
                children[name], changed = None, True
                next_start[name] = now + backoff[name]
                backoff[name] = min(RESTART_BACKOFF[1], backoff[name] * 2)
            elif p is None and not hold_path(topo, name).exists() and now >= next_start.get(name, 0):
                print(f"starting {name}", file=sys.stderr, flush=True)
                children[name], changed = _spawn(specs[name], log_dir(topo) / f"{name}.log", new_group=False), True
            elif p is not None and now - next_start.get(name, now) > 30:
                backoff[name] = RESTART_BACKOFF[0]          # up for a while: forget its crashes
        if changed:
            _write_state(topo, az.name, children)
    live = [p for p in children.values() if p is not None]
    for p in live:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + 10
    for p in live:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
    (run_dir(topo) / f"{az.name}.json").unlink(missing_ok=True)
    return 0


def spawn_az(topo: Topology, az_name: str) -> subprocess.Popen:
    """Start an AZ supervisor as the leader of a new process group."""
    per_az = ["--frontend-per-az"] if topo.frontend.per_az else []
    return _spawn(["az", az_name, *per_az, *_cli_args(topo)], log_dir(topo) / f"{az_name}.log",
                  new_group=True)


def az_state(topo: Topology, az_name: str) -> dict | None:
    """A running AZ's run file ({az, pid, pgid, children: {name: pid|None}}), or None."""
    try:
        return json.loads((run_dir(topo) / f"{az_name}.json").read_text())
    except (OSError, ValueError):
        return None


def az_group(topo: Topology, az_name: str) -> int | None:
    """The process group of a running AZ, or None."""
    state = az_state(topo, az_name)
    return state.get("pgid") if state else None


# ----------------------------------------------------------------------------- the cluster
def _healthy(url: str, context=None) -> bool:
    """Any HTTP answer below 500 (``context``: the SSL context of an https url, tls.client_context)."""
    try:
        with urllib.request.urlopen(url, timeout=1, context=context) as r:
            return r.status < 500
    except urllib.error.HTTPError as e:
        return e.code < 500
    except OSError:
        return False


def _frontend_sees_all_nodes(url: str, context=None) -> bool:
    """The frontend's own view: every storage node believed up. (A frontend
    that started before its nodes listened marked them down; until its next
    probe it would place fragments on handoff nodes.)"""
    from prometheus_client.parser import text_string_to_metric_families
    try:
        with urllib.request.urlopen(url + "/_minis3/metrics?name[]=minis3_storage_node_up", timeout=1,
                                    context=context) as r:
            text = r.read().decode()
    except OSError:
        return False
    values = [s.value for fam in text_string_to_metric_families(text) for s in fam.samples]
    return bool(values) and all(v == 1 for v in values)


def _wait_for(pending: list[str], ok, deadline: float, what: str) -> None:
    """Poll ``ok(url)`` for each pending url until all pass, or raise TimeoutError."""
    while True:
        pending = [u for u in pending if not ok(u)]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: {', '.join(pending)}")
        time.sleep(0.05)


def wait_healthy(topo: Topology, timeout: float = 30) -> None:
    """Every process answers its health check, and every frontend sees every storage node up."""
    urls = [n.url + "/health" for n in topo.nodes] + [m.url + "/health" for m in topo.all_metas]
    urls += [f.url + "/" for f in topo.frontends] + [topo.scrub.url + "/health"]
    if topo.console.enabled:
        urls.append(topo.console.url + "/health")
    deadline = time.monotonic() + timeout
    # Asked each time: `minis3 up --tls` may make the CA after this began waiting.
    _wait_for(urls, lambda u: _healthy(u, tls.client_context(topo)), deadline, f"not healthy after {timeout}s")
    _wait_for([f.url for f in topo.frontends], lambda u: _frontend_sees_all_nodes(u, tls.client_context(topo)),
              deadline, f"frontends still see storage nodes down after {timeout}s")


class Cluster:
    """A running local cluster: AZ supervisors (one process group each), the
    frontend and the scrubber."""

    def __init__(self, topo: Topology):
        self.topo = topo
        self.azs: dict[str, subprocess.Popen] = {}
        self.frontend: subprocess.Popen | None = None
        self.scrubber: subprocess.Popen | None = None
        self.console: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> None:
        self.spawn()
        try:
            wait_healthy(self.topo, timeout)
        except BaseException:
            self.stop()
            raise

    def spawn(self) -> None:
        args = _cli_args(self.topo)
        for az in self.topo.azs:
            self.azs[az.name] = spawn_az(self.topo, az.name)
        self.frontend = _spawn(["frontend", *args], log_dir(self.topo) / "frontend.log", new_group=True)
        self.scrubber = _spawn(["scrubber", *args], log_dir(self.topo) / "scrubber.log", new_group=True)
        if self.topo.console.enabled:
            self.console = _spawn(["console", *args], log_dir(self.topo) / "console.log", new_group=True)

    def restart_exited(self) -> None:
        """What ``minis3 up`` does each moment: start the frontend, the console
        and the scrubber again if they exited (they keep no state a restart
        would lose: a crashed frontend's requests fail, and the fragments of
        the PUTs it had not committed are orphans for the scrubber's GC), and
        report an AZ supervisor that exited. (Each AZ supervisor restarts its
        own children, an AZ's frontend among them.)"""
        topo = self.topo
        for name in ("frontend", "console", "scrubber"):
            p = getattr(self, name)
            if p is not None and p.poll() is not None:
                print(f"warning: {topo.region} {name} exited ({p.returncode}); starting it again", flush=True)
                time.sleep(1)
                setattr(self, name, _spawn([name, *_cli_args(topo)], log_dir(topo) / f"{name}.log", new_group=True))
        for name, p in self.azs.items():
            if p.poll() is not None and not getattr(p, "_reported", False):
                p._reported = True
                print(f"warning: {topo.region} {name} exited ({p.returncode}); see {log_dir(topo)}", flush=True)

    def stop(self, timeout: float = 15) -> None:
        for az in self.topo.azs:                 # a frozen AZ cannot stop until thawed
            pgid = az_group(self.topo, az.name)
            if pgid is not None:
                try:
                    os.killpg(pgid, signal.SIGCONT)
                except (ProcessLookupError, PermissionError):
                    pass
        procs = [p for p in [self.frontend, self.scrubber, self.console, *self.azs.values()] if p is not None]
        for p in procs:
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + timeout
        for p in procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        # Whatever did not stop (including an AZ's children): its whole group.
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            p.wait()
        # An AZ revived by `minis3 chaos revive-az` is not our child: stop it by its run file.
        for az in self.topo.azs:
            pgid = az_group(self.topo, az.name)
            if pgid is not None and pgid not in [p.pid for p in procs]:
                for sig in (signal.SIGCONT, signal.SIGTERM):
                    try:
                        os.killpg(pgid, sig)
                    except (ProcessLookupError, PermissionError):
                        pass


class Regions:
    """Several regions' clusters and the DNS server (``minis3 up --regions``)."""

    def __init__(self, topo: Topology):
        self.world = topo.world
        self.clusters = [Cluster(r) for r in self.world.regions]
        self.dns: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> None:
        try:
            for c in self.clusters:              # every region starts at once, then each is waited for
                c.spawn()
            if self.world.dns is not None:
                self._spawn_dns()
            deadline = time.monotonic() + timeout
            for c in self.clusters:
                wait_healthy(c.topo, max(1.0, deadline - time.monotonic()))
            if self.dns is not None:
                _wait_for([self.world.dns.url + "/health"], _healthy, deadline, "the DNS server did not start")
        except BaseException:
            self.stop()
            raise

    def restart_exited(self) -> None:
        for c in self.clusters:
            c.restart_exited()
        if self.dns is not None and self.dns.poll() is not None:
            print(f"warning: dns exited ({self.dns.returncode}); starting it again", flush=True)
            time.sleep(1)
            self._spawn_dns()

    def _spawn_dns(self) -> None:
        self.dns = _spawn(["dns", "--topology", str(self.world.source), "--data-dir", str(self.world.data_dir)],
                          self.world.data_dir / "logs" / "dns.log", new_group=True)

    def stop(self, timeout: float = 15) -> None:
        if self.dns is not None and self.dns.poll() is None:
            self.dns.terminate()
        for c in self.clusters:
            c.stop(timeout)
        if self.dns is not None:
            try:
                self.dns.wait(5)
            except subprocess.TimeoutExpired:
                self.dns.kill()
                self.dns.wait()


def banner(topo: Topology) -> str:
    ak, sk = next(iter(topo.credentials.items()))
    ep = topo.frontend.url
    per_az = "".join(f"\n  {az.name} frontend  {topo.az_frontend(az.name).url}" for az in topo.azs
                     if topo.frontend.per_az)
    console = (f"  console     {topo.console.url}  (log in with the access key and secret key)\n"
               if topo.console.enabled else "")
    ca = tls.files(topo).ca if topo.frontend.tls else None
    https = (f"  TLS         HTTPS with this data directory's own CA: {ca}\n"
             f"              (AWS_CA_BUNDLE={ca}; other minis3 commands: --tls)\n" if ca else "")
    verify = f', verify="{ca}"' if ca else ""
    export_ca = f" AWS_CA_BUNDLE={ca}" if ca else ""
    return f"""
minis3 is running: {len(topo.nodes)} storage nodes in {len(topo.azs)} AZs, EC {topo.erasure.k}+{topo.erasure.m}
  endpoint    {ep}{per_az}
  access key  {ak}
  secret key  {sk}
  region      {topo.region}
{https}  data        {topo.data_dir}   (logs in {log_dir(topo)})
  internal    requests between processes are signed with {topo.secret_source}
  scrubber    {topo.scrub.url}  (a pass every {topo.scrub.interval_s:.0f} s; `minis3 scrub --now` runs one)
{console}
  boto3:   s3 = boto3.client("s3", endpoint_url="{ep}", aws_access_key_id="{ak}", aws_secret_access_key="{sk}", region_name="{topo.region}"{verify})
           s3.create_bucket(Bucket="demo"); s3.put_object(Bucket="demo", Key="hello.txt", Body=b"hi")
  aws CLI: export AWS_ACCESS_KEY_ID={ak} AWS_SECRET_ACCESS_KEY={sk} AWS_DEFAULT_REGION={topo.region}{export_ca}
           aws --endpoint-url {ep} s3 mb s3://demo && aws --endpoint-url {ep} s3 cp README.md s3://demo/

Ctrl-C stops every process.
"""


def regions_banner(topo: Topology) -> str:
    w = topo.world
    ak, sk = next(iter(topo.credentials.items()))
    lines = [f"\nminis3 is running {len(w.regions)} regions (the bucket registry lives in {w.global_region}):"]
    for r in w.regions:
        lines.append(f"  {r.region:<12} {r.frontend.url:<26} {len(r.nodes)} nodes in {len(r.azs)} AZs, "
                     f"EC {r.erasure.k}+{r.erasure.m}   data {r.data_dir}")
    if w.dns is not None:
        d = w.dns
        lines += [f"  DNS          {d.host}:{d.port} (udp), zone {d.domain}:",
                  f"               dig @{d.host} -p {d.port} s3.{w.regions[-1].region}.{d.domain}",
                  f"               dig @{d.host} -p {d.port} BUCKET.s3.{d.domain}   (the bucket's region decides)"]
    lines += [f"  access key {ak}, secret key {sk}; internal requests signed with {topo.secret_source}",
              "  See docs/regions.md; Ctrl-C stops every process.", ""]
    return "\n".join(lines)


def up(topo: Topology) -> int:
    cluster = Regions(topo) if topo.world is not None else Cluster(topo)
    stopping = stop_on_signals()
    print(f"starting minis3 ({', '.join(topo.region_names)}) ...", flush=True)
    if topo.frontend.tls or topo.console.tls:
        tls.ensure(topo)          # once, before the frontend and the console load it
    try:
        cluster.start()
    except TimeoutError as exc:
        print(f"minis3 failed to start: {exc}; see the logs under {topo.data_dir}", file=sys.stderr)
        return 1
    print(regions_banner(topo) if topo.world is not None else banner(topo), flush=True)
    try:
        while not stopping.requested:
            time.sleep(0.3)
            cluster.restart_exited()
    finally:
        print("stopping minis3 ...", flush=True)
        cluster.stop()
        print("stopped.", flush=True)
    return 0
