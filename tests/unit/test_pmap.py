"""The partition map (pure): lookups, splits, moves, merges, split keys."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from minis3.meta.pmap import MapError, PartitionMap, choose_split_key, prefix_boundary

REPS = {"az-a": "meta-az-a", "az-b": "meta-az-b", "az-c": "meta-az-c"}


def test_initial_map_and_locate():
    m = PartitionMap.initial(("g", "n", "t"), REPS)
    assert m.version == 1 and [p.id for p in m.partitions] == ["p000", "p001", "p002", "p003"]
    assert m.locate("").id == "p000" and m.locate("f/zzz").id == "p000"
    assert m.locate("g").id == "p001" and m.locate("photos/x").id == "p002" and m.locate("zz").id == "p003"
    assert m.locate("\x00u/upload").id == "p000"
    assert [p.id for p in m.covering("h", "o")] == ["p001", "p002"]
    assert [p.id for p in m.covering("h", "n")] == ["p001"]
    assert [p.id for p in m.covering("h")] == ["p001", "p002", "p003"]


def test_split_keeps_replicas_records_the_event_and_bumps_the_version():
    m = PartitionMap.initial(("g",), REPS)
    m2 = m.split("p001", "logs/", reason="keys 120000 > 100000", at_ms=5)
    assert m2.version == 2 and [p.id for p in m2.partitions] == ["p000", "p002", "p003"]
    left, right = m2.get("p002"), m2.get("p003")
    assert (left.lo, left.hi, right.lo, right.hi) == ("g", "logs/", "logs/", None)
    assert left.replicas == right.replicas == m.get("p001").replicas and left.parent == "p001"
    assert m2.events[-1]["kind"] == "split" and m2.events[-1]["reason"] == "keys 120000 > 100000"
    assert m2.locate("logs/a").id == "p003" and m2.locate("l").id == "p002"
    with pytest.raises(MapError):
        m2.split("p002", "g", reason="x", at_ms=6)                 # not strictly inside
    with pytest.raises(MapError):
        m2.split("p001", "h", reason="x", at_ms=6)                 # gone
    assert PartitionMap.from_doc(m2.doc()) == m2


def test_move_and_merge_and_history():
    m = PartitionMap.initial((), REPS).split("p000", "m", reason="keys", at_ms=1)
    m = m.move("p002", "az-b", "meta-az-b-2", reason="balance", at_ms=2)
    assert m.get("p002").replica_in("az-b") == "meta-az-b-2" and m.get("p001").replica_in("az-b") == "meta-az-b"
    with pytest.raises(MapError):
        m.merge("p001", reason="cold", at_ms=3)                    # different replicas
    m = m.move("p002", "az-b", "meta-az-b", reason="back", at_ms=3)
    merged = m.merge("p001", reason="cold", at_ms=4)
    assert [(p.lo, p.hi) for p in merged.partitions] == [("", None)]
    j = merged.partitions[0].id
    kinds = [e["kind"] for e in merged.history_of(j)]
    assert kinds == ["split", "move", "move", "merge"]
    assert [e["kind"] for e in merged.history_of("p001")] == ["split"]
    assert [p.id for p in merged.held_by("meta-az-c")] == [j]


def test_prefix_boundary():
    assert prefix_boundary("b/logs/2024/zz", "b/logs/2025/aa") == "b/logs/2025/"
    assert prefix_boundary("b/a", "b/b") == "b/b"
    assert prefix_boundary("b/photos/1", "b/videos/1") == "b/videos/"


def test_split_key_prefers_a_folder_boundary_near_the_median():
    keys = sorted([f"b/2024/{i:04d}" for i in range(48)] + [f"b/2025/{i:04d}" for i in range(52)])
    assert choose_split_key(keys, "", None) == "b/2025/"
    flat = [f"b/k{i:05d}" for i in range(100)]
    k = choose_split_key(flat, "", None)
    assert flat[40] <= k <= flat[60]
    assert choose_split_key(["b/only"], "", None) is None
    assert choose_split_key([], "", None) is None


@given(st.lists(st.text(alphabet="ab/c", min_size=1, max_size=8), min_size=2, max_size=60, unique=True))
def test_split_key_always_splits_strictly_inside(keys):
    keys.sort()
    lo = ""
    k = choose_split_key(keys, lo, None)
    if k is None:
        return
    left = [x for x in keys if x < k]
    right = [x for x in keys if x >= k]
    assert left and right and k > lo


def test_holds_and_last_move():
    m = PartitionMap.initial(["g", "n"], {"az-a": "ma", "az-b": "mb"})
    assert m.holds("ma", "az-a", "", None) and not m.holds("ma", "az-b", "h", "i")
    m2 = m.move("p001", "az-a", "ma2", reason="asked", at_ms=5, copy_ms=4)
    assert m2.holds("ma2", "az-a", "h", "m") and not m2.holds("ma2", "az-a", "h", "o")
    assert not m2.holds("ma", "az-a", "", None) and m2.holds("ma", "az-a", "", "g")
    ev = m2.last_move("p001", "az-a")
    assert ev["from"] == "ma" and ev["to"] == "ma2" and ev["copy_ms"] == 4
    assert m2.last_move("p001", "az-b") is None and m2.locate("h").replica_in("az-a") == "ma2"
