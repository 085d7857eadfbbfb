"""What a request's query string and headers ask for, read by S3's rules.

The resource modules (``bucket``, ``object``, ``multipart``, ``service``) share these
instead of reaching into each other: the encoding-type and continuation tokens of a
LIST, the part number of a multipart request, the headers stored with an object and
the conditions of a conditional write.
"""
from __future__ import annotations

import base64
import binascii

from aiohttp import web

from ..core import errors as E
from ..core import metadata
from ..core.numbers import parse_int

#: The most parts a multipart upload may have, and the highest part number.
MAX_PARTS = 10_000
#: The standard headers an object keeps from its PUT (Content-Type first).
STANDARD_HEADERS = ("content-type", "content-encoding", "content-disposition", "content-language",
                    "cache-control", "expires")
MAX_USER_METADATA = 2048


def encoding_type(q) -> str | None:
    """The LIST's ``encoding-type``: None, or "url" (any other value is refused)."""
    enc = q.get("encoding-type")
    if enc is not None and enc != "url":
        raise E.InvalidArgument("Invalid Encoding Method specified in Request",
                                ArgumentName="encoding-type", ArgumentValue=enc)
    return enc


def continuation_token(marker: str) -> str:
    """The opaque token a LIST page gives for the page after ``marker``."""
    return base64.urlsafe_b64encode(marker.encode()).decode()


def token_marker(token: str) -> str:
    """The marker a continuation token stands for (a token not made here is refused)."""
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise E.InvalidArgument("The continuation token provided is incorrect",
                                ArgumentName="continuation-token")


def part_number(query: dict) -> int:
    """The ``partNumber`` of an UploadPart, UploadPartCopy or a GET/HEAD of one part."""
    raw = query.get("partNumber", "")
    n = parse_int(raw)
    if n is None or not 1 <= n <= MAX_PARTS:
        raise E.InvalidArgument("Part number must be an integer between 1 and 10000, inclusive",
                                ArgumentName="partNumber", ArgumentValue=raw)
    return n


def stored_headers(request: web.Request) -> tuple[dict, dict]:
    """Standard headers and user metadata (x-amz-meta-*) to store with an object."""
    std = {}
    for h in STANDARD_HEADERS:
        v = request.headers.get(h)
        if v is None:
            continue
        if h == "content-encoding":
            # aws-chunked is transfer framing, not a property of the object:
            # S3 drops that token and keeps the rest as written.
            v = ",".join(p for p in v.split(",") if p.strip().lower() != "aws-chunked").strip(" \t,")
            if not v:
                continue
        std[h] = v
    meta = {k.lower()[len("x-amz-meta-"):]: metadata.decode_value(v) for k, v in request.headers.items()
            if k.lower().startswith("x-amz-meta-")}
    if sum(len(k.encode("utf-8", "surrogateescape")) + len(v.encode("utf-8", "surrogatepass"))
           for k, v in meta.items()) > MAX_USER_METADATA:
        raise E.MetadataTooLarge(MaxSizeAllowed=str(MAX_USER_METADATA))
    return std, meta


def write_conditions(request: web.Request) -> dict:
    """A conditional write's If-Match / If-None-Match headers."""
    return {k: request.headers[k] for k in ("if-match", "if-none-match") if k in request.headers}
