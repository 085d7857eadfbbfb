"""Quorum reads start at a different replica each time, also through the
per-account views a frontend makes for every request (issue 19: az-a's
replica was never asked first, because each view restarted the count)."""
from __future__ import annotations

import asyncio
from collections import Counter

from minis3.meta.client import MetaClient, Replica


def test_reads_through_per_request_views_spread_over_every_replica(monkeypatch):
    first: Counter = Counter()

    async def call(self, method, path, *, params=None, json=None, body_sha256=None):
        first[self.url] += 1
        return {"bucket": None, "object": None}
    monkeypatch.setattr(Replica, "call", call)
    client = MetaClient(None, ["http://a", "http://b", "http://c"])

    async def run():
        for i in range(30):
            view = client.as_account(f"acct{i % 2}")          # a new view per request, as the frontend makes
            await view._read("/v/bucket", {"name": "x"})
    asyncio.run(run())
    # Two of three replicas are asked per read (R = 2): each is asked in about two thirds of them.
    assert set(first) == {"http://a", "http://b", "http://c"}
    assert min(first.values()) >= 15, first
