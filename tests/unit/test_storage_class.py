"""Storage classes as placement (ec/storage_class.py): pure functions."""
from __future__ import annotations

from collections import Counter

import pytest

from minis3.core import errors as E
from minis3.ec import storage_class as SC
from minis3.ec.placement import NotEnoughNodes, handoff
from minis3.scrub import plan as P

AZS = [("az-a", ["a1", "a2"]), ("az-b", ["b1", "b2"]), ("az-c", ["c1", "c2"])]
NODE_AZ = {n: az for az, nodes in AZS for n in nodes}
ALL = set(NODE_AZ)


def test_parse_accepts_s3_s_names_and_refuses_the_rest():
    assert SC.parse(None) == "STANDARD"
    for name in ("STANDARD", "REDUCED_REDUNDANCY", "ONEZONE_IA", "STANDARD_IA", "INTELLIGENT_TIERING",
                 "GLACIER", "DEEP_ARCHIVE", "GLACIER_IR"):
        assert SC.parse(name) == name
    for bad in ("", "standard", "FOO", "OUTPOSTS", "SNOW", "EXPRESS_ONEZONE", "FSX_OPENZFS", "FSX_ONTAP"):
        with pytest.raises(E.InvalidStorageClass) as e:
            SC.parse(bad)
        assert e.value.status == 400 and e.value.code == "InvalidStorageClass"


def test_records_keep_the_class_only_when_not_standard():
    assert SC.record_field("STANDARD") == {} and SC.of({}) == "STANDARD"
    assert SC.of(SC.record_field("ONEZONE_IA")) == "ONEZONE_IA"


def test_scheme_of_each_class():
    assert SC.scheme("STANDARD", 4, 2) == (4, 2, False)
    assert SC.scheme("GLACIER", 4, 2) == (4, 2, False)           # recorded, placed like STANDARD
    assert SC.scheme("REDUCED_REDUNDANCY", 4, 2) == (4, 1, False)
    assert SC.scheme("REDUCED_REDUNDANCY", 4, 1) == (4, 1, False)
    assert SC.scheme("ONEZONE_IA", 4, 2) == (4, 2, True)


def test_one_zone_is_chosen_by_id_among_whole_azs():
    zones = Counter(SC.zone_for(f"obj{i}", AZS, ALL) for i in range(300))
    assert set(zones) == {"az-a", "az-b", "az-c"} and min(zones.values()) > 60
    assert SC.zone_for("x", AZS, ALL) == SC.zone_for("x", AZS, ALL)
    # An AZ with a node down is not chosen while another is whole.
    assert {SC.zone_for(f"obj{i}", AZS, ALL - {"b1"}) for i in range(100)} == {"az-a", "az-c"}
    assert SC.zone_for("x", AZS, set()) in {"az-a", "az-b", "az-c"}        # none whole: any


def test_home_of_a_one_zone_object_is_its_zone_and_its_cap_what_the_zone_needs():
    ec = {"id": "abc", "k": 4, "m": 2, "nodes": [None] * 6, "zone": "az-c"}
    home = SC.home(ec, AZS)
    assert {NODE_AZ[n] for n in home} == {"az-c"} and Counter(home) == {"c1": 3, "c2": 3}
    assert SC.max_per_node(ec, AZS) == 3
    three = [("az-a", ["a1", "a2", "a3"])]
    assert SC.max_per_node(dict(ec, zone="az-a"), three) == 2                # m is enough there
    std = {"id": "abc", "k": 4, "m": 2, "nodes": [None] * 6}
    assert Counter(NODE_AZ[n] for n in SC.home(std, AZS)) == {"az-a": 2, "az-b": 2, "az-c": 2}
    assert SC.max_per_node(std, AZS) == 2
    rrs = {"id": "abc", "k": 4, "m": 1, "nodes": [None] * 5}
    assert len(set(SC.home(rrs, AZS))) == 5 and SC.max_per_node(rrs, AZS) == 1


def test_handoff_within_the_zone_keeps_a_one_zone_object_there():
    ec = {"id": "abc", "k": 4, "m": 2, "nodes": [None] * 6, "zone": "az-c"}
    zone_up = {"c1"}                                                          # c2 down
    # c2 down: c1 alone cannot take 6 fragments at 3 a node, and no node of another AZ is offered.
    with pytest.raises(NotEnoughNodes):
        handoff("abc", SC.home(ec, AZS), NODE_AZ, zone_up, max_per_node=SC.max_per_node(ec, AZS))


def test_describe():
    assert SC.describe({"inline": "eA=="}) == "STANDARD (inline: the bytes are in the metadata replicas)"
    rec = {"storage_class": "ONEZONE_IA", "ec": {"k": 4, "m": 2, "zone": "az-b"}}
    assert SC.describe(rec) == "ONEZONE_IA: EC 4+2, all in az-b"
    assert SC.describe({"ec": {"k": 4, "m": 2}}) == "STANDARD: EC 4+2, over every AZ"
    assert SC.describe({"storage_class": "REDUCED_REDUNDANCY", "parts": [{"ec": {"k": 4, "m": 1}}]}) == \
        "REDUCED_REDUNDANCY: EC 4+1, over every AZ"


def test_the_scrub_plan_rebuilds_a_one_zone_object_in_its_zone():
    ec = {"id": "abc", "k": 4, "m": 2, "zone": "az-c"}
    ec["nodes"] = SC.home(dict(ec, nodes=[None] * 6), AZS)
    home = SC.home(ec, AZS)
    held = lambda node, oid, idx: idx != 1                                    # noqa: E731 - fragment 1 lost
    zone_up = {n for n in ALL if NODE_AZ[n] == "az-c"}
    # With the zone's cap: one fix, at home, nothing else moves.
    pl = P.plan_object(ec, home, NODE_AZ, zone_up, held, cap=SC.max_per_node(ec, AZS))
    assert pl.problem is None and [(f.index, f.target) for f in pl.fixes] == [(1, home[1])]
    assert pl.final == ec["nodes"]
    # With the plain cap m = 2 it could not be placed (3 fragments a node).
    assert P.plan_object(ec, home, NODE_AZ, zone_up, held).problem is not None


def test_a_request_with_no_class_gets_the_default_given():
    assert SC.parse(None) == "STANDARD"
    assert SC.parse(None, "ONEZONE_IA") == "ONEZONE_IA"
    assert SC.parse("STANDARD", "ONEZONE_IA") == "STANDARD"        # a class named wins


def test_the_topologys_storage_class_table(tmp_path):
    import tomllib

    from minis3 import config
    text = config.local_toml(9000, tmp_path, storage_class={"default": "REDUCED_REDUNDANCY",
                                                              "buckets": {"logs.eu-1": "ONEZONE_IA"}})
    topo = config.parse(tomllib.loads(text))
    assert topo.storage_class.for_bucket("logs.eu-1") == "ONEZONE_IA"   # a dotted name is one key
    assert topo.storage_class.for_bucket("other") == "REDUCED_REDUNDANCY"
    assert config.parse(config.default_doc()).storage_class.for_bucket("x") == "STANDARD"
    for bad in ({"default": "standard"}, {"buckets": {"b": "EXPRESS_ONEZONE"}}, {"defaults": "STANDARD"},
                {"buckets": "x"}, {"buckets": [1]}, {"buckets": 5}):
        with pytest.raises(config.TopologyError, match="storage_class"):
            config.parse(dict(config.default_doc(), storage_class=bad))
