"""core/seal.py: envelope keys and sealed segments. What must hold is that a
sealed segment opens only under its own data key, salt, segment number and tag;
that ciphertext is exactly as long as plaintext (offsets and fragment sizes do
not move); that ``peek`` reads GCM's counter stream where GCM itself puts it;
and that no two layouts ever encrypt under the same (key, nonce)."""
from __future__ import annotations

import base64
import hashlib
import os

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from minis3.core import seal

SIZES = [0, 1, 15, 16, 17, 4096, 1 << 20]


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


# ----------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("size", SIZES)
def test_a_segment_opens_to_its_plaintext_and_keeps_its_length(size):
    dk, plain = seal.new_key(), os.urandom(size)
    c = seal.LayoutCipher(dk)
    sealed = c.seal(0, plain)
    assert len(sealed) == len(plain)
    assert len(c.tags) == seal.TAG_BYTES
    if size >= 16:
        assert sealed != plain
    reopened = seal.LayoutCipher.of(dk, c.enc())
    assert reopened.open(0, sealed) == plain


def test_several_segments_each_open_under_their_own_tag():
    dk = seal.new_key()
    segments = [os.urandom(n) for n in (4096, 4096, 17, 0, 1000)]
    c = seal.LayoutCipher(dk)
    sealed = [c.seal(i, p) for i, p in enumerate(segments)]
    assert len(c.tags) == seal.TAG_BYTES * len(segments)
    reader = seal.LayoutCipher.of(dk, c.enc())
    for i, (s, p) in enumerate(zip(sealed, segments)):
        assert reader.open(i, s) == p
    # Two segments with the same plaintext use different nonces: different ciphertext.
    c2 = seal.LayoutCipher(dk)
    same = b"A" * 64
    assert c2.seal(0, same) != c2.seal(1, same)


def test_a_segment_opened_under_another_segment_number_is_refused():
    dk = seal.new_key()
    c = seal.LayoutCipher(dk)
    s0, s1 = c.seal(0, b"x" * 100), c.seal(1, b"y" * 100)
    with pytest.raises(seal.Unsealable):
        c.open(1, s0)
    with pytest.raises(seal.Unsealable):
        c.open(0, s1)


def test_a_segment_without_a_tag_is_refused():
    c = seal.LayoutCipher(seal.new_key())
    sealed = c.seal(0, b"data")
    with pytest.raises(seal.Unsealable):
        c.open(1, sealed)


# ----------------------------------------------------------------------------- what does not open
@pytest.mark.parametrize("at", [0, 1, 15, 16, 4095])
def test_a_flipped_ciphertext_byte_is_refused(at):
    dk = seal.new_key()
    c = seal.LayoutCipher(dk)
    sealed = c.seal(0, os.urandom(4096))
    with pytest.raises(seal.Unsealable):
        seal.LayoutCipher.of(dk, c.enc()).open(0, flip(sealed, at))


@pytest.mark.parametrize("at", [0, 7, 15])
def test_a_flipped_tag_byte_is_refused(at):
    dk = seal.new_key()
    c = seal.LayoutCipher(dk)
    sealed = c.seal(0, os.urandom(100))
    bad = seal.LayoutCipher(dk, c.salt, flip(bytes(c.tags), at))
    with pytest.raises(seal.Unsealable):
        bad.open(0, sealed)


def test_a_truncated_or_extended_segment_is_refused():
    dk = seal.new_key()
    c = seal.LayoutCipher(dk)
    sealed = c.seal(0, os.urandom(100))
    with pytest.raises(seal.Unsealable):
        c.open(0, sealed[:-1])
    with pytest.raises(seal.Unsealable):
        c.open(0, sealed + b"\0")


def test_the_wrong_data_key_is_refused():
    c = seal.LayoutCipher(seal.new_key())
    sealed = c.seal(0, b"secret" * 10)
    with pytest.raises(seal.Unsealable):
        seal.LayoutCipher.of(seal.new_key(), c.enc()).open(0, sealed)


def test_the_wrong_salt_is_refused():
    dk = seal.new_key()
    c = seal.LayoutCipher(dk)
    sealed = c.seal(0, b"secret" * 10)
    with pytest.raises(seal.Unsealable):
        seal.LayoutCipher(dk, os.urandom(seal.SALT_BYTES), bytes(c.tags)).open(0, sealed)


def test_sealing_out_of_order_is_refused():
    c = seal.LayoutCipher(seal.new_key())
    with pytest.raises(ValueError):
        c.seal(1, b"skips segment 0")
    c.seal(0, b"first")
    with pytest.raises(ValueError):
        c.seal(0, b"segment 0 again: its nonce would be used twice")
    with pytest.raises(ValueError):
        c.seal(2, b"skips segment 1")
    c.seal(1, b"second")
    assert len(c.tags) == 2 * seal.TAG_BYTES


# ----------------------------------------------------------------------------- layouts and nonces
def test_two_layouts_under_one_data_key_never_share_ciphertext():
    dk, plain = seal.new_key(), b"\0" * 4096
    a, b = seal.LayoutCipher(dk), seal.LayoutCipher(dk)
    assert a.salt != b.salt and len(a.salt) == seal.SALT_BYTES
    assert a.key != b.key
    assert a.seal(0, plain) != b.seal(0, plain)


def test_the_layout_key_depends_on_data_key_and_salt_only():
    dk, salt = seal.new_key(), os.urandom(seal.SALT_BYTES)
    assert seal.LayoutCipher(dk, salt).key == seal.LayoutCipher(dk, salt).key
    assert seal.LayoutCipher(dk, salt).key != dk
    assert seal.LayoutCipher(seal.new_key(), salt).key != seal.LayoutCipher(dk, salt).key


def test_the_record_keeps_salt_and_tags_in_base64():
    dk = seal.new_key()
    c = seal.LayoutCipher(dk)
    c.seal(0, b"a")
    c.seal(1, b"b")
    enc = c.enc()
    assert set(enc) == {"salt", "tags"}
    again = seal.LayoutCipher.of(dk, enc)
    assert again.salt == c.salt and bytes(again.tags) == bytes(c.tags) and again.key == c.key


# ----------------------------------------------------------------------------- peek
@pytest.mark.parametrize("segment", [0, 1, 7, 300])
def test_peek_at_every_offset_is_the_plaintext_slice(segment):
    dk, plain = seal.new_key(), os.urandom(100)
    c = seal.LayoutCipher(dk)
    for n in range(segment):
        c.seal(n, b"")
    sealed = c.seal(segment, plain)
    for offset in range(len(plain)):
        assert c.peek(segment, offset, sealed[offset:]) == plain[offset:], offset
        assert c.peek(segment, offset, sealed[offset:offset + 5]) == plain[offset:offset + 5], offset


def test_segment_n_is_aes_ctr_from_counter_block_nonce_and_2():
    """GCM's data keystream, stated independently: block i of segment n is
    AES(layout key, n as 12 bytes ‖ (2 + i) as 4 bytes), since J0 = nonce‖1 is
    kept for the tag. This is what makes ``peek`` (and a fragment's bytes) readable."""
    c = seal.LayoutCipher(seal.new_key())
    for n in range(4):
        plain = os.urandom(50)
        sealed = c.seal(n, plain)
        ecb = Cipher(algorithms.AES(c.key), modes.ECB()).encryptor()
        stream = b"".join(ecb.update(n.to_bytes(12, "big") + (2 + i).to_bytes(4, "big")) for i in range(4))
        assert bytes(a ^ b for a, b in zip(plain, stream)) == sealed


def test_peek_of_a_tampered_segment_returns_bytes_where_open_refuses():
    """peek checks no tag (that is its point, and why reads never use it)."""
    dk, plain = seal.new_key(), bytes(range(64))
    c = seal.LayoutCipher(dk)
    sealed = flip(c.seal(0, plain), 10)
    assert c.peek(0, 0, sealed) == flip(plain, 10)
    with pytest.raises(seal.Unsealable):
        c.open(0, sealed)


# ----------------------------------------------------------------------------- envelope
@pytest.mark.parametrize("aad", [b"", b"minis3 sse-s3 data key", b'{"aws:s3:arn":"arn:aws:s3:::b/k"}'])
def test_wrap_unwrap_round_trip(aad):
    kek, dk = seal.new_key(), seal.new_key()
    wrapped = seal.wrap(kek, dk, aad) if aad else seal.wrap(kek, dk)
    assert dk not in wrapped.encode() and seal.b64(dk) not in wrapped
    assert (seal.unwrap(kek, wrapped, aad) if aad else seal.unwrap(kek, wrapped)) == dk
    assert seal.wrap(kek, dk, aad) != wrapped            # a fresh nonce each time


def test_unwrap_refuses_the_wrong_aad_and_the_wrong_kek():
    kek, dk = seal.new_key(), seal.new_key()
    wrapped = seal.wrap(kek, dk, b"context A")
    with pytest.raises(seal.Unsealable):
        seal.unwrap(kek, wrapped, b"context B")
    with pytest.raises(seal.Unsealable):
        seal.unwrap(kek, wrapped)                           # no AAD where one was given
    with pytest.raises(seal.Unsealable):
        seal.unwrap(kek, seal.wrap(kek, dk), b"context A")  # AAD where none was given
    with pytest.raises(seal.Unsealable):
        seal.unwrap(seal.new_key(), wrapped, b"context A")


def test_unwrap_refuses_a_tampered_or_short_wrap():
    kek = seal.new_key()
    raw = base64.b64decode(seal.wrap(kek, seal.new_key()))
    for bad in (flip(raw, 0), flip(raw, 20), flip(raw, len(raw) - 1), raw[:-1], raw[:5], b""):
        with pytest.raises(seal.Unsealable):
            seal.unwrap(kek, seal.b64(bad))


# ----------------------------------------------------------------------------- SSE-C key check and ETag
def test_key_check_tells_the_right_customer_key_from_a_wrong_one():
    key = seal.new_key()
    salt, check = seal.key_check(key)
    assert seal.key_matches(key, salt, check)
    assert not seal.key_matches(seal.new_key(), salt, check)
    assert not seal.key_matches(key, seal.b64(os.urandom(seal.SALT_BYTES)), check)
    # Salted: the same key twice gives two different checks, neither of which shows the key.
    salt2, check2 = seal.key_check(key)
    assert (salt2, check2) != (salt, check)
    assert seal.b64(key) not in (salt, check, salt2, check2)
    # Deterministic for a given salt.
    raw_salt = os.urandom(seal.SALT_BYTES)
    assert seal.key_check(key, raw_salt) == seal.key_check(key, raw_salt)


def test_opaque_etag_is_not_the_md5_and_is_stable():
    dk, data = seal.new_key(), b"hello world"
    md5 = hashlib.md5(data).digest()
    etag = seal.opaque_etag(dk, md5)
    assert etag != md5.hex()
    assert len(etag) == 32 and int(etag, 16) >= 0
    assert seal.opaque_etag(dk, md5) == etag
    assert seal.opaque_etag(seal.new_key(), md5) != etag
    assert seal.opaque_etag(dk, hashlib.md5(b"other").digest()) != etag


def test_new_keys_are_256_bits_and_fresh():
    keys = {seal.new_key() for _ in range(16)}
    assert len(keys) == 16 and all(len(k) == seal.KEY_BYTES == 32 for k in keys)
