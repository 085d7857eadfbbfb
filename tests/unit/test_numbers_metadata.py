"""minis3.core.numbers (strict integers) and minis3.core.metadata (x-amz-meta-* values)."""
import email.header

import pytest

from minis3.core.metadata import decode_value, encode_value
from minis3.core.numbers import parse_int


@pytest.mark.parametrize("raw,value", [("0", 0), ("10000", 10000), ("-1", -1), ("+7", 7), ("007", 7)])
def test_parse_int_ascii(raw, value):
    assert parse_int(raw) == value


@pytest.mark.parametrize("raw", [None, "", "²", "١", "١٢", "𝟙", " 1", "1 ", "1\n", "1_000", "1.0", "+", "-",
                                 "0x10", "1e3", "9" * 31, "５"])
def test_parse_int_refuses_what_is_not_ascii_decimal(raw):
    assert parse_int(raw) is None


def _round_trip(value: str) -> str:
    return str(email.header.make_header(email.header.decode_header(value)))


@pytest.mark.parametrize("raw,stored", [
    ("plain value", "plain value"),
    ("café", "café"),                          # UTF-8 bytes, as aiohttp decodes them
    ("caf\udce9", "café"),                     # a Latin-1 byte (not UTF-8): read as Latin-1
    ("=?UTF-8?B?Y2Fmw6k=?=", "café"),          # RFC 2047, B and Q forms
    ("=?utf-8?q?caf=C3=A9?=", "café"),
    ("=?iso-8859-1?q?caf=E9?=", "café"),
    ("=?bogus", "=?bogus"),                    # not an encoded-word: kept as written
])
def test_decode_value(raw, stored):
    assert decode_value(raw) == stored


def test_encode_value():
    assert encode_value("plain value\twith tab") == "plain value\twith tab"
    assert encode_value("café") == "=?UTF-8?B?Y2Fmw6k=?="
    for v in ("café", "日本語", "emoji 😀", "line\nbreak", "\x7f"):
        enc = encode_value(v)
        assert enc.isascii() and "\n" not in enc
        assert _round_trip(enc) == v
