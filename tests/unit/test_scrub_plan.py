"""The scrubber's pure decisions: what to rebuild, what to move home, what is garbage."""
from collections import Counter

import pytest
from hypothesis import given, settings, strategies as st

from minis3.ec.placement import NotEnoughNodes, handoff, place
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
       down=st.sets(st.sampled_from(sorted(ALL)), max_size=4),
       lost=st.sets(st.integers(0, 5), max_size=2))
def test_any_plan_keeps_at_most_m_per_node_and_targets_live_nodes(oid, down, lost):
    home = place(oid, AZS, 6)
    up = ALL - down
    if len(up) * 2 < len(home):
        # Too few nodes up to hold 6 fragments at most 2 a node: the one
        # refusal handoff() documents, and only then.
        with pytest.raises(NotEnoughNodes):
            handoff(oid, home, NODE_AZ, up, max_per_node=2)
        return
    written = handoff(oid, home, NODE_AZ, up, max_per_node=2)
    assert len(written) == len(home)
    assert set(written) <= up, "a fragment is written only to a node that is up"
    assert max(Counter(written).values()) <= 2
    assert all(w == h for w, h in zip(written, home) if h in up), "a fragment whose home is up stays home"
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


# -- a node that stays down: its fragments are lost after scrub.down_after_s ---------------

def test_gone_nodes_are_those_down_at_least_the_timeout():
    down_since = {"b1": 100.0, "c2": 650.0}
    assert P.gone_nodes(down_since, now=699.0, down_after_s=600) == set()
    assert P.gone_nodes(down_since, now=700.0, down_after_s=600) == {"b1"}
    assert P.gone_nodes(down_since, now=1250.0, down_after_s=600) == {"b1", "c2"}
    assert P.gone_nodes({}, now=1e9, down_after_s=1) == set()


def gone_plan(oid: str, gone: set[str], k: int = 4, m: int = 2):
    """Plan a k+m object written while every node was up, after ``gone`` stopped
    answering for good (the scrubber's ``_plan``: home re-homed by ``home_without``)."""
    written = place(oid, AZS, k + m)
    up = ALL - gone
    inv = {n: {(oid, i) for i, w in enumerate(written) if w == n} for n in up}
    held = holding(inv)

    def held_or_lost(node, o, i):
        return False if node in gone else held(node, o, i)
    home = P.home_without(oid, written, NODE_AZ, up, m)
    return written, P.plan_object({"id": oid, "k": k, "m": m, "nodes": written}, home, NODE_AZ, up, held_or_lost,
                                  why_lost=lambda n, o, i: "node gone" if n in gone else "missing")


@settings(max_examples=300, deadline=None)
@given(oid=st.text("0123456789abcdef", min_size=8, max_size=8), gone=st.sampled_from(sorted(ALL)))
def test_a_gone_node_s_fragments_go_to_its_az_partner_and_keep_the_spread(oid, gone):
    written, p = gone_plan(oid, {gone})
    lost = [i for i, n in enumerate(written) if n == gone]
    assert p.problem is None
    assert sorted(f.index for f in p.fixes) == lost and all(f.why == "node gone" for f in p.fixes)
    partner = next(n for n in ALL if NODE_AZ[n] == NODE_AZ[gone] and n != gone)
    assert all(f.target == partner for f in p.fixes)       # the same AZ: it still holds 2 of 6
    assert gone not in p.final
    assert max(Counter(p.final).values()) <= 2              # losing any one more node leaves k = 4
    assert sorted(Counter(NODE_AZ[n] for n in p.final).values()) == [2, 2, 2]   # losing any AZ leaves 4
    # Every other fragment stays where it is: only the lost ones move.
    assert [n for i, n in enumerate(p.final) if i not in lost] == [n for i, n in enumerate(written) if i not in lost]


@settings(max_examples=200, deadline=None)
@given(oid=st.text("0123456789abcdef", min_size=8, max_size=8))
def test_a_whole_gone_az_s_fragments_spread_over_the_others_within_the_cap_and_nothing_else_moves(oid):
    written, p = gone_plan(oid, {"b1", "b2"})
    lost = {i for i, n in enumerate(written) if n in ("b1", "b2")}
    assert p.problem is None
    assert {f.index for f in p.fixes} == lost and all(f.why == "node gone" for f in p.fixes)
    assert not {"b1", "b2"} & set(p.final)
    assert max(Counter(p.final).values()) <= 2


@settings(max_examples=300, deadline=None)
@given(oid=st.text("0123456789abcdef", min_size=8, max_size=8), gone=st.sampled_from(sorted(ALL)))
def test_a_gone_node_s_fragment_of_a_4_plus_1_object_goes_to_the_node_it_does_not_use(oid, gone):
    # REDUCED_REDUNDANCY (4+1 on 5 of the 6 nodes, at most one a node): the lost
    # fragment must go to the sixth node, not wait for the gone one.
    written, p = gone_plan(oid, {gone}, k=4, m=1)
    lost = [i for i, n in enumerate(written) if n == gone]
    assert p.problem is None
    assert sorted(f.index for f in p.fixes) == lost
    if lost:
        assert [f.target for f in p.fixes] == list(ALL - set(written))
    assert gone not in p.final and max(Counter(p.final).values()) == 1


def test_a_one_zone_object_whose_zone_lost_a_node_for_good_is_reported_short_not_moved():
    zone_nodes = ["c1", "c2"]
    written = [zone_nodes[i % 2] for i in range(6)]                 # 3 fragments a node, all in az-c
    up = ALL - {"c1"}
    home = P.home_without("z1", written, NODE_AZ, {"c2"}, 3)        # c2 cannot take 6 at 3 a node
    assert home == written
    inv = {n: {("z1", i) for i, w in enumerate(written) if w == n} for n in up}
    p = P.plan_object({"id": "z1", "k": 4, "m": 2, "nodes": written, "zone": "az-c"}, home, NODE_AZ, {"c2"},
                      lambda n, o, i: False if n == "c1" else holding(inv)(n, o, i), cap=3)
    assert not p.fixes and p.problem == "only 3 of the 4 fragments needed are readable"


def test_a_gone_node_is_never_a_target_even_when_no_placement_fits():
    # Two nodes of three gone in a layout too small to hold 6 fragments at 2 a node: a
    # problem is reported (nothing written), never a write to a node that cannot take it.
    azs = [("az-a", ["a1"]), ("az-b", ["b1"]), ("az-c", ["c1"])]
    node_az = {"a1": "az-a", "b1": "az-b", "c1": "az-c"}
    written = place("o9", azs, 6)
    inv = {"a1": {("o9", i) for i, n in enumerate(written) if n == "a1"}}
    p = P.plan_object({"id": "o9", "k": 4, "m": 2, "nodes": written}, P.home_without("o9", written, node_az, {"a1"}, 2),
                      node_az, {"a1"}, lambda n, o, i: False if n in ("b1", "c1") else holding(inv)(n, o, i))
    assert p.problem and not p.fixes


def test_the_rebuild_rate_limit_paces_bytes_written():
    """The scrubber's rebuild pacing: each segment's written bytes are paid to the
    shared TokenBucket (core/ratelimit.py); N bytes at R bytes/s take about N / R seconds, minus one burst."""
    from minis3.core.ratelimit import TokenBucket
    t = [0.0]
    rate, burst = 25e6, 1 << 20
    bucket = TokenBucket(rate, burst=burst, clock=lambda: t[0])
    t[0] += 10.0                        # idle for a while: at most one burst saved up
    written, waited = 0, 0.0
    for _ in range(400):                # 400 segments' fragments of 262 KB: 105 MB
        bucket.spend(262_000)
        written += 262_000
        w = bucket.wait_s()
        waited += w
        t[0] += w                       # the rebuild rests as long as the bucket says
    assert abs(waited - (written - burst) / rate) < 1e-6
    bucket.set_rate(0)                  # 0: no limit, no debt
    bucket.spend(1 << 30)
    assert bucket.wait_s() == 0
