"""Recording spans in a process, and passing the trace along (the I/O shell around core/trace).

Every minis3 process has one :data:`TRACER` (named after the process by
:func:`configure`). It keeps the spans of its most recent traces in memory,
bounded (``MAX_TRACES`` traces, ``MAX_SPANS`` spans each), and serves them at
``GET /trace?id=TRACE_ID`` (the frontend at ``/_minis3/trace``), which is how
``minis3 trace`` gathers one request's spans from every process.

* :meth:`Tracer.request` opens the root span of an S3 request (the
  frontend's): a full trace when the sampler picks it (at most
  ``MINIS3_TRACE_RATE`` requests a second, default 20, and every request
  while someone watches: for a minute after any ``/trace`` call, which
  ``minis3 trace`` and the console make), otherwise only the root span,
  marked ``sampled: false``, so the request still shows in ``--last``,
  ``--follow`` and the console's feed at the cost of one small object;
* :meth:`Tracer.span` opens a span as a child of the current one (a
  contextvar, so spans opened by tasks a step starts hang under that step);
* :func:`client_hooks` adds, to every internal HTTP call made inside a trace,
  a client span (peer process, bytes, status, latency) and the
  ``traceparent`` header, so the receiving process's spans join the trace;
* :func:`middleware` opens the server span of an internal request that
  carries ``traceparent``; requests without it record nothing.
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import time
from collections import OrderedDict, deque

from aiohttp import web

from ..core.trace import HEADER, RateSampler, Span, new_span_id, parse_traceparent, traceparent

log = logging.getLogger("minis3.tracing")

#: MINIS3_TRACE_OFF=1 records no span (to measure what tracing costs).
_OFF = os.environ.get("MINIS3_TRACE_OFF") == "1"
MAX_TRACES = 2000
MAX_SPANS = 400
#: Full traces a second the frontend records ("all": every request).
_RATE = os.environ.get("MINIS3_TRACE_RATE", "20")
#: How long a look at the traces (``GET /trace``) turns full tracing on.
WATCH_S = 60.0

#: (trace id, span id) of the span the running code belongs to.
CURRENT: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("minis3_span", default=None)


class Tracer:
    def __init__(self, service: str = "minis3"):
        self.service = service
        self.traces: OrderedDict[str, list[Span]] = OrderedDict()
        self.recent: deque[dict] = deque(maxlen=200)       # finished root spans (the frontend's requests)
        self.sampler = RateSampler(None if _RATE == "all" else float(_RATE))

    def watch(self, seconds: float = WATCH_S) -> None:
        """Trace every request for the next ``seconds``: someone is looking."""
        self.sampler.watch(time.monotonic(), seconds)

    def record(self, span: Span) -> None:
        spans = self.traces.get(span.trace_id)
        if spans is None:
            spans = self.traces[span.trace_id] = []
            while len(self.traces) > MAX_TRACES:
                self.traces.popitem(last=False)
        if len(spans) < MAX_SPANS:
            spans.append(span)
        if span.parent_span_id is None:
            self.recent.append({"trace_id": span.trace_id, "name": span.name, "start_ns": span.start_ns,
                                "duration_ms": round(span.duration_ms, 3), "status": span.status,
                                "attributes": span.attributes})

    def start(self, name: str, *, trace_id: str | None = None, parent: str | None = None,
              **attributes) -> Span | None:
        """A new span under ``parent`` (default: the current span); None outside a trace."""
        if _OFF:
            return None
        if trace_id is None:
            cur = CURRENT.get()
            if cur is None:
                return None
            trace_id, parent = cur
        return Span(trace_id, new_span_id(), parent, name, self.service, time.time_ns(), attributes=attributes)

    def end(self, span: Span | None, outcome: str = "OK", **attributes) -> None:
        if span is None:
            return
        span.end_ns = time.time_ns()
        span.status = "ERROR" if "ERROR" in (outcome, span.status) else "OK"
        span.attributes.update(attributes)
        self.record(span)

    @contextlib.contextmanager
    def span(self, name: str, *, trace_id: str | None = None, parent: str | None = None, **attributes):
        """A span around a block (a no-op outside a trace); the block's spans are its children."""
        s = self.start(name, trace_id=trace_id, parent=parent, **attributes)
        if s is None:
            yield Span("", "", None, name, self.service, 0) if trace_id is not None else None
            return
        with self._around(s, current=True):
            yield s

    @contextlib.contextmanager
    def _around(self, s: Span, *, current: bool):
        """Record ``s`` when the block ends (ERROR if it raised); with
        ``current``, the spans the block opens are its children."""
        token = CURRENT.set((s.trace_id, s.span_id)) if current else None
        status = "OK"
        try:
            yield s
        except BaseException as exc:
            status = "ERROR"
            s.attributes.setdefault("error", exc.__class__.__name__)
            raise
        finally:
            if token is not None:
                CURRENT.reset(token)
            self.end(s, status)

    @contextlib.contextmanager
    def request(self, name: str, *, trace_id: str, **attributes):
        """The root span of one S3 request: a full trace (every step, in
        every process) when the sampler picks it, else this span alone."""
        if _OFF or self.sampler.sample(time.monotonic()):
            with self.span(name, trace_id=trace_id, **attributes) as s:
                yield s
            return
        s = Span(trace_id, new_span_id(), None, name, self.service, time.time_ns(), attributes=attributes)
        s.attributes["sampled"] = False        # CURRENT stays unset: no step below records a span
        with self._around(s, current=False):
            yield s

    def spans(self, trace_id: str) -> list[Span]:
        return list(self.traces.get(trace_id, ()))


TRACER = Tracer()


def configure(service: str) -> Tracer:
    TRACER.service = service
    return TRACER


# ------------------------------------------------------------------ internal calls
def client_hooks(peer_names: dict[tuple[str, int], str] | None = None):
    """aiohttp TraceConfig callbacks: (on_request_start, on_request_end, on_request_exception)."""
    names = peer_names or {}

    async def on_start(session, ctx, params):
        cur = CURRENT.get()
        if cur is None:
            return
        try:
            _start(ctx, params)
        except Exception:                    # tracing never fails a request
            log.debug("could not start a client span", exc_info=True)

    def _start(ctx, params):
        u = params.url
        peer = names.get((u.host, u.port), f"{u.host}:{u.port}")
        first = "/" + u.path.lstrip("/").split("/", 1)[0]        # /fragment, /v, /index: the rest is ids
        span = TRACER.start(f"{params.method} {first}{'/…' if len(u.path) > len(first) else ''} → {peer}",
                            peer=peer, path=u.path)
        length = params.headers.get("Content-Length")
        if length:
            span.attributes["bytes"] = int(length)
        params.headers[HEADER] = traceparent(span.trace_id, span.span_id)
        ctx.minis3_span = span

    async def on_end(session, ctx, params):
        span = getattr(ctx, "minis3_span", None)
        if span is not None:
            TRACER.end(span, "OK" if params.response.status < 500 else "ERROR", status=params.response.status)

    async def on_exception(session, ctx, params):
        span = getattr(ctx, "minis3_span", None)
        if span is not None:
            TRACER.end(span, "ERROR", error=params.exception.__class__.__name__)
    return on_start, on_end, on_exception


def middleware():
    """The server span of an internal request that carries ``traceparent``."""
    @web.middleware
    async def mw(request: web.Request, handler):
        tp = parse_traceparent(request.headers.get(HEADER))
        if tp is None:
            return await handler(request)
        info = request.match_info.route.resource
        name = info.canonical if info is not None else request.path     # /fragment/{oid}/{idx}
        with TRACER.span(f"{request.method} {name}", trace_id=tp[0], parent=tp[1], path=request.path) as s:
            resp = await handler(request)
            s.attributes["status"] = resp.status
            if resp.status >= 500:
                s.status = "ERROR"
            return resp
    return mw


async def trace_handler(request: web.Request) -> web.Response:
    """``GET /trace?id=TRACE_ID``: this process's spans of one trace;
    ``GET /trace?recent=N``: its most recent finished root spans. Either
    turns full tracing on for the next minute (someone is looking)."""
    TRACER.watch()
    if "recent" in request.query:
        n = max(1, min(200, int(request.query.get("recent") or 20)))
        return web.json_response({"service": TRACER.service, "recent": list(TRACER.recent)[-n:]})
    tid = request.query.get("id", "").lower()
    return web.json_response({"service": TRACER.service, "spans": [s.doc() for s in TRACER.spans(tid)]})
