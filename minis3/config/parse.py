"""A topology document (parsed TOML, or a built-in default) made into a
validated :class:`~minis3.config.specs.Topology`, and the command-line options
(``--topology``, ``--data-dir``, ``--region``, ``--tls``) every process takes."""
from __future__ import annotations

import os
import tomllib
from dataclasses import replace
from pathlib import Path

from .credentials import cluster_secret, env_credentials
from .local import default_doc
from .specs import (DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, AZSpec, ConsoleSpec, DNSSpec, ErasureSpec, FrontendSpec,
                    IndexSpec, LifecycleSpec, MetaSpec, NodeSpec, ScrubSpec, StorageClassSpec, Topology, TopologyError, World)


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


def _lifecycle_spec(raw: dict) -> LifecycleSpec:
    try:
        spec = LifecycleSpec(**raw)
    except TypeError as exc:
        raise TopologyError(f"[lifecycle]: {exc}") from None
    if spec.day_seconds <= 0 or spec.interval_s <= 0 or spec.keys_per_round <= 0:
        raise TopologyError("[lifecycle]: day_seconds, interval_s and keys_per_round must be > 0")
    return spec


def _index_spec(raw: dict) -> IndexSpec:
    try:
        return IndexSpec(**raw)
    except TypeError as exc:
        raise TopologyError(f"[index]: {exc}") from None


#: Top-level keys every region of a multi-region file shares.
SHARED = ("cluster_secret", "credentials", "index", "partition_bounds", "tls", "storage_class", "lifecycle")


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
    for name in ("virtual_host_domains", "plaintext_buckets"):
        if name in fe_raw:
            fe_raw[name] = tuple(fe_raw[name])
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
    users = {str(c["access_key"]): str(c["user"]) for c in doc.get("credentials", []) if c.get("user")}
    if not creds:
        creds = env_credentials() or {DEFAULT_ACCESS_KEY: DEFAULT_SECRET_KEY}
        accounts = {ak: ak for ak in creds}
    secret, secret_source = cluster_secret(doc, root)
    topo = Topology(data_dir=root, cluster_secret=secret, secret_source=secret_source,
                    region=str(doc.get("region", "us-east-1")), erasure=er, frontend=fe, azs=tuple(azs),
                    credentials=creds, accounts=accounts, users=users, partition_bounds=tuple(doc.get("partition_bounds", ("g", "n", "t"))),
                    scrub=_scrub_spec(doc.get("scrub", {})), index=_index_spec(doc.get("index", {})),
                    console=_console_spec(console_raw),
                    storage_class=_storage_class_spec(doc.get("storage_class", {})),
                    lifecycle=_lifecycle_spec(doc.get("lifecycle", {})),
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
    if not 0 < topo.scrub.audit_busy_share <= 1:
        raise TopologyError("scrub: audit_busy_share must be > 0 and <= 1")
    if topo.scrub.rebuild_mb_per_s < 0 or topo.scrub.down_after_s <= 0:
        raise TopologyError("scrub: rebuild_mb_per_s must be >= 0 and down_after_s > 0")
    if er.segment_size <= 0 or er.inline_threshold < 0:
        raise TopologyError("segment_size must be > 0 and inline_threshold >= 0")


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
