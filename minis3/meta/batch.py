"""Many metadata calls to one replica in one request: a batch per event-loop tick.

What a small PUT or GET costs is not its bytes but its internal requests
(measured with the benchmark suite): each call to a metadata replica cost the
frontend ~0.3 ms and the replica ~0.4–0.6 ms of CPU in HTTP machinery
(aiohttp's client and server, headers, HMAC, a response object), whatever it
carried. Under load, many S3 requests ask the same replica something in the
same moment, so the frontend's :class:`~minis3.meta.replica.Replica` queues
the calls made during one turn of the event loop and, if there are several,
sends them as one ``POST /v/batch``; the replica runs them concurrently,
exactly as if they had come one by one (so writes still share its WAL's
group commits), and answers every call's status and body in one response.
A lone call goes out as itself.

What a learner sees does not change: a call made inside a traced request
(``rpc/tracing``) is never batched, so its trace keeps its own client and
server spans. A batch's body says what to do, so its SHA-256 is covered by the
cluster HMAC (``rpc/auth.BODY_HEADER``) and checked by the replica.

``MINIS3_RPC_BATCH=0`` turns batching off (to measure what it gains).
"""
from __future__ import annotations

import logging
import os

from aiohttp import web

from ..core.errors import S3Error
from ..rpc import fastjson

log = logging.getLogger("minis3.meta.batch")

PATH = "/v/batch"
#: The calls that may travel in a batch: the per-request hot path.
BATCHABLE = frozenset({("GET", "/v/object"), ("POST", "/v/object"), ("GET", "/v/bucket"),
                       ("POST", "/v/prepare")})
#: A call whose body is bigger (a record carrying an inline payload) goes alone:
#: its bytes, not the request, are its cost, and a batch answers only when its
#: last call is done (measured: 64 KiB PUTs ×32 went 463 → 406/s batched).
MAX_BODY = 16 * 1024
#: orjson embeds already-encoded bodies (``Fragment``) without a second encoding.
ENABLED = os.environ.get("MINIS3_RPC_BATCH", "1") != "0" and hasattr(fastjson.orjson, "Fragment")


def encode_calls(calls) -> bytes:
    """``calls``: (method, path, params, body: dict | bytes | None). The batch
    body (a request's, whose SHA-256 its signature covers, or a channel message)."""
    Fragment = fastjson.orjson.Fragment
    doc = {"calls": [[m, p, {k: str(v) for k, v in (q or {}).items()},
                      Fragment(b) if isinstance(b, bytes) else b] for m, p, q, b in calls]}
    return fastjson.orjson.dumps(doc)


class Call:
    """One call of a batch, as much of an aiohttp request as the replica's handlers read."""

    __slots__ = ("method", "path", "query", "_body")

    def __init__(self, method: str, path: str, query: dict, body):
        self.method, self.path, self.query, self._body = method, path, query, body

    async def json(self, loads=None):
        return self._body


async def run(handlers: dict, call: list) -> tuple[int, bytes]:
    """Run one call of a batch: (status, JSON body), with the errors an
    internal request would have answered (rpc/http.auth_middleware)."""
    method, path, query, body = call
    handler = handlers.get((method, path))
    if handler is None:
        return 400, fastjson.dumpb({"code": "NotBatchable", "message": f"{method} {path}"})
    try:
        resp = await handler(Call(method, path, query, body))
        return resp.status, resp.body
    except web.HTTPException as exc:               # 421 WrongPartition, 503 CatchingUp (JSON texts)
        text = exc.text or ""
        try:
            fastjson.loads(text)
            return exc.status, text.encode()
        except ValueError:
            return exc.status, fastjson.dumpb({"code": exc.reason, "message": text})
    except S3Error as exc:
        return exc.status, fastjson.dumpb({"code": exc.code, "message": exc.message})
    except Exception as exc:                       # never a traceback on the wire
        log.exception("internal error in batched %s %s", method, path)
        return 500, fastjson.dumpb({"code": "InternalError", "message": repr(exc)})


def encode_results(results: list[tuple[int, bytes]]) -> bytes:
    return b'{"results":[' + b",".join(b"[%d,%b]" % (status, body) for status, body in results) + b"]}"
