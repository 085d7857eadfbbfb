"""Bucket and object key naming rules.

Bucket names follow S3's rules for general purpose buckets ("Bucket naming
rules" in the S3 User Guide):

* 3 to 63 characters long;
* only lowercase letters, digits, periods (``.``) and hyphens (``-``);
* begin and end with a letter or digit;
* no two adjacent periods;
* not formatted as an IP address (``192.168.5.4``);
* not starting with ``xn--``, ``sthree-`` or ``amzn-s3-demo-``;
* not ending with ``-s3alias``, ``--ol-s3``, ``.mrap``, ``--x-s3`` or
  ``--table-s3`` (names reserved for access points, Multi-Region Access
  Points, directory buckets and table buckets).

Object keys are any Unicode string whose UTF-8 encoding is at most 1024 bytes.
"""
from __future__ import annotations

import re

from minis3.core import errors as E

MAX_KEY_BYTES = 1024

_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", re.ASCII)
_IP_RE = re.compile(r"\d+\.\d+\.\d+\.\d+", re.ASCII)
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def validate_bucket_name(name: str) -> None:
    """Raise E.InvalidBucketName unless ``name`` is a valid general purpose
    bucket name."""
    if (not isinstance(name, str)
            or _BUCKET_RE.fullmatch(name) is None
            or ".." in name
            or _IP_RE.fullmatch(name) is not None
            or name.startswith(_RESERVED_PREFIXES)
            or name.endswith(_RESERVED_SUFFIXES)):
        raise E.InvalidBucketName(resource=name if isinstance(name, str) else None,
                                  BucketName=str(name))


def validate_key(key: str) -> None:
    """Raise E.KeyTooLongError if the key's UTF-8 form exceeds 1024 bytes.

    An empty key never reaches here in S3 (the request addresses the bucket);
    if one does, it is E.InvalidArgument. A key holding lone surrogates (not
    representable as UTF-8) is E.InvalidArgument too.
    """
    if not key:
        raise E.InvalidArgument("Object key must not be empty")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise E.InvalidArgument("Object key is not valid UTF-8") from None
    if size > MAX_KEY_BYTES:
        raise E.KeyTooLongError(Size=str(size), MaxSizeAllowed=str(MAX_KEY_BYTES))
