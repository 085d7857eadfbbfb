"""The live charts' arithmetic (minis3/console/series.py): rates from counters
that may reset, quantiles from histogram buckets, what is not at full
redundancy, and a bounded history. Prometheus pages are made by
prometheus_client itself, with the metric names the processes use."""
from __future__ import annotations

import math

import prometheus_client
import pytest

from minis3.console import series as S

INF = math.inf


# -- quantiles -----------------------------------------------------------------------------
def test_histogram_quantile_interpolates_inside_the_bucket_the_rank_falls_in():
    b = [(0.1, 10), (0.2, 20), (INF, 20)]
    assert S.histogram_quantile(0.5, b) == pytest.approx(0.1)        # rank 10: the first bucket's top
    assert S.histogram_quantile(0.75, b) == pytest.approx(0.15)      # rank 15: halfway through (0.1, 0.2]
    assert S.histogram_quantile(0.25, b) == pytest.approx(0.05)      # the first bucket starts at 0
    assert S.histogram_quantile(0.99, list(reversed(b))) == pytest.approx(0.198)   # order does not matter


def test_a_rank_in_the_infinite_bucket_answers_the_highest_finite_bound():
    assert S.histogram_quantile(0.99, [(0.1, 1), (1.0, 1), (INF, 10)]) == 1.0


def test_no_observation_no_quantile():
    assert S.histogram_quantile(0.5, [(0.1, 0), (INF, 0)]) is None
    assert S.histogram_quantile(0.5, []) is None


def test_empty_buckets_below_the_rank_are_skipped():
    # Everything in (0.5, 1]: p50 is inside that bucket, not in the empty ones below it.
    b = [(0.1, 0), (0.5, 0), (1.0, 4), (INF, 4)]
    assert S.histogram_quantile(0.5, b) == pytest.approx(0.75)


# -- counters ------------------------------------------------------------------------------
def test_increase_counts_a_reset_counter_from_zero_and_skips_what_one_side_lacks():
    prev = {("req", "fe", "GetObject"): 10.0, ("in", "a1"): 500.0, ("in", "b1"): 7.0}
    cur = {("req", "fe", "GetObject"): 15.0, ("in", "a1"): 20.0, ("in", "c1"): 9.0}
    assert S.increase(prev, cur) == {("req", "fe", "GetObject"): 5.0, ("in", "a1"): 20.0}


def _frontend_page(gets: int, puts: int, put_latencies: list[float], handed_off: int,
                   others: dict[str, int] | None = None) -> str:
    """A frontend's page, with its metrics' labels (frontend/app.py's REQUESTS and LATENCY)."""
    r = prometheus_client.CollectorRegistry()
    req = prometheus_client.Counter("minis3_requests", "d", ["method", "status", "operation"], registry=r)
    lat = prometheus_client.Histogram("minis3_request_seconds", "d", ["method", "operation"], registry=r,
                                      buckets=(.001, .005, .01, .05, .1, .5, 1))
    ho = prometheus_client.Counter("minis3_fragments_handed_off", "d", registry=r)
    req.labels("GET", "200", "GetObject").inc(gets - 1)
    req.labels("GET", "404", "GetObject").inc(1)
    req.labels("PUT", "200", "PutObject").inc(puts)
    for v in put_latencies:
        lat.labels("PUT", "PutObject").observe(v)
    for op, n in (others or {}).items():
        req.labels("GET", "200", op).inc(n)
    ho.inc(handed_off)
    return prometheus_client.generate_latest(r).decode()


def _node_page(written: int, read: int, files_written: int = 0, files_deleted: int = 0) -> str:
    r = prometheus_client.CollectorRegistry()
    prometheus_client.Counter("minis3_storage_bytes_written", "d", registry=r).inc(written)
    prometheus_client.Counter("minis3_storage_bytes_read", "d", registry=r).inc(read)
    prometheus_client.Counter("minis3_storage_fragments_written", "d", registry=r).inc(files_written)
    prometheus_client.Counter("minis3_storage_fragments_deleted", "d", registry=r).inc(files_deleted)
    prometheus_client.Counter("minis3_storage_fragments_read", "d", registry=r).inc(9)
    return prometheus_client.generate_latest(r).decode()


def _scrubber_page(rebuilt: int, moved: int) -> str:
    r = prometheus_client.CollectorRegistry()
    c = prometheus_client.Counter("minis3_scrub_fragments_rebuilt", "d", ["why"], registry=r)
    c.labels("missing").inc(rebuilt)
    c.labels("handoff").inc(moved)
    return prometheus_client.generate_latest(r).decode()


def test_the_pages_are_read_into_counters_keyed_by_process():
    fe = S.frontend_counters("http://fe", _frontend_page(gets=4, puts=2, put_latencies=[0.003, 0.2], handed_off=6))
    assert fe[("req", "http://fe", "GetObject")] == 4.0              # every status summed
    assert fe[("req", "http://fe", "PutObject")] == 2.0
    assert fe[("lat", "http://fe", "PutObject", 0.005)] == 1.0 and fe[("lat", "http://fe", "PutObject", INF)] == 2.0
    assert fe[("handoff", "http://fe")] == 6.0
    assert S.node_counters("a1", _node_page(1000, 300, 5, 2)) == {("in", "a1"): 1000.0, ("out", "a1"): 300.0,
                                                                  ("files+", "a1"): 5.0, ("files-", "a1"): 2.0}
    assert S.scrubber_counters(_scrubber_page(rebuilt=3, moved=5)) == {("rebuilt", "scrubber"): 3.0,
                                                                      ("moved", "scrubber"): 5.0}


def test_the_scrubbers_status_gives_its_last_count_and_the_running_pass():
    st = {"last_pass": {"not_full": 7}, "running": {"id": 4, "phase": "walking the metadata", "keys_done": 10,
                                                    "keys_total": 40}}
    assert S.scrubber_status(st) == (7, {"id": 4, "phase": "walking the metadata", "done": 10, "total": 40})
    assert S.scrubber_status(None) == (None, None)
    assert S.scrubber_status({"last_pass": None, "running": None}) == (None, None)


def test_a_page_counts_an_operation_over_every_method_and_refusals_apart():
    r = prometheus_client.CollectorRegistry()
    req = prometheus_client.Counter("minis3_requests", "d", ["method", "status", "operation"], registry=r)
    lat = prometheus_client.Histogram("minis3_request_seconds", "d", ["method", "operation"], registry=r,
                                      buckets=(.01, 1))
    req.labels("POST", "200", "DeleteObjects").inc(2)
    req.labels("PUT", "403", "-").inc(3)                  # refused before their operation was known
    req.labels("GET", "405", "-").inc(1)
    lat.labels("PUT", "-").observe(0.002)
    lat.labels("GET", "-").observe(0.5)
    fe = S.frontend_counters("fe", prometheus_client.generate_latest(r).decode())
    assert fe[("req", "fe", "-")] == 4.0 and fe[("req", "fe", "DeleteObjects")] == 2.0
    assert fe[("lat", "fe", "-", 0.01)] == 1.0 and fe[("lat", "fe", "-", INF)] == 2.0     # both methods summed


def test_every_operation_gets_a_line_while_they_fit_then_the_busiest_and_other():
    few = {"GetObject": 50, "ListObjectsV2": 1, "PutObject": 20, "-": 3, "CreateBucket": 1, "DeleteObject": 0}
    assert S.chart_operations(few) == {
        # the common operations in their order, then the others by name, "-" last; unused ones not at all
        "rate": ["PutObject", "GetObject", "ListObjectsV2", "CreateBucket", "-"],
        "latency": ["PutObject", "GetObject", "ListObjectsV2", "CreateBucket"],   # the 4 busiest (not "-")
    }
    many = {op: 100 - i for i, op in enumerate(["HeadObject", "GetObject", "PutObject", "UploadPart", "ListParts",
                                                "CopyObject", "DeleteObject", "GetObjectTagging", "ListBuckets"])}
    got = S.chart_operations(many)
    assert len(got["rate"]) == S.RATE_LINES and got["rate"][-1] == S.OTHER
    assert got["rate"] == ["PutObject", "GetObject", "HeadObject", "DeleteObject", "UploadPart", "CopyObject",
                           "ListParts", "other"]                   # the 7 busiest; the last 2 summed in "other"
    assert got["latency"] == ["PutObject", "GetObject", "HeadObject", "UploadPart"]
    assert S.chart_operations({}) == {"rate": [], "latency": []}


def test_the_charts_operations_are_the_busiest_over_the_history():
    ser = S.Series(NODE_AZ, ["az-a", "az-b"], history_s=20)
    others: dict[str, int] = {}

    def feed(t, **more):
        for op, n in more.items():
            others[op] = others.get(op, 0) + n
        s = S.Scrape(t=float(t))
        s.counters.update(S.frontend_counters("fe", _frontend_page(1 + t, 0, [], 0, dict(others))))
        return ser.feed(s)
    feed(0)
    ops = [f"Op{i}" for i in range(9)]
    for t in range(1, 11):                          # 9 other operations, Op0 the busiest, Op8 the least busy
        pt = feed(t, **{op: 9 - i for i, op in enumerate(ops)})
    assert pt["ops"]["rate"] == ["Op0", "Op1", "Op2", "Op3", "Op4", "Op5", "Op6", S.OTHER]   # GETs: 1/s, summed
    assert pt["rate"]["Op8"] == pytest.approx(1.0) and pt["rate"]["GetObject"] == pytest.approx(1.0)
    for t in range(11, 41):                         # Op8 alone from now: after the history (20 s) it leads
        pt = feed(t, Op8=20)
    assert pt["ops"] == {"rate": ["GetObject", "Op8"], "latency": ["GetObject", "Op8"]}


# -- whole points --------------------------------------------------------------------------
NODE_AZ = {"a1": "az-a", "b1": "az-b"}


def _scrape(t, gets, put_lat, written_a, written_b=None, handed=0, moved=0, fragments=None, not_full=None):
    s = S.Scrape(t=float(t))
    s.counters.update(S.frontend_counters("fe", _frontend_page(gets, len(put_lat), put_lat, handed)))
    s.counters.update(S.node_counters("a1", _node_page(written_a, 0)))
    s.nodes_up = {"a1": True, "b1": written_b is not None}
    if written_b is not None:
        s.counters.update(S.node_counters("b1", _node_page(written_b, 0)))
    s.counters.update(S.scrubber_counters(_scrubber_page(0, moved)))
    s.node_fragments = fragments or {}
    s.not_full_objects = not_full
    return s


def test_rates_and_quantiles_over_their_windows():
    ser = S.Series(NODE_AZ, ["az-a", "az-b"])
    assert ser.feed(_scrape(100, gets=1, put_lat=[], written_a=0, written_b=0)) is None     # the first: no point
    lat = []
    pt = None
    for i in range(1, 13):                        # 10 GETs a second; 2 PUTs a second, one fast, one slow
        lat += [0.003, 0.3]
        pt = ser.feed(_scrape(100 + i, gets=1 + 10 * i, put_lat=lat, written_a=1_000_000 * i, written_b=0))
    assert pt["t"] == 112
    assert pt["rate"] == {"GetObject": pytest.approx(10.0), "PutObject": pytest.approx(2.0)}   # unused: absent
    assert pt["in"] == {"az-a": 1_000_000, "az-b": 0}
    # Half the PUTs in (1, 5] ms, half in (100, 500] ms: p50 is the top of the fast bucket; p99 near 500 ms.
    assert pt["p50"]["PutObject"] == pytest.approx(5.0)
    assert pt["p99"]["PutObject"] == pytest.approx(100 + 400 * 0.98, rel=1e-3)
    assert "GetObject" not in pt["p50"]             # GETs without a latency observation (none in this page)
    assert pt["ops"] == {"rate": ["PutObject", "GetObject"], "latency": ["PutObject", "GetObject"]}
    assert len(ser.recent) <= S.LATENCY_WINDOW_S    # bounded: only the seconds the windows need


def test_a_restarted_node_counts_from_zero_and_a_down_one_adds_nothing():
    ser = S.Series(NODE_AZ, ["az-a", "az-b"])
    ser.feed(_scrape(0, 1, [], written_a=5_000, written_b=5_000, fragments={"a1": 10, "b1": 12}))
    for t in range(1, 6):
        ser.feed(_scrape(t, 1, [], written_a=5_000 + 1000 * t, written_b=5_000 + 1000 * t))
    down = ser.feed(_scrape(6, 1, [], written_a=11_000, written_b=None))           # b1 killed
    assert down["on_down_nodes"] == 12 and down["nodes_down"] == 1
    ser.feed(_scrape(7, 1, [], written_a=12_000, written_b=None))
    back = ser.feed(_scrape(8, 1, [], written_a=13_000, written_b=400))           # b1 back, counting from 0
    assert back["on_down_nodes"] == 0
    # Over the 5 s window (3 → 8): b1 grew by 1000 + 1000 (to 4 and 5), nothing while down, and not the
    # 400 of its first second back (it was missing the second before): 2000 / 5 s.
    assert back["in"]["az-b"] == 400
    again = ser.feed(_scrape(9, 1, [], written_a=14_000, written_b=900))
    assert again["in"]["az-b"] == 300               # (1000 at 5, 500 at 9) / 5 s
    # Restarted between two scrapes (never missed one): its counter went down, so it grew by its new value.
    reset = ser.feed(_scrape(10, 1, [], written_a=15_000, written_b=100))
    assert reset["in"]["az-b"] == 120               # (500 at 9, 100 at 10) / 5 s, never negative


def test_a_nodes_files_are_counted_now_and_then_and_kept_current_by_its_counters():
    ser = S.Series(NODE_AZ, ["az-a", "az-b"])

    def scrape(t, up=True, files_written=0, files_deleted=0, counted=None):
        s = S.Scrape(t=float(t), nodes_up={"b1": up}, node_fragments=counted or {})
        if up:
            s.counters.update(S.node_counters("b1", _node_page(0, 0, files_written, files_deleted)))
        return s
    ser.feed(scrape(0, files_written=100, counted={"b1": 40}))     # files from before this process started
    ser.feed(scrape(1, files_written=110))
    ser.feed(scrape(2, files_written=112, files_deleted=3))
    assert ser.feed(scrape(3, up=False))["on_down_nodes"] == 40 + 10 + 2 - 3
    assert ser.feed(scrape(4, files_written=1, counted={"b1": 50}))["on_down_nodes"] == 0    # back, recounted
    assert ser.fragments["b1"] == 50


def test_handed_off_fragments_wait_until_the_scrubber_moves_them_home():
    ser = S.Series(NODE_AZ, ["az-a", "az-b"])
    ser.feed(_scrape(0, 1, [], 0, None, handed=0, moved=0, fragments={"b1": 4}))
    pts = [ser.feed(_scrape(t, 1, [], 0, None, handed=2 * t, moved=0)) for t in range(1, 5)]
    assert [p["handed_off"] for p in pts] == [2, 4, 6, 8]                # two per PUT while b1 is down
    assert all(p["on_down_nodes"] == 4 for p in pts)
    p = ser.feed(_scrape(5, 1, [], 0, 0, handed=8, moved=6, not_full=3))
    assert p["handed_off"] == 2 and p["on_down_nodes"] == 0 and p["not_full_objects"] == 3
    assert p["moved_home"] == pytest.approx(6 / 5)
    s = _scrape(6, 1, [], 0, 0, handed=8)
    del s.counters[("moved", "scrubber")], s.counters[("rebuilt", "scrubber")]     # the scrubber did not answer
    assert ser.feed(s)["handed_off"] is None


def test_the_history_is_bounded_and_a_long_gap_starts_afresh():
    ser = S.Series(NODE_AZ, ["az-a", "az-b"], history_s=30)
    for t in range(100):
        ser.feed(_scrape(t, 1 + t, [], 0, 0))
    assert len(ser.points) == 30 and ser.points[-1]["t"] == 99
    assert ser.feed(_scrape(99 + S.GAP_S + 1, 1000, [], 0, 0)) is None         # the sampler had stopped
    pt = ser.feed(_scrape(99 + S.GAP_S + 2, 1003, [], 0, 0))
    assert pt["rate"]["GetObject"] == pytest.approx(3.0)       # not the requests of the gap, spread over 1 s
    assert ser.feed(_scrape(50, 5000, [], 0, 0)) is None       # out of order: ignored
