"""A channel to a real metadata replica (rpc/channel.py): opened only by a
signed request, closed by a message it cannot authenticate (and counted as a
refusal), and without it the same calls go as requests and batches."""
from __future__ import annotations

import asyncio
import re
import urllib.request

import pytest

from minis3.core.channel import HEAD_BYTES
from minis3.meta import batch
from minis3.meta.replica import Replica
from minis3.rpc import channel, fastjson
from minis3.rpc.http import client_session


def _refused(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
        text = r.read().decode()
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r'^minis3_rpc_refused_total\{reason="(\w+)"\} (\S+)$', text, re.M)}


def _calls(bucket: str, n: int) -> list:
    return [("GET", "/v/bucket", {"name": bucket}, None) for _ in range(n)]


def test_a_channel_carries_calls_unmasked_and_a_forged_message_closes_it(cluster, bucket, monkeypatch):
    """Its frames carry no RFC 6455 mask (rpc/channel.send_unmasked): aiohttp's
    mask function is never called, and the replica answers them as before."""
    from aiohttp._websocket import writer
    masked = []
    real = writer.websocket_mask
    monkeypatch.setattr(writer, "websocket_mask", lambda mask, data: (masked.append(len(data)), real(mask, data)))
    meta = cluster.topo.metas[0]

    async def run():
        async with client_session(cluster.topo.cluster_secret) as session:
            ch = channel.ChannelClient(session, meta.url)
            answer = fastjson.loads(await ch.call(batch.encode_calls(_calls(bucket, 3))))
            assert [st for st, _ in answer["results"]] == [200, 200, 200]
            assert all(body["record"] is not None for _, body in answer["results"])
            assert ch.opened == 1
            # A message the channel's key did not seal, then a call behind it:
            # the replica closes the channel at the first, and the call waiting
            # for an answer fails as soon as the channel closes.
            waiting = asyncio.ensure_future(ch.call(batch.encode_calls(_calls(bucket, 1))))
            await ch._link.ws.send_bytes(b"\0" * HEAD_BYTES + b'{"calls": []}')       # no await point: it goes first
            with pytest.raises(ConnectionError):
                await asyncio.wait_for(waiting, 10)
            # The next call opens a new channel.
            answer = fastjson.loads(await ch.call(batch.encode_calls(_calls(bucket, 1))))
            assert answer["results"][0][0] == 200 and ch.opened == 2
    before = _refused(meta.url)["signature"]
    asyncio.run(run())
    assert _refused(meta.url)["signature"] == before + 1
    assert masked == []


def test_a_channel_needs_the_cluster_secret(cluster):
    meta = cluster.topo.metas[0]

    async def run():
        async with client_session("not the cluster secret") as session:
            ch = channel.ChannelClient(session, meta.url)
            with pytest.raises(channel.Unavailable):
                await ch.call(batch.encode_calls(_calls("any", 1)))
            assert ch.opened == 0 and not ch.usable          # requests for a while
    asyncio.run(run())


def test_without_a_channel_the_same_calls_go_as_requests(cluster, bucket):
    meta = cluster.topo.metas[0]
    before = cluster.signed_get(meta.url, "/status")

    async def run():
        async with client_session(cluster.topo.cluster_secret) as session:
            r = Replica(session, meta.url, meta.id, meta.az)
            r.channel.enabled = False
            got = await asyncio.gather(*(r.call("GET", "/v/bucket", params={"name": bucket}) for _ in range(5)))
            assert all(g["record"] is not None for g in got)
    asyncio.run(run())
    after = cluster.signed_get(meta.url, "/status")
    assert after["batches"]["requests"] > before["batches"]["requests"]      # the five went as one batch


def test_a_caller_given_up_on_while_the_channel_opens_does_not_stop_it(cluster, bucket):
    """A hedged read cancels its slower call: if that call was opening the
    channel, the channel still opens, for the calls after it."""
    meta = cluster.topo.metas[1]

    async def run():
        async with client_session(cluster.topo.cluster_secret) as session:
            ch = channel.ChannelClient(session, meta.url)
            first = asyncio.ensure_future(ch.call(batch.encode_calls(_calls(bucket, 1))))
            await asyncio.sleep(0.001)
            first.cancel()
            answer = fastjson.loads(await ch.call(batch.encode_calls(_calls(bucket, 1))))
            assert answer["results"][0][0] == 200
            assert ch.opened == 1 and ch.usable
    asyncio.run(run())
