"""The scrubber's pure decisions: what to rebuild, what to move home, what is garbage."""
from collections import Counter

from hypothesis import given, settings, strategies as st

from minis3.ec.placement import handoff, place
from minis3.meta.partition import version
from minis3.scrub import plan as P

AZS = [("az-a", ["a1", "a2"]), ("az-b", ["b1", "b2"]), ("az-c", ["c1", "c2"])]
NODE_AZ = {n: az for az, ns in AZS for n in ns}
ALL = set(NODE_AZ)


def ec_for(oid, nodes):
    return {"id": oid, "k": 4, "m": 2, "nodes": nodes}


def holding(placement: dict[str, set]):
    def held(node, oid, i):
        if node not in placement:
            return None
        return (oid, i) in placement[node]
    return held


def test_healthy_object_needs_nothing():
    home = place("o1", AZS, 6)
    held = holding({n: {("o1", i) for i, m in enumerate(home) if m == n} for n in ALL})
    p = P.plan_object(ec_for("o1", home), home, NODE_AZ, ALL, held)
    assert p.full and not p.fixes


def test_missing_and_quarantined_fragments_are_rebuilt_at_home():
    home = place("o2", AZS, 6)
    inv = {n: {("o2", i) for i, m in enumerate(home) if m == n} for n in ALL}
    inv[home[0]].discard(("o2", 0))
    inv[home[4]].discard(("o2", 4))
    p = P.plan_object(ec_for("o2", home), home, NODE_AZ, ALL, holding(inv),
                      why_lost=lambda n, o, i: "quarantined" if i == 4 else "missing")
    assert {(f.index, f.target, f.why) for f in p.fixes} == {(0, home[0], "missing"), (4, home[4], "quarantined")}
    assert p.final == home and not p.full
    assert P.sources_for(p, 4) == [1, 2, 3, 5]


def test_handoff_fragments_go_home_once_home_is_up():
    home = place("o3", AZS, 6)
    up_without_b = {n for n in ALL if NODE_AZ[n] != "az-b"}
    written = handoff("o3", home, NODE_AZ, up_without_b, max_per_node=2)
    assert written != home
    inv = {n: {("o3", i) for i, m in enumerate(written) if m == n} for n in ALL}
    # az-b still down: nothing to do (down is not lost), not at home yet
    p = P.plan_object(ec_for("o3", written), home, NODE_AZ, up_without_b,
                      holding({n: v for n, v in inv.items() if n in up_without_b}))
    assert not p.fixes and p.final == written
    # az-b back: every handed-off fragment moves home
    p = P.plan_object(ec_for("o3", written), home, NODE_AZ, ALL, holding(inv))
    moved = {f.index for f in p.fixes}
    assert moved == {i for i in range(6) if written[i] != home[i]}
    assert all(f.why == "handoff" for f in p.fixes) and p.final == home
    assert set(P.sources_for(p, 4)) >= moved or len(moved) > 4


def test_fragments_on_a_down_node_are_not_rebuilt():
    home = place("o4", AZS, 6)
    inv = {n: {("o4", i) for i, m in enumerate(home) if m == n} for n in ALL if n != home[1]}
    p = P.plan_object(ec_for("o4", home), home, NODE_AZ, ALL - {home[1]}, holding(inv))
    assert not p.fixes and p.unknown == [1] and not p.full


def test_missing_with_home_up_is_rebuilt_at_home_while_another_node_is_down():
    home = place("o5", AZS, 6)
    inv = {n: {("o5", i) for i, m in enumerate(home) if m == n} for n in ALL}
    up = ALL - {home[2]}
    inv[home[3]].discard(("o5", 3))
    del inv[home[2]]
    p = P.plan_object(ec_for("o5", home), home, NODE_AZ, up, holding(inv))
    assert [(f.index, f.why) for f in p.fixes] == [(3, "missing")]
    assert p.final[3] == home[3]


def test_on_handoff_nodes_is_not_full_redundancy():
    home = place("o7", AZS, 6)
    up = ALL - {"b1", "b2"}
    written = handoff("o7", home, NODE_AZ, up, max_per_node=2)
    inv = {n: {("o7", i) for i, m in enumerate(written) if m == n} for n in up}
    p = P.plan_object(ec_for("o7", written), home, NODE_AZ, up, holding(inv))
    assert not p.fixes and not p.full          # all there, but losing az-a or az-c would lose 3


def test_a_lost_handoff_fragment_whose_home_is_down_goes_to_a_live_node_with_room():
    home = place("o8", AZS, 6)
    up = ALL - {home[2]}
    written = handoff("o8", home, NODE_AZ, up, max_per_node=2)
    inv = {n: {("o8", i) for i, m in enumerate(written) if m == n} for n in up}
    inv[written[2]].discard(("o8", 2))
    p = P.plan_object(ec_for("o8", written), home, NODE_AZ, up, holding(inv))
    [fix] = p.fixes
    assert fix.index == 2 and fix.why == "missing" and fix.target in up
    assert max(Counter(p.final).values()) <= 2


def test_too_few_fragments_is_a_problem_not_a_guess():
    home = place("o6", AZS, 6)
    inv = {n: set() for n in ALL}
    inv[home[0]].add(("o6", 0))
    p = P.plan_object(ec_for("o6", home), home, NODE_AZ, ALL, holding(inv))
    assert p.problem and not p.fixes and p.final == home
    assert len(p.damaged) == 5                 # still counted as damage found


@settings(max_examples=300, deadline=None)
@given(oid=st.text("0123456789abcdef", min_size=8, max_size=8),
       down=st.sets(st.sampled_from(sorted(ALL)), max_size=2),
       lost=st.sets(st.integers(0, 5), max_size=2))
def test_any_plan_keeps_at_most_m_per_node_and_targets_live_nodes(oid, down, lost):
    home = place(oid, AZS, 6)
    up = ALL - down
    try:
        written = handoff(oid, home, NODE_AZ, up, max_per_node=2)
    except Exception:
        return
    inv = {n: {(oid, i) for i, m in enumerate(written) if m == n and i not in lost} for n in up}
    p = P.plan_object(ec_for(oid, written), home, NODE_AZ, ALL, holding(inv))
    assert max(Counter(p.final).values()) <= 2
    for f in p.fixes:
        assert f.target in ALL
    if p.problem is None:
        assert {f.index for f in p.fixes if f.why != "handoff"} == set(lost)
        assert p.final == home             # everything up again: all home


def test_gc_min_age_needs_no_shared_clock():
    assert P.gc_min_age(600, pass_started=100.0, inventory_received=103.5) == 603.5
    assert P.gc_min_age(600, pass_started=100.0, inventory_received=99.0) == 600


def test_orphans_are_old_and_unreferenced():
    inv = [("a", 0, 10, 700.0), ("a", 1, 10, 5.0), ("b", 0, 10, 900.0)]
    refs = {("b", 0)}
    assert P.orphans(inv, lambda o, i: (o, i) in refs, 600) == [("a", 0)]


def test_newest_and_stale_use_the_version_order():
    v1 = {"ts": 5, "vid": "a"}
    v1moved = {"ts": 5, "vid": "a", "pe": 1}
    v2 = {"ts": 6, "vid": "b"}
    assert P.newest_and_stale([v1, v1moved, None], version) == (v1moved, [0, 2])
    assert P.newest_and_stale([v2, v1moved, v2], version) == (v2, [1])
    assert P.newest_and_stale([None, None, None], version) == (None, [])


def test_expected_file_size_matches_real_fragment_files():
    """What lets the scrubber see a fragment file cut at a block boundary."""
    import os
    import time

    from minis3.ec.codec import Codec
    from minis3.storage import blocks
    c, seg, oid = Codec(4, 2), 1 << 20, "ab" * 16
    for size in (5000, seg, 3 * seg + 17):
        data = os.urandom(size)
        per_seg = [c.encode(data[i:i + seg]) for i in range(0, size, seg)]
        for idx in range(6):
            info = blocks.fragment_info(oid, idx, "b1", int(time.time() * 1000))
            body = blocks.file_header(idx, info) + b"".join(blocks.frame(f[idx]) for f in per_seg)
            want = blocks.expected_file_size(oid, idx, "b1", *c.fragment_sizes(size, seg))
            assert len(body) == want
            assert len(body[:-(12 + len(per_seg[-1][idx]))]) != want      # one block short
