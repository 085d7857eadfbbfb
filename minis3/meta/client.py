"""The frontend's view of the metadata service: quorums over three replicas.

Every bucket and object version lives on three replicas, one per AZ: a
bucket on each AZ's home metadata process, an object on the processes the
partition map names for its key's range (``meta/routing.py``). This client
is the coordinator (the idea of Dynamo and Cassandra, with S3's last
writer wins):

* **writes** get a hybrid-logical-clock timestamp here, go to all N replicas
  at once, and succeed when W of them have made the version durable;
* **reads** ask all replicas and take the newest version among the first R
  answers (a replica still catching up answers 503 and is skipped);
* with N = 3, W = 2, R = 2, W + R > N: every read quorum overlaps every write
  quorum, so a client that got a 200 for a PUT or DELETE sees it on its next
  GET, HEAD or LIST (read-after-write), with any one replica down or frozen.

A slow or frozen replica never holds a request: the answer comes from the
first R (or W) replicas to respond; writes still on their way to the third go
on in the background, and a replica that missed them catches up from its
peers when it (re)starts. A read that sees two different versions writes the
newer one back to the stale replica (read repair).

S3's rules (ownership, conditions, empty buckets) are applied here, on what a
quorum read returns. A conditional write (If-Match / If-None-Match, and every
read-modify-write of a record, such as a tagging change) is a compare-and-set
at the replicas in two rounds, prepare and accept (``meta/promises.py``): of
two racing writes, whichever frontends they come through, at most one wins.
"""
from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import random
import time
import uuid
from bisect import bisect_right
from typing import Awaitable, Callable
from urllib.parse import urlencode

import aiohttp
from sortedcontainers import SortedDict

from ..core import errors as E
from ..rpc import fastjson
from ..core.conditions import check_write
from ..core.hlc import HLC, physical_ms
from ..core import versions as V
from ..rpc import tracing
from ..rpc.auth import BODY_HEADER
from . import batch, blobs
from .listing import after_prefix, list_page, versions_page
from .partition import version
from .routing import IndexRouter
from .versioned import VersionedObjects, content, marker_headers

log = logging.getLogger("minis3.meta.client")

#: Key spaces of raw records (see MetaClient.get_record).
UPLOADS = "\x00u/"
PARTS = "\x00p/"

N_REPLICAS = 3
WRITE_QUORUM = 2
READ_QUORUM = 2
READ_HEDGE = 0.25        # seconds a read waits for its first replicas before asking another
SUSPECT_FOR = 2.0        # seconds a replica that failed to answer is asked last
CAS_ATTEMPTS = 8         # rounds a conditional write tries before 409 ConditionalRequestConflict
CAS_BACKOFF = 0.004      # seconds, doubled each attempt (randomised, so racing writers spread out)


def newest(recs) -> dict | None:
    best = None
    for r in recs:
        if r is not None and version(r) > version(best):
            best = r
    return best


def live(rec: dict | None) -> dict | None:
    return None if rec is None or rec.get("deleted") else rec


# ------------------------------------------------------------------ a compare-and-set's decisions (pure)
def cas_settled(found: list[dict | None], wid: str, w: int) -> dict | None:
    """One earlier attempt of write ``wid`` that a quorum of the prepare
    replies hold (the same version on ``w`` of them): it was acknowledged,
    though its answer was lost."""
    ours = [version(o) for o in found if o is not None and o.get("wid") == wid]
    for v in set(ours):
        if ours.count(v) >= w:
            return next(o for o in found if o is not None and version(o) == v)
    return None


def cas_judged(found: list[dict | None], wid: str, seen: dict | None) -> dict | None:
    """The version a condition is judged on: the newest in the replies that is
    not this write's own earlier attempt. Where one replica kept such an
    attempt, it lies on top of a version no newer than one an earlier
    attempt judged (``seen``), which counts too."""
    return newest([o for o in found if o is None or o.get("wid") != wid] + [seen])


def cas_outcome_unknown(judged: dict | None, sent: tuple | None) -> bool:
    """A write that now fails its condition, after an earlier attempt of it
    was sent (``sent``: that version) and may have landed on one replica:
    if that version is newer than the one judged, it could still surface
    under last-writer-wins, so the honest answer is "unknown" (503, the
    client retries), never 412."""
    return sent is not None and version(judged) < sent


class ReplicaError(Exception):
    def __init__(self, message: str, code: str | None = None, status: int = 0, body: dict | None = None):
        super().__init__(message)
        self.code, self.status, self.body = code, status, body or {}


_JSON_HEADERS = {"Content-Type": "application/json"}


class Replica:
    """One metadata process, over HMAC-signed HTTP."""

    def __init__(self, session: aiohttp.ClientSession, url: str, name: str = "", az: str = ""):
        self.session, self.url, self.name, self.az = session, url, name or url, az
        self.suspect_until = 0.0          # after a failure to answer, asked last for a while
        self._queue: list = []            # calls waiting for the end of this loop turn (meta/batch.py)

    async def call(self, method: str, path: str, *, params: dict | None = None, json: dict | bytes | None = None,
                   body_sha256: str | None = None):
        """One call's answer (ReplicaError for a 4xx/5xx or no answer). ``json``:
        a document, or one already encoded (bytes: a write sent to three
        replicas is encoded once, not three times). Calls of the hot path made
        outside a traced request wait for the end of this turn of the event
        loop and go out together (meta/batch.py). ``body_sha256``: the digest
        of ``json`` (bytes), when the caller has it already."""
        if (batch.ENABLED and (method, path) in batch.BATCHABLE and tracing.CURRENT.get() is None
                and not (isinstance(json, bytes) and len(json) > batch.MAX_BODY)):
            status, body = await self._queued(method, path, params, json)
        else:
            status, body = await self._request(method, path, params, json, body_sha256)
        if status >= 400:
            raise ReplicaError(f"{self.name}: {status} {body.get('code')}", body.get("code"), status, body)
        self.suspect_until = 0.0
        return body

    async def _request(self, method: str, path: str, params: dict | None, json: dict | bytes | None,
                       body_sha256: str | None = None) -> tuple[int, dict]:
        url = self.url + path + ("?" + urlencode(params) if params else "")
        kw = {}
        if json is not None:
            # Every body goes out with its SHA-256, which the request's
            # signature covers (rpc/auth.py) and the replica checks.
            raw = json if isinstance(json, bytes) else fastjson.dumpb(json)
            sha = body_sha256 or hashlib.sha256(raw).hexdigest()
            kw = {"data": raw, "headers": {**_JSON_HEADERS, BODY_HEADER: sha}}
        try:
            async with self.session.request(method, url, **kw) as r:
                return r.status, await r.json(content_type=None, loads=fastjson.loads)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            self.suspect_until = time.monotonic() + SUSPECT_FOR
            raise ReplicaError(f"{self.name}: {exc.__class__.__name__}") from exc

    def _queued(self, method: str, path: str, params: dict | None, json) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        if not self._queue:
            loop.call_soon(self._flush)
        self._queue.append((method, path, params, json, fut))
        return fut

    def _flush(self) -> None:
        items, self._queue = self._queue, []
        _Background.keep(asyncio.ensure_future(self._send(items)))

    async def _send(self, items: list) -> None:
        """A lone call as itself; several as one batch. Each caller's future
        gets (status, body), or the ReplicaError of a batch that got no answer."""
        try:
            if len(items) == 1:
                m, p, q, b, _ = items[0]
                answers = [await self._request(m, p, q, b)]
            else:
                raw, sha = batch.encode_calls([i[:4] for i in items])
                status, doc = await self._request("POST", batch.PATH, None, raw, body_sha256=sha)
                if status != 200:
                    raise ReplicaError(f"{self.name}: batch answered {status} {doc.get('code')}", doc.get("code"),
                                       status, doc)
                answers = [(st, body) for st, body in doc["results"]]
        except BaseException as exc:              # no caller may wait forever
            err = exc if isinstance(exc, ReplicaError) else ReplicaError(f"{self.name}: batch failed: {exc!r}")
            for *_, fut in items:
                if not fut.done():
                    fut.set_exception(err)
            if not isinstance(exc, Exception):
                raise
            return
        for (*_, fut), answer in zip(items, answers):
            if not fut.done():
                fut.set_result(answer)


class _Background:
    """Writes still on their way to slower replicas (kept referenced)."""
    tasks: set[asyncio.Future] = set()

    @classmethod
    def keep(cls, fut: asyncio.Future) -> None:
        cls.tasks.add(fut)
        fut.add_done_callback(cls._done)

    @classmethod
    async def drain(cls, timeout: float = 60.0) -> None:
        """Wait (at most ``timeout``) for the writes still on their way: a
        short-lived client (``minis3 bulk-load``) calls it before closing its
        session, which would otherwise cut them off, leaving the slowest
        replica without them until the scrubber's anti-entropy."""
        if cls.tasks:
            await asyncio.wait(list(cls.tasks), timeout=timeout)

    @classmethod
    def _done(cls, fut: asyncio.Future) -> None:
        cls.tasks.discard(fut)
        if not fut.cancelled() and fut.exception() is not None:
            log.debug("background replica call failed: %s", fut.exception())


async def drain_background(timeout: float = 60.0) -> None:
    """Wait for this process's writes still on their way to slower replicas."""
    await _Background.drain(timeout)


def ask_order(replicas: list[Replica]) -> list[Replica]:
    """The order :func:`quorum` asks replicas in: as given, replicas that
    recently failed to answer last."""
    now = time.monotonic()
    return sorted(replicas, key=lambda r: r.suspect_until > now)


async def quorum(replicas: list[Replica], call: Callable[[Replica], Awaitable], need: int, *,
                 finish_in_background: bool, ask: int | None = None) -> list[tuple[Replica, object]]:
    """Run call(r) on replicas; return the first `need` successes as (replica, result).

    Writes ask every replica (``ask`` = all) and let the slower ones finish in
    the background. Reads ask only ``ask`` = `need` of them, replicas that
    recently failed to answer last; when one fails, or none has answered after
    READ_HEDGE seconds (a frozen replica never answers), the next one is asked
    too. If `need` cannot succeed: the S3 error that a quorum of replicas gave
    (NoSuchBucket, AccessDenied), else 503 ServiceUnavailable."""
    order = ask_order(replicas)
    first = len(order) if ask is None else ask
    tasks: dict[asyncio.Future, Replica] = {}
    waiting = list(order[first:])
    for r in order[:first]:
        tasks[asyncio.ensure_future(call(r))] = r
    pending, ok, failed = set(tasks), [], []
    try:
        while len(ok) < need:
            if len(ok) + len(pending) < need and waiting:
                r = waiting.pop(0)
                t = asyncio.ensure_future(call(r))
                tasks[t] = r
                pending.add(t)
                continue
            if not pending:
                break
            done, pending = await asyncio.wait(pending, timeout=READ_HEDGE if waiting else None,
                                               return_when=asyncio.FIRST_COMPLETED)
            if not done:                           # slow: ask one more replica
                r = waiting.pop(0)
                t = asyncio.ensure_future(call(r))
                tasks[t] = r
                pending.add(t)
                continue
            for t in done:
                if t.exception() is None:
                    ok.append((tasks[t], t.result()))
                else:
                    failed.append(t.exception())
    finally:
        for t in pending:
            if finish_in_background:
                _Background.keep(t)
            else:
                t.cancel()
    if len(ok) < need:
        codes = [e.code for e in failed if isinstance(e, ReplicaError) and 400 <= e.status < 500]
        for code in set(codes):
            cls = getattr(E, str(code), None)
            if codes.count(code) >= need and isinstance(cls, type) and issubclass(cls, E.S3Error):
                raise cls()
        if any(isinstance(e, ReplicaError) and e.code == "SlowDown" for e in failed):
            # A partition over its request budget: S3's answer, which clients retry with back-off.
            raise E.SlowDown()
        raise E.ServiceUnavailable(f"metadata quorum not reached ({len(ok)}/{need}): "
                                   f"{'; '.join(map(str, failed))}")
    return ok


# ------------------------------------------------------------------ LIST over replicas
class _NeedMore(Exception):
    def __init__(self, pos: tuple[str, bool]):
        self.pos = pos


_END = ("\U0010ffff" * 4, True)


class MergedScan:
    """The versions of several replicas' scans merged (newest wins), over the
    key ranges fetched so far. ``scan`` serves :func:`listing.list_page`; where
    it needs keys not fetched yet it raises _NeedMore and the caller fetches
    them and runs the (pure) page again. A position is (key, after): (k, False)
    is k itself, (k, True) just after it."""

    def __init__(self) -> None:
        self.versions: SortedDict = SortedDict()
        self.intervals: list[tuple[tuple[str, bool], tuple[str, bool]]] = []   # [lo, hi), by lo

    def add(self, lo: tuple[str, bool], replies: list[dict], upto: str | None = None) -> None:
        """Replicas' scans from ``lo``; ``upto``: the scans stopped at this key
        (a partition's end), so what they cover ends there."""
        hi = _END if upto is None else (upto, False)
        for body in replies:
            if not body["exhausted"] and body["items"]:
                hi = min(hi, (body["items"][-1][0], True))
        for body in replies:
            for k, v in body["items"]:
                if (k, False) < hi and version(v) > version(self.versions.get(k)):
                    self.versions[k] = v
        i = bisect_right([iv[0] for iv in self.intervals], lo)
        self.intervals.insert(i, (lo, hi))

    def _interval_at(self, pos: tuple[str, bool]):
        for lo, hi in self.intervals:
            if lo <= pos < hi:
                return lo, hi
        return None

    def scan(self, start: str, inclusive: bool):
        pos = (start, not inclusive)
        while True:
            iv = self._interval_at(pos)
            if iv is None:
                raise _NeedMore(pos)
            _, hi = iv
            for k in self.versions.irange(minimum=pos[0], inclusive=(not pos[1], True)):
                if (k, False) >= hi:
                    break
                yield k, self.versions[k]
            if hi == _END:
                return
            pos = hi


# ------------------------------------------------------------------ the client
class MetaClient(VersionedObjects):
    def __init__(self, session: aiohttp.ClientSession, urls: list[str], account: str | None = None,
                 hlc: HLC | None = None, router: IndexRouter | None = None):
        """``urls``: each AZ's home metadata process; ``router``: where each
        key range's replicas are (without one, the homes hold everything)."""
        self.session = session
        self.router = router or IndexRouter([Replica(session, u) for u in urls])
        self.replicas = self.router.homes
        self.account = account
        self.hlc = hlc or HLC()
        self.region: str | None = None      # the region this metadata service serves (for_topology)
        self.versioned_buckets: set[str] = set()    # buckets seen keeping versions (meta/versioned.py)
        self._turns = itertools.count()             # which replica a read asks first
        self.n = len(self.replicas)
        self.w = min(WRITE_QUORUM, self.n)
        self.r = min(READ_QUORUM, self.n)

    @classmethod
    def for_topology(cls, session: aiohttp.ClientSession, topo, **kw) -> "MetaClient":
        router = IndexRouter([Replica(session, m.url, m.id, m.az) for m in topo.metas],
                             [Replica(session, m.url, m.id, m.az) for az in topo.azs for m in az.extra_metas])
        client = cls(session, [m.url for m in topo.metas], router=router, **kw)
        client.region = topo.region
        return client

    def as_account(self, account: str) -> "MetaClient":
        """A view of the same client that acts for one account."""
        view = MetaClient.__new__(MetaClient)
        view.__dict__.update(self.__dict__)
        view.account = account
        return view

    # -- quorum primitives ---------------------------------------------------------
    async def call_routed(self, r: Replica, ikey: str | None, method: str, path: str, *, params: dict | None = None,
                    json: dict | bytes | None = None, follow: bool = True, body_sha256: str | None = None):
        """One replica's answer. For an object key (``ikey``), a process that no
        longer holds the key's range answers 421 WrongPartition with its map:
        adopt it and ask the holder it names in the same AZ (``follow``)."""
        for _ in range(3):
            try:
                return await r.call(method, path, params=params, json=json, body_sha256=body_sha256)
            except ReplicaError as exc:
                if ikey is None or exc.code != "WrongPartition":
                    raise
                self.router.learn(exc.body.get("map"))
                nxt = self.router.replica_in(r.az, ikey) if r.az else r
                if not follow or nxt is r:
                    raise
                r = nxt
        raise ReplicaError(f"{r.name}: the partition map kept changing")

    async def _read(self, path: str, params: dict, ikey: str | None = None,
                    follow: bool = True, others: dict | None = None) -> list[tuple[Replica, dict]]:
        """A read quorum, of the key's replicas (``ikey``) or of the home processes.
        ``others``: parameters added for every replica but the first asked."""
        replicas = await self._replicas(ikey)
        # Start at a different replica each time, so reads spread over all three
        # (one counter shared by every per-account view of this client).
        turn = next(self._turns) % len(replicas)
        replicas = replicas[turn:] + replicas[:turn]
        lean = {**params, **others} if others else params
        first = ask_order(replicas)[0]                                  # the one quorum() asks first
        return await quorum(replicas, lambda r: self.call_routed(r, ikey, "GET", path, follow=follow,
                                                                 params=params if r is first else lean),
                            self.r, finish_in_background=False, ask=self.r)

    async def _replicas(self, ikey: str | None) -> list[Replica]:
        """An object key's replicas, by the partition map; the home processes for the rest."""
        if ikey is None:
            return self.replicas
        await self.router.ensure()
        return self.router.replicas_for(ikey)

    async def _write(self, path: str, body: dict, ikey: str | None = None) -> None:
        replicas = await self._replicas(ikey)
        # Encoded and hashed once for every replica (an inline payload: up to ~90 KB).
        encoded = fastjson.dumpb(body)
        sha = hashlib.sha256(encoded).hexdigest()
        await quorum(replicas, lambda r: self.call_routed(r, ikey, "POST", path, json=encoded, body_sha256=sha), self.w,
                     finish_in_background=True)

    def _newest(self, recs) -> dict | None:
        """The newest of the versions replicas returned; this frontend's clock
        moves past it, so a version stamped next is newer than any seen."""
        best = newest(recs)
        if best is not None:
            self.hlc.observe(int(best["ts"]))
        return best

    def _stamp(self) -> dict:
        return {"ts": self.hlc.now(), "vid": uuid.uuid4().hex[:12]}

    def _check_owner(self, bucket_rec: dict | None) -> dict:
        b = live(bucket_rec)
        if b is None or not self._here(b):
            raise E.NoSuchBucket()
        if self.account is not None and b.get("owner") != self.account:
            raise E.AccessDenied()
        return b

    # -- buckets -----------------------------------------------------------------------
    async def _bucket_version(self, name: str) -> dict | None:
        replies = await self._read("/v/bucket", {"name": name})
        return self._newest(body["record"] for _, body in replies)

    async def list_buckets(self) -> list[dict]:
        """The account's buckets in this bucket table: asked of the global
        region (the registry), every region's, as S3's ListBuckets answers."""
        replies = await self._read("/v/buckets", {})
        merged: dict[str, dict] = {}
        for _, body in replies:
            for name, rec in body["buckets"].items():
                if version(rec) > version(merged.get(name)):
                    merged[name] = rec
        return [{"name": n, **r} for n, r in sorted(merged.items())
                if not r.get("deleted") and (self.account is None or r.get("owner") == self.account)]

    def _here(self, b: dict) -> bool:
        """Does the bucket live in this metadata service's region? (The global
        region's bucket table is also the registry of every region's buckets:
        there a bucket of another region has a record, and is not here.)"""
        return self.region is None or b.get("region", self.region) == self.region

    async def get_bucket(self, name: str) -> dict:
        """The bucket, if it lives in this region and the account owns it
        (else NoSuchBucket, AccessDenied)."""
        return self._check_owner(await self._bucket_version(name))

    async def bucket_record(self, name: str) -> dict | None:
        """The bucket's live record, wherever it lives and whoever owns it (None:
        none). Asked of the global region, this is the bucket registry."""
        return live(await self._bucket_version(name))

    async def create_bucket(self, name: str, region: str) -> dict:
        cur = live(await self._bucket_version(name))
        if cur is not None:
            raise E.BucketAlreadyOwnedByYou() if cur.get("owner") == self.account else E.BucketAlreadyExists()
        rec = self._stamp()
        rec.update(created_ms=physical_ms(rec["ts"]), region=region, owner=self.account)
        await self._write_bucket({"name": name, "record": rec})
        return rec

    async def put_bucket_record(self, name: str, rec: dict) -> None:
        """Write a bucket version made elsewhere (the registry's record of a
        bucket, copied to the region it lives in; or its tombstone)."""
        self.hlc.observe(int(rec["ts"]))
        await self._write_bucket({"name": name, "record": rec})

    def tombstone(self) -> dict:
        """A deletion: a version newer than any seen, marked deleted."""
        return dict(self._stamp(), deleted=True)

    async def _write_bucket(self, body: dict) -> None:
        """A bucket version: a write quorum of the home processes; the extra
        ones (which check writes against their copy of the table) get it too."""
        for r in self.router.extras:
            _Background.keep(asyncio.ensure_future(r.call("POST", "/v/bucket", json=body)))
        await self._write("/v/bucket", body)

    async def delete_bucket(self, name: str) -> None:
        self._check_owner(await self._bucket_version(name))
        # Every version counts, delete markers too (S3: a bucket is empty when
        # it holds no version at all): a scan of heads and version rows.
        page = await self.list_objects(name, max_keys=1, _checked=True, markers=True)
        # A page can end on tombstones alone (truncated, empty): go on from its marker.
        while page["truncated"] and not page["entries"] and not page["prefixes"] and page["next_marker"]:
            page = await self.list_objects(name, max_keys=1, marker=page["next_marker"], _checked=True,
                                           markers=True)
        if page["entries"] or page["prefixes"]:
            raise E.BucketNotEmpty()
        await self._write_bucket({"name": name, "record": self.tombstone()})

    # -- objects ----------------------------------------------------------------------
    async def _object_versions(self, bucket: str, key: str, payload: bool = True) -> tuple[dict | None, dict | None]:
        """The bucket's and the key's newest versions a read quorum holds.
        ``payload=False``: an inline payload may come as its marker (a HEAD's)."""
        ikey = bucket + "/" + key
        params = {"bucket": bucket, "key": key}
        # One replica sends the inline payload; the others only its marker (meta/blobs.py):
        # the quorum compares versions, and the bytes are needed once (by a GET; a HEAD never).
        lean = {"payload": "0"}
        replies = await self._read("/v/object", params if payload else {**params, **lean}, ikey, others=lean)
        b = self._newest(body["bucket"] for _, body in replies)
        o = self._newest(body["object"] for _, body in replies)
        if o is not None and blobs.is_marker(o.get("inline")):
            if not payload:
                return b, o                              # (no read repair: a marker is no record to write)
            o = await self._with_payload(ikey, params, replies, o)
        stale = [r for r, body in replies if version(body["object"]) < version(o)]
        if stale and o is not None:                      # read repair, in the background
            for r in stale:
                _Background.keep(asyncio.ensure_future(
                    self.call_routed(r, ikey, "POST", "/v/object", json={"bucket": bucket, "key": key, "record": o})))
        return b, o

    async def _with_payload(self, ikey: str, params: dict, replies: list, o: dict) -> dict:
        """The newest version came with a marker in place of its inline payload
        (the replica that sent payloads was behind, or did not answer): its
        bytes from a replica that has that version, or another read of them all."""
        for r, body in replies:
            got = body["object"]
            if version(got) == version(o) and not blobs.is_marker(got.get("inline")):
                return got
        holder = next(r for r, body in replies if version(body["object"]) == version(o))
        try:
            got = (await self.call_routed(holder, ikey, "GET", "/v/object", params=params))["object"]
        except ReplicaError:
            got = None
        if got is not None and version(got) >= version(o) and not blobs.is_marker(got.get("inline")):
            return self._newest([got])
        replies = await self._read("/v/object", params, ikey)          # every payload, as before
        return self._newest(body["object"] for _, body in replies)

    async def get_object(self, bucket: str, key: str, *, payload: bool = True) -> dict:
        """The key's current version; 404 NoSuchKey if none (saying so, if a delete marker is current).
        ``payload=False``: an inline payload may be its marker instead (what a HEAD needs)."""
        b, o = await self._object_versions(bucket, key, payload)
        self._check_owner(b)
        if live(o) is None:
            exc = E.NoSuchKey()
            if V.is_marker(o):
                exc.headers.update(marker_headers(o))
            raise exc
        return o

    async def put_object(self, bucket: str, key: str, record: dict, conditions: dict | None = None,
                         stamp_by: float | None = None) -> dict:
        """``stamp_by``: the time.monotonic() after which the version must not
        be stamped (the GC commit window; a conditional write takes a round
        of promises first)."""
        if bucket in self.versioned_buckets:
            state = await self.versioning(bucket)
            if state:
                return await self.put_version(bucket, key, record, state, conditions, stamp_by)
        try:
            if conditions:
                def judged(cur: dict | None) -> dict:
                    check_write(conditions, f'"{cur["etag"]}"' if cur else None)
                    return record
                return await self.compare_and_set(bucket, key, judged, stamp_by=stamp_by)
            # Unconditional: one round. Each replica checks the bucket (live, and
            # the caller's) in its own view before keeping the version; a quorum of
            # refusals is the S3 error, a split is 503 (and the client retries).
            rec = dict(record, **self._stamp())
            rec["mtime"] = physical_ms(rec["ts"])
            await self._write("/v/object", {"bucket": bucket, "key": key, "record": rec, "owner": self.account,
                                            "commit": True}, bucket + "/" + key)
            return rec
        except E.VersionedBucket:
            self.versioned_buckets.add(bucket)
            return await self.put_object(bucket, key, record, conditions, stamp_by)

    async def update_object(self, bucket: str, key: str, change: Callable[[dict], dict]) -> dict:
        """A new version of the key's current object made by ``change(current)``
        (its tags, say), atomically: if another write lands meanwhile, it is
        done again on that one, never over it. NoSuchKey if there is none."""
        def judged(cur: dict | None) -> dict:
            if cur is None:
                raise E.NoSuchKey()
            return change(content(cur))
        # (A change in place never makes a version: a bucket that keeps them takes it too.)
        return await self.compare_and_set(bucket, key, judged, versioned=True)

    async def compare_and_set(self, bucket: str, key: str, judge: Callable[[dict | None], dict | None], *,
                              stamp_by: float | None = None, raw: bool = False, versioned: bool = False) -> dict:
        """Write the version ``judge(current live version or None)`` returns (or
        raise what it raises: 412, 404) if the key has not changed since it was
        judged, in two rounds at the replicas (meta/promises.py). A round lost to
        a racing write is tried again, up to CAS_ATTEMPTS times with a random
        back-off, then 409 ConditionalRequestConflict, as S3 answers (503 if a
        round of it may have landed on one replica: its outcome is unknown).

        ``raw``: ``judge`` is given the current record as it is (a delete
        marker or a tombstone too), and may return None: nothing to write
        (the current record is returned). ``versioned``: the write keeps
        versions itself (meta/versioned.py), so a versioned bucket takes it."""
        ikey = bucket + "/" + key
        wid = uuid.uuid4().hex[:16]          # this write, across its attempts
        seen = None                         # the newest other version an earlier attempt saw
        sent = None                         # the newest version an earlier attempt sent to be accepted
        for attempt in range(CAS_ATTEMPTS):
            if attempt:
                await asyncio.sleep(random.uniform(0.5, 1.5) * CAS_BACKOFF * 2 ** min(attempt, 5))
            replicas = await self._replicas(ikey)
            stamp = self._stamp()
            prepare = {"bucket": bucket, "key": key, "ballot": [stamp["ts"], stamp["vid"]]}
            if self.account is not None:
                prepare["owner"] = self.account
            try:
                replies = await quorum(replicas, lambda r: self._cas_call(r, ikey, "/v/prepare", prepare), self.w,
                                       finish_in_background=True)
            except E.ConditionalRequestConflict:
                continue
            self._check_owner(self._newest(body["bucket"] for _, body in replies))
            found = [body["object"] for _, body in replies]
            done = cas_settled(found, wid, self.w)
            if done is not None:             # an earlier attempt was accepted by a quorum after all
                return done
            cur = seen = self._newest([cas_judged(found, wid, seen)])
            try:
                record = judge(cur if raw else live(cur))
                if record is None:
                    return cur
            except E.S3Error as exc:
                if cas_outcome_unknown(cur, sent):
                    unknown = E.ServiceUnavailable("the outcome of an earlier round of this write is unknown")
                    unknown.maybe_written = True
                    raise unknown from exc
                exc.maybe_written = sent is not None
                raise
            if stamp_by is not None and time.monotonic() > stamp_by:
                raise E.ServiceUnavailable("the write took too long from storing to commit")
            rec = dict(record, **stamp, wid=wid)
            rec.setdefault("mtime", physical_ms(rec["ts"]))
            accept = {"bucket": bucket, "key": key, "record": rec, "commit": True,
                      "cas": {"expect": list(version(cur)), "wid": wid}}
            if self.account is not None:
                accept["owner"] = self.account
            if versioned:
                accept["versioned"] = True
            sent = version(rec)
            try:
                await quorum(replicas, lambda r: self._cas_call(r, ikey, "/v/object", accept), self.w,
                             finish_in_background=True)
            except E.ConditionalRequestConflict:
                continue
            return rec
        if sent is not None:            # a round of it may have landed on one replica
            unknown = E.ServiceUnavailable("the outcome of this write is unknown: it raced others too long")
            unknown.maybe_written = True
            raise unknown
        raise E.ConditionalRequestConflict()

    async def _cas_call(self, r: Replica, ikey: str, path: str, body: dict):
        """One replica's round of a compare-and-set. A refusal says the newest
        stamp the replica knows (its version, or the ballot it promised): this
        frontend's clock moves past it, so the next attempt's ballot can win
        even if another frontend's clock runs ahead of this one's."""
        try:
            return await self.call_routed(r, ikey, "POST", path, json=body)
        except ReplicaError as exc:
            if exc.code == "ConditionalRequestConflict" and exc.body.get("seen_ts"):
                self.hlc.observe(int(exc.body["seen_ts"]))
            raise

    async def put_objects(self, bucket: str, items: list[tuple[str, dict]]) -> None:
        """Commit many unconditional versions of one bucket's keys in one round
        (``minis3 bulk-load``): each stamped as by put_object, acknowledged by a
        write quorum."""
        await self.router.ensure()
        groups: dict[tuple, list] = {}           # the items whose replicas are the same processes
        for key, record in items:
            rec = dict(record, **self._stamp())
            rec["mtime"] = physical_ms(rec["ts"])
            ikey = bucket + "/" + key
            groups.setdefault(tuple(r.name for r in self.router.replicas_for(ikey)), []).append([key, rec])
        await asyncio.gather(*(self._write("/v/objects", {"bucket": bucket, "items": g, "owner": self.account},
                                           bucket + "/" + g[0][0]) for g in groups.values()))

    async def delete_object(self, bucket: str, key: str) -> dict | None:
        """A tombstone, in one round (S3's DELETE succeeds whether or not the key
        exists); in a bucket that keeps versions, a delete marker (returned)."""
        if bucket in self.versioned_buckets:
            state = await self.versioning(bucket)
            if state:
                return await self.delete_current(bucket, key, state)
        try:
            await self._write("/v/object", {"bucket": bucket, "key": key, "owner": self.account,
                                            "record": self.tombstone()}, bucket + "/" + key)
        except E.VersionedBucket:
            self.versioned_buckets.add(bucket)
            return await self.delete_object(bucket, key)
        return None

    async def list_objects(self, bucket: str, *, prefix: str = "", delimiter: str = "", marker: str = "",
                           max_keys: int = 1000, _checked: bool = False, full: bool = False,
                           heads: bool = False, markers: bool = False) -> dict:
        """One LIST page of a bucket's keys. ``full`` returns whole records
        (else only what a listing shows). ``bucket`` may also be a key space
        of raw records (``UPLOADS`` + bucket, ``PARTS`` + upload id), with
        ``_checked`` (there is no bucket record to check). ``heads``: current
        versions only (the replicas skip version rows, core/versions.py);
        ``markers``: delete markers are listed too."""
        if not _checked:
            await self.get_bucket(bucket)
        return await self._merged_page(
            bucket, prefix, heads, full,
            lambda scan: list_page(scan, bucket, prefix, delimiter, marker, max_keys, markers=markers), max_keys)

    async def list_versions(self, bucket: str, *, prefix: str = "", delimiter: str = "", key_marker: str = "",
                            version_marker: str = "", max_keys: int = 1000) -> dict:
        """One ListObjectVersions page: every version and delete marker, newest first within a key."""
        await self.get_bucket(bucket)
        return await self._merged_page(
            bucket, prefix, False, False,
            lambda scan: versions_page(scan, bucket, prefix, delimiter, key_marker, version_marker, max_keys),
            max_keys)

    async def _merged_page(self, bucket: str, prefix: str, heads: bool, full: bool, make_page, max_keys: int):
        """Run the (pure) page function over replicas' scans merged, fetching
        the key ranges it asks for, a partition at a time."""
        merged = MergedScan()
        base = bucket + "/"
        end = base + after_prefix(prefix) if prefix else bucket + chr(ord("/") + 1)
        limit = max(16, min(5000, max_keys + 16))
        await self.router.ensure()
        for _ in range(10_000):
            try:
                page = make_page(merged.scan)
            except _NeedMore as need:
                start, after = need.pos
                # One partition at a time: the scan stops at its end, and the
                # page goes on in the next one (each with its own replicas).
                e = self.router.entry(start)
                upto = e.hi if e is not None and e.hi is not None and e.hi < end else None
                params = {"table": "objects", "start": start, "inclusive": "0" if after else "1",
                          "end": upto or end, "limit": limit}
                if not full:
                    params["fields"] = "list"
                if heads:
                    params["heads"] = "1"
                seen = self.router.version
                try:
                    replies = await self._read("/v/scan", params, start, follow=False)
                except E.ServiceUnavailable:
                    if self.router.version == seen:
                        raise
                    continue                      # the range moved or split: again, with the new map
                merged.add(need.pos, [body for _, body in replies], upto)
                limit = min(5000, limit * 2)      # runs of tombstones: fetch more each time
                continue
            return page.as_dict()
        raise E.InternalError("listing did not converge")

    # -- raw records: multipart uploads and their parts ------------------------------
    # They live in the object partitions beside the objects, under key spaces
    # no bucket's range contains ("\x00" sorts before every bucket name):
    #   UPLOADS + bucket + "/" + key + "\x00" + upload id   an upload in progress
    #   PARTS + upload id + "/" + part number (5 digits)     one part of it
    # so they are replicated, versioned and scrubbed like objects.
    @staticmethod
    def _split(ikey: str) -> tuple[str, str]:
        bucket, _, key = ikey.partition("/")
        return bucket, key

    async def get_record(self, ikey: str) -> dict | None:
        """The newest live version of a raw record, or None."""
        _, o = await self._object_versions(*self._split(ikey))
        return live(o)

    async def put_record(self, ikey: str, record: dict) -> dict:
        """A new version of a raw record, in one round (no bucket check: the caller has checked)."""
        bucket, key = self._split(ikey)
        rec = dict(record, **self._stamp())
        rec["mtime"] = physical_ms(rec["ts"])
        await self._write("/v/object", {"bucket": bucket, "key": key, "record": rec, "commit": True}, ikey)
        return rec

    async def delete_record(self, ikey: str) -> None:
        bucket, key = self._split(ikey)
        await self._write("/v/object", {"bucket": bucket, "key": key, "record": self.tombstone()}, ikey)

    # -- the rest --------------------------------------------------------------------
    async def gc_add(self, ec: dict, reason: str) -> None:
        """Note garbage on every replica that answers (one is enough)."""
        await quorum(self.replicas, lambda r: r.call("POST", "/gc/add", json={"ec": ec, "reason": reason}), 1,
                     finish_in_background=True)

    async def status(self) -> list[dict]:
        out = []
        for r in self.replicas:
            try:
                out.append(await r.call("GET", "/status"))
            except ReplicaError as exc:
                out.append({"url": r.url, "error": str(exc)})
        return out
