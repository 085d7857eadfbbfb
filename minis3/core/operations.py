"""Which S3 operation a request is: method × level × sub-resource, as a table.

S3 tells its operations apart by the HTTP method, whether the path names a
bucket and a key (the *level*: service, bucket or object), which
sub-resource the query string names (``?tagging``, ``?uploads``,
``?list-type=2``) and, for a few, a header (``x-amz-copy-source``). Every
operation in botocore's S3 model has a row here, in the order they are
tried: the first row whose query keys and header are all present wins, so
the more specific rows come first and each level's plain operation last.
``minis3/frontend/dispatch.py`` maps the names to handlers; an operation
with no handler answers S3's ``NotImplemented`` error naming it.
``docs/compatibility.md`` is generated from this table and the handlers
(``python -m minis3.frontend.compat``), and a test checks both against
botocore's model.

Pure: no I/O, no aiohttp.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping


@dataclass(frozen=True)
class Row:
    op: str                       # the operation's name in S3's API (botocore's model)
    method: str
    level: str                    # "service" | "bucket" | "object"
    query: tuple[str, ...] = ()   # query keys that must be present ("k" or "k=v")
    header: str | None = None     # a header that must be present
    same_as: str | None = None    # another operation whose request looks exactly like this one's


def _rows(method: str, level: str, spec: Iterable) -> list[Row]:
    out = []
    for item in spec:
        op, *rest = item if isinstance(item, tuple) else (item,)
        query = rest[0] if rest else ()
        out.append(Row(op, method, level, (query,) if isinstance(query, str) else tuple(query),
                       rest[1] if len(rest) > 1 else None))
    return out


# Bucket configurations S3 has one operation each for GET, PUT and DELETE of.
_CONFIG = [("Accelerate", "accelerate", "GP"), ("Acl", "acl", "GP"), ("Cors", "cors", "GPD"),
           ("Encryption", "encryption", "GPD"), ("Logging", "logging", "GP"),
           ("OwnershipControls", "ownershipControls", "GPD"), ("Policy", "policy", "GPD"),
           ("Replication", "replication", "GPD"), ("RequestPayment", "requestPayment", "GP"),
           ("Tagging", "tagging", "GPD"), ("Versioning", "versioning", "GP"), ("Website", "website", "GPD"),
           ("Abac", "abac", "GP"), ("DefaultStorageClass", "default-storage-class", "GP"),
           ("MetadataConfiguration", "metadataConfiguration", "GD"),
           ("MetadataTableConfiguration", "metadataTable", "GD")]


def _config(verb: str, letter: str) -> list[tuple]:
    out = []
    for name, sub, verbs in _CONFIG:
        if letter in verbs.upper():
            op = f"{verb}Bucket{name}" + ("Configuration" if name == "Accelerate" else "")
            out.append((op, sub))
    return out


ROWS: list[Row] = [
    *_rows("GET", "service", ["ListBuckets"]),
    *_rows("HEAD", "service", ["ListBuckets"]),
    # ----------------------------------------------------------------- bucket
    *_rows("GET", "bucket", [
        ("GetBucketLocation", "location"), ("ListMultipartUploads", "uploads"), ("ListObjectVersions", "versions"),
        ("GetBucketAnalyticsConfiguration", ("analytics", "id")), ("ListBucketAnalyticsConfigurations", "analytics"),
        ("GetBucketIntelligentTieringConfiguration", ("intelligent-tiering", "id")),
        ("ListBucketIntelligentTieringConfigurations", "intelligent-tiering"),
        ("GetBucketInventoryConfiguration", ("inventory", "id")), ("ListBucketInventoryConfigurations", "inventory"),
        ("GetBucketMetricsConfiguration", ("metrics", "id")), ("ListBucketMetricsConfigurations", "metrics"),
        ("GetBucketLifecycleConfiguration", "lifecycle"), ("GetBucketNotificationConfiguration", "notification"),
        ("GetObjectLockConfiguration", "object-lock"), ("GetBucketPolicyStatus", "policyStatus"),
        ("GetPublicAccessBlock", "publicAccessBlock"), ("CreateSession", "session"),
        *_config("Get", "G"),
        ("ListObjectsV2", "list-type=2"), "ListObjects"]),
    *_rows("PUT", "bucket", [
        ("PutBucketAnalyticsConfiguration", "analytics"),
        ("PutBucketIntelligentTieringConfiguration", "intelligent-tiering"),
        ("PutBucketInventoryConfiguration", "inventory"), ("PutBucketMetricsConfiguration", "metrics"),
        ("PutBucketLifecycleConfiguration", "lifecycle"), ("PutBucketNotificationConfiguration", "notification"),
        ("PutObjectLockConfiguration", "object-lock"), ("PutPublicAccessBlock", "publicAccessBlock"),
        ("UpdateBucketMetadataAnnotationTableConfiguration", "metadataAnnotationTable"),
        ("UpdateBucketMetadataInventoryTableConfiguration", "metadataInventoryTable"),
        ("UpdateBucketMetadataJournalTableConfiguration", "metadataJournalTable"),
        *_config("Put", "P"),
        "CreateBucket"]),
    *_rows("DELETE", "bucket", [
        ("DeleteBucketAnalyticsConfiguration", "analytics"),
        ("DeleteBucketIntelligentTieringConfiguration", "intelligent-tiering"),
        ("DeleteBucketInventoryConfiguration", "inventory"), ("DeleteBucketMetricsConfiguration", "metrics"),
        ("DeleteBucketLifecycle", "lifecycle"), ("DeletePublicAccessBlock", "publicAccessBlock"),
        *_config("Delete", "D"),
        "DeleteBucket"]),
    *_rows("HEAD", "bucket", ["HeadBucket"]),
    *_rows("POST", "bucket", [
        ("DeleteObjects", "delete"),
        ("CreateBucketMetadataConfiguration", "metadataConfiguration"),
        ("CreateBucketMetadataTableConfiguration", "metadataTable"),
        # Object Lambda's callback: POST /WriteGetObjectResponse, with its route header.
        ("WriteGetObjectResponse", (), "x-amz-request-route"),
        # A browser's HTML form upload (S3's "POST Object"; no SDK operation).
        "PostObject"]),
    # ----------------------------------------------------------------- object
    *_rows("GET", "object", [
        ("GetPart", "part"), ("ListParts", "uploadId"), ("GetObjectTagging", "tagging"), ("GetObjectAttributes", "attributes"),
        ("GetObjectAcl", "acl"), ("GetObjectAnnotation", "annotation"), ("GetObjectLegalHold", "legal-hold"),
        ("GetObjectRetention", "retention"), ("GetObjectTorrent", "torrent"),
        "GetObject"]),
    *_rows("PUT", "object", [
        ("UploadPartCopy", "uploadId", "x-amz-copy-source"), ("UploadPart", "uploadId"),
        ("PutObjectTagging", "tagging"), ("PutObjectAcl", "acl"), ("PutObjectAnnotation", "annotation"),
        ("PutObjectLegalHold", "legal-hold"), ("PutObjectRetention", "retention"),
        ("RenameObject", "renameObject"), ("UpdateObjectEncryption", "encryption"),
        ("CopyObject", (), "x-amz-copy-source"), "PutObject"]),
    *_rows("POST", "object", [
        ("CreateMultipartUpload", "uploads"), ("CompleteMultipartUpload", "uploadId"),
        ("RestoreObject", "restore"), ("SelectObjectContent", "select")]),
    *_rows("DELETE", "object", [
        ("AbortMultipartUpload", "uploadId"), ("DeleteObjectTagging", "tagging"),
        ("DeleteObjectAnnotation", "annotation"), "DeleteObject"]),
    *_rows("HEAD", "object", ["HeadObject"]),
]

#: Operations of botocore's model whose requests are the same as another's on
#: the wire (older names, or the same call for another kind of bucket): minis3
#: answers them as that one.
SAME_AS = {
    "GetBucketLifecycle": "GetBucketLifecycleConfiguration",
    "PutBucketLifecycle": "PutBucketLifecycleConfiguration",
    "GetBucketNotification": "GetBucketNotificationConfiguration",
    "PutBucketNotification": "PutBucketNotificationConfiguration",
    "ListDirectoryBuckets": "ListBuckets",
    "ListObjectAnnotations": "GetObjectAnnotation",
}

#: Query parameters that never select an operation (botocore adds ``x-id``
#: to name the operation for logs; S3 ignores it).
IGNORED_QUERY = frozenset({"x-id"})


def is_auth_parameter(name: str) -> bool:
    """A presigned URL's own parameters (SigV4's X-Amz-*, SigV2's), never a sub-resource."""
    return name.lower().startswith("x-amz-") or name in ("AWSAccessKeyId", "Signature", "Expires")


def level_of(bucket: str | None, key: str | None) -> str:
    return "service" if bucket is None else "bucket" if key is None else "object"


def _has(query: Mapping[str, str], want: str) -> bool:
    name, eq, value = want.partition("=")
    return name in query and (not eq or query[name] == value)


def resolve(method: str, level: str, query: Mapping[str, str], headers: Mapping[str, str]) -> str | None:
    """The operation a request is (its name), or None: no operation of S3
    is this method at this level (405 MethodNotAllowed). ``headers``: lower-case names."""
    for row in _BY_METHOD_LEVEL.get((method, level), ()):
        if all(_has(query, q) for q in row.query) and (row.header is None or row.header in headers):
            return row.op
    return None


_BY_METHOD_LEVEL: dict[tuple[str, str], list[Row]] = {}
for _row in ROWS:
    _BY_METHOD_LEVEL.setdefault((_row.method, _row.level), []).append(_row)

#: Every sub-resource some row selects on (for requests naming one that the
#: method does not have at that level).
SUB_RESOURCES = frozenset(q.partition("=")[0] for r in ROWS for q in r.query)
