"""The frontend's cache of buckets' access settings (frontend/authorize.AccessStore): one read
at a time per bucket, and a change made through this frontend never hidden by a read that
began before it."""
import asyncio

from minis3.frontend.authorize import AccessStore


class Meta:
    """The two metadata calls the store makes, counted, each taking a little while."""

    def __init__(self):
        self.bucket_reads = 0
        self.policy = None

    def as_account(self, account):
        return self

    async def get_bucket(self, name):
        self.bucket_reads += 1
        await asyncio.sleep(0.01)
        return {"vid": "v1", "owner": "me"}

    async def list_objects(self, bucket, **kw):
        seen = self.policy
        await asyncio.sleep(0.01)
        return {"entries": [("policy", {"policy": seen})] if seen else []}


def test_requests_that_find_an_entry_stale_share_one_read():
    async def main():
        meta = Meta()
        store = AccessStore(meta)
        states = await asyncio.gather(*(store.bucket("b") for _ in range(32)))
        assert meta.bucket_reads == 1 and all(s is states[0] for s in states)
        await store.bucket("b")
        assert meta.bucket_reads == 1                       # fresh: from the cache
        store._cache["b"] = (0.0, states[0])                # expired
        await asyncio.gather(*(store.bucket("b") for _ in range(8)))
        assert meta.bucket_reads == 2
    asyncio.run(main())


def test_a_read_begun_before_a_change_is_not_kept():
    async def main():
        meta = Meta()
        store = AccessStore(meta)
        early = asyncio.ensure_future(store.bucket("b"))     # reads the old settings
        await asyncio.sleep(0.015)
        meta.policy = '{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", ' \
                      '"Action": "s3:*", "Resource": "arn:aws:s3:::b/*"}]}'
        store.forget("b")                                     # as put() does after writing
        assert (await early).access.policy is None
        assert (await store.bucket("b")).access.policy is not None
        assert meta.bucket_reads == 2
    asyncio.run(main())
