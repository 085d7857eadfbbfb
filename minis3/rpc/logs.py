"""One log format for every process: time, process name, level, message."""
from __future__ import annotations

import logging
import os
import sys
import time


def setup_logging(name: str) -> None:
    level = os.environ.get("MINIS3_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(stream=sys.stderr, level=level,
                        format=f"%(asctime)s {name} %(levelname)s %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.server").addFilter(MalformedRequests())


class MalformedRequests(logging.Filter):
    """aiohttp logs every request it cannot parse (a bad request line, a header
    too long, a lying Content-Length) at ERROR with a full traceback, so anyone
    who can reach a port can fill the log. Such a record becomes one WARNING
    line, "malformed request from ADDR: REASON", at most ``per_minute`` a
    minute; the next line that passes says how many were left out. A record
    with any other error passes as it is (a real bug keeps its traceback)."""

    def __init__(self, per_minute: int = 10, clock=time.monotonic):
        super().__init__()
        self.per_minute, self.clock = per_minute, clock
        self.window_start, self.passed, self.dropped = clock(), 0, 0

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not str(record.msg).startswith("Error handling request") or not _is_malformed(exc):
            return True
        now = self.clock()
        if now - self.window_start >= 60:
            self.window_start, self.passed = now, 0
        if self.passed >= self.per_minute:
            self.dropped += 1
            return False
        self.passed += 1
        addr = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        reason = f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}".replace("\n", " ")[:300]
        record.msg, record.args = "malformed request from %s: %s%s", (
            addr, reason, f" ({self.dropped} more not logged)" if self.dropped else "")
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info, record.exc_text = None, None
        self.dropped = 0
        return True


def _is_malformed(exc: BaseException | None) -> bool:
    from aiohttp.http_exceptions import HttpProcessingError
    return isinstance(exc, HttpProcessingError)
