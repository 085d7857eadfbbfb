"""Which policy actions an S3 request needs, on which resources: what a bucket policy's
``Action`` and ``Resource`` are matched against (core/policy.py). Pure: no I/O.

S3's "Policy actions" page names three kinds of mapping from an API operation to the policy
actions it requires, and all three are here:
- one to one with the same name: PutBucketPolicy needs ``s3:PutBucketPolicy``;
- one to one with another name: ListObjectsV2 needs ``s3:ListBucket``, DeleteBucketCors
  ``s3:PutBucketCORS``;
- one to several: HeadObject needs ``s3:GetObject``; CopyObject needs ``s3:PutObject`` on the
  destination and ``s3:GetObject`` on the source; GetObjectAttributes needs
  ``s3:GetObject`` and ``s3:GetObjectAttributes``.
A request for one version (``versionId``) of an object needs the ``...Version`` action
(``s3:GetObjectVersion``, ``s3:DeleteObjectVersion``, ``s3:GetObjectVersionTagging``...).

An operation not named below needs ``s3:`` + its name (S3's newest operations, which minis3
answers NotImplemented anyway).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

#: Operation -> action, where the name differs (bucket and service level).
_RENAMED = {
    "ListBuckets": "s3:ListAllMyBuckets", "HeadBucket": "s3:ListBucket", "ListObjects": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket", "ListObjectVersions": "s3:ListBucketVersions",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads", "ListParts": "s3:ListMultipartUploadParts",
    "GetBucketCors": "s3:GetBucketCORS", "PutBucketCors": "s3:PutBucketCORS", "DeleteBucketCors": "s3:PutBucketCORS",
    "DeleteBucketTagging": "s3:PutBucketTagging",
    "GetBucketLifecycleConfiguration": "s3:GetLifecycleConfiguration",
    "PutBucketLifecycleConfiguration": "s3:PutLifecycleConfiguration",
    "DeleteBucketLifecycle": "s3:PutLifecycleConfiguration",
    "GetBucketEncryption": "s3:GetEncryptionConfiguration", "PutBucketEncryption": "s3:PutEncryptionConfiguration",
    "DeleteBucketEncryption": "s3:PutEncryptionConfiguration",
    "GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock", "PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "DeletePublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "DeleteBucketOwnershipControls": "s3:PutBucketOwnershipControls",
    "GetObjectLockConfiguration": "s3:GetBucketObjectLockConfiguration",
    "PutObjectLockConfiguration": "s3:PutBucketObjectLockConfiguration",
    "GetBucketReplication": "s3:GetReplicationConfiguration", "PutBucketReplication": "s3:PutReplicationConfiguration",
    "DeleteBucketReplication": "s3:PutReplicationConfiguration",
    "GetBucketAccelerateConfiguration": "s3:GetAccelerateConfiguration",
    "PutBucketAccelerateConfiguration": "s3:PutAccelerateConfiguration",
    "GetBucketNotificationConfiguration": "s3:GetBucketNotification",
    "PutBucketNotificationConfiguration": "s3:PutBucketNotification",
    "GetBucketAnalyticsConfiguration": "s3:GetAnalyticsConfiguration",
    "ListBucketAnalyticsConfigurations": "s3:GetAnalyticsConfiguration",
    "PutBucketAnalyticsConfiguration": "s3:PutAnalyticsConfiguration",
    "DeleteBucketAnalyticsConfiguration": "s3:PutAnalyticsConfiguration",
    "GetBucketMetricsConfiguration": "s3:GetMetricsConfiguration",
    "ListBucketMetricsConfigurations": "s3:GetMetricsConfiguration",
    "PutBucketMetricsConfiguration": "s3:PutMetricsConfiguration",
    "DeleteBucketMetricsConfiguration": "s3:PutMetricsConfiguration",
    "GetBucketInventoryConfiguration": "s3:GetInventoryConfiguration",
    "ListBucketInventoryConfigurations": "s3:GetInventoryConfiguration",
    "PutBucketInventoryConfiguration": "s3:PutInventoryConfiguration",
    "DeleteBucketInventoryConfiguration": "s3:PutInventoryConfiguration",
    "GetBucketIntelligentTieringConfiguration": "s3:GetIntelligentTieringConfiguration",
    "ListBucketIntelligentTieringConfigurations": "s3:GetIntelligentTieringConfiguration",
    "PutBucketIntelligentTieringConfiguration": "s3:PutIntelligentTieringConfiguration",
    "DeleteBucketIntelligentTieringConfiguration": "s3:PutIntelligentTieringConfiguration",
    "HeadObject": "s3:GetObject", "GetObjectTorrent": "s3:GetObject", "SelectObjectContent": "s3:GetObject",
    "CreateMultipartUpload": "s3:PutObject", "UploadPart": "s3:PutObject", "CompleteMultipartUpload": "s3:PutObject",
    "PostObject": "s3:PutObject",
}

#: Object actions that have a ``...Version`` form for a request naming a version.
_VERSIONED = {"s3:GetObject": "s3:GetObjectVersion", "s3:DeleteObject": "s3:DeleteObjectVersion",
              "s3:GetObjectTagging": "s3:GetObjectVersionTagging", "s3:PutObjectTagging": "s3:PutObjectVersionTagging",
              "s3:DeleteObjectTagging": "s3:DeleteObjectVersionTagging", "s3:GetObjectAcl": "s3:GetObjectVersionAcl",
              "s3:PutObjectAcl": "s3:PutObjectVersionAcl",
              "s3:GetObjectAttributes": "s3:GetObjectVersionAttributes"}


@dataclass(frozen=True)
class Need:
    """One action a request needs, on one resource (an ARN, or ``*`` for ListAllMyBuckets)."""
    action: str
    resource: str


def bucket_arn(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}"


def object_arn(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


def needs(op: str, bucket: str | None, key: str | None, query: Mapping[str, str] | None = None,
          copy_source: tuple[str, str, str | None] | None = None) -> list[Need]:
    """The actions operation ``op`` (its name in S3's API) needs. ``query``: the request's,
    for ``versionId``; ``copy_source``: (bucket, key, version id) of a CopyObject or
    UploadPartCopy, which also needs to read the source. DeleteObjects is decided key by
    key, as DeleteObject (S3 answers each key of the batch alone)."""
    if op == "ListBuckets":
        return [Need("s3:ListAllMyBuckets", "*")]
    if op == "DeleteObjects":       # each key it names is decided alone, as a DeleteObject
        raise ValueError("DeleteObjects is decided per key: ask for DeleteObject of each")
    version = (query or {}).get("versionId") is not None
    if op in ("CopyObject", "UploadPartCopy"):
        out = [Need("s3:PutObject", object_arn(bucket, key))]
        if copy_source is not None:
            src_bucket, src_key, src_version = copy_source
            out.append(Need("s3:GetObjectVersion" if src_version else "s3:GetObject", object_arn(src_bucket, src_key)))
        return out
    resource = object_arn(bucket, key) if key is not None else bucket_arn(bucket or "")
    if op == "GetObjectAttributes":
        return [Need(_VERSIONED["s3:GetObject"] if version else "s3:GetObject", resource),
                Need(_VERSIONED["s3:GetObjectAttributes"] if version else "s3:GetObjectAttributes", resource)]
    action = _RENAMED.get(op, "s3:" + op)
    if version and key is not None:
        action = _VERSIONED.get(action, action)
    return [Need(action, resource)]
