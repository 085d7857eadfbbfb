"""Encryption at rest through boto3: SSE-S3 by default, SSE-KMS with the local key
service, SSE-C with the customer's key, bucket default encryption, and what lies on
every storage node's and metadata replica's disk (ciphertext only)."""
import base64
import hashlib
import json
import os
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from .cluster import meta_record, started_cluster
from .conftest import make_client

MiB = 1 << 20


def code(exc) -> tuple[int, str]:
    return exc.value.response["ResponseMetadata"]["HTTPStatusCode"], exc.value.response["Error"]["Code"]


def plain_body(size: int, tag: bytes) -> bytes:
    """Recognisable bytes: a marker repeated, so any stretch of 64 bytes of it can be searched for."""
    unit = hashlib.sha256(tag).hexdigest().encode() * 4           # 256 bytes
    return (unit * (size // len(unit) + 1))[:size]


def files_holding(root: Path, needles: list[bytes]) -> list[str]:
    """Every file under the cluster's data directory that holds one of ``needles``
    (the key directory aside: it holds keys, never object bytes)."""
    found = []
    for p in root.rglob("*"):
        if not p.is_file() or "keys" in p.relative_to(root).parts:
            continue
        data = p.read_bytes()
        if any(n in data for n in needles):
            found.append(str(p.relative_to(root)))
    return found


def unblock_sse_c(s3, bucket: str, **default) -> None:
    rule = {"ApplyServerSideEncryptionByDefault": default or {"SSEAlgorithm": "AES256"},
            "BlockedEncryptionTypes": {"EncryptionType": ["NONE"]}}
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [rule]})


# ----------------------------------------------------------------------------- SSE-S3, the default
def test_every_object_is_encrypted_and_no_disk_holds_its_bytes(s3, bucket, cluster):
    big = plain_body(3 * MiB + 12345, b"big")          # erasure-coded, several segments
    small = plain_body(20_000, b"small")              # inline in its metadata record
    put = s3.put_object(Bucket=bucket, Key="big", Body=big)
    assert put["ServerSideEncryption"] == "AES256"
    assert put["ETag"].strip('"') == hashlib.md5(big).hexdigest()      # SSE-S3: the MD5, as S3's
    s3.put_object(Bucket=bucket, Key="small", Body=small)
    for key, body in (("big", big), ("small", small)):
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head["ServerSideEncryption"] == "AES256"
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    # A range across a segment boundary: segments are opened whole, then cut.
    got = s3.get_object(Bucket=bucket, Key="big", Range=f"bytes={MiB - 100}-{2 * MiB + 99}")["Body"].read()
    assert got == big[MiB - 100:2 * MiB + 100]
    rec = meta_record(cluster, bucket, "big")
    assert rec["sse"]["alg"] == "AES256" and "wrap" in rec["sse"] and "enc" in rec["ec"]
    assert "enc" in meta_record(cluster, bucket, "small")
    # The replicas' WALs, snapshots and blob logs, every fragment file: none holds
    # the bytes, in the clear or in base64 (as an inline payload would travel).
    needles = [big[5000:5064], small[700:764], base64.b64encode(small[:48]), base64.b64encode(big[:48])]
    assert files_holding(cluster.root / "data", needles) == []


@pytest.fixture(scope="module")
def strict(tmp_path_factory):
    """A cluster whose frontend takes no SSE-C key over plain HTTP (as one on a network
    address would not), and leaves buckets named clear-* in the clear (`plaintext_buckets`)."""
    yield from started_cluster(tmp_path_factory, "strict", frontend={"sse_c_over_http": False,
                                                                    "plaintext_buckets": ["clear-*"]})


def test_sse_c_over_plain_http_is_refused_where_the_topology_says(strict):
    s3 = make_client(strict.endpoint)
    s3.create_bucket(Bucket="strict")
    unblock_sse_c(s3, "strict")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket="strict", Key="k", Body=b"x", SSECustomerAlgorithm="AES256", SSECustomerKey=KEY)
    assert code(e) == (400, "InvalidRequest")
    assert "secure connection" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError):
        s3.head_object(Bucket="strict", Key="k")          # nothing was stored


def test_a_plaintext_bucket_is_in_the_clear_until_its_configuration_asks(strict):
    s3 = make_client(strict.endpoint)
    s3.create_bucket(Bucket="clear-demo")
    body = plain_body(300_000, b"clear")
    put = s3.put_object(Bucket="clear-demo", Key="k", Body=body)
    assert "ServerSideEncryption" not in put
    assert "sse" not in meta_record(strict, "clear-demo", "k") or not meta_record(strict, "clear-demo", "k")["sse"]
    assert files_holding(strict.root / "data", [body[1000:1064]])        # a learner can find the bytes
    s3.put_bucket_encryption(Bucket="clear-demo", ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    sealed = plain_body(300_000, b"sealed-after")
    assert s3.put_object(Bucket="clear-demo", Key="k2", Body=sealed)["ServerSideEncryption"] == "AES256"
    assert s3.get_object(Bucket="clear-demo", Key="k")["Body"].read() == body
    assert files_holding(strict.root / "data", [sealed[1000:1064]]) == []


def test_copy_and_multipart_are_encrypted_too(s3, bucket, cluster):
    body = plain_body(6 * MiB, b"mpu")
    up = s3.create_multipart_upload(Bucket=bucket, Key="mpu")
    assert up["ServerSideEncryption"] == "AES256"
    parts = []
    for n, off in ((1, 0), (2, 5 * MiB)):
        r = s3.upload_part(Bucket=bucket, Key="mpu", UploadId=up["UploadId"], PartNumber=n,
                           Body=body[off:off + 5 * MiB])
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    s3.complete_multipart_upload(Bucket=bucket, Key="mpu", UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": parts})
    assert s3.get_object(Bucket=bucket, Key="mpu")["Body"].read() == body
    copied = s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "mpu"})
    assert copied["ServerSideEncryption"] == "AES256"
    assert s3.get_object(Bucket=bucket, Key="copy")["Body"].read() == body
    # A copy has a data key of its own: the same plaintext, other ciphertext.
    a, b = meta_record(cluster, bucket, "mpu"), meta_record(cluster, bucket, "copy")
    assert a["sse"]["wrap"] != b["sse"]["wrap"]
    # UploadPartCopy: a part copied out of an encrypted object is sealed under the new upload's key.
    up2 = s3.create_multipart_upload(Bucket=bucket, Key="mpu-copy")
    pc = s3.upload_part_copy(Bucket=bucket, Key="mpu-copy", UploadId=up2["UploadId"], PartNumber=1,
                             CopySource={"Bucket": bucket, "Key": "mpu"}, CopySourceRange=f"bytes=0-{5 * MiB - 1}")
    s3.complete_multipart_upload(Bucket=bucket, Key="mpu-copy", UploadId=up2["UploadId"], MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": pc["CopyPartResult"]["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key="mpu-copy")["Body"].read() == body[:5 * MiB]
    assert files_holding(cluster.root / "data", [body[3 * MiB:3 * MiB + 64]]) == []


def test_bucket_default_encryption(s3, bucket):
    got = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert got["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert got["BucketKeyEnabled"] is False
    assert got["BlockedEncryptionTypes"] == {"EncryptionType": ["SSE-C"]}      # S3's default since April 2026
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/team-key"},
         "BucketKeyEnabled": True}]})
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == "alias/team-key"
    assert rule["BucketKeyEnabled"] is True
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"default kms")
    assert put["ServerSideEncryption"] == "aws:kms" and put["BucketKeyEnabled"] is True
    assert put["SSEKMSKeyId"].startswith("arn:aws:kms:us-east-1:") and ":key/" in put["SSEKMSKeyId"]
    assert put["ETag"].strip('"') != hashlib.md5(b"default kms").hexdigest()      # S3: not the MD5 under KMS
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"default kms"
    # The same alias is the same key for the next object.
    assert s3.put_object(Bucket=bucket, Key="k2", Body=b"x")["SSEKMSKeyId"] == put["SSEKMSKeyId"]
    s3.delete_bucket_encryption(Bucket=bucket)
    assert s3.put_object(Bucket=bucket, Key="k3", Body=b"x")["ServerSideEncryption"] == "AES256"
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"default kms"     # still readable


def test_bucket_encryption_validation(s3, bucket):
    def put(rule):
        with pytest.raises(ClientError) as e:
            s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [rule]})
        return code(e)
    assert put({"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256", "KMSMasterKeyID": "alias/x"}}) \
        == (400, "InvalidArgument")
    assert put({"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "not a key"}}) \
        == (400, "KMS.NotFoundException")
    assert put({"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms:dsse"}}) == (501, "NotImplemented")


# ----------------------------------------------------------------------------- SSE-KMS
def test_sse_kms_with_a_key_and_a_context(s3, bucket, cluster):
    context = base64.b64encode(json.dumps({"team": "photos"}).encode()).decode()
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"kms bytes", ServerSideEncryption="aws:kms",
                        SSEKMSKeyId="1234abcd-12ab-34cd-56ef-1234567890ab", SSEKMSEncryptionContext=context)
    assert put["SSEKMSKeyId"].endswith(":key/1234abcd-12ab-34cd-56ef-1234567890ab")
    ctx = json.loads(base64.b64decode(put["ResponseMetadata"]["HTTPHeaders"]["x-amz-server-side-encryption-context"]))
    assert ctx == {"team": "photos", "aws:s3:arn": f"arn:aws:s3:::{bucket}/k"}
    head = s3.head_object(Bucket=bucket, Key="k")
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == put["SSEKMSKeyId"]
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"kms bytes"
    # No key id: the AWS managed key, aws/s3.
    managed = s3.put_object(Bucket=bucket, Key="m", Body=b"x", ServerSideEncryption="aws:kms")["SSEKMSKeyId"]
    assert managed != put["SSEKMSKeyId"]
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="bad", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId="nope")
    assert code(e) == (400, "KMS.NotFoundException")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="bad", Body=b"x", ServerSideEncryption="AES256",
                      SSEKMSKeyId="alias/team-key")
    assert code(e) == (400, "InvalidArgument")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="bad", Body=b"x", ServerSideEncryption="aws:kms:dsse")
    assert code(e) == (501, "NotImplemented")
    # A GET names no encryption (the record knows it): S3 refuses the header.
    client = make_client(cluster.endpoint)
    client.meta.events.register("before-sign.s3.GetObject",
                                lambda request, **_: request.headers.__setitem__(
                                    "x-amz-server-side-encryption", "aws:kms"))
    with pytest.raises(ClientError) as e:
        client.get_object(Bucket=bucket, Key="k")
    assert code(e) == (400, "InvalidArgument")


# ----------------------------------------------------------------------------- SSE-C
KEY = os.urandom(32)
OTHER = os.urandom(32)


def test_sse_c_is_blocked_until_the_owner_unblocks_it(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", SSECustomerAlgorithm="AES256", SSECustomerKey=KEY)
    assert code(e) == (403, "AccessDenied")
    unblock_sse_c(s3, bucket)
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"secret", SSECustomerAlgorithm="AES256", SSECustomerKey=KEY)
    assert put["SSECustomerAlgorithm"] == "AES256"
    assert put["SSECustomerKeyMD5"] == base64.b64encode(hashlib.md5(KEY).digest()).decode()


def test_sse_c_key_is_required_and_checked(s3, bucket, cluster):
    unblock_sse_c(s3, bucket)
    body = plain_body(2 * MiB + 7, b"ssec")
    put = s3.put_object(Bucket=bucket, Key="k", Body=body, SSECustomerAlgorithm="AES256", SSECustomerKey=KEY)
    assert put["ETag"].strip('"') != hashlib.md5(body).hexdigest()
    got = s3.get_object(Bucket=bucket, Key="k", SSECustomerAlgorithm="AES256", SSECustomerKey=KEY)
    assert got["Body"].read() == body and got["SSECustomerKeyMD5"] == put["SSECustomerKeyMD5"]
    head = s3.head_object(Bucket=bucket, Key="k", SSECustomerAlgorithm="AES256", SSECustomerKey=KEY)
    assert head["SSECustomerAlgorithm"] == "AES256" and head["ContentLength"] == len(body)
    assert head["SSECustomerKeyMD5"] == put["SSECustomerKeyMD5"]
    # GetObjectAttributes: an SSE-C object's metadata needs its key too.
    with pytest.raises(ClientError) as e:
        s3.get_object_attributes(Bucket=bucket, Key="k", ObjectAttributes=["ETag", "ObjectSize"])
    assert code(e) == (400, "InvalidRequest")
    attrs = s3.get_object_attributes(Bucket=bucket, Key="k", ObjectAttributes=["ObjectSize"],   # (boto3 does not
                                     SSECustomerAlgorithm="AES256",                            # encode it here)
                                     SSECustomerKey=base64.b64encode(KEY).decode(),
                                     SSECustomerKeyMD5=put["SSECustomerKeyMD5"])
    assert attrs["ObjectSize"] == len(body)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k")
    assert code(e) == (400, "InvalidRequest")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k", SSECustomerAlgorithm="AES256", SSECustomerKey=OTHER)
    assert code(e) == (403, "AccessDenied")
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="k", SSECustomerAlgorithm="AES256", SSECustomerKey=OTHER)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as e:       # a key of 128 bits
        s3.put_object(Bucket=bucket, Key="k2", Body=b"x", SSECustomerAlgorithm="AES256", SSECustomerKey=KEY[:16])
    assert code(e) == (400, "InvalidArgument")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k2", Body=b"x", SSECustomerAlgorithm="AES128", SSECustomerKey=KEY)
    assert code(e) == (400, "InvalidEncryptionAlgorithmError")
    s3.put_object(Bucket=bucket, Key="plain", Body=b"x")
    with pytest.raises(ClientError) as e:       # SSE-C parameters for an object that has none
        s3.get_object(Bucket=bucket, Key="plain", SSECustomerAlgorithm="AES256", SSECustomerKey=KEY)
    assert code(e) == (400, "InvalidRequest")
    # The key is never stored, nor an unsalted hash of it: the record holds a salted HMAC of
    # it, and the data key wrapped by it.
    rec = meta_record(cluster, bucket, "k")["sse"]
    assert set(rec) == {"alg", "wrap", "salt", "hmac"}
    assert base64.b64encode(KEY).decode() not in json.dumps(rec)


def test_sse_c_copy_and_multipart(s3, bucket):
    unblock_sse_c(s3, bucket)
    c = dict(SSECustomerAlgorithm="AES256", SSECustomerKey=KEY)
    body = plain_body(5 * MiB + 10, b"ssec-mpu")
    up = s3.create_multipart_upload(Bucket=bucket, Key="m", **c)
    with pytest.raises(ClientError) as e:        # every part names the upload's key
        s3.upload_part(Bucket=bucket, Key="m", UploadId=up["UploadId"], PartNumber=1, Body=body[:5 * MiB])
    assert code(e) == (400, "InvalidRequest")
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="m", UploadId=up["UploadId"], PartNumber=1, Body=body[:5 * MiB],
                       SSECustomerAlgorithm="AES256", SSECustomerKey=OTHER)
    assert code(e) == (403, "AccessDenied")
    p1 = s3.upload_part(Bucket=bucket, Key="m", UploadId=up["UploadId"], PartNumber=1, Body=body[:5 * MiB], **c)
    p2 = s3.upload_part(Bucket=bucket, Key="m", UploadId=up["UploadId"], PartNumber=2, Body=body[5 * MiB:], **c)
    s3.complete_multipart_upload(Bucket=bucket, Key="m", UploadId=up["UploadId"], MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": p1["ETag"]}, {"PartNumber": 2, "ETag": p2["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key="m", **c)["Body"].read() == body
    # Copy out of SSE-C (the source's key in the copy-source headers) into the bucket's default.
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="out", CopySource={"Bucket": bucket, "Key": "m"})
    assert code(e) == (400, "InvalidRequest")
    out = s3.copy_object(Bucket=bucket, Key="out", CopySource={"Bucket": bucket, "Key": "m"},
                         CopySourceSSECustomerAlgorithm="AES256", CopySourceSSECustomerKey=KEY)
    assert out["ServerSideEncryption"] == "AES256"
    assert s3.get_object(Bucket=bucket, Key="out")["Body"].read() == body
    # ... and into another customer key.
    s3.copy_object(Bucket=bucket, Key="rekeyed", CopySource={"Bucket": bucket, "Key": "m"},
                   CopySourceSSECustomerAlgorithm="AES256", CopySourceSSECustomerKey=KEY,
                   SSECustomerAlgorithm="AES256", SSECustomerKey=OTHER)
    assert s3.get_object(Bucket=bucket, Key="rekeyed", SSECustomerAlgorithm="AES256",
                         SSECustomerKey=OTHER)["Body"].read() == body
    # A range of an SSE-C object, through a part boundary.
    got = s3.get_object(Bucket=bucket, Key="m", Range=f"bytes={5 * MiB - 5}-{5 * MiB + 4}", **c)["Body"].read()
    assert got == body[5 * MiB - 5:5 * MiB + 5]


def test_presigned_get_of_an_sse_c_object(s3, bucket):
    """boto3 signs the SSE-C headers into a presigned URL; the client sends them with it."""
    import urllib.request
    unblock_sse_c(s3, bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"presigned", SSECustomerAlgorithm="AES256", SSECustomerKey=KEY)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k",
                                                          "SSECustomerAlgorithm": "AES256", "SSECustomerKey": KEY})
    req = urllib.request.Request(url, headers={
        "x-amz-server-side-encryption-customer-algorithm": "AES256",
        "x-amz-server-side-encryption-customer-key": base64.b64encode(KEY).decode(),
        "x-amz-server-side-encryption-customer-key-MD5": base64.b64encode(hashlib.md5(KEY).digest()).decode()})
    assert urllib.request.urlopen(req).read() == b"presigned"
