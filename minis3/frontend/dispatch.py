"""Which S3 operation a request is: method × (bucket, key) × sub-resource."""
from __future__ import annotations

from ..core import errors as E
from . import bucket, multipart, object as obj, service

# Bucket sub-resources S3 has that minis3 does not implement (yet): a clear
# 501 NotImplemented rather than a wrong answer.
UNSUPPORTED_BUCKET = {"acl", "policy", "cors", "lifecycle", "tagging", "website", "logging",
                      "notification", "replication", "encryption", "accelerate", "requestPayment",
                      "analytics", "metrics", "inventory", "intelligent-tiering", "object-lock",
                      "ownershipControls", "publicAccessBlock", "policyStatus", "versions"}
UNSUPPORTED_OBJECT = {"acl", "tagging", "retention", "legal-hold", "torrent", "restore", "attributes",
                      "select"}


async def dispatch(ctx):
    m = ctx.request.method
    t, q = ctx.target, ctx.query
    if t.bucket is None:
        if m in ("GET", "HEAD"):
            return await service.list_buckets(ctx)
        raise E.MethodNotAllowed()
    if t.key is None:
        if m == "GET":
            if "location" in q:
                return await bucket.get_location(ctx)
            if "versioning" in q:
                return await bucket.get_versioning(ctx)
            if "uploads" in q:
                return await multipart.list_uploads(ctx)
            if UNSUPPORTED_BUCKET & q.keys():
                raise E.NotImplemented_(f"bucket sub-resource {sorted(UNSUPPORTED_BUCKET & q.keys())[0]} "
                                        "is not implemented by minis3")
            if q.get("list-type") == "2":
                return await bucket.list_objects_v2(ctx)
            return await bucket.list_objects_v1(ctx)
        if m == "PUT":
            if q.keys() - {"x-id"}:
                raise E.NotImplemented_("bucket configuration is not implemented by minis3")
            return await bucket.create(ctx)
        if m == "HEAD":
            return await bucket.head(ctx)
        if m == "DELETE":
            if q.keys() - {"x-id"}:
                raise E.NotImplemented_("bucket configuration is not implemented by minis3")
            return await bucket.delete(ctx)
        if m == "POST" and "delete" in q:
            return await obj.delete_objects(ctx)
        raise E.MethodNotAllowed()
    if UNSUPPORTED_OBJECT & q.keys():
        raise E.NotImplemented_(f"{sorted(UNSUPPORTED_OBJECT & q.keys())[0]} is not implemented by minis3 yet")
    if "uploadId" in q:                     # an upload in progress
        if m == "PUT":
            return await multipart.upload_part(ctx)
        if m == "POST":
            return await multipart.complete(ctx)
        if m == "DELETE":
            return await multipart.abort(ctx)
        if m == "GET":
            return await multipart.list_parts(ctx)
        raise E.MethodNotAllowed()
    if m == "POST" and "uploads" in q:
        return await multipart.create(ctx)
    if m == "PUT":
        if "x-amz-copy-source" in ctx.request.headers:
            return await obj.copy(ctx)
        return await obj.put(ctx)
    if m == "GET":
        return await obj.get(ctx)
    if m == "HEAD":
        return await obj.head(ctx)
    if m == "DELETE":
        return await obj.delete(ctx)
    raise E.MethodNotAllowed()
