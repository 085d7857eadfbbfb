"""The pure half of `minis3 inspect`: URLs, versions, cells and verdicts."""
from __future__ import annotations

import pytest

from minis3.cluster import where
from minis3.cluster.inspect import CORRUPT, VERIFIED, health_cell, hexdump, parse_s3_url, verdict, version_of


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
