"""Multipart uploads: CreateMultipartUpload, UploadPart, UploadPartCopy,
CompleteMultipartUpload, AbortMultipartUpload, ListParts, ListMultipartUploads.

The internals, step by step:

* **Create** writes an *upload record* (the object's headers and metadata,
  the checksum algorithm and type, the owner) to the metadata replicas under
  ``UPLOADS + bucket/key \\0 upload id``: no bytes, no object yet.
* **UploadPart** stores the part's bytes exactly like a PUT stores an object
  (segments → erasure-coded fragments, fsynced on six nodes) and commits a
  *part record* under ``PARTS + upload id/part number``: the part's size, MD5,
  checksum and where its fragments are. Uploading a number again writes a
  newer version; the earlier part's fragments become garbage (the scrubber's
  GC removes them).
* **Complete** reads the part records, checks the client's list, and commits
  one object record, the *manifest*, whose ``parts`` point at the parts'
  fragments. No byte is read, copied or re-encoded: completing a 2 GiB upload
  costs what completing a 10 MiB one does (one metadata scan of its part
  records and one write). The object becomes visible at that commit, like
  any PUT; then the upload record is deleted.
* **Abort** deletes the upload record and its part records; their fragments
  become garbage. (Part records left behind by a crash are cleaned by the
  scrubber, and their fragments then collected.)
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import time
import uuid

from aiohttp import web

from ..core import checksums, multipart_xml, versions
from ..core import errors as E
from ..core.crc_combine import POLYNOMIALS, combine_all
from ..core.names import validate_key
from ..core.numbers import parse_int
from ..ec import storage_class as SC
from ..meta.client import PARTS, UPLOADS
from ..rpc.failpoints import failpoint
from . import encryption, lifecycle, objectlock, tagging
from .body import IncomingBody, read_small_body
from .bucket import EMPTY_PAGE, clip_marker, too_long_for_a_key
from .context import ANONYMOUS, Context
from .object import commit_stored, copy_source_record
from .params import MAX_PARTS, encoding_type, part_number, stored_headers, write_conditions

MIN_PART_SIZE = 5 * 1024 * 1024          # every part but the last
#: A part's bytes go inline (in its record, then in the completed object's
#: manifest, which a replica keeps in memory) only up to this: a manifest must
#: stay small whatever the parts' sizes. Objects go inline up to the topology's
#: (larger) inline threshold, into the replicas' blob logs (meta/blobs.py).
PART_INLINE_MAX = 4096
UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
CRCS = tuple(POLYNOMIALS)                 # the algorithms a FULL_OBJECT checksum can use


def new_upload_id() -> str:
    """32 hex digits, ordered by creation time (S3 lists one key's uploads oldest first)."""
    return f"{int(time.time() * 1000):012x}{uuid.uuid4().hex[:20]}"


def upload_ikey(bucket: str, key: str, upload_id: str) -> str:
    return f"{UPLOADS}{bucket}/{key}\x00{upload_id}"


def part_ikey(upload_id: str, n: int) -> str:
    return f"{PARTS}{upload_id}/{n:05d}"


def _owner(ctx: Context) -> tuple[str, str]:
    return (ctx.account, ctx.account) if ctx.account is not None else ANONYMOUS


# ----------------------------------------------------------------------------- checksums (pure)
def checksum_spec(alg_header: str | None, type_header: str | None) -> dict | None:
    """The upload's checksum {alg, type} from CreateMultipartUpload's headers,
    with S3's rules: COMPOSITE is the default (FULL_OBJECT for CRC64NVME, which
    has no composite form); FULL_OBJECT needs a CRC."""
    if not alg_header:
        if type_header:
            raise E.InvalidRequest("x-amz-checksum-type requires x-amz-checksum-algorithm")
        return None
    alg = checksums.normalize_algorithm(alg_header)
    ctype = (type_header or ("FULL_OBJECT" if alg == "crc64nvme" else "COMPOSITE")).upper()
    if ctype not in ("COMPOSITE", "FULL_OBJECT"):
        raise E.InvalidRequest(f"Value for x-amz-checksum-type header is invalid: {type_header}")
    if ctype == "FULL_OBJECT" and alg not in CRCS:
        raise E.InvalidRequest(f"The FULL_OBJECT checksum type cannot be used with the {alg} checksum algorithm.")
    if ctype == "COMPOSITE" and alg == "crc64nvme":
        raise E.InvalidRequest("The COMPOSITE checksum type cannot be used with the crc64nvme checksum algorithm.")
    return {"alg": alg, "type": ctype}


def object_checksum(spec: dict | None, parts: list[dict]) -> dict:
    """The completed object's checksum from its parts' checksums, never their bytes.

    COMPOSITE: the algorithm over the concatenated binary part checksums,
    shown as ``base64-N``. FULL_OBJECT: the CRC of the whole object, combined
    from the parts' CRCs and sizes. With no algorithm chosen, S3 gives a
    multipart object a FULL_OBJECT CRC64NVME (every part was stored with one)."""
    values = [p["checksum"]["value"] for p in parts]
    if spec is None:
        spec = {"alg": "crc64nvme", "type": "FULL_OBJECT"}
        values = [p["crc64nvme"] for p in parts]
    alg, n = spec["alg"], len(parts)
    digests = [checksums.decode_checksum(alg, v) for v in values]
    if spec["type"] == "COMPOSITE":
        value = base64.b64encode(checksums.compute(alg, b"".join(digests))).decode() + f"-{n}"
    else:
        crc = combine_all(alg, [(int.from_bytes(d, "big"), p["size"]) for d, p in zip(digests, parts)])
        value = base64.b64encode(crc.to_bytes(checksums.DIGEST_SIZES[alg], "big")).decode()
    return {"alg": alg, "value": value, "type": spec["type"]}


def copy_source_range(raw: str, size: int) -> tuple[int, int]:
    """``x-amz-copy-source-range: bytes=first-last``, both given (ASCII
    digits), inside the source. S3's answers: a value of another form is
    InvalidArgument with the form in its message; a range that is not inside
    the source (or ends before it starts) is InvalidArgument "Range specified
    is not valid for source object of size: N" (what S3 answers; not 416
    InvalidRange, which GET answers for an unsatisfiable Range)."""
    m = re.fullmatch(r"bytes=([0-9]{1,30})-([0-9]{1,30})", raw.strip())
    if not m:
        raise E.InvalidArgument("The x-amz-copy-source-range value must be of the form bytes=first-last where "
                                "first and last are the zero-based offsets of the first and last bytes to copy",
                                ArgumentName="x-amz-copy-source-range", ArgumentValue=raw)
    first, last = int(m[1]), int(m[2])
    if first > last or last >= size:
        raise E.InvalidArgument(f"Range specified is not valid for source object of size: {size}",
                                ArgumentName="x-amz-copy-source-range", ArgumentValue=raw)
    return first, last


def multipart_etag(part_md5s: list[str]) -> str:
    """S3's ETag of a multipart object: MD5 of the parts' binary MD5s, then -N."""
    return hashlib.md5(b"".join(bytes.fromhex(m) for m in part_md5s)).hexdigest() + f"-{len(part_md5s)}"


def check_complete_list(listed: list[dict], stored: dict[int, dict]) -> list[dict]:
    """The parts a CompleteMultipartUpload names, checked as S3 checks them."""
    prev = 0
    out = []
    for item in listed:
        n = item["part"]
        if not 1 <= n <= MAX_PARTS:
            raise E.InvalidArgument("Part number must be an integer between 1 and 10000, inclusive",
                                    ArgumentName="partNumber", ArgumentValue=str(n))
        if n <= prev:
            raise E.InvalidPartOrder()
        prev = n
        rec = stored.get(n)
        if rec is None or rec["etag"] != item["etag"].strip('"').lower():
            raise E.InvalidPart(PartNumber=str(n), ETag=item["etag"])
        ck = rec.get("checksum") or {}
        for alg, value in item.get("checksums", {}).items():
            if ck.get("alg") != alg or ck.get("value") != value:
                raise E.InvalidPart(PartNumber=str(n), ETag=item["etag"])
        out.append(rec)
    for rec in out[:-1]:
        if rec["size"] < MIN_PART_SIZE:
            raise E.EntityTooSmall(ProposedSize=str(rec["size"]), MinSizeAllowed=str(MIN_PART_SIZE))
    return out


# ----------------------------------------------------------------------------- handlers



async def _upload(ctx: Context) -> dict:
    """The upload this request names, if it is in progress and the caller's."""
    uid = ctx.query.get("uploadId", "")
    bucket, key = ctx.target.bucket, ctx.target.key
    validate_key(key)
    rec = await ctx.meta.get_record(upload_ikey(bucket, key, uid)) if UPLOAD_ID.match(uid) else None
    if rec is None:
        await ctx.meta.get_bucket(bucket)             # NoSuchBucket / AccessDenied come first
        raise E.NoSuchUpload(UploadId=uid)
    if rec.get("owner") != ctx.account:
        raise E.AccessDenied()
    return rec


async def create(ctx: Context) -> web.Response:
    bucket, key = ctx.target.bucket, ctx.target.key
    validate_key(key)
    await ctx.meta.get_bucket(bucket)
    std, meta = stored_headers(ctx.request)
    h = ctx.request.headers
    spec = checksum_spec(h.get("x-amz-checksum-algorithm"), h.get("x-amz-checksum-type"))
    sc = SC.parse(h.get("x-amz-storage-class"), ctx.fe.topo.storage_class.for_bucket(bucket))
    tags = tagging.from_request(ctx)
    _, sealed = encryption.for_write(ctx, bucket, key)      # the upload's data key, wrapped; each part opens it
    lock = objectlock.explicit_fields(ctx)         # the headers' retention and legal hold, checked now
    uid = new_upload_id()
    initiated = int(time.time() * 1000)
    await ctx.meta.put_record(upload_ikey(bucket, key, uid), {
        "upload_id": uid, "bucket": bucket, "key": key, "headers": std, "meta": meta,
        "owner": ctx.account, "checksum": spec, "initiated": initiated, "sse": sealed,
        **({"tags": tags} if tags else {}), **({"acl": [list(g) for g in ctx.acl]} if ctx.acl else {}),
        **SC.record_field(sc), **lock})
    resp = web.Response(body=multipart_xml.initiate_multipart_upload_xml(bucket, key, uid), content_type="application/xml",
                        headers=encryption.answer_headers(ctx, sealed, context=True))
    if spec:
        resp.headers["x-amz-checksum-algorithm"] = spec["alg"].upper()
        resp.headers["x-amz-checksum-type"] = spec["type"]
    resp.headers.update(lifecycle.abort_headers(ctx, bucket, key, initiated))
    return resp


async def upload_part(ctx: Context) -> web.Response:
    n = part_number(ctx.query)
    up_rec = await _upload(ctx)
    spec = up_rec.get("checksum")
    if "x-amz-copy-source" in ctx.request.headers:
        return await _upload_part_copy(ctx, up_rec, n)
    objectlock.check_part_integrity(ctx, up_rec)
    # With no algorithm chosen at Create, every part also gets a CRC64NVME
    # (whatever the client sends): the object's FULL_OBJECT checksum is combined from them.
    data_key = encryption.for_read(ctx, up_rec)      # the upload's (SSE-C: the request's key, checked)
    up = IncomingBody(ctx.request, ctx.auth, required_alg=spec["alg"] if spec else None,
                extra_alg=None if spec else "crc64nvme")
    stored = await ctx.fe.datapath.store(up.chunks(), on_segment=up.hash, verify=up.verify,
                                         inline_up_to=PART_INLINE_MAX, storage_class=SC.of(up_rec), data_key=data_key,
                                         size=up.declared_length)
    part = {"part": n, "upload_id": up_rec["upload_id"], "etag": encryption.etag(up_rec.get("sse"), data_key, up.etag()),
            "checksum": up.stored_checksum(), **stored.record_fields()}
    if not spec:
        part["crc64nvme"] = up.digests.b64()["crc64nvme"]
    await commit_stored(ctx, stored, lambda: ctx.meta.put_record(part_ikey(up_rec["upload_id"], n), part,
                                                                   stamp_by=stored.commit_by))
    resp = web.Response(status=200, headers=encryption.answer_headers(ctx, up_rec.get("sse")))
    resp.headers["ETag"] = f'"{part["etag"]}"'
    if spec or up.algorithm:
        resp.headers[checksums.header_name(part["checksum"]["alg"])] = part["checksum"]["value"]
    return resp


async def _upload_part_copy(ctx: Context, up_rec: dict, n: int) -> web.Response:
    _, _, src = await copy_source_record(ctx)
    h = ctx.request.headers
    start, end = 0, src["size"] - 1
    if "x-amz-copy-source-range" in h:
        start, end = copy_source_range(h["x-amz-copy-source-range"], src["size"])
    if end - start + 1 > 5 * 1024 ** 3:
        raise E.EntityTooLarge()
    spec = up_rec.get("checksum")
    alg = spec["alg"] if spec else "crc64nvme"
    digests = checksums.BodyDigests({alg})
    src_key = encryption.for_read(ctx, src, copy_source=True)
    data_key = encryption.for_read(ctx, up_rec)
    stored = await ctx.fe.datapath.store(ctx.fe.datapath.read(src, start, end, src_key), on_segment=digests.update,
                                         inline_up_to=PART_INLINE_MAX, storage_class=SC.of(up_rec), data_key=data_key,
                                         size=end - start + 1)
    got = digests.b64()
    part = {"part": n, "upload_id": up_rec["upload_id"],
            "etag": encryption.etag(up_rec.get("sse"), data_key, digests.results()["md5"].hex()),
            "checksum": {"alg": alg, "value": got[alg]}, **stored.record_fields()}
    if not spec:
        part["crc64nvme"] = got[alg]
    rec = await commit_stored(ctx, stored, lambda: ctx.meta.put_record(part_ikey(up_rec["upload_id"], n), part,
                                                                   stamp_by=stored.commit_by))
    body = multipart_xml.copy_part_result_xml(part["etag"], rec["mtime"], (alg, got[alg]) if spec else None)
    resp = web.Response(body=body, content_type="application/xml",
                        headers=encryption.answer_headers(ctx, up_rec.get("sse")))
    if src.get("version_id"):
        resp.headers["x-amz-copy-source-version-id"] = src["version_id"]
    return resp


async def _all_parts(ctx: Context, upload_id: str) -> dict[int, dict]:
    parts: dict[int, dict] = {}
    marker = ""
    while True:
        page = await ctx.meta.list_objects(PARTS + upload_id, marker=marker, max_keys=1000, _checked=True,
                                           full=True)
        for k, rec in page["entries"]:
            parts[int(k)] = rec
        if not page["truncated"] or not page["next_marker"]:
            return parts
        marker = page["next_marker"]


def _checksum_claims(ctx: Context, checksum: dict) -> None:
    """The whole object's checksum the client sends on Complete (FULL_OBJECT:
    base64; COMPOSITE: base64-N), checked against the one computed from the
    parts: BadDigest if it differs."""
    claimed = checksums.parse_checksum_headers(ctx.request.headers, composite=True)
    for alg, value in claimed.items():
        base, _, n = value.partition("-")
        ours, _, our_n = checksum["value"].partition("-")
        if alg != checksum["alg"] or base != ours or (n and n != our_n):
            raise E.BadDigest(f"The {checksums.API_NAMES[alg]} you specified did not match the calculated checksum.")


def _completed(ctx: Context, rec: dict) -> web.Response:
    bucket, key = ctx.target.bucket, ctx.target.key
    checksum = rec["checksum"]
    shown = rec.get("checksum_chosen")              # an algorithm chosen at Create (else S3's default, unshown)
    location = f"{ctx.request.scheme}://{ctx.request.host}/{bucket}/{key}"
    body = multipart_xml.complete_multipart_upload_xml(location=location, bucket=bucket, key=key, etag=rec["etag"],
                                               checksum=(checksum["alg"], checksum["value"]) if shown else None,
                                               checksum_type=checksum["type"] if shown else None)
    return web.Response(body=body, content_type="application/xml",
                        headers={**versions.header(rec), **encryption.answer_headers(ctx, rec.get("sse")),
                                 **lifecycle.expiration_headers(ctx, bucket, key, rec)})


async def _completed_before(ctx: Context, listed: list[dict]) -> web.Response | None:
    """A Complete the client retries (its answer was lost) after the upload
    completed: S3 answers 200 with the same object, if the key's object is
    still the one this upload made, with the same parts."""
    uid = ctx.query.get("uploadId", "")
    try:
        rec = await ctx.meta.get_object(ctx.target.bucket, ctx.target.key)
    except E.NoSuchKey:
        return None
    if rec.get("upload_id") != uid:
        return None
    made = [(p["part"], p["etag"]) for p in rec.get("parts", [])]
    if made != [(item["part"], item["etag"].strip('"').lower()) for item in listed]:
        return None                 # another request than the one that completed it: the upload is gone
    return _completed(ctx, rec)


async def complete(ctx: Context) -> web.Response:
    body = await read_small_body(ctx.request, ctx.auth, limit=multipart_xml.MAX_COMPLETE_MULTIPART_BODY,
                                 checksum_headers=False)         # they are the whole object's
    listed = multipart_xml.parse_complete_multipart_upload(body)
    try:
        up_rec = await _upload(ctx)
    except E.NoSuchUpload:
        done = await _completed_before(ctx, listed)
        if done is None:
            raise
        return done
    bucket, key, uid = ctx.target.bucket, ctx.target.key, up_rec["upload_id"]
    conditions = write_conditions(ctx.request)
    # Completed already, but its upload record outlived the commit (its
    # deletion failed): a retry must get the same 200, not a 412 against the
    # object it made itself, nor a second version of it.
    done = await _completed_before(ctx, listed)
    if done is not None:
        await _forget_upload(ctx, uid)
        return done
    parts = check_complete_list(listed, await _all_parts(ctx, uid))
    spec = up_rec.get("checksum")
    checksum = object_checksum(spec, parts)
    _checksum_claims(ctx, checksum)
    manifest = [{k: p[k] for k in ("part", "size", "etag", "checksum", "ec", "inline", "enc") if k in p} for p in parts]
    record = {"etag": multipart_etag([p["etag"] for p in parts]), "checksum": checksum, "checksum_chosen": bool(spec),
              "headers": up_rec.get("headers") or {}, "meta": up_rec.get("meta") or {},
              "size": sum(p["size"] for p in parts), "parts": manifest, "upload_id": uid,
              **SC.record_field(SC.of(up_rec))}
    if up_rec.get("tags"):
        record["tags"] = up_rec["tags"]
    if up_rec.get("acl"):
        record["acl"] = up_rec["acl"]
    if up_rec.get("sse"):
        record["sse"] = up_rec["sse"]
    record.update(objectlock.completed_fields(ctx, up_rec))     # or the bucket's default retention, now
    # The moment the object becomes visible; If-Match / If-None-Match as on
    # PutObject, a compare-and-set at the metadata replicas.
    failpoint("frontend.multipart.before_commit")
    rec = await ctx.meta.put_object(bucket, key, record, conditions)
    # A crash here leaves the object visible and its upload still listed: a
    # retry of Complete finds it done (_completed_before) and deletes the record.
    failpoint("frontend.multipart.after_commit_before_cleanup")
    await _forget_upload(ctx, uid)
    return _completed(ctx, rec)


async def _forget_upload(ctx: Context, uid: str) -> None:
    try:
        await ctx.meta.delete_record(upload_ikey(ctx.target.bucket, ctx.target.key, uid))
    except E.S3Error:
        pass          # the upload stays listed; its part records are cleaned by the scrubber


async def abort(ctx: Context) -> web.Response:
    up_rec = await _upload(ctx)
    uid = up_rec["upload_id"]
    await ctx.meta.delete_record(upload_ikey(ctx.target.bucket, ctx.target.key, uid))
    # The part records too (what a crash leaves, the scrubber cleans up).
    sem = asyncio.Semaphore(32)

    async def drop(n: int) -> None:
        async with sem:
            try:
                await ctx.meta.delete_record(part_ikey(uid, n))
            except E.S3Error:
                pass
    await asyncio.gather(*(drop(n) for n in await _all_parts(ctx, uid)))
    return web.Response(status=204)


def _int_arg(query: dict, name: str, default: int, hi: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    n = parse_int(raw)
    if n is None or not -2**31 <= n < 2**31:
        raise E.InvalidArgument(f"Provided {name} not an integer or within integer range",
                                ArgumentName=name, ArgumentValue=raw)
    if n < 0:
        raise E.InvalidArgument(f"Argument {name} must be an integer between 0 and 2147483647",
                                ArgumentName=name, ArgumentValue=raw)
    return min(n, hi)


async def list_parts(ctx: Context) -> web.Response:
    up_rec = await _upload(ctx)
    marker = _int_arg(ctx.query, "part-number-marker", 0, MAX_PARTS)
    max_parts = _int_arg(ctx.query, "max-parts", 1000, 1000)
    page = await ctx.meta.list_objects(PARTS + up_rec["upload_id"], marker=f"{marker:05d}" if marker else "",
                                       max_keys=max_parts, _checked=True, full=True)
    parts = [{"part": int(k), "mtime_ms": r["mtime"], "etag": r["etag"], "size": r["size"],
              "checksum": r.get("checksum") if up_rec.get("checksum") else None} for k, r in page["entries"]]
    spec = up_rec.get("checksum") or {}
    body = multipart_xml.list_parts_xml(bucket=ctx.target.bucket, key=ctx.target.key, upload_id=up_rec["upload_id"],
                                part_number_marker=marker,
                                next_part_number_marker=parts[-1]["part"] if parts else None,
                                max_parts=max_parts, truncated=page["truncated"], parts=parts,
                                owner=_owner(ctx), checksum_algorithm=spec.get("alg", "").upper() or None,
                                checksum_type=spec.get("type"), storage_class=SC.of(up_rec))
    return web.Response(body=body, content_type="application/xml")


async def list_uploads(ctx: Context) -> web.Response:
    bucket = ctx.target.bucket
    await ctx.meta.get_bucket(bucket)
    q = ctx.query
    prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
    key_marker, uid_marker = q.get("key-marker", ""), q.get("upload-id-marker", "")
    max_uploads = _int_arg(q, "max-uploads", 1000, 1000)
    encoding = encoding_type(q)
    # Index keys are "key \0 upload id": after key-marker alone means after all
    # of that key's uploads ("\x01" sorts after "\0" + any id).
    marker = ""
    if key_marker:
        clipped = clip_marker(key_marker)        # a longer one: no upload's key lies between the two
        marker = clipped + ("\x00" + uid_marker if uid_marker and clipped == key_marker else "\x01")
    if too_long_for_a_key(prefix):
        page = dict(EMPTY_PAGE)
    else:
        page = await ctx.meta.list_objects(UPLOADS + bucket, prefix=prefix, delimiter=delimiter, marker=marker,
                                           max_keys=max_uploads, _checked=True, full=True)
    uploads = []
    for k, r in page["entries"]:
        spec = r.get("checksum") or {}
        uploads.append({"key": k[:-33], "upload_id": k[-32:], "initiated_ms": r.get("initiated", r["mtime"]),
                        "checksum_algorithm": spec.get("alg", "").upper() or None,
                        "checksum_type": spec.get("type"), "storage_class": SC.of(r)})
    next_key = next_uid = None
    if page["truncated"] and page["next_marker"]:
        nm = page["next_marker"]
        if len(nm) > 33 and nm[-33] == "\x00":
            next_key, next_uid = nm[:-33], nm[-32:]
        else:
            next_key = nm                       # a common prefix
    body = multipart_xml.list_multipart_uploads_xml(
        bucket=bucket, prefix=prefix or None, delimiter=delimiter or None, key_marker=key_marker,
        upload_id_marker=uid_marker, next_key_marker=next_key, next_upload_id_marker=next_uid,
        max_uploads=max_uploads, truncated=page["truncated"], uploads=uploads, prefixes=page["prefixes"],
        owner=_owner(ctx), encoding_type=encoding)
    return web.Response(body=body, content_type="application/xml")


# ----------------------------------------------------------------------------- GET / HEAD ?partNumber
def part_range(rec: dict, n: int) -> tuple[int, int, int]:
    """(first byte, last byte, parts count) of part n of an object. An object
    that was not uploaded in parts is its own part 1."""
    parts = rec.get("parts")
    if parts is None:
        if n != 1:
            raise E.InvalidPartNumber()
        return 0, rec["size"] - 1, 1
    if n > len(parts):
        raise E.InvalidPartNumber()
    start = sum(p["size"] for p in parts[:n - 1])
    return start, start + parts[n - 1]["size"] - 1, len(parts)
