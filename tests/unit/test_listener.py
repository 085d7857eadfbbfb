"""The S3 port's connections (rpc/listener.py): a request-header timeout,
a cap on connections per address still sending a head, S3's limit on the
header section, and S3's XML for whatever aiohttp's HTTP parser refuses.
Against a real aiohttp server on loopback, with raw sockets (a client library
would refuse to send most of these)."""
from __future__ import annotations

import asyncio
import logging
import re
import time

import pytest
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, BadHttpMethod, LineTooLong

from minis3.rpc.logs import MalformedRequests
from minis3.rpc import listener
from minis3.frontend.app import error_response


async def _echo(request: web.Request) -> web.Response:
    body = await request.read()
    return web.Response(text=f"{request.method} {request.path} {len(body)}")


@pytest.fixture
async def port():
    app = web.Application(handler_args=listener.PARSER_LIMITS)
    app.router.add_route("*", "/{tail:.*}", _echo)
    listener.install(app, error_response)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield runner.addresses[0][1]
    await runner.cleanup()


async def _exchange(port: int, *parts: bytes, pause: float = 0.0, src: str = "127.0.0.1",
                    timeout: float = 5.0) -> bytes:
    """Send the parts (``pause`` s apart, until the server answers), and read
    until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0))

    async def answer() -> bytes:
        got = b""
        try:
            while chunk := await reader.read(65536):
                got += chunk
        except ConnectionError:
            pass
        return got
    reading = asyncio.ensure_future(answer())
    try:
        for i, part in enumerate(parts):
            if i and pause:
                await asyncio.sleep(pause)
            if reading.done():
                break
            writer.write(part)
        return await asyncio.wait_for(reading, timeout)
    finally:
        writer.close()


def _error(raw: bytes) -> tuple[int, str, str]:
    """(status, S3 code, request id) of an S3 XML error response; checks its shape."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    headers = {k.lower(): v for k, _, v in (line.partition(b": ") for line in head.split(b"\r\n")[1:])}
    assert headers[b"content-type"].startswith(b"application/xml"), raw[:300]
    request_id = headers[b"x-amz-request-id"].decode()
    assert body.startswith(b"<?xml") and f"<RequestId>{request_id}</RequestId>".encode() in body, body
    return status, re.search(rb"<Code>(\w+)</Code>", body).group(1).decode(), request_id


HOST = b"Host: s3.test\r\n"
CASES = [
    ("an unknown method", b"FOO / HTTP/1.1\r\n" + HOST + b"\r\n", 405, "MethodNotAllowed"),
    ("garbage", b"\x00\x01\x02\xff\r\n\r\n", 400, "BadRequest"),
    ("no request target", b"GET\r\n\r\n", 400, "BadRequest"),
    ("a header line of 9,000 bytes", b"GET / HTTP/1.1\r\n" + HOST + b"X-A: " + b"a" * 9000 + b"\r\n\r\n",
     400, "RequestHeaderSectionTooLarge"),
    ("a header section of 9,900 bytes in small lines",
     b"GET / HTTP/1.1\r\n" + HOST + b"".join(b"X-%02d: %s\r\n" % (i, b"b" * 100) for i in range(90)) + b"\r\n",
     400, "RequestHeaderSectionTooLarge"),
    ("200 headers", b"GET / HTTP/1.1\r\n" + HOST + b"".join(b"X-%d: 1\r\n" % i for i in range(200)) + b"\r\n",
     400, "RequestHeaderSectionTooLarge"),
    ("a request line of 17,000 bytes", b"GET /" + b"u" * 17000 + b" HTTP/1.1\r\n" + HOST + b"\r\n",
     400, "InvalidURI"),
    ("two Content-Lengths", b"PUT /b/k HTTP/1.1\r\n" + HOST + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab",
     400, "BadRequest"),
    ("a Content-Length that is no number", b"PUT /b/k HTTP/1.1\r\n" + HOST + b"Content-Length: 1e3\r\n\r\n",
     400, "BadRequest"),
    ("a negative Content-Length", b"PUT /b/k HTTP/1.1\r\n" + HOST + b"Content-Length: -1\r\n\r\n",
     400, "BadRequest"),
    ("two Hosts", b"GET / HTTP/1.1\r\n" + HOST + b"Host: other\r\n\r\n", 400, "BadRequest"),
    ("no Host in HTTP/1.1", b"GET / HTTP/1.1\r\n\r\n", 400, "BadRequest"),
    ("a NUL in a header", b"GET / HTTP/1.1\r\n" + HOST + b"X-A: a\x00b\r\n\r\n", 400, "BadRequest"),
    ("a header without a colon", b"GET / HTTP/1.1\r\n" + HOST + b"X-A\r\n\r\n", 400, "BadRequest"),
    ("Content-Length with chunked", b"PUT /b/k HTTP/1.1\r\n" + HOST +
     b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400, "BadRequest"),
    ("a bad chunk size", b"PUT /b/k HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400,
     "BadRequest"),
]


@pytest.mark.parametrize("name,raw,status,code", CASES, ids=[c[0] for c in CASES])
async def test_what_the_parser_refuses_is_answered_in_s3s_xml(port, name, raw, status, code):
    assert _error(await _exchange(port, raw))[:2] == (status, code)


async def test_a_header_section_of_exactly_8_KiB_passes(port):
    def head(size: int) -> bytes:
        filler = size - len(HOST) - len(b"X-Fill: \r\n")
        return b"GET /x HTTP/1.1\r\n" + HOST + b"X-Fill: " + b"f" * filler + b"\r\nConnection: close\r\n\r\n"
    # "Connection: close\r\n" is 19 bytes of the section too.
    assert (await _exchange(port, head(8192 - 19))).startswith(b"HTTP/1.1 200")
    assert _error(await _exchange(port, head(8193 - 19)))[:2] == (400, "RequestHeaderSectionTooLarge")


async def test_a_head_sent_slowly_is_answered_request_timeout(port, monkeypatch):
    monkeypatch.setattr(listener, "HEADER_TIMEOUT_S", 0.4)
    t0 = time.monotonic()
    raw = await _exchange(port, *[bytes([b]) for b in b"GET / HTTP/1.1\r\nHost: s"], pause=0.05)
    assert _error(raw)[:2] == (400, "RequestTimeout") and 0.4 <= time.monotonic() - t0 < 1.5


async def test_a_connection_that_sends_nothing_is_closed_without_a_word(port, monkeypatch):
    monkeypatch.setattr(listener, "HEADER_TIMEOUT_S", 0.3)
    t0 = time.monotonic()
    assert await _exchange(port) == b"" and time.monotonic() - t0 < 1.5


async def test_the_timer_is_for_heads_not_for_idle_keepalive_or_bodies(port, monkeypatch):
    """The head's timer starts with a request's first byte: a kept-alive
    connection may wait between requests (aiohttp's keep-alive timeout), and
    a body may take longer than the head's timeout (the handler times it)."""
    monkeypatch.setattr(listener, "HEADER_TIMEOUT_S", 0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /one HTTP/1.1\r\n" + HOST + b"\r\n")
        assert (await reader.readuntil(b"GET /one 0")).startswith(b"HTTP/1.1 200")
        await asyncio.sleep(0.6)                                 # idle, kept alive
        writer.write(b"PUT /two HTTP/1.1\r\n" + HOST + b"Content-Length: 6\r\n\r\nab")
        for piece in (b"cd", b"ef"):
            await asyncio.sleep(0.25)                            # the body: 0.5 s in all
            writer.write(piece)
        assert (await reader.readuntil(b"PUT /two 6")).startswith(b"HTTP/1.1 200")
        writer.write(b"GET /three HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n")    # pipelined after a body
        assert b"GET /three 0" in await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


async def test_pipelined_requests_are_each_answered(port):
    raw = await _exchange(port, b"GET /a HTTP/1.1\r\n" + HOST + b"\r\nPUT /b HTTP/1.1\r\n" + HOST +
                          b"Content-Length: 2\r\n\r\nokGET /c HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n")
    assert [m.group(0) for m in re.finditer(rb"(GET|PUT) /\w \d", raw)] == [b"GET /a 0", b"PUT /b 2", b"GET /c 0"]


async def test_one_address_cannot_hold_every_connection_with_unfinished_heads(port, monkeypatch):
    monkeypatch.setattr(listener, "MAX_HEADS_PER_CLIENT", 3)
    held = [await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.2", 0)) for _ in range(3)]
    try:
        for _, w in held:
            w.write(b"GET / HTTP/1.1\r\n")                      # heads never finished
        await asyncio.sleep(0.1)
        assert _error(await _exchange(port, src="127.0.0.2"))[:2] == (503, "SlowDown")
        # Another address is served; so is this one once a head is finished.
        assert (await _exchange(port, b"GET /x HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n",
                                src="127.0.0.3")).startswith(b"HTTP/1.1 200")
        held[0][1].write(HOST + b"Connection: close\r\n\r\n")
        assert (await held[0][0].read()).startswith(b"HTTP/1.1 200")
        assert (await _exchange(port, b"GET /x HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n",
                                src="127.0.0.2")).startswith(b"HTTP/1.1 200")
    finally:
        for _, w in held:
            w.close()


async def test_one_warning_line_per_refused_request_never_a_traceback(port, caplog):
    server_log = logging.getLogger("aiohttp.server")
    f = MalformedRequests()
    server_log.addFilter(f)
    try:
        with caplog.at_level(logging.DEBUG, logger="aiohttp.server"):
            for raw in (b"FOO / HTTP/1.1\r\n" + HOST + b"\r\n", b"GET / HTTP/1.1\r\n\r\n"):
                await _exchange(port, raw)
    finally:
        server_log.removeFilter(f)
    records = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert [(r.levelname, r.exc_info, r.getMessage().split(":")[0]) for r in records] == \
        [("WARNING", None, "malformed request from 127.0.0.1")] * 2


def test_s3_codes_for_aiohttp_errors():
    method = "Invalid method encountered:\n\n  b'{}'\n      ^"
    assert listener.s3_error(400, BadHttpMethod(error=method.format("FOO / HTTP/1.1"))).code == "MethodNotAllowed"
    assert listener.s3_error(400, BadHttpMethod(error=method.format("\\x16\\x03\\x01"))).code == "BadRequest"
    assert listener.s3_error(400, LineTooLong(b"x", listener.MAX_REQUEST_LINE)).code == "InvalidURI"
    assert listener.s3_error(400, LineTooLong(b"x", str(listener.MAX_HEADER_SECTION))).code == \
        "RequestHeaderSectionTooLarge"
    assert listener.s3_error(400, BadHttpMessage("Too many headers received")).code == "RequestHeaderSectionTooLarge"
    assert listener.s3_error(400, BadHttpMessage("anything else")).code == "BadRequest"
    assert listener.s3_error(500, KeyError("bug")).code == "InternalError"


async def test_internal_listeners_let_a_slow_head_go_too(monkeypatch):
    """rpc/http.internal_app (storage nodes, metadata replicas, the scrubber,
    DNS) installs the same connection handler, with plain-text refusals."""
    from minis3.rpc.http import internal_app
    monkeypatch.setattr(listener, "HEADER_TIMEOUT_S", 0.4)
    app = internal_app("k")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        t0 = time.monotonic()
        raw = await _exchange(runner.addresses[0][1], *[bytes([b]) for b in b"GET /status HTTP/1.1\r\nHost: s"],
                              pause=0.05)
        assert raw.startswith(b"HTTP/1.") and b" 400 " in raw.split(b"\r\n")[0], raw[:200]
        assert 0.4 <= time.monotonic() - t0 < 1.5
    finally:
        await runner.cleanup()
