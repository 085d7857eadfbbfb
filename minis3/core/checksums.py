"""Every checksum S3 knows, computed incrementally.

S3 lets a client protect an upload with one additional checksum besides the
MD5 that makes the ETag: CRC32, CRC32C, CRC64NVME, SHA-1 or SHA-256, sent as an
``x-amz-checksum-<alg>`` header (or trailer) holding the base64 of the digest.
CRC digests are the big-endian bytes of the CRC value, so CRC32 of
``b"123456789"`` (0xCBF43926) is shown as ``"y/Q5Jg=="``.

No byte is touched by a Python loop: CRC32 comes from :func:`zlib.crc32`,
CRC32C and CRC64NVME from :mod:`awscrt.checksums`, SHA-1/SHA-256/MD5 from
:mod:`hashlib`. All of them release the GIL while they hash a large buffer, so
:meth:`BodyDigests.update` can be run in a worker thread
(``loop.run_in_executor`` / ``asyncio.to_thread``) and really runs in
parallel with the event loop. One object must not be updated from two threads
at once.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from collections.abc import Iterable, Mapping

from awscrt import checksums as _crt

from minis3.core import errors as E

#: The additional checksum algorithms S3 supports, by their lower-case name.
ALGORITHMS: tuple[str, ...] = ("crc32", "crc32c", "crc64nvme", "sha1", "sha256")

#: Size in bytes of each algorithm's digest.
DIGEST_SIZES: dict[str, int] = {
    "crc32": 4, "crc32c": 4, "crc64nvme": 8, "sha1": 20, "sha256": 32, "md5": 16,
}

#: The XML element / API member carrying each checksum (``ChecksumCRC32`` ...).
ELEMENT_NAMES: dict[str, str] = {
    "crc32": "ChecksumCRC32",
    "crc32c": "ChecksumCRC32C",
    "crc64nvme": "ChecksumCRC64NVME",
    "sha1": "ChecksumSHA1",
    "sha256": "ChecksumSHA256",
}

#: The value S3 uses for ``ChecksumAlgorithm`` / ``x-amz-checksum-algorithm``.
API_NAMES: dict[str, str] = {alg: alg.upper() for alg in ALGORITHMS}

HEADER_PREFIX = "x-amz-checksum-"


def header_name(alg: str) -> str:
    """``"crc32"`` -> ``"x-amz-checksum-crc32"``."""
    return HEADER_PREFIX + alg


def normalize_algorithm(value: str) -> str:
    """Map a client-given algorithm name (``"CRC32C"``, ``"sha256"``) to ours.

    Used for ``x-amz-sdk-checksum-algorithm`` / ``x-amz-checksum-algorithm``;
    anything unknown is S3's InvalidRequest.
    """
    alg = value.strip().lower()
    if alg not in ALGORITHMS:
        raise E.InvalidRequest(
            "Checksum algorithm provided is unsupported. Please try again with any of the "
            "valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]")
    return alg


class Hasher:
    """Incremental digest with a hashlib-like interface for one algorithm.

    Algorithms: the five of :data:`ALGORITHMS` plus ``"md5"``.
    """

    __slots__ = ("alg", "_crc", "_crc_fn", "_hash")

    def __init__(self, alg: str) -> None:
        if alg not in DIGEST_SIZES:
            raise ValueError(f"unknown checksum algorithm {alg!r}")
        self.alg = alg
        self._crc = 0
        self._crc_fn = None
        self._hash = None
        if alg == "crc32":
            self._crc_fn = zlib.crc32
        elif alg == "crc32c":
            self._crc_fn = _crt.crc32c
        elif alg == "crc64nvme":
            self._crc_fn = _crt.crc64nvme
        else:
            self._hash = hashlib.new(alg)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        if self._hash is not None:
            self._hash.update(data)
        else:
            self._crc = self._crc_fn(data, self._crc)

    def digest(self) -> bytes:
        if self._hash is not None:
            return self._hash.digest()
        return self._crc.to_bytes(DIGEST_SIZES[self.alg], "big")

    def b64(self) -> str:
        return base64.b64encode(self.digest()).decode("ascii")

    def hexdigest(self) -> str:
        return self.digest().hex()


def new(alg: str) -> Hasher:
    """A fresh :class:`Hasher` for ``alg`` (see :data:`ALGORITHMS`, or ``"md5"``)."""
    return Hasher(alg)


def compute(alg: str, data: bytes | bytearray | memoryview) -> bytes:
    """One-shot digest of ``data``."""
    h = Hasher(alg)
    h.update(data)
    return h.digest()


def _decode_b64(value: str, size: int) -> bytes | None:
    try:
        raw = base64.b64decode(value.strip().encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None
    return raw if len(raw) == size else None


def decode_checksum(alg: str, value: str) -> bytes:
    """Decode a base64 checksum value for ``alg``; S3's InvalidRequest if it is
    not valid base64 of a digest of the right length."""
    raw = _decode_b64(value, DIGEST_SIZES[alg])
    if raw is None:
        raise E.InvalidRequest(f"Value for {header_name(alg)} header is invalid.")
    return raw


def parse_checksum_headers(headers: Mapping[str, str], *, composite: bool = False) -> dict[str, str]:
    """The ``x-amz-checksum-<alg>`` headers present, as ``{alg: base64}``.

    Header names are matched case-insensitively. Other ``x-amz-checksum-*``
    headers (``-type``, ``-mode``, ``-algorithm``) are not checksums and are
    ignored here. S3 accepts one checksum per request: more than one is
    InvalidRequest; a value that isn't base64 of the algorithm's digest size is
    InvalidRequest "Value for x-amz-checksum-<alg> header is invalid.".
    """
    found: dict[str, str] = {}
    for name, value in headers.items():
        lname = name.lower()
        if not lname.startswith(HEADER_PREFIX):
            continue
        alg = lname[len(HEADER_PREFIX):]
        if alg not in ALGORITHMS:
            continue
        found[alg] = value.strip()
    if len(found) > 1:
        raise E.InvalidRequest(
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
    for alg, value in found.items():
        base, dash, parts = value.partition("-")
        if composite and dash:
            # A COMPOSITE multipart object's checksum: base64-N (N parts), as
            # SDKs send it on CompleteMultipartUpload.
            if not (parts.isascii() and parts.isdigit() and 1 <= int(parts) <= 10_000):
                raise E.InvalidRequest(f"Value for {header_name(alg)} header is invalid.")
            decode_checksum(alg, base)
        else:
            decode_checksum(alg, value)
    return found


def content_md5(header: str) -> bytes:
    """Decode a ``Content-MD5`` header (base64 of 16 bytes); else InvalidDigest."""
    raw = _decode_b64(header, 16)
    if raw is None:
        raise E.InvalidDigest()
    return raw


class BodyDigests:
    """Feed a request body once, get every digest the request needs.

    ``algorithms`` is any iterable of names from :data:`ALGORITHMS` plus
    ``"md5"``; ``"md5"`` is always included (it makes the ETag). Add
    ``"sha256"`` when ``x-amz-content-sha256`` must be verified (a duplicate
    with a requested SHA-256 checksum is computed once).
    """

    __slots__ = ("_hashers", "size")

    def __init__(self, algorithms: Iterable[str] = ()) -> None:
        wanted = ["md5"]
        for alg in algorithms:
            if alg not in DIGEST_SIZES:
                raise ValueError(f"unknown checksum algorithm {alg!r}")
            if alg not in wanted:
                wanted.append(alg)
        self._hashers = [Hasher(a) for a in wanted]
        self.size = 0

    @property
    def algorithms(self) -> tuple[str, ...]:
        return tuple(h.alg for h in self._hashers)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Hash ``data`` with every algorithm. Safe to call from a worker thread
        (one caller at a time); the hash functions drop the GIL on big buffers."""
        for h in self._hashers:
            h.update(data)
        self.size += len(data) if not isinstance(data, memoryview) else data.nbytes

    def results(self) -> dict[str, bytes]:
        """``{alg: digest bytes}`` for every algorithm, ``"md5"`` included."""
        return {h.alg: h.digest() for h in self._hashers}

    def b64(self) -> dict[str, str]:
        """Same as :meth:`results`, base64-encoded as S3 shows checksums."""
        return {h.alg: h.b64() for h in self._hashers}
