"""Placement: which node holds fragment i of an object.

Fragments are dealt round-robin over the AZs (starting at an AZ chosen by the
object id, so load spreads), and within an AZ to nodes in rendezvous-hash order
of (object id, node id). With k+m fragments over n AZs an AZ holds at most
ceil((k+m)/n) of them; the topology refuses layouts where that exceeds m, so
losing any one AZ always leaves at least k fragments of every segment.
"""
from __future__ import annotations

import xxhash


def _score(object_id: str, node_id: str) -> int:
    return xxhash.xxh3_64_intdigest(f"{object_id}/{node_id}".encode())


def place(object_id: str, azs: list[tuple[str, list[str]]], width: int) -> list[str]:
    """Return ``width`` node ids, one per fragment index (0..k+m-1).

    ``azs`` is [(az name, [node ids])...] in a fixed order. Distinct nodes are
    used while an AZ has enough of them.
    """
    live = [(az, nodes) for az, nodes in azs if nodes]
    if not live:
        raise ValueError("no nodes to place fragments on")
    start = xxhash.xxh3_64_intdigest(object_id.encode()) % len(live)
    ranked = {az: sorted(nodes, key=lambda n: _score(object_id, n), reverse=True) for az, nodes in live}
    used = {az: 0 for az, _ in live}
    out = []
    for i in range(width):
        az, _ = live[(start + i) % len(live)]
        nodes = ranked[az]
        out.append(nodes[used[az] % len(nodes)])
        used[az] += 1
    return out


class NotEnoughNodes(Exception):
    pass


def handoff(object_id: str, preferred: list[str], node_az: dict[str, str], up: set[str],
            max_per_node: int) -> list[str]:
    """Placement while some nodes are down: each fragment whose preferred node
    is down moves to a *handoff* node that is up — an unused node of the same
    AZ if there is one, else the unused node (then the least loaded one) of
    the AZ holding fewest fragments. No node gets more than ``max_per_node``
    fragments (m: losing any one node then still leaves k), else
    NotEnoughNodes. With every node up this returns ``preferred`` unchanged."""
    out = list(preferred)
    per_node: dict[str, int] = {}
    per_az: dict[str, int] = {}
    for n in out:
        if n in up:
            per_node[n] = per_node.get(n, 0) + 1
            per_az[node_az[n]] = per_az.get(node_az[n], 0) + 1
    for i, n in enumerate(out):
        if n in up:
            continue
        az = node_az[n]
        same = [c for c in up if node_az[c] == az and not per_node.get(c)]
        if same:
            pool = same
        else:
            pool = [c for c in up if not per_node.get(c)] or \
                   [c for c in up if per_node.get(c, 0) < max_per_node]
        if not pool:
            raise NotEnoughNodes(f"{len(up)} nodes up cannot hold {len(out)} fragments, "
                                 f"at most {max_per_node} on a node")
        pick = min(pool, key=lambda c: (per_node.get(c, 0), per_az.get(node_az[c], 0),
                                        -_score(object_id, c)))
        out[i] = pick
        per_node[pick] = per_node.get(pick, 0) + 1
        per_az[node_az[pick]] = per_az.get(node_az[pick], 0) + 1
    return out
