"""Configuration: the topology file, which says which processes exist, where they
listen and how data is spread, and the secrets and TLS material every process
starts from. The lowest layer but ``core``: it imports no other package of minis3
(docs/ARCHITECTURE.md, "Packages and layers").

``specs`` (the dataclasses), ``parse`` (a document to a validated Topology; the
command-line options), ``credentials`` (the cluster secret, the S3 keys),
``local`` (the built-in local clusters and their TOML text), ``tls`` (the data
directory's CA and certificate). This module re-exports their public names, so
callers write ``config.load(...)`` and ``config.Topology``.


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
                                   # and a certificate made once in DATA_DIR/tls/ (config/tls.py)

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
    # sse_c_over_http = false      # SSE-C keys over plain HTTP: default only on a loopback address
    # plaintext_buckets = []       # not S3: buckets whose objects stay in the clear unless asked (bench, labs)

    [scrub]                        # the scrubber process and background checks
    host = "127.0.0.1"
    port = 9300
    interval_s = 60                # between the cluster scrubber's passes
    audit_mb_per_s = 8             # each storage node re-verifies its fragments at this rate
    audit_busy_share = 0.25        # ... and at this share of it while it serves data (never 0)
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

from .credentials import (ACCESS_KEY_ENV, DEMO_S3_SECRET_KEYS, DEMO_SECRETS, INSECURE_DEMO_ENV, SECRET_ENV,
                          SECRET_FILE, SECRET_KEY_ENV, SUPERVISED_ENV, cluster_secret, deploy_problems,
                          env_credentials, from_env, warn_if_demo_secret)
from .local import (SMALL_REGION_ERASURE, az_address, default_doc, free_base_port, local_toml, regions_doc,
                    regions_toml)
from .parse import TLS_ENV, add_arguments, env_flag, from_args, load, parse, parse_world, validate
from .specs import (DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, AZSpec, ConsoleSpec, DNSSpec, ErasureSpec,
                    FrontendSpec, IndexSpec, MetaSpec, NodeSpec, ScrubSpec, StorageClassSpec, Topology,
                    TopologyError, World)

__all__ = [
    "ACCESS_KEY_ENV", "DEMO_S3_SECRET_KEYS", "DEMO_SECRETS", "INSECURE_DEMO_ENV", "SECRET_ENV", "SECRET_FILE",
    "SECRET_KEY_ENV", "SUPERVISED_ENV", "cluster_secret", "deploy_problems", "env_credentials", "from_env",
    "warn_if_demo_secret", "SMALL_REGION_ERASURE", "az_address", "default_doc", "free_base_port", "local_toml",
    "regions_doc", "regions_toml", "TLS_ENV", "add_arguments", "env_flag", "from_args", "load", "parse",
    "parse_world", "validate", "DEFAULT_ACCESS_KEY", "DEFAULT_SECRET_KEY", "AZSpec", "ConsoleSpec", "DNSSpec",
    "ErasureSpec", "FrontendSpec", "IndexSpec", "MetaSpec", "NodeSpec", "ScrubSpec", "StorageClassSpec",
    "Topology", "TopologyError", "World",
]
