"""Where the secrets come from: the cluster secret that signs internal requests,
the S3 credentials, their environment variables and ``_FILE`` variants, and
why a deployed process refuses secrets everyone knows (docs/security.md)."""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from ..fsutil import create_once
from .specs import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, TopologyError

if TYPE_CHECKING:
    from .specs import Topology

#: Where a cluster secret comes from when the topology gives none: this
#: variable, or the file that SECRET_ENV + "_FILE" names (Docker secrets,
#: systemd credentials), else the data directory's own.
SECRET_ENV = "MINIS3_CLUSTER_SECRET"
SECRET_FILE = "cluster-secret"
#: The S3 credentials when the topology has no [[credentials]] (each may also
#: come from the file its "_FILE" variable names), else DEFAULT_ACCESS_KEY's.
ACCESS_KEY_ENV = "MINIS3_ACCESS_KEY"
SECRET_KEY_ENV = "MINIS3_SECRET_KEY"
#: Secrets printed in minis3's own files and docs: anyone can sign internal
#: requests with them. A process started with one says so, loudly, and a
#: deployed one refuses to start (:func:`deploy_problems`).
DEMO_SECRETS = frozenset({"minis3-local-cluster-secret", "minis3-compose-demo-secret-change-me",
                          "minis3-standalone-demo-secret-change-me"})
#: S3 secret keys printed in minis3's README and files (`make run`'s default,
#: deploy/minis3.env.example's).
DEMO_S3_SECRET_KEYS = frozenset({DEFAULT_SECRET_KEY})
#: ``--insecure-demo`` as an environment variable (docker-compose's env file).
INSECURE_DEMO_ENV = "MINIS3_INSECURE_DEMO"
#: Set by minis3's own supervisors (``minis3 up``, an AZ supervisor) in their
#: children's environment: a child is not a deployment's entry point, its
#: starter judged the secrets already (or is the local cluster of `make run`).
SUPERVISED_ENV = "MINIS3_SUPERVISED"
_FROM_DATA_DIR = "this data directory's random cluster secret"


def from_env(name: str) -> tuple[str, str] | None:
    """``$NAME``, else the contents of the file ``$NAME_FILE`` names (Docker
    mounts its secrets at /run/secrets/NAME), without surrounding white space,
    and where it came from (in words); None when neither is set."""
    value, path = os.environ.get(name, "").strip(), os.environ.get(name + "_FILE", "").strip()
    if value and path:
        raise TopologyError(f"both ${name} and ${name}_FILE are set: set one of them")
    if value:
        return value, f"${name}"
    if not path:
        return None
    try:
        text = Path(path).read_text().strip()
    except OSError as exc:
        raise TopologyError(f"${name}_FILE names {path}, which cannot be read: {exc.strerror}") from None
    if not text:
        raise TopologyError(f"${name}_FILE names {path}, which is empty")
    return text, f"the file ${name}_FILE names ({path})"


def env_credentials() -> dict[str, str] | None:
    """``{access key: secret key}`` from ``$MINIS3_ACCESS_KEY`` and
    ``$MINIS3_SECRET_KEY`` (or their ``_FILE`` variants); None if neither is set."""
    ak, sk = from_env(ACCESS_KEY_ENV), from_env(SECRET_KEY_ENV)
    if ak is None and sk is None:
        return None
    if ak is None or sk is None:
        raise TopologyError(f"${ACCESS_KEY_ENV} and ${SECRET_KEY_ENV} go together: set both (or neither)")
    return {ak[0]: sk[0]}


def cluster_secret(doc: dict, root: Path) -> tuple[str, str]:
    """The secret that signs every internal request, and where it came from
    (in words): the topology's ``cluster_secret``; else
    ``$MINIS3_CLUSTER_SECRET``; else the data directory's own random one, made
    on first use (``DATA_DIR/cluster-secret``, mode 0600), so a cluster started
    without a topology (``make run``) never runs on a secret everyone knows.
    Every process and tool of a local cluster shares its data directory, so
    they all find the same one."""
    demo = "a DEMO cluster secret everyone knows: set your own for anything but a demo"
    if doc.get("cluster_secret"):
        source = "the topology's cluster_secret"
        if doc["cluster_secret"] in DEMO_SECRETS:
            source = demo
        return str(doc["cluster_secret"]), source
    env = from_env(SECRET_ENV)
    if env is not None:
        return env[0], demo if env[0] in DEMO_SECRETS else f"the cluster secret in {env[1]}"
    path = root / SECRET_FILE
    source = f"{_FROM_DATA_DIR} ({path}, mode 0600)"
    try:
        return path.read_text().strip(), source
    except FileNotFoundError:
        pass
    root.mkdir(parents=True, exist_ok=True)
    create_once(path, (secrets.token_hex(32) + "\n").encode())     # the first of racing processes wins
    return path.read_text().strip(), source


def deploy_problems(topo: "Topology") -> list[str]:
    """Why a deployed process (one started from a topology file, not by the
    local ``minis3 up``) should not start: a secret everyone knows, or no
    cluster secret at all (each container or machine would make its own and
    refuse the others' requests). Empty when its secrets are its own."""
    out = []
    if topo.cluster_secret in DEMO_SECRETS:
        out.append(f"the cluster secret is {topo.cluster_secret!r}, published in minis3's own files: anyone "
                   "who can reach an internal port can sign requests (read every object, write records)")
    elif topo.secret_source.startswith(_FROM_DATA_DIR):
        out.append(f"no cluster secret is given (the topology's cluster_secret, ${SECRET_ENV} or "
                   f"${SECRET_ENV}_FILE): this process made its own ({topo.data_dir / SECRET_FILE}), and "
                   "the processes of the other containers or machines would refuse its requests, and it theirs")
    for ak, sk in topo.credentials.items():
        if sk in DEMO_S3_SECRET_KEYS:
            default = (f" (the default when neither the topology's [[credentials]] nor ${ACCESS_KEY_ENV} and "
                       f"${SECRET_KEY_ENV} give any)" if (ak, sk) == (DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY) else "")
            out.append(f"the S3 secret key of access key {ak!r} is {sk!r}{default}, published in minis3's README: "
                       "anyone who can reach the frontend can read and write every bucket")
    return out


def warn_if_demo_secret(topo: "Topology", log) -> None:
    if topo.cluster_secret in DEMO_SECRETS:
        log.warning("cluster_secret is %r, a value published in minis3's own files: anyone who can reach "
                    "this process can sign internal requests (read every object, write records). Set a "
                    "random one (openssl rand -hex 32) in the topology or $%s for anything but a demo.",
                    topo.cluster_secret, SECRET_ENV)
