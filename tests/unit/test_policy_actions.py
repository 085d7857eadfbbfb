"""Which policy actions an S3 request needs (core/actions.py), as S3's "Policy actions" page
and each operation's "Permissions" section in the API reference say."""
import pytest

from minis3.core import operations
from minis3.core.actions import Need, needs

B, K = "amzn-s3-demo-bucket", "photos/2026/a.jpg"
OBJ, BKT = f"arn:aws:s3:::{B}/{K}", f"arn:aws:s3:::{B}"


@pytest.mark.parametrize("op, key, query, expected", [
    ("GetObject", K, {}, [Need("s3:GetObject", OBJ)]),
    ("HeadObject", K, {}, [Need("s3:GetObject", OBJ)]),                          # one to one, another name
    ("GetObject", K, {"versionId": "v1"}, [Need("s3:GetObjectVersion", OBJ)]),
    ("DeleteObject", K, {"versionId": "v1"}, [Need("s3:DeleteObjectVersion", OBJ)]),
    ("PutObjectTagging", K, {"versionId": "v1"}, [Need("s3:PutObjectVersionTagging", OBJ)]),
    ("PutObject", K, {}, [Need("s3:PutObject", OBJ)]),
    ("UploadPart", K, {"uploadId": "u", "partNumber": "1"}, [Need("s3:PutObject", OBJ)]),
    ("CompleteMultipartUpload", K, {"uploadId": "u"}, [Need("s3:PutObject", OBJ)]),
    ("AbortMultipartUpload", K, {"uploadId": "u"}, [Need("s3:AbortMultipartUpload", OBJ)]),
    ("ListParts", K, {"uploadId": "u"}, [Need("s3:ListMultipartUploadParts", OBJ)]),
    ("GetObjectAttributes", K, {}, [Need("s3:GetObject", OBJ), Need("s3:GetObjectAttributes", OBJ)]),
    ("GetObjectAttributes", K, {"versionId": "v"},
     [Need("s3:GetObjectVersion", OBJ), Need("s3:GetObjectVersionAttributes", OBJ)]),
    ("ListObjectsV2", None, {"list-type": "2"}, [Need("s3:ListBucket", BKT)]),
    ("ListObjects", None, {}, [Need("s3:ListBucket", BKT)]),
    ("HeadBucket", None, {}, [Need("s3:ListBucket", BKT)]),
    ("ListObjectVersions", None, {"versions": ""}, [Need("s3:ListBucketVersions", BKT)]),
    ("ListMultipartUploads", None, {"uploads": ""}, [Need("s3:ListBucketMultipartUploads", BKT)]),
    ("PutBucketPolicy", None, {"policy": ""}, [Need("s3:PutBucketPolicy", BKT)]),   # one to one, same name
    ("DeleteBucketCors", None, {"cors": ""}, [Need("s3:PutBucketCORS", BKT)]),
    ("DeleteBucketLifecycle", None, {"lifecycle": ""}, [Need("s3:PutLifecycleConfiguration", BKT)]),
    ("GetBucketEncryption", None, {"encryption": ""}, [Need("s3:GetEncryptionConfiguration", BKT)]),
    ("DeletePublicAccessBlock", None, {"publicAccessBlock": ""}, [Need("s3:PutBucketPublicAccessBlock", BKT)]),
    ("GetBucketVersioning", None, {"versioning": ""}, [Need("s3:GetBucketVersioning", BKT)]),
    ("GetBucketVersioning", None, {"versioning": "", "versionId": "x"}, [Need("s3:GetBucketVersioning", BKT)]),
])
def test_the_actions_an_operation_needs(op, key, query, expected):
    assert needs(op, B, key, query) == expected


def test_list_buckets_needs_list_all_my_buckets_on_any_resource():
    assert needs("ListBuckets", None, None) == [Need("s3:ListAllMyBuckets", "*")]


def test_a_copy_needs_to_write_the_destination_and_read_the_source():
    assert needs("CopyObject", B, K, {}, copy_source=("src-bucket", "a/b", None)) == [
        Need("s3:PutObject", OBJ), Need("s3:GetObject", "arn:aws:s3:::src-bucket/a/b")]
    assert needs("UploadPartCopy", B, K, {"uploadId": "u"}, copy_source=("src-bucket", "a/b", "v7")) == [
        Need("s3:PutObject", OBJ), Need("s3:GetObjectVersion", "arn:aws:s3:::src-bucket/a/b")]


def test_delete_objects_is_decided_key_by_key():
    with pytest.raises(ValueError):
        needs("DeleteObjects", B, None, {"delete": ""})
    assert needs("DeleteObject", B, K) == [Need("s3:DeleteObject", OBJ)]


def test_every_operation_of_the_s3_model_needs_s3_actions():
    for op in sorted({r.op for r in operations.ROWS} - {"DeleteObjects", "ListBuckets"}):
        got = needs(op, B, K if op.endswith(("Object", "Part", "Upload", "Tagging", "Acl")) else None, {})
        assert got and all(n.action.startswith("s3:") and n.resource.startswith(BKT) for n in got), op
