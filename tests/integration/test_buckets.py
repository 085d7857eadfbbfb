"""Buckets through boto3 against the real cluster: ListBuckets, CreateBucket
(naming rules, LocationConstraint, ownership), HeadBucket, DeleteBucket,
GetBucketLocation, GetBucketVersioning and unsupported sub-resources — and
their S3 errors (code AND HTTP status)."""
import uuid
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from .cluster import SECOND_ACCESS_KEY, SECOND_SECRET_KEY


def err(exc_info) -> tuple[str, int]:
    e = exc_info.value.response
    return e["Error"]["Code"], e["ResponseMetadata"]["HTTPStatusCode"]


def unique(prefix: str = "b") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def s3_other(cluster):
    """A client with the second credentials (a different owner)."""
    return boto3.client("s3", endpoint_url=cluster.endpoint, region_name="us-east-1",
                        aws_access_key_id=SECOND_ACCESS_KEY, aws_secret_access_key=SECOND_SECRET_KEY,
                        config=Config(retries={"max_attempts": 2, "mode": "standard"}))


@pytest.fixture
def new_bucket(s3):
    """A bucket name the test creates itself; removed (if it exists) afterwards."""
    names = []

    def make(prefix="b"):
        names.append(unique(prefix))
        return names[-1]
    yield make
    for name in names:
        try:
            for o in s3.list_objects_v2(Bucket=name).get("Contents", []):
                s3.delete_object(Bucket=name, Key=o["Key"])
            s3.delete_bucket(Bucket=name)
        except ClientError:
            pass


# ---------------------------------------------------------------- ListBuckets

def test_list_buckets_shows_created_buckets_with_creation_date(s3, new_bucket):
    names = [new_bucket("lb") for _ in range(3)]
    before = datetime.now(timezone.utc)
    for n in names:
        s3.create_bucket(Bucket=n)
    after = datetime.now(timezone.utc)
    resp = s3.list_buckets()
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    listed = {b["Name"]: b["CreationDate"] for b in resp["Buckets"]}
    for n in names:
        assert n in listed
        created = listed[n]
        assert created.tzinfo is not None
        # Same machine clock; CreationDate has millisecond precision.
        assert before - timedelta(seconds=2) <= created <= after + timedelta(seconds=2)
    # S3 lists buckets in name order, each once.
    all_names = [b["Name"] for b in resp["Buckets"]]
    assert all_names == sorted(all_names)
    assert len(all_names) == len(set(all_names))
    assert resp["Owner"]["ID"]


def test_list_buckets_omits_deleted_bucket(s3, new_bucket):
    name = new_bucket("lbdel")
    s3.create_bucket(Bucket=name)
    s3.delete_bucket(Bucket=name)
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_list_buckets_only_shows_own_buckets(s3, s3_other, new_bucket):
    mine, theirs = new_bucket("mine"), new_bucket("theirs")
    s3.create_bucket(Bucket=mine)
    s3_other.create_bucket(Bucket=theirs)
    try:
        own = [b["Name"] for b in s3.list_buckets()["Buckets"]]
        other = [b["Name"] for b in s3_other.list_buckets()["Buckets"]]
        assert mine in own and theirs in other
        assert theirs not in own
        assert mine not in other
    finally:
        s3_other.delete_bucket(Bucket=theirs)


# ---------------------------------------------------------------- CreateBucket

@pytest.mark.parametrize("name", [
    "ab",                                   # too short (< 3)
    "a" * 64,                               # too long (> 63)
    "MyBucket",                             # uppercase
    "my_bucket",                            # underscore
    "192.168.5.4",                          # formatted as an IP address
    "xn--bucket",                           # reserved prefix
    "sthree-bucket",                        # reserved prefix
    "bucket-s3alias",                       # reserved suffix (access point alias)
    "bucket--ol-s3",                        # reserved suffix (Object Lambda alias)
    "-bucket",                              # must begin with a letter or digit
    "bucket-",                              # must end with a letter or digit
    "bucket.",                              # must end with a letter or digit
    "my..bucket",                           # two adjacent periods
])
def test_create_bucket_invalid_names(s3, name):
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket=name)
    assert err(e) == ("InvalidBucketName", 400)
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


@pytest.mark.parametrize("name", ["abc", "a" * 63, "my.bucket.1", "0-9-digits", "a-b.c-d"])
def test_create_bucket_valid_edge_names(s3, name):
    s3.create_bucket(Bucket=name)
    try:
        assert s3.head_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 200
    finally:
        s3.delete_bucket(Bucket=name)


def test_create_bucket_response(s3, new_bucket):
    name = new_bucket()
    r = s3.create_bucket(Bucket=name)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert r["Location"] == f"/{name}"


def test_create_bucket_without_location_constraint_and_empty_configuration(s3, new_bucket):
    a, b = new_bucket(), new_bucket()
    s3.create_bucket(Bucket=a)
    # An empty CreateBucketConfiguration is the same as none (us-east-1).
    s3.create_bucket(Bucket=b, CreateBucketConfiguration={})
    for n in (a, b):
        assert s3.get_bucket_location(Bucket=n)["LocationConstraint"] is None


def test_create_bucket_explicit_us_east_1_is_invalid(s3, new_bucket):
    # As S3: in us-east-1 the constraint must be left out; naming it is InvalidLocationConstraint.
    name = new_bucket()
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "us-east-1"})
    assert err(e) == ("InvalidLocationConstraint", 400)
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket=name)
    assert err(e) == ("404", 404)


def test_create_bucket_other_region_is_rejected(s3, new_bucket):
    name = new_bucket()
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    code, status = err(e)
    # AWS documents IllegalLocationConstraintException for a constraint naming another region than
    # the endpoint's; minis3 answers InvalidLocationConstraint. Both are 400 client errors.
    assert status == 400
    assert code in ("IllegalLocationConstraintException", "InvalidLocationConstraint")
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket=name)
    assert err(e) == ("404", 404)


def test_create_bucket_malformed_configuration(cluster, new_bucket):
    from .conftest import make_client
    c = make_client(cluster.endpoint)

    def garble(params, **_):
        params["body"] = b"<CreateBucketConfiguration><LocationConstraint>"
    c.meta.events.register("before-call.s3.CreateBucket", garble)
    name = new_bucket()
    with pytest.raises(ClientError) as e:
        c.create_bucket(Bucket=name)
    assert err(e) == ("MalformedXML", 400)


def test_create_bucket_twice_same_owner(s3, new_bucket):
    # As AWS documents for us-east-1 (a legacy): 200, and the bucket as it was.
    # (In another region it is 409 BucketAlreadyOwnedByYou: test_regions.)
    name = new_bucket()
    s3.create_bucket(Bucket=name)
    created = {b["Name"]: b["CreationDate"] for b in s3.list_buckets()["Buckets"]}[name]
    assert s3.create_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 200
    # The bucket is unchanged.
    assert {b["Name"]: b["CreationDate"] for b in s3.list_buckets()["Buckets"]}[name] == created


def test_create_bucket_taken_by_other_owner(s3, s3_other, new_bucket):
    name = new_bucket()
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="k", Body=b"mine")
    with pytest.raises(ClientError) as e:
        s3_other.create_bucket(Bucket=name)
    assert err(e) == ("BucketAlreadyExists", 409)
    assert s3.get_object(Bucket=name, Key="k")["Body"].read() == b"mine"


def test_recreate_after_delete(s3, s3_other, new_bucket):
    name = new_bucket()
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="old", Body=b"1")
    s3.delete_object(Bucket=name, Key="old")
    s3.delete_bucket(Bucket=name)
    # The name is free again, for anyone; the new bucket starts empty.
    s3_other.create_bucket(Bucket=name)
    try:
        assert s3_other.list_objects_v2(Bucket=name)["KeyCount"] == 0
        with pytest.raises(ClientError) as e:
            s3.create_bucket(Bucket=name)
        assert err(e) == ("BucketAlreadyExists", 409)
    finally:
        s3_other.delete_bucket(Bucket=name)


# ---------------------------------------------------------------- HeadBucket

def test_head_bucket(s3, bucket):
    r = s3.head_bucket(Bucket=bucket)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert r["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "us-east-1"
    assert r["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]


def test_head_missing_bucket(s3):
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket=unique("missing"))
    # HEAD has no body: boto3 reports the status as the code.
    assert err(e) == ("404", 404)


# ---------------------------------------------------------------- DeleteBucket

def test_delete_bucket_not_empty(s3, bucket):
    s3.put_object(Bucket=bucket, Key="dir/obj", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket=bucket)
    assert err(e) == ("BucketNotEmpty", 409)
    # Still there, object intact.
    assert s3.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.get_object(Bucket=bucket, Key="dir/obj")["Body"].read() == b"x"


def test_delete_bucket_after_objects_deleted(s3, new_bucket):
    name = new_bucket()
    s3.create_bucket(Bucket=name)
    for i in range(3):
        s3.put_object(Bucket=name, Key=f"k{i}", Body=b"x" * i)
    for i in range(3):
        s3.delete_object(Bucket=name, Key=f"k{i}")
    r = s3.delete_bucket(Bucket=name)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_delete_missing_bucket(s3):
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket=unique("missing"))
    assert err(e) == ("NoSuchBucket", 404)


def test_delete_empty_bucket(s3, new_bucket):
    name = new_bucket()
    s3.create_bucket(Bucket=name)
    r = s3.delete_bucket(Bucket=name)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket=name)
    assert err(e) == ("404", 404)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=name, Key="k", Body=b"x")
    assert err(e) == ("NoSuchBucket", 404)
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket=name)
    assert err(e) == ("NoSuchBucket", 404)
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket=name)
    assert err(e) == ("NoSuchBucket", 404)


def test_delete_bucket_of_other_owner_is_denied(s3, s3_other, new_bucket):
    name = new_bucket()
    s3.create_bucket(Bucket=name)
    with pytest.raises(ClientError) as e:
        s3_other.delete_bucket(Bucket=name)
    assert err(e) == ("AccessDenied", 403)
    assert s3.head_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 200


# ---------------------------------------------------------------- Location, versioning

def test_get_bucket_location(s3, bucket):
    r = s3.get_bucket_location(Bucket=bucket)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert r["LocationConstraint"] is None          # us-east-1 is the empty constraint


def test_get_bucket_location_missing(s3):
    with pytest.raises(ClientError) as e:
        s3.get_bucket_location(Bucket=unique("missing"))
    assert err(e) == ("NoSuchBucket", 404)


def test_get_bucket_versioning_never_enabled(s3, bucket):
    r = s3.get_bucket_versioning(Bucket=bucket)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert "Status" not in r and "MFADelete" not in r


def test_get_bucket_versioning_missing(s3):
    with pytest.raises(ClientError) as e:
        s3.get_bucket_versioning(Bucket=unique("missing"))
    assert err(e) == ("NoSuchBucket", 404)


# ---------------------------------------------------------------- unsupported sub-resources

@pytest.mark.parametrize("call", [
    lambda s3, b: s3.get_bucket_website(Bucket=b),
    lambda s3, b: s3.get_bucket_replication(Bucket=b),
    lambda s3, b: s3.delete_bucket_website(Bucket=b),
], ids=["get-website", "get-replication", "delete-website"])
def test_unsupported_bucket_subresource_is_not_implemented(s3, bucket, call):
    with pytest.raises(ClientError) as e:
        call(s3, bucket)
    # The code parsed out of an XML <Error> body: not a 500, not an empty answer.
    assert err(e) == ("NotImplemented", 501)
    assert e.value.response["Error"]["Message"]
    assert e.value.response["ResponseMetadata"]["HTTPHeaders"]["content-type"].startswith("application/xml")
    # Nothing changed: the bucket is still there and still unversioned.
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)


def test_other_account_cannot_use_a_bucket(s3, s3_other, new_bucket):
    """Buckets belong to accounts: another account's request gets AccessDenied."""
    name = new_bucket("private")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="k", Body=b"secret")
    for call in (lambda: s3_other.get_object(Bucket=name, Key="k"),
                 lambda: s3_other.put_object(Bucket=name, Key="k", Body=b"x"),
                 lambda: s3_other.delete_object(Bucket=name, Key="k"),
                 lambda: s3_other.list_objects_v2(Bucket=name)):
        with pytest.raises(ClientError) as e:
            call()
        assert e.value.response["Error"]["Code"] == "AccessDenied"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert s3.get_object(Bucket=name, Key="k")["Body"].read() == b"secret"
    s3.delete_object(Bucket=name, Key="k")
