"""boto3 helpers shared by test modules: a client that sends query parameters
boto3 would not, S3's way to empty a versioned bucket, and reading objects back."""
from __future__ import annotations

import hashlib
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from .conftest import make_client


def raw_query_client(cluster, op, **query):
    """A client whose ``op`` requests carry ``query`` as raw query parameters
    (``None`` removes one): the URL is rewritten after validation and
    serialization, before signing, so the signature covers the change."""
    c = make_client(cluster.endpoint)

    def patch(params, **_):
        parts = urlsplit(params["url"])
        pairs = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in query]
        pairs += [(k, v) for k, v in query.items() if v is not None]
        params["url"] = urlunsplit(parts._replace(query=urlencode(pairs, quote_via=quote, safe="-_.~")))
    c.meta.events.register(f"before-call.s3.{op}", patch)
    return c


def empty_every_version(s3, name: str) -> None:
    """Remove every version and delete marker (S3's way to empty a versioned bucket)."""
    while True:
        page = s3.list_object_versions(Bucket=name)
        objs = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        if not objs:
            return
        s3.delete_objects(Bucket=name, Delete={"Objects": objs, "Quiet": True})


def remove_bucket(s3, name: str) -> None:
    """A test bucket gone, as its owner: its policy first (no test's deny can keep it), then
    every version of every key, then the bucket."""
    s3.delete_bucket_policy(Bucket=name)
    empty_every_version(s3, name)
    s3.delete_bucket(Bucket=name)


def assert_read_back(s3, bucket: str, objs: dict[str, bytes]) -> None:
    """Every object of ``objs`` (key -> body) reads back whole and unchanged."""
    for key, body in objs.items():
        got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest(), key
