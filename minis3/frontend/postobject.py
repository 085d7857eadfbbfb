"""PostObject: a browser's form upload (``POST /bucket`` with ``multipart/form-data``).

The form's fields come first (at most ``MAX_FIELDS_BYTES`` of them: S3's
MaxPostPreDataLengthExceededError past that), then the ``file`` part, which is streamed into
the data path like a PUT's body (never held whole); fields after the file are ignored, as S3
ignores them. The policy and its signature are checked (core/postpolicy.py) before a byte of
the file is read; then the request is authorised as a ``s3:PutObject`` of the form's key by
whoever signed the policy (anonymous without one), with the form's fields as the request's
headers for the policy's conditions (frontend/authorize.py).

The answer: ``success_action_redirect`` (303 to it, with bucket, key and ETag), else
``success_action_status`` 200, 201 (a ``PostResponse`` document) or 204 (the default).
"""
from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode, urlsplit, urlunsplit

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import CIMultiDict

from ..core import checksums, postpolicy, s3xml, versions
from ..core import errors as E
from ..core import xmldoc as X
from ..core.names import validate_key
from ..core.sigv4 import AuthResult, UNSIGNED_PAYLOAD
from ..core.tagging import parse_tagging
from ..ec import storage_class as SC
from . import authorize, encryption, objectlock, permissions
from .body import DigestedBody, check_claimed
from .context import Context
from .params import stored_headers

#: The form's fields before the file, at most (S3 refuses more with MaxPostPreDataLengthExceededError).
MAX_FIELDS_BYTES = 64 * 1024
READ_SIZE = 256 * 1024
#: What aiohttp's multipart reader raises on a body that is not multipart/form-data.
BROKEN = (ValueError, AssertionError, HttpProcessingError)
MAX_OBJECT_SIZE = 5 * 1024 ** 3


class _Fields:
    """The form's fields as a request's headers (stored_headers reads ``.headers``)."""

    def __init__(self, fields: dict[str, str]):
        self.headers = CIMultiDict(fields)


async def _read_fields(request: web.Request):
    """(fields with lower-case names, the file part and its file name)."""
    if not request.content_type.startswith("multipart/form-data"):
        raise E.InvalidArgument("POST requires exactly one file upload per request.", ArgumentName="file",
                                ArgumentValue="0")
    try:
        reader = await request.multipart()
    except BROKEN as exc:
        raise E.MalformedPOSTRequest() from exc
    fields: dict[str, str] = {}
    used = 0
    while True:
        try:
            part = await reader.next()
        except BROKEN as exc:
            raise E.MalformedPOSTRequest() from exc
        if part is None:
            raise E.InvalidArgument("POST requires exactly one file upload per request.", ArgumentName="file",
                                    ArgumentValue="0")
        name = (part.name or "").lower()
        if name == "file":
            return fields, part, part.filename or ""
        raw = bytearray()
        try:
            while chunk := await part.read_chunk(8192):
                raw += chunk
                used += len(chunk)
                if used > MAX_FIELDS_BYTES:
                    raise E.MaxPostPreDataLengthExceededError()
        except BROKEN as exc:
            raise E.MalformedPOSTRequest() from exc
        fields[name] = raw.decode("utf-8", "replace")


class FormFile(DigestedBody):
    """The form's ``file`` part as a PUT's body (body.IncomingBody's interface): read piece by
    piece, hashed, its size held to the policy's range, its checksum field verified."""

    def __init__(self, part, fields: dict[str, str], size_range: tuple[int, int] | None):
        self.part, self.range = part, size_range
        self.header_checksums = checksums.parse_checksum_headers(fields)
        sdk_alg = fields.get("x-amz-checksum-algorithm")
        self.algorithm = next(iter(self.header_checksums), None) or (
            checksums.normalize_algorithm(sdk_alg) if sdk_alg else None)
        self.stored_alg = self.algorithm or "crc64nvme"
        self.digests = checksums.BodyDigests({self.stored_alg})
        self.received = 0

    async def chunks(self):
        while True:
            try:
                piece = await self.part.read_chunk(READ_SIZE)
            except Exception as exc:               # the client went away, or a broken form
                raise E.IncompleteBody() from exc
            if not piece:
                break
            self.received += len(piece)
            if self.received > (self.range[1] if self.range else MAX_OBJECT_SIZE):
                raise E.EntityTooLarge("Your proposed upload exceeds the maximum allowed size")
            yield piece
        if self.range and self.received < self.range[0]:
            raise E.EntityTooSmall("Your proposed upload is smaller than the minimum allowed size")

    async def verify(self) -> None:
        check_claimed(self.header_checksums, self.digests.results())


def _authorise(ctx: Context, key: str, fields: dict[str, str]) -> None:
    """A PutObject of ``key`` by the form's signer; the ACL field as a PUT's x-amz-acl."""
    state = ctx.buckets_seen[ctx.target.bucket]
    headers = {("x-amz-acl" if k == "acl" else k): v for k, v in fields.items()}
    if not authorize.allowed(ctx, "s3:PutObject", key, headers=headers):
        raise E.AccessDenied()
    ctx.acting[ctx.target.bucket] = state.access.owner
    ctx.acl = permissions.check_acl_headers({"x-amz-acl": fields["acl"]}, state) if "acl" in fields else None


def _answer(ctx: Context, fields: dict[str, str], key: str, rec: dict) -> web.Response:
    bucket, etag = ctx.target.bucket, f'"{rec["etag"]}"'
    location = f"{ctx.request.scheme}://{ctx.request.host}/{bucket}/{X.url_encode(key)}"
    headers = {"ETag": etag, "Location": location, **versions.header(rec), **encryption.answer_headers(ctx, rec.get("sse"), fields=fields)}
    redirect = fields.get("success_action_redirect") or fields.get("redirect")
    if redirect and urlsplit(redirect).scheme in ("http", "https"):
        u = urlsplit(redirect)
        query = "&".join(q for q in (u.query, urlencode({"bucket": bucket, "key": key, "etag": etag})) if q)
        headers["Location"] = urlunsplit((u.scheme, u.netloc, u.path, query, u.fragment))
        return web.Response(status=303, headers=headers)
    status = fields.get("success_action_status")
    if status == "201":
        body = s3xml.post_response_xml(location, bucket, key, etag)
        return web.Response(status=201, body=body, content_type="application/xml", headers=headers)
    return web.Response(status=200 if status == "200" else 204, headers=headers)


async def post_object(ctx: Context) -> web.Response:
    bucket, fe = ctx.target.bucket, ctx.fe
    fields, part, filename = await _read_fields(ctx.request)
    size_range = None
    await fe.know(fields.get("awsaccesskeyid") or fields.get("x-amz-credential", "").split("/", 1)[0])
    signer = postpolicy.signer(fields, fe.secrets)
    if signer is not None:
        size_range = postpolicy.check(postpolicy.parse(fields["policy"]), fields, bucket,
                                      dt.datetime.now(dt.timezone.utc))
        ctx.auth = AuthResult(access_key=signer, mode="post", payload_hash=UNSIGNED_PAYLOAD)
    if "key" not in fields:
        raise E.InvalidArgument("Bucket POST must contain a field named 'key'.  If it is specified, please check "
                                "the order of the fields.", ArgumentName="key", ArgumentValue="")
    key = fields["key"].replace("${filename}", filename)
    validate_key(key)
    _authorise(ctx, key, fields)
    std, meta = stored_headers(_Fields(fields))          # it takes the standard ones and x-amz-meta-*
    tags = parse_tagging(fields["tagging"].encode(), bucket=False) if "tagging" in fields else None
    sc = SC.parse(fields.get("x-amz-storage-class"), fe.topo.storage_class.for_bucket(bucket))
    lock = objectlock.new_version_fields(ctx, headers=fields, key=key)
    data_key, sealed = encryption.for_write(ctx, bucket, key, headers=fields)
    up = FormFile(part, fields, size_range)
    stored = await fe.datapath.store(up.chunks(), on_segment=up.hash, verify=up.verify, storage_class=sc,
                                     data_key=data_key)
    record = {"etag": encryption.etag(sealed, data_key, up.etag()), "checksum": up.stored_checksum(),
              "headers": std, "meta": meta, "ts": fe.hlc.now(), **stored.record_fields(), **SC.record_field(sc),
              "sse": sealed, **lock}
    if tags:
        record["tags"] = [list(t) for t in tags]
    if ctx.acl:
        record["acl"] = [list(g) for g in ctx.acl]
    from .object import commit_stored
    rec = await commit_stored(ctx, stored, lambda: ctx.meta.put_object(bucket, key, record,
                                                                       stamp_by=stored.commit_by))
    return _answer(ctx, fields, key, rec)

