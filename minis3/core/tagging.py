r"""Object and bucket tags: S3's limits, the ``x-amz-tagging`` header and the
``Tagging`` document. Pure: no I/O.

A tag set is a list of ``(key, value)`` pairs, kept in the order the client
gave them. S3's rules ("Categorizing your storage using tags" and the
PutObjectTagging / PutBucketTagging references):

* an object has at most 10 tags, a bucket at most 50;
* a key is 1 to 128 Unicode characters, a value 0 to 256; keys are unique
  within a set, and the ``aws:`` prefix is reserved for AWS;
* both are letters, numbers and spaces in any script, and ``_ . : / = + - @``
  (the pattern ``[\p{L}\p{Z}\p{N}_.:/=+\-@]*`` of AWS's tagging rules).
"""
from __future__ import annotations

import unicodedata
from urllib.parse import parse_qsl, quote

from . import errors as E
from . import xmldoc as X

MAX_OBJECT_TAGS = 10
MAX_BUCKET_TAGS = 50
MAX_KEY = 128
MAX_VALUE = 256
MAX_TAGGING_BODY = 64 * 1024
TAGGING_HEADER = "x-amz-tagging"

Tags = list[tuple[str, str]]


_SYMBOLS = frozenset("_.:/=+-@")


def allowed(text: str) -> bool:
    """Only characters AWS's tag pattern allows (module doc)."""
    return all(c in _SYMBOLS or unicodedata.category(c)[0] in "LZN" for c in text)


def validate(tags: Tags, *, bucket: bool = False) -> Tags:
    """The tag set, if S3 would take it; else InvalidTag or BadRequest as S3 answers."""
    most = MAX_BUCKET_TAGS if bucket else MAX_OBJECT_TAGS
    if len(tags) > most:
        if bucket:
            raise E.InvalidTag(f"Bucket tag count cannot be greater than {most}")
        raise E.BadRequest(f"Object tags cannot be greater than {most}")
    seen = set()
    for key, value in tags:
        if not key:
            raise E.InvalidTag("The TagKey you have provided is invalid", TagKey=key)
        if len(key) > MAX_KEY:
            raise E.InvalidTag(f"The TagKey you have provided is too long, max {MAX_KEY}", TagKey=key)
        if len(value) > MAX_VALUE:
            raise E.InvalidTag(f"The TagValue you have provided is too long, max {MAX_VALUE}", TagKey=key)
        if not allowed(key):
            raise E.InvalidTag("The TagKey you have provided is invalid", TagKey=key)
        if not allowed(value):
            raise E.InvalidTag("The TagValue you have provided is invalid", TagKey=key)
        if key.lower().startswith("aws:"):
            raise E.InvalidTag("Your TagKey cannot be prefixed with aws:", TagKey=key)
        if key in seen:
            raise E.InvalidTag("Cannot provide multiple Tags with the same key", TagKey=key)
        seen.add(key)
    return tags


def parse_header(value: str) -> Tags:
    """``x-amz-tagging``: the tags as URL query parameters (``k1=v1&k2=v2``)."""
    try:
        pairs = parse_qsl(value, keep_blank_values=True, errors="strict")     # "a" is tag a, value ""
    except (ValueError, UnicodeDecodeError):
        raise E.InvalidArgument("The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query "
                                "parameters without tag name duplicates.", ArgumentName=TAGGING_HEADER,
                                ArgumentValue=value)
    if len({k for k, _ in pairs}) != len(pairs):
        raise E.InvalidArgument("The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query "
                                "parameters without tag name duplicates.", ArgumentName=TAGGING_HEADER,
                                ArgumentValue=value)
    return validate(pairs)


def header_value(tags: Tags) -> str:
    """The inverse of :func:`parse_header` (what a presigned or SDK client sends)."""
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in tags)


def parse_tagging(body: bytes, *, bucket: bool = False) -> Tags:
    """A ``<Tagging><TagSet><Tag><Key/><Value/></Tag>…</TagSet></Tagging>`` body."""
    root = X.parse(body, MAX_TAGGING_BODY, "Tagging")
    sets = X.children(root, "TagSet")
    if len(sets) != 1:
        raise E.MalformedXML()
    tags = []
    for tag in X.children(sets[0], "Tag"):
        keys, values = X.children(tag, "Key"), X.children(tag, "Value")
        if len(keys) != 1 or len(values) > 1:
            raise E.MalformedXML()
        tags.append((X.leaf_text(keys[0]), X.leaf_text(values[0]) if values else ""))
    return validate(tags, bucket=bucket)


def tagging_xml(tags: Tags) -> bytes:
    root = X.root("Tagging")
    tag_set = X.sub(root, "TagSet")
    for key, value in tags:
        tag = X.sub(tag_set, "Tag")
        X.sub(tag, "Key", key)
        X.sub(tag, "Value", value)
    return X.serialize(root)
