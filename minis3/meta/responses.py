"""What a metadata process's handlers answer: JSON bodies and refusals.

A record's inline payload is kept in the blob log (``meta/blobs.py``); an
answer carries its bytes (:func:`dumps_payloads`) or only its marker
(:func:`dumps_markers`). A refusal is a JSON ``{"code", "message"}`` body;
two of them are exceptions a handler raises: 421 :class:`WrongPartition` and
503 :class:`CatchingUp`.
"""
from __future__ import annotations

import json

from aiohttp import web

from ..rpc import fastjson
from . import blobs
from .metrics import SLOWDOWNS
from .partition import Partition
from .pmap import PartitionMap

#: The most versions one ``GET /v/scan`` answer carries (a catch-up pulls pages of this many).
SCAN_LIMIT = 5000


def dumps_payloads(doc) -> str:
    return fastjson.dumps(doc, blobs.as_payload)


def dumps_markers(doc) -> str:
    return fastjson.dumps(doc, blobs.as_marker)


def json_response(doc, *, status: int = 200, dumps=dumps_payloads, **kw) -> web.Response:
    """A JSON answer, encoded with orjson (rpc/fastjson); inline payloads kept
    in the blob log are read back into it (meta/blobs.py)."""
    return web.json_response(doc, status=status, dumps=dumps, **kw)


def refuse(status: int, code: str, **extra) -> web.Response:
    return json_response({"code": code, "message": code, **extra}, status=status)


def slow_down(part: Partition, kind: str) -> web.Response:
    """503 SlowDown: this partition replica is over its request budget or its
    WAL queue is full. Refusing at once keeps queues (and latency) bounded;
    the client's retries, with back-off, then succeed."""
    SLOWDOWNS.labels(part.id, kind).inc()
    part.refused += 1
    return json_response({"code": "SlowDown", "message": f"partition {part.id} is over its {kind} budget"},
                         status=503)


class CatchingUp(web.HTTPServiceUnavailable):
    def __init__(self):
        super().__init__(text='{"code": "CatchingUp", "message": "replica is catching up"}',
                         content_type="application/json")


class WrongPartition(web.HTTPMisdirectedRequest):
    """421: this process does not hold the key's partition (its replica moved,
    or was never here). The body carries this process's partition map, so the
    caller can learn where the range went and ask there."""
    def __init__(self, pmap: PartitionMap):
        super().__init__(text=json.dumps({"code": "WrongPartition", "message": "this process does not hold "
                                          "that key range", "map": pmap.doc()}),
                         content_type="application/json")
