"""ACLs (core/acl.py): canned ACLs, grant headers, the AccessControlPolicy document, and what a
grant permits, as the S3 User Guide's "Access control list (ACL) overview" describes them; and
how an ACL takes part in a request's decision (core/access.py, step 5)."""
import pytest

from minis3.core import acl
from minis3.core import errors as E
from minis3.core.access import OFF, BucketAccess, PublicAccessBlock, decide, principal_of
from minis3.core.actions import Need, needs

OWNER, OTHER = "a" * 64, "b" * 64


@pytest.mark.parametrize("name,extra", [
    ("private", []), ("public-read", [("uri", acl.ALL_USERS, "READ")]),
    ("public-read-write", [("uri", acl.ALL_USERS, "READ"), ("uri", acl.ALL_USERS, "WRITE")]),
    ("authenticated-read", [("uri", acl.AUTHENTICATED_USERS, "READ")]),
    ("bucket-owner-read", [("id", OTHER, "READ")]), ("bucket-owner-full-control", [("id", OTHER, "FULL_CONTROL")]),
    ("log-delivery-write", [("uri", acl.LOG_DELIVERY, "WRITE"), ("uri", acl.LOG_DELIVERY, "READ_ACP")]),
])
def test_canned_acls(name, extra):
    assert acl.canned(name, OWNER, OTHER) == [("id", OWNER, "FULL_CONTROL")] + extra


def test_grant_headers():
    h = {"x-amz-grant-read": f'id="{OTHER}", uri="{acl.ALL_USERS}"', "x-amz-grant-full-control": f'id="{OWNER}"'}
    assert acl.from_headers(h, OWNER) == [("id", OTHER, "READ"), ("uri", acl.ALL_USERS, "READ"),
                                          ("id", OWNER, "FULL_CONTROL")]
    assert acl.from_headers({}, OWNER) is None
    with pytest.raises(E.InvalidRequest):
        acl.from_headers({"x-amz-acl": "private", "x-amz-grant-read": f'id="{OTHER}"'}, OWNER)
    with pytest.raises(E.UnresolvableGrantByEmailAddress):
        acl.from_headers({"x-amz-grant-read": 'emailAddress="x@example.com"'}, OWNER)
    with pytest.raises(E.InvalidArgument):
        acl.from_headers({"x-amz-grant-read": 'uri="http://example.com/not-a-group"'}, OWNER)
    with pytest.raises(E.InvalidArgument):
        acl.from_headers({"x-amz-acl": "world-writable"}, OWNER)


def test_the_document_round_trips_and_bad_ones_are_refused():
    grants = [("id", OWNER, "FULL_CONTROL"), ("uri", acl.ALL_USERS, "READ"), ("id", OTHER, "WRITE_ACP")]
    body = acl.to_xml((OWNER, "me"), grants, {OTHER: "them"})
    assert b"<DisplayName>them</DisplayName>" in body and b'xsi:type="Group"' in body
    assert acl.parse_xml(body) == (OWNER, grants)
    with pytest.raises(E.MalformedACLError):
        acl.parse_xml(body.replace(b"WRITE_ACP", b"DELETE"))
    with pytest.raises(E.MalformedACLError):
        acl.parse_xml(b"<AccessControlPolicy><Owner><ID>x</ID></Owner></AccessControlPolicy>")


def test_what_a_grant_permits():
    grants = [("id", OTHER, "READ"), ("uri", acl.AUTHENTICATED_USERS, "READ_ACP"), ("id", OWNER, "FULL_CONTROL")]
    assert acl.permits(grants, OTHER, "READ") and not acl.permits(grants, OTHER, "WRITE")
    assert acl.permits(grants, "c" * 64, "READ_ACP") and not acl.permits(grants, None, "READ_ACP")
    assert acl.permits(grants, OWNER, "WRITE_ACP")                          # FULL_CONTROL holds them all
    assert not acl.permits(grants, "c" * 64, "READ_ACP", ignore_public=True)
    assert acl.permits([("uri", acl.ALL_USERS, "READ")], None, "READ")
    assert acl.is_public([("uri", acl.AUTHENTICATED_USERS, "READ")]) and not acl.is_public(grants[:1])
    assert not acl.is_public([("uri", acl.LOG_DELIVERY, "WRITE")])


# ----------------------------------------------------------------------------- in the decision
ANON, THEM = principal_of(None), principal_of("them")
PUBLIC_READ = (("id", principal_of("me").canonical_id, "FULL_CONTROL"), ("uri", acl.ALL_USERS, "READ"))


def bucket(ownership="ObjectWriter", block=OFF, grants=None):
    return BucketAccess(owner="me", block=block, ownership=ownership, acl=grants)


@pytest.mark.parametrize("who,need,b,object_acl,allowed", [
    (ANON, needs("ListObjectsV2", "b", None)[0], bucket(grants=PUBLIC_READ), None, True),
    (ANON, needs("PutObject", "b", "k")[0], bucket(grants=PUBLIC_READ), None, False),
    (ANON, needs("GetObject", "b", "k")[0], bucket(), list(PUBLIC_READ), True),
    (ANON, needs("GetObject", "b", "k")[0], bucket(ownership="BucketOwnerEnforced"), list(PUBLIC_READ), False),
    (ANON, needs("GetObject", "b", "k")[0], bucket(block=PublicAccessBlock(False, True, False, False)),
     list(PUBLIC_READ), False),
    (THEM, needs("PutObject", "b", "k")[0], bucket(grants=(("id", THEM.canonical_id, "WRITE"),)), None, True),
    (THEM, needs("DeleteObject", "b", "k")[0], bucket(grants=(("id", THEM.canonical_id, "FULL_CONTROL"),)), None,
     True),
    (THEM, needs("GetObjectAcl", "b", "k")[0], bucket(), [("id", THEM.canonical_id, "READ")], False),
    (THEM, Need("s3:GetObjectAcl", "arn:aws:s3:::b/k"), bucket(), [("id", THEM.canonical_id, "READ_ACP")], True),
    (THEM, needs("GetBucketPolicy", "b", None)[0], bucket(grants=(("id", THEM.canonical_id, "FULL_CONTROL"),)),
     None, False),
])
def test_acls_in_the_decision(who, need, b, object_acl, allowed):
    v = decide(who, need, b, {}, object_acl=object_acl)
    assert v.allowed is allowed, v
    if allowed:
        assert "ACL" in v.by
