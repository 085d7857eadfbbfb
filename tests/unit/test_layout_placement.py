"""Segment/fragment arithmetic and placement, with no processes."""
import os
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minis3 import config
from minis3.config import local
from minis3.ec import layout
from minis3.ec.codec import Codec
from minis3.ec.placement import place

AZS = [("az-a", ["a1", "a2"]), ("az-b", ["b1", "b2"]), ("az-c", ["c1", "c2"])]


@given(size=st.integers(0, 50_000), seg=st.integers(1, 5000))
def test_segments_cover_object_exactly(size, seg):
    n = layout.segment_count(size, seg)
    spans = [layout.segment_bounds(i, size, seg) for i in range(n)]
    assert sum(e - s for s, e in spans) == size
    assert all(spans[i][1] == spans[i + 1][0] for i in range(n - 1))
    assert all(0 < e - s <= seg for s, e in spans)


@given(data=st.data(), size=st.integers(1, 20_000), seg=st.integers(1, 3000))
def test_span_for_range_trims_to_the_range(data, size, seg):
    a = data.draw(st.integers(0, size - 1))
    b = data.draw(st.integers(a, size - 1))
    span = layout.span_for_range(a, b, seg)
    obj = bytes(i % 251 for i in range(size))
    joined = b"".join(obj[slice(*layout.segment_bounds(i, size, seg))] for i in range(span.first, span.last + 1))
    assert joined[span.skip:span.skip + span.take] == obj[a:b + 1]


def test_placement_distinct_nodes_two_per_az():
    for i in range(500):
        oid = os.urandom(16).hex()
        nodes = place(oid, AZS, 6)
        assert len(set(nodes)) == 6
        assert sorted(Counter(n[0] for n in nodes).values()) == [2, 2, 2]
        assert place(oid, AZS, 6) == nodes                   # deterministic


def test_placement_spreads_load_and_losing_an_az_leaves_k():
    first = Counter()
    for i in range(3000):
        nodes = place(f"{i:032x}", AZS, 6)
        first[nodes[0]] += 1
        for az in "abc":
            assert sum(1 for n in nodes if n[0] != az) >= 4   # k=4 survive the loss of any AZ
    assert min(first.values()) > 3000 / 6 * 0.7                # fragment 0 is not always on one node


def test_placement_with_more_nodes_per_az_uses_distinct_nodes():
    azs = [(f"az-{c}", [f"{c}{j}" for j in range(5)]) for c in "abc"]
    for i in range(200):
        nodes = place(f"{i:032x}", azs, 6)
        assert len(set(nodes)) == 6


def test_topology_refuses_an_az_holding_more_than_m():
    doc = config.default_doc()
    doc["erasure"] = {"k": 5, "m": 1}
    with pytest.raises(config.TopologyError):
        config.parse(doc)


def test_default_topology():
    t = config.load(None, data_dir="/tmp/x")
    assert [az.name for az in t.azs] == ["az-a", "az-b", "az-c"]
    assert len(t.nodes) == 6 and t.frontend.port == 9000
    assert t.credentials == {"minis3admin": "minis3secret"}
    assert len({n.data_dir for n in t.nodes}) == 6


@settings(max_examples=30, deadline=None)
@given(size=st.integers(1, 300_000), lost=st.sets(st.integers(0, 5), max_size=2))
def test_codec_decodes_from_any_k_fragments(size, lost):
    codec = Codec(4, 2)
    seg = os.urandom(size)
    frags = codec.encode(seg)
    assert len(frags) == 6
    assert codec.decode([f for i, f in enumerate(frags) if i not in lost]) == seg


# ------------------------------------------------------------------ handoff placement


from minis3.ec.placement import NotEnoughNodes, handoff  # noqa: E402

AZS6 = [("az-a", ["a1", "a2"]), ("az-b", ["b1", "b2"]), ("az-c", ["c1", "c2"])]
NODE_AZ = {n: az for az, nodes in AZS6 for n in nodes}


def test_handoff_changes_nothing_when_all_up():
    pref = place("obj1", AZS6, 6)
    assert handoff("obj1", pref, NODE_AZ, set(NODE_AZ), 2) == pref


def test_handoff_one_node_down_moves_to_an_unused_node():
    for oid in (f"o{i}" for i in range(50)):
        pref = place(oid, AZS6, 6)
        up = set(NODE_AZ) - {"b1"}
        got = handoff(oid, pref, NODE_AZ, up, 2)
        assert "b1" not in got and len(got) == 6
        assert max(Counter(got).values()) <= 2
        assert [g for g, p in zip(got, pref) if p != "b1"] == [p for p in pref if p != "b1"]


def test_handoff_whole_az_down_keeps_every_fragment_on_a_live_node_at_most_m_each():
    for oid in (f"o{i}" for i in range(50)):
        pref = place(oid, AZS6, 6)
        up = {"a1", "a2", "c1", "c2"}
        got = handoff(oid, pref, NODE_AZ, up, 2)
        assert set(got) <= up and max(Counter(got).values()) <= 2
        # losing any one more node leaves at least k=4 fragments
        assert all(sum(1 for g in got if g != lost) >= 4 for lost in up)


def test_handoff_refuses_when_too_few_nodes():
    pref = place("x", AZS6, 6)
    with pytest.raises(NotEnoughNodes):
        handoff("x", pref, NODE_AZ, {"a1", "c1"}, 2)


def test_free_base_port_keeps_every_listener_out_of_the_ephemeral_range():
    # A listener in the ephemeral range can be taken by a client's own source port
    # while it is down (loopback self-connect): CI failed that way once.
    eph_lo, eph_hi = local._ephemeral_range()
    for _ in range(20):
        base = config.free_base_port()
        doc = config.default_doc(base)
        ports = [base, *(base + 10 + i for i in range(3)),
                 *(n["port"] for az in doc["az"] for n in az["nodes"]),
                 *(az["meta"]["port"] for az in doc["az"])]
        assert not any(eph_lo <= p <= eph_hi for p in ports), (base, ports)
