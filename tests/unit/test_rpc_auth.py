"""Internal request authentication (rpc/auth.py), with no processes: the MAC,
the time window, the replay guard and the seal of a fragment body."""
from __future__ import annotations

import asyncio
import hashlib

import pytest
from hypothesis import given, settings, strategies as st

from minis3.rpc import auth
from minis3.storage import blocks
from minis3.storage.client import SealedStream, seal_blocks

NONCE = "0123456789abcdef01234567"


def verifier(now: float = 1000.0) -> auth.Verifier:
    clock = [now]
    v = auth.Verifier("s", clock=lambda: clock[0])
    v.clock_at = clock          # (tests move it)
    return v


def test_a_signed_request_is_accepted_once():
    v = verifier()
    h = auth.sign("s", "GET", "/x?a=1", NONCE, now=1000)
    assert v.refusal("GET", "/x?a=1", h, NONCE, None) is None
    assert v.refusal("GET", "/x?a=1", h, NONCE, None) == "replayed"
    assert v.refused["replayed"] == 1


@pytest.mark.parametrize("method,path,nonce,secret,digest", [
    ("PUT", "/x?a=1", NONCE, "s", None),                  # another method
    ("GET", "/x?a=2", NONCE, "s", None),                  # another query
    ("GET", "/y?a=1", NONCE, "s", None),                  # another path
    ("GET", "/x?a=1", "f" * 24, "s", None),               # another nonce
    ("GET", "/x?a=1", NONCE, "other", None),              # another secret
    ("GET", "/x?a=1", NONCE, "s", "0" * 64),              # a body added
])
def test_anything_changed_breaks_the_signature(method, path, nonce, secret, digest):
    h = auth.sign(secret, "GET", "/x?a=1", NONCE, now=1000)
    assert verifier().refusal(method, path, h, nonce, digest) == "signature"


def test_time_window_both_ways():
    v = verifier()
    old = auth.sign("s", "GET", "/x", NONCE, now=1000 - auth.WINDOW_S - 1)
    new = auth.sign("s", "GET", "/x", NONCE, now=1000 + auth.WINDOW_S + 1)
    assert v.refusal("GET", "/x", old, NONCE, None) == "stale"
    assert v.refusal("GET", "/x", new, NONCE, None) == "future"
    edge = auth.sign("s", "GET", "/x", NONCE, now=1000 - auth.WINDOW_S)
    assert v.refusal("GET", "/x", edge, NONCE, None) is None


@pytest.mark.parametrize("value,nonce,why", [
    (None, NONCE, "missing"), ("1000:" + "0" * 64, None, "missing"), ("", NONCE, "missing"),
    ("abc:" + "0" * 64, NONCE, "malformed"), ("1000:short", NONCE, "malformed"),
    ("1000" + "0" * 64, NONCE, "malformed"), ("1000:" + "0" * 64, "short", "malformed"),
])
def test_malformed_headers(value, nonce, why):
    assert verifier().refusal("GET", "/x", value, nonce, None) == why


def test_a_replay_is_refused_for_as_long_as_its_time_stamp_is_valid_and_memory_is_given_back():
    v = verifier()
    h = auth.sign("s", "GET", "/x", NONCE, now=1000)
    assert v.refusal("GET", "/x", h, NONCE, None) is None
    for t in (1001, 1015, 1000 + auth.WINDOW_S):
        v.clock_at[0] = t
        assert v.refusal("GET", "/x", h, NONCE, None) == "replayed"
    v.clock_at[0] = 1000 + auth.WINDOW_S + 1
    assert v.refusal("GET", "/x", h, NONCE, None) == "stale"
    # Nonces of requests long gone are forgotten (buckets dropped as they expire).
    for i in range(100):
        v.clock_at[0] = 2000 + i * 5
        n = f"{i:024x}"
        assert v.refusal("GET", "/x", auth.sign("s", "GET", "/x", n, now=2000 + i * 5), n, None) is None
    assert len(v.replays) <= 3 * auth.WINDOW_S // 5 + 1


def test_headers_for_tools_carry_the_body_digest():
    h = auth.headers("s", "POST", "/v/object", b'{"a":1}', now=1000)
    digest = hashlib.sha256(b'{"a":1}').hexdigest()
    assert h[auth.BODY_HEADER] == digest
    assert verifier().refusal("POST", "/v/object", h[auth.HEADER], h[auth.NONCE_HEADER], digest) is None
    assert auth.BODY_HEADER not in auth.headers("s", "GET", "/x")
    assert auth.headers("s", "GET", "/x")[auth.NONCE_HEADER] != auth.headers("s", "GET", "/x")[auth.NONCE_HEADER]


def _sealed(pieces: list[bytes], nonce: str = NONCE, secret: str = "s") -> tuple[bytes, auth.Seal]:
    seal = auth.Seal(secret, nonce)
    body = b"".join(blocks.frame(p) for p in pieces)
    seal_blocks(body, seal)
    return body + seal.frame(), seal


def _node_accepts(wire: bytes, nonce: str = NONCE) -> bool:
    """What the node does (storage/server.py put_fragment), on bytes."""
    seal, pos = auth.Seal("s", nonce), 0
    while pos + blocks.BLOCK_HEAD.size <= len(wire):
        head = wire[pos:pos + blocks.BLOCK_HEAD.size]
        if head[:4] == b"\xff\xff\xff\xff":
            mac = wire[pos + 12:pos + auth.SEAL.size]
            return head == auth.SEAL_HEAD and seal.matches(mac) and pos + auth.SEAL.size == len(wire)
        try:
            length, digest = blocks.parse_block_head(head)
        except blocks.CorruptBlock:
            return False
        data = wire[pos + 12:pos + 12 + length]
        if blocks.checksum(data) != digest:
            return False
        seal.add(head)
        pos += 12 + length
    return False                       # no seal


def test_a_sealed_body_is_accepted_and_every_kind_of_splice_refused():
    a, b, c = b"a" * 100, b"b" * 50, b"c" * 7
    wire, _ = _sealed([a, b, c])
    assert _node_accepts(wire)
    assert not _node_accepts(wire, nonce="f" * 24)                         # another request's seal
    assert not _node_accepts(_sealed([a, b, c], secret="other")[0])        # not the cluster's secret
    assert not _node_accepts(wire[:-auth.SEAL.size])                       # seal cut off
    assert not _node_accepts(wire + blocks.frame(b"x"))                    # a block after the seal
    ab, _ = _sealed([a, b])
    assert not _node_accepts(ab[:-auth.SEAL.size] + wire[-auth.SEAL.size:])   # last block dropped
    ba = blocks.frame(b) + blocks.frame(a) + blocks.frame(c) + wire[-auth.SEAL.size:]
    assert not _node_accepts(ba)                                           # blocks reordered
    other = blocks.frame(a) + blocks.frame(b"B" * 50) + blocks.frame(c) + wire[-auth.SEAL.size:]
    assert not _node_accepts(other)                                        # a block replaced (own xxh3)
    assert _node_accepts(_sealed([])[0])                                   # an empty fragment: the seal alone


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=5), st.integers(min_value=0), st.integers(0, 255))
def test_any_flipped_byte_of_a_sealed_body_is_refused(pieces, where, bit):
    wire, _ = _sealed(pieces)
    i = where % len(wire)
    bad = bytearray(wire)
    bad[i] ^= 1 << (bit % 8)
    assert not _node_accepts(bytes(bad))


def test_seal_blocks_refuses_a_partial_block():
    with pytest.raises(ValueError):
        seal_blocks(blocks.frame(b"abc")[:-1], auth.Seal("s", NONCE))


class _Transport:
    def __init__(self, sent: list[bytes]):
        self.sent = sent

    def is_closing(self) -> bool:
        return False

    def writelines(self, chunks) -> None:
        self.sent.append(b"".join(chunks))


class _Writer:
    """What SealedStream uses of aiohttp's StreamWriter."""

    def __init__(self):
        self.writes: list[bytes] = []
        self.transport = _Transport(self.writes)
        self.output_size = 0
        self.headers_sent = False

    def send_headers(self) -> None:
        self.headers_sent = True

    async def drain(self) -> None:
        pass

    async def write(self, chunk) -> None:
        self.writes.append(bytes(chunk))


async def _blocks(pieces: list[bytes]):
    for p in pieces:
        yield blocks.head(p), p


@pytest.mark.parametrize("promised, ok", [(0, True), (+1, False), (-1, False), (+12 + 5, False)])
def test_a_sealed_stream_keeps_its_promised_length_or_sends_no_seal(promised, ok):
    """A fragment stream with a Content-Length: each block's head and data
    written together, then the seal; a body longer or shorter than promised
    fails before the seal, so the node keeps nothing."""
    pieces = [b"a" * 100, b"b" * 100, b"c" * 7]
    exact = sum(len(blocks.frame(p)) for p in pieces)
    stream = SealedStream(_blocks(pieces), exact + promised, auth.Seal("s", NONCE))
    assert stream.size == exact + promised + auth.SEAL.size
    writer = _Writer()
    if ok:
        asyncio.run(stream.write(writer))
        assert writer.headers_sent and writer.writes[:3] == [blocks.frame(p) for p in pieces]
        assert writer.output_size == exact
        assert _node_accepts(b"".join(writer.writes))
    else:
        with pytest.raises(ValueError):
            asyncio.run(stream.write(writer))
        assert not _node_accepts(b"".join(writer.writes))
