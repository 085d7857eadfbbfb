"""A malformed request is one WARNING line, rate-limited; other errors keep
their traceback."""
from __future__ import annotations

import logging

from aiohttp.http_exceptions import BadHttpMessage, LineTooLong

from minis3.rpc.logs import MalformedRequests


def _record(exc: BaseException, msg: str = "Error handling request from %s") -> logging.LogRecord:
    try:
        raise exc
    except BaseException:
        import sys
        return logging.LogRecord("aiohttp.server", logging.ERROR, __file__, 1, msg, ("10.0.0.9",), sys.exc_info())


class Clock:
    t = 0.0

    def __call__(self):
        return self.t


def test_one_warning_line_without_traceback():
    f = MalformedRequests()
    r = _record(LineTooLong(b"x" * 10, 8190))
    assert f.filter(r)
    line = logging.Formatter("%(levelname)s %(message)s").format(r)
    assert line.startswith("WARNING malformed request from 10.0.0.9: LineTooLong") and "\n" not in line


def test_at_most_n_a_minute_then_says_how_many_were_left_out():
    clock = Clock()
    f = MalformedRequests(per_minute=3, clock=clock)
    assert [f.filter(_record(BadHttpMessage("bad"))) for _ in range(5)] == [True, True, True, False, False]
    clock.t = 61
    r = _record(BadHttpMessage("bad"))
    assert f.filter(r) and "(2 more not logged)" in r.getMessage()


def test_a_real_bug_keeps_its_traceback():
    f = MalformedRequests()
    r = _record(KeyError("boom"))
    assert f.filter(r) and r.levelno == logging.ERROR and r.exc_info is not None
