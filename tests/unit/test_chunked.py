"""Tests for minis3.core.chunked.AwsChunkedDecoder.

Known answers: the chunked PUT example of the S3 API reference ("Signature
Calculations for the Authorization Header: Transferring Payload in Multiple
Chunks": 64 KiB + 1 KiB of 'a', seed 4f232c43...) and the trailing-headers
example ("... Including Trailing Headers": seed 106e2a8a..., trailer
x-amz-checksum-crc32c:sOO8/Q==). Other bodies are built here with the sigv4
step functions, or produced by botocore's own AwsChunkedWrapper.
"""
from __future__ import annotations

import base64
import hashlib
import io
import zlib

import pytest
from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minis3.core import errors as E
from minis3.core import sigv4 as S
from minis3.core.chunked import AwsChunkedDecoder

SK = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AMZ_DATE = "20130524T000000Z"
SCOPE = "20130524/us-east-1/s3/aws4_request"
KEY = S.signing_key(SK, "20130524", "us-east-1")

DOC_SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
DOC_SIGS = ["ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
            "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
            "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"]
DOC_TRAILER_SEED = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
DOC_TRAILER_SIGS = ["b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
                    "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
                    "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992"]
DOC_TRAILER_SIG = "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"
DOC_PAYLOAD = b"a" * 66560


def doc_body(sigs=DOC_SIGS, trailer: bytes = b"") -> bytes:
    return (f"10000;chunk-signature={sigs[0]}\r\n".encode() + b"a" * 65536 + b"\r\n"
            + f"400;chunk-signature={sigs[1]}\r\n".encode() + b"a" * 1024 + b"\r\n"
            + f"0;chunk-signature={sigs[2]}\r\n".encode() + trailer + b"\r\n")


DOC_TRAILER = f"x-amz-checksum-crc32c:sOO8/Q==\r\nx-amz-trailer-signature:{DOC_TRAILER_SIG}\r\n".encode()


def signed_decoder(seed=DOC_SEED, trailer=False, **kw) -> AwsChunkedDecoder:
    return AwsChunkedDecoder(signed=True, trailer=trailer, signing_key=KEY, seed_signature=seed,
                             amz_date=AMZ_DATE, scope=SCOPE, **kw)


def decode(decoder: AwsChunkedDecoder, body: bytes, step: int | None = None) -> bytes:
    out = []
    if step is None:
        out += decoder.feed(body)
    else:
        for i in range(0, len(body), step):
            out += decoder.feed(body[i:i + step])
    decoder.finish()
    return b"".join(out)


# --------------------------------------------------------------------------
# Body builders (signatures from the sigv4 step functions)
# --------------------------------------------------------------------------

def build_body(chunks: list[bytes], *, signed: bool, trailers: list[tuple[str, str]] | None,
               seed: str = DOC_SEED, trailer_sig_override: str | None = None) -> bytes:
    """Encode ``chunks`` (plus the final 0-size chunk) as aws-chunked."""
    out = bytearray()
    prev = seed
    for data in list(chunks) + [b""]:
        if signed:
            prev = S.signature(KEY, S.chunk_string_to_sign(AMZ_DATE, SCOPE, prev,
                                                            hashlib.sha256(data).hexdigest()))
            out += f"{len(data):x};chunk-signature={prev}\r\n".encode()
        else:
            out += f"{len(data):x}\r\n".encode()
        if data:
            out += data + b"\r\n"
    if trailers is not None:
        canon = b"".join(f"{k}:{v}\n".encode() for k, v in trailers)
        out += b"".join(f"{k}:{v}\r\n".encode() for k, v in trailers)
        if signed:
            tsig = S.signature(KEY, S.trailer_string_to_sign(AMZ_DATE, SCOPE, prev, canon))
            out += f"x-amz-trailer-signature:{trailer_sig_override or tsig}\r\n".encode()
    out += b"\r\n"
    return bytes(out)


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


# --------------------------------------------------------------------------
# AWS examples
# --------------------------------------------------------------------------

@pytest.mark.parametrize("step", [None, 1, 7, 8192, 65536 + 90])
def test_doc_signed_example(step):
    d = signed_decoder()
    assert decode(d, doc_body(), step) == DOC_PAYLOAD
    assert d.done and d.decoded_length == 66560 and d.trailers == {}


def test_doc_signed_example_chunk_signatures_from_steps():
    prev = DOC_SEED
    for data, expected in zip([b"a" * 65536, b"a" * 1024, b""], DOC_SIGS):
        prev = S.signature(KEY, S.chunk_string_to_sign(AMZ_DATE, SCOPE, prev, hashlib.sha256(data).hexdigest()))
        assert prev == expected
    assert build_body([b"a" * 65536, b"a" * 1024], signed=True, trailers=None) == doc_body()


@pytest.mark.parametrize("which", [0, 1, 2])
def test_doc_wrong_chunk_signature(which):
    sigs = list(DOC_SIGS)
    sigs[which] = sigs[which][:-1] + ("0" if sigs[which][-1] != "0" else "1")
    d = signed_decoder()
    with pytest.raises(E.SignatureDoesNotMatch):
        decode(d, doc_body(sigs))
    with pytest.raises(E.SignatureDoesNotMatch):   # the error sticks
        d.finish()


def test_doc_corrupted_data_rejected():
    body = bytearray(doc_body())
    second = body.index(b"\n", body.index(b"400;chunk-signature")) + 1
    body[second + 1023] = ord("b")          # last byte of the second chunk's data
    with pytest.raises(E.SignatureDoesNotMatch):
        decode(signed_decoder(), bytes(body))


def test_doc_wrong_seed_rejected():
    with pytest.raises(E.SignatureDoesNotMatch):
        decode(signed_decoder(seed=DOC_TRAILER_SEED), doc_body())


@pytest.mark.parametrize("step", [None, 1, 1000])
def test_doc_signed_trailer_example(step):
    d = signed_decoder(seed=DOC_TRAILER_SEED, trailer=True)
    assert decode(d, doc_body(DOC_TRAILER_SIGS, DOC_TRAILER), step) == DOC_PAYLOAD
    assert d.trailers == {"x-amz-checksum-crc32c": "sOO8/Q=="}
    assert d.done


def test_doc_signed_trailer_signature_from_steps():
    sig = S.signature(KEY, S.trailer_string_to_sign(AMZ_DATE, SCOPE, DOC_TRAILER_SIGS[2],
                                                    b"x-amz-checksum-crc32c:sOO8/Q==\n"))
    assert sig == DOC_TRAILER_SIG


def test_doc_signed_trailer_bad_signature_or_value():
    bad_sig = DOC_TRAILER.replace(b"signature:d81f", b"signature:0000")
    with pytest.raises(E.SignatureDoesNotMatch):
        decode(signed_decoder(seed=DOC_TRAILER_SEED, trailer=True), doc_body(DOC_TRAILER_SIGS, bad_sig))
    bad_value = DOC_TRAILER.replace(b"sOO8/Q==", b"sOO8/Q=A")
    with pytest.raises(E.SignatureDoesNotMatch):
        decode(signed_decoder(seed=DOC_TRAILER_SEED, trailer=True), doc_body(DOC_TRAILER_SIGS, bad_value))


def test_doc_signed_trailer_missing_signature():
    no_sig = b"x-amz-checksum-crc32c:sOO8/Q==\r\n"
    with pytest.raises(E.IncompleteBody):
        decode(signed_decoder(seed=DOC_TRAILER_SEED, trailer=True), doc_body(DOC_TRAILER_SIGS, no_sig))


def test_signed_trailer_blank_line_before_signature_tolerated():
    variant = DOC_TRAILER.replace(b"\r\nx-amz-trailer-signature", b"\n\r\nx-amz-trailer-signature")
    d = signed_decoder(seed=DOC_TRAILER_SEED, trailer=True)
    assert decode(d, doc_body(DOC_TRAILER_SIGS, variant)) == DOC_PAYLOAD


# --------------------------------------------------------------------------
# Bodies built here
# --------------------------------------------------------------------------

def test_built_signed_with_trailer():
    chunks = [b"hello ", b"world" * 1000, b"!"]
    payload = b"".join(chunks)
    trailers = [("x-amz-checksum-crc32", crc32_b64(payload))]
    body = build_body(chunks, signed=True, trailers=trailers)
    for step in (None, 1, 13):
        d = signed_decoder(trailer=True)
        assert decode(d, body, step) == payload
        assert d.trailers == {"x-amz-checksum-crc32": crc32_b64(payload)}
    wrong = build_body(chunks, signed=True, trailers=trailers, trailer_sig_override="0" * 64)
    with pytest.raises(E.SignatureDoesNotMatch):
        decode(signed_decoder(trailer=True), wrong)


def test_built_unsigned_with_trailer():
    payload = b"0123456789" * 500
    body = build_body([payload[:3000], payload[3000:]], signed=False,
                      trailers=[("x-amz-checksum-crc32", crc32_b64(payload))])
    d = AwsChunkedDecoder(signed=False, trailer=True)
    assert decode(d, body, 5) == payload
    assert d.trailers == {"x-amz-checksum-crc32": crc32_b64(payload)}
    assert d.decoded_length == len(payload)


def test_botocore_aws_chunked_wrapper_output():
    """What boto3 actually sends for put_object (STREAMING-UNSIGNED-PAYLOAD-TRAILER)."""
    payload = bytes(range(256)) * 300
    wrapped = AwsChunkedWrapper(io.BytesIO(payload), checksum_cls=Crc32Checksum,
                                checksum_name="x-amz-checksum-crc32", chunk_size=10000).read()
    assert wrapped.endswith(f"0\r\nx-amz-checksum-crc32:{crc32_b64(payload)}\r\n\r\n".encode())
    d = AwsChunkedDecoder(signed=False, trailer=True)
    assert decode(d, wrapped, 4096) == payload
    assert d.trailers["x-amz-checksum-crc32"] == crc32_b64(payload)
    # ... and without a checksum: "0\r\n\r\n".
    plain = AwsChunkedWrapper(io.BytesIO(payload), chunk_size=65536).read()
    assert decode(AwsChunkedDecoder(signed=False, trailer=True), plain) == payload


def test_js_sdk_v3_end_without_final_crlf():
    """@smithy/util-stream getAwsChunkedEncodingStream sends "0\\r\\n" and stops
    when there is no checksum."""
    body = b"5\r\nhello\r\n0\r\n"
    d = AwsChunkedDecoder(signed=False, trailer=True)
    assert decode(d, body) == b"hello" and d.done
    d = AwsChunkedDecoder(signed=False, trailer=False)
    assert decode(d, body) == b"hello"
    # With a checksum it sends the trailer and the final CRLF.
    body = b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:" + crc32_b64(b"hello").encode() + b"\r\n\r\n"
    d = AwsChunkedDecoder(signed=False, trailer=True)
    assert decode(d, body, 1) == b"hello" and d.trailers["x-amz-checksum-crc32"] == crc32_b64(b"hello")


def test_signed_mode_requires_final_crlf():
    body = doc_body()[:-2]
    with pytest.raises(E.IncompleteBody):
        decode(signed_decoder(), body)


def test_empty_payload():
    assert decode(AwsChunkedDecoder(signed=False, trailer=False), b"0\r\n\r\n") == b""
    assert decode(signed_decoder(), build_body([], signed=True, trailers=None)) == b""


# --------------------------------------------------------------------------
# Truncation and malformed framing
# --------------------------------------------------------------------------

@pytest.mark.parametrize("signed,trailer", [(True, False), (True, True), (False, True), (False, False)])
def test_every_truncation_is_incomplete(signed, trailer):
    chunks = [b"abc", b"defgh"]
    trailers = [("x-amz-checksum-crc32", crc32_b64(b"abcdefgh"))] if trailer else None
    body = build_body(chunks, signed=signed, trailers=trailers)
    zero_line_end = body.index(b"\n", body.index(b"\n0") + 1) + 1   # just after the 0-size chunk line
    for cut in range(len(body)):
        d = signed_decoder(trailer=trailer) if signed else AwsChunkedDecoder(signed=False, trailer=trailer)
        d.feed(body[:cut])
        if not signed and cut == zero_line_end:
            d.finish()          # JS SDK leniency: "...0\r\n" then EOF
            assert d.done
            continue
        with pytest.raises(E.IncompleteBody):
            d.finish()
        assert not d.done


@pytest.mark.parametrize("body", [
    b"zz\r\nab\r\n0\r\n\r\n",                   # not hex
    b"\r\n",                                    # empty size
    b"-1\r\n",                                  # sign
    b"3\r\nabcd\r\n0\r\n\r\n",                  # data longer than announced
    b"3\r\nabXY",                               # no CRLF after data
    b"3\r\nab\rc\r\n",                          # CR but no LF
    b"11111111111111111\r\n",                   # too many digits
    b"1000001\r\n",                             # above max_chunk_size (16 MiB)
    b"3" * 5000,                                # header line never ends
    b"0\r\nx-amz-checksum-crc32\r\n\r\n",      # trailer without ':'
    b"0\r\n\r\nextra",                          # data after the end
])
def test_malformed_unsigned(body):
    d = AwsChunkedDecoder(signed=False, trailer=True)
    with pytest.raises(E.InvalidRequest):
        d.feed(body)


def test_malformed_signed():
    with pytest.raises(E.InvalidRequest):      # chunk-signature missing
        signed_decoder().feed(b"3\r\nabc\r\n")
    with pytest.raises(E.InvalidRequest):      # trailers where none were announced
        signed_decoder().feed(build_body([b"x"], signed=True, trailers=None)[:-2] + b"a:b\r\n\r\n")


def test_stray_line_ends_after_end_tolerated():
    d = AwsChunkedDecoder(signed=False, trailer=False)
    assert d.feed(b"1\r\nx\r\n0\r\n\r\n\r\n") == [b"x"]
    d.finish()


def test_max_chunk_size_parameter():
    d = AwsChunkedDecoder(signed=False, trailer=False, max_chunk_size=4)
    assert d.feed(b"4\r\nabcd\r\n") == [b"abcd"]
    with pytest.raises(E.InvalidRequest):
        d.feed(b"5\r\n")


def test_signed_requires_context():
    with pytest.raises(ValueError):
        AwsChunkedDecoder(signed=True, trailer=False)


def test_data_is_released_as_it_arrives():
    """A 1 MiB chunk fed in 64 KiB pieces comes back piece by piece."""
    payload = b"z" * (1 << 20)
    body = build_body([payload], signed=True, trailers=None)
    d = signed_decoder()
    header_len = body.index(b"\n") + 1
    assert d.feed(body[:header_len]) == []
    got = 0
    for i in range(header_len, header_len + len(payload), 65536):
        pieces = d.feed(body[i:i + 65536])
        assert sum(map(len, pieces)) == min(65536, header_len + len(payload) - i)
        got += sum(map(len, pieces))
    assert got == len(payload)
    d.feed(body[header_len + len(payload):])
    d.finish()
    assert d.decoded_length == len(payload)


# --------------------------------------------------------------------------
# Property: splitting the input never changes the result
# --------------------------------------------------------------------------

@st.composite
def bodies(draw):
    signed = draw(st.booleans())
    trailer = draw(st.booleans())
    chunks = draw(st.lists(st.binary(min_size=1, max_size=300), max_size=5))
    payload = b"".join(chunks)
    trailers = None
    if trailer:
        trailers = [("x-amz-checksum-crc32", crc32_b64(payload))]
        if draw(st.booleans()):
            trailers.append(("x-amz-meta-extra", draw(st.from_regex(r"[A-Za-z0-9+/=]{0,20}", fullmatch=True))))
    body = build_body(chunks, signed=signed, trailers=trailers)
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=12)))
    return signed, trailer, payload, trailers, body, cuts


def _make(signed, trailer):
    return signed_decoder(trailer=trailer) if signed else AwsChunkedDecoder(signed=False, trailer=trailer)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies())
def test_split_points_do_not_matter(case):
    signed, trailer, payload, trailers, body, cuts = case
    whole = _make(signed, trailer)
    out_whole = b"".join(whole.feed(body))
    whole.finish()

    split = _make(signed, trailer)
    out = []
    bounds = [0] + cuts + [len(body)]
    for a, b in zip(bounds, bounds[1:]):
        out += split.feed(body[a:b])
    split.finish()

    assert out_whole == b"".join(out) == payload
    assert whole.trailers == split.trailers == dict(trailers or [])
    assert whole.decoded_length == split.decoded_length == len(payload)
    assert whole.done and split.done


@settings(max_examples=200, deadline=None)
@given(st.booleans(), st.booleans(), st.binary(max_size=200), st.lists(st.integers(0, 200), max_size=6))
def test_garbage_only_raises_s3_errors(signed, trailer, junk, cuts):
    d = _make(signed, trailer)
    bounds = [0] + sorted(c for c in cuts if c <= len(junk)) + [len(junk)]
    try:
        for a, b in zip(bounds, bounds[1:]):
            d.feed(junk[a:b])
        d.finish()
    except E.S3Error:
        pass


@settings(max_examples=100, deadline=None)
@given(bodies(), st.integers(0, 10_000), st.integers(0, 255))
def test_any_single_byte_change_is_caught_in_signed_mode(case, where, value):
    signed, trailer, payload, trailers, body, _ = case
    if not signed:
        return
    i = where % len(body)
    if body[i] == value:
        return
    mutated = body[:i] + bytes([value]) + body[i + 1:]
    d = _make(signed, trailer)
    try:
        out = b"".join(d.feed(mutated))
        d.finish()
    except E.S3Error:
        return
    # Only harmless framing changes may pass (e.g. CR dropped to a bare LF
    # is not possible with a one-byte substitution); the payload must be intact.
    assert out == payload and d.trailers == dict(trailers or [])
