"""`minis3 health [TARGET]`: does one service's share of the cluster answer?

A container runs one service of the cluster (docker-compose.yml: `frontend`,
`az-a`, `az-b`, `az-c`, `scrubber`), and its HEALTHCHECK runs
``minis3 health`` with no argument, so the target comes from the environment
variable ``MINIS3_SERVICE`` that each compose service sets. Compose starts a
service's dependents only once it is healthy, which is how ``docker compose up``
brings the AZs up before the frontend, and the frontend before the scrubber.

Targets:

- ``frontend``: the main frontend answers ``/_minis3/health``;
- ``scrubber``: the scrubber's ``/health``;
- an AZ name: that AZ's metadata replica and storage nodes answer ``/health``
  (and its own frontend, if the topology runs one per AZ);
- ``all``: every process of the topology (the image's default, ``minis3 up``:
  the whole cluster in one container).

A process "answers" by the same rule ``minis3 up`` waits for
(:func:`minis3.cluster.supervisor._healthy`: any HTTP status below 500).
The exit status is 0 when every checked process answers and 1 otherwise,
including when no target is given or the target is unknown: Docker reserves
exit status 2 of a health check, and a misconfigured check is not healthy.
"""
from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor

from ..config import tls
from .supervisor import _healthy
from ..config import Topology

ENV = "MINIS3_SERVICE"
ALL = "all"


class UnknownTarget(ValueError):
    pass


def _az_checks(topo: Topology, az_name: str) -> list[tuple[str, str]]:
    az = next(a for a in topo.azs if a.name == az_name)
    out = [(m.id, m.url + "/health") for m in az.all_metas]
    out += [(f"node-{n.id}", n.url + "/health") for n in az.nodes]
    if topo.frontend.per_az:
        out.append((f"frontend-{az.name}", topo.az_frontend(az.name).url + "/_minis3/health"))
    return out


def checks(topo: Topology, target: str) -> list[tuple[str, str]]:
    """(process name, URL to probe) for every process of `target`."""
    if target == "frontend":
        return [("frontend", topo.frontend.url + "/_minis3/health")]
    if target == "scrubber":
        return [("scrubber", topo.scrub.url + "/health")]
    if target == ALL:
        return ([("frontend", topo.frontend.url + "/_minis3/health")]
                + [c for az in topo.azs for c in _az_checks(topo, az.name)]
                + [("scrubber", topo.scrub.url + "/health")])
    if any(az.name == target for az in topo.azs):
        return _az_checks(topo, target)
    names = ", ".join(["frontend", "scrubber", ALL] + [az.name for az in topo.azs])
    raise UnknownTarget(f"unknown target {target!r}: expected one of {names}")


def run(topo: Topology, target: str | None) -> int:
    """Probe every process of `target` (default: $MINIS3_SERVICE) at once,
    print one line each, return 0 if all answer and 1 otherwise."""
    target = target or os.environ.get(ENV) or None
    if target is None:
        print(f"minis3 health: no target: give one (frontend, scrubber, {ALL} or an AZ name) "
              f"or set {ENV}", file=sys.stderr)
        return 1
    try:
        probes = checks(topo, target)
    except UnknownTarget as exc:
        print(f"minis3 health: {exc}", file=sys.stderr)
        return 1
    # In parallel: a frozen process costs its 1 s timeout once, not once per process.
    with ThreadPoolExecutor(max_workers=len(probes)) as pool:
        ctx = tls.client_context(topo)
        results = list(pool.map(lambda probe: _healthy(probe[1], ctx), probes))
    width = max(len(name) for name, _ in probes)
    for (name, url), ok in zip(probes, results):
        print(f"{name:<{width}}  {'up' if ok else 'DOWN':<4}  {url}")
    return 0 if all(results) else 1
