"""The pure half of `minis3 inspect`: URLs, versions, cells and verdicts."""
from __future__ import annotations

import pytest

from minis3.cluster import where
from minis3.cluster.inspect import (CORRUPT, VERIFIED, health_cell, hexdump, key_entries, parse_s3_url, stored_as,
                                    verdict, version_doc, version_of, where_text)


def test_parse_s3_url():
    assert parse_s3_url("s3://b/k/with/slashes") == ("b", "k/with/slashes")
    for bad in ("b/k", "s3://b", "s3://b/", "s3:///k"):
        with pytest.raises(ValueError):
            parse_s3_url(bad)


def test_version_spells_out_the_hybrid_logical_clock():
    v = version_of({"ts": (1_700_000_000_123 << 16) | 7, "vid": "abc", "pe": 2})
    assert v["wall_ms"] == 1_700_000_000_123 and v["counter"] == 7 and v["placement_epoch"] == 2
    assert v["wall"] == "2023-11-14 22:13:20.123 UTC"


def frag(i, node, state=where.OK, home=None):
    return where.Fragment(index=i, kind="data" if i < 4 else "parity", node=node, az="az-a", home=home or node,
                          expected_size=10, size=10 if state == where.OK else None, state=state)


def test_cells_and_verdicts():
    assert health_cell(frag(0, "a1"), VERIFIED) == "a1 #0 data 10 B verified"
    assert health_cell(frag(0, "a1"), CORRUPT) == "a1 #0 data 10 B CORRUPT"
    assert health_cell(frag(5, "a1", where.MISSING), "quarantined by audit: x") == \
        "a1 #5 parity CORRUPT (quarantined by audit: x)"
    assert health_cell(frag(1, "b1", home="a2"), None) == "b1 #1 data 10 B present [handoff; home a2]"
    frs = tuple(frag(i, f"n{i}") for i in range(6))
    p = where.Placement("object", "oid", 40, 4, 2, 16, 1, ("az-a",), frs)
    assert verdict(p, {i: VERIFIED for i in range(6)}).endswith("readable (any k = 4 decode every segment); "
                                                                 "full redundancy")
    bad = {i: (CORRUPT if i < 3 else VERIFIED) for i in range(6)}
    assert "3 of 6 fragments verified; NOT READABLE" in verdict(p, bad)


def test_hexdump():
    assert hexdump(b"AB\x00") == "41 42 00" + " " * 39 + "  |AB.|"


def test_the_versions_of_one_key_from_a_listing_by_its_prefix():
    a, b, c = {"version_id": "a"}, {"version_id": "b"}, {"version_id": "c"}
    assert key_entries([("k", a, True), ("k", b, False)], "k") == ([(a, True), (b, False)], False)
    # "k/x" sorts after every version of "k": the page went past them.
    assert key_entries([("k", a, True), ("k/x", c, True)], "k") == ([(a, True)], True)
    assert key_entries([("k/x", c, True)], "k") == ([], True)


def test_a_version_listed_with_where_its_bytes_are():
    ec = {"id": "oid", "k": 4, "m": 2, "seg": 16, "nodes": [f"n{i}" for i in range(6)]}
    rec = {"ts": (1_700_000_000_123 << 16), "mtime": 1_700_000_000_123, "version_id": "7f" * 14, "size": 40,
           "etag": "e", "ec": ec}
    frs = tuple(frag(i, f"n{i}", where.UNREACHABLE if i == 5 else where.OK) for i in range(6))
    frs = tuple(where.Fragment(**{**f.__dict__, "az": "az-b" if f.index % 2 else "az-a"}) for f in frs)
    p = where.Placement("object", "oid", 40, 4, 2, 16, 1, ("az-a", "az-b"), frs)
    v = version_doc(rec, False, where.fragment_sets(rec), [p])
    assert (v["version_id"], v["latest"], v["delete_marker"], v["size"], v["stored"]) == \
        ("7f" * 14, False, False, 40, "erasure-coded")
    assert v["time"] == "2023-11-14 22:13:20.123 UTC"
    assert where_text(v) == "az-a: n0 #0, n2 #2, n4 #4; az-b: n1 #1, n3 #3, n5 #5 (node down)"
    inline = {"ts": 1 << 16, "size": 3, "inline": "YWJj"}
    v = version_doc(inline, True, where.fragment_sets(inline), [])
    assert v["version_id"] == "null" and where_text(v) == "inline in the record"
    marker = {"ts": 1 << 16, "mtime": 1, "deleted": True, "marker": True, "version_id": "ab" * 14}
    v = version_doc(marker, True)
    assert v["delete_marker"] and v["size"] is None and v["sets"] == [] and where_text(v) == "delete marker: no data"
    assert where_text(version_doc(rec, True)).startswith("(not looked up")
    assert stored_as({"parts": [{"inline": ""}]}) == "inline" and stored_as({"parts": [{"ec": ec}]}) == "multipart"
