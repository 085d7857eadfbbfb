"""The frontend's view of the metadata service: quorums over three replicas.

Every bucket and object version lives on three replicas, one per AZ: a
bucket on each AZ's home metadata process, an object on the processes the
partition map names for its key's range (``meta/index_router.py``). This client
is the coordinator (the idea of Dynamo and Cassandra, with S3's last
writer wins):

* **writes** get a hybrid-logical-clock timestamp here, go to all N replicas
  at once, and succeed when W of them have made the version durable;
* **reads** ask R replicas (one more if one fails or is slow) and take the
  newest version among their answers (a replica still catching up answers
  503 and is skipped);
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

Where the parts are: one replica's calls (``meta/replica.py``); the quorum
and the compare-and-set's decisions (``meta/quorum.py``); LIST over
replicas (``meta/mergedscan.py``); the bucket table (``meta/buckets.py``)
and buckets that keep versions (``meta/versioned.py``), both mixed into
:class:`MetaClient`, which holds the rest: stamping, quorum reads and writes
of a key's replicas, read repair, objects and raw records.
"""
from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import random
import time
from typing import Callable

import aiohttp

from ..core import errors as E
from ..rpc import clock, fastjson
from ..core.conditions import check_write
from ..core.hlc import HLC, physical_ms
from ..core import versions as V
from . import blobs, lww
from .listing import list_page, versions_page
from .mergedscan import merged_page
from .partition import version
from .quorum import READ_QUORUM, WRITE_QUORUM, cas_judged, cas_outcome_unknown, cas_settled, live, newest, quorum
from .replica import Background, Replica, ReplicaError, ask_order
from .index_router import IndexRouter
from .versioned import VersionedObjects, content, marker_headers
from .buckets import BucketTable

#: Key spaces of raw records (see MetaClient.get_record).
UPLOADS = "\x00u/"
PARTS = "\x00p/"
#: Buckets' access settings (frontend/authorize.py keeps them; the scrubber reads a bucket's
#: lifecycle rules there): ``ACCESS + bucket/bucket vid/what``.
ACCESS = "\x00a/"

CAS_ATTEMPTS = 8         # rounds a conditional write tries before 409 ConditionalRequestConflict
CAS_BACKOFF = 0.004      # seconds, doubled each attempt (randomised, so racing writers spread out)


class MetaClient(BucketTable, VersionedObjects):
    def __init__(self, session: aiohttp.ClientSession, urls: list[str], account: str | None = None,
                 hlc: HLC | None = None, router: IndexRouter | None = None):
        """``urls``: each AZ's home metadata process; ``router``: where each
        key range's replicas are (without one, the homes hold everything)."""
        self.session = session
        self.router = router or IndexRouter([Replica(session, u) for u in urls])
        self.replicas = self.router.homes
        self.account = account
        self.hlc = hlc or HLC(clock.wall_ms)
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

    async def _write(self, path: str, body: dict, ikey: str | None = None,
                     clocks: list[int] | None = None) -> list[dict]:
        """A write quorum's answers (the first W). ``clocks``: where the
        clocks of replicas that refused the version as too old to commit
        (409 StaleCommit) are noted, for :meth:`_write_fresh`."""
        replicas = await self._replicas(ikey)
        # Encoded and hashed once for every replica (an inline payload: up to ~90 KB).
        encoded = fastjson.dumpb(body)
        sha = hashlib.sha256(encoded).hexdigest()

        async def one(r: Replica):
            try:
                return await self.call_routed(r, ikey, "POST", path, json=encoded, body_sha256=sha)
            except ReplicaError as exc:
                if clocks is not None and exc.code == "StaleCommit" and exc.body.get("now_ts"):
                    clocks.append(int(exc.body["now_ts"]))
                raise
        return [answer for _, answer in await quorum(replicas, one, self.w, finish_in_background=True)]

    async def _write_fresh(self, path: str, ikey: str, body_for: Callable[[dict], dict],
                           stamp_by: float | None = None) -> dict:
        """Write a version stamped here (``body_for(stamp)``: the request's body)
        in one round, and make sure it is newer than every version of the key
        acknowledged before it began, whatever this process's clock says: if
        a replica of the write quorum held a newer one, move past its stamp and
        write again (meta/lww.py has the rule and why it is enough). Likewise
        if the replicas refused it as too old to commit (StaleCommit: this
        clock is behind theirs), while ``stamp_by`` (the GC commit deadline,
        time.monotonic()) allows. Returns the body written."""
        for _ in range(lww.RESTAMP_ATTEMPTS):
            body = body_for(self._stamp())
            clocks: list[int] = []
            try:
                answers = await self._write(path, body, ikey, clocks)
            except E.ServiceUnavailable:
                if not clocks:
                    raise
                self.hlc.observe(max(clocks))   # behind the replicas' clocks: stamp again past them
            else:
                newer = lww.newer_held(answers)
                if newer is None:
                    return body
                self.hlc.observe(newer)
            if stamp_by is not None and time.monotonic() > stamp_by:
                raise E.ServiceUnavailable("the write took too long from storing to commit")
        raise E.ServiceUnavailable("newer versions of the key kept landing: stamped again too often")

    def _newest(self, recs) -> dict | None:
        """The newest of the versions replicas returned; this frontend's clock
        moves past it, so a version stamped next is newer than any seen."""
        best = newest(recs)
        if best is not None:
            self.hlc.observe(int(best["ts"]))
        return best

    def _stamp(self) -> dict:
        return {"ts": self.hlc.now(), "vid": os.urandom(6).hex()}

    def tombstone(self) -> dict:
        """A deletion: a version newer than any seen, marked deleted."""
        return dict(self._stamp(), deleted=True)


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
                Background.keep(asyncio.ensure_future(
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
            # Unconditional: one round (another only if a replica held a newer
            # version: meta/lww.py). Each replica checks the bucket (live, and
            # the caller's) in its own view before keeping the version; a quorum of
            # refusals is the S3 error, a split is 503 (and the client retries).
            def body_for(stamp: dict) -> dict:
                rec = dict(record, **stamp, mtime=physical_ms(stamp["ts"]))
                return {"bucket": bucket, "key": key, "record": rec, "owner": self.account, "commit": True}
            body = await self._write_fresh("/v/object", bucket + "/" + key, body_for, stamp_by)
            return body["record"]
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
                              stamp_by: float | None = None, raw: bool = False, versioned: bool = False,
                              stamped: Callable[[dict], None] | None = None) -> dict:
        """Write the version ``judge(current live version or None)`` returns (or
        raise what it raises: 412, 404) if the key has not changed since it was
        judged, in two rounds at the replicas (meta/promises.py). A round lost to
        a racing write is tried again, up to CAS_ATTEMPTS times with a random
        back-off, then 409 ConditionalRequestConflict, as S3 answers (503 if a
        round of it may have landed on one replica: its outcome is unknown).

        ``raw``: ``judge`` is given the current record as it is (a delete
        marker or a tombstone too), and may return None: nothing to write
        (the current record is returned). ``versioned``: the write keeps
        versions itself (meta/versioned.py), so a versioned bucket takes it.
        ``stamped(stamp)``: told each attempt's stamp (its ballot) before
        ``judge`` is called: a new version takes its id from it."""
        ikey = bucket + "/" + key
        wid = os.urandom(8).hex()          # this write, across its attempts
        seen = None                         # the newest other version an earlier attempt saw
        sent = None                         # the newest version an earlier attempt sent to be accepted
        for attempt in range(CAS_ATTEMPTS):
            if attempt:
                await asyncio.sleep(random.uniform(0.5, 1.5) * CAS_BACKOFF * 2 ** min(attempt, 5))
            replicas = await self._replicas(ikey)
            stamp = self._stamp()
            try:
                replies = await self._prepare_round(replicas, bucket, key, stamp)
            except E.ConditionalRequestConflict:
                continue
            self._check_owner(self._newest(body["bucket"] for _, body in replies))
            found = [body["object"] for _, body in replies]
            done = cas_settled(found, wid, self.w)
            if done is not None:             # an earlier attempt was accepted by a quorum after all
                return done
            cur = seen = self._newest([cas_judged(found, wid, seen)])
            if stamped is not None:
                stamped(stamp)
            record = self._judge(judge, cur, sent, raw=raw)
            if record is None:
                return cur
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

    async def _prepare_round(self, replicas: list[Replica], bucket: str, key: str, stamp: dict) -> list:
        """A compare-and-set's first round: a write quorum's promises for the
        ballot ``stamp``, with their current versions (409 if it lost)."""
        prepare = {"bucket": bucket, "key": key, "ballot": [stamp["ts"], stamp["vid"]]}
        if self.account is not None:
            prepare["owner"] = self.account
        return await quorum(replicas, lambda r: self._cas_call(r, bucket + "/" + key, "/v/prepare", prepare),
                            self.w, finish_in_background=True)

    @staticmethod
    def _judge(judge: Callable[[dict | None], dict | None], cur: dict | None, sent: tuple | None, *,
               raw: bool) -> dict | None:
        """The record ``judge`` makes of the current version ``cur`` (of it live
        only, unless ``raw``). If it refuses (412, 404) after an earlier attempt
        sent ``sent``, which may have landed on one replica on top of ``cur``,
        the write's outcome is unknown: 503."""
        try:
            return judge(cur if raw else live(cur))
        except E.S3Error as exc:
            if cas_outcome_unknown(cur, sent):
                unknown = E.ServiceUnavailable("the outcome of an earlier round of this write is unknown")
                unknown.maybe_written = True
                raise unknown from exc
            exc.maybe_written = sent is not None
            raise

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
        write quorum; the keys a replica of it held newer are stamped again
        and sent again (meta/lww.py)."""
        await self.router.ensure()
        records = dict(items)
        waiting = list(records)
        for _ in range(lww.RESTAMP_ATTEMPTS):
            groups: dict[tuple, list] = {}           # the items whose replicas are the same processes
            for key in waiting:
                rec = dict(records[key], **self._stamp())
                rec["mtime"] = physical_ms(rec["ts"])
                ikey = bucket + "/" + key
                groups.setdefault(tuple(r.name for r in self.router.replicas_for(ikey)), []).append([key, rec])
            answers = await asyncio.gather(*(self._write("/v/objects", {"bucket": bucket, "items": g,
                                                                        "owner": self.account},
                                                         bucket + "/" + g[0][0]) for g in groups.values()))
            newer = lww.newer_held_per_key([a for quorum_answers in answers for a in quorum_answers])
            if not newer:
                return
            self.hlc.observe(max(newer.values()))
            waiting = list(newer)
        raise E.ServiceUnavailable("newer versions of the keys kept landing: stamped again too often")

    async def delete_object(self, bucket: str, key: str) -> dict | None:
        """A tombstone, in one round (S3's DELETE succeeds whether or not the key
        exists); in a bucket that keeps versions, a delete marker (returned)."""
        if bucket in self.versioned_buckets:
            state = await self.versioning(bucket)
            if state:
                return await self.delete_current(bucket, key, state)
        try:
            await self._write_fresh("/v/object", bucket + "/" + key, lambda stamp: {
                "bucket": bucket, "key": key, "owner": self.account, "record": dict(stamp, deleted=True)})
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
        return await merged_page(
            self.router, self._read, bucket, prefix, heads, full,
            lambda scan: list_page(scan, bucket, prefix, delimiter, marker, max_keys, markers=markers), max_keys)

    async def list_versions(self, bucket: str, *, prefix: str = "", delimiter: str = "", key_marker: str = "",
                            version_marker: str = "", max_keys: int = 1000) -> dict:
        """One ListObjectVersions page: every version and delete marker, newest first within a key."""
        await self.get_bucket(bucket)
        return await merged_page(
            self.router, self._read, bucket, prefix, False, False,
            lambda scan: versions_page(scan, bucket, prefix, delimiter, key_marker, version_marker, max_keys),
            max_keys)

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

    async def put_record(self, ikey: str, record: dict, stamp_by: float | None = None) -> dict:
        """A new version of a raw record, in one round (no bucket check: the caller has checked).
        ``stamp_by``: as for put_object (a part's record points at fragments)."""
        bucket, key = self._split(ikey)
        body = await self._write_fresh("/v/object", ikey, lambda stamp: {
            "bucket": bucket, "key": key, "record": dict(record, **stamp, mtime=physical_ms(stamp["ts"])),
            "commit": True}, stamp_by)
        return body["record"]

    async def delete_record(self, ikey: str) -> None:
        bucket, key = self._split(ikey)
        await self._write_fresh("/v/object", ikey, lambda stamp: {"bucket": bucket, "key": key,
                                                                  "record": dict(stamp, deleted=True)})

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
