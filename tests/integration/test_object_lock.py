"""S3 Object Lock through boto3 against a real cluster (minis3/core/objectlock.py,
minis3/frontend/objectlock.py): a lock-enabled bucket, default retention, COMPLIANCE and
GOVERNANCE retention, legal holds, the bypass and who may use it, the errors of a bucket
without Object Lock, and the metadata coordinator's own refusal to remove a locked version.

Retain-until dates are a few seconds ahead, so that each test also shows the version can
be removed once its date has passed."""
from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import time
import uuid
import zlib

import boto3
import pytest
import urllib3
from botocore.config import Config
from botocore.exceptions import ClientError

from minis3.core import errors as E
from minis3.core.access import account_id
from minis3.frontend.authorize import AccessStore
from minis3.meta.client import MetaClient
from minis3.rpc.http import client_session

from .cluster import ACCESS_KEY, SECOND_ACCESS_KEY, SECOND_SECRET_KEY
from .conftest import make_client

PROTECTED = "Access Denied because object protected by object lock."
MD5_REQUIRED = ("Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock "
                "parameters")


def _in(seconds: float) -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds)


def _error(call, **kw) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as e:
        call(**kw)
    r = e.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"].get("Message", "")


def _headers(resp) -> dict:
    return resp["ResponseMetadata"]["HTTPHeaders"]


def _version_ids(s3, bucket: str, key: str) -> list[str]:
    page = s3.list_object_versions(Bucket=bucket, Prefix=key)
    return [v["VersionId"] for v in page.get("Versions", []) if v["Key"] == key]


def _remove_when_free(s3, bucket: str, key: str, vid: str, deadline_s: float = 30) -> None:
    """Remove a version once nothing holds it any more (a COMPLIANCE date passing), with the
    bypass for GOVERNANCE; fail if it is still refused after ``deadline_s``."""
    end = time.monotonic() + deadline_s
    while True:
        try:
            s3.delete_object(Bucket=bucket, Key=key, VersionId=vid, BypassGovernanceRetention=True)
            return
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "AccessDenied" or time.monotonic() > end:
                raise
            time.sleep(0.5)


def _once_the_policy_holds(call, *args, **kw):
    """``call(*args, **kw)`` under the bucket policy just set: the frontend that took it
    forgot its cached copy at once; another would answer from its policy cache for up to
    ``AccessStore.TTL``, so a refusal or a failed check is tried again until then (and a
    little more), not after."""
    deadline = time.monotonic() + AccessStore.TTL + 0.5
    while True:
        try:
            return call(*args, **kw)
        except (ClientError, AssertionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture
def locked_bucket(s3):
    """A new bucket with Object Lock; afterwards every legal hold is released and every
    version removed (waiting for short COMPLIANCE dates to pass), then the bucket."""
    name = f"lock-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    yield name
    s3.delete_bucket_policy(Bucket=name)
    page = s3.list_object_versions(Bucket=name)
    for v in page.get("Versions", []):
        hold = s3.get_object_legal_hold(Bucket=name, Key=v["Key"], VersionId=v["VersionId"])["LegalHold"]["Status"]
        if hold == "ON":
            s3.put_object_legal_hold(Bucket=name, Key=v["Key"], VersionId=v["VersionId"], LegalHold={"Status": "OFF"})
        _remove_when_free(s3, name, v["Key"], v["VersionId"])
    for m in page.get("DeleteMarkers", []):
        s3.delete_object(Bucket=name, Key=m["Key"], VersionId=m["VersionId"])
    s3.delete_bucket(Bucket=name)


@pytest.fixture
def plain_bucket(s3):
    name = f"nolock-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    yield name
    page = s3.list_object_versions(Bucket=name)
    for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
        s3.delete_object(Bucket=name, Key=v["Key"], VersionId=v["VersionId"])
    s3.delete_bucket(Bucket=name)


# ----------------------------------------------------------------------------- the bucket
def test_a_lock_enabled_bucket_keeps_versioning_and_its_configuration(s3, locked_bucket):
    b = locked_bucket
    assert s3.get_bucket_versioning(Bucket=b)["Status"] == "Enabled"
    assert s3.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"] == {"ObjectLockEnabled": "Enabled"}
    rule = {"DefaultRetention": {"Mode": "COMPLIANCE", "Years": 1}}
    s3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled", "Rule": rule})
    assert s3.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"] == \
        {"ObjectLockEnabled": "Enabled", "Rule": rule}
    # Versioning can no longer be suspended (enabling it again changes nothing and is allowed).
    assert _error(s3.put_bucket_versioning, Bucket=b, VersioningConfiguration={"Status": "Suspended"})[:2] == \
        ("InvalidBucketState", 409)
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=b)["Status"] == "Enabled"
    # A configuration without a rule removes the default retention; Object Lock stays enabled.
    s3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"})
    assert s3.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"] == {"ObjectLockEnabled": "Enabled"}


@pytest.mark.parametrize("retention, code", [
    ({"Mode": "GOVERNANCE", "Days": 1, "Years": 1}, "MalformedXML"),
    ({"Mode": "GOVERNANCE"}, "MalformedXML"),
    ({"Days": 1}, "MalformedXML"),
    ({"Mode": "GOVERNANCE", "Days": 0}, "InvalidArgument"),
    ({"Mode": "COMPLIANCE", "Years": -2}, "InvalidArgument"),
])
def test_a_bad_default_retention_is_refused_as_s3_does(s3, locked_bucket, retention, code):
    cfg = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": retention}}
    assert _error(s3.put_object_lock_configuration, Bucket=locked_bucket, ObjectLockConfiguration=cfg)[:2] == \
        (code, 400)
    assert "Rule" not in s3.get_object_lock_configuration(Bucket=locked_bucket)["ObjectLockConfiguration"]


def test_a_bucket_without_object_lock_refuses_its_calls_and_headers(s3, plain_bucket):
    b = plain_bucket
    assert _error(s3.get_object_lock_configuration, Bucket=b)[:2] == ("ObjectLockConfigurationNotFoundError", 404)
    s3.put_object(Bucket=b, Key="k", Body=b"x")
    missing = ("InvalidRequest", 400, "Bucket is missing Object Lock Configuration")
    assert _error(s3.put_object, Bucket=b, Key="k2", Body=b"x", ObjectLockMode="GOVERNANCE",
                  ObjectLockRetainUntilDate=_in(60)) == missing
    assert _error(s3.put_object, Bucket=b, Key="k2", Body=b"x", ObjectLockLegalHoldStatus="ON") == missing
    assert _error(s3.create_multipart_upload, Bucket=b, Key="k2", ObjectLockLegalHoldStatus="ON") == missing
    assert _error(s3.copy_object, Bucket=b, Key="k2", CopySource={"Bucket": b, "Key": "k"},
                  ObjectLockLegalHoldStatus="ON") == missing
    assert _error(s3.put_object_retention, Bucket=b, Key="k",
                  Retention={"Mode": "GOVERNANCE", "RetainUntilDate": _in(60)}) == missing
    assert _error(s3.get_object_retention, Bucket=b, Key="k") == missing
    assert _error(s3.put_object_legal_hold, Bucket=b, Key="k", LegalHold={"Status": "ON"}) == missing
    assert _error(s3.get_object_legal_hold, Bucket=b, Key="k") == missing
    with pytest.raises(ClientError):
        s3.head_object(Bucket=b, Key="k2")                      # nothing was written
    # Object Lock on an existing bucket: only once its versioning is Enabled.
    cfg = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}}
    assert _error(s3.put_object_lock_configuration, Bucket=b, ObjectLockConfiguration=cfg)[:2] == \
        ("InvalidBucketState", 409)
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"})
    assert s3.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"] == {"ObjectLockEnabled": "Enabled"}
    assert _error(s3.put_bucket_versioning, Bucket=b, VersioningConfiguration={"Status": "Suspended"})[:2] == \
        ("InvalidBucketState", 409)
    # The version written before Object Lock has no retention.
    assert _error(s3.get_object_retention, Bucket=b, Key="k")[:2] == ("NoSuchObjectLockConfiguration", 404)


def test_bad_lock_headers_are_refused_before_anything_is_written(s3, locked_bucket):
    b = locked_bucket
    assert _error(s3.put_object, Bucket=b, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE")[:2] == \
        ("InvalidArgument", 400)
    assert _error(s3.put_object, Bucket=b, Key="k", Body=b"x", ObjectLockMode="COMPLIANCE",
                  ObjectLockRetainUntilDate=_in(-60)) == ("InvalidArgument", 400, "The retain until date must be in the future!")
    assert _error(s3.put_object_retention, Bucket=b, Key="k",
                  Retention={"Mode": "GOVERNANCE", "RetainUntilDate": _in(60)})[:2] == ("NoSuchKey", 404)
    assert _version_ids(s3, b, "k") == []


# ----------------------------------------------------------------------------- default retention
def test_default_retention_is_given_to_every_new_version(s3, cluster, locked_bucket):
    b = locked_bucket
    s3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    tomorrow = _in(86400)
    put = s3.put_object(Bucket=b, Key="p", Body=b"put")
    copy = s3.copy_object(Bucket=b, Key="c", CopySource={"Bucket": b, "Key": "p"})
    up = s3.create_multipart_upload(Bucket=b, Key="m")
    etag = s3.upload_part(Bucket=b, Key="m", UploadId=up["UploadId"], PartNumber=1, Body=b"part")["ETag"]
    mpu = s3.complete_multipart_upload(Bucket=b, Key="m", UploadId=up["UploadId"],
                                       MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    for key, vid in (("p", put["VersionId"]), ("c", copy["VersionId"]), ("m", mpu["VersionId"])):
        head = s3.head_object(Bucket=b, Key=key, VersionId=vid)
        assert head["ObjectLockMode"] == "GOVERNANCE"
        assert abs((head["ObjectLockRetainUntilDate"] - tomorrow).total_seconds()) < 60, key
        ret = s3.get_object_retention(Bucket=b, Key=key, VersionId=vid)["Retention"]
        assert ret == {"Mode": "GOVERNANCE", "RetainUntilDate": head["ObjectLockRetainUntilDate"]}
        assert "ObjectLockLegalHoldStatus" not in head
        assert s3.get_object_legal_hold(Bucket=b, Key=key, VersionId=vid)["LegalHold"] == {"Status": "OFF"}
        # GOVERNANCE: the owner removes it only with the bypass.
        assert _error(s3.delete_object, Bucket=b, Key=key, VersionId=vid) == ("AccessDenied", 403, PROTECTED)
    # A browser's form upload (PostObject) gets it too.
    form = make_client(cluster.endpoint, signature_version="s3v4").generate_presigned_post(b, "form", ExpiresIn=300)
    r = urllib3.PoolManager(retries=False).request(
        "POST", form["url"], fields=[*form["fields"].items(), ("file", ("f.txt", b"form", "text/plain"))])
    assert r.status == 204, r.data
    assert s3.head_object(Bucket=b, Key="form")["ObjectLockMode"] == "GOVERNANCE"
    # A request's own retention wins over the default.
    own = s3.put_object(Bucket=b, Key="own", Body=b"x", ObjectLockMode="GOVERNANCE",
                        ObjectLockRetainUntilDate=_in(2))
    assert (s3.head_object(Bucket=b, Key="own")["ObjectLockRetainUntilDate"] - _in(2)).total_seconds() < 5
    time.sleep(2.5)
    s3.delete_object(Bucket=b, Key="own", VersionId=own["VersionId"])       # its date has passed: no bypass needed


# ----------------------------------------------------------------------------- COMPLIANCE
def test_a_put_with_lock_parameters_needs_content_md5_or_a_checksum(s3, cluster, locked_bucket):
    """AWS: a PutObject that sets a retention or a legal hold, by its headers or through the
    bucket's default retention, must carry Content-MD5 or an x-amz-checksum-* header (400
    InvalidRequest), and so must an UploadPart of such an object. boto3 always sends a
    checksum, so these requests are made raw, signed, with neither."""
    from .wire import assert_error, signed
    b, body = locked_bucket, b"data"
    md5 = {"Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()}
    lock = {"x-amz-object-lock-mode": "GOVERNANCE",
            "x-amz-object-lock-retain-until-date": _in(30).strftime("%Y-%m-%dT%H:%M:%SZ")}
    for headers in (lock, {"x-amz-object-lock-legal-hold": "ON"}):
        x = assert_error(signed(cluster, "PUT", f"/{b}/k", body, headers), "InvalidRequest", 400)
        assert x["Message"] == MD5_REQUIRED
    assert _version_ids(s3, b, "k") == []
    assert signed(cluster, "PUT", f"/{b}/plain", body).status == 200        # nothing to lock: nothing asked
    assert signed(cluster, "PUT", f"/{b}/k", body, {**lock, **md5}).status == 200
    crc = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    assert signed(cluster, "PUT", f"/{b}/k", body, {**lock, "x-amz-checksum-crc32": crc}).status == 200
    # The bucket's default retention is a lock parameter too.
    s3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    x = assert_error(signed(cluster, "PUT", f"/{b}/by-default", body), "InvalidRequest", 400)
    assert x["Message"] == MD5_REQUIRED
    assert signed(cluster, "PUT", f"/{b}/by-default", body, md5).status == 200
    up = s3.create_multipart_upload(Bucket=b, Key="mp")["UploadId"]
    part = f"/{b}/mp?partNumber=1&uploadId={up}"
    assert_error(signed(cluster, "PUT", part, body), "InvalidRequest", 400)
    assert signed(cluster, "PUT", part, body, md5).status == 200
    s3.abort_multipart_upload(Bucket=b, Key="mp", UploadId=up)
    s3.put_object(Bucket=b, Key="boto3", Body=body)                          # with its checksum: accepted


def test_a_compliance_version_outlives_every_delete_until_its_date(s3, locked_bucket):
    b = locked_bucket
    # (6 s: the refusals below take well under a second, and the shortened date
    # asked for must itself still be in the future, else the answer is InvalidArgument.)
    until = _in(6)
    v = s3.put_object(Bucket=b, Key="c", Body=b"kept", ObjectLockMode="COMPLIANCE",
                      ObjectLockRetainUntilDate=until)["VersionId"]
    head = s3.head_object(Bucket=b, Key="c")
    h = _headers(head)
    assert h["x-amz-object-lock-mode"] == "COMPLIANCE"
    assert h["x-amz-object-lock-retain-until-date"].endswith("Z")
    # (boto3 sends a header's date to the second.)
    assert head["ObjectLockRetainUntilDate"] == until.replace(microsecond=0)
    assert s3.get_object(Bucket=b, Key="c")["ObjectLockMode"] == "COMPLIANCE"
    # Refused to the bucket owner, with or without the bypass, one by one or in a batch.
    assert _error(s3.delete_object, Bucket=b, Key="c", VersionId=v) == ("AccessDenied", 403, PROTECTED)
    assert _error(s3.delete_object, Bucket=b, Key="c", VersionId=v, BypassGovernanceRetention=True) == \
        ("AccessDenied", 403, PROTECTED)
    out = s3.delete_objects(Bucket=b, BypassGovernanceRetention=True,
                            Delete={"Objects": [{"Key": "c", "VersionId": v}]})
    assert [(e["Key"], e["VersionId"], e["Code"], e["Message"]) for e in out["Errors"]] == \
        [("c", v, "AccessDenied", PROTECTED)]
    assert not out.get("Deleted")
    # Its retention cannot be shortened nor its mode changed, by anyone; it can be extended.
    assert _error(s3.put_object_retention, Bucket=b, Key="c", VersionId=v, BypassGovernanceRetention=True,
                  Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until - dt.timedelta(seconds=2)}) == \
        ("AccessDenied", 403, PROTECTED)
    assert _error(s3.put_object_retention, Bucket=b, Key="c", VersionId=v, BypassGovernanceRetention=True,
                  Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until + dt.timedelta(seconds=60)})[:2] == \
        ("AccessDenied", 403)
    longer = until + dt.timedelta(seconds=2)
    s3.put_object_retention(Bucket=b, Key="c", VersionId=v, Retention={"Mode": "COMPLIANCE", "RetainUntilDate": longer})
    assert s3.get_object_retention(Bucket=b, Key="c", VersionId=v)["Retention"]["RetainUntilDate"] == \
        longer.replace(microsecond=longer.microsecond // 1000 * 1000)
    # A DELETE without a version id only adds a delete marker: allowed, and the version stays.
    marker = s3.delete_object(Bucket=b, Key="c")
    assert marker["DeleteMarker"] is True
    assert s3.get_object(Bucket=b, Key="c", VersionId=v)["Body"].read() == b"kept"
    assert _error(s3.delete_object, Bucket=b, Key="c", VersionId=v)[:2] == ("AccessDenied", 403)
    # Once the date has passed, the owner removes it like any version.
    time.sleep(max(0.0, (longer - _in(0)).total_seconds()) + 0.3)
    s3.delete_object(Bucket=b, Key="c", VersionId=v)
    assert _version_ids(s3, b, "c") == []


# ----------------------------------------------------------------------------- GOVERNANCE and the bypass
def test_a_governance_version_goes_only_with_the_bypass_and_the_permission_for_it(s3, cluster, locked_bucket):
    b = locked_bucket
    vids = [s3.put_object(Bucket=b, Key=f"g{i}", Body=b"g", ObjectLockMode="GOVERNANCE",
                          ObjectLockRetainUntilDate=_in(3600))["VersionId"] for i in range(3)]
    assert _error(s3.delete_object, Bucket=b, Key="g0", VersionId=vids[0]) == ("AccessDenied", 403, PROTECTED)
    out = s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "g1", "VersionId": vids[1]}]})
    assert [(e["Key"], e["Code"]) for e in out["Errors"]] == [("g1", "AccessDenied")]
    # Shortening needs the bypass too.
    assert _error(s3.put_object_retention, Bucket=b, Key="g0", VersionId=vids[0],
                  Retention={"Mode": "GOVERNANCE", "RetainUntilDate": _in(60)})[:2] == ("AccessDenied", 403)
    s3.put_object_retention(Bucket=b, Key="g0", VersionId=vids[0], BypassGovernanceRetention=True,
                            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": _in(60)})
    # The owner, with the bypass: removed.
    s3.delete_object(Bucket=b, Key="g0", VersionId=vids[0], BypassGovernanceRetention=True)
    out = s3.delete_objects(Bucket=b, BypassGovernanceRetention=True,
                            Delete={"Objects": [{"Key": "g1", "VersionId": vids[1]}]})
    assert [d["VersionId"] for d in out["Deleted"]] == [vids[1]] and not out.get("Errors")
    # Another account a policy lets remove versions: the bypass counts only once the policy
    # also allows s3:BypassGovernanceRetention.
    other = boto3.client("s3", endpoint_url=cluster.endpoint, region_name="us-east-1",
                         aws_access_key_id=SECOND_ACCESS_KEY, aws_secret_access_key=SECOND_SECRET_KEY,
                         config=Config(retries={"max_attempts": 1}))
    grant = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account_id(SECOND_ACCESS_KEY)}:root"},
             "Action": ["s3:DeleteObjectVersion"], "Resource": f"arn:aws:s3:::{b}/*"}
    s3.put_bucket_policy(Bucket=b, Policy=json.dumps({"Version": "2012-10-17", "Statement": [grant]}))
    assert _error(other.delete_object, Bucket=b, Key="g2", VersionId=vids[2], BypassGovernanceRetention=True) == \
        ("AccessDenied", 403, PROTECTED)
    grant["Action"].append("s3:BypassGovernanceRetention")
    s3.put_bucket_policy(Bucket=b, Policy=json.dumps({"Version": "2012-10-17", "Statement": [grant]}))
    _once_the_policy_holds(other.delete_object, Bucket=b, Key="g2", VersionId=vids[2], BypassGovernanceRetention=True)
    assert all(_version_ids(s3, b, f"g{i}") == [] for i in range(3))


# ----------------------------------------------------------------------------- legal hold
def test_a_legal_hold_blocks_removal_whatever_the_retention(s3, locked_bucket):
    b = locked_bucket
    v = s3.put_object(Bucket=b, Key="h", Body=b"held", ObjectLockLegalHoldStatus="ON")["VersionId"]
    head = s3.head_object(Bucket=b, Key="h", VersionId=v)
    assert head["ObjectLockLegalHoldStatus"] == "ON" and "ObjectLockMode" not in head
    assert s3.get_object_legal_hold(Bucket=b, Key="h", VersionId=v)["LegalHold"] == {"Status": "ON"}
    assert _error(s3.get_object_retention, Bucket=b, Key="h", VersionId=v)[:2] == ("NoSuchObjectLockConfiguration", 404)
    assert _error(s3.delete_object, Bucket=b, Key="h", VersionId=v, BypassGovernanceRetention=True) == \
        ("AccessDenied", 403, PROTECTED)
    s3.put_object_legal_hold(Bucket=b, Key="h", VersionId=v, LegalHold={"Status": "OFF"})
    assert "ObjectLockLegalHoldStatus" not in s3.head_object(Bucket=b, Key="h", VersionId=v)
    # Set on an older version by its id, over an expired retention: the hold alone keeps it.
    w = s3.put_object(Bucket=b, Key="h", Body=b"newer", ObjectLockMode="COMPLIANCE",
                      ObjectLockRetainUntilDate=_in(2))["VersionId"]
    s3.put_object_legal_hold(Bucket=b, Key="h", VersionId=w, LegalHold={"Status": "ON"})
    s3.put_object_legal_hold(Bucket=b, Key="h", VersionId=v, LegalHold={"Status": "ON"})
    time.sleep(2.5)
    for vid in (v, w):
        assert _error(s3.delete_object, Bucket=b, Key="h", VersionId=vid)[:2] == ("AccessDenied", 403)
        s3.put_object_legal_hold(Bucket=b, Key="h", VersionId=vid, LegalHold={"Status": "OFF"})
        s3.delete_object(Bucket=b, Key="h", VersionId=vid)
    assert _version_ids(s3, b, "h") == []
    # A multipart upload's headers give the completed version its retention and hold.
    until = _in(3600)
    up = s3.create_multipart_upload(Bucket=b, Key="mp", ObjectLockLegalHoldStatus="ON", ObjectLockMode="GOVERNANCE",
                                    ObjectLockRetainUntilDate=until)
    etag = s3.upload_part(Bucket=b, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=b"part")["ETag"]
    done = s3.complete_multipart_upload(Bucket=b, Key="mp", UploadId=up["UploadId"],
                                        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    head = s3.head_object(Bucket=b, Key="mp")
    assert (head["ObjectLockLegalHoldStatus"], head["ObjectLockMode"], head["ObjectLockRetainUntilDate"]) == \
        ("ON", "GOVERNANCE", until.replace(microsecond=0))
    assert _error(s3.delete_object, Bucket=b, Key="mp", VersionId=done["VersionId"], BypassGovernanceRetention=True) == \
        ("AccessDenied", 403, PROTECTED)


# ----------------------------------------------------------------------------- defence in depth
def test_the_metadata_coordinator_itself_refuses_to_remove_a_locked_version(s3, cluster, locked_bucket):
    """Not the frontend's check: the metadata service's own removal path (what a lifecycle
    rule or any other tool calls) refuses a locked version, current or not."""
    b = locked_bucket
    old = s3.put_object(Bucket=b, Key="k", Body=b"old", ObjectLockMode="GOVERNANCE",
                        ObjectLockRetainUntilDate=_in(3600))["VersionId"]
    cur = s3.put_object(Bucket=b, Key="k", Body=b"cur", ObjectLockMode="COMPLIANCE",
                        ObjectLockRetainUntilDate=_in(3))["VersionId"]

    async def remove(vid: str, bypass: bool) -> str:
        session = client_session(cluster.topo.cluster_secret)
        try:
            meta = MetaClient.for_topology(session, cluster.topo).as_account(ACCESS_KEY)
            try:
                await meta.delete_version(b, "k", vid, bypass_governance=bypass)
                return "removed"
            except E.AccessDenied as exc:
                return exc.message
        finally:
            await session.close()
    assert asyncio.run(remove(cur, True)) == PROTECTED            # COMPLIANCE, current
    assert asyncio.run(remove(old, False)) == PROTECTED           # GOVERNANCE, not current, no bypass
    assert _version_ids(s3, b, "k") == [cur, old]
    assert asyncio.run(remove(old, True)) == "removed"
    time.sleep(3.5)
    assert asyncio.run(remove(cur, False)) == "removed"
    assert _version_ids(s3, b, "k") == []



def test_the_lock_headers_of_a_get_are_only_for_callers_allowed_to_read_them(s3, locked_bucket, cluster):
    """S3 answers x-amz-object-lock-mode and -retain-until-date only to a caller allowed
    s3:GetObjectRetention, and -legal-hold only with s3:GetObjectLegalHold."""
    b = locked_bucket
    s3.put_object(Bucket=b, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=_in(3600),
                  ObjectLockLegalHoldStatus="ON")
    owner = s3.head_object(Bucket=b, Key="k")
    assert owner["ObjectLockMode"] == "GOVERNANCE" and owner["ObjectLockLegalHoldStatus"] == "ON"
    other = boto3.client("s3", endpoint_url=cluster.endpoint, region_name="us-east-1",
                         aws_access_key_id=SECOND_ACCESS_KEY, aws_secret_access_key=SECOND_SECRET_KEY,
                         config=Config(retries={"max_attempts": 1}))
    grant = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account_id(SECOND_ACCESS_KEY)}:root"},
             "Action": ["s3:GetObject"], "Resource": f"arn:aws:s3:::{b}/*"}

    def seen(want: set[str]) -> None:
        s3.put_bucket_policy(Bucket=b, Policy=json.dumps({"Version": "2012-10-17", "Statement": [grant]}))

        def check() -> None:
            head, got = other.head_object(Bucket=b, Key="k"), other.get_object(Bucket=b, Key="k")
            assert got["Body"].read() == b"x"
            lock = {"ObjectLockMode", "ObjectLockRetainUntilDate", "ObjectLockLegalHoldStatus"}
            assert lock & set(head) == lock & set(got)
            assert lock & set(head) == want
        _once_the_policy_holds(check)
    seen(set())
    grant["Action"].append("s3:GetObjectRetention")
    seen({"ObjectLockMode", "ObjectLockRetainUntilDate"})
    grant["Action"].append("s3:GetObjectLegalHold")
    seen({"ObjectLockMode", "ObjectLockRetainUntilDate", "ObjectLockLegalHoldStatus"})
    s3.put_object_legal_hold(Bucket=b, Key="k", LegalHold={"Status": "OFF"})
