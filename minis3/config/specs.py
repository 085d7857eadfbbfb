"""What a topology describes, as frozen dataclasses: a cluster's processes
(:class:`NodeSpec`, :class:`MetaSpec`, :class:`FrontendSpec`...), its AZs, its
erasure scheme and its background work; :class:`World` for several regions.
Parsing and defaults are in ``config/parse.py``."""
from __future__ import annotations

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
    # HTTPS with the data directory's own certificate (config/tls.py; `minis3 up --tls`).
    tls: bool = False
    # SSE-C keys over plain HTTP (S3 refuses them): None = only when this frontend
    # listens on a loopback address (frontend/encryption.py says why).
    sse_c_over_http: bool | None = None
    # Buckets (shell patterns) whose new objects are stored in the clear when neither
    # the request nor PutBucketEncryption asks for encryption. S3 has no such thing
    # (it encrypts every object); it is here to measure what encryption costs
    # (`make bench`) and to show a learner a fragment in the clear.
    plaintext_buckets: tuple[str, ...] = ()

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
    # While a node serves data (writes or reads fragments, or rebuilds, now or in the last
    # second), its audit runs at this share of audit_mb_per_s: repair and clients first.
    # Never 0, so a silent bitflip is still found within bytes ÷ (rate × share).
    audit_busy_share: float = 0.25
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
class LifecycleSpec:
    """Buckets' lifecycle rules, run by the scrubber process (docs/ARCHITECTURE.md, "Lifecycle")."""
    # How many seconds a lifecycle "day" lasts: S3's 86,400, or a few seconds for a test or a
    # lab (then "midnight" is every multiple of it since the Unix epoch). The frontends'
    # x-amz-expiration and the scrubber's rounds both use it.
    day_seconds: float = 86400.0
    # Seconds between the rounds that apply the rules.
    interval_s: float = 3600.0
    # At most this many index entries (versions, delete markers, uploads) a round reads, a
    # page of 1,000 at a time; the next round goes on from there.
    keys_per_round: int = 100_000


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
    # access key → the IAM-style user it signs as (``user = "alice"`` in its
    # [[credentials]]); a key with none signs as its account's root. Bucket
    # policies name either (docs/access.md).
    users: dict[str, str] = field(default_factory=dict)
    # Initial split points of the key space (over "bucket/key"). The metadata
    # index is a list of key-range partitions from the start, so that later
    # work can split and move them; every metadata replica holds all of them.
    partition_bounds: tuple[str, ...] = ()
    scrub: ScrubSpec = field(default_factory=ScrubSpec)
    index: IndexSpec = field(default_factory=IndexSpec)
    console: ConsoleSpec = field(default_factory=ConsoleSpec)
    storage_class: StorageClassSpec = field(default_factory=StorageClassSpec)
    lifecycle: LifecycleSpec = field(default_factory=LifecycleSpec)
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
