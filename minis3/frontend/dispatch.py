"""Which handler answers a request: the operation (minis3/core/operations.py)
× this table. An operation of S3's with no handler here answers S3's XML
error ``NotImplemented`` (501) naming it; docs/compatibility.md lists both,
generated from this table (``python -m minis3.frontend.compat``)."""
from __future__ import annotations

from ..core import errors as E
from ..core import operations
from .context import Context
from . import (attributes, authorize, bucket, cors, encryption, multipart, object as obj, permissions, postobject,
               service, tagging)
from . import objectlock
from . import lifecycle

HANDLERS = {
    "ListBuckets": service.list_buckets,
    # buckets
    "CreateBucket": bucket.create,
    "HeadBucket": bucket.head,
    "DeleteBucket": bucket.delete,
    "GetBucketLocation": bucket.get_location,
    "GetBucketVersioning": bucket.get_versioning,
    "PutBucketVersioning": bucket.put_versioning,
    "ListObjectVersions": bucket.list_object_versions,
    "ListObjects": bucket.list_objects_v1,
    "ListObjectsV2": bucket.list_objects_v2,
    "DeleteObjects": obj.delete_objects,
    "PostObject": postobject.post_object,
    "PutBucketTagging": tagging.put_bucket_tagging,
    "GetBucketTagging": tagging.get_bucket_tagging,
    "DeleteBucketTagging": tagging.delete_bucket_tagging,
    # who may do what (docs/access.md)
    "PutBucketPolicy": permissions.put_bucket_policy,
    "GetBucketPolicy": permissions.get_bucket_policy,
    "DeleteBucketPolicy": permissions.delete_bucket_policy,
    "GetBucketPolicyStatus": permissions.get_bucket_policy_status,
    "PutPublicAccessBlock": permissions.put_public_access_block,
    "GetPublicAccessBlock": permissions.get_public_access_block,
    "DeletePublicAccessBlock": permissions.delete_public_access_block,
    "PutBucketOwnershipControls": permissions.put_ownership_controls,
    "GetBucketOwnershipControls": permissions.get_ownership_controls,
    "DeleteBucketOwnershipControls": permissions.delete_ownership_controls,
    "PutBucketCors": cors.put_bucket_cors,
    "GetBucketCors": cors.get_bucket_cors,
    "DeleteBucketCors": cors.delete_bucket_cors,
    "PutBucketLifecycleConfiguration": lifecycle.put_bucket_lifecycle,
    "GetBucketLifecycleConfiguration": lifecycle.get_bucket_lifecycle,
    "DeleteBucketLifecycle": lifecycle.delete_bucket_lifecycle,
    "GetBucketAcl": permissions.get_bucket_acl,
    "PutBucketAcl": permissions.put_bucket_acl,
    "GetObjectAcl": permissions.get_object_acl,
    "PutObjectAcl": permissions.put_object_acl,
    # encryption at rest (frontend/encryption.py)
    "PutBucketEncryption": encryption.put_bucket_encryption,
    "GetBucketEncryption": encryption.get_bucket_encryption,
    "DeleteBucketEncryption": encryption.delete_bucket_encryption,
    # objects
    "PutObject": obj.put,
    "CopyObject": obj.copy,
    "GetObject": obj.get,
    "HeadObject": obj.head,
    "DeleteObject": obj.delete,
    "GetObjectAttributes": attributes.get_object_attributes,
    "PutObjectTagging": tagging.put_object_tagging,
    "GetObjectTagging": tagging.get_object_tagging,
    "DeleteObjectTagging": tagging.delete_object_tagging,
    # Object Lock (frontend/objectlock.py)
    "PutObjectLockConfiguration": objectlock.put_configuration,
    "GetObjectLockConfiguration": objectlock.get_configuration,
    "PutObjectRetention": objectlock.put_retention,
    "GetObjectRetention": objectlock.get_retention,
    "PutObjectLegalHold": objectlock.put_legal_hold,
    "GetObjectLegalHold": objectlock.get_legal_hold,
    # multipart uploads
    "CreateMultipartUpload": multipart.create,
    "UploadPart": multipart.upload_part,
    "UploadPartCopy": multipart.upload_part,
    "CompleteMultipartUpload": multipart.complete,
    "AbortMultipartUpload": multipart.abort,
    "ListParts": multipart.list_parts,
    "ListMultipartUploads": multipart.list_uploads,
}


def operation(ctx: Context) -> str:
    t = ctx.target
    query = {k: v for k, v in ctx.query.items() if k not in operations.IGNORED_QUERY}
    headers = ctx.lowered_headers()
    level = operations.level_of(t.bucket, t.key)
    op = operations.resolve(ctx.request.method, level, query, headers)
    if op is None:
        raise E.MethodNotAllowed()
    unknown = [k for k in query if not operations.is_auth_parameter(k)]
    if level == "bucket" and op in ("CreateBucket", "DeleteBucket") and unknown:
        # A configuration minis3 does not know of: never create or delete the bucket for it.
        raise E.NotImplemented_(f"the bucket sub-resource {sorted(unknown)[0]!r} is not implemented by minis3")
    return op


async def dispatch(ctx: Context):
    ctx.operation = op = operation(ctx)       # the label of the request's metrics (app.REQUESTS, app.LATENCY)
    handler = HANDLERS.get(op)
    if handler is None:
        raise E.NotImplemented_(f"{op} is not implemented by minis3")
    await authorize.authorize(ctx, op)            # AccessDenied, or ctx.acting set
    if op in permissions.ACL_PUTS:
        ctx.acl = permissions.check_acl_headers(ctx.request.headers, ctx.buckets_seen[ctx.target.bucket])
    return await handler(ctx)
