"""The cached partition map: requests go where the map says, and a 421's newer map is adopted."""
from __future__ import annotations

from minis3.meta.replica import Replica
from minis3.meta.pmap import PartitionMap
from minis3.meta.index_router import IndexRouter


def router() -> IndexRouter:
    homes = [Replica(None, f"http://{az}", f"meta-{az}", az) for az in ("a", "b", "c")]
    extras = [Replica(None, "http://a2", "meta-a-2", "a")]
    r = IndexRouter(homes, extras)
    r.checked = float("inf")              # no background refresh in a test without a loop
    return r


def test_without_a_map_every_key_goes_to_the_home_processes():
    r = router()
    assert [x.name for x in r.replicas_for("b/k")] == ["meta-a", "meta-b", "meta-c"]


def test_a_newer_map_routes_the_moved_range_and_an_older_one_is_ignored():
    r = router()
    m1 = PartitionMap.initial(["g", "n"], {"a": "meta-a", "b": "meta-b", "c": "meta-c"})
    m2 = m1.move("p001", "a", "meta-a-2", reason="asked", at_ms=1)
    assert r.learn(m2.doc()) and r.version == 2
    assert not r.learn(m1.doc()) and not r.learn(None) and not r.learn({"bad": 1})
    assert [x.name for x in r.replicas_for("h/k")] == ["meta-a-2", "meta-b", "meta-c"]
    assert [x.name for x in r.replicas_for("b/k")] == ["meta-a", "meta-b", "meta-c"]
    assert r.replica_in("a", "m/z").name == "meta-a-2" and r.replica_in("a", "n").name == "meta-a"
