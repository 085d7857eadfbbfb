"""A boto3 S3 client answered by canned XML, and keys that stress escaping.

A ``before-send`` hook answers each call with ``FakeS3.body``, so the whole
botocore pipeline (its request serializer, its automatic encoding-type=url
and the decoding that goes with it, its response parser) runs on what
minis3's XML documents produce. Shared by the XML documents' test modules.
"""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import boto3
from botocore.awsrequest import AWSResponse
from botocore.config import Config

TRICKY_KEYS = [
    "plain.txt",
    "a b.txt",
    "a+b.txt",
    "a b+c",
    "100%.csv",
    "%2B literally",
    "한글/x.txt",
    "emoji 😀/🚀",
    "tilde~star*.txt",
    "amp&lt<gt>quote\"apos'",
    "dir/sub dir/file?x=1#frag",
    "  leading and trailing  ",
    "semi;colon,comma=eq@at$dollar!bang",
]


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_kw):
        yield self._body


class FakeS3:
    """A boto3 S3 client whose every call is answered with ``self.body``."""

    def __init__(self) -> None:
        self.client = boto3.client(
            "s3", endpoint_url="http://x", region_name="us-east-1",
            aws_access_key_id="a", aws_secret_access_key="b",
            config=Config(retries={"total_max_attempts": 1}, s3={"addressing_style": "path"}))
        self.status = 200
        self.body = b""
        self.requests: list = []
        self.client.meta.events.register("before-send.s3.*", self._send)

    def _send(self, request, **_kw):
        self.requests.append(request)
        return AWSResponse(request.url, self.status, {"content-type": "application/xml"},
                           _Raw(self.body))

    def answer(self, body: bytes, status: int = 200) -> None:
        self.body, self.status = body, status

    @property
    def last_query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.requests[-1].url).query, keep_blank_values=True)

    @property
    def last_body(self) -> bytes:
        body = self.requests[-1].body
        if hasattr(body, "read"):
            pos = body.tell()
            body.seek(0)
            data = body.read()
            body.seek(pos)
            return data
        return body
