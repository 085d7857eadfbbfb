"""Spans of a request's journey through the processes, and their waterfall. Pure.

minis3 records what each request did in every process it touched, in
OpenTelemetry's data model (without its SDK): a **trace** is one S3 request
(its ``trace_id`` is the ``x-amz-request-id``, zero-padded to OpenTelemetry's
32 hex digits); a **span** is one step (verify the signature, encode, write a
fragment to a node, fdatasync a WAL) with a start, an end, a parent and
attributes. Processes pass the trace along in W3C's ``traceparent`` header,
so a storage node's spans hang under the frontend's span for the call that
reached it.

:func:`waterfall` draws a trace's spans as a tree with one bar per span on a
shared time axis, the way tracing UIs (Jaeger, Zipkin, X-Ray) do.
"""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field

HEADER = "traceparent"          # W3C Trace Context: 00-<trace id>-<parent span id>-01


def trace_id_of(request_id: str) -> str:
    """The trace id of an S3 request id (16 hex digits): zero-padded to 32."""
    return request_id.lower().rjust(32, "0")


def request_id_of(trace_id: str) -> str:
    return trace_id.lstrip("0").upper().rjust(16, "0")


def new_span_id() -> str:
    return f"{random.getrandbits(64) or 1:016x}"          # ids, not secrets: no system call per span


def traceparent(trace_id: str, span_id: str) -> str:
    return f"00-{trace_id}-{span_id}-01"


def parse_traceparent(value: str | None) -> tuple[str, str] | None:
    """(trace id, parent span id) from a ``traceparent`` header, or None if malformed."""
    if not value:
        return None
    parts = value.strip().split("-")
    if len(parts) != 4 or len(parts[1]) != 32 or len(parts[2]) != 16:
        return None
    try:
        int(parts[1], 16), int(parts[2], 16)
    except ValueError:
        return None
    if parts[1] == "0" * 32 or parts[2] == "0" * 16:
        return None
    return parts[1], parts[2]


class RateSampler:
    """Which requests get a full trace: a token bucket of ``per_second`` full
    traces a second (bursts of up to ``per_second``), as Jaeger's
    rate-limiting sampler does, plus every request while someone watches
    (:meth:`watch`: ``minis3 trace`` and the console ask for traces).

    A learner typing commands gets every request traced; a benchmark at
    hundreds of requests a second pays for a few of them only.
    ``per_second=None``: every request. ``0``: none but watched ones."""

    def __init__(self, per_second: float | None):
        self.rate = per_second
        self.tokens = float(per_second or 0)
        self.at = 0.0
        self.watched_until = 0.0

    def watch(self, now: float, seconds: float) -> None:
        self.watched_until = max(self.watched_until, now + seconds)

    def sample(self, now: float) -> bool:
        if self.rate is None or now < self.watched_until:
            return True
        self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class Span:
    """One step, as OpenTelemetry models it (times in nanoseconds since the epoch)."""
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    service: str                      # the process (OpenTelemetry's resource service.name)
    start_ns: int
    end_ns: int = 0
    attributes: dict = field(default_factory=dict)
    status: str = "OK"                # "OK" or "ERROR"

    @property
    def duration_ms(self) -> float:
        return max(0, self.end_ns - self.start_ns) / 1e6

    def doc(self) -> dict:
        return asdict(self)

    @classmethod
    def from_doc(cls, d: dict) -> "Span":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def ordered(spans: list[Span]) -> list[tuple[int, Span]]:
    """(depth, span) in tree order: each span after its parent, siblings by start.
    A span whose parent is not among ``spans`` is a root."""
    ids = {s.span_id for s in spans}
    children: dict[str | None, list[Span]] = {}
    for s in spans:
        children.setdefault(s.parent_span_id if s.parent_span_id in ids else None, []).append(s)
    for v in children.values():
        v.sort(key=lambda s: (s.start_ns, s.span_id))
    out: list[tuple[int, Span]] = []
    stack = [(0, s) for s in reversed(children.get(None, []))]
    seen: set[str] = set()
    while stack:
        depth, s = stack.pop()
        if s.span_id in seen:
            continue
        seen.add(s.span_id)
        out.append((depth, s))
        stack += [(depth + 1, c) for c in reversed(children.get(s.span_id, []))]
    return out


#: A PUT's ``pipeline`` span: where its time went, in ms (frontend/ecwrite.StageTimes).
PIPELINE_KEYS = ("segments", "waiting_for_client", "hashing", "encoding", "behind_hashing", "behind_encoding",
                 "behind_nodes")


def _attrs(a: dict, keys=("node", "az", "bytes", "status", "partition", "replica", "code") + PIPELINE_KEYS) -> str:
    shown = [f"{k}={a[k]}" for k in keys if k in a and a[k] not in (None, "")]
    return " ".join(shown)


@dataclass(frozen=True)
class Bar:
    """A span's place in a waterfall: its depth in the tree, and where its bar
    starts and how long it is, as fractions of the whole trace's time."""
    depth: int
    span: Span
    start: float
    length: float


def layout(spans: list[Span]) -> tuple[int, int, list[Bar]]:
    """(the trace's first start in ns, its length in ns, a :class:`Bar` per
    span in tree order): what the text waterfall and the console both draw."""
    t0 = min(s.start_ns for s in spans)
    total = max(1, max(max(s.end_ns, s.start_ns) for s in spans) - t0)
    return t0, total, [Bar(d, s, (s.start_ns - t0) / total, (max(s.end_ns, s.start_ns) - s.start_ns) / total)
                       for d, s in ordered(spans)]


def waterfall(spans: list[Span], width: int = 40, name_width: int = 44) -> list[str]:
    """Lines of text: one per span, indented by depth, with its process, its
    duration and a bar placed on the trace's time axis."""
    if not spans:
        return []
    t0, total, bars = layout(spans)
    lines = [f"trace {spans[0].trace_id} (request {request_id_of(spans[0].trace_id)}): {len(spans)} spans "
             f"in {len({s.service for s in spans})} processes, {total / 1e6:.1f} ms"]
    svc_w = max(len(s.service) for s in spans)
    for bar in bars:
        s = bar.span
        a = int(bar.start * width)
        b = max(a + 1, int((bar.start + bar.length) * width))
        line = " " * a + ("█" if s.status == "OK" else "▒") * (b - a) + " " * (width - b)
        label = ("  " * bar.depth + s.name)[:name_width].ljust(name_width)
        extra = _attrs(s.attributes)
        lines.append(f"{label} {s.service.ljust(svc_w)} {s.duration_ms:8.2f} ms |{line}| "
                     f"+{(s.start_ns - t0) / 1e6:.1f}" + (f"  {extra}" if extra else "")
                     + ("  ERROR" if s.status != "OK" else ""))
    return lines
