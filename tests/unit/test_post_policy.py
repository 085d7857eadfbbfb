"""POST policies (core/postpolicy.py): the document, its conditions against a form's fields,
and its SigV4 and SigV2 signatures, as the S3 API reference's "Creating a POST policy"
describes them (its example policy is the first one here)."""
import base64
import hashlib
import hmac
import json
from datetime import datetime, timezone

import pytest

from minis3.core import errors as E
from minis3.core import postpolicy as P
from minis3.core.sigv4 import signing_key

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)
SECRETS = {"AKID": "s3cr3t"}


def b64(doc) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


EXAMPLE = {"expiration": "2026-12-30T12:00:00.000Z", "conditions": [
    {"acl": "public-read"}, {"bucket": "awsexamplebucket1"}, ["starts-with", "$key", "user/user1/"],
    {"success_action_redirect": "http://awsexamplebucket1.s3.amazonaws.com/successful_upload.html"},
    ["starts-with", "$Content-Type", "image/"], {"x-amz-meta-uuid": "14365123651274"},
    ["starts-with", "$x-amz-meta-tag", ""], ["content-length-range", 1, 1048576]]}
FIELDS = {"key": "user/user1/photo.jpg", "acl": "public-read",
          "success_action_redirect": "http://awsexamplebucket1.s3.amazonaws.com/successful_upload.html",
          "content-type": "image/jpeg", "x-amz-meta-uuid": "14365123651274", "x-amz-meta-tag": "",
          "policy": "...", "x-amz-signature": "..."}


def test_the_guides_example_holds_and_gives_the_size_range():
    assert P.check(P.parse(b64(EXAMPLE)), FIELDS, "awsexamplebucket1", NOW) == (1, 1048576)


@pytest.mark.parametrize("change,bucket,needle", [
    ({"key": "user/user2/photo.jpg"}, "awsexamplebucket1", '["starts-with", "$key", "user/user1/"]'),
    ({"content-type": "text/html"}, "awsexamplebucket1", "$Content-Type"),
    ({"acl": "private"}, "awsexamplebucket1", '["eq", "$acl", "public-read"]'),
    ({}, "otherbucket", "$bucket"),
    ({"x-amz-meta-extra": "1"}, "awsexamplebucket1", "Extra input fields: x-amz-meta-extra"),
])
def test_a_condition_that_fails_is_named(change, bucket, needle):
    with pytest.raises(E.AccessDenied) as e:
        P.check(P.parse(b64(EXAMPLE)), {**FIELDS, **change}, bucket, NOW)
    assert needle in e.value.message


def test_fields_no_condition_needs_to_name():
    fields = {**FIELDS, "x-ignore-anything": "1", "awsaccesskeyid": "A", "signature": "s", "file": "x"}
    assert P.check(P.parse(b64(EXAMPLE)), fields, "awsexamplebucket1", NOW) == (1, 1048576)


def test_an_expired_policy():
    doc = dict(EXAMPLE, expiration="2026-12-06T11:59:59Z")
    with pytest.raises(E.AccessDenied) as e:
        P.check(P.parse(b64(doc)), FIELDS, "awsexamplebucket1", NOW)
    assert "Policy expired" in e.value.message


@pytest.mark.parametrize("raw", [
    "not base64!", base64.b64encode(b"not json").decode(), b64([1]), b64({"conditions": []}),
    b64({"expiration": "soon", "conditions": []}), b64({"expiration": "2026-12-30T00:00:00Z"}),
    b64({"expiration": "2026-12-30T00:00:00Z", "conditions": [["between", "$key", "a"]]}),
    b64({"expiration": "2026-12-30T00:00:00Z", "conditions": [["eq", "key", "a"]]}),
    b64({"expiration": "2026-12-30T00:00:00Z", "conditions": [["content-length-range", "1", 2]]}),
])
def test_documents_that_are_not_policies(raw):
    with pytest.raises(E.InvalidPolicyDocument):
        P.parse(raw)


def v4_fields(policy: str, secret: str = "s3cr3t", access_key: str = "AKID") -> dict:
    sig = hmac.new(signing_key(secret, "20261206", "us-east-1"), policy.encode(), hashlib.sha256).hexdigest()
    return {"policy": policy, "x-amz-algorithm": "AWS4-HMAC-SHA256", "x-amz-date": "20261206T120000Z",
            "x-amz-credential": f"{access_key}/20261206/us-east-1/s3/aws4_request", "x-amz-signature": sig}


def test_sigv4_and_sigv2_signatures():
    policy = b64(EXAMPLE)
    assert P.signer(v4_fields(policy), SECRETS) == "AKID"
    with pytest.raises(E.SignatureDoesNotMatch):
        P.signer(v4_fields(policy, secret="wrong"), SECRETS)
    with pytest.raises(E.InvalidAccessKeyId):
        P.signer(v4_fields(policy, access_key="NOPE"), SECRETS)
    v2 = base64.b64encode(hmac.new(b"s3cr3t", policy.encode(), hashlib.sha1).digest()).decode()
    assert P.signer({"policy": policy, "awsaccesskeyid": "AKID", "signature": v2}, SECRETS) == "AKID"
    with pytest.raises(E.SignatureDoesNotMatch):
        P.signer({"policy": policy, "awsaccesskeyid": "AKID", "signature": v2[:-4] + "AAA="}, SECRETS)


def test_anonymous_forms_and_half_signed_ones():
    assert P.signer({"key": "k"}, SECRETS) is None
    with pytest.raises(E.InvalidArgument):
        P.signer({"key": "k", "x-amz-signature": "x"}, SECRETS)          # a signature of no policy
    fields = v4_fields(b64(EXAMPLE))
    del fields["x-amz-date"]
    with pytest.raises(E.InvalidArgument) as e:
        P.signer(fields, SECRETS)
    assert "x-amz-date" in e.value.message
    with pytest.raises(E.InvalidArgument):
        P.signer(dict(v4_fields(b64(EXAMPLE)), **{"x-amz-algorithm": "AWS4-HMAC-SHA1"}), SECRETS)
