"""core/isodate.py: the one parser and formatter of the ISO 8601 dates in S3 documents and
headers (Object Lock's retain-until dates, lifecycle rules' Date)."""
from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings, strategies as st

from minis3.core import isodate
from minis3.core.conditions import http_date

NOW = int(dt.datetime(2026, 12, 6, 10, tzinfo=dt.timezone.utc).timestamp() * 1000)


@pytest.mark.parametrize("text, ms", [
    ("2026-12-06T10:00:00Z", NOW),
    ("2026-12-06T10:00:00.000Z", NOW),
    ("2026-12-06T10:00:00.250Z", NOW + 250),
    ("2026-12-06T10:00:00.123456Z", NOW + 123),            # botocore writes microseconds
    ("2026-12-06T11:00:00+01:00", NOW),
    ("2026-12-06T09:30:00-0030", NOW),
    (" 2026-12-06T10:00:00Z ", NOW),
    ("9999-12-31T23:59:59.999Z", isodate.LATEST_MS),
    ("9999-12-31T23:59:59.999+00:00", isodate.LATEST_MS),
    ("9999-12-31T23:59:59Z", isodate.LATEST_MS - 999),
    ("0001-01-01T00:00:00Z", isodate.EARLIEST_MS),
])
def test_what_aws_documents_parses(text, ms):
    assert isodate.parse_ms(text) == ms


@pytest.mark.parametrize("text", [
    "2026-12-06",                      # a date alone (fromisoformat took it)
    "20261206T100000Z",                # the compact form (fromisoformat took it too)
    "2026-12-06T10:00:00",             # no zone: whose local time?
    "2026-12-06 10:00:00Z",
    "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-12-06T24:00:00Z",
    "2026-12-06T10:00:00+24:00", "2026-12-06T10:00:00+01:60",
    "9999-12-31T23:00:00-01:00",       # 10000-01-01T00:00:00Z in UTC
    "9999-12-31T23:59:59-23:59",
    "9999-12-31T23:59:59-00:01",
    "0001-01-01T00:00:00+00:01",       # before year 1 in UTC
    "", "tomorrow", "٢٠٢٦-12-06T10:00:00Z",
])
def test_anything_else_is_a_value_error(text):
    with pytest.raises(ValueError):
        isodate.parse_ms(text)


def test_format_is_s3s_form_with_milliseconds():
    assert isodate.format_ms(NOW + 5) == "2026-12-06T10:00:00.005Z"
    assert isodate.format_ms(isodate.LATEST_MS) == "9999-12-31T23:59:59.999Z"


@settings(max_examples=300, deadline=None)
@given(st.text("0123456789-:TZ.+ ", max_size=40) | st.from_regex(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})", fullmatch=True))
def test_every_date_it_returns_formats_and_parses_back(text):
    """The bug this module closes: a date accepted, then a formatter's OverflowError (a 500)."""
    try:
        ms = isodate.parse_ms(text)
    except ValueError:
        return
    assert isodate.parse_ms(isodate.format_ms(ms)) == ms
    assert http_date(ms).endswith(" GMT")               # x-amz-expiration's form too
