"""docker-compose.yml and deploy/Dockerfile, proven without a Docker engine (there is none here).

The tests:

- the compose file is valid by the Compose Specification's JSON schema, checked with a
  maintained validator (check-jsonschema's vendored ``compose-spec``);
- every compose service's exact command and environment runs as local processes, in the
  order ``docker compose up`` would start them, with secrets of the user's own in the env file,
  and the result is driven with boto3 — so a broken command, port, hostname, environment
  variable or healthcheck fails the test;
- with the published demo values of ``deploy/minis3.env.example`` (or no cluster secret) every
  service refuses to start, and with ``MINIS3_INSECURE_DEMO=1`` added they start.

How the second test stands in for Docker (:class:`ComposeRun`):

- **argv** = the Dockerfile's ENTRYPOINT + the service's ``command`` (or the image's CMD);
  ``minis3`` is the venv's entry point, where the image has its own installed copy;
- **environment** = the Dockerfile's ENV, overlaid with the service's ``env_file`` (read as
  compose reads it: ``KEY=VALUE`` lines, ``#`` comments, quotes), overlaid with its
  ``environment``. An env file is one the user makes before ``docker compose up``
  (``deploy/minis3.env``, never committed): each test hands the run its own, by the path the
  compose file names (``ComposeRun(files=...)``), and never writes into the repository;
- **volumes**: a named volume is a fresh directory under a temporary root (one per volume
  name, as Docker shares a named volume), an anonymous one (the image's ``VOLUME`` not
  covered by a service volume) a fresh directory per service, and a bind mount is the path
  in the repository. The processes do not see these at the container paths: instead, any
  environment value, argv item or WORKDIR that *is* a path under a volume's container path
  (``/data``, ``/etc/minis3/topology.toml``) is rewritten to the host path (an item such as
  ``--opt=/data`` would not be);
- **USER** is not emulated: the processes run as root (which the mount namespace needs), where
  the image runs them as its non-root user, owner of /data;
- **hostnames**: each service gets a loopback address of its own (127.X.i.1, X picked at
  random in 200-250 so a crashed earlier run cannot collide), and each process runs in a
  private mount namespace where /etc/hosts maps every service name to its address, as
  Docker's network resolves service names inside a container. The test itself (outside
  the namespace) reaches the frontend at its address and published port, as a host client
  reaches ``localhost:9000``;
- **healthchecks**: the Dockerfile's HEALTHCHECK (or the service's), run the same way; a
  service is started once every dependency (``depends_on: condition: service_healthy``) passes
  its check. Checks are polled more often than Docker's interval, to keep the test short, and
  given up on when Docker would have declared the service unhealthy (start period + retries
  × interval);
- ``docker compose kill SERVICE`` is SIGKILL to the service's process group (its whole
  process tree: an AZ supervisor and its children), ``docker compose start`` the same
  command again on the same volumes, ``docker compose exec`` a command in the service's
  environment and namespace.
"""
from __future__ import annotations

import json
import os
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import tomllib

import boto3
import pytest
import yaml
from botocore.config import Config

from minis3 import config

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "deploy" / "Dockerfile"
ENV_FILE = "deploy/minis3.env"                  # what docker-compose.yml's services read (env_file)
ENV_EXAMPLE = REPO / "deploy" / "minis3.env.example"
BIN = Path(sys.executable).parent          # the venv: its `minis3` and `check-jsonschema`


# ----------------------------------------------------------------------------- test a
def _check_compose_spec(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
                          capture_output=True, text=True, timeout=120)


def test_compose_file_follows_the_compose_specification(tmp_path):
    r = _check_compose_spec(COMPOSE_FILE)
    assert r.returncode == 0, r.stdout + r.stderr
    # The validator really validates: the same file with one key misspelt fails.
    broken = tmp_path / "docker-compose.yml"
    text = COMPOSE_FILE.read_text()
    assert "depends_on:" in text
    broken.write_text(text.replace("depends_on:", "depend_on:"))
    r = _check_compose_spec(broken)
    assert r.returncode != 0 and "depend_on" in r.stdout + r.stderr, r.stdout + r.stderr


# ----------------------------------------------------------------------------- the image
def _duration(text: str) -> float:
    """A Docker duration ("5s", "1m30s", "500ms") in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"not a duration: {text!r}"
    return sum(float(n) * units[u] for n, u in parts)


def _exec_form(value: str) -> list[str]:
    """An instruction's argv: exec form (a JSON list) as is, shell form through /bin/sh -c."""
    try:
        argv = json.loads(value)
    except ValueError:
        return ["/bin/sh", "-c", value]
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv), value
    return argv


@dataclass
class HealthCheck:
    argv: list[str]
    interval: float = 30.0           # Docker's defaults
    timeout: float = 30.0
    start_period: float = 0.0
    retries: int = 3

    @property
    def grace(self) -> float:
        """How long Docker lets a starting container fail its check before calling it unhealthy."""
        return self.start_period + self.retries * self.interval


@dataclass
class Image:
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    volumes: list[str] = field(default_factory=list)
    workdir: str = "/"
    user: str = "root"
    healthcheck: HealthCheck | None = None


def parse_dockerfile(path: Path) -> Image:
    """What a container of the image runs: the final stage's ENTRYPOINT, CMD, ENV, VOLUME,
    WORKDIR, USER and HEALTHCHECK (parsed by dockerfile-parse)."""
    from dockerfile_parse import DockerfileParser
    df = DockerfileParser(path=str(path))
    image = Image(env=dict(df.envs))
    for ins in df.structure:
        name, value = ins["instruction"], ins["value"]
        if name == "FROM":
            image = Image(env=dict(df.envs))          # a new stage starts afresh
        elif name == "ENTRYPOINT":
            image.entrypoint = _exec_form(value)
        elif name == "CMD":
            image.cmd = _exec_form(value)
        elif name == "VOLUME":
            image.volumes += json.loads(value) if value.lstrip().startswith("[") else value.split()
        elif name == "WORKDIR":
            image.workdir = value
        elif name == "USER":
            image.user = value
        elif name == "HEALTHCHECK":
            options, sep, command = value.partition("CMD ")
            if not sep:
                assert value.strip() == "NONE", value
                image.healthcheck = None
                continue
            hc = HealthCheck(argv=_exec_form(command.strip()))
            for opt, arg in re.findall(r"--([a-z-]+)=(\S+)", options):
                if opt == "retries":
                    hc.retries = int(arg)
                elif opt in ("interval", "timeout", "start-period"):
                    setattr(hc, opt.replace("-", "_"), _duration(arg))
            image.healthcheck = hc
    return image


# ----------------------------------------------------------------------------- the services
def _listify(value) -> list[str]:
    """A compose command / entrypoint: a list as is, a string split as a shell would."""
    return list(value) if isinstance(value, list) else shlex.split(value)


def _env_files(svc: dict) -> list[str]:
    """The paths of a service's ``env_file`` (a string, or a list of strings or {path: ...})."""
    value = svc.get("env_file") or []
    items = [value] if isinstance(value, str) else value
    out = []
    for item in items:
        if isinstance(item, dict):
            assert item.get("required", True), "optional env files are not emulated"
            item = item["path"]
        out.append(str(item))
    return out


def read_env_file(path: Path) -> dict[str, str]:
    """An env file as compose reads it: ``KEY=VALUE`` lines (``export`` allowed), blank lines
    and ``#`` comments skipped, a quoted value taken whole, an unquoted one up to `` #``."""
    out = {}
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").lstrip()
        key, sep, value = line.partition("=")
        assert sep, f"{path}:{n}: {raw!r} takes its value from the host's environment: not emulated"
        value = value.strip()
        if value[:1] in ("'", '"'):
            end = value.index(value[0], 1)
            value = value[1:end]
        else:
            value = value.split(" #", 1)[0].rstrip()
        out[key.strip()] = value
    return out


def _service_env(svc: dict) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    assert all(v is not None for v in env.values()), f"variables taken from the host are not emulated: {env}"
    return {str(k): str(v) for k, v in env.items()}


def _published_ports(svc: dict) -> list[tuple[int, int]]:
    """(host port, container port) of every published port."""
    out = []
    for p in svc.get("ports", []):
        if isinstance(p, dict):
            out.append((int(p["published"]), int(p["target"])))
        else:
            parts = str(p).split("/")[0].split(":")
            assert len(parts) >= 2, f"port {p!r} is not published on a fixed host port"
            out.append((int(parts[-2]), int(parts[-1])))
    return out


def _depends_on(svc: dict) -> dict[str, str]:
    """Dependency → condition."""
    deps = svc.get("depends_on") or {}
    if isinstance(deps, list):
        return {d: "service_started" for d in deps}
    return {d: (spec or {}).get("condition", "service_started") for d, spec in deps.items()}


def start_waves(services: dict[str, dict]) -> list[list[str]]:
    """The services in the order ``docker compose up`` starts them: each wave depends only
    on services of earlier waves (file order within a wave)."""
    waves, placed = [], set()
    while len(placed) < len(services):
        wave = [s for s in services if s not in placed and set(_depends_on(services[s])) <= placed]
        assert wave, f"depends_on has a cycle or names an unknown service: {services.keys() - placed}"
        waves.append(wave)
        placed.update(wave)
    return waves


class ComposeRun:
    """docker-compose.yml's services as local processes (see the module docstring).

    ``files``: the files the user makes before ``docker compose up`` (the env file), by the
    path the compose file names them with; any other path is the repository's."""

    def __init__(self, compose_file: Path, dockerfile: Path, files: dict[str, Path] | None = None):
        self.compose = yaml.safe_load(compose_file.read_text())
        self.base = compose_file.parent
        self.files = dict(files or {})
        self.services: dict[str, dict] = self.compose["services"]
        for name, svc in self.services.items():
            build = svc.get("build") or {}
            assert (compose_file.parent / build.get("context", ".") / build.get("dockerfile", "Dockerfile")
                    ).resolve() == dockerfile.resolve(), f"{name} is not built from {dockerfile}"
        self.image = parse_dockerfile(dockerfile)
        self.root = Path(tempfile.mkdtemp(prefix="minis3-compose-"))
        octet = random.randint(200, 250)
        self.address = {name: f"127.{octet}.{i}.1" for i, name in enumerate(self.services)}
        self.hosts_file = self.root / "hosts"
        self.hosts_file.write_text(Path("/etc/hosts").read_text().rstrip("\n") + "\n# minis3 compose test\n"
                                   + "".join(f"{a} {n}\n" for n, a in self.address.items()))
        self.mounts = {name: self._mounts(name, svc, compose_file.parent) for name, svc in self.services.items()}
        self.procs: dict[str, subprocess.Popen] = {}

    # -- what a container of a service sees ------------------------------------------
    def _volume_dir(self, key: str) -> Path:
        path = self.root / "volumes" / key
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _mounts(self, name: str, svc: dict, base: Path) -> dict[str, Path]:
        """Container path → host path for every volume of the service's container."""
        out: dict[str, Path] = {}
        for v in svc.get("volumes", []):
            if isinstance(v, dict):
                source, target, kind = v.get("source"), v["target"], v.get("type", "volume")
            else:
                parts = v.split(":")
                source, target = (parts[0], parts[1]) if len(parts) > 1 else (None, parts[0])
                kind = "bind" if source and source[0] in "./~" else "volume"
            if kind == "bind":
                out[target] = (base / source).resolve()
                assert out[target].exists(), f"{name}: bind mount source {source} does not exist"
            elif source:
                assert source in (self.compose.get("volumes") or {}), f"{name}: volume {source} is not declared"
                out[target] = self._volume_dir(source)
            else:
                out[target] = self._volume_dir(f"{name}-anonymous{target.replace('/', '-')}")
        for target in self.image.volumes:        # the image's VOLUMEs not covered: anonymous volumes
            out.setdefault(target, self._volume_dir(f"{name}-anonymous{target.replace('/', '-')}"))
        return out

    def host_path(self, name: str, value: str) -> str:
        """`value` with a container path under one of the service's volumes made the host path."""
        for target in sorted(self.mounts[name], key=len, reverse=True):
            if value == target or value.startswith(target.rstrip("/") + "/"):
                return str(self.mounts[name][target]) + value[len(target):]
        return value

    def _argv(self, name: str, argv: list[str]) -> list[str]:
        argv = [self.host_path(name, a) for a in argv]
        if argv and argv[0] == "minis3":
            argv[0] = str(BIN / "minis3")
        return argv

    def argv(self, name: str) -> list[str]:
        svc = self.services[name]
        entrypoint = _listify(svc["entrypoint"]) if "entrypoint" in svc else self.image.entrypoint
        command = _listify(svc["command"]) if "command" in svc else self.image.cmd
        return self._argv(name, entrypoint + command)

    def project_file(self, path: str) -> Path:
        """A path of the compose file: the user's file given for it, else the repository's."""
        got = self.files.get(path) or (self.base / path)
        assert got.exists(), f"{path} does not exist: docker compose would stop here"
        return got

    def env(self, name: str) -> dict[str, str]:
        env = {"PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", **self.image.env}
        for path in _env_files(self.services[name]):
            env.update(read_env_file(self.project_file(path)))
        env.update(_service_env(self.services[name]))
        return {k: self.host_path(name, v) for k, v in env.items()}

    def healthcheck(self, name: str) -> HealthCheck:
        hc = self.image.healthcheck
        test = (self.services[name].get("healthcheck") or {}).get("test")
        if test is not None:                      # the service's own check replaces the image's
            test = ["CMD-SHELL", test] if isinstance(test, str) else test
            assert test[0] in ("CMD", "CMD-SHELL"), f"{name}: healthcheck {test} never passes"
            argv = test[1:] if test[0] == "CMD" else ["/bin/sh", "-c", test[1]]
            timing = {k: getattr(hc, k) for k in ("interval", "timeout", "start_period", "retries")} if hc else {}
            hc = HealthCheck(argv, **timing)
        assert hc is not None, f"{name} has no healthcheck, so no service can depend on it being healthy"
        return hc

    def _in_container(self, argv: list[str]) -> list[str]:
        """Run `argv` where the service names resolve as in a container: a private mount
        namespace with our hosts file bind-mounted over /etc/hosts."""
        return [*UNSHARE, "--mount", "--propagation", "private", "sh", "-c",
                'mount --bind "$1" /etc/hosts && shift && exec "$@"', "sh", str(self.hosts_file), *argv]

    # -- docker compose up / kill / start / exec -------------------------------------
    def start(self, name: str) -> None:
        log = open(self.root / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen(
            self._in_container(self.argv(name)), env=self.env(name),
            cwd=self.host_path(name, self.image.workdir), stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)    # its own process group, as a container
        log.close()

    def exec(self, name: str, argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(self._in_container(self._argv(name, argv)), env=self.env(name),
                              cwd=self.host_path(name, self.image.workdir), capture_output=True, text=True,
                              timeout=timeout)

    def is_healthy(self, name: str) -> tuple[bool, str]:
        hc = self.healthcheck(name)
        try:
            r = self.exec(name, hc.argv, timeout=hc.timeout)
        except subprocess.TimeoutExpired:
            return False, f"healthcheck timed out after {hc.timeout} s"
        return r.returncode == 0, r.stdout + r.stderr

    def wait_healthy(self, name: str) -> None:
        hc = self.healthcheck(name)
        deadline = time.monotonic() + hc.grace
        while True:
            if self.procs[name].poll() is not None:
                pytest.fail(f"{name} exited ({self.procs[name].returncode})\n{self.logs()}")
            ok, out = self.is_healthy(name)
            if ok:
                return
            if time.monotonic() > deadline:
                pytest.fail(f"{name} is unhealthy (as Docker would call it after {hc.grace:.0f} s): {out}\n"
                            f"{self.logs()}")
            time.sleep(0.5)

    def up(self) -> None:
        """Start every service once its dependencies meet their conditions."""
        healthy: set[str] = set()
        for wave in start_waves(self.services):
            for name in wave:
                for dep, cond in _depends_on(self.services[name]).items():
                    assert cond in ("service_started", "service_healthy"), f"{name}: {cond} not emulated"
                    if cond == "service_healthy" and dep not in healthy:
                        self.wait_healthy(dep)
                        healthy.add(dep)
                self.start(name)
        for name in self.services:             # everything healthy before the test drives it
            if name not in healthy:
                self.wait_healthy(name)

    def kill(self, name: str) -> None:
        """`docker compose kill`: SIGKILL to the service's whole process group."""
        p = self.procs.pop(name)
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        deadline = time.monotonic() + 10
        while _group_members(p.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _group_members(p.pid), f"{name}'s processes outlived SIGKILL: {_group_members(p.pid)}"

    def down(self) -> None:
        """Stop everything (SIGTERM, then SIGKILL to each process group) and remove the volumes."""
        for p in self.procs.values():
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 20
        for p in self.procs.values():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for p in self.procs.values():
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
        self.procs.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    def logs(self) -> str:
        """The tail of every log: each service's output and, in the volumes, each AZ child's."""
        out = []
        for path in sorted(self.root.glob("*.log")) + sorted(self.root.glob("volumes/*/logs/*.log")):
            out.append(f"--- {path.relative_to(self.root)}\n" + "\n".join(path.read_text(errors="replace")
                                                                          .splitlines()[-15:]))
        return "\n".join(out)


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rpartition(")")[2].split()
            if fields[0] != "Z" and int(fields[2]) == pgid:
                out.append(int(entry))
    return out


#: Root makes a mount namespace directly; anyone else in a user namespace of
#: their own, where they are root (unprivileged user namespaces, on by default
#: in Debian and most distributions).
UNSHARE = ["unshare"] if os.geteuid() == 0 else ["unshare", "--user", "--map-root-user"]


def _holds(root: Path, needle: bytes) -> bool:
    """Whether any file under ``root`` holds ``needle``."""
    return any(p.is_file() and needle in p.read_bytes() for p in root.rglob("*"))


def _fragment_files(volume: Path) -> list[Path]:
    return list(volume.glob("*/node-*/fragments/*/*"))


def write_env_file(path: Path, values: dict[str, str], comment: str = "") -> Path:
    path.write_text((f"# {comment}\n" if comment else "") + "".join(f"{k}={v}\n" for k, v in values.items()))
    return path


def own_secrets() -> dict[str, str]:
    """deploy/minis3.env as README.md makes it: `openssl rand -hex 32` for each secret."""
    return {"MINIS3_CLUSTER_SECRET": os.urandom(32).hex(), "MINIS3_ACCESS_KEY": "minis3admin",
            "MINIS3_SECRET_KEY": os.urandom(32).hex()}


@pytest.fixture
def compose_with(tmp_path):
    """``compose_with(env_file)``: a ComposeRun whose deploy/minis3.env is that file (stopped
    and removed at the end)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("needs Linux: a mount namespace per process and all of 127.0.0.0/8 on loopback")
    missing = [t for t in ("unshare", "mount") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs util-linux's {', '.join(missing)}")
    if subprocess.run([*UNSHARE, "--mount", "true"], capture_output=True).returncode != 0:
        pytest.skip("needs root, or unprivileged user namespaces: each service runs in its own mount "
                    "namespace (unshare --mount) with /etc/hosts bind-mounted to resolve the service names")
    runs = []

    def make(env_file: Path) -> ComposeRun:
        runs.append(ComposeRun(COMPOSE_FILE, DOCKERFILE, files={ENV_FILE: env_file}))
        return runs[-1]
    try:
        yield make
    finally:
        for run in runs:
            run.down()


@pytest.fixture
def compose(compose_with, tmp_path):
    """The compose cluster with secrets of its own in deploy/minis3.env."""
    return compose_with(write_env_file(tmp_path / "minis3.env", own_secrets()))


def s3_client(run: ComposeRun, access_key: str, secret_key: str):
    """A client on the Docker host, through the frontend's published port."""
    [(published, target)] = _published_ports(run.services["frontend"])
    assert published == target, "the frontend must be published on its own port (the topology's endpoint)"
    region = tomllib.loads((REPO / "deploy" / "topology.toml").read_text())["region"]
    return boto3.client("s3", endpoint_url=f"http://{run.address['frontend']}:{published}",
                        region_name=region, aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                        config=Config(retries={"max_attempts": 3, "mode": "standard"}, read_timeout=60))


# ----------------------------------------------------------------------------- test b
def test_compose_services_run_as_processes(compose):
    run = compose
    assert set(run.services) >= {"frontend", "az-a", "az-b", "az-c", "scrubber"}
    for name, svc in run.services.items():
        assert _service_env(svc).get("MINIS3_SERVICE") == name, f"{name} does not say which service it is"
        assert _env_files(svc) == [ENV_FILE], f"{name} does not read its secrets from {ENV_FILE}"
    # The committed files carry no usable secret: the env file the user made does.
    doc = tomllib.loads((REPO / "deploy" / "topology.toml").read_text())
    assert "cluster_secret" not in doc and "credentials" not in doc
    run.up()

    # A client on the Docker host reaches the frontend through its published port, with the
    # credentials of the env file.
    secrets = read_env_file(run.project_file(ENV_FILE))
    s3 = s3_client(run, secrets["MINIS3_ACCESS_KEY"], secrets["MINIS3_SECRET_KEY"])
    objects = {"small.txt": b"hello from the compose cluster\n",
               "medium.bin": os.urandom(300_000),
               "big.bin": os.urandom(3 * (1 << 20) + 12345)}      # four erasure-coded segments
    s3.create_bucket(Bucket="compose")
    for key, body in objects.items():
        s3.put_object(Bucket="compose", Key=key, Body=body)

    def read_back():
        for key, body in objects.items():
            assert s3.get_object(Bucket="compose", Key=key)["Body"].read() == body, key
        listed = s3.list_objects_v2(Bucket="compose")["Contents"]
        assert {o["Key"]: o["Size"] for o in listed} == {k: len(b) for k, b in objects.items()}
    read_back()

    # Each AZ keeps its data in its own volume; the frontend only its keys, in its own (never an
    # AZ's: a node's disk holds ciphertext only); the scrubber nothing.
    az_b_volume = run.mounts["az-b"]["/data"]
    assert _fragment_files(az_b_volume), "no fragments in az-b's volume"
    assert "frontend" in (run.compose.get("volumes") or {}), "the frontend's keys need a named volume"
    written = {p.relative_to(run.mounts["frontend"]["/data"]).as_posix()
               for p in run.mounts["frontend"]["/data"].rglob("*")}
    assert written == {"keys", "keys/master-key"}, written
    for az in ("az-a", "az-b", "az-c"):
        assert not (run.mounts[az]["/data"] / "keys").exists(), f"{az}'s volume holds keys"
        assert not _holds(run.mounts[az]["/data"], objects["medium.bin"][1000:1064]), \
            f"{az}'s volume holds an object's bytes in the clear"
    written = [p for d in run.mounts["scrubber"].values() if d.is_relative_to(run.root) for p in d.rglob("*")]
    assert not written, f"scrubber wrote {written} to a volume it has none of in docker-compose.yml"

    # docker compose kill az-b: the whole AZ at once. Reads and writes keep working.
    run.kill("az-b")
    assert not run.is_healthy("az-b")[0]
    read_back()
    objects["during-outage.bin"] = os.urandom(2 * (1 << 20) + 777)
    s3.put_object(Bucket="compose", Key="during-outage.bin", Body=objects["during-outage.bin"])
    read_back()
    before = len(_fragment_files(az_b_volume))

    # docker compose start az-b: the same command on the same volume.
    run.start("az-b")
    run.wait_healthy("az-b")
    read_back()

    # docker compose exec scrubber minis3 scrub --now: the outage's fragments go home to az-b.
    r = run.exec("scrubber", ["minis3", "scrub", "--now", "--json"], timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["pass"]["not_full"] == 0
    assert len(_fragment_files(az_b_volume)) > before
    read_back()


# ----------------------------------------------------------------------------- demo secrets
SERVICES_JUDGED = ("az-a", "frontend", "scrubber")     # each kind of entry point compose runs


def _exit(run: ComposeRun, name: str, timeout: float = 60) -> tuple[int, str]:
    p = run.procs.pop(name)
    try:
        code = p.wait(timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{name} did not exit: it started with secrets it should have refused\n{run.logs()}")
    return code, (run.root / f"{name}.log").read_text()


@pytest.mark.parametrize("case", ["the example as it is", "no cluster secret"])
def test_compose_services_refuse_demo_secrets(compose_with, tmp_path, case):
    """deploy/minis3.env copied from the example unchanged (the published values), or without a
    cluster secret (each container would make its own): every service exits at once, saying why
    and what to do, before it listens or starts a child."""
    if case == "the example as it is":
        env_file = tmp_path / "minis3.env"
        shutil.copy(ENV_EXAMPLE, env_file)
        values = read_env_file(env_file)
        assert values["MINIS3_CLUSTER_SECRET"] in config.DEMO_SECRETS
        assert values["MINIS3_SECRET_KEY"] in config.DEMO_S3_SECRET_KEYS
        assert "MINIS3_INSECURE_DEMO" not in values
        why = [values["MINIS3_CLUSTER_SECRET"], values["MINIS3_SECRET_KEY"]]
    else:
        secrets = own_secrets()
        del secrets["MINIS3_CLUSTER_SECRET"]
        env_file = write_env_file(tmp_path / "minis3.env", secrets)
        why = ["no cluster secret is given"]
    run = compose_with(env_file)
    for name in SERVICES_JUDGED:          # at once: each refuses on its own, whatever the others do
        run.start(name)
    for name in SERVICES_JUDGED:
        code, out = _exit(run, name)
        assert code != 0, out
        assert f"minis3 {run.argv(name)[1]}: refusing to start" in out, out
        assert all(w in out for w in why), out
        assert "openssl rand -hex 32" in out and "--insecure-demo" in out and "MINIS3_INSECURE_DEMO=1" in out
    # Refused before anything started: no child of the AZ supervisor, no fragment, no log of a child.
    assert not list(run.root.glob("volumes/*/logs/*.log")) and not list(run.root.glob("volumes/*/run/*.json"))


def test_compose_starts_with_demo_secrets_given_insecure_demo(compose_with, tmp_path):
    """The example's published values plus MINIS3_INSECURE_DEMO=1: the cluster starts (a demo
    on one's own machine), and says it runs on secrets everyone knows."""
    env_file = tmp_path / "minis3.env"
    env_file.write_text(ENV_EXAMPLE.read_text() + "MINIS3_INSECURE_DEMO=1\n")
    values = read_env_file(env_file)
    run = compose_with(env_file)
    run.up()
    s3 = s3_client(run, values["MINIS3_ACCESS_KEY"], values["MINIS3_SECRET_KEY"])
    s3.create_bucket(Bucket="demo")
    s3.put_object(Bucket="demo", Key="k", Body=b"published secrets, local demo")
    assert s3.get_object(Bucket="demo", Key="k")["Body"].read() == b"published secrets, local demo"
    for name in SERVICES_JUDGED:
        log = (run.root / f"{name}.log").read_text()
        assert "WARNING: starting with insecure secrets" in log and values["MINIS3_CLUSTER_SECRET"] in log, log
