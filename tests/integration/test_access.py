"""Who may do what, through boto3 against a real cluster: two accounts, a user of the first,
and an anonymous client. Bucket policies (cross-account grants, explicit denies, public read
of one prefix, conditions), Block Public Access, Object Ownership and ACLs (docs/access.md)."""
from __future__ import annotations

import json
import uuid

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from minis3.core.access import account_id, canonical_id

from .s3helpers import remove_bucket
from .cluster import (ACCESS_KEY, SECOND_ACCESS_KEY, SECOND_SECRET_KEY, USER_ACCESS_KEY, USER_SECRET_KEY)

OWNER_ID = account_id(ACCESS_KEY)            # the first account (ACCESS_KEY's; the test cluster names accounts by key)
OTHER_ID = account_id(SECOND_ACCESS_KEY)


def _client(cluster, **kw):
    return boto3.client("s3", endpoint_url=cluster.endpoint, region_name="us-east-1",
                        config=Config(retries={"max_attempts": 1}, **kw.pop("config", {})), **kw)


@pytest.fixture(scope="module")
def other(cluster):
    return _client(cluster, aws_access_key_id=SECOND_ACCESS_KEY, aws_secret_access_key=SECOND_SECRET_KEY)


@pytest.fixture(scope="module")
def alice(cluster):
    return _client(cluster, aws_access_key_id=USER_ACCESS_KEY, aws_secret_access_key=USER_SECRET_KEY)


@pytest.fixture(scope="module")
def anon(cluster):
    return _client(cluster, config={"signature_version": UNSIGNED})


@pytest.fixture
def shared(s3):
    """A bucket of the first account, emptied and removed after the test (as its owner, with
    its policy deleted first, so no test's deny can keep it)."""
    name = f"acc-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    yield name
    remove_bucket(s3, name)


def err(e) -> tuple[str, int]:
    return e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]


def denied(call, **kw) -> tuple[str, int]:
    with pytest.raises(ClientError) as e:
        call(**kw)
    return err(e)


def policy(bucket: str, *statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def put_policy(s3, bucket, *statements):
    s3.put_bucket_policy(Bucket=bucket, Policy=policy(bucket, *statements))


def public(s3, bucket):
    """Let the bucket take a public policy: Block Public Access off (a new bucket has it on)."""
    s3.delete_public_access_block(Bucket=bucket)


# ----------------------------------------------------------------------------- a new bucket
def test_a_new_bucket_has_s3s_defaults(s3, shared):
    assert s3.get_public_access_block(Bucket=shared)["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
    rules = s3.get_bucket_ownership_controls(Bucket=shared)["OwnershipControls"]["Rules"]
    assert rules == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert denied(s3.get_bucket_policy, Bucket=shared) == ("NoSuchBucketPolicy", 404)
    assert denied(s3.get_bucket_policy_status, Bucket=shared) == ("NoSuchBucketPolicy", 404)
    acl = s3.get_bucket_acl(Bucket=shared)
    assert acl["Owner"]["ID"] == canonical_id(ACCESS_KEY)
    assert [(g["Grantee"]["ID"], g["Permission"]) for g in acl["Grants"]] == [(canonical_id(ACCESS_KEY), "FULL_CONTROL")]


def test_another_account_and_anonymous_are_refused_without_a_grant(s3, other, anon, shared):
    s3.put_object(Bucket=shared, Key="k", Body=b"mine")
    for client in (other, anon):
        assert denied(client.get_object, Bucket=shared, Key="k") == ("AccessDenied", 403)
        assert denied(client.put_object, Bucket=shared, Key="k2", Body=b"x") == ("AccessDenied", 403)
        assert denied(client.list_objects_v2, Bucket=shared) == ("AccessDenied", 403)
        assert denied(client.get_bucket_policy, Bucket=shared) == ("AccessDenied", 403)
    assert denied(anon.list_buckets) == ("AccessDenied", 403)
    assert denied(anon.create_bucket, Bucket=f"anon-{uuid.uuid4().hex[:8]}") == ("AccessDenied", 403)


# ----------------------------------------------------------------------------- policies
def test_policy_round_trip_and_malformed_policies(s3, shared):
    doc = policy(shared, {"Sid": "ReadIt", "Effect": "Allow", "Principal": {"AWS": OTHER_ID},
                          "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{shared}/*"})
    s3.put_bucket_policy(Bucket=shared, Policy=doc)
    assert json.loads(s3.get_bucket_policy(Bucket=shared)["Policy"]) == json.loads(doc)
    assert s3.get_bucket_policy_status(Bucket=shared)["PolicyStatus"] == {"IsPublic": False}
    for bad in ("not json", json.dumps({"Statement": []}),
                policy(shared, {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                "Resource": "arn:aws:s3:::some-other-bucket/*"}),
                policy(shared, {"Effect": "Maybe", "Principal": "*", "Action": "s3:GetObject",
                                "Resource": f"arn:aws:s3:::{shared}/*"})):
        assert denied(s3.put_bucket_policy, Bucket=shared, Policy=bad) == ("MalformedPolicy", 400)
    s3.delete_bucket_policy(Bucket=shared)
    assert denied(s3.get_bucket_policy, Bucket=shared) == ("NoSuchBucketPolicy", 404)


def test_cross_account_access_granted_by_policy(s3, other, shared):
    s3.put_object(Bucket=shared, Key="docs/a", Body=b"shared bytes")
    put_policy(s3, shared,
               {"Sid": "OtherReads", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER_ID}:root"},
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": [f"arn:aws:s3:::{shared}", f"arn:aws:s3:::{shared}/*"]},
               {"Sid": "OtherWritesInbox", "Effect": "Allow", "Principal": {"AWS": OTHER_ID},
                "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{shared}/inbox/*"})
    assert other.get_object(Bucket=shared, Key="docs/a")["Body"].read() == b"shared bytes"
    listing = other.list_objects_v2(Bucket=shared)
    assert [o["Key"] for o in listing["Contents"]] == ["docs/a"]
    other.put_object(Bucket=shared, Key="inbox/from-other", Body=b"hello")
    assert denied(other.put_object, Bucket=shared, Key="docs/b", Body=b"x") == ("AccessDenied", 403)
    assert denied(other.delete_object, Bucket=shared, Key="docs/a") == ("AccessDenied", 403)
    assert denied(other.put_bucket_policy, Bucket=shared, Policy=policy(shared, {
        "Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": f"arn:aws:s3:::{shared}/*"})) == \
        ("AccessDenied", 403)
    # Written by the other account, owned by the bucket owner (BucketOwnerEnforced): the owner reads it.
    assert s3.get_object(Bucket=shared, Key="inbox/from-other")["Body"].read() == b"hello"
    owners = {o["Key"]: o["Owner"]["ID"] for o in s3.list_objects_v2(Bucket=shared, FetchOwner=True)["Contents"]}
    assert owners["inbox/from-other"] == canonical_id(ACCESS_KEY)


def test_cross_account_copy_needs_read_on_the_source_and_write_on_the_destination(s3, other, shared):
    s3.put_object(Bucket=shared, Key="src", Body=b"copy me")
    theirs = f"acc-theirs-{uuid.uuid4().hex[:8]}"
    other.create_bucket(Bucket=theirs)
    try:
        assert denied(other.copy_object, Bucket=theirs, Key="dst", CopySource={"Bucket": shared, "Key": "src"}) == \
            ("AccessDenied", 403)
        put_policy(s3, shared, {"Effect": "Allow", "Principal": {"AWS": OTHER_ID}, "Action": "s3:GetObject",
                                "Resource": f"arn:aws:s3:::{shared}/*"})
        other.copy_object(Bucket=theirs, Key="dst", CopySource={"Bucket": shared, "Key": "src"})
        assert other.get_object(Bucket=theirs, Key="dst")["Body"].read() == b"copy me"
        # Reading the source is not writing to it: copying into the owner's bucket stays refused.
        assert denied(other.copy_object, Bucket=shared, Key="dst", CopySource={"Bucket": theirs, "Key": "dst"}) == \
            ("AccessDenied", 403)
    finally:
        other.delete_object(Bucket=theirs, Key="dst")
        other.delete_bucket(Bucket=theirs)


def test_an_explicit_deny_wins_over_an_allow_and_over_the_owner(s3, other, shared):
    for k in ("keep/1", "tmp/1", "tmp/2"):
        s3.put_object(Bucket=shared, Key=k, Body=b"x")
    put_policy(s3, shared,
               {"Sid": "OtherMayDoAnything", "Effect": "Allow", "Principal": {"AWS": OTHER_ID}, "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{shared}", f"arn:aws:s3:::{shared}/*"]},
               {"Sid": "NobodyDeletesKeep", "Effect": "Deny", "Principal": "*",
                "Action": ["s3:DeleteObject", "s3:DeleteObjectVersion"], "Resource": f"arn:aws:s3:::{shared}/keep/*"})
    other.delete_object(Bucket=shared, Key="tmp/1")
    assert denied(other.delete_object, Bucket=shared, Key="keep/1") == ("AccessDenied", 403)
    assert denied(s3.delete_object, Bucket=shared, Key="keep/1") == ("AccessDenied", 403)     # the owner too
    # DeleteObjects: decided key by key, as S3 does.
    r = other.delete_objects(Bucket=shared, Delete={"Objects": [{"Key": "keep/1"}, {"Key": "tmp/2"}]})
    assert [d["Key"] for d in r.get("Deleted", [])] == ["tmp/2"]
    assert [(e["Key"], e["Code"]) for e in r["Errors"]] == [("keep/1", "AccessDenied")]
    assert s3.get_object(Bucket=shared, Key="keep/1")["Body"].read() == b"x"


def test_the_owner_can_always_remove_a_policy_that_locks_it_out(s3, shared):
    put_policy(s3, shared, {"Sid": "DenyAll", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                            "Resource": [f"arn:aws:s3:::{shared}", f"arn:aws:s3:::{shared}/*"]})
    assert denied(s3.list_objects_v2, Bucket=shared) == ("AccessDenied", 403)
    assert denied(s3.put_object, Bucket=shared, Key="k", Body=b"x") == ("AccessDenied", 403)
    assert json.loads(s3.get_bucket_policy(Bucket=shared)["Policy"])["Statement"][0]["Sid"] == "DenyAll"
    s3.delete_bucket_policy(Bucket=shared)
    s3.put_object(Bucket=shared, Key="k", Body=b"x")


def test_a_policy_names_one_user_of_an_account(s3, alice, shared):
    put_policy(s3, shared, {"Sid": "AliceReadsOnly", "Effect": "Deny",
                            "Principal": {"AWS": f"arn:aws:iam::{OWNER_ID}:user/alice"},
                            "NotAction": ["s3:GetObject", "s3:ListBucket"],
                            "Resource": [f"arn:aws:s3:::{shared}", f"arn:aws:s3:::{shared}/*"]})
    s3.put_object(Bucket=shared, Key="k", Body=b"by root")       # the account's root is not alice
    assert alice.get_object(Bucket=shared, Key="k")["Body"].read() == b"by root"
    assert denied(alice.put_object, Bucket=shared, Key="k", Body=b"by alice") == ("AccessDenied", 403)
    # A user of the owner account is not its root: a policy deny binds it for the policy calls too.
    assert denied(alice.delete_bucket_policy, Bucket=shared) == ("AccessDenied", 403)


def test_public_read_of_one_prefix_only(s3, anon, shared):
    s3.put_object(Bucket=shared, Key="public/page.html", Body=b"<h1>hi</h1>")
    s3.put_object(Bucket=shared, Key="private/diary", Body=b"secret")
    statement = {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                 "Resource": f"arn:aws:s3:::{shared}/public/*"}
    # Block Public Access is on for a new bucket: a public policy is refused until it is off.
    assert denied(s3.put_bucket_policy, Bucket=shared, Policy=policy(shared, statement)) == ("AccessDenied", 403)
    public(s3, shared)
    assert denied(s3.get_public_access_block, Bucket=shared) == ("NoSuchPublicAccessBlockConfiguration", 404)
    put_policy(s3, shared, statement)
    assert s3.get_bucket_policy_status(Bucket=shared)["PolicyStatus"] == {"IsPublic": True}
    assert anon.get_object(Bucket=shared, Key="public/page.html")["Body"].read() == b"<h1>hi</h1>"
    assert anon.head_object(Bucket=shared, Key="public/page.html")["ContentLength"] == 11
    assert denied(anon.get_object, Bucket=shared, Key="private/diary") == ("AccessDenied", 403)
    assert denied(anon.list_objects_v2, Bucket=shared) == ("AccessDenied", 403)
    assert denied(anon.put_object, Bucket=shared, Key="public/x", Body=b"x") == ("AccessDenied", 403)


def test_block_public_access_overrides_a_public_policy(s3, other, anon, shared):
    s3.put_object(Bucket=shared, Key="public/a", Body=b"a")
    public(s3, shared)
    put_policy(s3, shared, {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                            "Resource": f"arn:aws:s3:::{shared}/*"})
    assert anon.get_object(Bucket=shared, Key="public/a")["Body"].read() == b"a"
    assert other.get_object(Bucket=shared, Key="public/a")["Body"].read() == b"a"
    s3.put_public_access_block(Bucket=shared, PublicAccessBlockConfiguration={"RestrictPublicBuckets": True})
    assert s3.get_public_access_block(Bucket=shared)["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": False,
        "RestrictPublicBuckets": True}
    assert denied(anon.get_object, Bucket=shared, Key="public/a") == ("AccessDenied", 403)
    assert denied(other.get_object, Bucket=shared, Key="public/a") == ("AccessDenied", 403)
    assert s3.get_object(Bucket=shared, Key="public/a")["Body"].read() == b"a"      # the owner's account still may
    # BlockPublicPolicy: a public policy can no longer be put (the one in place stays, restricted).
    s3.put_public_access_block(Bucket=shared, PublicAccessBlockConfiguration={"BlockPublicPolicy": True})
    assert denied(s3.put_bucket_policy, Bucket=shared, Policy=policy(shared, {
        "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{shared}/*"})) == ("AccessDenied", 403)


def test_conditions_source_ip_transport_and_prefix(s3, other, shared):
    s3.put_object(Bucket=shared, Key="home/other/a", Body=b"a")
    s3.put_object(Bucket=shared, Key="home/owner/b", Body=b"b")
    put_policy(s3, shared,
               {"Sid": "ListOwnHome", "Effect": "Allow", "Principal": {"AWS": OTHER_ID}, "Action": "s3:ListBucket",
                "Resource": f"arn:aws:s3:::{shared}", "Condition": {"StringLike": {"s3:prefix": "home/other/*"}}},
               {"Sid": "FromLoopbackOnly", "Effect": "Allow", "Principal": {"AWS": OTHER_ID},
                "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{shared}/home/other/*",
                "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}},
               {"Sid": "NoPlainHttpWrites", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{shared}/tls-only/*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
    keys = [o["Key"] for o in other.list_objects_v2(Bucket=shared, Prefix="home/other/")["Contents"]]
    assert keys == ["home/other/a"]
    assert denied(other.list_objects_v2, Bucket=shared, Prefix="home/owner/") == ("AccessDenied", 403)
    assert denied(other.list_objects_v2, Bucket=shared) == ("AccessDenied", 403)           # no prefix: no match
    assert other.get_object(Bucket=shared, Key="home/other/a")["Body"].read() == b"a"      # the test runs on 127.0.0.1
    assert denied(s3.put_object, Bucket=shared, Key="tls-only/x", Body=b"x") == ("AccessDenied", 403)
    s3.put_object(Bucket=shared, Key="elsewhere/x", Body=b"x")
    put_policy(s3, shared, {"Sid": "ElsewhereOnly", "Effect": "Allow", "Principal": {"AWS": OTHER_ID},
                            "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{shared}/*",
                            "Condition": {"NotIpAddress": {"aws:SourceIp": "127.0.0.0/8"}}})
    assert denied(other.get_object, Bucket=shared, Key="home/other/a") == ("AccessDenied", 403)


def test_a_condition_on_the_objects_existing_tags(s3, other, shared):
    s3.put_object(Bucket=shared, Key="a", Body=b"a", Tagging="share=yes")
    s3.put_object(Bucket=shared, Key="b", Body=b"b", Tagging="share=no")
    put_policy(s3, shared, {"Effect": "Allow", "Principal": {"AWS": OTHER_ID}, "Action": "s3:GetObject",
                            "Resource": f"arn:aws:s3:::{shared}/*",
                            "Condition": {"StringEquals": {"s3:ExistingObjectTag/share": "yes"}}})
    assert other.get_object(Bucket=shared, Key="a")["Body"].read() == b"a"
    assert denied(other.get_object, Bucket=shared, Key="b") == ("AccessDenied", 403)


# ----------------------------------------------------------------------------- ownership and ACLs
def test_acls_are_refused_under_bucket_owner_enforced(s3, shared):
    assert denied(s3.put_object, Bucket=shared, Key="k", Body=b"x", ACL="public-read") == \
        ("AccessControlListNotSupported", 400)
    assert denied(s3.put_bucket_acl, Bucket=shared, ACL="public-read") == ("AccessControlListNotSupported", 400)
    assert denied(s3.put_bucket_acl, Bucket=shared, ACL="private") == ("AccessControlListNotSupported", 400)
    assert denied(s3.create_multipart_upload, Bucket=shared, Key="m", ACL="authenticated-read") == \
        ("AccessControlListNotSupported", 400)
    s3.put_object(Bucket=shared, Key="k", Body=b"x", ACL="bucket-owner-full-control")   # the owner alone: accepted
    s3.put_object(Bucket=shared, Key="k2", Body=b"x", ACL="private")
    acl = s3.get_object_acl(Bucket=shared, Key="k")
    assert [(g["Grantee"]["ID"], g["Permission"]) for g in acl["Grants"]] == [(canonical_id(ACCESS_KEY), "FULL_CONTROL")]
    assert denied(s3.get_object_acl, Bucket=shared, Key="missing") == ("NoSuchKey", 404)
    assert denied(s3.put_object, Bucket=shared, Key="k", Body=b"x", ACL="no-such-acl") == ("InvalidArgument", 400)
    name = f"acc-acl-{uuid.uuid4().hex[:8]}"
    assert denied(s3.create_bucket, Bucket=name, ACL="public-read") == ("InvalidBucketAclWithObjectOwnership", 400)
    assert denied(s3.head_bucket, Bucket=name) == ("404", 404)


def test_ownership_controls_round_trip(s3, shared):
    s3.put_bucket_ownership_controls(Bucket=shared, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]})
    rules = s3.get_bucket_ownership_controls(Bucket=shared)["OwnershipControls"]["Rules"]
    assert rules == [{"ObjectOwnership": "ObjectWriter"}]
    s3.put_bucket_acl(Bucket=shared, ACL="private")                  # ACLs enabled: the owner-only ACL is accepted
    # Block Public Access (BlockPublicAcls, on by default) refuses a public ACL.
    assert denied(s3.put_object, Bucket=shared, Key="k", Body=b"x", ACL="public-read") == ("AccessDenied", 403)
    s3.delete_bucket_ownership_controls(Bucket=shared)
    assert denied(s3.get_bucket_ownership_controls, Bucket=shared) == ("OwnershipControlsNotFoundError", 404)
    name = f"acc-own-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name, ObjectOwnership="BucketOwnerPreferred")
    try:
        rules = s3.get_bucket_ownership_controls(Bucket=name)["OwnershipControls"]["Rules"]
        assert rules == [{"ObjectOwnership": "BucketOwnerPreferred"}]
    finally:
        s3.delete_bucket(Bucket=name)


# ----------------------------------------------------------------------------- seeing it
@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    """A cluster of this test's own: `minis3 trace` traces every request for a minute after,
    which would change what the shared cluster's other tests measure (test_batch's batching)."""
    from .cluster import started_cluster
    yield from started_cluster(tmp_path_factory, "access-trace")


def test_the_trace_shows_which_statement_decided(traced):
    import subprocess
    import sys
    from .cluster import ACCESS_KEY, SECRET_KEY
    s3 = _client(traced, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)
    other = _client(traced, aws_access_key_id=SECOND_ACCESS_KEY, aws_secret_access_key=SECOND_SECRET_KEY)
    shared = "traced"
    s3.create_bucket(Bucket=shared)
    s3.put_object(Bucket=shared, Key="secret/k", Body=b"x")
    put_policy(s3, shared, {"Sid": "OtherReads", "Effect": "Allow", "Principal": {"AWS": OTHER_ID},
                            "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{shared}/*"},
               {"Sid": "ButNotSecrets", "Effect": "Deny", "Principal": {"AWS": OTHER_ID},
                "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{shared}/secret/*"})

    def trace(rid, *args):
        r = subprocess.run([sys.executable, "-m", "minis3", "trace", rid, *args, "--topology",
                            str(traced.topo_path)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout
    with pytest.raises(ClientError) as e:
        other.get_object(Bucket=shared, Key="secret/k")
    rid = e.value.response["ResponseMetadata"]["RequestId"]
    spans = json.loads(trace(rid, "--json"))
    root = next(s for s in spans if s["parent_span_id"] is None)
    # On the root span, sampled or not: every request shows its decision.
    assert root["attributes"]["authorize"] == (
        f"DENY: s3:GetObject on arn:aws:s3:::{shared}/secret/k for arn:aws:iam::{OTHER_ID}:root, by explicit deny "
        "in the bucket policy (statement ButNotSecrets)")
    decided = [s["attributes"] for s in spans if s["name"] == "authorize"]
    if decided:                                          # a sampled request: a span of its own too
        assert decided[0]["decision"] == "deny" and decided[0]["statement"] == "ButNotSecrets"
    text = trace(rid)
    assert "who may do what" in text and "DENY: s3:GetObject" in text and "ButNotSecrets" in text, text
    s3.put_object(Bucket=shared, Key="open", Body=b"o")
    rid = other.get_object(Bucket=shared, Key="open")["ResponseMetadata"]["RequestId"]
    assert "ALLOW: s3:GetObject" in trace(rid) and "statement OtherReads" in trace(rid)


# ----------------------------------------------------------------------------- ACLs enabled
@pytest.fixture
def acl_bucket(s3):
    """A bucket with ACLs enabled (ObjectWriter) and Block Public Access off."""
    name = f"acc-acl-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name, ObjectOwnership="ObjectWriter")
    s3.delete_public_access_block(Bucket=name)
    yield name
    remove_bucket(s3, name)


def grants(acl) -> set[tuple[str, str]]:
    return {(g["Grantee"].get("ID") or g["Grantee"].get("URI").rsplit("/", 1)[-1], g["Permission"])
            for g in acl["Grants"]}


def test_canned_acls_on_objects_grant_what_they_say(s3, other, anon, acl_bucket):
    s3.put_object(Bucket=acl_bucket, Key="open", Body=b"o", ACL="public-read")
    s3.put_object(Bucket=acl_bucket, Key="members", Body=b"m", ACL="authenticated-read")
    s3.put_object(Bucket=acl_bucket, Key="closed", Body=b"c")
    me = canonical_id(ACCESS_KEY)
    assert grants(s3.get_object_acl(Bucket=acl_bucket, Key="open")) == {(me, "FULL_CONTROL"), ("AllUsers", "READ")}
    assert anon.get_object(Bucket=acl_bucket, Key="open")["Body"].read() == b"o"
    assert denied(anon.get_object, Bucket=acl_bucket, Key="members") == ("AccessDenied", 403)
    assert other.get_object(Bucket=acl_bucket, Key="members")["Body"].read() == b"m"       # any signed request
    for client in (anon, other):
        assert denied(client.get_object, Bucket=acl_bucket, Key="closed") == ("AccessDenied", 403)
        assert denied(client.list_objects_v2, Bucket=acl_bucket) == ("AccessDenied", 403)
    # IgnorePublicAcls: the public grants count for nothing (the ACL stays as it is).
    s3.put_public_access_block(Bucket=acl_bucket, PublicAccessBlockConfiguration={"IgnorePublicAcls": True})
    assert denied(anon.get_object, Bucket=acl_bucket, Key="open") == ("AccessDenied", 403)
    assert denied(other.get_object, Bucket=acl_bucket, Key="members") == ("AccessDenied", 403)
    # BlockPublicAcls: no new public ACL is taken.
    s3.put_public_access_block(Bucket=acl_bucket, PublicAccessBlockConfiguration={"BlockPublicAcls": True})
    assert denied(s3.put_object, Bucket=acl_bucket, Key="x", Body=b"x", ACL="public-read") == ("AccessDenied", 403)
    assert denied(s3.put_object_acl, Bucket=acl_bucket, Key="closed", ACL="public-read") == ("AccessDenied", 403)


def test_grants_to_another_account_on_a_bucket_and_an_object(s3, other, acl_bucket):
    s3.put_object(Bucket=acl_bucket, Key="doc", Body=b"d")
    them = canonical_id(SECOND_ACCESS_KEY)
    assert denied(other.get_object, Bucket=acl_bucket, Key="doc") == ("AccessDenied", 403)
    s3.put_object_acl(Bucket=acl_bucket, Key="doc", GrantRead=f'id="{them}"',
                      GrantFullControl=f'id="{canonical_id(ACCESS_KEY)}"')
    assert other.get_object(Bucket=acl_bucket, Key="doc")["Body"].read() == b"d"
    assert (them, "READ") in grants(s3.get_object_acl(Bucket=acl_bucket, Key="doc"))
    assert denied(other.get_object_acl, Bucket=acl_bucket, Key="doc") == ("AccessDenied", 403)   # READ is not READ_ACP
    # The bucket's ACL: READ lists, WRITE writes and deletes objects.
    acl = s3.get_bucket_acl(Bucket=acl_bucket)
    s3.put_bucket_acl(Bucket=acl_bucket, AccessControlPolicy={"Owner": acl["Owner"], "Grants": acl["Grants"] + [
        {"Grantee": {"Type": "CanonicalUser", "ID": them}, "Permission": "READ"},
        {"Grantee": {"Type": "CanonicalUser", "ID": them}, "Permission": "WRITE"}]})
    assert grants(s3.get_bucket_acl(Bucket=acl_bucket)) >= {(them, "READ"), (them, "WRITE")}
    assert [o["Key"] for o in other.list_objects_v2(Bucket=acl_bucket)["Contents"]] == ["doc"]
    other.put_object(Bucket=acl_bucket, Key="from-them", Body=b"t")
    assert s3.get_object(Bucket=acl_bucket, Key="from-them")["Body"].read() == b"t"     # the bucket owner's
    other.delete_object(Bucket=acl_bucket, Key="from-them")
    # ACLs granting others stop ownership from being enforced, as S3 refuses it.
    assert denied(s3.put_bucket_ownership_controls, Bucket=acl_bucket, OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}) == ("InvalidBucketAclWithObjectOwnership", 400)
    s3.put_bucket_acl(Bucket=acl_bucket, ACL="private")
    s3.put_bucket_ownership_controls(Bucket=acl_bucket, OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    # ACLs disabled: the object's grant to the other account counts for nothing now.
    assert denied(other.get_object, Bucket=acl_bucket, Key="doc") == ("AccessDenied", 403)
    assert grants(s3.get_object_acl(Bucket=acl_bucket, Key="doc")) == {(canonical_id(ACCESS_KEY), "FULL_CONTROL")}


def test_bad_acls_are_refused_as_s3_refuses_them(s3, acl_bucket):
    s3.put_object(Bucket=acl_bucket, Key="k", Body=b"k")
    assert denied(s3.put_object_acl, Bucket=acl_bucket, Key="k", GrantRead='emailAddress="a@example.com"') == \
        ("UnresolvableGrantByEmailAddress", 400)
    assert denied(s3.put_object, Bucket=acl_bucket, Key="k2", Body=b"x", ACL="private",
                  GrantRead='uri="http://acs.amazonaws.com/groups/global/AllUsers"') == ("InvalidRequest", 400)
    assert denied(s3.put_object_acl, Bucket=acl_bucket, Key="missing", ACL="private") == ("NoSuchKey", 404)


def test_expected_bucket_owner(s3, other, shared):
    s3.put_object(Bucket=shared, Key="k", Body=b"x", ExpectedBucketOwner=OWNER_ID)
    assert denied(s3.put_object, Bucket=shared, Key="k", Body=b"x", ExpectedBucketOwner=OTHER_ID) == \
        ("AccessDenied", 403)
    theirs = f"acc-exp-{uuid.uuid4().hex[:8]}"
    other.create_bucket(Bucket=theirs)
    try:
        put_policy(s3, shared, {"Effect": "Allow", "Principal": {"AWS": OTHER_ID}, "Action": "s3:GetObject",
                                "Resource": f"arn:aws:s3:::{shared}/*"})
        src = {"Bucket": shared, "Key": "k"}
        assert denied(other.copy_object, Bucket=theirs, Key="c", CopySource=src, ExpectedBucketOwner=OTHER_ID,
                      ExpectedSourceBucketOwner=OTHER_ID) == ("AccessDenied", 403)
        other.copy_object(Bucket=theirs, Key="c", CopySource=src, ExpectedBucketOwner=OTHER_ID,
                          ExpectedSourceBucketOwner=OWNER_ID)
        other.delete_object(Bucket=theirs, Key="c")
    finally:
        other.delete_bucket(Bucket=theirs)
