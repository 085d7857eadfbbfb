"""Multipart uploads through boto3 against the real cluster."""
from __future__ import annotations

import base64
import hashlib
import io
import os
import threading
import zlib

import pytest
from awscrt import checksums as crt
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

MiB = 1024 * 1024


def _code(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


def _upload(s3, bucket, key, parts: list[bytes], **create) -> tuple[str, list[dict]]:
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key, **create)["UploadId"]
    done = []
    for n, body in enumerate(parts, 1):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=n, Body=body)
        done.append({"PartNumber": n, "ETag": r["ETag"]})
    return uid, done


def test_upload_list_complete_and_read_back(s3, bucket):
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(MiB + 7)]
    uid, done = _upload(s3, bucket, "big", parts, ContentType="text/plain", Metadata={"a": "b"})
    listed = s3.list_parts(Bucket=bucket, Key="big", UploadId=uid)
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in listed["Parts"]] == \
        [(d["PartNumber"], len(b), d["ETag"]) for d, b in zip(done, parts)]
    ups = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in ups] == [("big", uid)]
    # Nothing is visible before completion.
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="big")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    r = s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=uid, MultipartUpload={"Parts": done})
    want_etag = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + "-3"
    assert r["ETag"] == f'"{want_etag}"'
    data = b"".join(parts)
    got = s3.get_object(Bucket=bucket, Key="big")
    assert got["Body"].read() == data and got["ContentType"] == "text/plain" and got["Metadata"] == {"a": "b"}
    assert got["ETag"] == f'"{want_etag}"'
    # Ranges across part boundaries, and parts by number.
    lo, hi = 5 * MiB - 10, 10 * MiB + 10
    assert s3.get_object(Bucket=bucket, Key="big", Range=f"bytes={lo}-{hi}")["Body"].read() == data[lo:hi + 1]
    p2 = s3.get_object(Bucket=bucket, Key="big", PartNumber=2)
    assert p2["Body"].read() == parts[1] and p2["PartsCount"] == 3
    assert p2["ContentRange"] == f"bytes {5 * MiB}-{10 * MiB - 1}/{len(data)}"
    h3 = s3.head_object(Bucket=bucket, Key="big", PartNumber=3)
    assert h3["ContentLength"] == MiB + 7 and h3["PartsCount"] == 3
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="big", PartNumber=4)
    assert _code(e.value) == "InvalidPartNumber"
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    with pytest.raises(ClientError) as e:
        s3.list_parts(Bucket=bucket, Key="big", UploadId=uid)
    assert _code(e.value) == "NoSuchUpload"


def test_a_part_uploaded_again_replaces_the_earlier_one(s3, bucket):
    uid, done = _upload(s3, bucket, "again", [os.urandom(5 * MiB), b"first"])
    second = s3.upload_part(Bucket=bucket, Key="again", UploadId=uid, PartNumber=2, Body=b"second")
    with pytest.raises(ClientError) as e:          # the first version's ETag is no longer a part
        s3.complete_multipart_upload(Bucket=bucket, Key="again", UploadId=uid, MultipartUpload={"Parts": done})
    assert _code(e.value) == "InvalidPart"
    done[1]["ETag"] = second["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="again", UploadId=uid, MultipartUpload={"Parts": done})
    assert s3.get_object(Bucket=bucket, Key="again")["Body"].read()[-6:] == b"second"


def test_completion_errors(s3, bucket):
    uid, done = _upload(s3, bucket, "err", [os.urandom(MiB), os.urandom(MiB), b"z"])
    cases = [
        ([done[1], done[0]], "InvalidPartOrder"),
        ([{"PartNumber": 1, "ETag": '"' + "0" * 32 + '"'}], "InvalidPart"),
        ([{"PartNumber": 9, "ETag": done[0]["ETag"]}], "InvalidPart"),
        (done, "EntityTooSmall"),                     # parts 1 and 2 are under 5 MiB
    ]
    for parts, code in cases:
        with pytest.raises(ClientError) as e:
            s3.complete_multipart_upload(Bucket=bucket, Key="err", UploadId=uid, MultipartUpload={"Parts": parts})
        assert _code(e.value) == code, parts
    # A single small part is fine: the last part may be any size.
    s3.complete_multipart_upload(Bucket=bucket, Key="err", UploadId=uid, MultipartUpload={"Parts": [done[2]]})
    assert s3.get_object(Bucket=bucket, Key="err")["Body"].read() == b"z"
    bogus = "0" * 32
    for call in (lambda: s3.upload_part(Bucket=bucket, Key="err", UploadId=bogus, PartNumber=1, Body=b"x"),
                 lambda: s3.list_parts(Bucket=bucket, Key="err", UploadId=bogus),
                 lambda: s3.abort_multipart_upload(Bucket=bucket, Key="err", UploadId=bogus),
                 # (uid's Complete sent again is a retry: S3 answers it 200, test_tagging.py)
                 lambda: s3.complete_multipart_upload(Bucket=bucket, Key="err", UploadId=uid,
                                                      MultipartUpload={"Parts": [done[0]]})):
        with pytest.raises(ClientError) as e:
            call()
        assert _code(e.value) == "NoSuchUpload"
    uid2 = s3.create_multipart_upload(Bucket=bucket, Key="err")["UploadId"]
    for n in (0, 10001):
        with pytest.raises(ClientError) as e:
            s3.upload_part(Bucket=bucket, Key="err", UploadId=uid2, PartNumber=n, Body=b"x")
        assert _code(e.value) == "InvalidArgument"


def test_abort_forgets_the_upload(s3, bucket):
    uid, _ = _upload(s3, bucket, "gone", [b"a", b"b"])
    s3.abort_multipart_upload(Bucket=bucket, Key="gone", UploadId=uid)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="gone", UploadId=uid, PartNumber=3, Body=b"c")
    assert _code(e.value) == "NoSuchUpload"


def test_list_multipart_uploads_prefix_delimiter_and_pages(s3, bucket):
    keys = ["a/1", "a/2", "b/1", "c", "c"]
    uids = [s3.create_multipart_upload(Bucket=bucket, Key=k)["UploadId"] for k in keys]
    r = s3.list_multipart_uploads(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/", "b/"]
    assert [(u["Key"], u["UploadId"]) for u in r["Uploads"]] == [("c", uids[3]), ("c", uids[4])]
    r = s3.list_multipart_uploads(Bucket=bucket, Prefix="a/")
    assert [u["Key"] for u in r["Uploads"]] == ["a/1", "a/2"]
    seen, kw = [], {}
    while True:
        r = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=2, **kw)
        seen += [(u["Key"], u["UploadId"]) for u in r.get("Uploads", [])]
        if not r["IsTruncated"]:
            break
        kw = {"KeyMarker": r["NextKeyMarker"], "UploadIdMarker": r["NextUploadIdMarker"]}
    assert seen == list(zip(keys, uids))
    r = s3.list_multipart_uploads(Bucket=bucket, KeyMarker="b/1")
    assert [u["Key"] for u in r["Uploads"]] == ["c", "c"]
    r = s3.list_multipart_uploads(Bucket=bucket, KeyMarker="c", UploadIdMarker=uids[3])
    assert [u["UploadId"] for u in r["Uploads"]] == [uids[4]]
    for k, u in zip(keys, uids):
        s3.abort_multipart_upload(Bucket=bucket, Key=k, UploadId=u)


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def test_composite_crc32_checksum_as_boto3_asks_by_default(s3, bucket):
    parts = [os.urandom(5 * MiB), os.urandom(123)]
    uid = s3.create_multipart_upload(Bucket=bucket, Key="crc", ChecksumAlgorithm="CRC32")["UploadId"]
    done = []
    for n, body in enumerate(parts, 1):
        r = s3.upload_part(Bucket=bucket, Key="crc", UploadId=uid, PartNumber=n, Body=body,
                           ChecksumAlgorithm="CRC32")
        assert r["ChecksumCRC32"] == _b64(zlib.crc32(body).to_bytes(4, "big"))
        done.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumCRC32": r["ChecksumCRC32"]})
    r = s3.complete_multipart_upload(Bucket=bucket, Key="crc", UploadId=uid, MultipartUpload={"Parts": done})
    composite = _b64(zlib.crc32(b"".join(zlib.crc32(p).to_bytes(4, "big") for p in parts)).to_bytes(4, "big"))
    assert r["ChecksumCRC32"] == composite + "-2" and r["ChecksumType"] == "COMPOSITE"
    h = s3.head_object(Bucket=bucket, Key="crc", ChecksumMode="ENABLED")
    assert h["ChecksumCRC32"] == composite + "-2" and h["ChecksumType"] == "COMPOSITE"
    [listed] = s3.list_objects_v2(Bucket=bucket, Prefix="crc")["Contents"]
    assert listed["ChecksumAlgorithm"] == ["CRC32"] and listed["ChecksumType"] == "COMPOSITE"
    # A part or a range never carries the whole object's checksum.
    assert "ChecksumCRC32" not in s3.get_object(Bucket=bucket, Key="crc", PartNumber=1, ChecksumMode="ENABLED")
    assert "ChecksumCRC32" not in s3.get_object(Bucket=bucket, Key="crc", Range="bytes=0-9", ChecksumMode="ENABLED")
    assert s3.get_object(Bucket=bucket, Key="crc", ChecksumMode="ENABLED")["Body"].read() == b"".join(parts)


@pytest.mark.parametrize("alg,fn,size", [("CRC32C", crt.crc32c, 4), ("CRC32", zlib.crc32, 4),
                                         ("CRC64NVME", crt.crc64nvme, 8)])
def test_full_object_checksum_is_combined_from_the_parts(s3, bucket, alg, fn, size):
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB + 1), os.urandom(77)]
    key = f"full-{alg}"
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm=alg,
                                     ChecksumType="FULL_OBJECT")["UploadId"]
    done = []
    for n, body in enumerate(parts, 1):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=n, Body=body, ChecksumAlgorithm=alg)
        done.append({"PartNumber": n, "ETag": r["ETag"], f"Checksum{alg}": r[f"Checksum{alg}"]})
    whole = _b64(fn(b"".join(parts)).to_bytes(size, "big"))
    with pytest.raises(ClientError) as e:          # the client's whole-object checksum is verified
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid, MultipartUpload={"Parts": done},
                                     **{f"Checksum{alg}": _b64(b"\0" * size)})
    assert _code(e.value) == "BadDigest"
    r = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid, MultipartUpload={"Parts": done},
                                     **{f"Checksum{alg}": whole})
    assert r[f"Checksum{alg}"] == whole and r["ChecksumType"] == "FULL_OBJECT"
    h = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert h[f"Checksum{alg}"] == whole and h["ChecksumType"] == "FULL_OBJECT"


def test_upload_fileobj_and_download_fileobj_with_threads(s3, bucket):
    data = os.urandom(23 * MiB + 5)
    cfg = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, max_concurrency=4)
    s3.upload_fileobj(io.BytesIO(data), bucket, "xfer", Config=cfg)
    h = s3.head_object(Bucket=bucket, Key="xfer", ChecksumMode="ENABLED")
    assert h["ETag"].endswith('-5"')
    # boto3's default: CRC32 at Create, so a COMPOSITE checksum of the parts' CRC32s.
    assert h["ChecksumType"] == "COMPOSITE" and h["ChecksumCRC32"].endswith("-5")
    out = io.BytesIO()
    s3.download_fileobj(bucket, "xfer", out, Config=cfg)
    assert out.getvalue() == data


def test_upload_part_copy_with_a_range(s3, bucket):
    src = os.urandom(7 * MiB)
    s3.put_object(Bucket=bucket, Key="src", Body=src)
    uid = s3.create_multipart_upload(Bucket=bucket, Key="copied")["UploadId"]
    r1 = s3.upload_part_copy(Bucket=bucket, Key="copied", UploadId=uid, PartNumber=1,
                             CopySource={"Bucket": bucket, "Key": "src"}, CopySourceRange=f"bytes=0-{5 * MiB - 1}")
    r2 = s3.upload_part_copy(Bucket=bucket, Key="copied", UploadId=uid, PartNumber=2,
                             CopySource={"Bucket": bucket, "Key": "src"})
    assert r1["CopyPartResult"]["ETag"] == f'"{hashlib.md5(src[:5 * MiB]).hexdigest()}"'
    with pytest.raises(ClientError) as e:
        s3.upload_part_copy(Bucket=bucket, Key="copied", UploadId=uid, PartNumber=3,
                            CopySource={"Bucket": bucket, "Key": "src"}, CopySourceRange=f"bytes=0-{7 * MiB}")
    assert _code(e.value) == "InvalidArgument"
    s3.complete_multipart_upload(Bucket=bucket, Key="copied", UploadId=uid, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": r1["CopyPartResult"]["ETag"]},
        {"PartNumber": 2, "ETag": r2["CopyPartResult"]["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key="copied")["Body"].read() == src[:5 * MiB] + src


def test_concurrent_uploads_to_one_key_last_completed_wins(s3, bucket):
    a, da = _upload(s3, bucket, "race", [b"A" * 10])
    b, db = _upload(s3, bucket, "race", [b"B" * 10])
    s3.complete_multipart_upload(Bucket=bucket, Key="race", UploadId=b, MultipartUpload={"Parts": db})
    s3.complete_multipart_upload(Bucket=bucket, Key="race", UploadId=a, MultipartUpload={"Parts": da})
    assert s3.get_object(Bucket=bucket, Key="race")["Body"].read() == b"A" * 10
    # Parts uploaded in parallel threads to one upload.
    uid = s3.create_multipart_upload(Bucket=bucket, Key="parallel")["UploadId"]
    bodies = {n: os.urandom(5 * MiB) for n in range(1, 5)}
    etags = {}

    def put(n):
        etags[n] = s3.upload_part(Bucket=bucket, Key="parallel", UploadId=uid, PartNumber=n, Body=bodies[n])["ETag"]
    threads = [threading.Thread(target=put, args=(n,)) for n in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s3.complete_multipart_upload(Bucket=bucket, Key="parallel", UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": n, "ETag": etags[n]} for n in sorted(bodies)]})
    assert s3.get_object(Bucket=bucket, Key="parallel")["Body"].read() == b"".join(bodies[n] for n in sorted(bodies))


def test_part_numbers_up_to_10000_and_list_parts_pages(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="many")["UploadId"]
    numbers = list(range(1, 24)) + [10_000]
    for n in numbers:
        s3.upload_part(Bucket=bucket, Key="many", UploadId=uid, PartNumber=n, Body=str(n).encode())
    seen, marker = [], 0
    while True:
        r = s3.list_parts(Bucket=bucket, Key="many", UploadId=uid, MaxParts=10, PartNumberMarker=marker)
        seen += [p["PartNumber"] for p in r["Parts"]]
        assert len(r["Parts"]) <= 10
        if not r["IsTruncated"]:
            break
        marker = r["NextPartNumberMarker"]
    assert seen == numbers
    s3.abort_multipart_upload(Bucket=bucket, Key="many", UploadId=uid)


def test_a_part_over_5_gib_is_refused_before_its_body(cluster, s3, bucket):
    """The declared length alone is enough: EntityTooLarge, nothing read or stored."""
    import datetime as dt
    import http.client
    from urllib.parse import urlsplit

    from minis3.core.signing import sign_request

    from .cluster import ACCESS_KEY, SECRET_KEY
    uid = s3.create_multipart_upload(Bucket=bucket, Key="huge")["UploadId"]
    url = f"{cluster.endpoint}/{bucket}/huge?partNumber=1&uploadId={uid}"
    headers = {"Content-Length": str(5 * 1024 ** 3 + 1)}
    headers.update(sign_request("PUT", url, headers, "UNSIGNED-PAYLOAD", ACCESS_KEY, SECRET_KEY, "us-east-1",
                                dt.datetime.now(dt.timezone.utc)))
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.putrequest("PUT", f"{u.path}?{u.query}")
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.endheaders()
    r = conn.getresponse()
    body = r.read()
    conn.close()
    assert r.status == 400 and b"<Code>EntityTooLarge</Code>" in body
    s3.abort_multipart_upload(Bucket=bucket, Key="huge", UploadId=uid)
