"""Buckets' lifecycle rules, applied in the background by the scrubber process.

A **round** (every ``lifecycle.interval_s``; a :class:`~minis3.rpc.worker.Worker` of its own, so
that a long scrub pass never delays it, nor it a pass):

1. lists the buckets of this region, and reads each one's ``lifecycle`` access setting (the
   raw record PutBucketLifecycleConfiguration wrote, ``ACCESS + bucket/vid/lifecycle``);
2. for a bucket with rules, reads its index a page of 1,000 entries at a time, heads and
   version rows together (a key's versions sort together, core/versions.py), and hands each
   key's versions to the pure decision (``core.lifecycle.decide_key``): expire the current
   version (a tombstone, or in a bucket that keeps versions a delete marker), remove an expired
   object delete marker, delete noncurrent versions for good;
3. reads the bucket's incomplete multipart uploads the same way and aborts those a rule says
   are old enough, as AbortMultipartUpload does (the upload record, then its part records;
   the parts' fragments are then referenced by nothing, and the scrubber's GC frees them).

Every action goes through the metadata service as a frontend's would, and is conditional on
what was read: a key written meanwhile is left to the next round (``raced``). A version under
Object Lock is never deleted for good (checked on the read, and again just before the delete),
and a delete the metadata service refuses is counted and skipped, never the end of a round.

Work is bounded: a round reads at most ``lifecycle.keys_per_round`` entries, then stops at a key
boundary and the next round goes on from there. Time runs at ``lifecycle.day_seconds`` a
"day" (core/lifecycle.py). What a round did is logged, shown in the scrubber's ``GET /status``
(``lifecycle``) and counted in its metrics (``minis3_lifecycle_*``, scrub/report.py).

**Transitions** (to any class S3 transitions to: core/lifecycle.py) keep the object's erasure
code (each of those classes has STANDARD's k+m; only ONEZONE_IA's fragments live elsewhere, in
one zone): the version's record gets the class (and for ONEZONE_IA its zone) (:func:`relabel`, a compare-and-set that keeps
the version, as a tag change does), and the scrub pass that next plans the object finds its
fragments away from their new home and moves them there, by the rebuild jobs that move a
handed-off fragment home (scrub/repair.py); their old copies become garbage. A version whose
scheme differs from the target's (REDUCED_REDUNDANCY's k+(m-1)) would need re-encoding: it is
skipped and counted (``transitions_skipped``).
"""
from __future__ import annotations

import asyncio
import logging
import time

from ..core import errors as E
from ..core import lifecycle as L
from ..core import versions as V
from ..ec import storage_class as SC
from ..meta.client import ACCESS, PARTS, UPLOADS, MetaClient
from ..meta.partition import version
from ..meta.replica import ReplicaError
from ..rpc.worker import Worker
from .report import (LIFECYCLE_ACTIONS, LIFECYCLE_FAILURES, LIFECYCLE_KEPT_LOCKED, LIFECYCLE_ROUNDS, REGISTRY,
                     LifecycleReport)

log = logging.getLogger("minis3.lifecycle")

PAGE = 1000
RETRY_S = 5.0             # seconds to the next round after one the metadata service did not answer
#: Which report field and metric label each kind of action counts in.
COUNTED = {L.EXPIRE: "expired", L.REMOVE_MARKER: "markers_removed", L.EXPIRE_NONCURRENT: "noncurrent_expired",
           L.ABORT: "uploads_aborted", L.TRANSITION: "transitioned"}


def relabel(rec: dict, new_class: str, k: int, m: int, azs: list[tuple[str, list[str]]]) -> dict | None:
    """The content of ``rec`` as a version of class ``new_class`` (``k``+``m``: the topology's
    scheme), its fragments where they are; None if the class needs another erasure code
    (re-encoding, which a relabel cannot do). A one-zone class gets its zone, chosen as a PUT
    chooses it (by the object id; every part of a multipart object in the same zone)."""
    tk, tm, one_zone = SC.scheme(new_class, k, m)
    units = [p["ec"] for p in rec.get("parts") or [] if p.get("ec")] + ([rec["ec"]] if rec.get("ec") else [])
    if any((int(ec["k"]), int(ec["m"])) != (tk, tm) for ec in units):
        return None
    zone = SC.zone_for(units[0]["id"], azs, {n for _, nodes in azs for n in nodes}) if one_zone and units else None

    def placed(ec: dict) -> dict:
        out = {f: v for f, v in ec.items() if f != "zone"}
        return dict(out, zone=zone) if zone else out
    out = {f: v for f, v in rec.items() if f != "storage_class"}
    out.update(SC.record_field(new_class))
    if rec.get("ec"):
        out["ec"] = placed(rec["ec"])
    if rec.get("parts"):
        out["parts"] = [dict(p, ec=placed(p["ec"])) if p.get("ec") else p for p in rec["parts"]]
    return out


class _Raced(Exception):
    """The key is not as the decision saw it: the next round judges it again."""


class LifecycleRunner:
    """The rounds (module doc). ``meta``: the scrubber's metadata client (it acts as no
    account in particular: the rules are the bucket owner's)."""

    def __init__(self, topo, meta: MetaClient, clock=time.time):
        self.meta = meta.as_account(None)
        self.spec = topo.lifecycle
        self.clock = clock
        self.scheme = (topo.erasure.k, topo.erasure.m)
        self.region = topo.region
        self.azs = [(az.name, [n.id for n in az.nodes]) for az in topo.azs]
        self.cursors: dict[str, str] = {}       # "o:bucket" / "u:bucket" → key a round goes on after
        self.resume_bucket: str | None = None   # the bucket the next round begins with
        self.totals = dict.fromkeys(COUNTED.values(), 0)    # what every round did, since the process started
        self.rounds = 0
        self.current: LifecycleReport | None = None
        self.last: LifecycleReport | None = None
        self._pause_s = self.spec.interval_s
        self.worker = Worker("lifecycle", self.run_round, self._until_next_round, registry=REGISTRY)

    async def _until_next_round(self) -> None:
        """``lifecycle.interval_s``, or RETRY_S after a round the metadata service did not answer."""
        await asyncio.sleep(self._pause_s)

    # ---------------------------------------------------------------- a round
    async def run_round(self) -> LifecycleReport:
        self.rounds += 1
        rep = self.current = LifecycleReport(id=self.rounds, started_unix=self.clock())
        t0 = time.monotonic()
        budget = [self.spec.keys_per_round]
        try:
            rep.phase = "listing buckets"
            self._pause_s = self.spec.interval_s
            try:
                listed = await self.meta.list_buckets()
            except (E.S3Error, ReplicaError, OSError) as exc:
                # The metadata service is not answering (the cluster is starting, say): not this
                # round's fault, and no reason to wait a whole interval for the next one.
                rep.phase = f"the metadata service did not answer: {exc.__class__.__name__}: {exc}"
                self._pause_s = min(RETRY_S, self.spec.interval_s)
                log.warning("lifecycle round %d: %s; again in %.0f s", rep.id, rep.phase, self._pause_s)
                return rep
            # (The bucket table of the global region also lists every other region's buckets.)
            buckets = [b for b in listed if b.get("region", self.region) == self.region]
            # Begin where the last round's budget ran out, so that a bucket larger than the
            # budget never keeps the ones after it waiting.
            first = next((i for i, b in enumerate(buckets) if b["name"] == self.resume_bucket), 0)
            self.resume_bucket = None
            for b in buckets[first:] + buckets[:first]:
                if budget[0] <= 0:
                    self.resume_bucket = b["name"]
                    break
                rep.phase = f"bucket {b['name']}"
                try:
                    rules = await self.rules(b)
                    if not rules:
                        continue
                    rep.buckets += 1
                    await self._objects(rep, b["name"], rules, bool(b.get("versioning")), budget)
                    await self._uploads(rep, b["name"], rules, budget)
                except (E.S3Error, ReplicaError, OSError) as exc:     # one bucket never stops the others
                    self._failed(rep, b["name"], "", f"reading the bucket: {exc.__class__.__name__}: {exc}")
            rep.phase = "done"
        finally:
            rep.seconds = round(time.monotonic() - t0, 3)
            rep.resumes_at = dict(self.cursors)
            self.last, self.current = rep, None
            LIFECYCLE_ROUNDS.inc()
            if rep.expired or rep.markers_removed or rep.noncurrent_expired or rep.uploads_aborted or rep.failures \
                    or rep.kept_locked or rep.transitioned or rep.transitions_skipped:
                log.info("lifecycle round %d: %d buckets with rules, %d entries read; %d expired, %d delete markers "
                         "removed, %d noncurrent versions deleted, %d uploads aborted, %d transitioned (%d skipped: "
                         "another erasure code), %d kept by Object Lock, %d raced, %d failed, %.2f s", rep.id,
                         rep.buckets, rep.entries_read, rep.expired, rep.markers_removed, rep.noncurrent_expired,
                         rep.uploads_aborted, rep.transitioned, rep.transitions_skipped, rep.kept_locked, rep.raced,
                         rep.failures, rep.seconds)
        return rep

    async def rules(self, bucket: dict) -> list[L.Rule]:
        """A bucket's lifecycle rules, from its access settings ([] if none)."""
        page = await self.meta.list_objects(f"{ACCESS}{bucket['name']}/{bucket['vid']}", _checked=True, full=True)
        raw = (dict(page["entries"]).get("lifecycle") or {}).get("rules")
        return L.from_record(raw) if raw else []

    async def _objects(self, rep: LifecycleReport, bucket: str, rules: list[L.Rule], versioned: bool,
                       budget: list[int]) -> None:
        """Every key's versions, page by page, judged one key at a time (a key's head, then its rows)."""
        cursor = "o:" + bucket
        marker = self.cursors.pop(cursor, "")
        group: tuple[str, dict | None, list] | None = None      # (key, head, rows) being gathered
        done_key = None                                          # the last entry of the last key judged
        last = ""                                                # the last entry read
        while True:
            page = await self.meta.list_objects(bucket, marker=marker, max_keys=PAGE, _checked=True, full=True,
                                                markers=True)
            entries = page["entries"]
            for ikey, rec in entries:
                key = ikey.split(V.SEP, 1)[0]
                if group is None or group[0] != key:
                    if group is not None:
                        await self._judge(rep, bucket, rules, versioned, group)
                        done_key = last
                    group = (key, None, [])
                if V.SEP in ikey:
                    group[2].append((ikey, rec))
                else:
                    group = (key, rec, group[2])
                last = ikey
            rep.entries_read += len(entries)
            budget[0] -= len(entries)
            if not page["truncated"] or not page["next_marker"]:
                if group is not None:
                    await self._judge(rep, bucket, rules, versioned, group)
                return
            marker = page["next_marker"]
            if budget[0] <= 0 and done_key is not None:
                self.cursors[cursor] = done_key       # the key being gathered is read again next round
                return

    async def _judge(self, rep: LifecycleReport, bucket: str, rules: list[L.Rule], versioned: bool, group) -> None:
        key, head, rows = group
        versions = list(V.key_versions(head, rows))
        decided = L.decide_key(rules, key, versions, versioned=versioned, now_s=self.clock(),
                               day_seconds=self.spec.day_seconds)
        if decided.locked:
            rep.kept_locked += decided.locked
            LIFECYCLE_KEPT_LOCKED.inc(decided.locked)
        by_id = {V.id_of(r): r for r, _ in versions}
        for action in decided.actions:
            await self._act(rep, bucket, action, by_id.get(action.version_id) if action.version_id else head)

    async def _uploads(self, rep: LifecycleReport, bucket: str, rules: list[L.Rule], budget: list[int]) -> None:
        if not any(r.abort_days is not None and r.enabled for r in rules):
            return
        cursor = "u:" + bucket
        marker = self.cursors.pop(cursor, "")
        while True:
            page = await self.meta.list_objects(UPLOADS + bucket, marker=marker, max_keys=PAGE, _checked=True,
                                                full=True)
            for k, rec in page["entries"]:
                key, uid = k[:-33], k[-32:]
                action = L.decide_upload(rules, key, uid, rec.get("initiated", rec.get("mtime", 0)) / 1000,
                                         now_s=self.clock(), day_seconds=self.spec.day_seconds)
                if action is not None:
                    await self._act(rep, bucket, action, rec)
            rep.entries_read += len(page["entries"])
            budget[0] -= len(page["entries"])
            if not page["truncated"] or not page["next_marker"]:
                return
            marker = page["next_marker"]
            if budget[0] <= 0:
                self.cursors[cursor] = marker
                return

    # ---------------------------------------------------------------- the actions
    async def _act(self, rep: LifecycleReport, bucket: str, action: L.Action, rec: dict | None) -> None:
        """Do one action; a refusal or a failure is counted and left for the next round."""
        try:
            if action.kind == L.EXPIRE:
                await self._expire(bucket, action, rec)
            elif action.kind in (L.REMOVE_MARKER, L.EXPIRE_NONCURRENT):
                await self._remove_version(bucket, action)
            elif action.kind == L.ABORT:
                await self._abort(bucket, action)
            elif action.kind == L.TRANSITION:
                await self._transition(bucket, action, rec)
        except _NeedsReencoding:
            rep.transitions_skipped += 1
            return
        except _Raced:
            rep.raced += 1
            return
        except _Locked:
            rep.kept_locked += 1
            LIFECYCLE_KEPT_LOCKED.inc()
            return
        except Exception as exc:      # noqa: BLE001 - refused (Object Lock, say) or failed: the next round tries again
            self._failed(rep, bucket, action.key, f"{action.kind} (rule {action.rule_id}): "
                                                  f"{exc.__class__.__name__}: {exc}")
            return
        field = COUNTED[action.kind]
        setattr(rep, field, getattr(rep, field) + 1)
        self.totals[field] += 1
        LIFECYCLE_ACTIONS.labels(action=field).inc()
        log.debug("lifecycle: %s %s/%s (version %s, upload %s) by rule %r", action.kind, bucket, action.key,
                  action.version_id, action.upload_id, action.rule_id)

    @staticmethod
    def _failed(rep: LifecycleReport, bucket: str, key: str, problem: str) -> None:
        rep.failures += 1
        LIFECYCLE_FAILURES.inc()
        if len(rep.errors) < 20:
            rep.errors.append([bucket, key, problem])
        log.warning("lifecycle: %s/%s: %s", bucket, key, problem)

    async def _expire(self, bucket: str, action: L.Action, rec: dict | None) -> None:
        """The current version expires: a delete marker on top of it if the bucket keeps
        versions, else a tombstone. Either only if it is still the version judged."""
        if rec is None:
            raise _Raced()
        if action.version_id is not None:
            state = await self.meta.versioning(bucket)
            if state:
                try:
                    await self.meta.put_version(bucket, action.key, {"deleted": True, "marker": True}, state,
                                                {"if-match": f'"{rec.get("etag", "")}"'})
                except (E.PreconditionFailed, E.NoSuchKey):
                    raise _Raced() from None
                return
        judged = version(rec)

        def judge(cur: dict | None) -> dict | None:
            if cur is None or version(cur) != judged:
                raise _Raced()
            if L.is_locked(cur, self.clock()):
                raise _Locked()
            return {"deleted": True}
        try:
            await self.meta.compare_and_set(bucket, action.key, judge, raw=True)
        except E.VersionedBucket:
            raise _Raced() from None          # versioning was turned on meanwhile: judged again next round

    async def _remove_version(self, bucket: str, action: L.Action) -> None:
        """Delete one version (or delete marker) for good, after checking again that no lock
        came on it since the listing."""
        try:
            cur = await self.meta.get_version(bucket, action.key, action.version_id)
        except E.NoSuchVersion:
            raise _Raced() from None
        if L.is_locked(cur, self.clock()):
            raise _Locked()
        await self.meta.delete_version(bucket, action.key, action.version_id)

    async def _transition(self, bucket: str, action: L.Action, rec: dict | None) -> None:
        """Record the version's new class (and zone) in place, if it is still of the class judged;
        the next scrub pass moves its fragments (module doc)."""
        if rec is None:
            raise _Raced()
        judged = L.storage_class_of(rec)

        def change(cur: dict) -> dict:
            if L.storage_class_of(cur) != judged:
                raise _Raced()
            moved = relabel(cur, action.storage_class, *self.scheme, self.azs)
            if moved is None:
                raise _NeedsReencoding()
            return moved
        try:
            await self.meta.update_version(bucket, action.key, action.version_id or V.NULL, change)
        except (E.NoSuchVersion, E.MethodNotAllowed):
            raise _Raced() from None

    async def _abort(self, bucket: str, action: L.Action) -> None:
        """As AbortMultipartUpload: the upload record goes, then its part records."""
        await self.meta.delete_record(f"{UPLOADS}{bucket}/{action.key}\x00{action.upload_id}")
        marker = ""
        while True:
            page = await self.meta.list_objects(PARTS + action.upload_id, marker=marker, max_keys=PAGE,
                                                _checked=True, full=True)
            for k, _ in page["entries"]:
                await self.meta.delete_record(f"{PARTS}{action.upload_id}/{k}")
            if not page["truncated"] or not page["next_marker"]:
                return
            marker = page["next_marker"]

    def status(self) -> dict:
        """The scrubber's ``GET /status`` ``lifecycle``: the totals since the process started, the
        running round, the last one, the settings."""
        return {"rounds": self.rounds, "totals": dict(self.totals),
                "running": self.current.as_dict() if self.current else None,
                "last_round": self.last.as_dict() if self.last else None,
                "settings": {"day_seconds": self.spec.day_seconds, "interval_s": self.spec.interval_s,
                             "keys_per_round": self.spec.keys_per_round}}


class _Locked(Exception):
    """The version is under Object Lock: a rule never deletes it for good."""


class _NeedsReencoding(Exception):
    """A transition to a class of another erasure code: not done (module doc)."""
