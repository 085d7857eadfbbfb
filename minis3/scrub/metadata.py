"""What the scrubber reads from and writes to the metadata replicas, besides the scan.

:class:`MetadataRepair` holds the metadata side of a pass: **anti-entropy**
(the newest version of a record written to each AZ's replica that lacks it;
:meth:`MetadataRepair.walk_buckets` does it for the buckets table, the
object walk, scrub/walk.py, for each object), tombstones for the part and
upload records of uploads that are gone, the new placement a repair records
(:meth:`MetadataRepair.write_version`, a quorum write), and the estimate of
the keys a pass walks, for its progress.
"""
from __future__ import annotations

import logging
import time

from ..core.hlc import physical_ms
from ..meta import blobs
from ..meta.client import PARTS, MetaClient
from ..meta.quorum import quorum
from ..meta.replica import ReplicaError
from ..meta.partition import version
from . import plan as P
from .report import META_REPAIRS, PassReport
from .scan import merged_scan

log = logging.getLogger("minis3.scrub")


class MetadataRepair:
    """``meta``: the client of every metadata process; ``grace``: seconds a
    gone upload's records are kept before they are tombstoned."""

    def __init__(self, meta: MetaClient, grace: float) -> None:
        self.meta, self.grace = meta, grace
        self.router = meta.router
        self.replicas = meta.replicas            # each AZ's home metadata process

    async def estimate_keys(self) -> int:
        """About how many keys the objects table holds (a pass's progress), 0 if no replica answers."""
        for r in self.replicas:
            try:
                # /index/stats, not /status: its counts need no walk over every
                # record (at 500,000 keys that walk held the replica's event loop 0.3-0.5 s).
                st = await r.call("GET", "/index/stats")
                return sum(p.get("keys", 0) for p in st.get("partitions", []))
            except ReplicaError:
                continue
        return 0

    async def walk_buckets(self, rep: PassReport) -> set[str] | None:
        """Anti-entropy of the buckets table; the live bucket names (None if a scan broke off)."""
        live: set[str] = set()
        failed: list[bool] = []
        async for name, versions, alive in merged_scan(self.replicas, "buckets", failed):
            newest = await self.anti_entropy(rep, "/v/bucket", {"name": name}, versions, alive)
            if newest and not newest.get("deleted"):
                live.add(name)
        return None if any(failed) else live

    async def anti_entropy(self, rep: PassReport, path: str, ident: dict, versions, alive,
                           ikey: str | None = None) -> dict | None:
        """Write the newest version to each AZ's replica that lacks it (of an
        object: at the process holding its range; else at the home process)."""
        newest, stale = P.newest_and_stale([v if a else None for v, a in zip(versions, alive)], version)
        repair = newest
        if stale and blobs.is_marker((newest or {}).get("inline")):
            # The scan sent the inline payload's marker (meta/blobs.py): fetch the record itself.
            repair = await self._record_with_payload(ident, ikey, versions, alive, newest)
            if repair is None:
                return newest
        for i in stale:
            if not alive[i]:
                continue
            try:
                await self.meta.call_routed(self.router.replica_in(self.replicas[i].az, ikey) if ikey else
                                            self.replicas[i], ikey, "POST", path, json=dict(ident, record=repair))
                rep.meta_repairs += 1
                META_REPAIRS.inc()
            except ReplicaError as exc:
                log.warning("anti-entropy write to %s failed: %s", self.replicas[i].name, exc)
        return newest

    async def _record_with_payload(self, ident: dict, ikey: str | None, versions, alive, newest: dict) -> dict | None:
        """The newest version with its inline payload, from a replica that has it (None: none answered)."""
        for i, (v, a) in enumerate(zip(versions, alive)):
            if not a or v is None or version(v) != version(newest):
                continue
            try:
                body = await self.meta.call_routed(self.router.replica_in(self.replicas[i].az, ikey), ikey, "GET",
                                                   "/v/object", params=dict(ident, peer="1"))
            except ReplicaError as exc:
                log.warning("could not fetch %s from %s for a repair: %s", ikey, self.replicas[i].name, exc)
                continue
            got = body.get("object")
            if got is not None and version(got) == version(newest):
                return got
        return None

    async def clean_parts(self, rep: PassReport, part_records: dict, live_uploads: set[str]) -> None:
        """Part records of uploads that are gone (completed: the manifest now
        points at the fragments it needs; aborted, or cut short by a crash)
        are tombstoned once older than the grace period; the next passes'
        GC then removes every fragment nothing points at any more."""
        for uid, recs in part_records.items():
            if uid in live_uploads:
                continue
            for key, rec in recs:
                await self.tombstone(rep, PARTS + key, rec)

    async def tombstone(self, rep: PassReport, ikey: str, rec: dict) -> None:
        """Delete a raw record (a part or an upload that is gone) once older
        than the grace period, with a version just newer than it: no later
        write can exist for an upload that is gone."""
        if physical_ms(int(rec["ts"])) >= (time.time() - self.grace) * 1000:
            return
        bucket, _, key = ikey.partition("/")
        try:
            await self.write_version(bucket, key, {"ts": int(rec["ts"]) + 1, "vid": "scrubber", "deleted": True})
            rep.parts_cleaned += 1
        except Exception as exc:       # noqa: BLE001 - the next pass tries again
            log.warning("could not clean record %r: %s", ikey, exc)

    async def write_version(self, bucket: str, key: str, record: dict) -> None:
        """Send a version to every replica; return when two have it (each keeps it only if newer)."""
        body = {"bucket": bucket, "key": key, "record": record}
        ikey = bucket + "/" + key
        await quorum(self.router.replicas_for(ikey), lambda r: self.meta.call_routed(r, ikey, "POST", "/v/object",
                                                                                     json=body),
                     2, finish_in_background=True)
