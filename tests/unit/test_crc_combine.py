import zlib

from awscrt import checksums as crt
from hypothesis import given, settings, strategies as st

from minis3.core.crc_combine import combine, combine_all

FULL = {"crc32": lambda b: zlib.crc32(b), "crc32c": lambda b: crt.crc32c(b), "crc64nvme": lambda b: crt.crc64nvme(b)}


@settings(max_examples=200, deadline=None)
@given(alg=st.sampled_from(sorted(FULL)), parts=st.lists(st.binary(max_size=300), min_size=1, max_size=6))
def test_combined_crc_equals_the_crc_of_the_concatenation(alg, parts):
    f = FULL[alg]
    assert combine_all(alg, [(f(p), len(p)) for p in parts]) == f(b"".join(parts))


def test_combine_with_large_lengths_matches():
    a, b = b"x" * 100_000, bytes(range(256)) * 3000
    for alg, f in FULL.items():
        assert combine(alg, f(a), f(b), len(b)) == f(a + b)
