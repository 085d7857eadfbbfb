"""Batching metadata calls (meta/batch.py): what travels and how each call is answered, with no processes."""
from __future__ import annotations

import hashlib
import json

from aiohttp import web

from minis3.core import errors as E
from minis3.meta import batch
from minis3.rpc import auth


def test_a_batch_body_embeds_encoded_bodies_as_they_are_and_its_digest_is_signed():
    raw = batch.encode_calls([("GET", "/v/object", {"bucket": "b", "key": "k", "n": 1}, None),
                              ("POST", "/v/object", None, b'{"record":{"ts":1}}')])
    sha = hashlib.sha256(raw).hexdigest()
    assert json.loads(raw) == {"calls": [["GET", "/v/object", {"bucket": "b", "key": "k", "n": "1"}, None],
                                         ["POST", "/v/object", {}, {"record": {"ts": 1}}]]}
    v = auth.Verifier("s3cret", clock=lambda: 1000)
    signed = auth.sign("s3cret", "POST", "/v/batch", "n" * 24, now=1000, body_sha256=sha)
    assert v.refusal("POST", "/v/batch", signed, "n" * 24, "0" * 64) == "signature"   # another body
    assert v.refusal("POST", "/v/batch", signed, "n" * 24, None) == "signature"       # digest dropped
    assert v.refusal("POST", "/v/batch", signed, "n" * 24, sha) is None


async def test_each_call_is_answered_as_an_internal_request_would_be():
    async def ok(req):
        return web.json_response({"got": dict(req.query), "body": await req.json()})

    async def moved(req):
        raise web.HTTPMisdirectedRequest(text=json.dumps({"code": "WrongPartition", "map": {"version": 3}}),
                                         content_type="application/json")

    async def plain(req):
        raise web.HTTPBadRequest(text="bad object id")

    async def s3(req):
        raise E.NoSuchBucket()

    async def broken(req):
        raise KeyError("x")
    handlers = {("GET", "/ok"): ok, ("GET", "/moved"): moved, ("GET", "/plain"): plain, ("GET", "/s3"): s3,
                ("GET", "/broken"): broken}
    got = [await batch.run(handlers, [m, p, {"a": "1"}, {"b": 2}]) for m, p in
           [("GET", "/ok"), ("GET", "/moved"), ("GET", "/plain"), ("GET", "/s3"), ("GET", "/broken"),
            ("POST", "/nope")]]
    doc = json.loads(batch.encode_results(got))["results"]
    assert doc[0] == [200, {"got": {"a": "1"}, "body": {"b": 2}}]
    assert doc[1] == [421, {"code": "WrongPartition", "map": {"version": 3}}]
    assert doc[2][0] == 400 and doc[2][1]["message"] == "bad object id"
    assert doc[3] == [404, {"code": "NoSuchBucket", "message": "The specified bucket does not exist"}]
    assert doc[4][0] == 500 and doc[4][1]["code"] == "InternalError"
    assert doc[5][0] == 400 and doc[5][1]["code"] == "NotBatchable"
