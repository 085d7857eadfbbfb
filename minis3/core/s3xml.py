"""S3's XML documents: errors, buckets, object listings (v1, v2), copy and delete results,
and versioning. How they are written and parsed (escaping, ``encoding-type=url``, the
element builder, safe parsing) is in ``core/xmldoc.py``; the multipart documents are in
``core/multipart_xml.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

from minis3.core import errors as E
from minis3.core import xmldoc as X
from minis3.core.checksums import ELEMENT_NAMES
from minis3.core.xmldoc import iso8601_ms, quote_etag, url_encode

#: Largest CreateBucketConfiguration body we parse.
MAX_CREATE_BUCKET_BODY = 1 << 20
#: Largest Delete body we parse (1000 keys of 1024 bytes, escaped, with version
#: ids and ETags, stay well below this).
MAX_DELETE_BODY = 8 << 20
#: Most objects one DeleteObjects request may name.
MAX_DELETE_OBJECTS = 1000


def parse_create_bucket(body: bytes) -> str | None:
    """LocationConstraint of a CreateBucketConfiguration body.

    An empty body, a configuration without the element, or an empty element
    are all None (us-east-1). Other elements (Location, Bucket, Tags) are
    accepted and ignored.
    """
    if not body or not body.strip():
        return None
    root = X.parse(body, MAX_CREATE_BUCKET_BODY, "CreateBucketConfiguration")
    found = X.children(root, "LocationConstraint")
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
    root = X.parse(body, MAX_DELETE_BODY, "Delete")
    keys: list[tuple[str, str | None]] = []
    quiet = False
    seen_quiet = False
    for child in root:
        name = X.local(child.tag)
        if name == "Object":
            if len(keys) >= MAX_DELETE_OBJECTS:
                raise E.MalformedXML()
            key_els = X.children(child, "Key")
            if len(key_els) != 1 or len(key_els[0]) or not key_els[0].text:
                raise E.MalformedXML()
            vid_els = X.children(child, "VersionId")
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
    root = X.root("Error", namespace=False)
    X.sub(root, "Code", code)
    X.sub(root, "Message", message)
    for name, value in (extra or {}).items():
        X.sub(root, name, value)
    if resource is not None:
        X.sub(root, "Resource", resource)
    X.sub(root, "RequestId", request_id)
    X.sub(root, "HostId", host_id)
    return X.serialize(root)


def list_buckets_xml(buckets: list[tuple], owner_id: str, owner_name: str, *,
                     continuation_token: str | None = None, prefix: str | None = None) -> bytes:
    """ListAllMyBucketsResult for ``(name, creation epoch ms[, region])``
    tuples (every region's buckets, with ``BucketRegion`` when given).
    DisplayName is left out when ``owner_name`` is empty. ContinuationToken
    (the next page's, when the list was cut short) and Prefix (when the
    request had one) come last, as in the API reference's Response Syntax."""
    root = X.root("ListAllMyBucketsResult")
    X.owner(root, (owner_id, owner_name))
    container = X.sub(root, "Buckets")
    for name, created_ms, *region in buckets:
        b = X.sub(container, "Bucket")
        X.sub(b, "Name", name)
        X.sub(b, "CreationDate", iso8601_ms(created_ms))
        if region and region[0]:
            X.sub(b, "BucketRegion", region[0])
    if continuation_token is not None:
        X.sub(root, "ContinuationToken", continuation_token)
    if prefix is not None:
        X.sub(root, "Prefix", prefix)
    return X.serialize(root)


def location_xml(region: str) -> bytes:
    """GetBucketLocation body; us-east-1 is the empty LocationConstraint."""
    root = X.root("LocationConstraint")
    if region and region != "us-east-1":
        root.text = region
    return X.serialize(root)


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


def _contents(root: X.El, entry: ListEntry, enc: bool,
              owner: tuple[str, str] | None) -> None:
    # One string per entry: a listing writes a thousand of these, and an
    # element object per field cost ~25 ms a page here.
    key = url_encode(entry.key) if enc else entry.key
    xml = [f"<Contents><Key>{X.escape_text(key)}</Key>"
           f"<LastModified>{iso8601_ms(entry.last_modified_ms)}</LastModified>"
           f"<ETag>{X.escape_text(quote_etag(entry.etag))}</ETag>"]
    if entry.checksum_algorithm:
        xml.append(f"<ChecksumAlgorithm>{X.escape_text(entry.checksum_algorithm.upper())}</ChecksumAlgorithm>")
        if entry.checksum_type:
            xml.append(f"<ChecksumType>{X.escape_text(entry.checksum_type)}</ChecksumType>")
    xml.append(f"<Size>{int(entry.size)}</Size>")
    if owner is not None:
        oid, name = entry.owner or owner
        xml.append(f"<Owner><ID>{X.escape_text(oid)}</ID>")
        if name:
            xml.append(f"<DisplayName>{X.escape_text(name)}</DisplayName>")
        xml.append("</Owner>")
    xml.append(f"<StorageClass>{X.escape_text(entry.storage_class)}</StorageClass></Contents>")
    root.children.append(X.Raw("".join(xml)))


def _page_settings(root: X.El, max_keys: int, delimiter: str | None, encoding_type: str | None,
                   is_truncated: bool, e) -> None:
    """MaxKeys, [Delimiter], [EncodingType], IsTruncated: every listing's, in S3's order."""
    X.sub(root, "MaxKeys", max_keys)
    if delimiter:
        X.sub(root, "Delimiter", e(delimiter))
    if encoding_type:
        X.sub(root, "EncodingType", encoding_type)
    X.sub(root, "IsTruncated", X.xml_bool(is_truncated))


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
    enc, e = X.encoder(encoding_type)

    root = X.root("ListBucketResult")
    X.sub(root, "Name", bucket)
    X.sub(root, "Prefix", e(prefix or ""))
    X.sub(root, "Marker", e(marker or ""))
    if next_marker is not None and delimiter and is_truncated:
        X.sub(root, "NextMarker", e(next_marker))
    _page_settings(root, max_keys, delimiter, encoding_type, is_truncated, e)
    for entry in entries:
        _contents(root, entry, enc, owner)
    X.common_prefixes(root, common_prefixes, enc)
    return X.serialize(root)


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
    enc, e = X.encoder(encoding_type)

    root = X.root("ListBucketResult")
    X.sub(root, "Name", bucket)
    X.sub(root, "Prefix", e(prefix or ""))
    if start_after:
        X.sub(root, "StartAfter", e(start_after))
    if continuation_token is not None:
        X.sub(root, "ContinuationToken", continuation_token)
    if next_continuation_token is not None:
        X.sub(root, "NextContinuationToken", next_continuation_token)
    X.sub(root, "KeyCount", key_count)
    _page_settings(root, max_keys, delimiter, encoding_type, is_truncated, e)
    for entry in entries:
        _contents(root, entry, enc, owner if fetch_owner else None)
    X.common_prefixes(root, common_prefixes, enc)
    return X.serialize(root)


def copy_object_result_xml(etag: str, last_modified_ms: int,
                           checksums: dict[str, str] | None = None, *,
                           checksum_type: str | None = None) -> bytes:
    """CopyObjectResult: ETag (quoted), LastModified, [ChecksumType],
    then ``Checksum<ALG>`` for each ``{alg: base64}`` in ``checksums``."""
    root = X.root("CopyObjectResult")
    X.sub(root, "ETag", quote_etag(etag))
    X.sub(root, "LastModified", iso8601_ms(last_modified_ms))
    if checksums:
        if checksum_type:
            X.sub(root, "ChecksumType", checksum_type)
        for alg, value in checksums.items():
            X.sub(root, ELEMENT_NAMES[alg.lower()], value)
    return X.serialize(root)


def delete_result_xml(deleted: list, errors: list[tuple],
                      quiet: bool) -> bytes:
    """DeleteResult: a ``<Deleted>`` per deleted key (left out when
    ``quiet``), then an ``<Error><Key>[<VersionId>]<Code><Message>`` per failure.

    A deleted item is a key, or (key, version id asked for, delete marker?,
    delete marker's version id): ``<Key>[<VersionId>][<DeleteMarker>
    <DeleteMarkerVersionId>]``, as S3 answers for a versioned bucket."""
    root = X.root("DeleteResult")
    if not quiet:
        for item in deleted:
            key, vid, marker, marker_vid = (item, None, False, None) if isinstance(item, str) else item
            d = X.sub(root, "Deleted")
            X.sub(d, "Key", key)
            if vid is not None:
                X.sub(d, "VersionId", vid)
            if marker:
                X.sub(d, "DeleteMarker", "true")
                if marker_vid is not None:
                    X.sub(d, "DeleteMarkerVersionId", marker_vid)
    for item in errors:
        key, code, message = item[0], item[-2], item[-1]
        err = X.sub(root, "Error")
        X.sub(err, "Key", key)
        if len(item) == 4 and item[1] is not None:
            X.sub(err, "VersionId", item[1])
        X.sub(err, "Code", code)
        X.sub(err, "Message", message)
    return X.serialize(root)


# ---------------------------------------------------------------- versioning
def versioning_xml(status: str | None) -> bytes:
    """GetBucketVersioning: ``<Status>`` once versioning was ever enabled, else empty."""
    root = X.root("VersioningConfiguration")
    if status:
        X.sub(root, "Status", status)
    return X.serialize(root)


def parse_versioning(body: bytes) -> tuple[str | None, str | None]:
    """(Status, MfaDelete) of a PutBucketVersioning body (None where absent).
    MalformedXML for a body that is not one; IllegalVersioningConfigurationException
    for a Status or MfaDelete S3 does not know."""
    root = X.parse(body, 64 * 1024, "VersioningConfiguration")
    status = mfa = None
    for child in root:
        name = X.local(child.tag)
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
    enc, e = X.encoder(encoding_type)

    root = X.root("ListVersionsResult")
    X.sub(root, "Name", bucket)
    X.sub(root, "Prefix", e(prefix))
    X.sub(root, "KeyMarker", e(key_marker))
    X.sub(root, "VersionIdMarker", version_id_marker)
    if is_truncated and next_key_marker is not None:
        X.sub(root, "NextKeyMarker", e(next_key_marker))
        if next_version_id_marker is not None:
            X.sub(root, "NextVersionIdMarker", next_version_id_marker)
    _page_settings(root, max_keys, delimiter, encoding_type, is_truncated, e)
    oid, oname = owner
    who = f"<Owner><ID>{X.escape_text(oid)}</ID>" + (f"<DisplayName>{X.escape_text(oname)}</DisplayName>"
                                                     if oname else "") + "</Owner>"
    for v in entries:
        head = (f"<Key>{X.escape_text(e(v.key))}</Key><VersionId>{X.escape_text(v.version_id)}</VersionId>"
                f"<IsLatest>{X.xml_bool(v.is_latest)}</IsLatest>"
                f"<LastModified>{iso8601_ms(v.last_modified_ms)}</LastModified>")
        if v.marker:
            root.children.append(X.Raw(f"<DeleteMarker>{head}{who}</DeleteMarker>"))
            continue
        xml = [f"<Version>{head}<ETag>{X.escape_text(quote_etag(v.etag))}</ETag>"]
        if v.checksum_algorithm:
            xml.append(f"<ChecksumAlgorithm>{X.escape_text(v.checksum_algorithm.upper())}</ChecksumAlgorithm>")
            if v.checksum_type:
                xml.append(f"<ChecksumType>{X.escape_text(v.checksum_type)}</ChecksumType>")
        xml.append(f"<Size>{int(v.size)}</Size><StorageClass>{X.escape_text(v.storage_class)}</StorageClass>"
                   f"{who}</Version>")
        root.children.append(X.Raw("".join(xml)))
    X.common_prefixes(root, common_prefixes, enc)
    return X.serialize(root)


def post_response_xml(location: str, bucket: str, key: str, etag: str) -> bytes:
    """A form upload's answer with ``success_action_status=201``: where the object is."""
    root = X.root("PostResponse", namespace=False)
    X.leaves(root, ("Location", location), ("Bucket", bucket), ("Key", key), ("ETag", etag))
    return X.serialize(root)
