"""S3's multipart upload documents: Initiate, Complete (the request parsed, the result
written), ListParts, ListMultipartUploads and UploadPartCopy's result. Written and parsed
with ``core/xmldoc.py``.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from minis3.core import errors as E
from minis3.core import xmldoc as X
from minis3.core.checksums import ELEMENT_NAMES
from minis3.core.xmldoc import iso8601_ms, quote_etag

#
# Element order follows the AWS S3 API Reference. Where its "Response Syntax"
# and its examples (captured S3 responses) disagree, the choice is noted in
# the function's docstring.

#: Most parts one multipart upload -- and so one CompleteMultipartUpload body --
#: may name.
MAX_COMPLETE_PARTS = 10_000
#: Largest CompleteMultipartUpload body we parse: 10,000 parts of ~600 bytes
#: (a part with a quoted "hex-N" ETag, every checksum element, a namespace
#: prefix and pretty-printing stays below 600) is 6 MB; 8 MiB leaves room.
MAX_COMPLETE_MULTIPART_BODY = 8 << 20

_PART_NUMBER = re.compile(r"[+-]?[0-9]+")
#: ``Checksum<ALG>`` element name -> our lower-case algorithm name.
_CHECKSUM_ELEMENTS: dict[str, str] = {name: alg for alg, name in ELEMENT_NAMES.items()}


def initiate_multipart_upload_xml(bucket: str, key: str, upload_id: str) -> bytes:
    """CreateMultipartUpload's InitiateMultipartUploadResult: Bucket, Key,
    UploadId."""
    root = X.root("InitiateMultipartUploadResult")
    X.sub(root, "Bucket", bucket)
    X.sub(root, "Key", key)
    X.sub(root, "UploadId", upload_id)
    return X.serialize(root)


def parse_complete_multipart_upload(body: bytes) -> list[dict]:
    """The parts a CompleteMultipartUpload body names, in document order.

    Each is ``{"part": int, "etag": str, "checksums": {alg: base64}}``: the
    ETag with one pair of surrounding double quotes removed (otherwise as
    written, whitespace kept), ``alg`` the lower-case algorithm of each
    ``ChecksumCRC32``/``ChecksumCRC32C``/``ChecksumCRC64NVME``/
    ``ChecksumSHA1``/``ChecksumSHA256`` element of the ``<Part>``, its value
    as written.

    MalformedXML when: not well-formed, a DTD or entity declaration, over
    MAX_COMPLETE_MULTIPART_BODY bytes, a root other than
    CompleteMultipartUpload, no ``<Part>``, more than 10,000 of them, a
    ``<Part>`` without exactly one ``<PartNumber>`` and exactly one
    ``<ETag>``, a PartNumber that is not an integer (ASCII digits, optional
    sign, surrounding whitespace allowed; one beyond Python's int-conversion
    digit limit, 4300 by default, counts as not an integer), the same
    checksum element twice in one Part, or child elements inside PartNumber,
    ETag or a checksum. Part order, duplicates and ranges are not checked
    here (the caller answers InvalidPartOrder / InvalidPart /
    InvalidArgument). Other elements, and elements of foreign namespaces,
    are ignored.
    """
    root = X.parse(body, MAX_COMPLETE_MULTIPART_BODY, "CompleteMultipartUpload")
    parts: list[dict] = []
    for child in root:
        if X.local(child.tag) != "Part":
            continue
        if len(parts) >= MAX_COMPLETE_PARTS:
            raise E.MalformedXML()
        parts.append(_part(child))
    if not parts:
        raise E.MalformedXML()
    return parts


def _part(el: ET.Element) -> dict:
    """One ``<Part>`` of a CompleteMultipartUpload body (the rules above)."""
    number_text: str | None = None
    etag: str | None = None
    checksums: dict[str, str] = {}
    for sub in el:
        name = X.local(sub.tag)
        if name == "PartNumber":
            if number_text is not None:
                raise E.MalformedXML()
            number_text = X.leaf_text(sub)
        elif name == "ETag":
            if etag is not None:
                raise E.MalformedXML()
            etag = X.leaf_text(sub)
        elif name in _CHECKSUM_ELEMENTS:
            alg = _CHECKSUM_ELEMENTS[name]
            if alg in checksums:
                raise E.MalformedXML()
            checksums[alg] = X.leaf_text(sub)
    if number_text is None or etag is None:
        raise E.MalformedXML()
    number_text = number_text.strip()
    if not _PART_NUMBER.fullmatch(number_text):
        raise E.MalformedXML()
    try:
        number = int(number_text)
    except ValueError as exc:        # longer than int's digit limit
        raise E.MalformedXML() from exc
    if len(etag) >= 2 and etag[0] == '"' and etag[-1] == '"':
        etag = etag[1:-1]
    return {"part": number, "etag": etag, "checksums": checksums}


def complete_multipart_upload_xml(*, location: str, bucket: str, key: str, etag: str,
                                  checksum: tuple[str, str] | None = None,
                                  checksum_type: str | None = None) -> bytes:
    """CompleteMultipartUploadResult: Location, Bucket, Key, ETag (quoted),
    then ``Checksum<ALG>`` for ``checksum = (alg, base64)``, then
    ChecksumType -- the order of the API reference."""
    root = X.root("CompleteMultipartUploadResult")
    X.leaves(root, ("Location", location), ("Bucket", bucket), ("Key", key), ("ETag", quote_etag(etag)))
    if checksum is not None:
        X.sub(root, X.checksum_element(checksum[0]), checksum[1])
    if checksum_type:
        X.sub(root, "ChecksumType", checksum_type)
    return X.serialize(root)


def _part_xml(part: dict) -> str:
    xml = (f"<Part><PartNumber>{int(part['part'])}</PartNumber>"
           f"<LastModified>{iso8601_ms(part['mtime_ms'])}</LastModified>"
           f"<ETag>{X.escape_text(quote_etag(part['etag']))}</ETag>"
           f"<Size>{int(part['size'])}</Size>")
    checksum = part.get("checksum")
    if checksum:
        name = X.checksum_element(checksum["alg"])
        xml += f"<{name}>{X.escape_text(checksum['value'])}</{name}>"
    return xml + "</Part>"


def list_parts_xml(*, bucket: str, key: str, upload_id: str, part_number_marker: int,
                   next_part_number_marker: int | None, max_parts: int, truncated: bool,
                   parts: list[dict], owner: tuple[str, str], storage_class: str = "STANDARD",
                   checksum_algorithm: str | None = None,
                   checksum_type: str | None = None) -> bytes:
    """ListPartsResult.

    Order is the API reference's Response Syntax: Bucket, Key, UploadId,
    PartNumberMarker, [NextPartNumberMarker], MaxParts, IsTruncated, Part...,
    Initiator, Owner, StorageClass, [ChecksumAlgorithm], [ChecksumType].
    (The reference's example puts Initiator, Owner and StorageClass right
    after UploadId instead; clients read elements by name.) Initiator and
    Owner are both ``owner``. Each part is ``{"part", "mtime_ms", "etag",
    "size", "checksum": {"alg", "value"} | None}`` and is written PartNumber,
    LastModified, ETag (quoted), Size, [``Checksum<ALG>``].
    ChecksumAlgorithm is written upper-case.
    """
    root = X.root("ListPartsResult")
    X.leaves(root, ("Bucket", bucket), ("Key", key), ("UploadId", upload_id),
             ("PartNumberMarker", int(part_number_marker)))
    if next_part_number_marker is not None:
        X.sub(root, "NextPartNumberMarker", int(next_part_number_marker))
    X.sub(root, "MaxParts", int(max_parts))
    X.sub(root, "IsTruncated", X.xml_bool(truncated))
    if parts:
        root.children.append(X.Raw("".join(_part_xml(p) for p in parts)))
    root.children.append(X.Raw(X.principal_xml("Initiator", owner)
                              + X.principal_xml("Owner", owner)))
    X.sub(root, "StorageClass", storage_class)
    if checksum_algorithm:
        X.sub(root, "ChecksumAlgorithm", checksum_algorithm.upper())
    if checksum_type:
        X.sub(root, "ChecksumType", checksum_type)
    return X.serialize(root)


def list_multipart_uploads_xml(*, bucket: str, prefix: str | None, delimiter: str | None,
                               key_marker: str, upload_id_marker: str,
                               next_key_marker: str | None, next_upload_id_marker: str | None,
                               max_uploads: int, truncated: bool, uploads: list[dict],
                               prefixes: list[str], owner: tuple[str, str],
                               encoding_type: str | None = None) -> bytes:
    """ListMultipartUploadsResult.

    Order is S3's (the API reference's examples): Bucket, KeyMarker,
    UploadIdMarker, NextKeyMarker, NextUploadIdMarker, [Delimiter],
    [Prefix], [EncodingType], MaxUploads, IsTruncated, Upload...,
    CommonPrefixes.... The four markers are always written (empty when
    None); Delimiter only when non-empty, Prefix whenever not None.
    EncodingType is written where the object listings write it, just before
    the counts. Each upload is ``{"key", "upload_id", "initiated_ms",
    "checksum_algorithm"?, "checksum_type"?, "storage_class"?}`` and is
    written Key, UploadId, Initiator, Owner (both ``owner``), StorageClass
    (default STANDARD), Initiated, [ChecksumAlgorithm (upper-case)],
    [ChecksumType].

    With ``encoding_type == "url"``, Key, Prefix, Delimiter, KeyMarker,
    NextKeyMarker and CommonPrefixes/Prefix are URL-encoded (module doc);
    upload ids are not.
    """
    enc, e = X.encoder(encoding_type)

    root = X.root("ListMultipartUploadsResult")
    X.sub(root, "Bucket", bucket)
    X.sub(root, "KeyMarker", e(key_marker or ""))
    X.sub(root, "UploadIdMarker", upload_id_marker or "")
    X.sub(root, "NextKeyMarker", e(next_key_marker or ""))
    X.sub(root, "NextUploadIdMarker", next_upload_id_marker or "")
    if delimiter:
        X.sub(root, "Delimiter", e(delimiter))
    if prefix is not None:
        X.sub(root, "Prefix", e(prefix))
    if encoding_type:
        X.sub(root, "EncodingType", encoding_type)
    X.sub(root, "MaxUploads", int(max_uploads))
    X.sub(root, "IsTruncated", X.xml_bool(truncated))
    if uploads:
        principals = X.principal_xml("Initiator", owner) + X.principal_xml("Owner", owner)
        xml: list[str] = []
        for u in uploads:
            xml.append(f"<Upload><Key>{X.escape_text(e(u['key']))}</Key>"
                       f"<UploadId>{X.escape_text(u['upload_id'])}</UploadId>{principals}"
                       f"<StorageClass>{X.escape_text(u.get('storage_class') or 'STANDARD')}"
                       f"</StorageClass>"
                       f"<Initiated>{iso8601_ms(u['initiated_ms'])}</Initiated>")
            if u.get("checksum_algorithm"):
                xml.append(f"<ChecksumAlgorithm>{X.escape_text(u['checksum_algorithm'].upper())}"
                           f"</ChecksumAlgorithm>")
            if u.get("checksum_type"):
                xml.append(f"<ChecksumType>{X.escape_text(u['checksum_type'])}</ChecksumType>")
            xml.append("</Upload>")
        root.children.append(X.Raw("".join(xml)))
    X.common_prefixes(root, prefixes, enc)
    return X.serialize(root)


def copy_part_result_xml(etag: str, last_modified_ms: int,
                         checksum: tuple[str, str] | None = None) -> bytes:
    """UploadPartCopy's CopyPartResult: ETag (quoted), LastModified, then
    ``Checksum<ALG>`` for ``checksum = (alg, base64)``."""
    root = X.root("CopyPartResult")
    X.sub(root, "ETag", quote_etag(etag))
    X.sub(root, "LastModified", iso8601_ms(last_modified_ms))
    if checksum is not None:
        X.sub(root, X.checksum_element(checksum[0]), checksum[1])
    return X.serialize(root)
