"""CRC of a concatenation from the parts' CRCs, without the parts' bytes.

A multipart upload's FULL_OBJECT checksum (CRC32, CRC32C, CRC64NVME) is the
CRC of the whole object. S3 computes it from the parts' CRCs and lengths, and
so does minis3 at CompleteMultipartUpload: no byte is read again.

For these reflected CRCs (initial value and final XOR all ones),
``crc(A + B) = crc(A) · x^(8·len(B)) mod P  xor  crc(B)``, arithmetic in
GF(2)[x] modulo the CRC's polynomial P. This is zlib's ``crc32_combine``
(multmodp / x2nmodp), written for any width.
"""
from __future__ import annotations

from functools import lru_cache

#: Reflected polynomials and widths.
POLYNOMIALS = {"crc32": (0xEDB88320, 32), "crc32c": (0x82F63B78, 32), "crc64nvme": (0x9A6C9329AC4BC9B5, 64)}


def _multmodp(a: int, b: int, poly: int, width: int) -> int:
    """a · b mod P, both reflected (the top bit is x^0)."""
    m = 1 << (width - 1)
    p = 0
    while True:
        if a & m:
            p ^= b
            if a & (m - 1) == 0:
                return p
        m >>= 1
        b = (b >> 1) ^ poly if b & 1 else b >> 1


@lru_cache(maxsize=None)
def _x2n_table(poly: int, width: int) -> tuple[int, ...]:
    """x^(2^k) mod P for k = 0..63."""
    t = [1 << (width - 2)]                    # x^1
    for _ in range(63):
        t.append(_multmodp(t[-1], t[-1], poly, width))
    return tuple(t)


def _x8nmodp(n: int, poly: int, width: int) -> int:
    """x^(8·n) mod P: n zero bytes' worth of shifting."""
    table = _x2n_table(poly, width)
    p, k = 1 << (width - 1), 3               # x^0; 8 = 2^3
    while n:
        if n & 1:
            p = _multmodp(table[k % 64], p, poly, width)
        n >>= 1
        k += 1
    return p


def combine(alg: str, crc_a: int, crc_b: int, len_b: int) -> int:
    """The CRC of A + B, given CRC(A), CRC(B) and len(B)."""
    poly, width = POLYNOMIALS[alg]
    if len_b == 0:
        return crc_a
    return _multmodp(_x8nmodp(len_b, poly, width), crc_a, poly, width) ^ crc_b


def combine_all(alg: str, parts: list[tuple[int, int]]) -> int:
    """The CRC of the concatenation of parts given as (crc, length)."""
    crc = 0
    for c, n in parts:
        crc = combine(alg, crc, c, n)
    return crc
