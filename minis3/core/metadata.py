"""User metadata values (``x-amz-meta-*``) as S3 stores and returns them.

HTTP header values are bytes. What arrives depends on the client: botocore
(through urllib3) sends a ``str`` value as UTF-8 (``café`` is ``63 61 66 c3
a9``), other clients send Latin-1 or RFC 2047 encoded-words. aiohttp hands
the handler the bytes decoded as UTF-8 with ``surrogateescape`` (bytes that
are not UTF-8 become lone surrogates ``\\udcXX``). On the way back, clients
built on Python's ``http.client`` (botocore included) read every response
header byte as Latin-1, so returning the UTF-8 bytes as they came gives
``cafÃ©``.

S3's documented rule (User Guide, "Working with object metadata"): values
with non-US-ASCII characters are decoded as RFC 2047 before they are stored,
and encoded as RFC 2047 before they are returned; a US-ASCII value is
returned as is. So:

* :func:`decode_value` (on a write): bytes that are UTF-8 are read as UTF-8,
  other bytes as Latin-1 (one character each); then a value that holds
  RFC 2047 encoded-words (``=?UTF-8?B?...?=``) is decoded.
* :func:`encode_value` (on a read): printable US-ASCII is returned as is;
  anything else as one ``=?UTF-8?B?<base64 of the UTF-8>?=`` word, which
  every client reads back losslessly (``email.header.decode_header``).

Pure: no I/O.
"""
from __future__ import annotations

import base64
from email.errors import HeaderParseError
from email.header import decode_header, make_header


def _text(raw: str) -> str:
    """The characters a header value's bytes spell (module doc)."""
    data = raw.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def decode_value(raw: str) -> str:
    """A metadata value as received (aiohttp's str of the header bytes) ->
    the text S3 stores."""
    text = _text(raw)
    if "=?" not in text:
        return text
    try:
        return str(make_header(decode_header(text)))
    except (HeaderParseError, LookupError, UnicodeError, ValueError):
        return text                       # not well-formed encoded-words: kept as written


def _plain_ascii(value: str) -> bool:
    return all(c == "\t" or " " <= c <= "~" for c in value)


def encode_value(value: str) -> str:
    """A stored metadata value -> the header value S3 returns."""
    if _plain_ascii(value):
        return value
    data = value.encode("utf-8", "surrogatepass")
    return f"=?UTF-8?B?{base64.b64encode(data).decode('ascii')}?="
