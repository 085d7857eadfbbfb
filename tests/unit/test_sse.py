"""core/sse.py: the S3 API's encryption headers, a bucket's default encryption
and which encryption a new object gets, each case answered with the error
class and HTTP status AWS's S3 API reference gives it."""
from __future__ import annotations

import base64
import hashlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minis3.core import errors as E, sse

from .parser_support import value_or_s3_error

KEY = bytes(range(32))
KEY_B64 = base64.b64encode(KEY).decode()
KEY_MD5 = base64.b64encode(hashlib.md5(KEY).digest()).decode()
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_ARN = f"arn:aws:kms:us-west-2:111122223333:key/{KEY_ID}"
MRK_ID = "mrk-1234abcd12ab34cd56ef1234567890ab"


def customer(prefix: str = sse.CUSTOMER, **over) -> dict[str, str]:
    """SSE-C headers (lower-cased, as the frontend hands them over); ``over``
    replaces one (None: leaves it out)."""
    h = {"algorithm": "AES256", "key": KEY_B64, "key-md5": KEY_MD5}
    h.update(over)
    return {prefix + n: v for n, v in h.items() if v is not None}


def b64json(doc) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


def expect(exc: type[E.S3Error], code: str, status: int, fn, *args):
    with pytest.raises(exc) as info:
        fn(*args)
    assert info.value.code == code and info.value.status == status
    return info.value


# ----------------------------------------------------------------------------- SSE-C keys
def test_no_customer_headers_is_no_customer_key():
    assert sse.customer_key({}) is None
    assert sse.customer_key({"x-amz-server-side-encryption": "AES256"}) is None


@pytest.mark.parametrize("prefix", [sse.CUSTOMER, sse.COPY_SOURCE_CUSTOMER])
def test_a_valid_customer_key(prefix):
    got = sse.customer_key(customer(prefix), prefix)
    assert got == sse.CustomerKey(KEY, KEY_MD5)
    if prefix == sse.COPY_SOURCE_CUSTOMER:                   # a copy's source key is not the destination's
        assert sse.customer_key(customer(prefix)) is None


@pytest.mark.parametrize("missing, arg", [("algorithm", "algorithm"), ("key", "key"), ("key-md5", "key-MD5")])
def test_a_missing_customer_header_is_invalid_argument(missing, arg):
    err = expect(E.InvalidArgument, "InvalidArgument", 400, sse.customer_key, customer(**{missing: None}))
    assert err.extra["ArgumentName"] == sse.CUSTOMER + arg


@pytest.mark.parametrize("alg", ["aws:kms", "AES128", "aes256", ""])
def test_an_algorithm_other_than_aes256_is_invalid_encryption_algorithm(alg):
    expect(E.InvalidEncryptionAlgorithmError, "InvalidEncryptionAlgorithmError", 400,
           sse.customer_key, customer(algorithm=alg))


@pytest.mark.parametrize("raw", [bytes(16), bytes(31), bytes(33), b""])
def test_a_key_that_is_not_256_bits_is_invalid_argument(raw):
    md5 = base64.b64encode(hashlib.md5(raw).digest()).decode()
    err = expect(E.InvalidArgument, "InvalidArgument", 400, sse.customer_key,
                 customer(key=base64.b64encode(raw).decode(), **{"key-md5": md5}))
    assert "secret key was invalid" in err.message


@pytest.mark.parametrize("key", ["not base64!", KEY_B64[:-1], KEY_B64 + "=", "é" * 44])
def test_a_key_that_is_not_base64_is_invalid_argument(key):
    expect(E.InvalidArgument, "InvalidArgument", 400, sse.customer_key, customer(key=key))


@pytest.mark.parametrize("md5", [base64.b64encode(hashlib.md5(b"other").digest()).decode(),
                                 hashlib.md5(KEY).hexdigest(), "", "garbage"])
def test_an_md5_that_does_not_match_the_key_is_invalid_argument(md5):
    err = expect(E.InvalidArgument, "InvalidArgument", 400, sse.customer_key, customer(**{"key-md5": md5}))
    assert err.extra["ArgumentName"] == sse.CUSTOMER + "key-MD5"


def test_the_copy_source_key_is_checked_under_its_own_names():
    headers = customer(sse.COPY_SOURCE_CUSTOMER, **{"key-md5": "wrong"})
    err = expect(E.InvalidArgument, "InvalidArgument", 400, sse.customer_key, headers, sse.COPY_SOURCE_CUSTOMER)
    assert err.extra["ArgumentName"] == sse.COPY_SOURCE_CUSTOMER + "key-MD5"
    assert sse.customer_key(headers) is None          # the destination's headers are not the source's


# ----------------------------------------------------------------------------- a write's headers
def test_no_header_takes_the_default():
    assert sse.requested({}) is None
    assert sse.requested({"content-type": "text/plain"}) is None


@pytest.mark.parametrize("value", ["true", "false", "TRUE"])
def test_a_bucket_key_header_alone_changes_nothing(value):
    assert sse.requested({sse.BUCKET_KEY_HEADER: value}) is None


def test_sse_s3():
    assert sse.requested({sse.HEADER: "AES256"}) == sse.Encryption(sse.SSE_S3)


def test_sse_kms_with_key_context_and_bucket_key():
    got = sse.requested({sse.HEADER: "aws:kms", sse.KMS_KEY_HEADER: KEY_ARN,
                         sse.CONTEXT_HEADER: b64json({"project": "x"}), sse.BUCKET_KEY_HEADER: "True"})
    assert got == sse.Encryption(sse.SSE_KMS, kms_key=KEY_ARN, context={"project": "x"}, bucket_key=True)
    assert sse.requested({sse.HEADER: "aws:kms"}) == sse.Encryption(sse.SSE_KMS)
    assert sse.requested({sse.HEADER: "aws:kms", sse.BUCKET_KEY_HEADER: "false"}).bucket_key is False


def test_sse_c():
    assert sse.requested(customer()) == sse.Encryption(sse.SSE_C, customer=sse.CustomerKey(KEY, KEY_MD5))


@pytest.mark.parametrize("alg", ["AES256", "aws:kms"])
def test_sse_c_with_server_side_encryption_is_invalid_argument(alg):
    err = expect(E.InvalidArgument, "InvalidArgument", 400, sse.requested, {**customer(), sse.HEADER: alg})
    assert err.extra["ArgumentName"] == sse.HEADER


@pytest.mark.parametrize("extra", [{sse.KMS_KEY_HEADER: KEY_ID}, {sse.CONTEXT_HEADER: b64json({"a": "b"})}])
def test_sse_c_with_kms_headers_is_invalid_argument(extra):
    expect(E.InvalidArgument, "InvalidArgument", 400, sse.requested, {**customer(), **extra})


def test_a_bad_sse_c_key_is_answered_before_anything_else():
    expect(E.InvalidArgument, "InvalidArgument", 400, sse.requested, customer(key="!!"))


@pytest.mark.parametrize("alg", [None, "AES256"])
@pytest.mark.parametrize("name, value", [(sse.KMS_KEY_HEADER, KEY_ID), (sse.CONTEXT_HEADER, b64json({"a": "b"}))])
def test_kms_headers_without_aws_kms_are_invalid_argument(alg, name, value):
    headers = {name: value} if alg is None else {name: value, sse.HEADER: alg}
    err = expect(E.InvalidArgument, "InvalidArgument", 400, sse.requested, headers)
    assert "requires HTTP header x-amz-server-side-encryption : aws:kms" in err.message


@pytest.mark.parametrize("raw", ["not base64!", base64.b64encode(b"not json").decode(),
                                 base64.b64encode(b"\xff\xfe{}").decode(), b64json(["a", "b"]), b64json("s"),
                                 b64json({"a": 1}), b64json({"a": None}), b64json({"a": {"b": "c"}}),
                                 b64json({"a": ["b"]}), ""])
def test_an_invalid_encryption_context_is_invalid_argument(raw):
    err = expect(E.InvalidArgument, "InvalidArgument", 400, sse.requested,
                 {sse.HEADER: "aws:kms", sse.CONTEXT_HEADER: raw})
    assert err.extra["ArgumentName"] == sse.CONTEXT_HEADER


def test_a_deeply_nested_encryption_context_is_invalid_argument():
    raw = base64.b64encode(b"[" * 2000).decode()
    expect(E.InvalidArgument, "InvalidArgument", 400, sse.requested, {sse.HEADER: "aws:kms", sse.CONTEXT_HEADER: raw})


def test_dual_layer_encryption_is_not_implemented():
    expect(E.NotImplemented_, "NotImplemented", 501, sse.requested, {sse.HEADER: "aws:kms:dsse"})


@pytest.mark.parametrize("alg", ["aes256", "AES128", "aws:KMS", "", "SSE-C", "aws:kms "])
def test_an_unknown_algorithm_is_invalid_argument(alg):
    err = expect(E.InvalidArgument, "InvalidArgument", 400, sse.requested, {sse.HEADER: alg})
    assert err.extra["ArgumentName"] == sse.HEADER


@pytest.mark.parametrize("value", ["yes", "1", "", "truee"])
def test_a_bucket_key_header_not_true_or_false_is_invalid_argument(value):
    expect(E.InvalidArgument, "InvalidArgument", 400, sse.requested,
           {sse.HEADER: "aws:kms", sse.BUCKET_KEY_HEADER: value})


def test_an_unparseable_kms_key_id_is_kms_not_found():
    expect(E.KMSNotFound, "KMS.NotFoundException", 400, sse.requested,
           {sse.HEADER: "aws:kms", sse.KMS_KEY_HEADER: "my key"})


# ----------------------------------------------------------------------------- choose
S3_DEFAULT = sse.BucketDefault()
KMS_DEFAULT = sse.BucketDefault(sse.SSE_KMS, KEY_ARN, bucket_key=False)
KMS_BK_DEFAULT = sse.BucketDefault(sse.SSE_KMS, KEY_ARN, bucket_key=True)
UNBLOCKED = sse.BucketDefault(blocked=())


def test_a_new_bucket_is_sse_s3_with_sse_c_blocked():
    assert S3_DEFAULT.alg == sse.SSE_S3 and S3_DEFAULT.blocked == (sse.SSE_C,)
    assert sse.BucketDefault.from_record(None) == S3_DEFAULT
    assert sse.BucketDefault.from_record({}) == S3_DEFAULT
    for d in (S3_DEFAULT, KMS_BK_DEFAULT, UNBLOCKED):
        assert sse.BucketDefault.from_record(d.to_record()) == d


def test_no_header_takes_the_bucket_default():
    assert sse.choose(None, S3_DEFAULT) == sse.Encryption(sse.SSE_S3)
    assert sse.choose(None, UNBLOCKED) == sse.Encryption(sse.SSE_S3)
    assert sse.choose(None, KMS_DEFAULT) == sse.Encryption(sse.SSE_KMS, kms_key=KEY_ARN, bucket_key=False)
    assert sse.choose(None, KMS_BK_DEFAULT) == sse.Encryption(sse.SSE_KMS, kms_key=KEY_ARN, bucket_key=True)
    assert sse.choose(None, sse.BucketDefault(sse.SSE_KMS)) == sse.Encryption(sse.SSE_KMS, bucket_key=False)


def test_sse_c_in_a_bucket_that_blocks_it_is_access_denied():
    asked = sse.requested(customer())
    for default in (S3_DEFAULT, KMS_DEFAULT):
        expect(E.AccessDenied, "AccessDenied", 403, sse.choose, asked, default)


def test_sse_c_in_a_bucket_that_unblocked_it_is_allowed():
    asked = sse.requested(customer())
    assert sse.choose(asked, UNBLOCKED) == asked
    assert sse.choose(asked, sse.BucketDefault(sse.SSE_KMS, KEY_ARN, blocked=())) == asked


def test_a_header_wins_over_the_default():
    assert sse.choose(sse.Encryption(sse.SSE_S3), KMS_DEFAULT) == sse.Encryption(sse.SSE_S3)
    asked = sse.Encryption(sse.SSE_KMS, kms_key="alias/other")
    resolved = sse.Encryption(sse.SSE_KMS, kms_key="alias/other", bucket_key=False)   # no header: none
    assert sse.choose(asked, KMS_DEFAULT) == resolved
    assert sse.choose(asked, S3_DEFAULT) == resolved


def test_aws_kms_without_a_key_id_takes_the_buckets_kms_key():
    asked = sse.Encryption(sse.SSE_KMS, context={"a": "b"})
    assert sse.choose(asked, KMS_DEFAULT) == sse.Encryption(sse.SSE_KMS, kms_key=KEY_ARN, context={"a": "b"},
                                                            bucket_key=False)
    # A bucket whose default is not SSE-KMS names no key: the AWS managed key (resolved later).
    assert sse.choose(asked, S3_DEFAULT) == sse.Encryption(sse.SSE_KMS, context={"a": "b"}, bucket_key=False)
    assert sse.choose(asked, sse.BucketDefault(sse.SSE_KMS)).kms_key is None


def test_a_bucket_key_default_applies_to_an_aws_kms_write_that_says_nothing():
    assert sse.choose(sse.Encryption(sse.SSE_KMS), KMS_BK_DEFAULT).bucket_key is True
    assert sse.choose(sse.Encryption(sse.SSE_KMS, kms_key="alias/x"), KMS_BK_DEFAULT) == \
        sse.Encryption(sse.SSE_KMS, kms_key="alias/x", bucket_key=True)
    assert sse.choose(sse.Encryption(sse.SSE_KMS, bucket_key=True), KMS_DEFAULT).bucket_key is True


@pytest.mark.parametrize("key_header", [{}, {sse.KMS_KEY_HEADER: "alias/x"}])
def test_bucket_key_false_on_the_request_overrides_the_buckets_bucket_key(key_header):
    """S3 User Guide, "Configuring an S3 Bucket Key at the object level": a KMS
    write into a bucket with S3 Bucket Keys enabled uses them "unless you disable
    the keys in the request header"."""
    asked = sse.requested({sse.HEADER: "aws:kms", sse.BUCKET_KEY_HEADER: "false", **key_header})
    assert sse.choose(asked, KMS_BK_DEFAULT).bucket_key is False


# ----------------------------------------------------------------------------- KMS key names
@pytest.mark.parametrize("ref, expected", [
    (KEY_ID, sse.KmsRef("key", KEY_ID)),
    (KEY_ID.upper(), sse.KmsRef("key", KEY_ID.upper())),
    (MRK_ID, sse.KmsRef("key", MRK_ID)),
    (KEY_ARN, sse.KmsRef("key", KEY_ID, "us-west-2", "111122223333")),
    (f"arn:aws:kms:eu-west-1:111122223333:key/{MRK_ID}", sse.KmsRef("key", MRK_ID, "eu-west-1", "111122223333")),
    (f"arn:aws-cn:kms:cn-north-1:111122223333:key/{KEY_ID}", sse.KmsRef("key", KEY_ID, "cn-north-1", "111122223333")),
    ("alias/my-key", sse.KmsRef("alias", "my-key")),
    ("alias/aws/s3", sse.KmsRef("alias", "aws/s3")),
    ("alias/team_a/app-1", sse.KmsRef("alias", "team_a/app-1")),
    ("arn:aws:kms:us-east-2:111122223333:alias/my-key", sse.KmsRef("alias", "my-key", "us-east-2", "111122223333")),
])
def test_kms_references_s3_accepts(ref, expected):
    assert sse.parse_kms_ref(ref) == expected


@pytest.mark.parametrize("ref", [
    "", "my-key", "alias/", "alias", "1234abcd-12ab-34cd-56ef-1234567890a", KEY_ID + "0", "mrk-123",
    "mrk-1234ABCD12AB34CD56EF1234567890AB", f"arn:aws:kms:us-west-2:11112222333:key/{KEY_ID}",
    "arn:aws:kms:us-west-2:111122223333:key/my-key", "arn:aws:s3:::bucket", f"arn:aws:kms:us-west-2::key/{KEY_ID}",
    "alias/has space", "alias/" + "a" * 251, f" {KEY_ID}", f"{KEY_ID}\n",
])
def test_garbage_kms_references_are_kms_not_found(ref):
    expect(E.KMSNotFound, "KMS.NotFoundException", 400, sse.parse_kms_ref, ref)


@pytest.mark.parametrize("ref", ["alias/..", "alias/.", "alias/é", "alias/a.b"])
def test_alias_names_outside_kms_alphabet_are_kms_not_found(ref):
    expect(E.KMSNotFound, "KMS.NotFoundException", 400, sse.parse_kms_ref, ref)


# ----------------------------------------------------------------------------- the bucket's configuration
def config(rule: str, rules: int = 1) -> bytes:
    body = "".join(f"<Rule>{rule}</Rule>" for _ in range(rules))
    return (f'<ServerSideEncryptionConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{body}'
            "</ServerSideEncryptionConfiguration>").encode()


def by_default(alg: str, key: str | None = None) -> str:
    k = f"<KMSMasterKeyID>{key}</KMSMasterKeyID>" if key is not None else ""
    return f"<ApplyServerSideEncryptionByDefault><SSEAlgorithm>{alg}</SSEAlgorithm>{k}</ApplyServerSideEncryptionByDefault>"


def blocked(*types: str) -> str:
    return "<BlockedEncryptionTypes>" + "".join(f"<EncryptionType>{t}</EncryptionType>" for t in types) + \
        "</BlockedEncryptionTypes>"


@pytest.mark.parametrize("d", [
    sse.BucketDefault(), sse.BucketDefault(blocked=()), sse.BucketDefault(sse.SSE_KMS),
    sse.BucketDefault(sse.SSE_KMS, KEY_ARN, True), sse.BucketDefault(sse.SSE_KMS, "alias/my-key", False, ()),
    sse.BucketDefault(sse.SSE_KMS, MRK_ID, True, (sse.SSE_C,)),
])
def test_config_round_trip(d):
    body = sse.config_xml(d)
    assert body.startswith(b"<?xml") and b"<ServerSideEncryptionConfiguration" in body
    assert sse.parse_config(body) == d


def test_parse_config_reads_what_aws_documents():
    assert sse.parse_config(config(by_default("AES256"))) == sse.BucketDefault()
    assert sse.parse_config(config(by_default("aws:kms", KEY_ARN) + "<BucketKeyEnabled>true</BucketKeyEnabled>")) \
        == sse.BucketDefault(sse.SSE_KMS, KEY_ARN, True)
    assert sse.parse_config(config(by_default("AES256") + blocked("NONE"))).blocked == ()
    assert sse.parse_config(config(by_default("AES256") + blocked("SSE-C"))).blocked == (sse.SSE_C,)
    assert sse.parse_config(config(by_default("aws:kms"))) == sse.BucketDefault(sse.SSE_KMS)


def test_a_config_without_blocked_types_keeps_sse_c_blocked():
    assert sse.parse_config(config(by_default("AES256"))).blocked == (sse.SSE_C,)
    assert sse.parse_config(config(by_default("aws:kms", KEY_ID))).blocked == (sse.SSE_C,)


@pytest.mark.parametrize("body", [
    config("", rules=0),
    config(by_default("AES256"), rules=2),
    config(by_default("AES128")),
    config(by_default("aes256")),
    config(by_default("")),
    config(by_default("AES256") * 2),
    config("<ApplyServerSideEncryptionByDefault/>"),
    config("<ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm>"
           "<SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault>"),
    config(by_default("aws:kms", KEY_ID).replace("</Apply", f"<KMSMasterKeyID>{KEY_ID}</KMSMasterKeyID></Apply")),
    config(by_default("AES256") + blocked("SSE-C") + blocked("SSE-C")),
    config(by_default("AES256") + blocked("NONE", "SSE-C")),
    config(by_default("AES256") + blocked("SSE-C", "NONE")),
    config(by_default("AES256") + blocked()),
    config(by_default("AES256") + blocked("SSE-KMS")),
    config(by_default("AES256") + "<BucketKeyEnabled>yes</BucketKeyEnabled>"),
    config(by_default("AES256") + "<BucketKeyEnabled>true</BucketKeyEnabled>" * 2),
    config(by_default("AES256") + "<BucketKeyEnabled/>"),
    b"<ServerSideEncryptionConfiguration>",
    b"<Tagging><Rule/></Tagging>",
    b"",
    config(by_default("AES256")) + b" " * sse.MAX_CONFIG_BODY,
])
def test_malformed_configs_are_malformed_xml(body):
    expect(E.MalformedXML, "MalformedXML", 400, sse.parse_config, body)


def test_a_kms_master_key_id_with_aes256_is_invalid_argument():
    expect(E.InvalidArgument, "InvalidArgument", 400, sse.parse_config, config(by_default("AES256", KEY_ID)))


def test_a_garbage_kms_master_key_id_is_kms_not_found():
    expect(E.KMSNotFound, "KMS.NotFoundException", 400, sse.parse_config, config(by_default("aws:kms", "my key")))


def test_a_dual_layer_default_is_not_implemented():
    expect(E.NotImplemented_, "NotImplemented", 501, sse.parse_config, config(by_default("aws:kms:dsse")))


# ----------------------------------------------------------------------------- an object's answers
def test_response_headers_for_each_algorithm():
    assert sse.response_headers(None) == {}
    assert sse.response_headers({}) == {}
    assert sse.response_headers({"alg": "AES256", "wrap": "w"}) == {sse.HEADER: "AES256"}
    kms = {"alg": "aws:kms", "wrap": "w", "kms": KEY_ARN, "ctx": b64json({"a": "b"})}
    assert sse.response_headers(kms) == {sse.HEADER: "aws:kms", sse.KMS_KEY_HEADER: KEY_ARN}
    assert sse.response_headers(kms, context=True) == {sse.HEADER: "aws:kms", sse.KMS_KEY_HEADER: KEY_ARN,
                                                       sse.CONTEXT_HEADER: kms["ctx"]}
    assert sse.response_headers({**kms, "bk": True}) == {sse.HEADER: "aws:kms", sse.KMS_KEY_HEADER: KEY_ARN,
                                                         sse.BUCKET_KEY_HEADER: "true"}
    c = {"alg": "SSE-C", "wrap": "w", "salt": "s", "hmac": "h"}
    for ctx in (False, True):       # the key's MD5 is the request's: the record keeps none
        assert sse.response_headers(c, context=ctx, customer_md5=KEY_MD5) == {
            sse.CUSTOMER + "algorithm": "AES256", sse.CUSTOMER + "key-MD5": KEY_MD5}
    assert sse.response_headers(c) == {sse.CUSTOMER + "algorithm": "AES256"}


@pytest.mark.parametrize("name, value", [(sse.HEADER, "AES256"), (sse.HEADER, "aws:kms"),
                                         (sse.KMS_KEY_HEADER, KEY_ID), (sse.CONTEXT_HEADER, "e30=")])
def test_refuse_on_read(name, value):
    err = expect(E.InvalidArgument, "InvalidArgument", 400, sse.refuse_on_read, {name: value})
    assert err.extra == {"ArgumentName": name, "ArgumentValue": value}


def test_read_headers_that_are_allowed():
    sse.refuse_on_read({})
    sse.refuse_on_read(customer())                     # SSE-C reads give the key
    sse.refuse_on_read({sse.BUCKET_KEY_HEADER: "true", "range": "bytes=0-1"})


# ----------------------------------------------------------------------------- nothing else escapes
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
hostile = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200) | st.text("=,;/ :&%+\t\r\n\"'<>\\0aZ9-_.*", max_size=80)
near_config = st.builds(lambda a, b, c: f"<{a}>{b}</{c}>".encode(), hostile, hostile, hostile) | st.binary(max_size=400) | \
    st.builds(lambda alg, key, bk, types: config(by_default(alg, key) + f"<BucketKeyEnabled>{bk}</BucketKeyEnabled>"
                                                 + blocked(*types)).replace(b"&", b"&amp;"),
              st.sampled_from(["AES256", "aws:kms", "aws:kms:dsse"]) | hostile.filter(lambda s: "<" not in s),
              st.none() | st.sampled_from([KEY_ID, KEY_ARN, "alias/aws/s3"]) | hostile.filter(lambda s: "<" not in s),
              st.sampled_from(["true", "false"]) | hostile.filter(lambda s: "<" not in s),
              st.lists(st.sampled_from(["NONE", "SSE-C"]) | hostile.filter(lambda s: "<" not in s), max_size=3))
header_names = st.sampled_from([sse.HEADER, sse.KMS_KEY_HEADER, sse.CONTEXT_HEADER, sse.BUCKET_KEY_HEADER,
                                sse.CUSTOMER + "algorithm", sse.CUSTOMER + "key", sse.CUSTOMER + "key-md5"])
header_values = hostile | st.sampled_from(["AES256", "aws:kms", "aws:kms:dsse", KEY_ID, KEY_ARN, KEY_B64, KEY_MD5,
                                           "true", "false", b64json({"a": "b"}), b64json({"a": 1})]) | \
    st.binary(max_size=60).map(lambda b: base64.b64encode(b).decode())


@SETTINGS
@given(body=near_config)
def test_parse_config_answers_a_value_or_an_s3_error(body):
    value_or_s3_error(sse.parse_config, body)


@SETTINGS
@given(headers=st.dictionaries(header_names, header_values, max_size=7), default_blocked=st.booleans())
def test_request_headers_answer_a_value_or_an_s3_error(headers, default_blocked):
    value_or_s3_error(sse.requested, headers)
    value_or_s3_error(sse.refuse_on_read, headers)
    for prefix in (sse.CUSTOMER, sse.COPY_SOURCE_CUSTOMER):
        value_or_s3_error(sse.customer_key, {k.replace(sse.CUSTOMER, prefix): v for k, v in headers.items()}, prefix)
    try:
        asked = sse.requested(headers)
    except E.S3Error:
        return
    default = sse.BucketDefault(blocked=(sse.SSE_C,) if default_blocked else ())
    value_or_s3_error(sse.choose, asked, default)


@SETTINGS
@given(ref=hostile)
def test_kms_references_answer_a_value_or_an_s3_error(ref):
    value_or_s3_error(sse.parse_kms_ref, ref)
