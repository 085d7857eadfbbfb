"""Encryption at rest, the cryptography alone: envelope keys and sealed segments.

Every encrypted object has its own random 256-bit **data key**. The data key
never lies anywhere in the clear: the object's record holds it *wrapped*
(AES-256-GCM) by a key-encrypting key, which is

* SSE-S3: the cluster's master key (frontend/keys.py: outside every storage
  node's and metadata replica's data directory);
* SSE-KMS: the named key of the local key service, with the encryption context
  as the wrap's additional authenticated data (a wrong context cannot unwrap);
* SSE-C: the customer's own key, which minis3 forgets after the request
  (the record keeps a salted HMAC of it, to tell a wrong key from a corrupt one).

The bytes are sealed **before erasure coding**, one segment at a time, so the
storage nodes, the scrubber and a rebuild only ever see ciphertext, and every
checksum below the frontend (segment xxh3, fragment block xxh3) is over ciphertext.
Each stored layout (an object's fragments, one part's, an inline payload) draws
a random 16-byte salt; its **layout key** is HMAC-SHA256(data key, salt), and
segment *n* is AES-256-GCM under that key with the 96-bit nonce *n*. A
(key, nonce) pair is never used twice, since no two layouts share a salt. The 16-byte GCM tags are kept
in the record (``enc.tags``), not beside the ciphertext, so a segment's
ciphertext is exactly as long as its plaintext and every offset, range and
fragment size stays what it was without encryption.

This module is pure (``cryptography`` computes; nothing here does I/O).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
TAG_BYTES = 16
SALT_BYTES = 16
WRAP_NONCE_BYTES = 12


class Unsealable(Exception):
    """A wrapped key or a sealed segment did not authenticate: the wrong key,
    the wrong context, or corrupt bytes."""


def new_key() -> bytes:
    """A fresh 256-bit key (a data key, a master key, a KMS key's material)."""
    return os.urandom(KEY_BYTES)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# ----------------------------------------------------------------------------- envelope
def wrap(kek: bytes, data_key: bytes, aad: bytes = b"") -> str:
    """``data_key`` sealed under the key-encrypting key ``kek`` (base64 of
    nonce, ciphertext and tag); ``aad`` must be given again to unwrap it."""
    nonce = os.urandom(WRAP_NONCE_BYTES)
    return b64(nonce + AESGCM(kek).encrypt(nonce, data_key, aad))


def unwrap(kek: bytes, wrapped: str, aad: bytes = b"") -> bytes:
    try:
        raw = base64.b64decode(wrapped, validate=True)
    except ValueError as exc:
        raise Unsealable("the wrapped key is not base64") from exc
    try:
        return AESGCM(kek).decrypt(raw[:WRAP_NONCE_BYTES], raw[WRAP_NONCE_BYTES:], aad)
    except (InvalidTag, ValueError) as exc:
        raise Unsealable("the key does not unwrap: wrong key-encrypting key or context") from exc


def key_check(customer_key: bytes, salt: bytes | None = None) -> tuple[str, str]:
    """A salted HMAC of a customer's key (SSE-C), and its salt: what S3 keeps
    to check the key of a later request, from which the key cannot be found."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    return b64(salt), b64(hmac.new(salt, customer_key, hashlib.sha256).digest())


def key_matches(customer_key: bytes, salt_b64: str, check_b64: str) -> bool:
    _, check = key_check(customer_key, base64.b64decode(salt_b64))
    return hmac.compare_digest(check, check_b64)


def opaque_etag(data_key: bytes, md5: bytes) -> str:
    """The ETag of an SSE-C or SSE-KMS object: S3 documents that it is *not*
    the MD5 of the data (an MD5 of the plaintext would tell anyone who guesses
    the content that they guessed right); minis3 keys it with the data key."""
    return hmac.new(data_key, b"etag" + md5, hashlib.md5).hexdigest()


# ----------------------------------------------------------------------------- segments
def _nonce(segment: int) -> bytes:
    return segment.to_bytes(12, "big")


class LayoutCipher:
    """Seals and opens the segments of one stored layout (``enc``: its salt and tags)."""

    __slots__ = ("key", "salt", "tags")

    def __init__(self, data_key: bytes, salt: bytes | None = None, tags: bytes = b""):
        self.salt = os.urandom(SALT_BYTES) if salt is None else salt
        self.key = hmac.new(data_key, b"minis3 layout key" + self.salt, hashlib.sha256).digest()
        self.tags = bytearray(tags)

    @classmethod
    def of(cls, data_key: bytes, enc: dict) -> "LayoutCipher":
        """The cipher of a stored layout, from its record's ``enc``."""
        return cls(data_key, base64.b64decode(enc["salt"]), base64.b64decode(enc["tags"]))

    def enc(self) -> dict:
        """What the record keeps: the salt and every segment's tag."""
        return {"salt": b64(self.salt), "tags": b64(bytes(self.tags))}

    def seal(self, segment: int, plaintext: bytes) -> bytes:
        """Segment ``segment`` (0, 1, 2... in order) sealed; its tag is kept."""
        if len(self.tags) != TAG_BYTES * segment:
            raise ValueError(f"segment {segment} sealed out of order")
        enc = Cipher(algorithms.AES(self.key), modes.GCM(_nonce(segment))).encryptor()
        out = enc.update(plaintext) + enc.finalize()
        self.tags += enc.tag
        return out

    def open(self, segment: int, ciphertext: bytes) -> bytes:
        """The plaintext of a whole sealed segment, once its tag authenticates it."""
        tag = bytes(self.tags[TAG_BYTES * segment:TAG_BYTES * (segment + 1)])
        if len(tag) != TAG_BYTES:
            raise Unsealable(f"segment {segment} has no tag")
        dec = Cipher(algorithms.AES(self.key), modes.GCM(_nonce(segment), tag)).decryptor()
        try:
            return dec.update(ciphertext) + dec.finalize()
        except InvalidTag as exc:
            raise Unsealable(f"segment {segment} does not authenticate") from exc

    def peek(self, segment: int, offset: int, ciphertext: bytes) -> bytes:
        """Bytes at ``offset`` within a sealed segment, decrypted WITHOUT checking
        the tag (GCM is counter mode underneath: the keystream of any offset can be
        computed). Only for showing a learner what a fragment holds (``minis3
        inspect``); never for serving a read."""
        block, skip = divmod(offset, 16)
        counter = _nonce(segment) + (2 + block).to_bytes(4, "big")   # GCM: J0 = nonce‖1, data from inc32(J0)
        dec = Cipher(algorithms.AES(self.key), modes.CTR(counter)).decryptor()
        return (dec.update(b"\0" * skip + ciphertext) + dec.finalize())[skip:]
