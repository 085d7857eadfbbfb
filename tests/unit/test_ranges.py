from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from minis3.core import errors as E
from minis3.core.ranges import content_range, parse_range, unsatisfied_content_range


@pytest.mark.parametrize("header, size, expected", [
    ("bytes=0-0", 10, (0, 0)),
    ("bytes=0-9", 10, (0, 9)),
    ("bytes=2-5", 10, (2, 5)),
    ("bytes=5-100", 10, (5, 9)),        # end clamped
    ("bytes=9-", 10, (9, 9)),
    ("bytes=0-", 10, (0, 9)),
    ("bytes=-3", 10, (7, 9)),
    ("bytes=-10", 10, (0, 9)),
    ("bytes=-1000", 10, (0, 9)),        # suffix longer than object: whole object, 206
    ("bytes= 1 - 2 ", 10, (1, 2)),      # optional whitespace
    ("Bytes=1-2", 10, (1, 2)),          # unit is case-insensitive
    ("bytes=0-99999999999999999999999", 10, (0, 9)),
])
def test_satisfiable(header, size, expected):
    assert parse_range(header, size) == expected


@pytest.mark.parametrize("header", [
    None, "", "bytes", "bytes=", "bytes=-", "bytes=a-b", "bytes=1-a", "bytes=--1",
    "bytes=5-2",                        # last < first: syntactically invalid, ignored
    "bytes=0-1,3-4",                    # multiple ranges: S3 ignores the header
    "bytes=0-1,",
    "items=0-1", "0-1", "bytes 0-1", "bytes=+1-2", "bytes=1-+2", "bytes=١-٢",
    "bytes=1.5-2",
])
def test_ignored(header):
    assert parse_range(header, 10) is None


@pytest.mark.parametrize("header, size", [
    ("bytes=10-", 10), ("bytes=10-20", 10), ("bytes=11-11", 10),
    ("bytes=0-", 0), ("bytes=0-0", 0), ("bytes=0-5", 0),
    ("bytes=-0", 10), ("bytes=-0", 0),
])
def test_unsatisfiable(header, size):
    with pytest.raises(E.InvalidRange) as ei:
        parse_range(header, size)
    err = ei.value
    assert err.status == 416
    assert err.extra["ActualObjectSize"] == str(size)
    assert err.extra["RangeRequested"] == header
    assert err.headers["Content-Range"] == f"bytes */{size}"


def test_suffix_on_empty_object_is_whole_object():
    assert parse_range("bytes=-5", 0) is None


def test_content_range():
    assert content_range(0, 9, 10) == "bytes 0-9/10"
    assert unsatisfied_content_range(7) == "bytes */7"


sizes = st.integers(min_value=0, max_value=10**12)
offsets = st.integers(min_value=0, max_value=10**12 + 10)


def _check(r, size):
    start, end = r
    assert 0 <= start <= end < size


@given(size=sizes, a=offsets, b=offsets)
def test_property_first_last(size, a, b):
    assume(a <= b)
    header = f"bytes={a}-{b}"
    if a >= size:
        with pytest.raises(E.InvalidRange):
            parse_range(header, size)
        return
    r = parse_range(header, size)
    _check(r, size)
    assert r == (a, min(b, size - 1))
    assert r[1] - r[0] + 1 == min(b, size - 1) - a + 1


@given(size=sizes, a=offsets, b=offsets)
def test_property_reversed_is_ignored(size, a, b):
    assume(b < a)
    assert parse_range(f"bytes={a}-{b}", size) is None


@given(size=sizes, a=offsets)
def test_property_open_ended(size, a):
    if a >= size:
        with pytest.raises(E.InvalidRange):
            parse_range(f"bytes={a}-", size)
    else:
        assert parse_range(f"bytes={a}-", size) == (a, size - 1)


@given(size=sizes, n=offsets)
def test_property_suffix(size, n):
    header = f"bytes=-{n}"
    if n == 0:
        with pytest.raises(E.InvalidRange):
            parse_range(header, size)
    elif size == 0:
        assert parse_range(header, size) is None
    else:
        r = parse_range(header, size)
        _check(r, size)
        assert r[1] == size - 1
        assert r[1] - r[0] + 1 == min(n, size)


@given(size=sizes, header=st.text(max_size=30))
def test_property_never_crashes(size, header):
    try:
        r = parse_range(header, size)
    except E.InvalidRange as err:
        assert err.headers["Content-Range"] == f"bytes */{size}"
        return
    if r is not None:
        _check(r, size)


@given(size=sizes, ranges=st.lists(st.tuples(offsets, offsets), min_size=2, max_size=4))
def test_property_multiple_ranges_ignored(size, ranges):
    header = "bytes=" + ",".join(f"{a}-{b}" for a, b in ranges)
    assert parse_range(header, size) is None
