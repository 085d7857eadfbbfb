"""Bucket policies (core/policy.py): parsing as S3 checks a document, and evaluation as AWS's
policy evaluation logic and IAM's condition operators reference describe it. The policies
are the S3 User Guide's "Examples of Amazon S3 bucket policies", with their bucket renamed."""
import json

import pytest

from minis3.core import errors as E
from minis3.core.policy import Principal, Request, evaluate, parse_policy

BUCKET = "amzn-s3-demo-bucket"
OWNER = Principal(account="111122223333", arn="arn:aws:iam::111122223333:root", canonical_id="c" * 64)
ALICE = Principal(account="111122223333", arn="arn:aws:iam::111122223333:user/alice")
OTHER = Principal(account="444455556666", arn="arn:aws:iam::444455556666:user/bob")
ANON = Principal()


def policy(*statements, version="2012-10-17"):
    return parse_policy(json.dumps({"Version": version, "Statement": list(statements)}), BUCKET)


def ask(p, who, action, key=None, **context):
    resource = f"arn:aws:s3:::{BUCKET}" + (f"/{key}" if key is not None else "")
    return evaluate(p, Request(who, action, resource, context))


# ----------------------------------------------------------------------------- the guide's examples

def test_read_only_for_anonymous_users():
    """"Granting read-only permission to a public anonymous user"."""
    p = policy({"Sid": "PublicRead", "Effect": "Allow", "Principal": "*",
                "Action": ["s3:GetObject", "s3:GetObjectVersion"], "Resource": [f"arn:aws:s3:::{BUCKET}/*"]})
    assert ask(p, ANON, "s3:GetObject", "a/b.txt").allowed
    assert ask(p, ANON, "s3:GetObject", "a/b.txt").statement == "PublicRead"
    assert ask(p, OTHER, "s3:GetObjectVersion", "x").allowed
    assert not ask(p, ANON, "s3:PutObject", "a/b.txt").allowed          # implicit deny
    assert ask(p, ANON, "s3:PutObject", "a/b.txt").effect is None
    assert not ask(p, ANON, "s3:ListBucket").allowed                     # the bucket is not bucket/*


def test_deny_unless_from_these_addresses():
    """"Restricting access to specific IP addresses": a Deny with NotIpAddress."""
    p = policy({"Sid": "IPAllow", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
                "Condition": {"NotIpAddress": {"aws:SourceIp": ["192.0.2.0/24", "2001:db8::/32"]}}},
               {"Sid": "OwnerAll", "Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Action": "s3:*",
                "Resource": f"arn:aws:s3:::{BUCKET}/*"})
    assert ask(p, ALICE, "s3:GetObject", "k", **{"aws:SourceIp": "192.0.2.7"}).allowed
    assert ask(p, ALICE, "s3:GetObject", "k", **{"aws:SourceIp": "2001:db8::1"}).allowed
    d = ask(p, ALICE, "s3:GetObject", "k", **{"aws:SourceIp": "198.51.100.1"})
    assert d.effect == "Deny" and d.statement == "IPAllow"                   # explicit deny wins over the allow


def test_deny_requests_that_do_not_use_tls():
    """"Enforcing encryption in transit": Bool aws:SecureTransport false."""
    p = policy({"Sid": "TLSOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": False}}})
    assert ask(p, OWNER, "s3:GetObject", "k", **{"aws:SecureTransport": "false"}).effect == "Deny"
    assert ask(p, OWNER, "s3:GetObject", "k", **{"aws:SecureTransport": "true"}).effect is None


def test_list_only_a_users_own_prefix():
    """s3:prefix with StringLike: ListBucket allowed for home/alice/ only."""
    p = policy({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:user/alice"},
                "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{BUCKET}",
                "Condition": {"StringLike": {"s3:prefix": ["home/alice/*", "home/alice"]}}})
    assert ask(p, ALICE, "s3:ListBucket", **{"s3:prefix": "home/alice/photos/"}).allowed
    assert not ask(p, ALICE, "s3:ListBucket", **{"s3:prefix": "home/bob/"}).allowed
    assert not ask(p, ALICE, "s3:ListBucket").allowed                     # no prefix: the key is absent
    assert not ask(p, OTHER, "s3:ListBucket", **{"s3:prefix": "home/alice/"}).allowed


def test_referer_and_a_cross_account_grant():
    p = policy({"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::444455556666:root"]},
                "Action": "s3:Get*", "Resource": f"arn:aws:s3:::{BUCKET}/shared/*"},
               {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{BUCKET}/web/*",
                "Condition": {"StringLike": {"aws:Referer": ["https://www.example.com/*"]}}})
    assert ask(p, OTHER, "s3:GetObjectTagging", "shared/a").allowed      # any user of that account
    assert not ask(p, OTHER, "s3:GetObject", "private/a").allowed
    assert ask(p, ANON, "s3:GetObject", "web/i.png", **{"aws:Referer": "https://www.example.com/p"}).allowed
    assert not ask(p, ANON, "s3:GetObject", "web/i.png", **{"aws:Referer": "https://evil.example/p"}).allowed


# ----------------------------------------------------------------------------- the language

def test_not_principal_not_action_and_not_resource():
    p = policy({"Sid": "OnlyAlice", "Effect": "Deny", "NotPrincipal": {"AWS": "arn:aws:iam::111122223333:user/alice"},
                "NotAction": "s3:GetObject", "NotResource": f"arn:aws:s3:::{BUCKET}/public/*"})
    assert ask(p, OTHER, "s3:PutObject", "private/x").effect == "Deny"
    assert ask(p, ALICE, "s3:PutObject", "private/x").effect is None        # NotPrincipal excludes her
    assert ask(p, OTHER, "s3:GetObject", "private/x").effect is None        # NotAction excludes GetObject
    assert ask(p, OTHER, "s3:PutObject", "public/x").effect is None         # NotResource excludes public/


def test_actions_match_case_insensitively_and_resources_case_sensitively():
    p = policy({"Effect": "Allow", "Principal": "*", "Action": "S3:getobject?ersion",
                "Resource": f"arn:aws:s3:::{BUCKET}/Docs/*"})
    assert ask(p, ANON, "s3:GetObjectVersion", "Docs/a").allowed
    assert not ask(p, ANON, "s3:GetObjectVersion", "docs/a").allowed


@pytest.mark.parametrize("condition, context, holds", [
    ({"StringEquals": {"s3:x-amz-acl": ["public-read", "private"]}}, {"s3:x-amz-acl": "private"}, True),   # OR
    ({"StringNotEquals": {"s3:x-amz-acl": ["public-read", "private"]}}, {"s3:x-amz-acl": "private"}, False),  # NOR
    ({"StringNotEquals": {"s3:x-amz-acl": ["public-read"]}}, {}, True),        # negated, key absent: true
    ({"StringEquals": {"s3:x-amz-acl": ["private"]}}, {}, False),             # positive, key absent: false
    ({"StringEqualsIfExists": {"s3:x-amz-acl": ["private"]}}, {}, True),
    ({"StringEqualsIfExists": {"s3:x-amz-acl": ["private"]}}, {"s3:x-amz-acl": "public-read"}, False),
    ({"Null": {"s3:x-amz-server-side-encryption": "true"}}, {}, True),
    ({"Null": {"s3:x-amz-server-side-encryption": "true"}}, {"s3:x-amz-server-side-encryption": "AES256"}, False),
    ({"StringEqualsIgnoreCase": {"aws:username": "ALICE"}}, {"aws:username": "alice"}, True),
    ({"NumericLessThanEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": "10"}, True),
    ({"NumericLessThanEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": "11"}, False),
    ({"DateLessThan": {"aws:CurrentTime": "2027-01-01T00:00:00Z"}}, {"aws:CurrentTime": "2026-12-06T04:00:00Z"}, True),
    ({"DateGreaterThan": {"aws:CurrentTime": "2027-01-01T00:00:00Z"}}, {"aws:CurrentTime": "2026-12-06T04:00:00Z"},
     False),
    ({"ForAnyValue:StringEquals": {"s3:RequestObjectTagKeys": ["team"]}}, {"s3:RequestObjectTagKeys": ["a", "team"]},
     True),
    ({"ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": ["team", "env"]}},
     {"s3:RequestObjectTagKeys": ["team", "x"]}, False),
    ({"ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": ["team", "env"]}}, {}, True),
    ({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}, "Bool": {"aws:SecureTransport": "true"}},
     {"aws:SourceIp": "203.0.113.9", "aws:SecureTransport": "false"}, False),   # operators: AND
    ({"StringLike": {"AWS:Referer": "https://a/*"}}, {"aws:referer": "https://a/b"}, True),  # keys: any case
])
def test_condition_operators(condition, context, holds):
    p = policy({"Effect": "Allow", "Principal": "*", "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{BUCKET}/*", "Condition": condition})
    assert ask(p, ANON, "s3:PutObject", "k", **context).allowed is holds


def test_no_policy_is_an_implicit_deny():
    assert evaluate(None, Request(ANON, "s3:GetObject", f"arn:aws:s3:::{BUCKET}/k")).effect is None


# ----------------------------------------------------------------------------- malformed documents

@pytest.mark.parametrize("doc, message", [
    ("", "Policies must be valid JSON and the first byte must be '{'"),
    ("[]", "Policies must be valid JSON and the first byte must be '{'"),
    ('{"Statement": [', "Policies must be valid JSON and the first byte must be '{'"),
    ({"Version": "2020-01-01", "Statement": []}, "The policy must contain a valid version string"),
    ({"Version": "2012-10-17"}, "Missing required field Statement"),
    ({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"}]},
     "Missing required field Principal"),
    ({"Statement": [{"Effect": "Permit", "Principal": "*", "Action": "s3:GetObject",
                     "Resource": f"arn:aws:s3:::{BUCKET}/*"}]}, "Invalid effect: Permit"),
    ({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "ec2:RunInstances",
                     "Resource": f"arn:aws:s3:::{BUCKET}/*"}]}, "Policy has invalid action"),
    ({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                     "Resource": "arn:aws:s3:::another-bucket/*"}]}, "Policy has invalid resource"),
    ({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "alice"}, "Action": "s3:GetObject",
                     "Resource": f"arn:aws:s3:::{BUCKET}/*"}]}, "Invalid principal in policy"),
    ({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                     "Resource": f"arn:aws:s3:::{BUCKET}/*", "Condition": {"StringSortOf": {"a": "b"}}}]},
     "Invalid Condition type : StringSortOf"),
    ({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Colour": "blue",
                     "Resource": f"arn:aws:s3:::{BUCKET}/*"}]}, "Unknown field Colour"),
])
def test_malformed_policies_are_refused_with_aws_messages(doc, message):
    text = doc if isinstance(doc, str) else json.dumps(doc)
    with pytest.raises(E.MalformedPolicy) as exc:
        parse_policy(text, BUCKET)
    assert exc.value.message == message and exc.value.status == 400 and exc.value.code == "MalformedPolicy"


def test_a_policy_over_20_kib_is_refused():
    statement = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                 "Resource": [f"arn:aws:s3:::{BUCKET}/{i:06d}" for i in range(1000)]}
    with pytest.raises(E.MalformedPolicy):
        policy(statement)
