"""Who may do what, decided once per request before its handler runs: :func:`authorize`.

The decision itself is pure (minis3/core/access.py, over core/policy.py and the actions of
core/actions.py); here is what feeds it and what follows from it:

* :class:`AccessStore`: a bucket's record (its owner) and its access settings (policy, Block
  Public Access, Object Ownership), read from the metadata service and kept for
  ``TTL`` seconds. Raw records of the bucket's version, ``ACCESS + bucket/vid/what``, one
  scan reads them all; a bucket created again under the same name starts with none.
  A change made through this frontend is seen at once here; another frontend sees it within
  ``TTL`` (AWS documents policy changes as eventually consistent too).
* the request context a policy's conditions test (source IP, TLS, Referer, ``s3:prefix``,
  ``x-amz-acl``, tags...);
* where the request is allowed, the account it then acts as in each bucket: the bucket's
  owner (``Context.acting``), so the metadata replicas' own owner check (a second line of
  defence against a bucket deleted and created again meanwhile) passes for a caller a
  policy lets in, and every object written belongs to the bucket owner (as under S3's
  ``BucketOwnerEnforced``);
* for a browser's request (an ``Origin`` header), the CORS headers its answer gets, allowed
  or not (frontend/cors.py).

The decision and what made it are on the request's trace span (``minis3 trace``).
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from ..core import access, acl, actions, cors, versions
from ..core import errors as E
from ..core import tagging
from ..core.access import BucketAccess, PublicAccessBlock
from ..core.policy import parse_policy
from ..meta.client import MetaClient
from ..rpc.tracing import TRACER
from .context import Context

#: The key space of buckets' access settings (sorts before every bucket, like UPLOADS).
ACCESS = "\x00a/"
#: request[CORS_HEADERS]: the Access-Control-* headers of the request's answer (frontend/cors.py).
CORS_HEADERS = "minis3.cors"
#: Operations decided before any bucket is read: they name none (ListBuckets) or make one.
NO_BUCKET_YET = frozenset({"ListBuckets", "CreateBucket"})


@dataclass(frozen=True)
class BucketState:
    """A bucket as the authoriser knows it: its record, what decides access to it, and its
    raw settings records (for the Get* calls)."""
    record: dict
    access: BucketAccess
    settings: dict[str, dict]

    @property
    def cors(self) -> list[cors.Rule] | None:
        """The bucket's CORS rules (frontend/cors.py), or None."""
        raw = (self.settings.get("cors") or {}).get("rules")
        return cors.from_record(raw) if raw else None


class AccessStore:
    TTL = 1.0

    def __init__(self, meta: MetaClient):
        self.meta = meta.as_account(None)           # reads every bucket: the authoriser decides
        self._cache: dict[str, tuple[float, BucketState]] = {}
        self._reading: dict[str, asyncio.Future] = {}
        self._changes: dict[str, int] = {}          # bucket → changes made through this frontend

    async def bucket(self, name: str) -> BucketState:
        """The bucket (NoSuchBucket if it does not live here), from the cache when fresh. One
        read at a time per bucket: the requests that find the entry stale together wait for
        the same read (else every request in flight when an entry expires would make its own
        two metadata calls)."""
        hit = self._cache.get(name)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        reading = self._reading.get(name)
        if reading is None:
            reading = self._reading[name] = asyncio.ensure_future(self._read(name, self._changes.get(name, 0)))
            reading.add_done_callback(lambda f: self._done(name, f))
        return await asyncio.shield(reading)

    def _done(self, name: str, f: asyncio.Future) -> None:
        if self._reading.get(name) is f:
            del self._reading[name]
        if not f.cancelled():
            f.exception()                   # retrieved: whoever waited has it; nobody left, no warning

    async def _read(self, name: str, changes: int) -> BucketState:
        now = time.monotonic()
        rec = await self.meta.get_bucket(name)
        page = await self.meta.list_objects(f"{ACCESS}{name}/{rec['vid']}", _checked=True, full=True)
        settings = {what: r for what, r in page["entries"]}
        state = BucketState(rec, _access_of(name, rec, settings), settings)
        if self._changes.get(name, 0) == changes:     # not if a change was made here meanwhile
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[name] = (now + self.TTL, state)
        return state

    async def put(self, name: str, what: str, record: dict) -> None:
        """Set one of a bucket's access settings (``policy``, ``block``, ``ownership``)."""
        rec = (await self.bucket(name)).record
        await self.meta.put_record(f"{ACCESS}{name}/{rec['vid']}/{what}", record)
        self.forget(name)

    def forget(self, name: str) -> None:
        self._cache.pop(name, None)
        self._reading.pop(name, None)        # a read begun before the change is not reused, nor cached
        self._changes[name] = self._changes.get(name, 0) + 1


def _access_of(name: str, rec: dict, settings: dict[str, dict]) -> BucketAccess:
    """A bucket's settings records as the decision reads them. A setting never written has
    S3's default for a new bucket (Block Public Access all on, BucketOwnerEnforced); one
    deleted is stored as ``None`` (no configuration: nothing blocked, ObjectWriter)."""
    policy_text = (settings.get("policy") or {}).get("policy")
    block = settings.get("block", {"block": [True] * 4})["block"]
    ownership = settings.get("ownership", {"ownership": access.DEFAULT_OWNERSHIP})["ownership"]
    grants = (settings.get("acl") or {}).get("grants")
    return BucketAccess(owner=rec["owner"], policy=parse_policy(policy_text, name) if policy_text else None,
                        block=PublicAccessBlock(*block) if block is not None else None,
                        ownership=ownership or "ObjectWriter",
                        acl=tuple(tuple(g) for g in grants) if grants else None)


# ----------------------------------------------------------------------------- the decision
def _context(ctx: Context, existing_tags=None, headers: dict | None = None) -> dict:
    """``headers``: what stands for the request's headers (a form upload's fields)."""
    if headers is None:
        headers = ctx.lowered_headers()
    raw_tags = headers.get(tagging.TAGGING_HEADER)
    try:
        tags = tagging.parse_header(raw_tags) if raw_tags is not None else None
    except E.S3Error:
        tags = None                   # the handler refuses it, with its own error
    return access.request_context(
        principal=ctx.principal, user=ctx.user, source_ip=ctx.request.remote, secure=ctx.request.secure, headers=headers, query=ctx.query, auth_mode=ctx.auth.mode,
        now_epoch=time.time(), tags=tags, existing_tags=existing_tags)


async def _existing_tags(ctx: Context, state: BucketState) -> list | None:
    """The object's tags, when a statement tests ``s3:ExistingObjectTag/…`` (else None: no read)."""
    key = ctx.target.key
    if key is None or not access.tests_existing_tags(state.access.policy):
        return None
    rec = await _object_record(ctx, ctx.target.bucket, key, None)
    return None if rec is None else [tuple(t) for t in rec.get("tags") or []]


async def _object_record(ctx: Context, bucket: str, key: str, vid: str | None) -> dict | None:
    """An object's record (one version of it, with ``vid``), read as nobody in particular
    (the authoriser decides), or None when there is none."""
    meta = ctx.fe.meta.as_account(None)
    try:
        if vid:
            return await meta.get_version(bucket, key, versions.parse_id(vid))
        return await meta.get_object(bucket, key, payload=False)
    except (E.NoSuchKey, E.NoSuchVersion, E.InvalidArgument):
        return None


def _copy_source(ctx: Context, op: str):
    if op not in ("CopyObject", "UploadPartCopy"):
        return None
    from .object import parse_copy_source
    return parse_copy_source(ctx.request.headers.get("x-amz-copy-source", ""))


async def authorize(ctx: Context, op: str) -> None:
    """Allow the request or raise AccessDenied (module doc); set ``ctx.acting``."""
    if op in NO_BUCKET_YET:
        if ctx.principal.anonymous:
            _trace(ctx, access.Verdict(False, None, "an anonymous request cannot list or create buckets"))
            raise E.AccessDenied()
        return
    bucket = ctx.target.bucket
    try:
        state = await ctx.fe.access.bucket(bucket)
    except E.NoSuchBucket:
        if op == "GetBucketLocation":
            return              # answered by every region, from the registry (its handler checks the owner)
        raise
    ctx.buckets_seen[bucket] = state
    origin = ctx.request.headers.get("Origin")
    if origin:                  # a browser's request: its answer, even a refusal, says what CORS allows
        ctx.request[CORS_HEADERS] = cors.actual(state.cors, origin, ctx.request.method)
    if op == "PostObject":
        return                  # its key and signer are in the form: decided by the handler (allowed())
    if op == "DeleteObjects":
        # Decided key by key, as DeleteObject (allowed(), from the handler): the batch acts
        # as the owner, and a key not allowed gets its own AccessDenied in the answer.
        ctx.acting[bucket] = state.access.owner
        return
    source = _copy_source(ctx, op)
    states = {bucket: state}
    if source is not None and source[0] not in states:
        states[source[0]] = await ctx.fe.access.bucket(source[0])
    _expected_owners(ctx, state, states[source[0]] if source is not None else None)
    # The context only matters to a policy's conditions: none, no context to build (most requests).
    policies = any(st.access.policy is not None for st in states.values())
    context = _context(ctx, await _existing_tags(ctx, state)) if policies else {}
    principal = ctx.principal
    for need in actions.needs(op, bucket, ctx.target.key, ctx.query, source):
        owner_bucket = source[0] if source is not None and need.action.startswith("s3:GetObject") else bucket
        verdict = access.decide(principal, need, states[owner_bucket].access, context)
        if not verdict.allowed and verdict.effect is None:
            verdict = await _with_object_acl(ctx, need, states[owner_bucket].access, context, source) or verdict
        _trace(ctx, verdict, need)
        if not verdict.allowed:
            raise E.AccessDenied()
        ctx.acting[owner_bucket] = states[owner_bucket].access.owner


def _expected_owners(ctx: Context, state: BucketState, source: BucketState | None) -> None:
    """``x-amz-expected-bucket-owner`` (and ``x-amz-source-expected-bucket-owner`` for a copy's
    source): a caller's guard against writing to a bucket someone else now owns; another
    account id than the owner's is 403 AccessDenied, as S3 answers."""
    h = ctx.request.headers
    for header, st in (("x-amz-expected-bucket-owner", state), ("x-amz-source-expected-bucket-owner", source)):
        want = h.get(header)
        if want is not None and st is not None and want != access.account_id(st.access.owner):
            raise E.AccessDenied()


async def _with_object_acl(ctx: Context, need: actions.Need, bucket: BucketAccess, context: dict,
                           source) -> access.Verdict | None:
    """Decide again with the object's own ACL, read only when it could change the answer: an
    object need, in a bucket whose ACLs count, that nothing else allowed."""
    if not access.acls_count(bucket) or need.action not in acl.OBJECT_PERMISSION:
        return None
    if source is not None and need.action.startswith("s3:GetObject"):
        b, key, vid = source
    else:
        b, key, vid = ctx.target.bucket, ctx.target.key, ctx.query.get("versionId")
    rec = await _object_record(ctx, b, key, vid)
    grants = rec.get("acl") if rec is not None else None
    return access.decide(ctx.principal, need, bucket, context, object_acl=grants) if grants else None


def allowed(ctx: Context, action: str, key: str, headers: dict | None = None, *, shown: bool = True) -> bool:
    """One object action decided in the handler, where its key is known only there: a key of
    a DeleteObjects batch (decided as a DeleteObject of it, as AWS does), a form upload's key
    (``headers``: its fields, which stand for a PUT's headers). ``shown=False``: a question
    about what to answer (may this caller see a version's retention?), not a refusal, so it
    leaves the request's traced decision alone."""
    state = ctx.buckets_seen[ctx.target.bucket]
    need = actions.Need(action, actions.object_arn(ctx.target.bucket, key))
    context = _context(ctx, headers=headers) if state.access.policy else {}
    verdict = access.decide(ctx.principal, need, state.access, context)
    if shown and (not verdict.allowed or headers is not None):
        _trace(ctx, verdict, need)
    return verdict.allowed


def _trace(ctx: Context, verdict: access.Verdict, need: actions.Need | None = None) -> None:
    """The decision, on a span of its own (a sampled request) and on the request's root span
    (every request: ``minis3 trace`` shows it even when the request was not sampled)."""
    what = f"{need.action} on {need.resource}" if need is not None else "the request"
    who = ctx.principal.arn or "anonymous"
    summary = f"{'ALLOW' if verdict.allowed else 'DENY'}: {what} for {who}, by {verdict.by}"
    if ctx.root is not None and (not verdict.allowed or "authorize" not in ctx.root.attributes):
        ctx.root.attributes["authorize"] = summary
    with TRACER.span("authorize") as s:
        if s is not None:
            s.attributes.update(decision="allow" if verdict.allowed else "deny", by=verdict.by, principal=who)
            if need is not None:
                s.attributes.update(action=need.action, resource=need.resource)
            if verdict.statement:
                s.attributes["statement"] = verdict.statement
