"""GetObjectAttributes: which attributes a request asks for, and the
``GetObjectAttributesResponse`` document. Pure: no I/O.

The request names its attributes in ``x-amz-object-attributes`` (a comma-
separated list of ETag, Checksum, ObjectParts, StorageClass, ObjectSize) and
pages a multipart object's parts with ``x-amz-max-parts`` and
``x-amz-part-number-marker`` (headers, not query parameters).
"""
from __future__ import annotations

from . import errors as E
from .checksums import ELEMENT_NAMES
from .numbers import parse_int
from . import xmldoc as X

ATTRIBUTES = ("ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize")
MAX_PARTS = 1000


def requested(header: str | None) -> list[str]:
    """The attributes asked for, in S3's order; InvalidArgument for an unknown one."""
    if not header or not header.strip():
        raise E.InvalidArgument("Invalid attribute name specified.", ArgumentName="x-amz-object-attributes",
                                ArgumentValue=header or "")
    names = {n.strip() for n in header.split(",") if n.strip()}
    unknown = names - set(ATTRIBUTES)
    if unknown:
        raise E.InvalidArgument("Invalid attribute name specified.", ArgumentName="x-amz-object-attributes",
                                ArgumentValue=sorted(unknown)[0])
    return [a for a in ATTRIBUTES if a in names]


def _count(raw: str | None, name: str, default: int) -> int:
    if raw is None:
        return default
    n = parse_int(raw)
    if n is None or n < 0:
        raise E.InvalidArgument(f"Provided {name} not an integer or within integer range",
                                ArgumentName=name, ArgumentValue=raw)
    return n


def parts_page(header_marker: str | None, header_max: str | None) -> tuple[int, int]:
    """(part-number-marker, max-parts) from their headers."""
    return (_count(header_marker, "x-amz-part-number-marker", 0),
            min(_count(header_max, "x-amz-max-parts", MAX_PARTS), MAX_PARTS))


def attributes_xml(rec: dict, wanted: list[str], *, marker: int = 0, max_parts: int = MAX_PARTS,
                   part_checksums: bool = False) -> bytes:
    """The response for an object record: ``etag``, ``size``, ``checksum``
    ({alg, value, type}) and, for a multipart object, ``parts`` (each with
    ``part``, ``size`` and ``checksum``). ``part_checksums``: the upload
    chose an algorithm, so each part's checksum is S3's to show."""
    root = X.root("GetObjectAttributesResponse")
    if "ETag" in wanted:
        X.sub(root, "ETag", rec["etag"])
    ck = rec.get("checksum")
    if "Checksum" in wanted and ck:
        el = X.sub(root, "Checksum")
        X.sub(el, ELEMENT_NAMES[ck["alg"]], ck["value"])
        X.sub(el, "ChecksumType", ck.get("type", "FULL_OBJECT"))
    parts = rec.get("parts")
    if "ObjectParts" in wanted and parts:
        el = X.sub(root, "ObjectParts")
        X.sub(el, "PartsCount", len(parts))
        page = [p for p in parts if p["part"] > marker]
        shown, truncated = page[:max_parts], len(page) > max_parts
        X.sub(el, "PartNumberMarker", marker)
        X.sub(el, "NextPartNumberMarker", shown[-1]["part"] if shown else marker)
        X.sub(el, "MaxParts", max_parts)
        X.sub(el, "IsTruncated", X.xml_bool(truncated))
        # S3 lists each part only when the upload had a checksum algorithm
        # (GetObjectAttributesParts: otherwise "doesn't return the Part element").
        for p in shown if part_checksums else ():
            pe = X.sub(el, "Part")
            X.sub(pe, "PartNumber", p["part"])
            X.sub(pe, "Size", p["size"])
            pck = p.get("checksum")
            if part_checksums and pck:
                X.sub(pe, ELEMENT_NAMES[pck["alg"]], pck["value"])
    if "StorageClass" in wanted:
        X.sub(root, "StorageClass", rec.get("storage_class") or "STANDARD")
    if "ObjectSize" in wanted:
        X.sub(root, "ObjectSize", rec["size"])
    return X.serialize(root)
