from __future__ import annotations

import pytest

from minis3.core import errors as E
from minis3.core.names import validate_bucket_name, validate_key


@pytest.mark.parametrize("name", [
    "abc", "a" * 63, "my-bucket", "my.bucket.name", "1bucket", "bucket1", "a-b.c-d",
    "docexamplebucket1", "log-delivery-march-2020", "my-hosted-content", "192.168.5.4x",
    "xn-bucket", "sthree", "amzn-s3-demo", "bucket-s3alias-x", "a.mrapx", "x--ol-s3a",
    "1.2.3", "1.2.3.4.5", "a-.b", "a.-b",
])
def test_valid_bucket_names(name):
    validate_bucket_name(name)


@pytest.mark.parametrize("name", [
    "", "ab", "a" * 64, "My-Bucket", "my_bucket", "-bucket", "bucket-", ".bucket", "bucket.",
    "my..bucket", "192.168.5.4", "10.0.0.1", "xn--bucket", "sthree-bucket",
    "sthree-configurator", "amzn-s3-demo-bucket", "bucket-s3alias", "bucket--ol-s3",
    "bucket.mrap", "bucket--x-s3", "bucket--table-s3", "bu cket", "bucket/x", "bücket",
    "bucket\n", "BUCKET",
])
def test_invalid_bucket_names(name):
    with pytest.raises(E.InvalidBucketName) as ei:
        validate_bucket_name(name)
    assert ei.value.status == 400
    assert ei.value.extra["BucketName"] == name


def test_key_lengths():
    validate_key("k")
    validate_key("a" * 1024)
    validate_key("é" * 512)          # 1024 bytes
    validate_key("😀" * 256)          # 1024 bytes
    validate_key("\x00\x01 /../\n")  # S3 keys may hold anything
    with pytest.raises(E.KeyTooLongError) as ei:
        validate_key("a" * 1025)
    assert ei.value.extra == {"Size": "1025", "MaxSizeAllowed": "1024"}
    with pytest.raises(E.KeyTooLongError):
        validate_key("é" * 513)
    with pytest.raises(E.KeyTooLongError):
        validate_key("😀" * 256 + "a")


def test_bad_keys():
    with pytest.raises(E.InvalidArgument):
        validate_key("")
    with pytest.raises(E.InvalidArgument):
        validate_key("a\udc80")
