"""Local clusters on one machine: the built-in default (what `make run` starts),
several regions (``minis3 up --regions``), their topology files' text for tests
and benchmarks, and a free range of ports to run one beside another."""
from __future__ import annotations

import os
import sys

from .specs import TopologyError


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
                 cluster_secret: str | None = None, credentials: list[tuple[str, ...]] = (),
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
    """``[[credentials]]`` tables from (access key, secret key[, account[, user]]) tuples."""
    lines = []
    for ak, sk, *rest in credentials:
        lines += ["", "[[credentials]]", f"access_key = {_toml_value(ak)}", f"secret_key = {_toml_value(sk)}"]
        lines += [f"{name} = {_toml_value(v)}" for name, v in zip(("account", "user"), rest) if v]
    return lines


def local_toml(base_port: int, data_dir: str | os.PathLike, *, cluster_secret: str | None = None,
               credentials: list[tuple[str, ...]] = (), erasure: dict | None = None,
               frontend_per_az: bool = False, scrub: dict | None = None, index: dict | None = None,
               extra_metas: int = 0, console: bool = False, storage_class: dict | None = None,
               frontend: dict | None = None, lifecycle: dict | None = None) -> str:
    """The default local cluster moved to another port range, as a topology
    file's text (for tests and `minis3 bench --suite`, which run beside `make run`)."""
    doc = default_doc(base_port, extra_metas)
    doc["scrub"].update(scrub or {})
    doc["console"]["enabled"] = console          # a test cluster runs no console unless it tests it
    doc["frontend"].update(frontend or {})
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
    if lifecycle:
        lines += [""] + _table("[lifecycle]", lifecycle)
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
