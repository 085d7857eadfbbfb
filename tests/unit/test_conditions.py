from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minis3.core import errors as E
from minis3.core.conditions import check_read, check_write, http_date, parse_http_date

ETAG = '"9b2cf535f27731c974343645a3985328"'
RAW = "9b2cf535f27731c974343645a3985328"
LM = 784111777_250  # Sun, 06 Nov 1994 08:49:37.250 GMT
LM_DATE = "Sun, 06 Nov 1994 08:49:37 GMT"
BEFORE = "Sun, 06 Nov 1994 08:49:36 GMT"
AFTER = "Sun, 06 Nov 1994 08:49:38 GMT"


def read(**h):
    check_read({k.replace("_", "-"): v for k, v in h.items()}, ETAG, LM)


def test_http_date():
    assert http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert http_date(LM) == LM_DATE
    assert parse_http_date(http_date(LM)) == LM // 1000


@given(st.integers(min_value=0, max_value=253402300799999))
def test_http_date_round_trip(ms):
    assert parse_http_date(http_date(ms)) == ms // 1000


@pytest.mark.parametrize("value", ["Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994",
                                   LM_DATE, "Sun, 06 Nov 1994 09:49:37 +0100"])
def test_parse_http_date_formats(value):
    assert parse_http_date(value) == LM // 1000


@pytest.mark.parametrize("value", ["", "yesterday", "Sun, 32 Nov 1994 08:49:37 GMT", "1994"])
def test_parse_http_date_garbage(value):
    assert parse_http_date(value) is None


# ------------------------------------------------------------ single headers

def test_no_headers():
    read()


@pytest.mark.parametrize("value", [ETAG, RAW, f"W/{ETAG}", "*", f'"nope", {ETAG}',
                                   f" {ETAG} "])
def test_if_match_true(value):
    read(if_match=value)


@pytest.mark.parametrize("value", ['"nope"', "nope", '"9B2CF535F27731C974343645A3985328"',
                                   '"nope", "other"'])
def test_if_match_false(value):
    with pytest.raises(E.PreconditionFailed) as ei:
        read(if_match=value)
    assert ei.value.status == 412
    assert ei.value.extra == {"Condition": "If-Match"}


@pytest.mark.parametrize("value", [ETAG, RAW, "*", f'"x",{ETAG}'])
def test_if_none_match_matching_is_304(value):
    with pytest.raises(E.NotModified) as ei:
        read(if_none_match=value)
    assert ei.value.status == 304


def test_if_none_match_other_proceeds():
    read(if_none_match='"other"')


@pytest.mark.parametrize("value", [LM_DATE, AFTER])
def test_if_unmodified_since_true(value):
    read(if_unmodified_since=value)


def test_if_unmodified_since_false():
    with pytest.raises(E.PreconditionFailed) as ei:
        read(if_unmodified_since=BEFORE)
    assert ei.value.extra == {"Condition": "If-Unmodified-Since"}


def test_if_modified_since_true():
    read(if_modified_since=BEFORE)


@pytest.mark.parametrize("value", [LM_DATE, AFTER])
def test_if_modified_since_false_is_304(value):
    # LM has .250 s; compared at second granularity, LM_DATE is "not modified since"
    with pytest.raises(E.NotModified):
        read(if_modified_since=value)


@pytest.mark.parametrize("name", ["if_modified_since", "if_unmodified_since"])
def test_unparseable_dates_ignored(name):
    read(**{name: "not a date"})


def test_empty_header_values_ignored():
    read(if_match="", if_none_match="  ", if_modified_since="", if_unmodified_since="")


# ------------------------------------------------------------ S3's documented pairs

def test_if_match_true_and_unmodified_since_false_proceeds():
    read(if_match=ETAG, if_unmodified_since=BEFORE)


def test_if_match_false_and_unmodified_since_true_fails():
    with pytest.raises(E.PreconditionFailed):
        read(if_match='"x"', if_unmodified_since=AFTER)


def test_if_none_match_false_and_modified_since_true_is_304():
    with pytest.raises(E.NotModified):
        read(if_none_match=ETAG, if_modified_since=BEFORE)


def test_if_none_match_true_and_modified_since_false_proceeds():
    read(if_none_match='"x"', if_modified_since=AFTER)


def test_412_takes_precedence_over_304():
    with pytest.raises(E.PreconditionFailed):
        read(if_match='"x"', if_none_match=ETAG)
    with pytest.raises(E.PreconditionFailed):
        read(if_unmodified_since=BEFORE, if_modified_since=AFTER)


def test_if_match_true_and_none_match_false_is_304():
    with pytest.raises(E.NotModified):
        read(if_match=ETAG, if_none_match=ETAG)


def test_multipart_etag():
    check_read({"if-match": '"abc-3"'}, '"abc-3"', LM)
    with pytest.raises(E.PreconditionFailed):
        check_read({"if-match": '"abc"'}, '"abc-3"', LM)


# ------------------------------------------------------------ writes

def test_write_without_conditions():
    check_write({}, None)
    check_write({}, ETAG)


def test_if_none_match_star():
    check_write({"if-none-match": "*"}, None)
    with pytest.raises(E.PreconditionFailed) as ei:
        check_write({"if-none-match": "*"}, ETAG)
    assert ei.value.extra == {"Condition": "If-None-Match"}


def test_if_none_match_etag_not_supported():
    with pytest.raises(E.NotImplemented_) as ei:
        check_write({"if-none-match": ETAG}, None)
    assert ei.value.status == 501


def test_if_match_and_if_none_match_together_not_supported():
    with pytest.raises(E.NotImplemented_):
        check_write({"if-none-match": "*", "if-match": ETAG}, ETAG)


@pytest.mark.parametrize("value", [ETAG, RAW, "*"])
def test_if_match_write_ok(value):
    check_write({"if-match": value}, ETAG)
    check_write({"if-match": value}, RAW)


def test_if_match_write_mismatch():
    with pytest.raises(E.PreconditionFailed):
        check_write({"if-match": '"other"'}, ETAG)


@pytest.mark.parametrize("value", [ETAG, "*"])
def test_if_match_write_missing_object(value):
    with pytest.raises(E.NoSuchKey) as ei:
        check_write({"if-match": value}, None)
    assert ei.value.status == 404
