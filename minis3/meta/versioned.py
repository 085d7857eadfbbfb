"""Versions, coordinated: the writes and reads of a bucket that keeps versions.

Where each version lives is in ``core/versions.py``: the key's **head** holds
the current version, a **row** beside it each version that is not. Here is
how the coordinator keeps that true over three replicas, with every head
change a compare-and-set (meta/promises.py), so that two writers never both
replace the same head:

* **a new version** (PutObject, CopyObject, CompleteMultipartUpload, a delete
  marker): prepare the head; if it holds a version that must be kept (any
  version but the ``null`` one a suspended bucket's write replaces), write
  that version to its row first, then accept the new head. A crash between
  leaves the old version in its row and still in the head: in two places,
  never in none. A version's id is made from its stamp before the first
  round and kept through every retry: one request, one version. If a write
  racing it made a version stamped later and that one is current already,
  this one is older: it goes straight to its row.
* **removing a version** (DELETE ?versionId=): if it is the head, the newest
  version left is copied into the head (or a tombstone, when none is left);
  then its row gets a tombstone. Its fragments are then referenced by no
  record, and the scrubber's GC removes them after its grace period.
  A version that Object Lock protects (its record's ``lock`` / ``hold``,
  core/objectlock.py) is never removed: every compare-and-set of the removal
  judges the record it replaces, so whoever calls (the frontend, a lifecycle
  rule, any tool) gets 403 AccessDenied, even if a retention was set meanwhile.
* **reads** of the current version read the head only (one lookup however
  many versions the key has); ``?versionId=`` reads the head, and the row if
  the head is another version.

A bucket's replicas refuse a one-round (unversioned) write once the bucket
keeps versions (409 VersionedBucket): the coordinator then takes this path,
and remembers the bucket, so it goes here first next time.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..core import errors as E
from ..core import objectlock as OL
from ..core import versions as V
from ..core.conditions import check_write, http_date
from ..core.hlc import physical_ms
from .partition import version

if TYPE_CHECKING:
    from .client import MetaClient

_STAMPS = ("ts", "vid", "pe", "wid")      # what a write stamps; the rest is the version's content


class _KeepFirst(Exception):
    """The head holds a version that must go to its row before it is replaced."""
    def __init__(self, cur: dict):
        self.cur = cur


class _Older(Exception):
    """The head holds a version made after this one (stamped later): this one is not current."""
    def __init__(self, cur: dict):
        self.cur = cur


def content(rec: dict) -> dict:
    """A record without what a write stamps on it: what a new version of it starts from."""
    return {k: v for k, v in rec.items() if k not in _STAMPS}


class VersionedObjects:
    """The versioned half of MetaClient (mixed in)."""

    versioned_buckets: set

    async def versioning(self: "MetaClient", bucket: str) -> str | None:
        """The bucket's versioning state: None (never enabled), Enabled or Suspended."""
        b = await self.get_bucket(bucket)
        state = b.get("versioning")
        if state:
            self.versioned_buckets.add(bucket)
        else:
            self.versioned_buckets.discard(bucket)
        return state

    async def set_versioning(self: "MetaClient", bucket: str, state: str) -> None:
        """A new version of the bucket's record (same bucket id, ``vid``) with its state."""
        b = await self.get_bucket(bucket)
        rec = dict(b, ts=self.hlc.now(), versioning=state)
        await self._write_bucket({"name": bucket, "record": rec})
        self.versioned_buckets.add(bucket)

    # -- writes ------------------------------------------------------------------------
    async def put_version(self: "MetaClient", bucket: str, key: str, record: dict, state: str,
                          conditions: dict | None = None, stamp_by: float | None = None) -> dict:
        """Make ``record`` a new version of the key (``state``: the bucket's):
        its current one, unless a version made after it (stamped later, by a
        write racing this one) is current already; then it goes to its row.

        The version is stamped (its id made) at the first round that sends it
        to be accepted, from that round's ballot: a ballot the replicas
        promised is newer than the head they hold, so the new version sorts
        after every version acknowledged before this request began, whatever
        this process's clock says (a stamp taken before the first round, by a
        clock behind another frontend's, would list it as older and leave the
        older one current). Once sent, the id is kept through every retry, so
        that one request makes one version, whatever rounds of it landed where
        (another writer may find a round of it in the head and keep it in its
        row: the same version, the same row)."""
        null = state != V.ENABLED
        ballot: dict = {}            # the stamp of the compare-and-set's attempt being judged
        made: dict = {}              # the version, once a round has been sent with it: new, stamp
        kept: set = set()

        def judge(cur: dict | None) -> dict:
            new = made.get("new")
            vid = V.NULL if null else (new or {}).get("version_id")
            if V.is_version(cur) and vid is not None and vid != V.NULL and V.id_of(cur) == vid:
                return new                      # an earlier round of this write: finish it
            if conditions:
                shown = cur if V.is_version(cur) and not V.is_marker(cur) else None
                check_write(conditions, f'"{shown["etag"]}"' if shown else None)
            if V.is_version(cur):
                if new is not None and (V.vts(cur), V.id_of(cur)) > (new["vts"], vid):
                    raise _Older(cur)           # a write racing this one made a later version
                if null and V.id_of(cur) == V.NULL:
                    # A null version replaces the null one for good: not one Object Lock protects.
                    OL.check_removal(cur, int(time.time() * 1000))
                if V.id_of(cur) != vid and version(cur) not in kept:
                    raise _KeepFirst(cur)
            if new is None:                     # this round is the first to send it: stamp it now
                made["stamp"] = dict(ballot)
                made["new"] = new = dict(record, version_id=V.NULL if null else V.make_id(ballot["ts"], ballot["vid"]),
                                         vts=ballot["ts"])
            return new
        for _ in range(16):
            try:
                rec = await self.compare_and_set(bucket, key, judge, stamp_by=stamp_by, raw=True, versioned=True,
                                                 stamped=ballot.update)
            except _KeepFirst as k:
                await self.write_row(bucket, key, k.cur)
                kept.add(version(k.cur))
                continue
            except _Older as o:
                # A later version is current: this one is older, so it is kept
                # beside it in its row (a null one that a later null one
                # replaced is simply gone, as if it had landed first).
                stamp = made["stamp"]
                rec = dict(made["new"], ts=stamp["ts"], vid=stamp["vid"], mtime=physical_ms(stamp["ts"]))
                if null and V.id_of(o.cur) == V.NULL:
                    return rec
                if stamp_by is not None and time.monotonic() > stamp_by:
                    raise E.ServiceUnavailable("the write took too long from storing to commit")
                await self.write_row(bucket, key, rec, commit=True)
                return rec
            if state == V.SUSPENDED:
                # The null version is replaced wherever it was: its row (if it
                # was not current) goes too.
                await self._write_tombstone(bucket, V.row_key(key, V.NULL))
            return rec
        raise E.ServiceUnavailable("the key's head kept changing")

    async def write_row(self: "MetaClient", bucket: str, key: str, rec: dict, commit: bool = False) -> None:
        """A version, as it is (stamps too), into its row. ``commit``: a new
        version's first write (replicas refuse it after the commit window)."""
        self.hlc.observe(int(rec["ts"]))
        body = {"bucket": bucket, "key": V.row_key(key, V.id_of(rec)), "record": rec, "owner": self.account,
                "versioned": True}
        if commit:
            body["commit"] = True
        await self._write("/v/object", body, bucket + "/" + V.row_key(key, V.id_of(rec)))

    async def _write_tombstone(self: "MetaClient", bucket: str, rkey: str) -> None:
        await self._write_fresh("/v/object", bucket + "/" + rkey, lambda stamp: {
            "bucket": bucket, "key": rkey, "record": dict(stamp, deleted=True), "owner": self.account,
            "versioned": True})

    async def delete_current(self: "MetaClient", bucket: str, key: str, state: str) -> dict:
        """DELETE without a version id: a delete marker becomes the current version."""
        return await self.put_version(bucket, key, {"deleted": True, "marker": True}, state)

    async def delete_version(self: "MetaClient", bucket: str, key: str, version_id: str,
                             bypass_governance: bool = False) -> dict | None:
        """Remove one version for good (a delete marker too). Returns it (None: there was none).

        If it is current, the newest version left becomes current again (a
        copy of its row into the head). A removal racing this one may take
        away the version just made current: then that one is replaced too,
        until the head holds a version nobody removed.

        Object Lock: a version under a retention that holds (GOVERNANCE unless
        ``bypass_governance``, which the caller grants only to a request that
        asked for it and may) or a legal hold is refused, 403 AccessDenied,
        here whoever asks: the head's compare-and-set and the row's judge the
        version as they find it."""
        try:
            target = await self.get_version(bucket, key, version_id)
        except E.NoSuchVersion:
            target = None

        def guard(cur: dict | None) -> None:
            if V.is_version(cur) and V.id_of(cur) == version_id:
                OL.check_removal(cur, int(time.time() * 1000), bypass_governance)
        guard(target)
        gone, first = {version_id}, True
        while target is not None:
            rows = await self._rows(bucket, key, 2 + len(gone))
            left = [r for r, _ in V.key_versions(None, rows) if V.id_of(r) not in gone]
            promoted: list[dict] = []

            def judge(cur: dict | None) -> dict | None:
                if not (V.is_version(cur) and V.id_of(cur) in gone):
                    return None                 # not current: only its row goes
                guard(cur)
                if left:
                    promoted.append(left[0])
                    return content(left[0])    # the newest left becomes current again
                return {"deleted": True}
            await self.compare_and_set(bucket, key, judge, raw=True, versioned=True)
            if first:
                await self._remove_row(bucket, key, version_id, guard)
                first = False
            if not promoted:
                break
            pid = V.id_of(promoted[-1])
            _, row = await self._object_versions(bucket, V.row_key(key, pid))
            if V.is_version(row) and V.id_of(row) == pid:
                break
            gone.add(pid)                       # removed meanwhile: it must not stay current
            if len(gone) > 32:
                raise E.ServiceUnavailable("the key's versions kept changing")
        if first:
            await self._remove_row(bucket, key, version_id, guard)
        return target

    async def _remove_row(self: "MetaClient", bucket: str, key: str, version_id: str, guard) -> None:
        """A version's row gets a tombstone, by a compare-and-set whose ``guard`` judges
        the row as it is then: a retention or legal hold set on it meanwhile is seen.
        (One round more than a plain write: the price of never missing one.)"""
        def judge(cur: dict | None) -> dict:
            guard(cur)
            return {"deleted": True}
        await self.compare_and_set(bucket, V.row_key(key, version_id), judge, raw=True, versioned=True)

    async def _rows(self: "MetaClient", bucket: str, key: str, n: int = 3) -> list[tuple[str, dict]]:
        """The newest few live rows of a key (the null row first, if any)."""
        page = await self.list_objects(bucket, prefix=V.row_key(key, V.NULL), max_keys=n, _checked=True,
                                       full=True, markers=True)
        return [(k, r) for k, r in page["entries"]]

    # -- reads -------------------------------------------------------------------------
    async def get_version(self: "MetaClient", bucket: str, key: str, version_id: str) -> dict:
        """One version by id (an object or a delete marker); 404 NoSuchVersion if none."""
        b, head = await self._object_versions(bucket, key)
        self._check_owner(b)
        if V.is_version(head) and V.id_of(head) == version_id:
            return head
        _, rec = await self._object_versions(bucket, V.row_key(key, version_id))
        if V.is_version(rec) and V.id_of(rec) == version_id:
            return rec
        raise E.NoSuchVersion(Key=key, VersionId=version_id)

    async def update_version(self: "MetaClient", bucket: str, key: str, version_id: str, change) -> dict:
        """``change`` one version's record (its tags), in place: the head if it
        is current (a compare-and-set), else its row."""
        def judge(cur: dict | None) -> dict | None:
            if V.is_version(cur) and V.id_of(cur) == version_id:
                if V.is_marker(cur):
                    raise E.MethodNotAllowed()
                return change(content(cur))
            return None
        rec = await self.compare_and_set(bucket, key, judge, raw=True, versioned=True)
        if V.is_version(rec) and V.id_of(rec) == version_id:
            return rec
        rkey = V.row_key(key, version_id)

        def judge_row(cur: dict | None) -> dict:
            if not (V.is_version(cur) and V.id_of(cur) == version_id):
                raise E.NoSuchVersion(Key=key, VersionId=version_id)
            if V.is_marker(cur):
                raise E.MethodNotAllowed()
            return change(content(cur))
        return await self.compare_and_set(bucket, rkey, judge_row, raw=True, versioned=True)


def marker_headers(rec: dict) -> dict[str, str]:
    """What S3 answers about a delete marker, on the 404 or 405 it causes."""
    return {"x-amz-delete-marker": "true", "x-amz-version-id": V.id_of(rec),
            "Last-Modified": http_date(rec.get("mtime") or physical_ms(int(rec["ts"])))}
