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


def test_rate_sampler_traces_a_few_a_second_and_everything_while_watched():
    from minis3.core.trace import RateSampler
    s = RateSampler(20)
    first = sum(s.sample(100.0 + i / 1000) for i in range(1000))        # 1,000 requests in a second
    then = sum(s.sample(101.0 + i / 1000) for i in range(1000))         # and in the next
    assert 20 <= first <= 41 and 19 <= then <= 21, (first, then)        # the burst, then 20 a second
    s.watch(102.0, 60)
    assert all(s.sample(102.0 + i / 1000) for i in range(1000))          # someone looks: every request
    assert sum(s.sample(170.0 + i / 1000) for i in range(1000)) <= 41    # the look is over
    assert all(RateSampler(None).sample(float(i)) for i in range(100))   # "all"
    assert sum(RateSampler(0).sample(float(i)) for i in range(100)) == 0


def test_an_unsampled_request_records_its_root_span_alone():
    from minis3.rpc.tracing import CURRENT, Tracer
    t = Tracer("frontend")
    t.sampler.rate, t.sampler.tokens = 0.0, 0.0
    with t.request("GET /b/k", trace_id="0" * 16 + "ab" * 8, request_id="AB") as root:
        assert CURRENT.get() is None                  # no step below records a span
        assert t.start("child") is None
    assert [s.name for s in t.spans("0" * 16 + "ab" * 8)] == ["GET /b/k"]
    assert root.attributes["sampled"] is False and root.end_ns >= root.start_ns
    t.watch()
    with t.request("GET /b/k2", trace_id="0" * 16 + "cd" * 8) as root:
        assert CURRENT.get() is not None and "sampled" not in root.attributes
        with t.span("child"):
            pass
    assert len(t.spans("0" * 16 + "cd" * 8)) == 2
