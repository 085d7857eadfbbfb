"""The console's live charts, as arithmetic: no I/O, unit-tested alone
(tests/unit/test_console_series.py). ``console/live.py`` scrapes the
processes once a second and feeds each scrape to :class:`Series`, which
turns it into one chart point.

A scrape is a :class:`Scrape`: the counters each process exposes on its
Prometheus page (keyed by process, so that each one's restart is seen on its
own), and a few gauges. Counters only ever grow while their process lives,
so every chart line is a *difference* between two scrapes:

* **request rate** per S3 operation (PutObject, GetObject, …: the
  ``operation`` label of the frontends' ``minis3_requests`` counter, summed
  over its methods and statuses; "-" for requests refused before their
  operation was known): the increase over the last ``RATE_WINDOW_S``
  seconds, divided by those seconds;
* **p50 and p99 latency** per operation: the increase of each bucket of the
  frontends' ``minis3_request_seconds`` histogram over the last
  ``LATENCY_WINDOW_S`` seconds, then Prometheus' ``histogram_quantile``
  (find the bucket the rank falls in, interpolate linearly inside it); none
  when no request of that kind finished in the window;
* **which operations get a line** (:func:`chart_operations`): operations
  appear as they are used, and a legend stays readable only so long, so
  each point names the rate chart's lines (every operation seen over the
  history while ``RATE_LINES`` fit, else the busiest ones and "other", the
  rest summed) and the latency chart's (the ``LATENCY_OPERATIONS`` busiest);
* **bytes in and out per AZ**: the increase of the storage nodes'
  ``minis3_storage_bytes_written`` and ``_read`` counters, summed over the
  AZ's nodes, per second over ``RATE_WINDOW_S``;
* **fragments not at full redundancy**, two ways the console can see at once:
  the fragments on storage nodes that are down now (each node's count of its
  files, asked every few seconds and kept current in between with its
  ``minis3_storage_fragments_written`` and ``_deleted`` counters), and the fragments the frontends handed off to another node
  (``minis3_fragments_handed_off``) less those the scrubber has moved home
  (``minis3_scrub_fragments_rebuilt{why="handoff"}``); plus the scrubber's own
  count of objects not at full redundancy after its last pass;
* **the scrubber's repairs**: fragments rebuilt and moved home per second, and
  the running pass's progress.

A counter that went down belongs to a process that restarted: its increase is
its new value (as Prometheus' ``rate`` does). A process missing from either
scrape adds nothing to that second. Memory is bounded: ``HISTORY_S`` seconds
of points, and the per-second increases of the last ``LATENCY_WINDOW_S``.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

#: The operations a learner meets first, in the order the charts list them (any other follows, by name).
COMMON_OPERATIONS = ("PutObject", "GetObject", "HeadObject", "DeleteObject", "ListObjectsV2",
                     "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload")
NO_OPERATION = "-"         # a request refused before its operation was known (frontend/app.py's NO_OPERATION)
OTHER = "other"            # the rate chart's line for the operations that have none of their own
RATE_LINES = 8             # the rate chart's lines at most (an "other" line among them)
LATENCY_OPERATIONS = 4     # the latency chart's operations (two lines each: p50, p99)
RATE_WINDOW_S = 5          # request rates and bytes per second: the increase over this many seconds
LATENCY_WINDOW_S = 10      # p50/p99: the requests that finished in this many seconds
HISTORY_S = 300            # what a page sees when it opens: the last five minutes
INTERVAL_S = 1.0           # one scrape a second
GAP_S = 10.0               # a scrape this long after the last one starts afresh (the sampler had stopped)

Key = tuple                # ("req", process, operation), ("lat", process, operation, le), ("in", node), ...


@dataclass
class Scrape:
    """What one round of scraping saw at time ``t`` (Unix seconds)."""
    t: float
    counters: dict[Key, float] = field(default_factory=dict)
    nodes_up: dict[str, bool] = field(default_factory=dict)        # node id → answered this round
    node_fragments: dict[str, int] = field(default_factory=dict)   # node id → fragment files (when asked)
    not_full_objects: int | None = None       # the scrubber's last finished pass (None: no pass, or no answer)
    running_pass: dict | None = None          # {"id", "phase", "done", "total"} of the pass running now


# -- reading Prometheus pages ------------------------------------------------------------
def _samples(text: str):
    for fam in text_string_to_metric_families(text):
        yield from fam.samples


def frontend_counters(process: str, text: str) -> dict[Key, float]:
    """A frontend's page: requests per S3 operation (over every method and
    status), its latency histogram's buckets per operation (over every
    method), and the fragments it handed off."""
    out: dict[Key, float] = {}
    for s in _samples(text):
        if s.name == "minis3_requests_total":
            k = ("req", process, s.labels.get("operation", NO_OPERATION))
            out[k] = out.get(k, 0.0) + s.value
        elif s.name == "minis3_request_seconds_bucket":
            k = ("lat", process, s.labels.get("operation", NO_OPERATION), float(s.labels["le"]))
            out[k] = out.get(k, 0.0) + s.value
        elif s.name == "minis3_fragments_handed_off_total":
            out[("handoff", process)] = s.value
    return out


def node_counters(node: str, text: str) -> dict[Key, float]:
    """A storage node's page: fragment bytes stored (in) and served (out), and
    fragment files written and removed (to keep its count of files current)."""
    names = {"minis3_storage_bytes_written_total": "in", "minis3_storage_bytes_read_total": "out",
             "minis3_storage_fragments_written_total": "files+", "minis3_storage_fragments_deleted_total": "files-"}
    return {(names[s.name], node): s.value for s in _samples(text) if s.name in names}


def scrubber_counters(text: str) -> dict[Key, float]:
    """The scrubber's page: fragments it wrote, moved home (a handed-off
    fragment back on its home node) apart from rebuilt (made anew from k others)."""
    out = {("moved", "scrubber"): 0.0, ("rebuilt", "scrubber"): 0.0}
    for s in _samples(text):
        if s.name == "minis3_scrub_fragments_rebuilt_total":
            k = ("moved" if s.labels.get("why") == "handoff" else "rebuilt", "scrubber")
            out[k] += s.value
    return out


def scrubber_status(st: dict | None) -> tuple[int | None, dict | None]:
    """(objects not at full redundancy after the last pass, the running pass's progress) from its /status."""
    if not st:
        return None, None
    last, cur = st.get("last_pass"), st.get("running")
    running = cur and {"id": cur.get("id"), "phase": cur.get("phase"), "done": cur.get("keys_done", 0),
                       "total": cur.get("keys_total", 0)}
    return (last or {}).get("not_full"), running


# -- the arithmetic ----------------------------------------------------------------------
def increase(prev: dict[Key, float], cur: dict[Key, float]) -> dict[Key, float]:
    """How much each counter grew between two scrapes. A counter lower than
    before was reset (its process restarted): it grew by its new value. A
    counter missing from either scrape is left out."""
    out = {}
    for k, v in cur.items():
        before = prev.get(k)
        if before is not None:
            out[k] = v - before if v >= before else v
    return out


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus' estimate of quantile ``q`` from cumulative bucket counts
    ``[(upper bound, count), …]`` (the last bound +Inf): the bucket where the
    rank ``q × total`` falls, and a straight line inside it (from 0 for the
    first bucket). A rank in the +Inf bucket answers the highest finite bound.
    None without observations."""
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lo, below = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return lo
            if count == below:
                return le
            return lo + (le - lo) * (rank - below) / (count - below)
        lo, below = le, count
    return lo


def _display_order(op: str) -> tuple:
    """The common operations first, in their order; then the others by name; "-" last."""
    if op in COMMON_OPERATIONS:
        return (0, COMMON_OPERATIONS.index(op), op)
    return (2 if op == NO_OPERATION else 1, 0, op)


def chart_operations(volume: dict[str, float]) -> dict[str, list[str]]:
    """Which operations get a line, from how busy each was over the history
    (``volume``: any measure that grows with its requests): on the rate chart
    all of them while ``RATE_LINES`` fit, else the ``RATE_LINES - 1`` busiest
    and ``OTHER`` (the rest, summed); on the latency chart the
    ``LATENCY_OPERATIONS`` busiest (not "-": refusals say nothing of how long
    an operation takes). Listed in :func:`_display_order`, so that a line
    keeps its place (and colour) while the busiest ones trade places."""
    busiest = sorted((op for op, v in volume.items() if v > 0), key=lambda op: (-volume[op], op))
    rate = busiest if len(busiest) <= RATE_LINES else busiest[:RATE_LINES - 1]
    latency = [op for op in busiest if op != NO_OPERATION][:LATENCY_OPERATIONS]
    return {"rate": sorted(rate, key=_display_order) + ([OTHER] if len(rate) < len(busiest) else []),
            "latency": sorted(latency, key=_display_order)}


def _sum_by(inc: dict[Key, float], kind: str, group) -> dict:
    out: dict = {}
    for k, v in inc.items():
        if k[0] == kind:
            g = group(k)
            out[g] = out.get(g, 0.0) + v
    return out


class Series:
    """Feed it scrapes in time order (:meth:`feed`); each one after the first
    gives a chart point, kept in a ring of ``HISTORY_S`` seconds."""

    def __init__(self, node_az: dict[str, str], azs: list[str], history_s: float = HISTORY_S,
                 interval_s: float = INTERVAL_S):
        self.node_az, self.azs = node_az, azs
        self.interval_s = interval_s
        self.points: deque[dict] = deque(maxlen=max(1, int(history_s / interval_s)))
        self.prev: Scrape | None = None
        self.recent: deque[tuple[float, float, dict[Key, float]]] = deque()   # (from, to, increase)
        self.fragments: dict[str, float] = {}      # node id → its fragment files (counted, then kept current)

    def feed(self, s: Scrape) -> dict | None:
        """The chart point for scrape ``s`` (None for the first, or one out of order)."""
        prev = self.prev
        if prev is not None and s.t <= prev.t:
            return None
        self.prev = s
        inc = increase(prev.counters, s.counters) if prev is not None else {}
        # A node's files: its last count, plus those it wrote, less those it removed since.
        for k, v in inc.items():
            if k[0] in ("files+", "files-") and k[1] in self.fragments:
                self.fragments[k[1]] = max(0.0, self.fragments[k[1]] + (v if k[0] == "files+" else -v))
        self.fragments.update(s.node_fragments)
        if prev is None or s.t - prev.t > GAP_S:
            self.recent.clear()
            return None
        self.recent.append((prev.t, s.t, inc))
        while self.recent and self.recent[0][1] <= s.t - LATENCY_WINDOW_S:
            self.recent.popleft()
        pt = self.point(s)
        self.points.append(pt)
        pt["ops"] = chart_operations(self.volume())
        return pt

    def volume(self) -> dict[str, float]:
        """How busy each operation was over the points kept: the sum of its
        request rate over them (a point a second: about its requests)."""
        out: dict[str, float] = {}
        for p in self.points:
            for op, r in p["rate"].items():
                out[op] = out.get(op, 0.0) + r
        return out

    def _window(self, t: float, seconds: float) -> tuple[dict[Key, float], float]:
        """The summed increases of the scrape intervals that end in the last
        ``seconds``, and the time those intervals span."""
        total: dict[Key, float] = {}
        start = t
        for since, until, inc in self.recent:
            if until <= t - seconds:
                continue
            start = min(start, since)
            for k, v in inc.items():
                total[k] = total.get(k, 0.0) + v
        return total, max(t - start, 1e-9)

    def point(self, s: Scrape) -> dict:
        inc, span = self._window(s.t, RATE_WINDOW_S)
        req = _sum_by(inc, "req", lambda k: k[2])
        bytes_in = _sum_by(inc, "in", lambda k: self.node_az.get(k[1]))
        bytes_out = _sum_by(inc, "out", lambda k: self.node_az.get(k[1]))
        lat_inc, _ = self._window(s.t, LATENCY_WINDOW_S)
        by_op: dict[str, list[tuple[float, float]]] = {}
        for (op, le), c in _sum_by(lat_inc, "lat", lambda k: (k[2], k[3])).items():
            by_op.setdefault(op, []).append((le, c))
        p50, p99 = {}, {}
        for op, b in by_op.items():
            for out, q in ((p50, 0.5), (p99, 0.99)):
                v = histogram_quantile(q, b)
                if v is not None:                 # no request of it finished in the window: no value
                    out[op] = round(v * 1000, 2)
        c = s.counters
        handed = sum(v for k, v in c.items() if k[0] == "handoff")
        moved = c.get(("moved", "scrubber"))
        down = [n for n, up in s.nodes_up.items() if not up]
        return {
            "t": round(s.t, 3),
            # Only the operations with requests in the window (any other: 0); "ops" is added by feed().
            "rate": {op: round(n / span, 2) for op, n in sorted(req.items()) if n > 0},
            "p50": p50, "p99": p99,
            "in": {az: round(bytes_in.get(az, 0.0) / span) for az in self.azs},
            "out": {az: round(bytes_out.get(az, 0.0) / span) for az in self.azs},
            "on_down_nodes": round(sum(self.fragments.get(n, 0) for n in down)),
            "nodes_down": len(down),
            # None: the scrubber did not answer (its counters are needed for the difference).
            "handed_off": None if moved is None else max(0, round(handed - moved)),
            "not_full_objects": s.not_full_objects,
            "rebuilt": round(inc.get(("rebuilt", "scrubber"), 0.0) / span, 2),
            "moved_home": round(inc.get(("moved", "scrubber"), 0.0) / span, 2),
            "pass": s.running_pass,
        }
