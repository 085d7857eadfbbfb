"""Quorum reads start at a different replica each time, also through the
per-account views a frontend makes for every request (az-a's replica was
once never asked first, because each view restarted the count)."""
from __future__ import annotations

import asyncio
from collections import Counter

from minis3.meta.client import MetaClient
from minis3.meta.replica import Replica


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


# ---------------------------------------------------------------- one payload per read quorum
MARK = {"$blob": [8, "0123456789abcdef"]}


def _replicas(monkeypatch, holds: dict, fail: set = frozenset()):
    """Replicas answering GET /v/object from ``holds`` (url → record): with the
    inline payload, or its marker when asked with payload=0 (meta/server.py)."""
    calls: list = []

    async def call(self, method, path, *, params=None, json=None, body_sha256=None):
        calls.append((self.url, method, dict(params or {}), json))
        if method == "POST":
            return {"applied": True}
        if self.url in fail:
            from minis3.meta.replica import ReplicaError
            raise ReplicaError(f"{self.url}: down", status=503)
        rec = holds[self.url]
        if rec is not None and (params or {}).get("payload") == "0" and "inline" in rec:
            rec = dict(rec, inline=MARK)
        return {"bucket": {"ts": 1, "owner": "o"}, "object": rec}
    monkeypatch.setattr(Replica, "call", call)
    client = MetaClient(None, list(holds))

    async def replicas(ikey):
        return client.replicas
    client._replicas = replicas
    return client, calls


def test_one_replica_of_a_read_quorum_sends_the_payload(monkeypatch):
    rec = {"ts": 5, "vid": "v", "inline": "cGF5bG9hZA=="}
    client, calls = _replicas(monkeypatch, {"http://a": rec, "http://b": rec, "http://c": rec})

    async def run():
        for _ in range(6):
            _, o = await client._object_versions("bkt", "key")
            assert o["inline"] == rec["inline"]
    asyncio.run(run())
    gets = [c for c in calls if c[1] == "GET"]
    assert len(gets) == 12                                       # R = 2, no extra call
    assert sum(c[2].get("payload") != "0" for c in gets) == 6    # one payload a read


def test_a_newer_version_seen_only_as_a_marker_is_fetched_with_its_payload(monkeypatch):
    old, new = {"ts": 5, "vid": "v", "inline": "b2xk"}, {"ts": 9, "vid": "w", "inline": "bmV3"}
    client, calls = _replicas(monkeypatch, {"http://a": old, "http://b": new, "http://c": new})
    client._turns = iter([0] * 10)            # a (behind) is asked first: it sends the payload

    async def run():
        _, o = await client._object_versions("bkt", "key")
        await asyncio.sleep(0)                # the read repair, in the background
        return o
    o = asyncio.run(run())
    assert o == new                                              # never the marker
    assert ("http://b", "GET", {"bucket": "bkt", "key": "key"}, None) in calls   # b asked again, for the bytes
    repairs = [c for c in calls if c[1] == "POST"]
    assert repairs and all(c[0] == "http://a" and c[3]["record"] == new for c in repairs)


def test_no_replica_sends_the_payload_then_all_are_asked_for_it(monkeypatch):
    new = {"ts": 9, "vid": "w", "inline": "bmV3"}
    client, calls = _replicas(monkeypatch, {"http://a": new, "http://b": new, "http://c": new}, fail={"http://a"})
    client._turns = iter([0] * 10)            # a, asked for the payload, is down

    async def run():
        return (await client._object_versions("bkt", "key"))[1]
    # b and c answer with markers (the replica asked for the payload failed); then b again.
    assert asyncio.run(run()) == new


def test_a_head_asks_no_replica_for_the_payload(monkeypatch):
    old, new = {"ts": 5, "vid": "v", "inline": "b2xk"}, {"ts": 9, "vid": "w", "inline": "bmV3"}
    client, calls = _replicas(monkeypatch, {"http://a": old, "http://b": new, "http://c": new})
    client._turns = iter([0] * 10)

    async def run():
        return await client.get_object("bkt", "key", payload=False)
    o = asyncio.run(run())
    assert o["ts"] == 9 and o["inline"] == MARK                  # the version, its bytes as a marker
    assert [c[2].get("payload") for c in calls] == ["0", "0"]    # two replicas, no payload, no repair
