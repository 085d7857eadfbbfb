"""Object operations: PutObject, GetObject, HeadObject, DeleteObject,
DeleteObjects, CopyObject.

The PUT path, step by step (each step a call a learner can follow):
    receive (body.IncomingBody: the request's signature was checked on its headers;
    aws-chunked chunk signatures are checked as chunks arrive) → segment →
    encode → store fragments (datapath.store: fsync on every node) → verify
    digests (IncomingBody.verify, run by datapath.store after the last fragment is
    durable: x-amz-content-sha256, Content-MD5, x-amz-checksum-*; on a
    mismatch the fragments are removed and nothing is committed) → commit
    metadata (meta/client.py's put_object: the one atomic moment of
    visibility) → ack

Digests are verified after storing, not before, because the body is never
held whole: its hash is only known once the last byte has gone through.
"""
from __future__ import annotations

import asyncio
import logging
import re
import time
from urllib.parse import unquote

from aiohttp import web

from ..core import checksums
from ..core import errors as E
from ..core import metadata, s3xml, sse, versions
from ..core import objectlock as OL
from ..core.conditions import check_read, check_write, http_date
from ..core.names import validate_key
from ..core.ranges import content_range, parse_range
from ..ec import storage_class as SC
from ..rpc.failpoints import failpoint
from . import authorize, encryption, lifecycle, objectlock, tagging
from ..meta.versioned import marker_headers
from .body import IncomingBody, read_small_body
from .context import Context
from .params import STANDARD_HEADERS, part_number, stored_headers, write_conditions

log = logging.getLogger("minis3.frontend.object")

RESPONSE_OVERRIDES = {"response-content-type": "Content-Type", "response-content-language": "Content-Language",
                      "response-expires": "Expires", "response-cache-control": "Cache-Control",
                      "response-content-disposition": "Content-Disposition",
                      "response-content-encoding": "Content-Encoding"}
#: Control characters (TAB aside) and DEL: an HTTP header value can't hold them
#: (RFC 9110 field-value); CR/LF would end the header.
_NOT_IN_A_HEADER = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
DEFAULT_CONTENT_TYPE = "binary/octet-stream"


def _lock_headers(ctx: Context, rec: dict) -> dict[str, str]:
    """A version's retention and legal hold, as GET and HEAD answer them: each only to a caller
    allowed to read it (s3:GetObjectRetention, s3:GetObjectLegalHold), as S3 documents."""
    h = OL.response_headers(rec)
    if OL.MODE_HEADER in h and not authorize.allowed(ctx, "s3:GetObjectRetention", ctx.target.key, shown=False):
        del h[OL.MODE_HEADER], h[OL.UNTIL_HEADER]
    if OL.HOLD_HEADER in h and not authorize.allowed(ctx, "s3:GetObjectLegalHold", ctx.target.key, shown=False):
        del h[OL.HOLD_HEADER]
    return h


def _object_headers(rec: dict, query: dict, checksum_mode: bool) -> dict[str, str]:
    h = {"ETag": f'"{rec["etag"]}"', "Last-Modified": http_date(rec["mtime"]), "Accept-Ranges": "bytes"}
    std = rec.get("headers") or {}
    h["Content-Type"] = std.get("content-type", DEFAULT_CONTENT_TYPE)
    for name in STANDARD_HEADERS[1:]:
        if name in std:
            h["-".join(p.capitalize() for p in name.split("-"))] = std[name]
    for k, v in (rec.get("meta") or {}).items():
        h["x-amz-meta-" + k] = metadata.encode_value(v)
    for q, header in RESPONSE_OVERRIDES.items():
        if q in query:
            if _NOT_IN_A_HEADER.search(query[q]):
                raise E.InvalidArgument(f"{q} holds a character that is not allowed in an HTTP header value",
                                        ArgumentName=q, ArgumentValue=query[q])
            h[header] = query[q]
    h.update(tagging.count_header(rec))
    h.update(versions.header(rec))
    if SC.of(rec) != SC.STANDARD:                  # S3 sends it for every class but STANDARD
        h["x-amz-storage-class"] = SC.of(rec)
    ck = rec.get("checksum")
    if checksum_mode and ck:
        h[checksums.header_name(ck["alg"])] = ck["value"]
        h["x-amz-checksum-type"] = ck.get("type", "FULL_OBJECT")
    return h


# ----------------------------------------------------------------------------- PUT
async def put(ctx: Context) -> web.Response:
    bucket, key = ctx.target.bucket, ctx.target.key
    validate_key(key)
    std, meta = stored_headers(ctx.request)
    tags = tagging.from_request(ctx)
    lock = objectlock.new_version_fields(ctx)         # refused before any byte is stored
    sc = SC.parse(ctx.request.headers.get("x-amz-storage-class"), ctx.fe.topo.storage_class.for_bucket(bucket))
    conditions = write_conditions(ctx.request)
    fe = ctx.fe
    if conditions:                                   # fail fast too; the commit re-checks atomically
        await _precheck_write(ctx, conditions)
    data_key, sealed = encryption.for_write(ctx, bucket, key)
    up = IncomingBody(ctx.request, ctx.auth)
    stored = await fe.datapath.store(up.chunks(), on_segment=up.hash, verify=up.verify, storage_class=sc,
                                     data_key=data_key, size=up.declared_length)
    record = {"etag": encryption.etag(sealed, data_key, up.etag()), "checksum": up.stored_checksum(),
              "headers": std, "meta": meta, "ts": fe.hlc.now(), **stored.record_fields(), **SC.record_field(sc),
              "sse": sealed, **lock}
    if tags:
        record["tags"] = tags
    if ctx.acl:
        record["acl"] = [list(g) for g in ctx.acl]
    rec = await _commit(ctx, bucket, key, record, stored, conditions)
    resp = web.Response(status=200, headers={**versions.header(rec),
                                             **encryption.answer_headers(ctx, sealed, context=True)})
    resp.headers["ETag"] = f'"{rec["etag"]}"'
    resp.headers.update(lifecycle.expiration_headers(ctx, bucket, key, rec))
    if up.algorithm:
        resp.headers[checksums.header_name(rec["checksum"]["alg"])] = rec["checksum"]["value"]
        resp.headers["x-amz-checksum-type"] = "FULL_OBJECT"
    return resp


async def _precheck_write(ctx: Context, conditions: dict) -> None:
    try:
        cur = await ctx.meta.get_object(ctx.target.bucket, ctx.target.key)
    except E.NoSuchKey:
        cur = None
    check_write(conditions, f'"{cur["etag"]}"' if cur else None)


async def _commit(ctx: Context, bucket: str, key: str, record: dict, stored, conditions: dict | None = None) -> dict:
    """Commit metadata: the object becomes visible here, or not at all."""
    return await commit_stored(ctx, stored, lambda: ctx.meta.put_object(bucket, key, record, conditions,
                                                                        stamp_by=stored.commit_by))


async def commit_stored(ctx: Context, stored, write):
    """The commit step of a PUT (after ecwrite.ECWrite's): run ``write()``, a
    metadata commit pointing at ``stored``'s fragments, under the GC rule: it
    must start by ``stored.commit_by``, the commit window after the first
    fragment landed (docs/ARCHITECTURE.md, "Garbage collection").

    The one place a stored write's fragments are abandoned: too late to
    commit, or refused by a precondition before any replica was sent the
    version. Any other failure (a quorum refused, a conditional write that
    lost a race after one of its rounds reached a replica, metadata
    unreachable) may have left the version on one replica, so the fragments
    stay for the scrubber's GC to judge after its grace. A crash either side
    of the commit (the failpoints ``frontend.put.before_commit`` and
    ``after_commit``) leaves orphan fragments, or a write the client never
    heard of."""
    abandon = None
    try:
        if stored.commit_by is not None and time.monotonic() > stored.commit_by:
            abandon = "commit-too-late"
            raise E.ServiceUnavailable(f"the write took more than {ctx.fe.datapath.commit_window_s:.0f} s "
                                       "from storing to commit")
        if stored.ec is not None:
            failpoint("frontend.put.before_commit")     # (on the event loop: crash or error, not sleep)
        try:
            rec = await write()
        except E.PreconditionFailed as exc:
            if not getattr(exc, "maybe_written", False):
                abandon = "rejected-commit"
            raise
        failpoint("frontend.put.after_commit")
        return rec
    finally:
        if abandon and stored.ec is not None:
            await ctx.fe.datapath.discard(stored.ec, abandon)


# ----------------------------------------------------------------------------- GET / HEAD
def _not_modified(exc: E.S3Error, rec: dict) -> E.S3Error:
    exc.headers.update({"ETag": f'"{rec["etag"]}"', "Last-Modified": http_date(rec["mtime"])})
    return exc


async def readable_version(ctx: Context, bucket: str, key: str, raw_version_id: str | None, payload: bool = True) -> dict:
    """The current version of a key, or the one ``?versionId=`` names: 404
    NoSuchKey / NoSuchVersion, and 405 MethodNotAllowed for a delete marker
    asked for by its id (with S3's x-amz-delete-marker headers). ``payload=False``:
    the record may carry an inline payload's marker, not its bytes (a HEAD)."""
    if raw_version_id is None:
        return await ctx.meta.get_object(bucket, key, payload=payload)
    rec = await ctx.meta.get_version(bucket, key, versions.parse_id(raw_version_id))
    if versions.is_marker(rec):
        exc = E.MethodNotAllowed("The specified method is not allowed against this resource.",
                                 Method=ctx.request.method, ResourceType="DeleteMarker")
        exc.headers.update(marker_headers(rec))
        raise exc
    return rec


async def _readable_record(ctx: Context, payload: bool = True) -> tuple[dict, bytes | None]:
    """The object's record, once its GET/HEAD preconditions hold (else 304/412), and
    its data key (the request's SSE-C key checked: frontend/encryption.py). ``payload=False``
    (a HEAD): no byte is read, so the SSE-C key is checked and no data key opened (None)."""
    validate_key(ctx.target.key)
    headers = ctx.lowered_headers()
    sse.refuse_on_read(headers)
    rec = await readable_version(ctx, ctx.target.bucket, ctx.target.key, ctx.query.get("versionId"), payload)
    data_key = None
    if payload:
        data_key = encryption.for_read(ctx, rec)
    else:
        encryption.check_key(ctx, rec)
    try:
        check_read(headers, f'"{rec["etag"]}"', rec["mtime"])
    except E.NotModified as exc:
        raise _not_modified(exc, rec)
    return rec, data_key


def _requested_range(ctx: Context, rec: dict) -> tuple[tuple[int, int] | None, int | None]:
    """The byte range a GET or HEAD asks for (a Range header, or ?partNumber),
    and the object's parts count when a part was asked for."""
    if "partNumber" in ctx.query:
        from .multipart import part_range
        if ctx.request.headers.get("Range"):
            raise E.InvalidRequest("Cannot specify both Range header and partNumber query parameter")
        start, end, count = part_range(rec, part_number(ctx.query))
        return (start, end), count
    return parse_range(ctx.request.headers.get("Range"), rec["size"]), None


async def head(ctx: Context) -> web.StreamResponse:
    rec, _ = await _readable_record(ctx, payload=False)     # a HEAD sends no bytes: no replica reads them
    rng, parts_count = _requested_range(ctx, rec)
    headers = {**_object_headers(rec, ctx.query, _checksum_mode(ctx) and rng is None),
               **encryption.answer_headers(ctx, rec.get("sse")), **_lock_headers(ctx, rec)}
    # A StreamResponse, so that Content-Length says the object's size while
    # no body is sent (aiohttp's Response would compute it from an empty body).
    resp = web.StreamResponse(status=206 if rng else 200, headers=headers)
    if parts_count is not None and "parts" in rec:
        resp.headers["x-amz-mp-parts-count"] = str(parts_count)
    if rng:
        resp.headers["Content-Range"] = content_range(rng[0], rng[1], rec["size"])
    if "versionId" not in ctx.query:
        resp.headers.update(lifecycle.expiration_headers(ctx, ctx.target.bucket, ctx.target.key, rec))
    resp.content_length = (rng[1] - rng[0] + 1) if rng else rec["size"]
    resp.headers["x-amz-request-id"] = ctx.request_id
    resp.headers["x-amz-id-2"] = ctx.request_id
    await resp.prepare(ctx.request)
    await resp.write_eof()
    return resp


def _checksum_mode(ctx: Context) -> bool:
    return ctx.request.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED"


async def get(ctx: Context) -> web.StreamResponse:
    rec, data_key = await _readable_record(ctx)
    size = rec["size"]
    rng, parts_count = _requested_range(ctx, rec)
    start, end = rng if rng else (0, size - 1)
    # A whole-object checksum never goes with a range or a part: the client
    # would check it against the partial body and fail.
    resp = web.StreamResponse(status=206 if rng else 200,
                              headers={**_object_headers(rec, ctx.query, _checksum_mode(ctx) and rng is None),
                                       **encryption.answer_headers(ctx, rec.get("sse")), **_lock_headers(ctx, rec)})
    if parts_count is not None and "parts" in rec:
        resp.headers["x-amz-mp-parts-count"] = str(parts_count)
    if rng:
        resp.headers["Content-Range"] = content_range(start, end, size)
    if "versionId" not in ctx.query:
        resp.headers.update(lifecycle.expiration_headers(ctx, ctx.target.bucket, ctx.target.key, rec))
    resp.content_length = end - start + 1
    resp.headers["x-amz-request-id"] = ctx.request_id
    resp.headers["x-amz-id-2"] = ctx.request_id
    stream = ctx.fe.datapath.read(rec, start, end, data_key)
    # Fetch the first piece before sending headers, so that an unreadable
    # object is still an S3 error, not a 200 with a broken body.
    try:
        first = await stream.__anext__() if size else b""
    except StopAsyncIteration:
        first = b""
    await resp.prepare(ctx.request)
    try:
        if first:
            await resp.write(first)
        async for piece in stream:
            await resp.write(piece)
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception:
        # Headers are gone: the only honest signal left is to cut the
        # connection, so the client sees a short body, never wrong bytes.
        log.exception("GET %s/%s failed mid-stream (request %s)", ctx.target.bucket, ctx.target.key,
                      ctx.request_id)
        if ctx.request.transport is not None:
            ctx.request.transport.close()
        return resp
    finally:
        await stream.aclose()
    await resp.write_eof()
    return resp


# ----------------------------------------------------------------------------- DELETE
async def delete(ctx: Context) -> web.Response:
    validate_key(ctx.target.key)
    return web.Response(status=204, headers=await _delete_one(ctx, ctx.target.key, ctx.query.get("versionId")))


async def _delete_one(ctx: Context, key: str, raw_version_id: str | None) -> dict[str, str]:
    """Delete a key (a delete marker, in a bucket that keeps versions) or one
    version of it for good; the headers S3 answers with."""
    bucket = ctx.target.bucket
    if raw_version_id is None:
        marker = await ctx.meta.delete_object(bucket, key)
        return {} if marker is None else {"x-amz-delete-marker": "true", "x-amz-version-id": versions.id_of(marker)}
    vid = versions.parse_id(raw_version_id)
    # Object Lock (frontend/objectlock.py): checked here, and again by the metadata
    # coordinator, atomically with the removal.
    may_bypass = objectlock.bypass(ctx, key)
    await objectlock.check_version_removal(ctx, key, vid, may_bypass)
    gone = await ctx.meta.delete_version(bucket, key, vid, bypass_governance=may_bypass)
    out = {"x-amz-version-id": vid}
    if versions.is_marker(gone):
        out["x-amz-delete-marker"] = "true"
    return out


async def delete_objects(ctx: Context) -> web.Response:
    # S3 once required Content-MD5 here; current SDKs send an x-amz-checksum-*
    # header instead. read_small_body verifies whichever is present.
    body = await read_small_body(ctx.request, ctx.auth)
    objects, quiet = s3xml.parse_delete_objects(body)
    await ctx.meta.get_bucket(ctx.target.bucket)
    sem = asyncio.Semaphore(32)

    async def one(key: str, vid: str | None):
        async with sem:
            try:
                validate_key(key)
                if not authorize.allowed(ctx, "s3:DeleteObjectVersion" if vid else "s3:DeleteObject", key):
                    raise E.AccessDenied()
                h = await _delete_one(ctx, key, vid)
                marker = h.get("x-amz-delete-marker") == "true"
                return (key, vid, marker, h.get("x-amz-version-id") if marker else None), None
            except E.S3Error as exc:
                return (key, vid), exc
    results = await asyncio.gather(*(one(k, v) for k, v in objects))
    deleted = [d for d, exc in results if exc is None]
    errors = [(d[0], d[1], exc.code, exc.message) for d, exc in results if exc is not None]
    return web.Response(body=s3xml.delete_result_xml(deleted, errors, quiet), content_type="application/xml")


# ----------------------------------------------------------------------------- COPY
def parse_copy_source(header: str) -> tuple[str, str, str | None]:
    """(bucket, key, version id or None) of an ``x-amz-copy-source`` header:
    ``bucket/key`` (URL-encoded), optionally ``?versionId=``."""
    path, _, query = header.partition("?")
    src = unquote(path).lstrip("/")
    bucket, _, key = src.partition("/")
    if not bucket or not key:
        raise E.InvalidArgument("Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
                                ArgumentName="x-amz-copy-source", ArgumentValue=header)
    vid = None
    if query:
        name, _, value = query.partition("=")
        if name != "versionId":
            raise E.InvalidArgument("Copy Source can only name a versionId", ArgumentName="x-amz-copy-source",
                                    ArgumentValue=header)
        vid = unquote(value)
    return bucket, key, vid


async def copy_source_record(ctx: Context) -> tuple[str, str, dict]:
    """The record ``x-amz-copy-source`` names (a version of it, with
    ``?versionId=``), once its x-amz-copy-source-if-* hold (CopyObject and
    UploadPartCopy). A delete marker named by its id is 400 InvalidRequest,
    as S3 answers."""
    src_bucket, src_key, src_vid = parse_copy_source(ctx.request.headers["x-amz-copy-source"])
    if src_vid is None:
        src = await ctx.meta_for(src_bucket).get_object(src_bucket, src_key)
    else:
        src = await ctx.meta_for(src_bucket).get_version(src_bucket, src_key, versions.parse_id(src_vid))
        if versions.is_marker(src):
            raise E.InvalidRequest("The source of a copy request may not specifically refer to a delete marker "
                                   "by version id.")
    cond = {k[len("x-amz-copy-source-"):]: v for k, v in ((k.lower(), v) for k, v in ctx.request.headers.items())
            if k.startswith("x-amz-copy-source-if-")}
    try:
        check_read(cond, f'"{src["etag"]}"', src["mtime"])
    except E.NotModified:
        raise E.PreconditionFailed(Condition="x-amz-copy-source-If-None-Match")
    return src_bucket, src_key, src


async def copy(ctx: Context) -> web.Response:
    fe = ctx.fe
    bucket, key = ctx.target.bucket, ctx.target.key
    validate_key(key)
    h = ctx.request.headers
    # Not the source's: with no header the copy is STANDARD (S3's CopyObject), or
    # the destination bucket's default where the topology sets one.
    sc = SC.parse(h.get("x-amz-storage-class"), fe.topo.storage_class.for_bucket(bucket))
    src_bucket, src_key, src = await copy_source_record(ctx)
    directive = h.get("x-amz-metadata-directive", "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise E.InvalidArgument("Unknown metadata directive.", ArgumentName="x-amz-metadata-directive")
    if directive == "REPLACE":
        std, meta = stored_headers(ctx.request)
    else:
        std, meta = src.get("headers") or {}, src.get("meta") or {}
        # (Copying an older version over the key is how a version is restored: allowed.)
        if (src_bucket, src_key) == (bucket, key) and "x-amz-checksum-algorithm" not in h \
                and ("x-amz-storage-class" not in h or sc == SC.of(src)) \
                and not any(k.lower().startswith(sse.HEADER) for k in h) \
                and parse_copy_source(h["x-amz-copy-source"])[2] is None:
            raise E.InvalidRequest("This copy request is illegal because it is trying to copy an object to itself "
                                   "without changing the object's metadata, storage class, website redirect "
                                   "location or encryption attributes.")
    tags = tagging.for_copy(ctx, src)
    lock = objectlock.new_version_fields(ctx)         # the request's or the bucket's, never the source's
    alg_header = h.get("x-amz-checksum-algorithm")
    alg = checksums.normalize_algorithm(alg_header) if alg_header else (src.get("checksum") or {}).get("alg",
                                                                                                        "crc64nvme")
    digests = checksums.BodyDigests({alg})
    src_key = encryption.for_read(ctx, src, copy_source=True)
    data_key, sealed = encryption.for_write(ctx, bucket, key)
    # Every copy re-encodes: new fragments, placed for the copy's class, under a new data key.
    stored = await fe.datapath.store(fe.datapath.read(src, 0, src["size"] - 1, src_key), on_segment=digests.update,
                                     storage_class=sc, data_key=data_key, size=src["size"])
    got = digests.b64()
    record = {"etag": encryption.etag(sealed, data_key, digests.results()["md5"].hex()),
              "checksum": {"alg": alg, "value": got[alg]}, "headers": std, "meta": meta, "ts": fe.hlc.now(),
              **stored.record_fields(), **SC.record_field(sc), "sse": sealed,
              **lock}
    if tags:
        record["tags"] = tags
    if ctx.acl:
        record["acl"] = [list(g) for g in ctx.acl]
    rec = await _commit(ctx, bucket, key, record, stored, write_conditions(ctx.request))
    body = s3xml.copy_object_result_xml(rec["etag"], rec["mtime"], {alg: got[alg]}, checksum_type="FULL_OBJECT")
    resp = web.Response(body=body, content_type="application/xml",
                        headers={**versions.header(rec), **encryption.answer_headers(ctx, sealed, context=True)})
    if src.get("version_id"):
        resp.headers["x-amz-copy-source-version-id"] = src["version_id"]
    resp.headers.update(lifecycle.expiration_headers(ctx, bucket, key, rec))
    return resp
