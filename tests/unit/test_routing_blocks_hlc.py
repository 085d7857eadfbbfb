"""Routing, block framing and the hybrid logical clock (internal auth: test_rpc_auth.py)."""
import pytest

from minis3.core.hlc import HLC, physical_ms
from minis3.frontend.routing import route
from minis3.storage import blocks

D = ("localhost", "s3.localhost")


def test_path_style():
    t = route("localhost:9000", "/bkt/a/b%20c", D)
    assert (t.bucket, t.key, t.virtual_host) == ("bkt", "a/b c", False)
    assert route("127.0.0.1:9000", "/bkt", D).key is None
    assert route("127.0.0.1:9000", "/bkt/", D).key is None
    assert route("127.0.0.1:9000", "/", D).bucket is None
    assert route("127.0.0.1:9000", "/bkt//x", D).key == "/x"


def test_virtual_host_style():
    t = route("my.bucket.localhost:9000", "/k%2Fey", D)
    assert (t.bucket, t.key, t.virtual_host) == ("my.bucket", "k/ey", True)
    t = route("bkt.s3.localhost", "/", D)
    assert (t.bucket, t.key) == ("bkt", None)
    assert route("[::1]:9000", "/bkt/k", D).bucket == "bkt"


def test_bad_utf8_in_path_is_refused():
    with pytest.raises(UnicodeDecodeError):
        route("localhost", "/bkt/%ff", D)


def test_block_framing_and_header():
    framed = blocks.frame(b"hello")
    length, digest = blocks.parse_block_head(framed[:12])
    assert length == 5 and digest == blocks.checksum(b"hello")
    head = blocks.file_header(3, {"object_id": "ab" * 16})
    idx, info, n = blocks.parse_file_header(head + b"rest")
    assert idx == 3 and info["object_id"] == "ab" * 16 and n == len(head)
    bad = bytearray(head)
    bad[20] ^= 1
    with pytest.raises(blocks.CorruptBlock):
        blocks.parse_file_header(bytes(bad))
    with pytest.raises(blocks.CorruptBlock):
        blocks.parse_block_head(blocks.BLOCK_HEAD.pack(blocks.MAX_BLOCK + 1, 0))


def test_hlc_is_monotonic_and_observes():
    wall = [1000]
    c = HLC(clock=lambda: wall[0])
    a, b = c.now(), c.now()
    assert b > a and physical_ms(a) == 1000
    wall[0] = 900                              # clock stepped back
    assert c.now() > b
    c.observe((5000 << 16) + 7)
    assert c.now() > (5000 << 16) + 7
