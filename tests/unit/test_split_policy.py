"""The index manager's split decisions (pure)."""
from minis3.meta.policy import SplitPolicy


def report(meta, parts):
    return {"id": meta, "partitions": [dict({"reads": 0, "writes": 0, "refused": 0, "bytes": 0}, **p) for p in parts]}


def test_split_for_keys_and_bytes_largest_first():
    pol = SplitPolicy(split_keys=1000, split_bytes=1 << 20, split_ops_per_s=0, hot_seconds=5)
    out = pol.observe(0.0, [report("m1", [{"id": "p0", "keys": 1500}, {"id": "p1", "keys": 3000},
                                          {"id": "p2", "keys": 10, "bytes": 2 << 20}, {"id": "p3", "keys": 999}]),
                            report("m2", [{"id": "p0", "keys": 900}])], {"p0", "p1", "p2", "p3"})
    assert [(d.partition, d.by) for d in out] == [("p1", "keys"), ("p2", "keys"), ("p0", "keys")]
    assert out[0].reason == "3,000 keys > 1,000" and "MiB of records" in out[1].reason


def test_hot_partition_splits_only_after_staying_hot():
    pol = SplitPolicy(split_keys=0, split_bytes=0, split_ops_per_s=100, hot_seconds=10)
    cur = {"p0"}
    assert pol.observe(0, [report("m1", [{"id": "p0", "keys": 50, "writes": 0}])], cur) == []
    assert pol.observe(5, [report("m1", [{"id": "p0", "keys": 50, "writes": 1000, "refused": 500}])], cur) == []
    assert pol.rates["p0"] == 300
    out = pol.observe(15, [report("m1", [{"id": "p0", "keys": 50, "writes": 3000, "refused": 500}])], cur)
    assert [(d.partition, d.by) for d in out] == [("p0", "load")] and "200 requests/s > 100" in out[0].reason
    # A lull resets the clock.
    pol2 = SplitPolicy(split_keys=0, split_bytes=0, split_ops_per_s=100, hot_seconds=10)
    pol2.observe(0, [report("m1", [{"id": "p0", "keys": 50}])], cur)
    pol2.observe(5, [report("m1", [{"id": "p0", "keys": 50, "reads": 1000}])], cur)
    pol2.observe(10, [report("m1", [{"id": "p0", "keys": 50, "reads": 1001}])], cur)
    assert pol2.observe(16, [report("m1", [{"id": "p0", "keys": 50, "reads": 3000}])], cur) == []


def test_partitions_not_in_the_map_and_single_keys_are_left_alone():
    pol = SplitPolicy(split_keys=10, split_bytes=0, split_ops_per_s=0, hot_seconds=1)
    assert pol.observe(0, [report("m1", [{"id": "old", "keys": 100}, {"id": "p9", "keys": 1}])], {"p9"}) == []
