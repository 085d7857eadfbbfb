"""The topology file: which processes exist, where they listen, and how data is spread.

One TOML file describes a whole cluster. With no file at all, :func:`load`
parses :func:`default_doc` (with ``extra_metas=1``), the local cluster of
``make run``: a frontend on 127.0.0.1:9000, three AZs of two storage nodes
and two metadata processes each (the second empty at start, so that
``minis3 partitions move`` has somewhere to move a partition to), EC 4+2. On Linux
each AZ binds its own loopback address (az-a 127.0.1.1, az-b 127.0.2.1, az-c
127.0.3.1; see :func:`az_address`).

Example (every key is optional; these are the defaults)::

    data_dir = "./data"
    cluster_secret = "..."         # default: $MINIS3_CLUSTER_SECRET (or the file $MINIS3_CLUSTER_SECRET_FILE
                                   # names), else the data directory's own random one
                                   # (DATA_DIR/cluster-secret, made on first use)
    region = "us-east-1"
    tls = false                    # serve S3 and the console over HTTPS (`minis3 up --tls`): a CA
                                   # and a certificate made once in DATA_DIR/tls/ (cluster/tls.py)

    [erasure]
    backend = "isa_l_rs_vand"
    k = 4
    m = 2
    segment_size = 1048576
    inline_threshold = 65536

    [frontend]
    host = "127.0.0.1"
    port = 9000
    virtual_host_domains = ["localhost", "s3.localhost"]

    [scrub]                        # the scrubber process and background checks
    host = "127.0.0.1"
    port = 9300
    interval_s = 60                # between the cluster scrubber's passes
    audit_mb_per_s = 8             # each storage node re-verifies its fragments at this rate
    meta_keys_per_s = 2000         # a pass walks the object index at most this fast (0: no limit)
    gc_grace_s = 600               # an unreferenced fragment younger than this is never removed
    rebuild_mb_per_s = 25          # a pass rebuilds at most this many MB of fragments a second (0: no limit)
    down_after_s = 600             # a node unreachable this long is gone: its fragments are rebuilt elsewhere

    [storage_class]                # what an object is stored as when its PUT, copy or
    default = "STANDARD"           # multipart upload sends no x-amz-storage-class
    buckets = {}                   # per bucket: { scratch = "ONEZONE_IA", "logs.eu" = "REDUCED_REDUNDANCY" }

    [index]                        # the object index's partitions (docs/index.md)
    split_keys = 100000            # split a partition holding more keys than this,
    split_bytes = 67108864         # or more bytes of records,
    split_ops_per_s = 1500         # or serving more requests a second than this
    hot_seconds = 10               # for this long (0 ops/s: never split for load)
    write_ops_per_s = 3500         # a partition replica's budget (S3's per prefix): over it, 503 SlowDown
    read_ops_per_s = 5500
    max_inflight_writes = 2000     # writes waiting for one partition's WAL; beyond, SlowDown
    check_every_s = 2              # how often the index manager (in the scrubber process) looks

    [[credentials]]                # default: $MINIS3_ACCESS_KEY and $MINIS3_SECRET_KEY (or the files
                                   # their _FILE variables name), else these (`make run`'s):
    access_key = "minis3admin"
    secret_key = "minis3secret"
    account = "minis3admin"        # optional: keys with one account share its buckets

    [[az]]
    name = "az-a"
    meta = { host = "127.0.1.1", port = 9201 }
    nodes = [ { id = "a1", host = "127.0.1.1", port = 9101 },
              { id = "a2", host = "127.0.1.1", port = 9102 } ]

Hosts are names, so a topology can span machines. The processes a deployment
starts from a topology file (`minis3 az`, `minis3 frontend`, `minis3 scrubber`)
refuse secrets everyone knows unless given ``--insecure-demo``
(:func:`deploy_problems`; docs/security.md).

**Several regions.** A file may instead list ``[[region]]`` tables, each a
whole cluster as above (its own frontend, AZs, scrubber, erasure scheme),
sharing the top level's ``data_dir`` (each region keeps ``<data_dir>/<name>``),
``cluster_secret``, credentials, ``[index]`` and ``[storage_class]``, plus a ``[dns]`` table for
the authoritative DNS server (docs/regions.md)::

    [dns]
    host = "127.0.0.1"
    port = 9053
    domain = "minis3.test"        # s3.minis3.test, s3.REGION.minis3.test, BUCKET.s3.minis3.test
    global_region = "us-east-1"   # s3.<domain> goes there; it holds the bucket registry

    [[region]]
    name = "us-east-1"
    frontend = { host = "127.0.0.1", port = 9000 }
    [[region.az]]
    name = "az-a"
    ...

Every process of a region is started with ``--region NAME``
(``$MINIS3_REGION``); without it, a command acts on the global region.
"""
from __future__ import annotations

import os
import secrets
import sys
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_ACCESS_KEY = "minis3admin"
DEFAULT_SECRET_KEY = "minis3secret"


@dataclass(frozen=True)
class NodeSpec:
    """One process of an AZ (a storage node or a metadata process)."""
    id: str
    az: str
    host: str
    port: int
    data_dir: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


MetaSpec = NodeSpec      # a metadata process is described by the same fields


@dataclass(frozen=True)
class AZSpec:
    name: str
    nodes: tuple[NodeSpec, ...]
    meta: MetaSpec                          # the AZ's home metadata process (buckets, GC notes, partitions)
    # More metadata processes in the AZ: they start holding nothing, and the
    # index manager can move partitions' replicas to them (`minis3 partitions move`).
    extra_metas: tuple[MetaSpec, ...] = ()

    @property
    def all_metas(self) -> tuple[MetaSpec, ...]:
        return (self.meta,) + self.extra_metas


@dataclass(frozen=True)
class ErasureSpec:
    backend: str = "isa_l_rs_vand"
    k: int = 4
    m: int = 2
    segment_size: int = 1 << 20
    inline_threshold: int = 65536


@dataclass(frozen=True)
class StorageClassSpec:
    """The storage class of an object whose request names none: the bucket's
    own default if the topology gives one, else ``default`` (ec/storage_class.py
    says what each class means for placement)."""
    default: str = "STANDARD"
    buckets: dict[str, str] = field(default_factory=dict)

    def for_bucket(self, bucket: str) -> str:
        return self.buckets.get(bucket, self.default)


@dataclass(frozen=True)
class FrontendSpec:
    host: str = "127.0.0.1"
    port: int = 9000
    virtual_host_domains: tuple[str, ...] = ("localhost", "s3.localhost")
    # Also run one frontend in each AZ (started by its supervisor, so it dies
    # with its AZ), on the AZ's host at port + 10 + the AZ's position.
    per_az: bool = False
    # HTTPS with the data directory's own certificate (cluster/tls.py; `minis3 up --tls`).
    tls: bool = False

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"


@dataclass(frozen=True)
class ScrubSpec:
    """The scrubber process and the background checks (see docs/ARCHITECTURE.md, "Scrubbing")."""
    host: str = "127.0.0.1"
    port: int = 9300
    # Seconds between the cluster scrubber's passes (a node's return starts one at once).
    interval_s: float = 60.0
    # Each storage node re-reads and verifies its fragment files at this rate, MB/s (0: off).
    audit_mb_per_s: float = 8.0
    # A pass walks the object index (every AZ's replica, merged) at most this
    # many keys a second, so the walk takes a bounded share of the metadata
    # processes (0: as fast as it can). At a million keys a pass takes ~8 min.
    meta_keys_per_s: float = 2000.0
    # An unreferenced fragment is removed only when older than this. Frontends
    # never commit a fragment that landed more than grace/4 ago, and replicas
    # refuse a new version stamped more than grace/4 ago, so no commit can
    # land after a GC pass judged the fragment garbage (docs/ARCHITECTURE.md).
    gc_grace_s: float = 600.0
    # Rebuilds write at most this many MB of fragments a second (0: no limit), so
    # that foreground requests keep their latency while a node is rebuilt
    # (`minis3 scrub --rebuild-rate` overrides it for one pass).
    rebuild_mb_per_s: float = 25.0
    # A node the scrubber has seen unreachable for this long is declared gone:
    # its fragments count as lost and are rebuilt on other nodes (MTTR's
    # detection term for a node that never comes back).
    down_after_s: float = 600.0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def commit_window_s(self) -> float:
        """How long after landing a fragment may be committed, and how old a
        new version may be when a replica accepts it (each)."""
        return self.gc_grace_s / 4


@dataclass(frozen=True)
class ConsoleSpec:
    """The web console (``minis3 console``, started by ``minis3 up``): loopback by default."""
    host: str = "127.0.0.1"
    port: int = 9001
    enabled: bool = True
    tls: bool = False                  # as the frontend's (the same certificate)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"


@dataclass(frozen=True)
class IndexSpec:
    """The object index's partitions: when they split, and what one may serve
    (docs/index.md). Request budgets are per partition replica, as S3's are per
    partitioned prefix (3,500 writes and 5,500 reads a second)."""
    split_keys: int = 100_000          # split a partition holding more keys than this
    split_bytes: int = 64 << 20        # ... or more bytes of records (estimated from a sample)
    split_ops_per_s: float = 1500.0    # ... or serving more requests a second than this (0: never) ...
    hot_seconds: float = 10.0          # ... for this long
    write_ops_per_s: float = 3500.0    # a partition replica's budget; over it: 503 SlowDown (0: none)
    read_ops_per_s: float = 5500.0
    max_inflight_writes: int = 2000    # writes waiting for a partition's WAL; beyond: SlowDown
    check_every_s: float = 2.0         # how often the index manager looks at the partitions


@dataclass(frozen=True)
class Topology:
    data_dir: Path
    cluster_secret: str
    region: str
    erasure: ErasureSpec
    frontend: FrontendSpec
    azs: tuple[AZSpec, ...]
    credentials: dict[str, str] = field(default_factory=dict)
    # access key → account. Buckets belong to accounts; keys of one account
    # share its buckets. By default each access key is its own account.
    accounts: dict[str, str] = field(default_factory=dict)
    # Initial split points of the key space (over "bucket/key"). The metadata
    # index is a list of key-range partitions from the start, so that later
    # work can split and move them; every metadata replica holds all of them.
    partition_bounds: tuple[str, ...] = ()
    scrub: ScrubSpec = field(default_factory=ScrubSpec)
    index: IndexSpec = field(default_factory=IndexSpec)
    console: ConsoleSpec = field(default_factory=ConsoleSpec)
    storage_class: StorageClassSpec = field(default_factory=StorageClassSpec)
    source: str | None = None
    # Where ``cluster_secret`` came from, in words (for `minis3 up`'s banner; never the secret).
    secret_source: str = field(default="the topology's cluster_secret", compare=False)
    # The other regions, the DNS server and the bucket registry, when the
    # topology has several regions (None: a cluster of one region).
    world: "World | None" = field(default=None, repr=False, compare=False)

    @property
    def registry_region(self) -> str:
        """The region whose metadata service holds the global bucket registry."""
        return self.world.global_region if self.world else self.region

    @property
    def region_names(self) -> tuple[str, ...]:
        return tuple(r.region for r in self.world.regions) if self.world else (self.region,)

    def region_topology(self, name: str) -> "Topology":
        """Another region's processes (its frontend, metadata processes)."""
        if name == self.region:
            return self
        if self.world is None:
            raise KeyError(name)
        return self.world.region(name)

    def endpoint(self, region: str, bucket: str | None = None) -> str:
        """The host name a client should use for ``region`` (S3's ``Endpoint``
        in a redirect): ``s3.REGION.<domain>``, or ``BUCKET.s3.REGION.<domain>``
        virtual-hosted; the region's frontend address when there is no DNS."""
        if self.world is not None and self.world.dns is not None:
            host = f"s3.{region}.{self.world.dns.domain}"
            return f"{bucket}.{host}" if bucket else host
        fe = self.region_topology(region).frontend
        return f"{fe.host}:{fe.port}"

    @property
    def nodes(self) -> list[NodeSpec]:
        return [n for az in self.azs for n in az.nodes]

    def node(self, node_id: str) -> NodeSpec:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    @property
    def metas(self) -> list[MetaSpec]:
        """The AZs' home metadata processes, in AZ order (one replica of everything each, until a move)."""
        return [az.meta for az in self.azs]

    @property
    def all_metas(self) -> list[MetaSpec]:
        """Every metadata process: the homes, then each AZ's extra ones."""
        return self.metas + [m for az in self.azs for m in az.extra_metas]

    def meta(self, meta_id: str) -> MetaSpec:
        for m in self.all_metas:
            if m.id == meta_id:
                return m
        raise KeyError(meta_id)

    def process_names(self) -> dict[tuple[str, int], str]:
        """(host, port) → process name (node-a1, meta-az-a, …), for traces."""
        out = {(n.host, n.port): f"node-{n.id}" for n in self.nodes}
        out.update({(m.host, m.port): m.id for m in self.all_metas})
        out[(self.scrub.host, self.scrub.port)] = "scrubber"
        return out

    def az_frontend(self, az_name: str) -> FrontendSpec:
        """The frontend an AZ runs when ``frontend.per_az`` is set."""
        i = next(i for i, az in enumerate(self.azs) if az.name == az_name)
        return replace(self.frontend, host=self.azs[i].meta.host, port=self.frontend.port + 10 + i)

    @property
    def frontends(self) -> list[FrontendSpec]:
        """Every frontend a client may use: the main one, and one per AZ if so configured."""
        return [self.frontend] + ([self.az_frontend(az.name) for az in self.azs] if self.frontend.per_az else [])

    def with_frontend_per_az(self) -> "Topology":
        return replace(self, frontend=replace(self.frontend, per_az=True))

    def with_tls(self) -> "Topology":
        """S3 and the console over HTTPS (``--tls``)."""
        return replace(self, frontend=replace(self.frontend, tls=True), console=replace(self.console, tls=True))


@dataclass(frozen=True)
class DNSSpec:
    """The authoritative DNS server of a topology with several regions (``minis3 dns``)."""
    host: str = "127.0.0.1"
    port: int = 9053
    domain: str = "minis3.test"       # .test is reserved for testing (RFC 2606): never a real name
    ttl: int = 5

    @property
    def url(self) -> str:               # its HTTP side (health, answers), one port up
        return f"http://{self.host}:{self.port + 1}"


@dataclass(frozen=True)
class World:
    """Every region of a topology, the DNS server and where the bucket registry lives."""
    regions: tuple[Topology, ...] = field(repr=False, compare=False)
    dns: DNSSpec | None
    global_region: str
    data_dir: Path
    source: str | None = None

    def region(self, name: str) -> Topology:
        for r in self.regions:
            if r.region == name:
                return r
        raise KeyError(name)


class TopologyError(ValueError):
    pass


def _node(raw: dict, az: str, data_dir: Path) -> NodeSpec:
    nid = str(raw["id"])
    return NodeSpec(id=nid, az=az, host=str(raw.get("host", "127.0.0.1")), port=int(raw["port"]),
                    data_dir=Path(raw.get("data_dir", data_dir / az / f"node-{nid}")))


def _scrub_spec(raw: dict) -> ScrubSpec:
    try:
        return ScrubSpec(**raw)
    except TypeError as exc:
        raise TopologyError(f"[scrub]: {exc}") from None


def _console_spec(raw: dict) -> ConsoleSpec:
    try:
        return ConsoleSpec(**raw)
    except TypeError as exc:
        raise TopologyError(f"[console]: {exc}") from None


def _storage_class_spec(raw: dict) -> StorageClassSpec:
    from ..ec.storage_class import ACCEPTED         # pure: the names S3 accepts
    unknown = set(raw) - {"default", "buckets"}
    if unknown:
        raise TopologyError(f"[storage_class]: unknown keys {sorted(unknown)}")
    if not isinstance(raw.get("buckets", {}), dict):
        raise TopologyError("[storage_class] buckets: a table of bucket name = class")
    spec = StorageClassSpec(default=str(raw.get("default", "STANDARD")),
                            buckets={str(b): str(c) for b, c in dict(raw.get("buckets", {})).items()})
    for where, name in [("default", spec.default)] + [(f"buckets.{b}", c) for b, c in spec.buckets.items()]:
        if name not in ACCEPTED:
            raise TopologyError(f"[storage_class] {where} = {name!r}: not a storage class "
                                f"(one of {', '.join(sorted(ACCEPTED))})")
    return spec


def _index_spec(raw: dict) -> IndexSpec:
    try:
        return IndexSpec(**raw)
    except TypeError as exc:
        raise TopologyError(f"[index]: {exc}") from None


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
    tmp = root / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)            # whole or not at all; the first of racing processes wins
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)
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


#: Top-level keys every region of a multi-region file shares.
SHARED = ("cluster_secret", "credentials", "index", "partition_bounds", "tls", "storage_class")


def parse_world(doc: dict, *, source: str | None = None, data_dir: str | os.PathLike | None = None) -> World:
    """A topology with ``[[region]]`` tables: one :class:`Topology` per region."""
    root = Path(data_dir or doc.get("data_dir", "./data")).resolve()
    raw_regions = doc["region"]
    names = [str(r.get("name", "")) for r in raw_regions]
    if not names or "" in names or len(set(names)) != len(names):
        raise TopologyError("every [[region]] needs a name of its own")
    dns = None
    global_region = str((doc.get("dns") or {}).get("global_region") or
                        ("us-east-1" if "us-east-1" in names else names[0]))
    if "dns" in doc:
        try:
            dns = DNSSpec(**{k: v for k, v in doc["dns"].items() if k != "global_region"})
        except TypeError as exc:
            raise TopologyError(f"[dns]: {exc}") from None
    if global_region not in names:
        raise TopologyError(f"dns.global_region {global_region!r} is not a region of the topology")
    regions = []
    shared_secret, secret_source = cluster_secret(doc, root)   # one for every region (the world's data directory's)
    for raw in raw_regions:
        name = str(raw["name"])
        rdoc = {k: doc[k] for k in SHARED if k in doc}
        rdoc["cluster_secret"] = shared_secret
        rdoc.update({k: v for k, v in raw.items() if k != "name"}, region=name)
        if dns is not None:          # the region's names under the DNS domain are virtual-host domains too
            fe = dict(rdoc.get("frontend", {}))
            fe["virtual_host_domains"] = list(fe.get("virtual_host_domains", FrontendSpec.virtual_host_domains)) + [
                f"s3.{name}.{dns.domain}", f"s3.{dns.domain}"]
            rdoc["frontend"] = fe
        regions.append(replace(parse(rdoc, source=source, data_dir=root / name), secret_source=secret_source))
    world = World(regions=tuple(regions), dns=dns, global_region=global_region, data_dir=root, source=source)
    addrs = [(m.host, m.port) for r in regions for m in r.all_metas] + \
            [(n.host, n.port) for r in regions for n in r.nodes] + [(r.frontend.host, r.frontend.port) for r in regions]
    if len(set(addrs)) != len(addrs):
        raise TopologyError("every process of every region needs an address of its own")
    # Each region's topology knows the world, and the world's regions are those
    # same topologies (a cycle, so neither compares nor prints the other).
    object.__setattr__(world, "regions", tuple(replace(r, world=world) for r in regions))
    return world


def parse(doc: dict, *, source: str | None = None, data_dir: str | os.PathLike | None = None) -> Topology:
    root = Path(data_dir or doc.get("data_dir", "./data")).resolve()
    er = ErasureSpec(**doc.get("erasure", {}))
    fe_raw = dict(doc.get("frontend", {}))
    if "virtual_host_domains" in fe_raw:
        fe_raw["virtual_host_domains"] = tuple(fe_raw["virtual_host_domains"])
    console_raw = dict(doc.get("console", {}))
    if doc.get("tls"):                  # the top-level switch: S3 and the console
        fe_raw.setdefault("tls", True)
        console_raw.setdefault("tls", True)
    fe = FrontendSpec(**fe_raw)
    azs = []
    for i, raw in enumerate(doc.get("az", [])):
        name = str(raw["name"])
        nodes = tuple(_node(n, name, root) for n in raw.get("nodes", []))
        m = raw.get("meta") or {}
        meta = MetaSpec(id=f"meta-{name}", az=name, host=str(m.get("host", "127.0.0.1")),
                        port=int(m.get("port", 9201 + i)),
                        data_dir=Path(m.get("data_dir", root / name / "meta")))
        extras = tuple(MetaSpec(id=f"meta-{name}-{j + 2}", az=name, host=str(x.get("host", "127.0.0.1")),
                                port=int(x["port"]), data_dir=Path(x.get("data_dir", root / name / f"meta-{j + 2}")))
                       for j, x in enumerate(raw.get("extra_metas", [])))
        azs.append(AZSpec(name=name, nodes=nodes, meta=meta, extra_metas=extras))
    creds = {str(c["access_key"]): str(c["secret_key"]) for c in doc.get("credentials", [])}
    accounts = {str(c["access_key"]): str(c.get("account", c["access_key"])) for c in doc.get("credentials", [])}
    if not creds:
        creds = env_credentials() or {DEFAULT_ACCESS_KEY: DEFAULT_SECRET_KEY}
        accounts = {ak: ak for ak in creds}
    secret, secret_source = cluster_secret(doc, root)
    topo = Topology(data_dir=root, cluster_secret=secret, secret_source=secret_source,
                    region=str(doc.get("region", "us-east-1")), erasure=er, frontend=fe, azs=tuple(azs),
                    credentials=creds, accounts=accounts, partition_bounds=tuple(doc.get("partition_bounds", ("g", "n", "t"))),
                    scrub=_scrub_spec(doc.get("scrub", {})), index=_index_spec(doc.get("index", {})),
                    console=_console_spec(console_raw),
                    storage_class=_storage_class_spec(doc.get("storage_class", {})),
                    source=source)
    validate(topo)
    return topo


def validate(topo: Topology) -> None:
    er = topo.erasure
    if len(topo.azs) < 1:
        raise TopologyError("a topology needs at least one AZ")
    ids = [n.id for n in topo.nodes]
    if len(set(ids)) != len(ids):
        raise TopologyError("storage node ids must be unique")
    addrs = [(m.host, m.port) for m in topo.all_metas] + [(n.host, n.port) for n in topo.nodes]
    if len(set(addrs)) != len(addrs):
        raise TopologyError("every storage node and metadata process needs an address of its own")
    if len(ids) < er.k + er.m:
        raise TopologyError(f"EC {er.k}+{er.m} needs at least {er.k + er.m} storage nodes, topology has {len(ids)}")
    # Losing any one AZ must leave at least k fragments of every segment. Placement
    # spreads fragments round-robin over the AZs, so an AZ holds ceil((k+m)/n_az).
    per_az = -(-(er.k + er.m) // len(topo.azs))
    if len(topo.azs) > 1 and per_az > er.m:
        raise TopologyError(f"with {len(topo.azs)} AZs an AZ would hold {per_az} fragments of a segment, "
                            f"more than m={er.m}: losing it would lose data")
    if topo.scrub.gc_grace_s <= 0 or topo.scrub.audit_mb_per_s < 0 or topo.scrub.interval_s <= 0:
        raise TopologyError("scrub: gc_grace_s and interval_s must be > 0, audit_mb_per_s >= 0")
    if topo.scrub.rebuild_mb_per_s < 0 or topo.scrub.down_after_s <= 0:
        raise TopologyError("scrub: rebuild_mb_per_s must be >= 0 and down_after_s > 0")
    if er.segment_size <= 0 or er.inline_threshold < 0:
        raise TopologyError("segment_size must be > 0 and inline_threshold >= 0")


def az_address(base_port: int, i: int) -> str:
    """The loopback address the i-th AZ of a local cluster binds.

    On Linux all of 127.0.0.0/8 is loopback, so each AZ gets an address of its
    own (127.0.1.1, 127.0.2.1, 127.0.3.1 for the default cluster; clusters on
    other port ranges use 127.<base/1000>.<i+1>.1). An AZ is then a network
    location: ``minis3 chaos partition-az`` drops its packets with iptables,
    and traffic between AZs can be told apart by address. Elsewhere (macOS has
    only 127.0.0.1 without aliases) every AZ shares 127.0.0.1.
    """
    if not sys.platform.startswith("linux"):
        return "127.0.0.1"
    return f"127.{0 if base_port == 9000 else (base_port // 1000) % 256}.{i + 1}.1"


def default_doc(base_port: int = 9000, extra_metas: int = 0) -> dict:
    """The built-in local cluster (what `make run` starts); ``extra_metas``
    more metadata processes per AZ (ports base + 204 on)."""
    azs = []
    for i, letter in enumerate("abc"):
        host = az_address(base_port, i)
        azs.append({
            "name": f"az-{letter}",
            "meta": {"host": host, "port": base_port + 201 + i},
            "nodes": [{"id": f"{letter}{j + 1}", "host": host, "port": base_port + 101 + 2 * i + j}
                      for j in range(2)],
        })
        if extra_metas:
            azs[-1]["extra_metas"] = [{"host": host, "port": base_port + 204 + 3 * j + i} for j in range(extra_metas)]
    return {"frontend": {"host": "127.0.0.1", "port": base_port}, "az": azs,
            "scrub": {"host": "127.0.0.1", "port": base_port + 300},
            "console": {"host": "127.0.0.1", "port": base_port + 1}}


#: The second and later regions of ``minis3 up --regions`` are smaller, to fit
#: one machine: one storage node per AZ and EC 2+1 (an AZ holds one fragment).
SMALL_REGION_ERASURE = {"k": 2, "m": 1}


def regions_doc(base_port: int = 9000, names: tuple[str, ...] = ("us-east-1", "eu-west-1"), *,
                console: bool = True) -> dict:
    """A local topology of several regions (``minis3 up --regions``).

    The first region is the default local cluster. Region r (from 0) binds
    its own loopback addresses, with the same port numbers: its frontend
    127.X.0.(r+1), its AZ i 127.X.(i+1).(r+1), X as in :func:`az_address`. So
    every region's frontend listens on the same port and the DNS server's A
    record alone says which region a name goes to, as in S3. Needs Linux
    (the whole of 127.0.0.0/8 is loopback there).
    """
    if len(names) > 1 and not sys.platform.startswith("linux"):
        raise TopologyError("several local regions need loopback addresses of their own (Linux)")
    if len(set(names)) != len(names):
        raise TopologyError("region names must differ")
    x = 0 if base_port == 9000 else (base_port // 1000) % 256
    regions = []
    for r, name in enumerate(names):
        if r == 0:
            d = default_doc(base_port)
            d["console"]["enabled"] = console
        else:
            host = f"127.{x}.0.{r + 1}"
            azs = [{"name": f"az-{letter}",
                    "meta": {"host": f"127.{x}.{i + 1}.{r + 1}", "port": base_port + 201 + i},
                    "nodes": [{"id": f"{letter}1", "host": f"127.{x}.{i + 1}.{r + 1}", "port": base_port + 101 + 2 * i}]}
                   for i, letter in enumerate("abc")]
            d = {"frontend": {"host": host, "port": base_port}, "az": azs, "erasure": dict(SMALL_REGION_ERASURE),
                 "scrub": {"host": host, "port": base_port + 300},
                 "console": {"host": host, "port": base_port + 1, "enabled": False}}
        regions.append({"name": name, **d})
    return {"dns": {"host": "127.0.0.1", "port": base_port + 53, "domain": "minis3.test",
                    "global_region": names[0]}, "region": regions}


def regions_toml(base_port: int, data_dir: str | os.PathLike, names: tuple[str, ...], *,
                 cluster_secret: str | None = None, credentials: list[tuple[str, str]] = (),
                 scrub: dict | None = None, console: bool = False) -> str:
    """:func:`regions_doc` as a topology file's text."""
    doc = regions_doc(base_port, names, console=console)
    lines = _top_lines(data_dir, cluster_secret) + [""] + _table("[dns]", doc["dns"]) + _credentials(credentials)
    for reg in doc["region"]:
        lines += ["", "[[region]]", f"name = {_toml_value(reg['name'])}"]
        for table in ("frontend", "erasure", "scrub", "console"):
            if table in reg:
                vals = dict(reg[table], **(scrub or {})) if table == "scrub" else reg[table]
                lines += _table(f"[region.{table}]", vals)
        for az in reg["az"]:
            lines += _table("[[region.az]]", az)
    return "\n".join(lines) + "\n"


def _doc_addresses(doc: dict, base: int) -> list[tuple[str, int]]:
    """Every (host, port) a one-region document's processes may bind."""
    fe, sc, co = doc["frontend"], doc["scrub"], doc["console"]
    addrs = [(fe["host"], fe["port"]), (sc["host"], sc["port"]), (co["host"], co["port"])]
    for i, az in enumerate(doc["az"]):
        addrs += [(n["host"], n["port"]) for n in az["nodes"]] + [(az["meta"]["host"], az["meta"]["port"])]
        addrs.append((az["meta"]["host"], base + 10 + i))             # its per-AZ frontend
        addrs += [(az["meta"]["host"], base + 204 + 3 * j + i) for j in range(2)]   # room for extra metas
    return addrs


#: ``--tls`` as an environment variable (S3 and the console over HTTPS).
TLS_ENV = "MINIS3_TLS"


def env_flag(name: str) -> bool:
    """A yes/no environment variable (1, true, yes, on)."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def add_arguments(parser) -> None:
    """``--topology``, ``--data-dir`` and ``--region``, for every `minis3` command and process.
    Their defaults come from MINIS3_TOPOLOGY, MINIS3_DATA_DIR and MINIS3_REGION when set,
    so a container image says once where its topology and data live."""
    parser.add_argument("--topology", default=os.environ.get("MINIS3_TOPOLOGY") or None,
                        help="topology TOML file (default: $MINIS3_TOPOLOGY if set, else the built-in local cluster)")
    parser.add_argument("--data-dir", default=os.environ.get("MINIS3_DATA_DIR") or None,
                        help="where every process keeps its data (default: $MINIS3_DATA_DIR if set, else the "
                             "topology's data_dir, ./data)")
    parser.add_argument("--region", default=os.environ.get("MINIS3_REGION") or None,
                        help="with a topology of several regions: which one (default: $MINIS3_REGION, "
                             "else the global region)")
    parser.add_argument("--tls", action="store_true", default=env_flag(TLS_ENV),
                        help="S3 and the console over HTTPS, with the data directory's own CA and certificate "
                             "(DATA_DIR/tls/; default: $MINIS3_TLS, else the topology's tls)")


def from_args(a) -> Topology:
    """The topology named by a command's ``--topology/--data-dir/--region`` (and ``--tls``)."""
    topo = load(a.topology, data_dir=a.data_dir, region=getattr(a, "region", None))
    return topo.with_tls() if getattr(a, "tls", False) else topo


def load(path: str | os.PathLike | None = None, *, data_dir: str | os.PathLike | None = None,
         region: str | None = None) -> Topology:
    """One region's topology (the global region's, unless ``region`` names another)."""
    if path is None:
        # `make run`'s cluster: each AZ also runs one extra metadata process,
        # empty at start, so `minis3 partitions move` has somewhere to move to.
        topo = parse(default_doc(extra_metas=1), source=None, data_dir=data_dir)
    else:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
        if isinstance(doc.get("region"), list):
            world = parse_world(doc, source=str(path), data_dir=data_dir)
            try:
                return world.region(region or world.global_region)
            except KeyError:
                raise TopologyError(f"no region {region!r} in {path} (it has "
                                    f"{', '.join(r.region for r in world.regions)})") from None
        topo = parse(doc, source=str(path), data_dir=data_dir)
    if region is not None and region != topo.region:
        raise TopologyError(f"the topology has one region, {topo.region}, not {region}")
    return topo


def _toml_value(v) -> str:
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_toml_value(str(k))} = {_toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return str(v)


def _table(header: str, values: dict) -> list[str]:
    """A TOML table's lines: its header, then ``key = value`` each."""
    return [header] + [f"{k} = {_toml_value(v)}" for k, v in values.items()]


def _top_lines(data_dir, cluster_secret: str | None) -> list[str]:
    return [f"data_dir = {_toml_value(str(data_dir))}"] + (
        [f"cluster_secret = {_toml_value(cluster_secret)}"] if cluster_secret else [])


def _credentials(credentials) -> list[str]:
    return [line for ak, sk in credentials
            for line in ("", "[[credentials]]", f"access_key = {_toml_value(ak)}", f"secret_key = {_toml_value(sk)}")]


def local_toml(base_port: int, data_dir: str | os.PathLike, *, cluster_secret: str | None = None,
               credentials: list[tuple[str, str]] = (), erasure: dict | None = None,
               frontend_per_az: bool = False, scrub: dict | None = None, index: dict | None = None,
               extra_metas: int = 0, console: bool = False, storage_class: dict | None = None) -> str:
    """The default local cluster moved to another port range, as a topology
    file's text (for tests and `minis3 bench --suite`, which run beside `make run`)."""
    doc = default_doc(base_port, extra_metas)
    doc["scrub"].update(scrub or {})
    doc["console"]["enabled"] = console          # a test cluster runs no console unless it tests it
    lines = _top_lines(data_dir, cluster_secret)
    if erasure:
        lines += [""] + _table("[erasure]", erasure)
    lines += [""] + _table("[frontend]", doc["frontend"])
    if frontend_per_az:
        lines.append("per_az = true")
    lines += [""] + _table("[scrub]", doc["scrub"]) + [""] + _table("[console]", doc["console"])
    if index:
        lines += [""] + _table("[index]", index)
    if storage_class:
        lines += [""] + _table("[storage_class]", storage_class)
    lines += _credentials(credentials)
    for az in doc["az"]:
        lines += [""] + _table("[[az]]", az)
    return "\n".join(lines) + "\n"


def _port_free(host: str, port: int) -> bool:
    import socket
    with socket.socket() as s:
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' source ports (Linux default 32768-60999)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def free_base_port(lo: int = 10000, hi: int = 32000, regions: int = 1) -> int:
    """A base port whose whole default port range (frontend, nodes, metas) is free
    (for ``regions`` > 1: every region's of :func:`regions_doc`, and the DNS server's).

    Every port lies outside the kernel's ephemeral range. A listener there can be
    stolen while it is down: a client that reconnects to it may be handed that very
    port as its own source port and, on loopback, connect to itself (TCP
    simultaneous open). The client then reads back its own request ("BadStatusLine:
    GET /health") and the restarted server cannot bind its port.
    """
    import random
    eph_lo, eph_hi = _ephemeral_range()
    for _ in range(200):
        base = random.randrange(lo, hi, 1000)
        if regions > 1:
            doc = regions_doc(base, tuple(f"r{i}" for i in range(regions)))
            addrs = [a for reg in doc["region"] for a in _doc_addresses(reg, base)]
            addrs += [(doc["dns"]["host"], doc["dns"]["port"]), (doc["dns"]["host"], doc["dns"]["port"] + 1)]
        else:
            addrs = _doc_addresses(default_doc(base), base)
        if any(eph_lo <= p <= eph_hi for _, p in addrs):
            continue
        if all(_port_free(h, p) for h, p in addrs):
            return base
    raise RuntimeError("no free port range")
