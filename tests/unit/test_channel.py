"""core/channel: a channel's key and each message's MAC, which binds it to its
place in its direction's sequence."""
from __future__ import annotations

import pytest

from minis3.core.channel import (HEAD_BYTES, TO_ACCEPTOR, TO_OPENER, ChannelError, Receiver, Sender,
                                 channel_key, parse_salt)

A, B = b"a" * 16, b"b" * 16


def pair(direction=TO_ACCEPTOR, secret="s3cret"):
    key = channel_key(secret, A, B)
    return Sender(key, direction), Receiver(key, direction)


def test_messages_come_through_in_order_with_their_ids():
    tx, rx = pair()
    ids = (7, 3, 2**63)
    msgs = [tx.seal(i, b"payload %d" % i) for i in ids]
    assert [(i, bytes(p)) for i, p in map(rx.open, msgs)] == [(i, b"payload %d" % i) for i in ids]
    assert len(msgs[0]) == HEAD_BYTES + len(b"payload 7")


@pytest.mark.parametrize("where", [0, 8, HEAD_BYTES - 1, HEAD_BYTES, -1])
def test_a_changed_byte_anywhere_is_refused(where):
    tx, rx = pair()
    msg = bytearray(tx.seal(1, b"x" * 40))
    msg[where] ^= 1
    with pytest.raises(ChannelError):
        rx.open(bytes(msg))


def test_a_replayed_dropped_or_reordered_message_is_refused():
    tx, rx = pair()
    m0, m1, m2 = (tx.seal(i, b"same body") for i in range(3))
    rx.open(m0)
    with pytest.raises(ChannelError):
        rx.open(m0)                                   # replayed
    with pytest.raises(ChannelError):
        pair()[1].open(m1)                            # the first one dropped
    tx2, rx2 = pair()
    tx2.seal(1, b"one")
    with pytest.raises(ChannelError):
        rx2.open(tx2.seal(2, b"two"))                 # reordered: the second before the first
    assert rx.open(m1)[0] == 1 and rx.open(m2)[0] == 2     # the real order still opens


def test_a_message_is_bound_to_its_direction_and_its_key():
    tx, _ = pair(TO_ACCEPTOR)
    _, rx_back = pair(TO_OPENER)
    msg = tx.seal(1, b"call")
    with pytest.raises(ChannelError):
        rx_back.open(msg)                             # reflected back to its sender
    with pytest.raises(ChannelError):
        pair(secret="another")[1].open(msg)           # another cluster's secret
    other = Receiver(channel_key("s3cret", A, b"c" * 16), TO_ACCEPTOR)
    with pytest.raises(ChannelError):
        other.open(msg)                               # another channel's salts
    with pytest.raises(ChannelError):
        pair()[1].open(msg[:HEAD_BYTES - 1])          # shorter than a head


def test_salts_are_sixteen_bytes_of_hex():
    assert parse_salt("00" * 16) == bytes(16)
    for bad in (None, "", "zz" * 16, "00" * 15, "00" * 17):
        with pytest.raises(ChannelError):
            parse_salt(bad)
    with pytest.raises(ChannelError):
        channel_key("s", A, b"short")
