"""ISO 8601 date-times in S3 documents and headers, parsed and written in one place.

S3 documents its dates as ISO 8601 *with a time and a zone*: Object Lock's
``x-amz-object-lock-retain-until-date`` and ``<RetainUntilDate>``, a lifecycle rule's
``<Date>`` (``2026-12-06T10:00:00Z``, ``...00.000Z``, ``...00+01:00``). Everything else
(a date alone, ``2026-01-01``; the compact ``20260101T000000Z``; a time without a zone,
which would mean the server's local time) is refused, by the caller, with the error its
operation answers (InvalidArgument for a header, MalformedXML in a document): this
module only raises ValueError.

**Bounds.** A date is kept as epoch milliseconds and written back as
``YYYY-MM-DDTHH:MM:SS.mmmZ``, and answers also carry it as an HTTP date
(``x-amz-expiration``). Both need a four-digit year: a date written with a zone can
land after 9999-12-31 in UTC (``9999-12-31T23:00:00-01:00``), which Python's datetime
cannot hold, and formatting it would fail the request with a 500 -- after a PUT
committed, say. So a date after :data:`LATEST_MS` (9999-12-31T23:59:59.999Z) or before
:data:`EARLIEST_MS` (0001-01-01T00:00:00Z) is refused here, once, and every date this
module returns formats without failing, as an ISO date and as an HTTP date. (A lifecycle
``Date`` must also be a UTC midnight, so the latest one is 9999-12-31T00:00:00Z; a
retain-until date of 9999-12-31T23:59:59Z, "for ever", stays valid, as records may hold it.)

Pure: no I/O, no clock.
"""
from __future__ import annotations

import calendar
import datetime as _dt
import re

from . import xmldoc as X

#: ``YYYY-MM-DDTHH:MM:SS``, optional fraction, then ``Z`` or ``±HH:MM`` / ``±HHMM``.
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})", re.ASCII)

#: The range a parsed date must fall in (epoch milliseconds, module doc).
EARLIEST_MS = calendar.timegm((1, 1, 1, 0, 0, 0)) * 1000
LATEST_MS = calendar.timegm((9999, 12, 31, 23, 59, 59)) * 1000 + 999


def parse_ms(text: str) -> int:
    """An ISO 8601 date-time with a zone, as epoch milliseconds (fractions past the
    millisecond are dropped); ValueError if it is not one, or falls outside
    [:data:`EARLIEST_MS`, :data:`LATEST_MS`]."""
    m = _ISO.fullmatch(text.strip())
    if not m:
        raise ValueError(f"not an ISO 8601 date-time with a zone: {text!r}")
    y, mo, d, h, mi, s, frac, zone = m.groups()
    # datetime checks the calendar (month 13, 30 February, hour 24 are ValueError).
    when = _dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s))
    ms = calendar.timegm(when.timetuple()) * 1000 + int((frac or "0")[:3].ljust(3, "0"))
    if zone != "Z":
        digits = zone[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:])
        if hours > 23 or minutes > 59:
            raise ValueError(f"not a time zone offset: {zone!r}")
        ms -= (1 if zone[0] == "+" else -1) * (hours * 60 + minutes) * 60_000
    if not EARLIEST_MS <= ms <= LATEST_MS:
        raise ValueError(f"out of the range S3 dates can be written in: {text!r}")
    return ms


def format_ms(ms: int) -> str:
    """Epoch milliseconds as S3 answers a date: ``2026-12-06T10:00:00.000Z``."""
    return X.iso8601_ms(ms)
