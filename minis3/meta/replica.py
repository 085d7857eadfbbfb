"""One metadata process as the frontend sees it: a :class:`Replica` to call over HMAC-signed HTTP.

A call answers its JSON body, or raises :class:`ReplicaError` (a 4xx/5xx, or
no answer: the replica is then *suspect* for ``SUSPECT_FOR`` seconds and
:func:`ask_order` puts it last). Calls of the hot path made in the same turn
of the event loop go out together as one batch (``meta/batch.py``), as one
message on a channel to the replica (``rpc/channel.py``) when it has one. Writes
still on their way to slower replicas are kept by :class:`Background`, which
a short-lived client drains before it closes its session.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from urllib.parse import urlencode

import aiohttp

from ..rpc import channel, fastjson
from ..rpc import tracing
from ..rpc.auth import BODY_HEADER
from . import batch

log = logging.getLogger("minis3.meta.client")

SUSPECT_FOR = 2.0        # seconds a replica that failed to answer is asked last


class ReplicaError(Exception):
    def __init__(self, message: str, code: str | None = None, status: int = 0, body: dict | None = None):
        super().__init__(message)
        self.code, self.status, self.body = code, status, body or {}


_JSON_HEADERS = {"Content-Type": "application/json"}


class Replica:
    """One metadata process, over HMAC-signed HTTP."""

    def __init__(self, session: aiohttp.ClientSession, url: str, name: str = "", az: str = ""):
        self.session, self.url, self.name, self.az = session, url, name or url, az
        self.suspect_until = 0.0          # after a failure to answer, asked last for a while
        self._queue: list = []            # calls waiting for the end of this loop turn (meta/batch.py)
        self.channel = channel.ChannelClient(session, url)     # where those calls go (rpc/channel.py)

    async def call(self, method: str, path: str, *, params: dict | None = None, json: dict | bytes | None = None,
                   body_sha256: str | None = None):
        """One call's answer (ReplicaError for a 4xx/5xx or no answer). ``json``:
        a document, or one already encoded (bytes: a write sent to three
        replicas is encoded once, not three times). Calls of the hot path made
        outside a traced request wait for the end of this turn of the event
        loop and go out together (meta/batch.py). ``body_sha256``: the digest
        of ``json`` (bytes), when the caller has it already."""
        if batch.ENABLED and (method, path) in batch.BATCHABLE and tracing.CURRENT.get() is None:
            if isinstance(json, bytes) and len(json) > batch.MAX_BODY:
                status, body = await self._alone(method, path, params, json, body_sha256)
            else:
                status, body = await self._queued(method, path, params, json)
        else:
            status, body = await self._request(method, path, params, json, body_sha256)
        if status >= 400:
            raise ReplicaError(f"{self.name}: {status} {body.get('code')}", body.get("code"), status, body)
        self.suspect_until = 0.0
        return body

    async def _request(self, method: str, path: str, params: dict | None, json: dict | bytes | None,
                       body_sha256: str | None = None) -> tuple[int, dict]:
        url = self.url + path + ("?" + urlencode(params) if params else "")
        kw = {}
        if json is not None:
            # Every body goes out with its SHA-256, which the request's
            # signature covers (rpc/auth.py) and the replica checks.
            raw = json if isinstance(json, bytes) else fastjson.dumpb(json)
            sha = body_sha256 or hashlib.sha256(raw).hexdigest()
            kw = {"data": raw, "headers": {**_JSON_HEADERS, BODY_HEADER: sha}}
        try:
            async with self.session.request(method, url, **kw) as r:
                return r.status, await r.json(content_type=None, loads=fastjson.loads)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            self.suspect_until = time.monotonic() + SUSPECT_FOR
            raise ReplicaError(f"{self.name}: {exc.__class__.__name__}") from exc

    async def _alone(self, method: str, path: str, params: dict | None, json: bytes,
                     body_sha256: str | None) -> tuple[int, dict]:
        """A call too big to share a batch (a record with an inline payload):
        a message of its own on the channel, else a request of its own."""
        answers = await self._on_channel([(method, path, params, json)])
        if answers is not None:
            return answers[0]
        return await self._request(method, path, params, json, body_sha256)

    async def _on_channel(self, calls: list) -> list[tuple[int, dict]] | None:
        """Each call's (status, body), sent as one message on the channel
        (rpc/channel.py); None when there is no channel to send it on."""
        if not self.channel.usable:
            return None
        try:
            answer = await self.channel.call(batch.encode_calls(calls))
            return [(st, body) for st, body in fastjson.loads(answer)["results"]]
        except channel.Unavailable:
            return None
        except (ConnectionError, ValueError, KeyError) as exc:
            self.suspect_until = time.monotonic() + SUSPECT_FOR
            raise ReplicaError(f"{self.name}: {exc}") from exc

    def _queued(self, method: str, path: str, params: dict | None, json) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        if not self._queue:
            loop.call_soon(self._flush)
        self._queue.append((method, path, params, json, fut))
        return fut

    def _flush(self) -> None:
        items, self._queue = self._queue, []
        Background.keep(asyncio.ensure_future(self._send(items)))

    async def _send(self, items: list) -> None:
        """The calls of one loop turn as one message on the channel; without a
        channel, a lone call as itself and several as one batch request. Each
        caller's future gets (status, body), or the ReplicaError of a batch
        that got no answer."""
        calls = [i[:4] for i in items]
        try:
            answers = await self._on_channel(calls)
            if answers is None:
                answers = await self._as_requests(calls)
        except BaseException as exc:              # no caller may wait forever
            err = exc if isinstance(exc, ReplicaError) else ReplicaError(f"{self.name}: batch failed: {exc!r}")
            for *_, fut in items:
                if not fut.done():
                    fut.set_exception(err)
            if not isinstance(exc, Exception):
                raise
            return
        for (*_, fut), answer in zip(items, answers):
            if not fut.done():
                fut.set_result(answer)

    async def _as_requests(self, calls: list) -> list[tuple[int, dict]]:
        if len(calls) == 1:
            return [await self._request(*calls[0])]
        raw = batch.encode_calls(calls)
        status, doc = await self._request("POST", batch.PATH, None, raw, body_sha256=hashlib.sha256(raw).hexdigest())
        if status != 200:
            raise ReplicaError(f"{self.name}: batch answered {status} {doc.get('code')}", doc.get("code"),
                               status, doc)
        return [(st, body) for st, body in doc["results"]]


class Background:
    """Writes still on their way to slower replicas (kept referenced)."""
    tasks: set[asyncio.Future] = set()

    @classmethod
    def keep(cls, fut: asyncio.Future) -> None:
        cls.tasks.add(fut)
        fut.add_done_callback(cls._done)

    @classmethod
    async def drain(cls, timeout: float = 60.0) -> None:
        """Wait (at most ``timeout``) for the writes still on their way: a
        short-lived client (``minis3 bulk-load``) calls it before closing its
        session, which would otherwise cut them off, leaving the slowest
        replica without them until the scrubber's anti-entropy."""
        if cls.tasks:
            await asyncio.wait(list(cls.tasks), timeout=timeout)

    @classmethod
    def _done(cls, fut: asyncio.Future) -> None:
        cls.tasks.discard(fut)
        if not fut.cancelled() and fut.exception() is not None:
            log.debug("background replica call failed: %s", fut.exception())


async def drain_background(timeout: float = 60.0) -> None:
    """Wait for this process's writes still on their way to slower replicas."""
    await Background.drain(timeout)


def ask_order(replicas: list[Replica]) -> list[Replica]:
    """The order :func:`quorum` asks replicas in: as given, replicas that
    recently failed to answer last."""
    now = time.monotonic()
    return sorted(replicas, key=lambda r: r.suspect_until > now)

