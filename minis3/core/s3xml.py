"""S3's XML documents (namespace ``http://s3.amazonaws.com/doc/2006-03-01/``).

Documents are built with :mod:`xml.etree.ElementTree` and serialized as UTF-8
after an S3-style declaration ``<?xml version="1.0" encoding="UTF-8"?>``.
Empty elements are written ``<Prefix></Prefix>``, as S3 writes them.

Characters XML 1.0 cannot carry. Keys may hold any Unicode, including
control characters such as U+0001. S3 returns them anyway, as numeric
character references (``&#x1;``), which strict XML parsers reject -- the reason
``encoding-type=url`` exists, and why boto3 asks for it on every listing. We do
the same: every character outside XML 1.0's ``Char`` production (C0 controls
other than TAB/LF/CR, U+FFFE, U+FFFF, lone surrogates) is written as
``&#xN;``. CR is written ``&#xD;`` too, which is legal XML and keeps a parser
from normalizing it to LF. Everything else is written as itself (``&``, ``<``
and ``>`` escaped).

``encoding-type=url``. S3 then URL-encodes ``Key``, ``Prefix``, ``Delimiter``,
``Marker``, ``NextMarker``, ``StartAfter`` and ``CommonPrefixes/Prefix``
(continuation tokens are opaque and left alone). The encoding is the percent-
encoding S3 uses: UTF-8 bytes, ``%XX`` for everything but letters, digits,
``-``, ``_``, ``.``, ``/`` and ``*``; a space is ``%20`` and a literal ``+``
is ``%2B`` (so a decoder that reads ``+`` as a space and one that does not
both get the key back), and ``~`` is ``%7E``. botocore decodes these
elements with ``unquote_plus`` (``handlers.decode_list_object*``) when it
set the encoding itself, so every key round-trips through boto3. Note: botocore decodes
``Prefix`` for ListObjectsV2 but not for ListObjects (V1); S3 encodes it in
both, and so do we.

Parsing of client-supplied XML goes only through :mod:`defusedxml` with DTDs
forbidden; anything malformed, oversized or of the wrong shape is
E.MalformedXML.
"""
from __future__ import annotations

import datetime as _dt
import functools
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import quote

import defusedxml.ElementTree as DET

from minis3.core import errors as E
from minis3.core.checksums import ELEMENT_NAMES

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'

#: Largest CreateBucketConfiguration body we parse.
MAX_CREATE_BUCKET_BODY = 1 << 20
#: Largest Delete body we parse (1000 keys of 1024 bytes, escaped, with version
#: ids and ETags, stay well below this).
MAX_DELETE_BODY = 8 << 20
#: Most objects one DeleteObjects request may name.
MAX_DELETE_OBJECTS = 1000

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_URL_SAFE = re.compile(r"[A-Za-z0-9_.\-/*]*")
_PLAIN_TEXT = re.compile(r"[^&<>\x00-\x1f\ud800-\udfff\ufffe\uffff]*")
_NON_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0d\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


# ---------------------------------------------------------------- helpers

@functools.lru_cache(maxsize=4096)
def _iso_seconds(sec: int) -> str:
    return (_EPOCH + _dt.timedelta(seconds=sec)).strftime("%Y-%m-%dT%H:%M:%S")


def iso8601_ms(ms: int) -> str:
    """Epoch milliseconds -> ``2009-10-12T17:50:30.000Z``. (A listing formats
    a thousand of these; objects written together share their second.)"""
    sec, frac = divmod(ms, 1000)
    return f"{_iso_seconds(sec)}.{frac:03d}Z"


def url_encode(value: str) -> str:
    """S3's ``encoding-type=url`` form of a key/prefix/delimiter (module doc)."""
    if _URL_SAFE.fullmatch(value):         # the common key needs no encoding (and quote is slow)
        return value
    try:
        encoded = quote(value, safe="/*", encoding="utf-8", errors="surrogateescape")
    except UnicodeEncodeError:
        encoded = quote(value, safe="/*", encoding="utf-8", errors="surrogatepass")
    return encoded.replace("~", "%7E")


def quote_etag(etag: str) -> str:
    """``abc`` -> ``"abc"``; an already quoted ETag is left as is."""
    if len(etag) >= 2 and etag[0] == '"' and etag[-1] == '"':
        return etag
    return f'"{etag}"'


def _char_ref(m: re.Match[str]) -> str:
    return f"&#x{ord(m.group()):X};"


class _El:
    """An element of a document we write. ElementTree's own serializer
    costs ~40 µs an element in CPython, too slow for a 1,000-key listing
    (measured: 70 ms of frontend CPU a page); these write the same bytes."""

    __slots__ = ("tag", "namespace", "text", "children")

    def __init__(self, tag: str, namespace: bool = False) -> None:
        self.tag, self.namespace = tag, namespace
        self.text: str | None = None
        self.children: list[_El | _Raw] = []

    def write(self, out: list[str]) -> None:
        out.append(f'<{self.tag} xmlns="{NS}">' if self.namespace else f"<{self.tag}>")
        if self.text:
            out.append(_escape_text(self.text))
        for child in self.children:
            child.write(out)
        out.append(f"</{self.tag}>")


class _Raw:
    """A piece of document already written (and escaped) as XML."""

    __slots__ = ("xml",)

    def __init__(self, xml: str) -> None:
        self.xml = xml

    def write(self, out: list[str]) -> None:
        out.append(self.xml)


def _escape_text(text: str) -> str:
    """Text content as XML: ``&``, ``<``, ``>`` escaped, and every character
    XML 1.0 cannot carry as a character reference (module doc)."""
    if _PLAIN_TEXT.fullmatch(text):
        return text
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    return _NON_XML_CHARS.sub(_char_ref, text)


def _root(tag: str, namespace: bool = True) -> _El:
    return _El(tag, namespace)


def _sub(parent: _El, tag: str, text: str | int | None = None) -> _El:
    el = _El(tag)
    if text is not None:
        el.text = str(text)
    parent.children.append(el)
    return el


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _serialize(root: _El) -> bytes:
    out: list[str] = []
    root.write(out)
    return XML_DECLARATION + "".join(out).encode("utf-8")


def _owner(parent: _El, owner: tuple[str, str]) -> None:
    el = _sub(parent, "Owner")
    _sub(el, "ID", owner[0])
    if owner[1]:
        _sub(el, "DisplayName", owner[1])


# ---------------------------------------------------------------- parsing

def _local(tag: object) -> str | None:
    """Local name of an element tag in no namespace or S3's; None otherwise
    (comments, processing instructions, foreign namespaces)."""
    if not isinstance(tag, str):
        return None
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return local if ns == NS else None
    return tag


def _parse(body: bytes, limit: int, root_name: str) -> ET.Element:
    if len(body) > limit:
        raise E.MalformedXML()
    try:
        root = DET.fromstring(body, forbid_dtd=True, forbid_entities=True,
                              forbid_external=True)
    except (ET.ParseError, ValueError) as exc:  # DefusedXmlException is a ValueError
        raise E.MalformedXML() from exc
    if _local(root.tag) != root_name:
        raise E.MalformedXML()
    return root


def _children(el: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in el if _local(c.tag) == name]


def parse_create_bucket(body: bytes) -> str | None:
    """LocationConstraint of a CreateBucketConfiguration body.

    An empty body, a configuration without the element, or an empty element
    are all None (us-east-1). Other elements (Location, Bucket, Tags) are
    accepted and ignored.
    """
    if not body or not body.strip():
        return None
    root = _parse(body, MAX_CREATE_BUCKET_BODY, "CreateBucketConfiguration")
    found = _children(root, "LocationConstraint")
    if len(found) > 1:
        raise E.MalformedXML()
    if not found:
        return None
    if len(found[0]):
        raise E.MalformedXML()
    value = (found[0].text or "").strip()
    return value or None


def parse_delete_objects(body: bytes) -> tuple[list[tuple[str, str | None]], bool]:
    """Objects, as (key, version id or None), and Quiet flag of a DeleteObjects
    ``<Delete>`` body.

    MalformedXML when: not well-formed, oversized, no ``<Object>``, more than
    1000 of them, an ``<Object>`` without exactly one non-empty ``<Key>``, or a
    ``<Quiet>`` that is not true/false. ETag and other per-object elements
    are accepted and ignored. Key text is returned as written (XML
    entity-decoded, whitespace kept).
    """
    root = _parse(body, MAX_DELETE_BODY, "Delete")
    keys: list[tuple[str, str | None]] = []
    quiet = False
    seen_quiet = False
    for child in root:
        name = _local(child.tag)
        if name == "Object":
            if len(keys) >= MAX_DELETE_OBJECTS:
                raise E.MalformedXML()
            key_els = _children(child, "Key")
            if len(key_els) != 1 or len(key_els[0]) or not key_els[0].text:
                raise E.MalformedXML()
            vid_els = _children(child, "VersionId")
            keys.append((key_els[0].text, (vid_els[0].text or "") if vid_els else None))
        elif name == "Quiet":
            if seen_quiet:
                raise E.MalformedXML()
            seen_quiet = True
            value = (child.text or "").strip().lower()
            if value not in ("true", "false"):
                raise E.MalformedXML()
            quiet = value == "true"
    if not keys:
        raise E.MalformedXML()
    return keys, quiet


# ---------------------------------------------------------------- documents

def error_xml(code: str, message: str, *, resource: str | None = None,
              request_id: str, host_id: str = "",
              extra: dict[str, str] | None = None) -> bytes:
    """``<Error>`` body: Code, Message, the extra elements in order, Resource
    (when given), RequestId, HostId. No namespace, as S3."""
    root = _root("Error", namespace=False)
    _sub(root, "Code", code)
    _sub(root, "Message", message)
    for name, value in (extra or {}).items():
        _sub(root, name, value)
    if resource is not None:
        _sub(root, "Resource", resource)
    _sub(root, "RequestId", request_id)
    _sub(root, "HostId", host_id)
    return _serialize(root)


def list_buckets_xml(buckets: list[tuple], owner_id: str, owner_name: str, *,
                     continuation_token: str | None = None, prefix: str | None = None) -> bytes:
    """ListAllMyBucketsResult for ``(name, creation epoch ms[, region])``
    tuples (every region's buckets, with ``BucketRegion`` when given).
    DisplayName is left out when ``owner_name`` is empty. ContinuationToken
    (the next page's, when the list was cut short) and Prefix (when the
    request had one) come last, as in the API reference's Response Syntax."""
    root = _root("ListAllMyBucketsResult")
    _owner(root, (owner_id, owner_name))
    container = _sub(root, "Buckets")
    for name, created_ms, *region in buckets:
        b = _sub(container, "Bucket")
        _sub(b, "Name", name)
        _sub(b, "CreationDate", iso8601_ms(created_ms))
        if region and region[0]:
            _sub(b, "BucketRegion", region[0])
    if continuation_token is not None:
        _sub(root, "ContinuationToken", continuation_token)
    if prefix is not None:
        _sub(root, "Prefix", prefix)
    return _serialize(root)


def location_xml(region: str) -> bytes:
    """GetBucketLocation body; us-east-1 is the empty LocationConstraint."""
    root = _root("LocationConstraint")
    if region and region != "us-east-1":
        root.text = region
    return _serialize(root)


@dataclass(slots=True)
class ListEntry:
    """One object in a listing."""
    key: str
    last_modified_ms: int
    etag: str                       # unquoted "hex" or "hex-N" (quoted also accepted)
    size: int
    storage_class: str = "STANDARD"
    owner: tuple[str, str] | None = None   # (id, display name)
    checksum_algorithm: str | None = None  # "crc32" / "CRC32" ...
    checksum_type: str | None = None       # "FULL_OBJECT" / "COMPOSITE"


def _contents(root: _El, entry: ListEntry, enc: bool,
              owner: tuple[str, str] | None) -> None:
    # One string per entry: a listing writes a thousand of these, and an
    # element object per field cost ~25 ms a page here.
    key = url_encode(entry.key) if enc else entry.key
    xml = [f"<Contents><Key>{_escape_text(key)}</Key>"
           f"<LastModified>{iso8601_ms(entry.last_modified_ms)}</LastModified>"
           f"<ETag>{_escape_text(quote_etag(entry.etag))}</ETag>"]
    if entry.checksum_algorithm:
        xml.append(f"<ChecksumAlgorithm>{_escape_text(entry.checksum_algorithm.upper())}</ChecksumAlgorithm>")
        if entry.checksum_type:
            xml.append(f"<ChecksumType>{_escape_text(entry.checksum_type)}</ChecksumType>")
    xml.append(f"<Size>{int(entry.size)}</Size>")
    if owner is not None:
        oid, name = entry.owner or owner
        xml.append(f"<Owner><ID>{_escape_text(oid)}</ID>")
        if name:
            xml.append(f"<DisplayName>{_escape_text(name)}</DisplayName>")
        xml.append("</Owner>")
    xml.append(f"<StorageClass>{_escape_text(entry.storage_class)}</StorageClass></Contents>")
    root.children.append(_Raw("".join(xml)))


def _common_prefixes(root: _El, prefixes: list[str], enc: bool) -> None:
    for p in prefixes:
        cp = _sub(root, "CommonPrefixes")
        _sub(cp, "Prefix", url_encode(p) if enc else p)


def _page_settings(root: _El, max_keys: int, delimiter: str | None, encoding_type: str | None,
                   is_truncated: bool, e) -> None:
    """MaxKeys, [Delimiter], [EncodingType], IsTruncated: every listing's, in S3's order."""
    _sub(root, "MaxKeys", max_keys)
    if delimiter:
        _sub(root, "Delimiter", e(delimiter))
    if encoding_type:
        _sub(root, "EncodingType", encoding_type)
    _sub(root, "IsTruncated", _bool(is_truncated))


def _encoder(encoding_type: str | None):
    """``(enc, e)``: whether the client asked for ``encoding-type=url``, and the function
    that writes a key, prefix or marker as that asks (URL-encoded, or as it is)."""
    enc = encoding_type == "url"

    def e(v: str) -> str:
        return url_encode(v) if enc else v
    return enc, e


def list_objects_v1_xml(*, bucket: str, prefix: str | None, marker: str | None,
                        delimiter: str | None, max_keys: int, is_truncated: bool,
                        entries: list[ListEntry], common_prefixes: list[str],
                        next_marker: str | None, encoding_type: str | None,
                        owner: tuple[str, str]) -> bytes:
    """ListObjects (V1) ListBucketResult.

    Element order is S3's: Name, Prefix, Marker, [NextMarker], MaxKeys,
    [Delimiter], [EncodingType], IsTruncated, Contents..., CommonPrefixes....
    Prefix and Marker are always present (empty when not given). NextMarker
    is written only when a delimiter was given and the result is truncated,
    as S3 documents (without a delimiter clients use the last Key). Every
    Contents carries an Owner (the entry's own, else ``owner``).
    """
    enc, e = _encoder(encoding_type)

    root = _root("ListBucketResult")
    _sub(root, "Name", bucket)
    _sub(root, "Prefix", e(prefix or ""))
    _sub(root, "Marker", e(marker or ""))
    if next_marker is not None and delimiter and is_truncated:
        _sub(root, "NextMarker", e(next_marker))
    _page_settings(root, max_keys, delimiter, encoding_type, is_truncated, e)
    for entry in entries:
        _contents(root, entry, enc, owner)
    _common_prefixes(root, common_prefixes, enc)
    return _serialize(root)


def list_objects_v2_xml(*, bucket: str, prefix: str | None, delimiter: str | None,
                        max_keys: int, is_truncated: bool, entries: list[ListEntry],
                        common_prefixes: list[str], continuation_token: str | None,
                        next_continuation_token: str | None, start_after: str | None,
                        key_count: int, encoding_type: str | None, fetch_owner: bool,
                        owner: tuple[str, str]) -> bytes:
    """ListObjectsV2 ListBucketResult.

    Element order is S3's: Name, Prefix, [StartAfter], [ContinuationToken],
    [NextContinuationToken], KeyCount, MaxKeys, [Delimiter], [EncodingType],
    IsTruncated, Contents..., CommonPrefixes.... Owner only with
    ``fetch_owner``. Tokens are written as given (never URL-encoded).
    """
    enc, e = _encoder(encoding_type)

    root = _root("ListBucketResult")
    _sub(root, "Name", bucket)
    _sub(root, "Prefix", e(prefix or ""))
    if start_after:
        _sub(root, "StartAfter", e(start_after))
    if continuation_token is not None:
        _sub(root, "ContinuationToken", continuation_token)
    if next_continuation_token is not None:
        _sub(root, "NextContinuationToken", next_continuation_token)
    _sub(root, "KeyCount", key_count)
    _page_settings(root, max_keys, delimiter, encoding_type, is_truncated, e)
    for entry in entries:
        _contents(root, entry, enc, owner if fetch_owner else None)
    _common_prefixes(root, common_prefixes, enc)
    return _serialize(root)


def copy_object_result_xml(etag: str, last_modified_ms: int,
                           checksums: dict[str, str] | None = None, *,
                           checksum_type: str | None = None) -> bytes:
    """CopyObjectResult: ETag (quoted), LastModified, [ChecksumType],
    then ``Checksum<ALG>`` for each ``{alg: base64}`` in ``checksums``."""
    root = _root("CopyObjectResult")
    _sub(root, "ETag", quote_etag(etag))
    _sub(root, "LastModified", iso8601_ms(last_modified_ms))
    if checksums:
        if checksum_type:
            _sub(root, "ChecksumType", checksum_type)
        for alg, value in checksums.items():
            _sub(root, ELEMENT_NAMES[alg.lower()], value)
    return _serialize(root)


def delete_result_xml(deleted: list, errors: list[tuple],
                      quiet: bool) -> bytes:
    """DeleteResult: a ``<Deleted>`` per deleted key (left out when
    ``quiet``), then an ``<Error><Key>[<VersionId>]<Code><Message>`` per failure.

    A deleted item is a key, or (key, version id asked for, delete marker?,
    delete marker's version id): ``<Key>[<VersionId>][<DeleteMarker>
    <DeleteMarkerVersionId>]``, as S3 answers for a versioned bucket."""
    root = _root("DeleteResult")
    if not quiet:
        for item in deleted:
            key, vid, marker, marker_vid = (item, None, False, None) if isinstance(item, str) else item
            d = _sub(root, "Deleted")
            _sub(d, "Key", key)
            if vid is not None:
                _sub(d, "VersionId", vid)
            if marker:
                _sub(d, "DeleteMarker", "true")
                if marker_vid is not None:
                    _sub(d, "DeleteMarkerVersionId", marker_vid)
    for item in errors:
        key, code, message = item[0], item[-2], item[-1]
        err = _sub(root, "Error")
        _sub(err, "Key", key)
        if len(item) == 4 and item[1] is not None:
            _sub(err, "VersionId", item[1])
        _sub(err, "Code", code)
        _sub(err, "Message", message)
    return _serialize(root)


# ---------------------------------------------------------------- versioning
def versioning_xml(status: str | None) -> bytes:
    """GetBucketVersioning: ``<Status>`` once versioning was ever enabled, else empty."""
    root = _root("VersioningConfiguration")
    if status:
        _sub(root, "Status", status)
    return _serialize(root)


def parse_versioning(body: bytes) -> tuple[str | None, str | None]:
    """(Status, MfaDelete) of a PutBucketVersioning body (None where absent).
    MalformedXML for a body that is not one; IllegalVersioningConfigurationException
    for a Status or MfaDelete S3 does not know."""
    root = _parse(body, 64 * 1024, "VersioningConfiguration")
    status = mfa = None
    for child in root:
        name = _local(child.tag)
        if name == "Status":
            status = (child.text or "").strip()
            if status not in ("Enabled", "Suspended"):
                raise E.IllegalVersioningConfigurationException()
        elif name == "MfaDelete":
            mfa = (child.text or "").strip()
            if mfa not in ("Enabled", "Disabled"):
                raise E.IllegalVersioningConfigurationException()
    return status, mfa


@dataclass(slots=True)
class VersionEntry:
    """One version or delete marker in a ListObjectVersions page."""
    key: str
    version_id: str
    is_latest: bool
    last_modified_ms: int
    marker: bool = False
    etag: str = ""
    size: int = 0
    checksum_algorithm: str | None = None
    checksum_type: str | None = None
    storage_class: str = "STANDARD"


def list_versions_xml(*, bucket: str, prefix: str, delimiter: str | None, key_marker: str,
                      version_id_marker: str, max_keys: int, is_truncated: bool,
                      entries: list[VersionEntry], common_prefixes: list[str],
                      next_key_marker: str | None, next_version_id_marker: str | None,
                      encoding_type: str | None, owner: tuple[str, str]) -> bytes:
    """ListVersionsResult, in S3's element order: Name, Prefix, KeyMarker,
    VersionIdMarker, [NextKeyMarker, NextVersionIdMarker], MaxKeys,
    [Delimiter], [EncodingType], IsTruncated, then Version and DeleteMarker
    elements in key order (newest first within a key), CommonPrefixes."""
    enc, e = _encoder(encoding_type)

    root = _root("ListVersionsResult")
    _sub(root, "Name", bucket)
    _sub(root, "Prefix", e(prefix))
    _sub(root, "KeyMarker", e(key_marker))
    _sub(root, "VersionIdMarker", version_id_marker)
    if is_truncated and next_key_marker is not None:
        _sub(root, "NextKeyMarker", e(next_key_marker))
        if next_version_id_marker is not None:
            _sub(root, "NextVersionIdMarker", next_version_id_marker)
    _page_settings(root, max_keys, delimiter, encoding_type, is_truncated, e)
    oid, oname = owner
    who = f"<Owner><ID>{_escape_text(oid)}</ID>" + (f"<DisplayName>{_escape_text(oname)}</DisplayName>"
                                                     if oname else "") + "</Owner>"
    for v in entries:
        head = (f"<Key>{_escape_text(e(v.key))}</Key><VersionId>{_escape_text(v.version_id)}</VersionId>"
                f"<IsLatest>{_bool(v.is_latest)}</IsLatest>"
                f"<LastModified>{iso8601_ms(v.last_modified_ms)}</LastModified>")
        if v.marker:
            root.children.append(_Raw(f"<DeleteMarker>{head}{who}</DeleteMarker>"))
            continue
        xml = [f"<Version>{head}<ETag>{_escape_text(quote_etag(v.etag))}</ETag>"]
        if v.checksum_algorithm:
            xml.append(f"<ChecksumAlgorithm>{_escape_text(v.checksum_algorithm.upper())}</ChecksumAlgorithm>")
            if v.checksum_type:
                xml.append(f"<ChecksumType>{_escape_text(v.checksum_type)}</ChecksumType>")
        xml.append(f"<Size>{int(v.size)}</Size><StorageClass>{_escape_text(v.storage_class)}</StorageClass>"
                   f"{who}</Version>")
        root.children.append(_Raw("".join(xml)))
    _common_prefixes(root, common_prefixes, enc)
    return _serialize(root)


# ---------------------------------------------------------------- multipart
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


def _checksum_element(alg: str) -> str:
    """``crc32``/``CRC32`` -> ``ChecksumCRC32``."""
    return ELEMENT_NAMES[alg.lower()]


def _principal_xml(tag: str, principal: tuple[str, str]) -> str:
    """``<Owner>``/``<Initiator>`` with ID and (when non-empty) DisplayName,
    as :func:`_owner` writes them."""
    pid, name = principal
    xml = f"<{tag}><ID>{_escape_text(pid)}</ID>"
    if name:
        xml += f"<DisplayName>{_escape_text(name)}</DisplayName>"
    return xml + f"</{tag}>"


def _leaf_text(el: ET.Element) -> str:
    """Text of an element that must hold only text (no child elements)."""
    if len(el):
        raise E.MalformedXML()
    return el.text or ""


def initiate_multipart_upload_xml(bucket: str, key: str, upload_id: str) -> bytes:
    """CreateMultipartUpload's InitiateMultipartUploadResult: Bucket, Key,
    UploadId."""
    root = _root("InitiateMultipartUploadResult")
    _sub(root, "Bucket", bucket)
    _sub(root, "Key", key)
    _sub(root, "UploadId", upload_id)
    return _serialize(root)


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
    root = _parse(body, MAX_COMPLETE_MULTIPART_BODY, "CompleteMultipartUpload")
    parts: list[dict] = []
    for child in root:
        if _local(child.tag) != "Part":
            continue
        if len(parts) >= MAX_COMPLETE_PARTS:
            raise E.MalformedXML()
        number_text: str | None = None
        etag: str | None = None
        checksums: dict[str, str] = {}
        for el in child:
            name = _local(el.tag)
            if name == "PartNumber":
                if number_text is not None:
                    raise E.MalformedXML()
                number_text = _leaf_text(el)
            elif name == "ETag":
                if etag is not None:
                    raise E.MalformedXML()
                etag = _leaf_text(el)
            elif name in _CHECKSUM_ELEMENTS:
                alg = _CHECKSUM_ELEMENTS[name]
                if alg in checksums:
                    raise E.MalformedXML()
                checksums[alg] = _leaf_text(el)
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
        parts.append({"part": number, "etag": etag, "checksums": checksums})
    if not parts:
        raise E.MalformedXML()
    return parts


def complete_multipart_upload_xml(*, location: str, bucket: str, key: str, etag: str,
                                  checksum: tuple[str, str] | None = None,
                                  checksum_type: str | None = None) -> bytes:
    """CompleteMultipartUploadResult: Location, Bucket, Key, ETag (quoted),
    then ``Checksum<ALG>`` for ``checksum = (alg, base64)``, then
    ChecksumType -- the order of the API reference."""
    root = _root("CompleteMultipartUploadResult")
    _sub(root, "Location", location)
    _sub(root, "Bucket", bucket)
    _sub(root, "Key", key)
    _sub(root, "ETag", quote_etag(etag))
    if checksum is not None:
        _sub(root, _checksum_element(checksum[0]), checksum[1])
    if checksum_type:
        _sub(root, "ChecksumType", checksum_type)
    return _serialize(root)


def _part_xml(part: dict) -> str:
    xml = (f"<Part><PartNumber>{int(part['part'])}</PartNumber>"
           f"<LastModified>{iso8601_ms(part['mtime_ms'])}</LastModified>"
           f"<ETag>{_escape_text(quote_etag(part['etag']))}</ETag>"
           f"<Size>{int(part['size'])}</Size>")
    checksum = part.get("checksum")
    if checksum:
        name = _checksum_element(checksum["alg"])
        xml += f"<{name}>{_escape_text(checksum['value'])}</{name}>"
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
    root = _root("ListPartsResult")
    _sub(root, "Bucket", bucket)
    _sub(root, "Key", key)
    _sub(root, "UploadId", upload_id)
    _sub(root, "PartNumberMarker", int(part_number_marker))
    if next_part_number_marker is not None:
        _sub(root, "NextPartNumberMarker", int(next_part_number_marker))
    _sub(root, "MaxParts", int(max_parts))
    _sub(root, "IsTruncated", _bool(truncated))
    if parts:
        root.children.append(_Raw("".join(_part_xml(p) for p in parts)))
    root.children.append(_Raw(_principal_xml("Initiator", owner)
                              + _principal_xml("Owner", owner)))
    _sub(root, "StorageClass", storage_class)
    if checksum_algorithm:
        _sub(root, "ChecksumAlgorithm", checksum_algorithm.upper())
    if checksum_type:
        _sub(root, "ChecksumType", checksum_type)
    return _serialize(root)


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
    enc, e = _encoder(encoding_type)

    root = _root("ListMultipartUploadsResult")
    _sub(root, "Bucket", bucket)
    _sub(root, "KeyMarker", e(key_marker or ""))
    _sub(root, "UploadIdMarker", upload_id_marker or "")
    _sub(root, "NextKeyMarker", e(next_key_marker or ""))
    _sub(root, "NextUploadIdMarker", next_upload_id_marker or "")
    if delimiter:
        _sub(root, "Delimiter", e(delimiter))
    if prefix is not None:
        _sub(root, "Prefix", e(prefix))
    if encoding_type:
        _sub(root, "EncodingType", encoding_type)
    _sub(root, "MaxUploads", int(max_uploads))
    _sub(root, "IsTruncated", _bool(truncated))
    if uploads:
        principals = _principal_xml("Initiator", owner) + _principal_xml("Owner", owner)
        xml: list[str] = []
        for u in uploads:
            xml.append(f"<Upload><Key>{_escape_text(e(u['key']))}</Key>"
                       f"<UploadId>{_escape_text(u['upload_id'])}</UploadId>{principals}"
                       f"<StorageClass>{_escape_text(u.get('storage_class') or 'STANDARD')}"
                       f"</StorageClass>"
                       f"<Initiated>{iso8601_ms(u['initiated_ms'])}</Initiated>")
            if u.get("checksum_algorithm"):
                xml.append(f"<ChecksumAlgorithm>{_escape_text(u['checksum_algorithm'].upper())}"
                           f"</ChecksumAlgorithm>")
            if u.get("checksum_type"):
                xml.append(f"<ChecksumType>{_escape_text(u['checksum_type'])}</ChecksumType>")
            xml.append("</Upload>")
        root.children.append(_Raw("".join(xml)))
    _common_prefixes(root, prefixes, enc)
    return _serialize(root)


def copy_part_result_xml(etag: str, last_modified_ms: int,
                         checksum: tuple[str, str] | None = None) -> bytes:
    """UploadPartCopy's CopyPartResult: ETag (quoted), LastModified, then
    ``Checksum<ALG>`` for ``checksum = (alg, base64)``."""
    root = _root("CopyPartResult")
    _sub(root, "ETag", quote_etag(etag))
    _sub(root, "LastModified", iso8601_ms(last_modified_ms))
    if checksum is not None:
        _sub(root, _checksum_element(checksum[0]), checksum[1])
    return _serialize(root)
