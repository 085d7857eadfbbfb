"""Every minis3 listener's connections, up to the moment a request reaches its handler.

The S3 port (``frontend/app.py``) installs it with S3's XML errors; the
internal services (``rpc/http.internal_app``) and the console with aiohttp's
plain-text ones: each gets the head's timeout and the per-address cap.

aiohttp parses each connection's bytes, with the limits set here
(``PARSER_LIMITS``); this module adds what aiohttp lacks:

* **A request-header timeout**: a request's head (request line and headers)
  must be whole within ``HEADER_TIMEOUT_S`` of its first byte (of the
  connection's opening, for its first request), as nginx's
  ``client_header_timeout``. Past it: S3's 400 RequestTimeout, and the
  connection is closed (closed without a word when not one byte came). A
  slowloris sending its headers a byte at a time is let go; between two
  requests on a kept-alive connection, aiohttp's keep-alive timeout applies.
* **At most** ``MAX_HEADS_PER_CLIENT`` **connections from one address sending
  a head at once** (``MINIS3_MAX_REQUESTS_PER_CLIENT``, the same number as its
  requests in flight): past it, 503 SlowDown and closed, so one address cannot
  hold every socket of the process with heads it never finishes.
* **S3's limits on a head**: a header section (every header line) of at most
  8 KiB (S3's 400 RequestHeaderSectionTooLarge, ``MaxSizeAllowed`` 8192); a
  head still incomplete past the request line's limit plus that is refused
  before more of it is read.
* **S3's XML for whatever aiohttp's parser refuses** (an unknown method, a
  malformed request line or header, a duplicated Content-Length or Host, too
  many headers), with a request id; the log gets one WARNING line for it,
  rate-limited (``rpc.logs.MalformedRequests``), never a traceback.

``install`` puts this on an application whatever runs it (``web.run_app``, an
``AppRunner`` with TLS, aiohttp's test server).
"""
from __future__ import annotations

import asyncio
import os
import re
import uuid
from typing import Callable

import prometheus_client
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, BadHttpMethod, InvalidURLError, LineTooLong
from aiohttp.streams import EMPTY_PAYLOAD
from aiohttp.web_protocol import RequestHandler, _ErrInfo

from ..core import errors as E

#: A request's head must be whole this long after its first byte (MINIS3_HEADER_TIMEOUT_S).
HEADER_TIMEOUT_S = float(os.environ.get("MINIS3_HEADER_TIMEOUT_S", "20"))
#: Connections from one address still sending a head; past it, 503 SlowDown.
MAX_HEADS_PER_CLIENT = int(os.environ.get("MINIS3_MAX_REQUESTS_PER_CLIENT", "256"))
#: S3's limit on a request's header section: every header line, name, value and line ends.
MAX_HEADER_SECTION = 8192
#: The request line: a key of 1,024 bytes percent-encoded is 3 KiB, and a listing
#: may carry a prefix, a marker and a delimiter as long.
MAX_REQUEST_LINE = 16384
#: aiohttp's own default; 8 KiB of headers leave room for more only if each is tiny.
MAX_HEADERS = 128
#: aiohttp's parser limits (make_app's handler_args): one header field can be
#: no longer than the whole section may be.
PARSER_LIMITS = {"max_line_size": MAX_REQUEST_LINE, "max_field_size": MAX_HEADER_SECTION,
                 "max_headers": MAX_HEADERS}
#: An incomplete head longer than this is refused before the rest is read.
MAX_HEAD_BYTES = MAX_REQUEST_LINE + MAX_HEADER_SECTION + 2

REFUSED = prometheus_client.Counter("minis3_http_refused", "Requests answered before the S3 handler saw them "
                                    "(malformed, too large, too slow, too many at once), by S3 error code",
                                    ["code"])

Render = Callable[..., web.Response]      # app.error_response


class Refused(BadHttpMessage):
    """A request this module refuses, with the S3 error it is answered with (an
    HttpProcessingError, so that the log's filter makes it one WARNING line)."""

    def __init__(self, error: E.S3Error, why: str):
        super().__init__(f"{error.code}: {why}")
        self.error = error


def s3_error(status: int, exc: BaseException | None) -> E.S3Error:
    """What S3 answers to a request refused before minis3's handler saw it."""
    if isinstance(exc, Refused):
        return exc.error
    if isinstance(exc, BadHttpMethod) and _METHOD.search(exc.message):
        return E.MethodNotAllowed()               # a method S3 has not (else garbage: BadRequest)
    if isinstance(exc, LineTooLong):
        if str(exc.args[1]) == str(MAX_REQUEST_LINE):      # the request line's limit (else a header's)
            return E.InvalidURI(f"The request line is longer than {MAX_REQUEST_LINE} bytes.")
        return header_section_too_large()
    if isinstance(exc, BadHttpMessage) and exc.message == "Too many headers received":
        return header_section_too_large()
    if isinstance(exc, InvalidURLError):
        return E.InvalidURI()
    if status < 500:
        return E.BadRequest("An error occurred when parsing the HTTP request.")
    return E.InternalError()


#: A request line as aiohttp's error quotes it, when it starts with a method: a token, then a space.
_METHOD = re.compile(r"""b['"][!#$%&'*+.^_`|~0-9A-Za-z-]+ """)


def header_section_too_large() -> E.S3Error:
    return E.RequestHeaderSectionTooLarge(MaxSizeAllowed=str(MAX_HEADER_SECTION))


def header_section_size(raw_headers) -> int:
    """Bytes of the header lines as sent: name, ": ", value, CRLF."""
    return sum(len(k) + len(v) + 4 for k, v in raw_headers)


class S3Connection(RequestHandler):
    """aiohttp's connection handler, with the head's timeout and limits and S3's
    answers to what its parser refuses (module docstring)."""

    __slots__ = ("_heads", "_render", "_addr", "_in_head", "_head_deadline", "_head_timer", "_head_bytes",
                 "_counted", "_refused", "_last_payload")

    def __init__(self, manager: "_Server", **kwargs):
        super().__init__(manager, **kwargs)
        self._heads, self._render = manager.heads, manager.render
        self._addr = "?"
        self._in_head = self._counted = self._refused = False
        self._head_deadline = 0.0
        # One timer at a time, re-armed only when it fires early (as aiohttp's
        # keep-alive timer): no timer made and cancelled for every request.
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._last_payload = None                 # the body of the latest request whose head was read

    # -- the head: timer, size, count ---------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        self._addr = str(peer[0]) if isinstance(peer, (tuple, list)) and peer else "?"
        over = self._heads.get(self._addr, 0) >= MAX_HEADS_PER_CLIENT
        self._start_head()
        if over:
            self.refuse(E.SlowDown(), f"more than {MAX_HEADS_PER_CLIENT} connections from one address "
                                      "sending a request head")

    def connection_lost(self, exc: BaseException | None) -> None:
        self._end_head()
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        self._last_payload = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused or self._force_close or self._close:
            return
        if self._upgraded:                       # a WebSocket's frames (rpc/channel.py), not a request head
            super().data_received(data)
            return
        if not self._in_head and data and (self._last_payload is None or self._last_payload.is_eof()):
            self._start_head()                   # the first byte of the next request
        if not self._in_head:                    # a body: the handler's to read (and time)
            super().data_received(data)
            return
        count = self._request_count
        super().data_received(data)
        if self._refused:
            return
        if self._request_count == count:         # still in the head
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self.refuse(header_section_too_large(), f"a request head of more than {MAX_HEAD_BYTES} bytes")
            return
        self._end_head()
        messages = self._messages
        for i in range(max(0, len(messages) - (self._request_count - count)), len(messages)):
            msg = messages[i][0]
            if not isinstance(msg, _ErrInfo) and header_section_size(msg.raw_headers) > MAX_HEADER_SECTION:
                err = header_section_too_large()
                messages[i] = (_ErrInfo(status=err.status, exc=Refused(err, "header section of more than "
                                        f"{MAX_HEADER_SECTION} bytes"), message=err.message), EMPTY_PAYLOAD)
                self._refused = True             # its body, if any, is not read: the connection closes
        self._last_payload = messages[-1][1] if messages else None

    def _start_head(self) -> None:
        self._in_head, self._head_bytes = True, 0
        self._head_deadline = self._loop.time() + HEADER_TIMEOUT_S
        if self._head_timer is None:
            self._head_timer = self._loop.call_at(self._head_deadline, self._head_timed_out)
        if not self._counted:
            self._counted = True
            self._heads[self._addr] = self._heads.get(self._addr, 0) + 1

    def _end_head(self) -> None:
        self._in_head = False
        if self._counted:
            self._counted = False
            if self._heads.get(self._addr, 0) > 1:
                self._heads[self._addr] -= 1
            else:
                self._heads.pop(self._addr, None)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._in_head or self.transport is None or self._refused:
            return                               # no head on its way: the next one arms the timer
        if self._loop.time() < self._head_deadline:          # a later head than the one it was set for
            self._head_timer = self._loop.call_at(self._head_deadline, self._head_timed_out)
            return
        if self._head_bytes == 0 and not self._messages:
            self._end_head()
            self.force_close()                   # not one byte: nobody to answer
            return
        self.refuse(E.RequestTimeout(), f"request head not complete after {HEADER_TIMEOUT_S:g} s")

    def refuse(self, err: E.S3Error, why: str) -> None:
        """Answer ``err`` after the requests already read, then close: stop
        reading, and queue an error in place of the next request."""
        if self._refused:
            return
        self._refused = True
        self._end_head()
        self._messages.append((_ErrInfo(status=err.status, exc=Refused(err, why), message=err.message),
                               EMPTY_PAYLOAD))
        self._request_count += 1
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def finish_response(self, request: web.BaseRequest, resp: web.StreamResponse,
                              start_time: float | None) -> tuple[web.StreamResponse, bool]:
        sent = await super().finish_response(request, resp, start_time)
        if request.get(_CLOSE):
            self.force_close()                   # answered: no lingering read of the body given up on
        return sent

    # -- S3's answers -------------------------------------------------------------------
    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """aiohttp's answer to what its parser refused (or a handler raised), as
        S3's XML error with a request id; the connection is then closed.
        (Without a ``render``, aiohttp's own plain-text answer.)"""
        if self._render is None:
            return super().handle_error(request, status, exc, message)
        # As aiohttp: a WARNING line for a malformed request (rpc.logs'
        # filter), an ERROR with its traceback for anything else.
        self.log_exception("Error handling request from %s", request.remote, exc_info=exc)
        if request.writer.output_size > 0:
            raise ConnectionError("Response is sent already, cannot send another response with the error message")
        err = s3_error(status, exc)
        request_id = uuid.uuid4().hex[:16].upper()
        resp = self._render(err, request_id, resource=None)
        resp.headers["x-amz-request-id"] = resp.headers["x-amz-id-2"] = request_id
        resp.headers["Server"] = "minis3"
        resp.force_close()
        REFUSED.labels(err.code).inc()
        return resp


_CLOSE = "minis3.close_when_answered"


def close_when_answered(request: web.BaseRequest, resp: web.StreamResponse) -> None:
    """Close the connection once ``resp`` is sent, without reading the rest of
    the request's body: aiohttp would read (and drop) it for up to 10 s more
    first, holding the socket and the request. For a body given up on: a
    stalled upload's RequestTimeout."""
    resp.force_close()
    request[_CLOSE] = True


class _Server(web.Server):
    """aiohttp's server (the protocol factory), making S3Connections."""
    heads: dict[str, int]
    render: Render

    def __call__(self) -> S3Connection:
        return S3Connection(self, loop=self._loop, **self._kwargs)


def install(app: web.Application, render: Render | None = None) -> None:
    """Serve ``app``'s connections with :class:`S3Connection`, whatever runner
    serves it: wraps the application's server factory, the one place every
    aiohttp runner gets its protocol from. ``render``: how an S3 error becomes
    a response (``app.error_response``); None keeps aiohttp's plain text, for
    a listener that is not S3's."""
    make_handler = app._make_handler

    def _make_handler(**kwargs) -> web.Server:
        server = make_handler(**kwargs)
        server.__class__ = _Server
        server.heads, server.render = {}, render
        return server

    app._make_handler = _make_handler
