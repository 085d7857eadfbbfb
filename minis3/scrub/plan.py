"""What the scrubber decides, with no I/O: the pure core of a scrub pass.

Given what the metadata says (an object's recorded placement, ``ec.nodes``:
fragment index → node), where the placement *should* be (``place()``: the
object's home nodes, spread over the AZs), which nodes are up, and what each
node's inventory holds, :func:`plan_object` says which fragments to rebuild
and where, and which to move home from a handoff node. :func:`orphans` says
which fragments no metadata points at and are old enough to remove.
:func:`gone_nodes` says which down nodes have been down long enough to count
as lost, and :func:`home_without` re-homes only their fragments on the nodes
left (the same AZ first: the spread the scheme asks for is kept where it can
be, and no other fragment moves).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable

from ..ec.placement import NotEnoughNodes, handoff

#: held(node, object id, index) → True (in the node's inventory), False (the
#: node answered and does not hold it), None (the node is down: unknown).
Held = Callable[[str, str, int], "bool | None"]


@dataclass(frozen=True)
class Fix:
    """One fragment to write: ``index`` of the object, onto ``target``."""
    index: int
    target: str
    why: str            # "missing", "quarantined" (the node found it corrupt), "truncated"
                        # (the wrong size), or "handoff" (moving home)


@dataclass
class ObjectPlan:
    object_id: str
    nodes: list[str]                 # the recorded placement
    final: list[str]                 # the placement after the fixes
    home: list[str]                  # where every fragment belongs (ec.placement.place)
    fixes: list[Fix] = field(default_factory=list)
    present: list[int] = field(default_factory=list)     # indexes that can be read now
    unknown: list[int] = field(default_factory=list)     # on nodes that are down
    problem: str | None = None       # why it cannot be fixed now (too few fragments, no room)

    lost: list[Fix] = field(default_factory=list)        # damage that cannot be repaired now

    @property
    def damaged(self) -> list[Fix]:
        return [f for f in self.fixes if f.why != "handoff"] + self.lost

    @property
    def full(self) -> bool:
        """Full redundancy, at home: every fragment present on its home node
        (fragments on handoff nodes are all there, but the AZ spread is not)."""
        return not self.fixes and not self.unknown and self.problem is None and self.nodes == self.home


def plan_object(ec: dict, home: list[str], node_az: dict[str, str], up: set[str], held: Held,
                why_lost: Callable[[str, str, int], str] = lambda n, o, i: "missing",
                cap: int | None = None) -> ObjectPlan:
    """Decide how to bring one erasure-coded object back to full redundancy.

    * A fragment its node does not hold whole (deleted, wiped, quarantined as
      corrupt, or the wrong size: ``why_lost`` says which) is rebuilt from k others: on its home node if that is up, else
      on a handoff node (the least loaded up node, its home AZ's first).
    * A fragment held by a handoff node goes back home once home is up
      (the outage that put it there is over).
    * A fragment on a node that is down is left alone: down is not lost.
      (Its object is not at full redundancy, and the next pass looks again.)

    No node ends up with more than m fragments of the object (``cap``, when
    given: a one-zone object on fewer nodes than that needs), so losing any
    one node still leaves k; at most ceil((k+m)/AZs) per AZ when home.
    """
    oid, nodes, k = ec["id"], list(ec["nodes"]), int(ec["k"])
    m = int(ec["m"]) if cap is None else cap
    width = len(nodes)
    state = [held(nodes[i], oid, i) for i in range(width)]
    plan = ObjectPlan(oid, nodes, list(nodes), list(home))
    plan.present = [i for i in range(width) if state[i]]
    plan.unknown = [i for i in range(width) if state[i] is None]
    if any(state[i] is False for i in range(width)) and len(plan.present) < k:
        # Too few to rebuild from, wherever a new fragment would go: say so (nothing is written).
        plan.problem = f"only {len(plan.present)} of the {k} fragments needed are readable"
        plan.lost = [Fix(i, nodes[i], why_lost(nodes[i], oid, i)) for i in range(width) if state[i] is False]
        return plan
    final, plan.problem = _placement(state, nodes, home, node_az, up, m)
    if plan.problem:
        return plan
    if any(state[i] is False and final[i] not in up for i in range(width)):
        # (Only when the fallback above kept a lost fragment on a node that is
        # not up, e.g. a gone one: never plan a write to a node that cannot take it.)
        plan.problem = "no placement keeps at most m fragments a node on the nodes up"
        plan.lost = [Fix(i, nodes[i], why_lost(nodes[i], oid, i)) for i in range(width) if state[i] is False]
        return plan
    for i in range(width):
        if state[i] is False:
            plan.fixes.append(Fix(i, final[i], why_lost(nodes[i], oid, i)))
        elif state[i] and final[i] != nodes[i]:
            plan.fixes.append(Fix(i, final[i], "handoff"))
    plan.final = list(final)                  # type: ignore[arg-type]
    if plan.fixes and len(plan.present) < k:
        plan.problem = f"only {len(plan.present)} of the {k} fragments needed are readable"
        plan.lost = [f for f in plan.fixes if f.why != "handoff"]      # still counted as damage
        plan.fixes = []
        plan.final = list(nodes)
    return plan


def _placement(state: list, nodes: list[str], home: list[str], node_az: dict[str, str], up: set[str],
               m: int) -> tuple[list, str | None]:
    """Where each fragment should be at the end of the pass (``state[i]``: held, lost, or
    None when its node is down), and the problem if no placement keeps at most ``m`` a node.
    A fragment on a down node stays; one whose home is up goes (or stays) home; one held on
    a handoff node whose home is still down stays; a lost one with its home down goes to
    the least loaded node up, its home AZ's first."""
    width = len(nodes)
    final: list[str | None] = [None] * width
    for i in range(width):
        if state[i] is None:
            final[i] = nodes[i]                  # down: leave it be
        elif home[i] in up:
            final[i] = home[i]                   # home is up: the fragment belongs there
        elif state[i]:
            final[i] = nodes[i]                  # present on a handoff node, home still down
    load = Counter(n for n in final if n is not None)
    az_load = Counter(node_az[n] for n in final if n is not None)
    for i in range(width):
        if final[i] is not None:
            continue
        pool = [c for c in up if load[c] < m]
        if not pool:
            return final, f"no live node has room for fragment {i}"
        pick = min(pool, key=lambda c: (load[c], node_az[c] != node_az[home[i]], az_load[node_az[c]], c))
        final[i] = pick
        load[pick] += 1
        az_load[node_az[pick]] += 1
    if max(load.values()) > m:
        # Home placement collides with fragments kept where they are: move
        # nothing this pass, rebuild only what is missing, in place.
        final = list(nodes)
        if max(Counter(final).values()) > m:
            return final, "no placement keeps at most m fragments a node"
    return final, None


def gone_nodes(down_since: dict[str, float], now: float, down_after_s: float) -> set[str]:
    """The nodes seen unreachable without a break for at least ``down_after_s``
    (``down_since``: node → when the scrubber first saw it down, by its own
    clock; a node that answered is not in it). Their fragments count as lost:
    down for that long is taken to be gone, as a real system decides after a
    timeout, instead of waiting forever for a disk that will not come back."""
    return {n for n, since in down_since.items() if now - since >= down_after_s}


def home_without(object_id: str, home: list[str], node_az: dict[str, str], keep: set[str],
                 cap: int) -> list[str]:
    """An object's home placement once some nodes are gone: every fragment whose
    home node is in ``keep`` (the nodes not gone it may live on: its zone's, for
    a one-zone object) keeps it, so nothing else moves; each of the others gets
    the node a PUT would hand it off to (``placement.handoff``): an unused node
    of its own AZ, else an unused node, else the least loaded one, never more
    than ``cap`` fragments a node. So a 4+2 object's fragment goes to the gone
    node's AZ partner (2 of 6 an AZ still), a 4+1 object's to the node it does
    not use yet (at most one a node), and a whole AZ gone costs only its own
    fragments. When no node can take them (``NotEnoughNodes``: a one-zone
    object whose zone lost a node) the home is left as it was, and the plan
    reports the object short of fragments instead of writing anywhere."""
    try:
        return handoff(object_id, list(home), node_az, keep, max_per_node=cap)
    except NotEnoughNodes:
        return list(home)


def sources_for(plan: ObjectPlan, k: int) -> list[int]:
    """The k present fragments to read: the ones moving home first (their
    blocks are copied as they are), then data fragments (cheapest to decode)."""
    moving = {f.index for f in plan.fixes if f.why == "handoff"}
    return sorted(plan.present, key=lambda i: (i not in moving, i))[:k]


def gc_min_age(grace_s: float, pass_started: float, inventory_received: float) -> float:
    """The age (seconds, by the node's own clock) a fragment must have reached,
    in an inventory received at ``inventory_received``, to be certainly older
    than ``grace_s`` at ``pass_started`` (both times by the scrubber's clock).

    The node measured the age at some moment before the answer arrived, so
    it landed no later than inventory_received - age; asking for
    ``age >= grace + (inventory_received - pass_started)`` makes that no later
    than pass_started - grace, with no comparison of two machines' clocks."""
    return grace_s + max(0.0, inventory_received - pass_started)


def orphans(inventory: Iterable[tuple[str, int, int, float]], referenced: Callable[[str, int], bool],
            min_age_s: float) -> list[tuple[str, int]]:
    """Fragments of one node's inventory [(object id, index, size, age)] that
    no metadata version points at (on this node) and are at least ``min_age_s`` old."""
    return [(oid, idx) for oid, idx, _size, age in inventory if age >= min_age_s and not referenced(oid, idx)]


def newest_and_stale(versions: list[dict | None], order: Callable[[dict | None], tuple]
                     ) -> tuple[dict | None, list[int]]:
    """Anti-entropy for one key: the newest of the replicas' versions, and
    the positions of replicas that hold an older one (or none)."""
    best = None
    for v in versions:
        if v is not None and order(v) > order(best):
            best = v
    if best is None:
        return None, []
    return best, [i for i, v in enumerate(versions) if order(v) < order(best)]
