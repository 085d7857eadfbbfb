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
