from __future__ import annotations

import base64
import hashlib
import threading
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minis3.core import checksums as C
from minis3.core import errors as E

CHECK = b"123456789"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize("alg, value", [
    ("crc32", 0xCBF43926),
    ("crc32c", 0xE3069283),
    ("crc64nvme", 0xAE8B14860A799888),
])
def test_crc_check_values(alg, value):
    h = C.new(alg)
    h.update(CHECK)
    size = C.DIGEST_SIZES[alg]
    assert h.digest() == value.to_bytes(size, "big")
    assert len(h.digest()) == size
    assert h.b64() == _b64(value.to_bytes(size, "big"))


def test_known_b64_forms():
    # the forms S3/botocore show for b"123456789"
    assert C.compute("crc32", CHECK) == bytes.fromhex("cbf43926")
    h = C.new("crc32")
    h.update(CHECK)
    assert h.b64() == "y/Q5Jg=="
    h = C.new("crc32c")
    h.update(CHECK)
    assert h.b64() == "4waSgw=="


def test_empty_input():
    assert C.compute("crc32", b"") == b"\0\0\0\0"
    assert C.compute("crc32c", b"") == b"\0\0\0\0"
    assert C.compute("crc64nvme", b"") == b"\0" * 8
    assert C.compute("sha256", b"") == hashlib.sha256(b"").digest()
    assert C.compute("md5", b"") == hashlib.md5(b"").digest()


@pytest.mark.parametrize("alg", ["sha1", "sha256", "md5"])
def test_hashes(alg):
    assert C.compute(alg, CHECK) == hashlib.new(alg, CHECK).digest()
    h = C.new(alg)
    h.update(CHECK)
    assert h.hexdigest() == hashlib.new(alg, CHECK).hexdigest()


def test_agrees_with_botocore_checksums():
    from botocore import httpchecksum as hc
    for alg, cls in [("crc32", hc.CrtCrc32Checksum), ("crc32c", hc.CrtCrc32cChecksum),
                     ("sha1", hc.Sha1Checksum), ("sha256", hc.Sha256Checksum)]:
        b = cls()
        b.update(CHECK * 1000)
        h = C.new(alg)
        h.update(CHECK * 1000)
        assert h.b64() == b.b64digest(), alg
    b = hc.CrtCrc64NvmeChecksum()
    b.update(CHECK)
    h = C.new("crc64nvme")
    h.update(CHECK)
    assert h.b64() == b.b64digest()


@given(chunks=st.lists(st.binary(max_size=300), max_size=8))
def test_incremental_equals_one_shot(chunks):
    data = b"".join(chunks)
    for alg in C.ALGORITHMS + ("md5",):
        h = C.new(alg)
        for c in chunks:
            h.update(c)
        assert h.digest() == C.compute(alg, data), alg
    assert C.compute("crc32", data) == zlib.crc32(data).to_bytes(4, "big")


def test_accepts_buffers():
    for alg in C.ALGORITHMS:
        expected = C.compute(alg, CHECK)
        assert C.compute(alg, bytearray(CHECK)) == expected
        assert C.compute(alg, memoryview(b"xx" + CHECK)[2:]) == expected


def test_unknown_algorithm():
    with pytest.raises(ValueError):
        C.new("crc16")
    with pytest.raises(ValueError):
        C.BodyDigests(["xxhash"])


def test_names():
    assert C.ALGORITHMS == ("crc32", "crc32c", "crc64nvme", "sha1", "sha256")
    assert C.header_name("crc64nvme") == "x-amz-checksum-crc64nvme"
    assert C.ELEMENT_NAMES["crc64nvme"] == "ChecksumCRC64NVME"
    assert C.normalize_algorithm(" CRC32C ") == "crc32c"
    with pytest.raises(E.InvalidRequest):
        C.normalize_algorithm("MD5")


# ------------------------------------------------------------ headers

def _valid(alg: str) -> str:
    return _b64(C.compute(alg, CHECK))


def test_parse_checksum_headers_each():
    for alg in C.ALGORITHMS:
        v = _valid(alg)
        assert C.parse_checksum_headers({f"x-amz-checksum-{alg}": v, "host": "x"}) == {alg: v}
    assert C.parse_checksum_headers({}) == {}
    # not checksums
    assert C.parse_checksum_headers({"x-amz-checksum-type": "FULL_OBJECT",
                                     "x-amz-checksum-mode": "ENABLED",
                                     "x-amz-checksum-algorithm": "CRC32"}) == {}


def test_parse_checksum_headers_case_insensitive_names():
    v = _valid("crc32")
    assert C.parse_checksum_headers({"X-Amz-Checksum-CRC32": v}) == {"crc32": v}


def test_multiple_checksum_headers():
    with pytest.raises(E.InvalidRequest) as ei:
        C.parse_checksum_headers({"x-amz-checksum-crc32": _valid("crc32"),
                                  "x-amz-checksum-sha256": _valid("sha256")})
    assert "Expecting a single x-amz-checksum- header" in ei.value.message


@pytest.mark.parametrize("alg, value", [
    ("crc32", "not base64!"),
    ("crc32", "y/Q5Jg"),                      # missing padding
    ("crc32", _b64(b"\0" * 8)),               # wrong length
    ("crc32c", ""),
    ("crc64nvme", _b64(b"\0" * 4)),
    ("sha1", _b64(b"\0" * 32)),
    ("sha256", _b64(b"\0" * 20)),
    ("sha256", "é"),
])
def test_invalid_checksum_value(alg, value):
    with pytest.raises(E.InvalidRequest) as ei:
        C.parse_checksum_headers({f"x-amz-checksum-{alg}": value})
    assert ei.value.message == f"Value for x-amz-checksum-{alg} header is invalid."
    assert ei.value.status == 400


def test_content_md5():
    digest = hashlib.md5(b"hello").digest()
    assert C.content_md5(_b64(digest)) == digest
    assert C.content_md5(" " + _b64(digest) + " ") == digest
    for bad in ["", "zzz", _b64(digest)[:-2], _b64(b"\0" * 15), _b64(b"\0" * 17),
                hashlib.md5(b"hello").hexdigest(), "ü"]:
        with pytest.raises(E.InvalidDigest):
            C.content_md5(bad)


# ------------------------------------------------------------ BodyDigests

def test_body_digests():
    d = C.BodyDigests(["crc32c", "sha256", "sha256"])
    assert d.algorithms == ("md5", "crc32c", "sha256")
    d.update(b"1234")
    d.update(memoryview(b"56789"))
    d.update(bytearray())
    r = d.results()
    assert set(r) == {"md5", "crc32c", "sha256"}
    assert r["md5"] == hashlib.md5(CHECK).digest()
    assert r["crc32c"] == (0xE3069283).to_bytes(4, "big")
    assert r["sha256"] == hashlib.sha256(CHECK).digest()
    assert d.size == 9
    assert d.b64()["md5"] == _b64(hashlib.md5(CHECK).digest())


def test_body_digests_md5_only():
    d = C.BodyDigests()
    assert d.results() == {"md5": hashlib.md5(b"").digest()}


def test_body_digests_in_worker_threads():
    data = bytes(range(256)) * 4096  # 1 MiB
    d = C.BodyDigests(C.ALGORITHMS)

    def feed():
        for i in range(0, len(data), 65536):
            d.update(data[i:i + 65536])

    t = threading.Thread(target=feed)
    t.start()
    t.join()
    r = d.results()
    for alg in C.ALGORITHMS + ("md5",):
        assert r[alg] == C.compute(alg, data), alg
    assert d.size == len(data)
