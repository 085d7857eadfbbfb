"""Conditional requests (RFC 7232 as S3 applies it).

Reads (GET/HEAD, and the ``x-amz-copy-source-if-*`` headers of a copy once the
caller has renamed them) follow RFC 7232 §6's order, which is what S3
documents for GetObject/HeadObject:

1. ``If-Match`` present: false -> 412 PreconditionFailed. When it is true,
   ``If-Unmodified-Since`` is not evaluated (S3: "If-Match true and
   If-Unmodified-Since false -> 200 OK").
2. otherwise ``If-Unmodified-Since``: false -> 412.
3. ``If-None-Match`` present: false (an ETag matches) -> 304 NotModified. When
   present, ``If-Modified-Since`` is not evaluated (S3: "If-None-Match false and
   If-Modified-Since true -> 304 Not Modified").
4. otherwise ``If-Modified-Since``: false (not modified) -> 304.

ETags compare by value: surrounding quotes and a ``W/`` prefix are ignored;
headers may carry a comma-separated list; ``*`` matches any existing object.
HTTP dates have one-second resolution, so Last-Modified is compared at second
granularity (truncated). An unparseable date is ignored, as RFC 7232 requires.

Writes (PutObject, CopyObject destination, CompleteMultipartUpload) accept
``If-None-Match: *`` (fail with 412 if the key exists) and ``If-Match: <etag>``
(412 if the current ETag differs, 404 NoSuchKey if there is no object).
"""
from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from email.utils import format_datetime, parsedate_to_datetime

from minis3.core import errors as E

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def http_date(ms: int) -> str:
    """RFC 7231 IMF-fixdate for epoch milliseconds: ``Sun, 06 Nov 1994 08:49:37 GMT``."""
    dt = _EPOCH + _dt.timedelta(milliseconds=ms)
    return format_datetime(dt, usegmt=True)


def parse_http_date(value: str) -> int | None:
    """Epoch seconds of an HTTP date (any of RFC 7231's three formats parse via
    :func:`email.utils.parsedate_to_datetime`), or None if unparseable."""
    try:
        dt = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=_dt.timezone.utc)
    try:
        return int(dt.timestamp())
    except (OverflowError, ValueError, OSError):
        return None


def _norm_etag(tag: str) -> str:
    tag = tag.strip()
    if tag[:2] in ("W/", "w/"):
        tag = tag[2:].strip()
    if len(tag) >= 2 and tag[0] == '"' and tag[-1] == '"':
        tag = tag[1:-1]
    return tag


def _etag_matches(header: str, etag: str | None) -> bool:
    """True if the If-Match/If-None-Match list ``header`` matches ``etag``
    (None: no object)."""
    if etag is None:
        return False
    current = _norm_etag(etag)
    for item in header.split(","):
        item = item.strip()
        if not item:
            continue
        if item == "*" or _norm_etag(item) == current:
            return True
    return False


def _get(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def check_read(headers: Mapping[str, str], etag: str, last_modified_ms: int) -> None:
    """Evaluate GET/HEAD preconditions against an existing object.

    ``headers`` has lower-case keys; ``etag`` is the quoted ETag. Returns
    normally if the request proceeds; raises E.PreconditionFailed (412) or
    E.NotModified (304).
    """
    if_match = _get(headers, "if-match")
    if_unmodified = _get(headers, "if-unmodified-since")
    if_none_match = _get(headers, "if-none-match")
    if_modified = _get(headers, "if-modified-since")
    lm_sec = last_modified_ms // 1000

    if if_match is not None:
        if not _etag_matches(if_match, etag):
            raise E.PreconditionFailed(Condition="If-Match")
    elif if_unmodified is not None:
        since = parse_http_date(if_unmodified)
        if since is not None and lm_sec > since:
            raise E.PreconditionFailed(Condition="If-Unmodified-Since")

    if if_none_match is not None:
        if _etag_matches(if_none_match, etag):
            raise E.NotModified()
    elif if_modified is not None:
        since = parse_http_date(if_modified)
        if since is not None and lm_sec <= since:
            raise E.NotModified()


def check_write(headers: Mapping[str, str], current_etag: str | None) -> None:
    """Evaluate a conditional write against the key's current object.

    ``current_etag`` is the current object's ETag (quoted or not) or None if
    the key has no object. Raises:

    * E.NotImplemented_ if ``If-None-Match`` carries anything but ``*``, or if
      ``If-Match`` and ``If-None-Match`` are combined (S3 supports neither);
    * E.PreconditionFailed if ``If-None-Match: *`` and the object exists, or
      ``If-Match`` does not match the existing object;
    * E.NoSuchKey if ``If-Match`` is given and no object exists (S3 User
      Guide, "Conditional write behavior": If-Match against a key with no
      current object fails with 404).
    """
    if_match = _get(headers, "if-match")
    if_none_match = _get(headers, "if-none-match")
    if if_none_match is not None:
        if if_none_match != "*" or if_match is not None:
            raise E.NotImplemented_(Header="If-None-Match")
        if current_etag is not None:
            raise E.PreconditionFailed(Condition="If-None-Match")
        return
    if if_match is not None:
        if current_etag is None:
            raise E.NoSuchKey()
        if not _etag_matches(if_match, current_etag):
            raise E.PreconditionFailed(Condition="If-Match")
