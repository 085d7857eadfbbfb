"""Spans: the traceparent header, tree order, and the waterfall."""
from __future__ import annotations

from minis3.core.trace import (Span, ordered, parse_traceparent, request_id_of, trace_id_of, traceparent,
                               waterfall)


def test_request_and_trace_ids_round_trip():
    tid = trace_id_of("9657A735E0CC4B83")
    assert tid == "0000000000000000" + "9657a735e0cc4b83" and request_id_of(tid) == "9657A735E0CC4B83"


def test_traceparent_is_w3c_and_malformed_ones_are_ignored():
    tid, sid = "ab" * 16, "cd" * 8
    assert traceparent(tid, sid) == f"00-{tid}-{sid}-01"
    assert parse_traceparent(traceparent(tid, sid)) == (tid, sid)
    for bad in (None, "", "00-xyz-abc-01", f"00-{'0' * 32}-{sid}-01", f"00-{tid}-{'zz' * 8}-01", f"00-{tid}-{sid}"):
        assert parse_traceparent(bad) is None


def span(sid, parent, start, end, name="s", service="frontend", **attrs):
    return Span("t" * 32, sid, parent, name, service, start, end, attrs)


def test_children_follow_their_parent_in_start_order_and_orphans_are_roots():
    spans = [span("c2", "r", 30, 40), span("r", None, 0, 100), span("c1", "r", 10, 20),
             span("g", "c1", 12, 18), span("o", "missing", 50, 60)]
    assert [(d, s.span_id) for d, s in ordered(spans)] == [(0, "r"), (1, "c1"), (2, "g"), (1, "c2"), (0, "o")]


def test_waterfall_places_bars_on_one_time_axis():
    spans = [span("r", None, 0, 10_000_000, "PUT /b/k"),
             span("w", "r", 5_000_000, 10_000_000, "write fragment 0", node="a1", az="az-a", bytes=10)]
    lines = waterfall(spans, width=10)
    assert "2 spans in 1 processes, 10.0 ms" in lines[0]
    assert "|██████████|" in lines[1]
    assert "|     █████|" in lines[2] and "node=a1 az=az-a bytes=10" in lines[2]
