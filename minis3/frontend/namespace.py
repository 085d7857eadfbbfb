"""The global bucket namespace, as a frontend sees it: :class:`BucketNamespace`.

A bucket's name is unique across every region. The *registry* (the global region's
bucket table; this region's own in a cluster of one region) says which region each
bucket lives in; a bucket of another region than the registry's also has its record in
that region's metadata, which checks its object writes against it. Here: creating and
deleting a bucket in both places, where a bucket lives, S3's answer to a request sent to
the wrong region.
"""
from __future__ import annotations


import aiohttp

from ..config import Topology
from ..core import errors as E
from ..core import regions
from ..core.hlc import HLC
from ..core.sigv4 import AuthResult
from ..meta.client import MetaClient
from .routing import Target


class BucketNamespace:
    def __init__(self, topo: Topology, session: aiohttp.ClientSession, meta: MetaClient, hlc: HLC):
        self.topo, self.session, self.meta, self.hlc = topo, session, meta, hlc
        self._region_metas: dict[str, MetaClient] = {topo.region: meta}
        self.registry = self.region_meta(topo.registry_region)

    def region_meta(self, region: str) -> MetaClient:
        """The metadata service of a region (this one's, or another's: for the
        registry, and for a bucket created here in another region)."""
        if region not in self._region_metas:
            self._region_metas[region] = MetaClient.for_topology(self.session, self.topo.region_topology(region),
                                                                 hlc=self.hlc)
        return self._region_metas[region]

    async def region_of(self, bucket: str) -> str | None:
        """Where a bucket lives, from the registry (None: nowhere)."""
        rec = await self.registry.as_account(None).bucket_record(bucket)
        return rec.get("region", self.topo.registry_region) if rec else None

    async def create(self, account: str, name: str, region: str) -> None:
        """Register the name in the registry (unique across regions), then, for
        a bucket of another region than the registry's, write the same record
        in that region's metadata, which checks its object writes against it.
        A creation cut short between the two is finished by the owner's next
        CreateBucket (as S3, BucketAlreadyOwnedByYou otherwise). Creating
        again one's own bucket of us-east-1 in us-east-1 is, as in S3 (a legacy
        of its first region), a success that leaves the bucket as it is."""
        reg = self.registry.as_account(account)
        cur = await reg.bucket_record(name)
        if cur is not None and cur.get("owner") == account:
            home = cur.get("region", self.topo.registry_region)
            if home != self.topo.registry_region:
                local = await self.region_meta(home).as_account(None).bucket_record(name)
                if local is None or local["ts"] < cur["ts"]:
                    await self.region_meta(home).put_bucket_record(name, cur)
                    return
            if home == region == regions.DEFAULT_REGION:
                return
        rec = await reg.create_bucket(name, region)     # BucketAlreadyExists / OwnedByYou
        if region != self.topo.registry_region:
            await self.region_meta(region).put_bucket_record(name, rec)

    async def delete(self, account: str, name: str) -> None:
        """Delete the bucket in this region (it must be empty), then free the
        name in the registry. If the registry step was cut short, the owner's
        next DeleteBucket finishes it."""
        reg = self.registry
        try:
            await self.meta.as_account(account).delete_bucket(name)
        except E.NoSuchBucket:
            if self.topo.region == self.topo.registry_region:
                raise
            rec = await reg.as_account(account).bucket_record(name)
            if rec is None or rec.get("owner") != account or rec.get("region") != self.topo.region:
                raise
        if self.topo.region != self.topo.registry_region:
            await reg.put_bucket_record(name, reg.tombstone())

    async def misdirected(self, target: Target, auth: AuthResult) -> E.S3Error | None:
        """S3's answer to a request for a bucket of another region, or signed
        for another region than this one's (:mod:`minis3.core.regions`)."""
        bucket = target.bucket
        where = await self.region_of(bucket) if bucket else None
        return regions.wrong_region(here=self.topo.region, signed_for=auth.region or self.topo.region,
                                    bucket=bucket, bucket_region=where,
                                    endpoint=self.topo.endpoint(where, bucket if target.virtual_host else None)
                                    if where else None,
                                    presigned=auth.mode == "presigned")
