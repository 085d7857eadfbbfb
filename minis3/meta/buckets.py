"""The bucket table over quorums: the bucket half of MetaClient (mixed in).

A bucket's record is on every AZ's home metadata process (and copied to the
extra ones, which check writes against it): it is read from a read quorum of
the homes and written to a write quorum of them, like an object's version
(``meta/client.py``). The global region's table is also the registry of
every region's buckets: there a bucket of another region has a record, and
is not *here*.
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ..core import errors as E
from ..core.hlc import physical_ms
from .partition import version
from .quorum import live
from .replica import Background

if TYPE_CHECKING:
    from .client import MetaClient


class BucketTable:
    """The bucket half of MetaClient (mixed in)."""

    def _check_owner(self: MetaClient, bucket_rec: dict | None) -> dict:
        b = live(bucket_rec)
        if b is None or not self._here(b):
            raise E.NoSuchBucket()
        if self.account is not None and b.get("owner") != self.account:
            raise E.AccessDenied()
        return b

    async def _bucket_version(self: MetaClient, name: str) -> dict | None:
        replies = await self._read("/v/bucket", {"name": name})
        return self._newest(body["record"] for _, body in replies)

    async def list_buckets(self: MetaClient) -> list[dict]:
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

    def _here(self: MetaClient, b: dict) -> bool:
        """Does the bucket live in this metadata service's region? (The global
        region's bucket table is also the registry of every region's buckets:
        there a bucket of another region has a record, and is not here.)"""
        return self.region is None or b.get("region", self.region) == self.region

    async def get_bucket(self: MetaClient, name: str) -> dict:
        """The bucket, if it lives in this region and the account owns it
        (else NoSuchBucket, AccessDenied)."""
        return self._check_owner(await self._bucket_version(name))

    async def bucket_record(self: MetaClient, name: str) -> dict | None:
        """The bucket's live record, wherever it lives and whoever owns it (None:
        none). Asked of the global region, this is the bucket registry."""
        return live(await self._bucket_version(name))

    async def create_bucket(self: MetaClient, name: str, region: str) -> dict:
        cur = live(await self._bucket_version(name))
        if cur is not None:
            raise E.BucketAlreadyOwnedByYou() if cur.get("owner") == self.account else E.BucketAlreadyExists()
        rec = self._stamp()
        rec.update(created_ms=physical_ms(rec["ts"]), region=region, owner=self.account)
        await self._write_bucket({"name": name, "record": rec})
        return rec

    async def put_bucket_record(self: MetaClient, name: str, rec: dict) -> None:
        """Write a bucket version made elsewhere (the registry's record of a
        bucket, copied to the region it lives in; or its tombstone)."""
        self.hlc.observe(int(rec["ts"]))
        await self._write_bucket({"name": name, "record": rec})

    async def _write_bucket(self: MetaClient, body: dict) -> None:
        """A bucket version: a write quorum of the home processes; the extra
        ones (which check writes against their copy of the table) get it too."""
        for r in self.router.extras:
            Background.keep(asyncio.ensure_future(r.call("POST", "/v/bucket", json=body)))
        await self._write("/v/bucket", body)

    async def delete_bucket(self: MetaClient, name: str) -> None:
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
