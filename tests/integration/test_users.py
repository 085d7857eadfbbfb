"""`minis3 user add|list|remove` against a running cluster: keys added at runtime sign requests
at once, as their account (and user), are named by bucket policies like the topology's, and
stop working after `user remove`."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from minis3.core.access import account_id, canonical_id

from .cluster import ACCESS_KEY


def minis3(cluster, *args, check=True):
    p = subprocess.run([sys.executable, "-m", "minis3", *args, "--topology", str(cluster.topo_path)],
                       capture_output=True, text=True, timeout=60)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def client(cluster, ak, sk):
    return boto3.client("s3", endpoint_url=cluster.endpoint, region_name="us-east-1", aws_access_key_id=ak,
                        aws_secret_access_key=sk, config=Config(retries={"max_attempts": 1}))


def test_a_key_added_at_runtime_signs_as_its_account_and_user_and_stops_when_removed(cluster, s3):
    acme = f"acme-{uuid.uuid4().hex[:6]}"
    root = json.loads(minis3(cluster, "user", "add", "--account", acme, "--json").stdout)
    bob = json.loads(minis3(cluster, "user", "add", "--account", acme, "--user", "bob", "--json").stdout)
    assert root["access_key"].startswith("AKIA") and len(root["secret_key"]) == 40
    assert root["arn"] == f"arn:aws:iam::{account_id(acme)}:root"
    assert bob["arn"] == f"arn:aws:iam::{account_id(acme)}:user/bob"
    listed = {r["access_key"]: r for r in json.loads(minis3(cluster, "user", "list", "--json").stdout)}
    assert listed[ACCESS_KEY]["from"] == "topology"
    assert listed[bob["access_key"]]["account"] == acme and listed[bob["access_key"]]["user"] == "bob"
    assert "secret_key" not in listed[bob["access_key"]]
    text = minis3(cluster, "user", "list").stdout
    assert bob["access_key"] in text and bob["arn"] in text

    # Usable at once, as the account: a bucket it makes is the account's, its users share it.
    c_root, c_bob = client(cluster, root["access_key"], root["secret_key"]), client(cluster, bob["access_key"],
                                                                                    bob["secret_key"])
    name = f"u-{uuid.uuid4().hex[:10]}"
    c_root.create_bucket(Bucket=name)
    listing = c_bob.list_buckets()
    assert [b["Name"] for b in listing["Buckets"]] == [name]
    assert listing["Owner"] == {"ID": canonical_id(acme), "DisplayName": acme}
    c_bob.put_object(Bucket=name, Key="k", Body=b"by bob")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=name, Key="k")                 # another account's bucket
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    # A bucket policy names the user like any principal.
    c_root.put_bucket_policy(Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": {"AWS": bob["arn"]}, "Action": "s3:DeleteObject",
         "Resource": f"arn:aws:s3:::{name}/*"}]}))
    with pytest.raises(ClientError) as e:
        c_bob.delete_object(Bucket=name, Key="k")
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    c_root.delete_bucket_policy(Bucket=name)

    # Removed: refused within the refresh period (5 s), as an unknown key.
    minis3(cluster, "user", "remove", bob["access_key"])
    deadline = time.monotonic() + 15
    while True:
        try:
            c_bob.list_buckets()
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "InvalidAccessKeyId"
            break
        assert time.monotonic() < deadline, "the removed key still works"
        time.sleep(0.5)
    assert minis3(cluster, "user", "remove", bob["access_key"], check=False).returncode == 2
    assert minis3(cluster, "user", "remove", ACCESS_KEY, check=False).returncode == 2
    c_root.delete_object(Bucket=name, Key="k")
    c_root.delete_bucket(Bucket=name)
    minis3(cluster, "user", "remove", root["access_key"])


def test_a_made_up_key_is_refused_as_s3_refuses_it(cluster):
    bogus = client(cluster, "AKIA" + "X" * 16, "nope")
    with pytest.raises(ClientError) as e:
        bogus.list_buckets()
    assert e.value.response["Error"]["Code"] == "InvalidAccessKeyId"
