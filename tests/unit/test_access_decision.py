"""One request's authorisation decision (core/access.py), table-driven: a bucket policy, the
bucket's Block Public Access settings, who asks, what for, and from where, against the answer
AWS documents ("How Amazon S3 authorizes a request", "Policy evaluation logic", "Examples of
Amazon S3 bucket policies", "Blocking public access to your Amazon S3 storage" and its
"The meaning of 'public'"). Then the module's other pure parts: what makes a policy public,
account ids and principals, the ACL headers a bucket with ACLs disabled accepts, the request
context a policy's conditions read, and the access-control XML documents (core/access_xml.py)."""
import json
import xml.etree.ElementTree as ET

import pytest

from minis3.core import access
from minis3.core import errors as E
from minis3.core.access import OFF, BucketAccess, PublicAccessBlock
from minis3.core import acl as acl_mod
from minis3.core.access_xml import (ownership_controls_xml,
                                    parse_ownership_controls, parse_public_access_block, policy_status_xml,
                                    public_access_block_xml)
from minis3.core.actions import needs
from minis3.core.policy import parse_policy

B = "amzn-s3-demo-bucket"
BUCKET_ARN, OBJECTS = f"arn:aws:s3:::{B}", f"arn:aws:s3:::{B}/*"
OWNER, OTHER = "111122223333", "444455556666"          # account names: 12 digits are their own ids
ROOT = access.principal_of(OWNER)
ALICE = access.principal_of(OWNER, "alice")
OTHER_ROOT = access.principal_of(OTHER)
BOB = access.principal_of(OTHER, "bob")
CAROL = access.principal_of(OTHER, "carol")
ANON = access.principal_of(None)
USERS = {ALICE: "alice", BOB: "bob", CAROL: "carol"}
NOW = 1_700_000_000.25
S3 = "http://s3.amazonaws.com/doc/2006-03-01/"
#: Block Public Access with only RestrictPublicBuckets off (the other three do not decide access).
NO_RESTRICT = PublicAccessBlock(True, True, True, False)
DEFAULT_BPA = PublicAccessBlock()


def doc(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(principal, action, resource=OBJECTS, **extra):
    return {"Effect": "Allow", "Principal": principal, "Action": action, "Resource": resource, **extra}


def deny(principal, action, resource=(BUCKET_ARN, OBJECTS), **extra):
    return {"Effect": "Deny", "Principal": principal, "Action": action, "Resource": list(resource), **extra}


def need(op, key=None, **query):
    """The one need of operation ``op`` (core/actions.py), on bucket B."""
    (one,) = needs(op, B, key, query)
    return one


def ctx(ip="192.0.2.10", secure=True, headers=None, query=None, auth="header", tags=None, existing=None):
    """What a request looks like, for the table: turned into a context for its principal."""
    return dict(source_ip=ip, secure=secure, headers=headers or {}, query=query or {}, auth_mode=auth,
                tags=tags, existing_tags=existing)


def context_of(who, c):
    return access.request_context(principal=who, user=USERS.get(who), now_epoch=NOW, **c)


def policy_of(document):
    """The parsed policy of a document; an ``Action`` or ``Principal`` a helper left None is dropped
    (the statement uses the ``Not`` form instead)."""
    if document is None:
        return None
    document = json.loads(json.dumps(document))
    for st in document["Statement"]:
        for name in ("Action", "Principal"):
            if name in st and st[name] is None:
                del st[name]
    return parse_policy(json.dumps(document), B)


# ----------------------------------------------------------------------------- the policies of the table

DENY_ALL = doc(deny("*", "s3:*"))
PUBLIC_PREFIX = doc(allow("*", "s3:GetObject", f"arn:aws:s3:::{B}/public/*", Sid="PublicRead"))
TO_OTHER = doc(allow({"AWS": OTHER}, "s3:GetObject", Sid="CrossAccount"))
#: The guide's "both public and non-public access grants": Account-2 named, plus the public.
MIXED = doc(allow({"AWS": OTHER}, "s3:GetObject", Sid="Account2"),
            allow("*", "s3:GetObject", f"arn:aws:s3:::{B}/public/*", Sid="Everyone"))
ONLY_FROM = doc(deny("*", "s3:*", Sid="IPDeny", Condition={"NotIpAddress": {"aws:SourceIp": ["192.0.2.0/24"]}}),
                allow({"AWS": OTHER}, "s3:*", Sid="Other"))
NOT_BOB = doc(deny(None, "s3:*", Sid="AllButBob") | {"NotPrincipal": {"AWS": [
                   f"arn:aws:iam::{OTHER}:user/bob", f"arn:aws:iam::{OTHER}:root"]}},
              allow({"AWS": OTHER}, "s3:GetObject", Sid="OtherRead"))


CASES = [
    # --- no policy: the owner's account may, everyone else is implicitly denied
    pytest.param(None, DEFAULT_BPA, ROOT, need("GetObject", "k"), ctx(), True, "Allow", "bucket owner's account",
                 id="no policy: owner root reads"),
    pytest.param(None, DEFAULT_BPA, ALICE, need("PutObject", "k"), ctx(), True, "Allow", "bucket owner's account",
                 id="no policy: owner's user writes"),
    pytest.param(None, DEFAULT_BPA, ROOT, need("DeleteBucket"), ctx(), True, "Allow", "bucket owner's account",
                 id="no policy: owner root deletes the bucket"),
    pytest.param(None, OFF, BOB, need("GetObject", "k"), ctx(), False, None, "implicit deny: no statement of the "
                 "bucket policy allows another account", id="no policy: another account implicitly denied"),
    pytest.param(None, OFF, ANON, need("GetObject", "k"), ctx(), False, None, "allows an anonymous request",
                 id="no policy: anonymous implicitly denied"),
    pytest.param(None, None, OTHER_ROOT, need("ListObjectsV2"), ctx(), False, None, "another account",
                 id="no policy, no BPA: another account's root cannot list"),

    # --- an explicit deny wins
    pytest.param(doc(allow({"AWS": OTHER}, "s3:*", Sid="OtherAll"),
                     deny({"AWS": OTHER}, "s3:GetObject", Sid="NoReads")), OFF, BOB, need("GetObject", "k"), ctx(),
                 False, "Deny", "explicit deny in the bucket policy (statement NoReads)",
                 id="deny wins over an allow: another account"),
    pytest.param(doc(allow({"AWS": OTHER}, "s3:*", Sid="OtherAll"),
                     deny({"AWS": OTHER}, "s3:GetObject", Sid="NoReads")), OFF, BOB, need("PutObject", "k"), ctx(),
                 True, "Allow", "statement OtherAll", id="deny of one action leaves the others allowed"),
    pytest.param(doc(deny("*", "s3:DeleteObject", Sid="Keep")), DEFAULT_BPA, ROOT, need("DeleteObject", "k"), ctx(),
                 False, "Deny", "statement Keep", id="deny wins over ownership: owner root"),
    pytest.param(doc(deny({"AWS": f"arn:aws:iam::{OWNER}:root"}, "s3:DeleteBucket")), DEFAULT_BPA, ALICE,
                 need("DeleteBucket"), ctx(), False, "Deny", "statement #0",
                 id="deny naming the owner account's root covers its users"),
    pytest.param(doc(deny("*", "s3:DeleteObject")), DEFAULT_BPA, ROOT, need("DeleteObject", "k", versionId="v1"),
                 ctx(), True, "Allow", "bucket owner's account",
                 id="deny of DeleteObject does not cover DeleteObjectVersion"),

    # --- the owner's root can always manage the bucket policy
    pytest.param(DENY_ALL, DEFAULT_BPA, ROOT, need("GetBucketPolicy"), ctx(), True, "Allow",
                 "its own policy calls are never denied", id="deny-all: owner root GetBucketPolicy"),
    pytest.param(DENY_ALL, DEFAULT_BPA, ROOT, need("PutBucketPolicy"), ctx(), True, "Allow",
                 "its own policy calls are never denied", id="deny-all: owner root PutBucketPolicy"),
    pytest.param(DENY_ALL, DEFAULT_BPA, ROOT, need("DeleteBucketPolicy"), ctx(), True, "Allow",
                 "its own policy calls are never denied", id="deny-all: owner root DeleteBucketPolicy"),
    pytest.param(DENY_ALL, DEFAULT_BPA, ALICE, need("GetBucketPolicy"), ctx(), False, "Deny", "explicit deny",
                 id="deny-all: owner's user cannot GetBucketPolicy"),
    pytest.param(DENY_ALL, DEFAULT_BPA, ALICE, need("DeleteBucketPolicy"), ctx(), False, "Deny", "explicit deny",
                 id="deny-all: owner's user cannot DeleteBucketPolicy"),
    pytest.param(DENY_ALL, DEFAULT_BPA, ROOT, need("GetObject", "k"), ctx(), False, "Deny", "explicit deny",
                 id="deny-all: owner root cannot read objects"),
    pytest.param(DENY_ALL, DEFAULT_BPA, ROOT, need("GetBucketPolicyStatus"), ctx(), False, "Deny", "explicit deny",
                 id="deny-all: only the three policy calls are kept (GetBucketPolicyStatus)"),
    pytest.param(DENY_ALL, OFF, OTHER_ROOT, need("GetBucketPolicy"), ctx(), False, "Deny", "explicit deny",
                 id="deny-all: another account's root has no such right"),

    # --- cross-account grants
    pytest.param(TO_OTHER, DEFAULT_BPA, BOB, need("GetObject", "photo.jpg"), ctx(), True, "Allow",
                 "the bucket policy (statement CrossAccount)", id="cross-account by account id"),
    pytest.param(TO_OTHER, DEFAULT_BPA, BOB, need("HeadObject", "photo.jpg"), ctx(), True, "Allow", "CrossAccount",
                 id="cross-account: HeadObject needs s3:GetObject"),
    pytest.param(doc(allow({"AWS": f"arn:aws:iam::{OTHER}:root"}, "s3:GetObject")), DEFAULT_BPA, CAROL,
                 need("GetObject", "k"), ctx(), True, "Allow", "statement #0",
                 id="cross-account by account root ARN: any user of it"),
    pytest.param(doc(allow({"AWS": [f"arn:aws:iam::{OTHER}:user/bob"]}, "s3:GetObject")), DEFAULT_BPA, BOB,
                 need("GetObject", "k"), ctx(), True, "Allow", "statement #0", id="cross-account by user ARN"),
    pytest.param(doc(allow({"AWS": [f"arn:aws:iam::{OTHER}:user/bob"]}, "s3:GetObject")), DEFAULT_BPA, CAROL,
                 need("GetObject", "k"), ctx(), False, None, "implicit deny",
                 id="another user's ARN does not match"),
    pytest.param(doc(allow({"AWS": [f"arn:aws:iam::{OTHER}:user/bob"]}, "s3:GetObject")), DEFAULT_BPA, OTHER_ROOT,
                 need("GetObject", "k"), ctx(), False, None, "implicit deny",
                 id="a user's ARN does not grant its account's root"),
    pytest.param(doc(allow({"CanonicalUser": access.canonical_id(OTHER)}, "s3:GetObject")), DEFAULT_BPA, BOB,
                 need("GetObject", "k"), ctx(), True, "Allow", "statement #0", id="cross-account by canonical id"),
    pytest.param(TO_OTHER, DEFAULT_BPA, BOB, need("PutObject", "k"), ctx(), False, None, "another account",
                 id="cross-account: an action not granted"),
    pytest.param(TO_OTHER, DEFAULT_BPA, BOB, need("GetObject", "k", versionId="v1"), ctx(), False, None,
                 "implicit deny", id="cross-account: GetObject does not grant GetObjectVersion"),
    pytest.param(TO_OTHER, DEFAULT_BPA, BOB, need("ListObjectsV2"), ctx(), False, None, "implicit deny",
                 id="cross-account: bucket/* does not cover the bucket itself"),
    pytest.param(TO_OTHER, OFF, ANON, need("GetObject", "k"), ctx(), False, None, "anonymous",
                 id="cross-account grant gives anonymous nothing"),
    pytest.param(doc(allow({"AWS": OTHER}, "s3:get*")), DEFAULT_BPA, BOB, need("GetObjectTagging", "k"), ctx(),
                 True, "Allow", "statement #0", id="action wildcard, compared case-insensitively"),

    # --- public read of one prefix ("Granting read-only permission to a public anonymous user")
    pytest.param(PUBLIC_PREFIX, OFF, ANON, need("GetObject", "public/x"), ctx(), True, "Allow", "PublicRead",
                 id="public prefix: anonymous reads public/x"),
    pytest.param(PUBLIC_PREFIX, OFF, ANON, need("GetObject", "private/x"), ctx(), False, None,
                 "an anonymous request", id="public prefix: anonymous denied private/x"),
    pytest.param(PUBLIC_PREFIX, OFF, ANON, need("PutObject", "public/x"), ctx(), False, None, "implicit deny",
                 id="public prefix: anonymous cannot write"),
    pytest.param(PUBLIC_PREFIX, OFF, BOB, need("GetObject", "public/x"), ctx(), True, "Allow", "PublicRead",
                 id="public prefix: another account reads public/x"),
    pytest.param(PUBLIC_PREFIX, None, ANON, need("HeadObject", "public/a/b"), ctx(), True, "Allow", "PublicRead",
                 id="public prefix, no BPA configured: anonymous heads public/a/b"),
    pytest.param(PUBLIC_PREFIX, NO_RESTRICT, ANON, need("GetObject", "public/x"), ctx(), True, "Allow",
                 "PublicRead", id="public prefix: BlockPublicPolicy etc. on but RestrictPublicBuckets off"),

    # --- RestrictPublicBuckets
    pytest.param(PUBLIC_PREFIX, DEFAULT_BPA, ANON, need("GetObject", "public/x"), ctx(), False, None,
                 "RestrictPublicBuckets", id="restrict: a public policy grants anonymous nothing"),
    pytest.param(PUBLIC_PREFIX, PublicAccessBlock(False, False, False, True), BOB, need("GetObject", "public/x"),
                 ctx(), False, None, "statement PublicRead grants nothing outside the owner's account",
                 id="restrict: a public policy grants another account nothing"),
    pytest.param(PUBLIC_PREFIX, DEFAULT_BPA, ALICE, need("GetObject", "private/x"), ctx(), True, "Allow",
                 "bucket owner's account", id="restrict: the owner's account is unaffected"),
    pytest.param(TO_OTHER, DEFAULT_BPA, BOB, need("GetObject", "k"), ctx(), True, "Allow", "CrossAccount",
                 id="restrict: a non-public policy naming another account still works"),
    pytest.param(MIXED, DEFAULT_BPA, BOB, need("GetObject", "k"), ctx(), False, None, "RestrictPublicBuckets",
                 id="restrict: a public statement disables the non-public grant to Account-2 too"),
    pytest.param(MIXED, OFF, BOB, need("GetObject", "k"), ctx(), True, "Allow", "Account2",
                 id="restrict off: Account-2's grant works"),
    pytest.param(doc(allow("*", "s3:GetObject", Condition={"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}})),
                 DEFAULT_BPA, ANON, need("GetObject", "k"), ctx(ip="203.0.113.9"), False, None,
                 "RestrictPublicBuckets", id="restrict: 0.0.0.0/0 restricts nobody, so the policy is public"),
    pytest.param(doc(allow("*", "s3:GetObject", Condition={"IpAddress": {"aws:SourceIp": "0.0.0.0/1"}})),
                 DEFAULT_BPA, ANON, need("GetObject", "k"), ctx(ip="1.2.3.4"), False, None,
                 "RestrictPublicBuckets", id="restrict: 0.0.0.0/1 is public, so anonymous is refused"),

    # --- conditions: aws:SourceIp
    pytest.param(doc(allow("*", "s3:GetObject", Condition={"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}})),
                 DEFAULT_BPA, ANON, need("GetObject", "k"), ctx(ip="192.0.2.10"), True, "Allow", "statement #0",
                 id="IpAddress: anonymous from inside the range (fixed CIDR: not public)"),
    pytest.param(doc(allow("*", "s3:GetObject", Condition={"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}})),
                 DEFAULT_BPA, ANON, need("GetObject", "k"), ctx(ip="198.51.100.1"), False, None, "anonymous",
                 id="IpAddress: anonymous from outside the range"),
    pytest.param(doc(allow("*", "s3:GetObject", Condition={"IpAddress": {"aws:SourceIp": "2001:db8::/32"}})),
                 DEFAULT_BPA, ANON, need("GetObject", "k"), ctx(ip="2001:db8::1"), True, "Allow", "statement #0",
                 id="IpAddress: IPv6 range"),
    pytest.param(doc(allow("*", "s3:GetObject", Condition={"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}})),
                 OFF, ANON, need("GetObject", "k"), ctx(ip=None), False, None, "anonymous",
                 id="IpAddress: no source address known"),
    pytest.param(ONLY_FROM, OFF, BOB, need("GetObject", "k"), ctx(ip="198.51.100.7"), False, "Deny", "IPDeny",
                 id="NotIpAddress deny: another account from outside"),
    pytest.param(ONLY_FROM, OFF, BOB, need("GetObject", "k"), ctx(ip="192.0.2.7"), True, "Allow", "Other",
                 id="NotIpAddress deny: another account from inside"),
    pytest.param(ONLY_FROM, DEFAULT_BPA, ROOT, need("PutObject", "k"), ctx(ip="198.51.100.7"), False, "Deny",
                 "IPDeny", id="NotIpAddress deny: applies to the owner too"),
    pytest.param(ONLY_FROM, DEFAULT_BPA, ROOT, need("PutBucketPolicy"), ctx(ip="198.51.100.7"), True, "Allow",
                 "never denied", id="NotIpAddress deny: owner root can still replace the policy"),

    # --- aws:SecureTransport ("Enforcing encryption in transit")
    pytest.param(doc(deny("*", "s3:*", Sid="TLSOnly", Condition={"Bool": {"aws:SecureTransport": "false"}})),
                 DEFAULT_BPA, ALICE, need("GetObject", "k"), ctx(secure=False), False, "Deny", "TLSOnly",
                 id="SecureTransport: plain HTTP denied, owner's user too"),
    pytest.param(doc(deny("*", "s3:*", Sid="TLSOnly", Condition={"Bool": {"aws:SecureTransport": False}})),
                 DEFAULT_BPA, ALICE, need("GetObject", "k"), ctx(secure=True), True, "Allow", "owner's account",
                 id="SecureTransport: HTTPS allowed (JSON false)"),

    # --- s3:prefix on ListBucket
    pytest.param(doc(allow({"AWS": OTHER}, "s3:ListBucket", BUCKET_ARN,
                           Condition={"StringLike": {"s3:prefix": ["home/bob/*", "home/bob"]}})),
                 DEFAULT_BPA, BOB, need("ListObjectsV2", **{"list-type": "2"}),
                 ctx(query={"list-type": "2", "prefix": "home/bob/photos/"}), True, "Allow", "statement #0",
                 id="s3:prefix StringLike: own prefix listed"),
    pytest.param(doc(allow({"AWS": OTHER}, "s3:ListBucket", BUCKET_ARN,
                           Condition={"StringLike": {"s3:prefix": ["home/bob/*", "home/bob"]}})),
                 DEFAULT_BPA, BOB, need("ListObjects"), ctx(query={"prefix": "home/alice/"}), False, None,
                 "implicit deny", id="s3:prefix StringLike: another prefix"),
    pytest.param(doc(allow({"AWS": OTHER}, "s3:ListBucket", BUCKET_ARN,
                           Condition={"StringLike": {"s3:prefix": ["home/bob/*", "home/bob"]}})),
                 DEFAULT_BPA, BOB, need("ListObjectsV2"), ctx(), False, None, "implicit deny",
                 id="s3:prefix StringLike: no prefix at all"),

    # --- s3:ExistingObjectTag
    pytest.param(doc(allow({"AWS": OTHER}, "s3:GetObject",
                           Condition={"StringEquals": {"s3:ExistingObjectTag/classification": "public"}})),
                 DEFAULT_BPA, BOB, need("GetObject", "k"), ctx(existing=[("classification", "public")]), True,
                 "Allow", "statement #0", id="ExistingObjectTag: tagged public"),
    pytest.param(doc(allow({"AWS": OTHER}, "s3:GetObject",
                           Condition={"StringEquals": {"s3:ExistingObjectTag/classification": "public"}})),
                 DEFAULT_BPA, BOB, need("GetObject", "k"), ctx(existing=[("classification", "secret")]), False,
                 None, "implicit deny", id="ExistingObjectTag: tagged secret"),
    pytest.param(doc(allow({"AWS": OTHER}, "s3:GetObject",
                           Condition={"StringEquals": {"s3:ExistingObjectTag/classification": "public"}})),
                 DEFAULT_BPA, BOB, need("GetObject", "k"), ctx(existing=[]), False, None, "implicit deny",
                 id="ExistingObjectTag: untagged"),

    # --- s3:x-amz-acl ("...ensuring the bucket owner has full control")
    pytest.param(doc(allow({"AWS": OTHER}, "s3:PutObject",
                           Condition={"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}})),
                 DEFAULT_BPA, BOB, need("PutObject", "k"), ctx(headers={"x-amz-acl": "bucket-owner-full-control"}),
                 True, "Allow", "statement #0", id="x-amz-acl StringEquals: with the canned ACL"),
    pytest.param(doc(allow({"AWS": OTHER}, "s3:PutObject",
                           Condition={"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}})),
                 DEFAULT_BPA, BOB, need("PutObject", "k"), ctx(), False, None, "implicit deny",
                 id="x-amz-acl StringEquals: without it"),
    pytest.param(doc(allow({"AWS": OTHER}, "s3:PutObject",
                           Condition={"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}})),
                 DEFAULT_BPA, BOB, need("UploadPart", "k", uploadId="u", partNumber="1"),
                 ctx(headers={"x-amz-acl": "public-read"}), False, None, "implicit deny",
                 id="x-amz-acl StringEquals: another canned ACL"),

    # --- ...IfExists and Null
    pytest.param(doc(allow({"AWS": OTHER}, "s3:PutObject",
                           Condition={"StringEqualsIfExists": {"s3:x-amz-storage-class": "STANDARD_IA"}})),
                 DEFAULT_BPA, BOB, need("PutObject", "k"), ctx(), True, "Allow", "statement #0",
                 id="StringEqualsIfExists: key absent holds"),
    pytest.param(doc(allow({"AWS": OTHER}, "s3:PutObject",
                           Condition={"StringEqualsIfExists": {"s3:x-amz-storage-class": "STANDARD_IA"}})),
                 DEFAULT_BPA, BOB, need("PutObject", "k"), ctx(headers={"x-amz-storage-class": "STANDARD_IA"}),
                 True, "Allow", "statement #0", id="StringEqualsIfExists: key present and equal"),
    pytest.param(doc(allow({"AWS": OTHER}, "s3:PutObject",
                           Condition={"StringEqualsIfExists": {"s3:x-amz-storage-class": "STANDARD_IA"}})),
                 DEFAULT_BPA, BOB, need("PutObject", "k"), ctx(headers={"x-amz-storage-class": "GLACIER"}),
                 False, None, "implicit deny", id="StringEqualsIfExists: key present and different"),
    pytest.param(doc(deny("*", "s3:PutObject", Sid="NeedSSE",
                          Condition={"Null": {"s3:x-amz-server-side-encryption": "true"}})),
                 DEFAULT_BPA, ALICE, need("PutObject", "k"), ctx(), False, "Deny", "NeedSSE",
                 id="Null true: upload without the encryption header denied"),
    pytest.param(doc(deny("*", "s3:PutObject", Sid="NeedSSE",
                          Condition={"Null": {"s3:x-amz-server-side-encryption": "true"}})),
                 DEFAULT_BPA, ALICE, need("PutObject", "k"), ctx(headers={"x-amz-server-side-encryption": "AES256"}),
                 True, "Allow", "owner's account", id="Null true: upload with the header goes on"),
    pytest.param(doc(deny("*", "s3:PutObject", Sid="KMSOnly",
                          Condition={"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}})),
                 DEFAULT_BPA, ALICE, need("PutObject", "k"), ctx(headers={"x-amz-server-side-encryption": "AES256"}),
                 False, "Deny", "KMSOnly", id="StringNotEquals deny: wrong encryption"),
    pytest.param(doc(deny("*", "s3:PutObject", Sid="KMSOnly",
                          Condition={"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}})),
                 DEFAULT_BPA, ALICE, need("PutObject", "k"), ctx(), False, "Deny", "KMSOnly",
                 id="StringNotEquals deny: key absent (a negated operator holds)"),

    # --- aws:Referer ("Restricting access to a specific HTTP referer")
    pytest.param(doc(allow("*", "s3:GetObject", Sid="Referer",
                           Condition={"StringLike": {"aws:Referer": ["https://www.example.com/*"]}})),
                 OFF, ANON, need("GetObject", "img.png"), ctx(headers={"referer": "https://www.example.com/page"}),
                 True, "Allow", "Referer", id="Referer StringLike: from the site"),
    pytest.param(doc(allow("*", "s3:GetObject", Sid="Referer",
                           Condition={"StringLike": {"aws:Referer": ["https://www.example.com/*"]}})),
                 OFF, ANON, need("GetObject", "img.png"), ctx(headers={"referer": "https://evil.example/"}),
                 False, None, "anonymous", id="Referer StringLike: from elsewhere"),
    pytest.param(doc(allow("*", "s3:GetObject", Sid="Referer",
                           Condition={"StringLike": {"aws:Referer": ["https://www.example.com/*"]}})),
                 DEFAULT_BPA, ANON, need("GetObject", "img.png"), ctx(headers={"referer": "https://www.example.com/"}),
                 False, None, "RestrictPublicBuckets", id="Referer does not make a policy non-public"),

    # --- a principal condition on a wildcard principal (non-public)
    pytest.param(doc(allow("*", "s3:GetObject", Condition={"StringEquals": {"aws:PrincipalAccount": OTHER}})),
                 DEFAULT_BPA, BOB, need("GetObject", "k"), ctx(), True, "Allow", "statement #0",
                 id="aws:PrincipalAccount: the named account"),
    pytest.param(doc(allow("*", "s3:GetObject", Condition={"StringEquals": {"aws:PrincipalAccount": OTHER}})),
                 OFF, ANON, need("GetObject", "k"), ctx(), False, None, "anonymous",
                 id="aws:PrincipalAccount: anonymous has no account"),

    # --- NotPrincipal (the IAM guide's "all principals except the user named Bob")
    pytest.param(NOT_BOB, OFF, BOB, need("GetObject", "k"), ctx(), True, "Allow", "OtherRead",
                 id="NotPrincipal deny: Bob is spared"),
    pytest.param(NOT_BOB, OFF, ANON, need("GetObject", "k"), ctx(), False, "Deny", "AllButBob",
                 id="NotPrincipal deny: anonymous denied"),
    pytest.param(NOT_BOB, DEFAULT_BPA, ALICE, need("GetObject", "k"), ctx(), False, "Deny", "AllButBob",
                 id="NotPrincipal deny: the owner's user denied"),
    pytest.param(NOT_BOB, DEFAULT_BPA, ROOT, need("GetBucketPolicy"), ctx(), True, "Allow", "never denied",
                 id="NotPrincipal deny: owner root keeps its policy calls"),
    pytest.param(NOT_BOB, OFF, CAROL, need("GetObject", "k"), ctx(), False, "Deny", "AllButBob",
                 id="NotPrincipal deny: another user of Bob's account denied"),
    pytest.param(doc(allow(None, "s3:GetObject", Sid="AllButBob") | {"NotPrincipal": {"AWS": OTHER}}),
                 OFF, ANON, need("GetObject", "k"), ctx(), True, "Allow", "AllButBob",
                 id="NotPrincipal allow: grants anonymous"),

    # --- NotAction / NotResource
    pytest.param(doc(allow({"AWS": OTHER}, None, Sid="NoDeletes") | {"NotAction": "s3:DeleteObject*"}),
                 DEFAULT_BPA, BOB, need("GetObject", "k"), ctx(), True, "Allow", "NoDeletes",
                 id="NotAction allow: a read"),
    pytest.param(doc(allow({"AWS": OTHER}, None, Sid="NoDeletes") | {"NotAction": "s3:DeleteObject*"}),
                 DEFAULT_BPA, BOB, need("DeleteObject", "k"), ctx(), False, None, "implicit deny",
                 id="NotAction allow: a delete is not granted"),
    pytest.param(doc(allow({"AWS": OTHER}, None, Sid="NoDeletes") | {"NotAction": "s3:DeleteObject*"}),
                 DEFAULT_BPA, BOB, need("DeleteObject", "k", versionId="v1"), ctx(), False, None, "implicit deny",
                 id="NotAction allow: DeleteObjectVersion matches the pattern"),
    pytest.param(doc(deny("*", None, [OBJECTS], Sid="ReadOnly") | {"NotAction": ["s3:GetObject"]}),
                 DEFAULT_BPA, ALICE, need("PutObject", "k"), ctx(), False, "Deny", "ReadOnly",
                 id="NotAction deny: everything but reads denied"),
    pytest.param(doc(deny("*", None, [OBJECTS], Sid="ReadOnly") | {"NotAction": ["s3:GetObject"]}),
                 DEFAULT_BPA, ALICE, need("GetObject", "k"), ctx(), True, "Allow", "owner's account",
                 id="NotAction deny: reads go on"),
    pytest.param(doc({"Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "s3:GetObject",
                      "NotResource": f"arn:aws:s3:::{B}/secret/*", "Sid": "AllButSecret"}),
                 DEFAULT_BPA, BOB, need("GetObject", "secret/x"), ctx(), False, None, "implicit deny",
                 id="NotResource: the excluded prefix"),
    pytest.param(doc({"Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "s3:GetObject",
                      "NotResource": f"arn:aws:s3:::{B}/secret/*", "Sid": "AllButSecret"}),
                 DEFAULT_BPA, BOB, need("GetObject", "open/x"), ctx(), True, "Allow", "AllButSecret",
                 id="NotResource: anything else"),
]


@pytest.mark.parametrize("document, block, who, the_need, c, allowed, effect, by", CASES)
def test_decide(document, block, who, the_need, c, allowed, effect, by):
    bucket = BucketAccess(owner=OWNER, policy=policy_of(document), block=block)
    verdict = access.decide(who, the_need, bucket, context_of(who, c))
    assert (verdict.allowed, verdict.effect) == (allowed, effect), verdict.by
    assert by in verdict.by


def test_decide_names_the_deciding_statement():
    p = policy_of(doc(allow({"AWS": OTHER}, "s3:GetObject", Sid="Grant"), deny("*", "s3:PutObject", Sid="Stop")))
    bucket = BucketAccess(owner=OWNER, policy=p, block=OFF)
    assert access.decide(BOB, need("GetObject", "k"), bucket).statement == "Grant"
    assert access.decide(BOB, need("PutObject", "k"), bucket).statement == "Stop"
    assert access.decide(ALICE, need("GetObject", "k"), bucket).statement is None   # ownership, not a statement
    assert access.decide(ANON, need("GetObject", "k"), bucket).statement is None    # implicit deny


def test_decide_with_no_context_at_all():
    """A policy whose conditions read nothing in an empty context: a positive operator fails."""
    p = policy_of(doc(allow("*", "s3:GetObject", Condition={"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}})))
    v = access.decide(ANON, need("GetObject", "k"), BucketAccess(owner=OWNER, policy=p, block=OFF))
    assert (v.allowed, v.effect) == (False, None)


def test_bucket_access_defaults():
    """A new bucket: all four Block Public Access settings on, ACLs disabled."""
    b = BucketAccess(owner=OWNER)
    assert b.block == PublicAccessBlock(True, True, True, True)
    assert b.ownership == "BucketOwnerEnforced" and b.policy is None and b.public_policy is False
    assert OFF == PublicAccessBlock(False, False, False, False)
    assert BucketAccess(owner=OWNER, policy=policy_of(PUBLIC_PREFIX)).public_policy is True
    assert BucketAccess(owner=OWNER, policy=policy_of(TO_OTHER)).public_policy is False


# ----------------------------------------------------------------------------- is_public

def wild(condition=None, principal="*", effect="Allow"):
    st = {"Effect": effect, "Principal": principal, "Action": "s3:GetObject", "Resource": OBJECTS}
    if condition:
        st["Condition"] = condition
    return doc(st)


@pytest.mark.parametrize("document, public", [
    pytest.param(wild(), True, id="Principal *"),
    pytest.param(wild(principal={"AWS": "*"}), True, id="AWS *"),
    pytest.param(wild(principal={"AWS": ["111122223333", "*"]}), True, id="a wildcard among accounts"),
    pytest.param(wild({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}), False, id="SourceIp 10.0.0.0/8"),
    pytest.param(wild({"IpAddress": {"aws:SourceIp": ["192.0.2.0/24", "203.0.113.7/32"]}}), False,
                 id="SourceIp fixed CIDRs"),
    pytest.param(wild({"IpAddress": {"aws:SourceIp": "2001:db8::/32"}}), False, id="SourceIp IPv6 /32"),
    pytest.param(wild({"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}), True, id="SourceIp 0.0.0.0/0"),
    pytest.param(wild({"IpAddress": {"aws:SourceIp": "::/0"}}), True, id="SourceIp ::/0"),
    pytest.param(wild({"IpAddress": {"aws:SourceIp": ["192.0.2.0/24", "0.0.0.0/0"]}}), True,
                 id="SourceIp a fixed CIDR and /0"),
    pytest.param(wild({"IpAddress": {"aws:SourceIp": "0.0.0.0/1"}}), True, id="SourceIp 0.0.0.0/1 (too broad)"),
    pytest.param(wild({"IpAddress": {"aws:SourceIp": "2001:db8::/16"}}), True,
                 id="SourceIp IPv6 /16 (too broad)"),
    pytest.param(wild({"NotIpAddress": {"aws:SourceIp": "192.0.2.0/24"}}), True, id="NotIpAddress fixes nothing"),
    pytest.param(wild({"IpAddressIfExists": {"aws:SourceIp": "192.0.2.0/24"}}), True,
                 id="IpAddressIfExists fixes nothing"),
    pytest.param(wild({"StringEquals": {"aws:SourceAccount": "111122223333"}}), False, id="SourceAccount fixed"),
    pytest.param(wild({"StringLike": {"aws:SourceAccount": "1111*"}}), True, id="SourceAccount wildcard"),
    pytest.param(wild({"StringLike": {"aws:SourceAccount": "11112222333?"}}), True,
                 id="SourceAccount ? wildcard"),
    pytest.param(wild({"StringEquals": {"aws:SourceAccount": "${aws:PrincipalAccount}"}}), True,
                 id="SourceAccount policy variable"),
    pytest.param(wild({"StringNotEquals": {"aws:SourceAccount": "111122223333"}}), True,
                 id="StringNotEquals SourceAccount fixes nothing"),
    pytest.param(wild({"StringEqualsIfExists": {"aws:SourceAccount": "111122223333"}}), True,
                 id="SourceAccount IfExists fixes nothing"),
    pytest.param(wild({"StringLike": {"aws:SourceVpc": "vpc-*"}}), True, id="guide: SourceVpc vpc-*"),
    pytest.param(wild({"StringEquals": {"aws:SourceVpc": "vpc-91237329"}}), False, id="guide: SourceVpc fixed"),
    pytest.param(wild({"ArnEquals": {"aws:SourceArn": "arn:aws:cloudtrail:us-east-1:111122223333:trail/t"}}),
                 False, id="SourceArn fixed"),
    pytest.param(wild({"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}}), False, id="PrincipalOrgID fixed"),
    pytest.param(wild({"StringLike": {"aws:userid": "AROAEXAMPLEID:*"}}), True, id="guide: userid AROLEID:*"),
    pytest.param(wild({"StringEquals": {"aws:userid": "AIDAEXAMPLEID"}}), False, id="userid fixed"),
    pytest.param(wild({"StringEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id":
                                        "arn:aws:kms:us-east-1:111122223333:key/1234abcd"}}), False,
                 id="guide: kms key id fixed"),
    pytest.param(wild({"ArnLike": {"s3:DataAccessPointArn": "arn:aws:s3:us-west-2:123456789012:accesspoint/*"}}),
                 False, id="guide: DataAccessPointArn any access point of one account"),
    pytest.param(wild({"StringLike": {"aws:Referer": "https://www.example.com/*"}}), True, id="Referer only"),
    pytest.param(wild({"Bool": {"aws:SecureTransport": "true"}}), True, id="SecureTransport only"),
    pytest.param(wild(effect="Deny"), False, id="Deny only"),
    pytest.param(doc({"Effect": "Allow", "NotPrincipal": {"AWS": "111122223333"}, "Action": "s3:GetObject",
                      "Resource": OBJECTS}), True, id="NotPrincipal allow"),
    pytest.param(wild(principal={"AWS": "444455556666"}), False, id="a specific account"),
    pytest.param(wild(principal={"AWS": "arn:aws:iam::444455556666:user/bob"}), False, id="a specific user"),
    pytest.param(wild(principal={"CanonicalUser": "c" * 64}), False, id="a canonical user"),
    pytest.param(MIXED, True, id="guide: one public statement makes the whole policy public"),
])
def test_is_public(document, public):
    assert access.is_public(policy_of(document)) is public


# ----------------------------------------------------------------------------- accounts and principals

def test_account_id_keeps_twelve_digits():
    assert access.account_id("111122223333") == "111122223333"
    assert access.account_id("000000000001") == "000000000001"


@pytest.mark.parametrize("name", ["alice-corp", "acme", "1111222233334", "11112222333", "ops"])
def test_account_id_of_a_name_is_stable_and_twelve_digits(name):
    aid = access.account_id(name)
    assert len(aid) == 12 and aid.isdigit()
    assert access.account_id(name) == aid
    assert aid != name


def test_account_ids_of_different_names_differ():
    names = ["acme", "acme2", "Acme", "globex", "initech", "umbrella", "a", "b"]
    assert len({access.account_id(n) for n in names}) == len(names)


def test_canonical_id():
    cid = access.canonical_id("acme")
    assert len(cid) == 64 and all(c in "0123456789abcdef" for c in cid)
    assert cid == access.canonical_id("acme") != access.canonical_id("globex")


def test_principal_of_anonymous():
    p = access.principal_of(None)
    assert p.anonymous and (p.account, p.arn, p.canonical_id) == (None, None, None)
    assert access.principal_of(None, "alice").anonymous


def test_principal_of_root_and_user():
    aid = access.account_id("acme")
    root = access.principal_of("acme")
    assert (root.account, root.arn, root.canonical_id) == (aid, f"arn:aws:iam::{aid}:root",
                                                           access.canonical_id("acme"))
    assert not root.anonymous
    user = access.principal_of("acme", "alice")
    assert (user.account, user.arn) == (aid, f"arn:aws:iam::{aid}:user/alice")
    assert user.canonical_id == root.canonical_id
    assert access.principal_of(OWNER).arn == "arn:aws:iam::111122223333:root"


def test_a_named_account_owns_its_bucket():
    """The owner given by name matches a principal built from the same name (ids derived alike)."""
    bucket = BucketAccess(owner="acme", policy=None)
    assert access.decide(access.principal_of("acme", "alice"), need("GetObject", "k"), bucket).allowed
    assert not access.decide(access.principal_of("globex"), need("GetObject", "k"), bucket).allowed


# ----------------------------------------------------------------------------- ACL headers

OWNER_CID, OTHER_CID = access.canonical_id("owner"), access.canonical_id("other")


@pytest.mark.parametrize("headers, ok", [
    ({}, True),
    ({"x-amz-acl": "private"}, True),
    ({"x-amz-acl": "bucket-owner-full-control"}, True),
    ({"x-amz-acl": "public-read"}, False),
    ({"x-amz-acl": "public-read-write"}, False),
    ({"x-amz-acl": "authenticated-read"}, False),
    ({"x-amz-acl": "bucket-owner-read"}, False),
    ({"x-amz-acl": "aws-exec-read"}, False),
    ({"x-amz-acl": "log-delivery-write"}, False),
    ({"x-amz-grant-full-control": f'id="{OWNER_CID}"'}, True),
    ({"x-amz-grant-full-control": f' id="{OWNER_CID}" '}, True),
    ({"x-amz-grant-full-control": f'id="{OTHER_CID}"'}, False),
    ({"x-amz-grant-full-control": f'id="{OWNER_CID}", id="{OTHER_CID}"'}, False),
    ({"x-amz-grant-read": f'id="{OWNER_CID}"'}, False),
    ({"x-amz-grant-full-control": f'id="{OWNER_CID}"', "x-amz-grant-read": f'id="{OWNER_CID}"'}, False),
    ({"x-amz-grant-read": 'uri="http://acs.amazonaws.com/groups/global/AllUsers"'}, False),
    ({"x-amz-grant-write-acp": f'id="{OTHER_CID}"'}, False),
    ({"content-type": "text/plain"}, True),
])
def test_acl_headers_allowed(headers, ok):
    assert access.acl_headers_allowed(headers, OWNER_CID) is ok


def test_unknown_canned_acl_is_invalid_argument():
    with pytest.raises(E.InvalidArgument) as e:
        access.acl_headers_allowed({"x-amz-acl": "everyone"}, OWNER_CID)
    assert e.value.extra == {"ArgumentName": "x-amz-acl", "ArgumentValue": "everyone"}
    assert e.value.status == 400


def test_canned_acl_with_grants_is_invalid_request():
    with pytest.raises(E.InvalidRequest) as e:
        access.acl_headers_allowed({"x-amz-acl": "private", "x-amz-grant-read": f'id="{OWNER_CID}"'}, OWNER_CID)
    assert "Canned ACLs and Header Grants" in e.value.message


@pytest.mark.parametrize("headers, public", [
    ({}, False),
    ({"x-amz-acl": "private"}, False),
    ({"x-amz-acl": "bucket-owner-full-control"}, False),
    ({"x-amz-acl": "bucket-owner-read"}, False),
    ({"x-amz-acl": "aws-exec-read"}, False),
    ({"x-amz-acl": "log-delivery-write"}, False),
    ({"x-amz-acl": "public-read"}, True),
    ({"x-amz-acl": "public-read-write"}, True),
    ({"x-amz-acl": "authenticated-read"}, True),
    ({"x-amz-grant-read": 'uri="http://acs.amazonaws.com/groups/global/AllUsers"'}, True),
    ({"x-amz-grant-write": 'uri="http://acs.amazonaws.com/groups/global/AuthenticatedUsers"'}, True),
    ({"x-amz-grant-full-control": f'id="{OWNER_CID}", uri="http://acs.amazonaws.com/groups/global/AllUsers"'},
     True),
    ({"x-amz-grant-write": 'uri="http://acs.amazonaws.com/groups/s3/LogDelivery"'}, False),
    ({"x-amz-grant-read": f'id="{OTHER_CID}"'}, False),
])
def test_public_acl(headers, public):
    assert acl_mod.is_public(acl_mod.from_headers(headers, OWNER_CID, OWNER_CID)) is public


# ----------------------------------------------------------------------------- the request context

def rc(who, user=None, **kw):
    args = dict(source_ip="192.0.2.1", secure=True, headers={}, query={}, auth_mode="header", now_epoch=NOW)
    args.update(kw)
    return access.request_context(principal=who, user=user, **args)


def test_context_of_an_anonymous_request():
    c = rc(ANON)
    assert c == {"aws:SecureTransport": "true", "aws:CurrentTime": "2023-11-14T22:13:20Z",
                 "aws:EpochTime": "1700000000", "aws:PrincipalType": "Anonymous", "aws:SourceIp": "192.0.2.1"}


def test_context_of_the_accounts_root():
    c = rc(ROOT)
    assert c["aws:PrincipalType"] == "Account"
    assert c["aws:PrincipalAccount"] == OWNER
    assert c["aws:PrincipalArn"] == f"arn:aws:iam::{OWNER}:root"
    assert c["aws:userid"] == OWNER
    assert "aws:username" not in c
    assert c["s3:signatureversion"] == "AWS4-HMAC-SHA256" and c["s3:authType"] == "REST-HEADER"
    assert "s3:signatureAge" not in c


def test_context_of_a_user():
    c = rc(ALICE, "alice", secure=False)
    assert c["aws:PrincipalType"] == "User"
    assert c["aws:PrincipalArn"] == f"arn:aws:iam::{OWNER}:user/alice"
    assert c["aws:username"] == "alice" and c["aws:userid"] == f"{OWNER}:alice"
    assert c["aws:SecureTransport"] == "false"


@pytest.mark.parametrize("mode, version, auth_type", [
    ("header", "AWS4-HMAC-SHA256", "REST-HEADER"),
    ("presigned", "AWS4-HMAC-SHA256", "REST-QUERY-STRING"),
    ("post", "AWS4-HMAC-SHA256", "POST"),
    ("sigv2-header", "AWS", "REST-HEADER"),
    ("sigv2-presigned", "AWS", "REST-QUERY-STRING"),
])
def test_context_signature_keys(mode, version, auth_type):
    c = rc(BOB, "bob", auth_mode=mode, signature_age_ms=1234)
    assert (c["s3:signatureversion"], c["s3:authType"], c["s3:signatureAge"]) == (version, auth_type, "1234")


def test_context_query_keys_only_when_present():
    assert not {"s3:prefix", "s3:delimiter", "s3:max-keys", "s3:VersionId"} & set(rc(BOB, "bob"))
    c = rc(BOB, "bob", query={"prefix": "home/bob/", "delimiter": "/", "max-keys": "10", "versionId": "v1",
                              "list-type": "2"})
    assert (c["s3:prefix"], c["s3:delimiter"], c["s3:max-keys"], c["s3:VersionId"]) == ("home/bob/", "/", "10", "v1")
    assert "s3:list-type" not in c
    assert rc(BOB, "bob", query={"prefix": ""})["s3:prefix"] == ""        # present though empty


def test_context_header_keys():
    c = rc(BOB, "bob", headers={"x-amz-acl": "bucket-owner-full-control", "referer": "https://www.example.com/",
                                "user-agent": "aws-cli/2", "x-amz-server-side-encryption": "aws:kms",
                                "x-amz-grant-read": 'id="x"', "x-amz-meta-colour": "blue"})
    assert c["s3:x-amz-acl"] == "bucket-owner-full-control"
    assert c["aws:Referer"] == "https://www.example.com/" and c["aws:UserAgent"] == "aws-cli/2"
    assert c["s3:x-amz-server-side-encryption"] == "aws:kms" and c["s3:x-amz-grant-read"] == 'id="x"'
    assert not any("meta" in k for k in c)


def test_context_without_a_source_address():
    assert "aws:SourceIp" not in rc(ANON, source_ip=None)


def test_context_tags():
    c = rc(BOB, "bob", tags=[("project", "x"), ("env", "prod")], existing_tags=[("classification", "public")])
    assert c["s3:RequestObjectTagKeys"] == ["project", "env"]
    assert (c["s3:RequestObjectTag/project"], c["s3:RequestObjectTag/env"]) == ("x", "prod")
    assert c["s3:ExistingObjectTag/classification"] == "public"
    assert rc(BOB, "bob", tags=[])["s3:RequestObjectTagKeys"] == []
    assert not any(k.startswith(("s3:RequestObjectTag", "s3:ExistingObjectTag")) for k in rc(BOB, "bob"))


def test_context_request_tags_drive_a_condition():
    """ForAllValues over s3:RequestObjectTagKeys ("Restricting object tag keys" example)."""
    p = policy_of(doc(allow({"AWS": OTHER}, "s3:PutObject",
                            Condition={"ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": ["project", "env"]}})))
    bucket = BucketAccess(owner=OWNER, policy=p)
    ok = access.decide(BOB, need("PutObject", "k"), bucket, rc(BOB, "bob", tags=[("env", "prod")]))
    bad = access.decide(BOB, need("PutObject", "k"), bucket, rc(BOB, "bob", tags=[("env", "p"), ("owner", "x")]))
    assert ok.allowed and not bad.allowed


@pytest.mark.parametrize("document, tests", [
    (None, False),
    (TO_OTHER, False),
    (doc(allow({"AWS": OTHER}, "s3:GetObject",
               Condition={"StringEquals": {"s3:ExistingObjectTag/classification": "public"}})), True),
    (doc(allow({"AWS": OTHER}, "s3:PutObject",
               Condition={"StringEquals": {"s3:RequestObjectTag/classification": "public"}})), False),
    (doc(allow({"AWS": OTHER}, "s3:GetObject"),
         deny("*", "s3:GetObject", Condition={"StringEquals": {"S3:EXISTINGOBJECTTAG/x": "y"}})), True),
])
def test_tests_existing_tags(document, tests):
    assert access.tests_existing_tags(policy_of(document)) is tests


# ----------------------------------------------------------------------------- access_xml

def pab(body: str) -> bytes:
    return f'<PublicAccessBlockConfiguration xmlns="{S3}">{body}</PublicAccessBlockConfiguration>'.encode()


def test_parse_public_access_block_full():
    body = pab("<BlockPublicAcls>true</BlockPublicAcls><IgnorePublicAcls>false</IgnorePublicAcls>"
               "<BlockPublicPolicy>TRUE</BlockPublicPolicy><RestrictPublicBuckets> false </RestrictPublicBuckets>")
    assert parse_public_access_block(body) == PublicAccessBlock(True, False, True, False)


@pytest.mark.parametrize("body, expected", [
    ("", OFF),
    ("<BlockPublicAcls>true</BlockPublicAcls>", PublicAccessBlock(True, False, False, False)),
    ("<RestrictPublicBuckets>true</RestrictPublicBuckets>", PublicAccessBlock(False, False, False, True)),
])
def test_parse_public_access_block_missing_fields_are_false(body, expected):
    assert parse_public_access_block(pab(body)) == expected


@pytest.mark.parametrize("body", [
    pab("<BlockPublicAcls>yes</BlockPublicAcls>"),
    pab("<BlockPublicAcls>1</BlockPublicAcls>"),
    pab("<BlockPublicAcls></BlockPublicAcls>"),
    pab("<BlockPublicAcls>true</BlockPublicAcls><BlockPublicAcls>true</BlockPublicAcls>"),
    pab("<BlockPublicAcls><x/></BlockPublicAcls>"),
    b"<OwnershipControls/>",
    b"not xml",
])
def test_parse_public_access_block_malformed(body):
    with pytest.raises(E.MalformedXML):
        parse_public_access_block(body)


@pytest.mark.parametrize("block", [OFF, PublicAccessBlock(), PublicAccessBlock(True, False, True, False),
                                   PublicAccessBlock(False, True, False, True)])
def test_public_access_block_round_trip(block):
    body = public_access_block_xml(block)
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(body)
    assert root.tag == f"{{{S3}}}PublicAccessBlockConfiguration"
    assert [el.tag.split("}")[1] for el in root] == ["BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                                                     "RestrictPublicBuckets"]
    assert parse_public_access_block(body) == block


@pytest.mark.parametrize("setting", ["BucketOwnerEnforced", "BucketOwnerPreferred", "ObjectWriter"])
def test_ownership_controls_round_trip(setting):
    body = f'<OwnershipControls xmlns="{S3}"><Rule><ObjectOwnership>{setting}</ObjectOwnership></Rule>' \
           '</OwnershipControls>'
    assert parse_ownership_controls(body.encode()) == setting
    assert parse_ownership_controls(ownership_controls_xml(setting)) == setting


@pytest.mark.parametrize("body", [
    "<OwnershipControls><Rule><ObjectOwnership>BucketOwner</ObjectOwnership></Rule></OwnershipControls>",
    "<OwnershipControls><Rule><ObjectOwnership>bucketownerenforced</ObjectOwnership></Rule></OwnershipControls>",
    "<OwnershipControls><Rule><ObjectOwnership></ObjectOwnership></Rule></OwnershipControls>",
    "<OwnershipControls><Rule></Rule></OwnershipControls>",
    "<OwnershipControls></OwnershipControls>",
    "<OwnershipControls><Rule><ObjectOwnership>ObjectWriter</ObjectOwnership></Rule>"
    "<Rule><ObjectOwnership>ObjectWriter</ObjectOwnership></Rule></OwnershipControls>",
    "<OwnershipControls><Rule><ObjectOwnership>ObjectWriter</ObjectOwnership>"
    "<ObjectOwnership>ObjectWriter</ObjectOwnership></Rule></OwnershipControls>",
    "<Ownership><Rule><ObjectOwnership>ObjectWriter</ObjectOwnership></Rule></Ownership>",
])
def test_parse_ownership_controls_invalid(body):
    with pytest.raises(E.MalformedXML):
        parse_ownership_controls(body.encode())


@pytest.mark.parametrize("public", [True, False])
def test_policy_status_xml(public):
    root = ET.fromstring(policy_status_xml(public))
    assert root.tag == f"{{{S3}}}PolicyStatus"
    assert root.find(f"{{{S3}}}IsPublic").text == ("true" if public else "false")


def owner_only(body: bytes, owner_cid: str) -> bool:
    """Does the ACL document grant nothing but FULL_CONTROL to ``owner_cid`` (the one ACL a
    bucket with ACLs disabled takes)?"""
    return acl_mod.parse_xml(body)[1] in ([], acl_mod.owner_only(owner_cid))


def test_owner_only_acl_round_trip():
    body = acl_mod.to_xml((OWNER_CID, "owner"), acl_mod.owner_only(OWNER_CID))
    assert owner_only(body, OWNER_CID) is True
    assert owner_only(body, OTHER_CID) is False
    root = ET.fromstring(body)
    assert root.find(f"{{{S3}}}Owner/{{{S3}}}ID").text == OWNER_CID
    assert root.find(f"{{{S3}}}Owner/{{{S3}}}DisplayName").text == "owner"
    grants = root.findall(f"{{{S3}}}AccessControlList/{{{S3}}}Grant")
    assert len(grants) == 1
    grantee = grants[0].find(f"{{{S3}}}Grantee")
    assert grantee.get("{http://www.w3.org/2001/XMLSchema-instance}type") == "CanonicalUser"
    assert grants[0].find(f"{{{S3}}}Permission").text == "FULL_CONTROL"


def test_owner_only_acl_without_a_display_name():
    body = acl_mod.to_xml((OWNER_CID, ""), acl_mod.owner_only(OWNER_CID))
    assert b"DisplayName" not in body
    assert owner_only(body, OWNER_CID)


def acl(*grants: tuple[str, str]) -> bytes:
    """An AccessControlPolicy granting (grantee XML, permission) pairs."""
    xsi = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
    body = "".join(f"<Grant><Grantee {xsi} {g}</Grantee><Permission>{p}</Permission></Grant>" for g, p in grants)
    return (f'<AccessControlPolicy xmlns="{S3}"><Owner><ID>{OWNER_CID}</ID></Owner>'
            f"<AccessControlList>{body}</AccessControlList></AccessControlPolicy>").encode()


def user(cid):
    return f'xsi:type="CanonicalUser"><ID>{cid}</ID>'


ALL_USERS = 'xsi:type="Group"><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI>'


@pytest.mark.parametrize("body, only", [
    (acl((user(OWNER_CID), "FULL_CONTROL")), True),
    (acl(), True),
    (acl((user(OTHER_CID), "FULL_CONTROL")), False),
    (acl((user(OWNER_CID), "FULL_CONTROL"), (user(OTHER_CID), "READ")), False),
    (acl((user(OWNER_CID), "READ")), False),
    (acl((user(OWNER_CID), "FULL_CONTROL"), (ALL_USERS, "READ")), False),
])
def test_acl_grants_owner_only(body, only):
    assert owner_only(body, OWNER_CID) is only


@pytest.mark.parametrize("body, error", [
    (f'<AccessControlPolicy xmlns="{S3}"><Owner><ID>{OWNER_CID}</ID></Owner></AccessControlPolicy>'.encode(),
     E.MalformedACLError),
    (f'<AccessControlPolicy xmlns="{S3}"><AccessControlList><Grant><Permission>READ</Permission></Grant>'
     "</AccessControlList></AccessControlPolicy>".encode(), E.MalformedACLError),
    (b"<AccessControl/>", E.MalformedXML),
])
def test_acl_grants_owner_only_malformed(body, error):
    with pytest.raises(error):
        owner_only(body, OWNER_CID)
