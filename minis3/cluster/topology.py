"""The topology file: which processes exist, where they listen, and how data is spread.

One TOML file describes a whole cluster. With no file at all, :func:`default`
gives the local cluster of ``make run``: a frontend on 127.0.0.1:9000, three
AZs of two storage nodes each, one metadata process per AZ, EC 4+2. On Linux
each AZ binds its own loopback address (az-a 127.0.1.1, az-b 127.0.2.1, az-c
127.0.3.1; see :func:`az_address`).

Example (every key is optional; these are the defaults)::

    data_dir = "./data"
    cluster_secret = "minis3-local-cluster-secret"
    region = "us-east-1"

    [erasure]
    backend = "isa_l_rs_vand"
    k = 4
    m = 2
    segment_size = 1048576
    inline_threshold = 4096

    [frontend]
    host = "127.0.0.1"
    port = 9000
    virtual_host_domains = ["localhost", "s3.localhost"]

    [scrub]                        # the scrubber process and background checks
    host = "127.0.0.1"
    port = 9300
    interval_s = 60                # between the cluster scrubber's passes
    audit_mb_per_s = 8             # each storage node re-verifies its fragments at this rate
    gc_grace_s = 600               # an unreferenced fragment younger than this is never removed

    [index]                        # the object index's partitions (docs/index.md)
    split_keys = 100000            # split a partition holding more keys than this,
    split_bytes = 67108864         # or more bytes of records,
    split_ops_per_s = 1500         # or serving more requests a second than this
    hot_seconds = 10               # for this long (0 ops/s: never split for load)
    write_ops_per_s = 3500         # a partition replica's budget (S3's per prefix): over it, 503 SlowDown
    read_ops_per_s = 5500
    max_inflight_writes = 2000     # writes waiting for one partition's WAL; beyond, SlowDown
    check_every_s = 2              # how often the index manager (in the scrubber process) looks

    [[credentials]]
    access_key = "minis3admin"
    secret_key = "minis3secret"
    account = "minis3admin"        # optional: keys with one account share its buckets

    [[az]]
    name = "az-a"
    meta = { host = "127.0.1.1", port = 9201 }
    nodes = [ { id = "a1", host = "127.0.1.1", port = 9101 },
              { id = "a2", host = "127.0.1.1", port = 9102 } ]

Hosts are names, so a topology can span machines.
"""
from __future__ import annotations

import os
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
    inline_threshold: int = 4096


@dataclass(frozen=True)
class FrontendSpec:
    host: str = "127.0.0.1"
    port: int = 9000
    virtual_host_domains: tuple[str, ...] = ("localhost", "s3.localhost")
    # Also run one frontend in each AZ (started by its supervisor, so it dies
    # with its AZ), on the AZ's host at port + 10 + the AZ's position.
    per_az: bool = False

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class ScrubSpec:
    """The scrubber process and the background checks (see docs/ARCHITECTURE.md, "Scrubbing")."""
    host: str = "127.0.0.1"
    port: int = 9300
    # Seconds between the cluster scrubber's passes (a node's return starts one at once).
    interval_s: float = 60.0
    # Each storage node re-reads and verifies its fragment files at this rate, MB/s (0: off).
    audit_mb_per_s: float = 8.0
    # An unreferenced fragment is removed only when older than this. Frontends
    # never commit a fragment that landed more than grace/4 ago, and replicas
    # refuse a new version stamped more than grace/4 ago, so no commit can
    # land after a GC pass judged the fragment garbage (ARCHITECTURE.md).
    gc_grace_s: float = 600.0

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

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


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
    source: str | None = None

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


def _index_spec(raw: dict) -> IndexSpec:
    try:
        return IndexSpec(**raw)
    except TypeError as exc:
        raise TopologyError(f"[index]: {exc}") from None


def parse(doc: dict, *, source: str | None = None, data_dir: str | os.PathLike | None = None) -> Topology:
    root = Path(data_dir or doc.get("data_dir", "./data")).resolve()
    er = ErasureSpec(**doc.get("erasure", {}))
    fe_raw = dict(doc.get("frontend", {}))
    if "virtual_host_domains" in fe_raw:
        fe_raw["virtual_host_domains"] = tuple(fe_raw["virtual_host_domains"])
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
        creds = {DEFAULT_ACCESS_KEY: DEFAULT_SECRET_KEY}
        accounts = {DEFAULT_ACCESS_KEY: DEFAULT_ACCESS_KEY}
    topo = Topology(data_dir=root, cluster_secret=str(doc.get("cluster_secret", "minis3-local-cluster-secret")),
                    region=str(doc.get("region", "us-east-1")), erasure=er, frontend=fe, azs=tuple(azs),
                    credentials=creds, accounts=accounts, partition_bounds=tuple(doc.get("partition_bounds", ("g", "n", "t"))),
                    scrub=_scrub_spec(doc.get("scrub", {})), index=_index_spec(doc.get("index", {})),
                    console=_console_spec(doc.get("console", {})),
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


def add_arguments(parser) -> None:
    """``--topology`` and ``--data-dir``, for every `minis3` command and process.
    Their defaults come from MINIS3_TOPOLOGY and MINIS3_DATA_DIR when set, so a
    container image says once where its topology and data live."""
    parser.add_argument("--topology", default=os.environ.get("MINIS3_TOPOLOGY") or None,
                        help="topology TOML file (default: $MINIS3_TOPOLOGY if set, else the built-in local cluster)")
    parser.add_argument("--data-dir", default=os.environ.get("MINIS3_DATA_DIR") or None,
                        help="where every process keeps its data (default: $MINIS3_DATA_DIR if set, else the "
                             "topology's data_dir, ./data)")


def load(path: str | os.PathLike | None = None, *, data_dir: str | os.PathLike | None = None) -> Topology:
    if path is None:
        # `make run`'s cluster: each AZ also runs one extra metadata process,
        # empty at start, so `minis3 partitions move` has somewhere to move to.
        return parse(default_doc(extra_metas=1), source=None, data_dir=data_dir)
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    return parse(doc, source=str(path), data_dir=data_dir)


def _toml_value(v) -> str:
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return str(v)


def local_toml(base_port: int, data_dir: str | os.PathLike, *, cluster_secret: str | None = None,
               credentials: list[tuple[str, str]] = (), erasure: dict | None = None,
               frontend_per_az: bool = False, scrub: dict | None = None, index: dict | None = None,
               extra_metas: int = 0, console: bool = False) -> str:
    """The default local cluster moved to another port range, as a topology
    file's text (for tests and `minis3 bench --suite`, which run beside `make run`)."""
    doc = default_doc(base_port, extra_metas)
    doc["scrub"].update(scrub or {})
    doc["console"]["enabled"] = console          # a test cluster runs no console unless it tests it
    lines = [f"data_dir = {_toml_value(str(data_dir))}"]
    if cluster_secret:
        lines.append(f"cluster_secret = {_toml_value(cluster_secret)}")
    if erasure:
        lines += ["", "[erasure]"] + [f"{k} = {_toml_value(v)}" for k, v in erasure.items()]
    lines += ["", "[frontend]"] + [f"{k} = {_toml_value(v)}" for k, v in doc["frontend"].items()]
    if frontend_per_az:
        lines.append("per_az = true")
    lines += ["", "[scrub]"] + [f"{k} = {_toml_value(v)}" for k, v in doc["scrub"].items()]
    lines += ["", "[console]"] + [f"{k} = {_toml_value(v)}" for k, v in doc["console"].items()]
    if index:
        lines += ["", "[index]"] + [f"{k} = {_toml_value(v)}" for k, v in index.items()]
    for ak, sk in credentials:
        lines += ["", "[[credentials]]", f"access_key = {_toml_value(ak)}", f"secret_key = {_toml_value(sk)}"]
    for az in doc["az"]:
        lines += ["", "[[az]]"] + [f"{k} = {_toml_value(v)}" for k, v in az.items()]
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


def free_base_port(lo: int = 10000, hi: int = 32000) -> int:
    """A base port whose whole default port range (frontend, nodes, metas) is free.

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
        doc = default_doc(base)
        fe, sc, co = doc["frontend"], doc["scrub"], doc["console"]
        addrs = [(fe["host"], fe["port"]), (sc["host"], sc["port"]), (co["host"], co["port"])]
        for i, az in enumerate(doc["az"]):
            addrs += [(n["host"], n["port"]) for n in az["nodes"]] + [(az["meta"]["host"], az["meta"]["port"])]
            addrs.append((az["meta"]["host"], base + 10 + i))             # its per-AZ frontend
            addrs += [(az["meta"]["host"], base + 204 + 3 * j + i) for j in range(2)]   # room for extra metas
        if any(eph_lo <= p <= eph_hi for _, p in addrs):
            continue
        if all(_port_free(h, p) for h, p in addrs):
            return base
    raise RuntimeError("no free port range")
