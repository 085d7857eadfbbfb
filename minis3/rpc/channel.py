"""An internal channel: many calls over one authenticated WebSocket (the I/O shell around core/channel).

An internal call over HTTP costs each side far more than its bytes: measured
in minis3 (``minis3 bench``, 4 KiB PUTs ×32 with batching off), a call to a
metadata replica cost ~0.55 ms of CPU over both processes, of which a bare
aiohttp request and response are ~0.13 ms and the rest is minis3's around it
(the signature and its check, the replay guard, tracing hooks, middlewares).
A WebSocket message costs ~0.025 ms. So the frontend opens one channel to each
replica, with an ordinary signed request (``GET`` :data:`PATH`, upgraded), and
sends its hot-path calls over it as messages (``core/channel``: each with its
own MAC, keyed from the cluster secret and both sides' salts).

* :class:`ChannelClient` (the opener): :meth:`~ChannelClient.call` sends one
  payload and waits for the answer with the same id; answers come back in any
  order. It opens the channel on first use and again after it closed; if it
  cannot be opened (an older process, a refusal), the caller is told
  (:class:`Unavailable`) and uses plain requests for ``RETRY_AFTER_S``. A
  channel that closes fails every call still waiting on it, as a dropped
  connection fails its request.
  Its frames go unmasked (:func:`send_unmasked`).
* :func:`accept` (the acceptor): the handler of ``GET`` :data:`PATH`; it
  serves each message in a task of its own (so a slow call does not hold up
  the next; at most ``MAX_IN_FLIGHT`` at once), with the service's
  ``serve(payload) -> answer``. A message whose
  MAC does not match closes the channel and is counted as a refused request
  (``signature``).

Calls made inside a traced request do not use a channel (its callers send
them as requests, which record their spans), so traces look as before. Each
message waits out the inter-AZ delay (``rpc/delay``), as a request would.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
import weakref
from typing import Awaitable, Callable

import aiohttp
from aiohttp import web

from ..core.channel import (SALT_BYTES, SALT_HEADER, TO_ACCEPTOR, TO_OPENER, ChannelError, Receiver, Sender,
                            channel_key, parse_salt)

log = logging.getLogger("minis3.rpc.channel")

PATH = "/v/channel"
#: MINIS3_RPC_CHANNEL=0: every call as a request of its own (to measure what channels gain).
ENABLED = os.environ.get("MINIS3_RPC_CHANNEL", "1") != "0"
#: After a channel could not be opened, plain requests for this long before trying again.
RETRY_AFTER_S = 5.0
#: A channel not open this soon is given up (a frozen peer): plain requests meanwhile.
OPEN_TIMEOUT_S = 5.0
#: The opener pings the acceptor this often and closes the channel when no pong
#: comes within half of it: the calls waiting on a frozen or cut-off peer fail
#: then, instead of after the read timeout, and the next ones try a new channel.
HEARTBEAT_S = 5.0
#: Messages one channel's acceptor serves at once; past it, it reads no more until one is answered.
MAX_IN_FLIGHT = 256
#: The largest message either side accepts (a batch of calls, or their answers).
MAX_MESSAGE = 64 << 20


class Unavailable(Exception):
    """No channel to this peer now: send the call as a request."""


#: What the channel needs of a client session (rpc/http.client_session): the
#: cluster secret, the inter-AZ delay, and the per-call read timeout.
_SESSIONS: "weakref.WeakKeyDictionary[aiohttp.ClientSession, tuple]" = weakref.WeakKeyDictionary()
#: The open channels' reader tasks, kept referenced while they run.
_READERS: set[asyncio.Task] = set()


def register_session(session: aiohttp.ClientSession, secret: str, delay, timeout_s: float) -> None:
    _SESSIONS[session] = (secret, delay, timeout_s)


def send_unmasked(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Have the opener send its frames unmasked.

    RFC 6455 has a client XOR every frame it sends with a random mask, so that
    a script in a browser cannot make a proxy on the way cache what it sends. A
    channel has neither: both ends are minis3 processes, and each message
    carries its own MAC. The mask costs the opener a copy, an XOR and a join of
    every byte it sends (timed alone here: ~15 µs for the 88 KB message that
    carries a 64 KiB object's record, three a PUT, ~3% of the frontend's CPU
    on such PUTs; ~1 µs for a small batch of calls), and the acceptor an XOR
    again. (py-spy charges the line that masks with ~8-11% of the frontend's
    samples, but that line also sends the frame: the samples are mostly the
    socket write, which unmasked frames cost as well.) aiohttp's reader takes
    unmasked frames as they come. Its writer keeps the switch in a private
    attribute (aiohttp is pinned to a minor version for that reason, as for
    rpc/listener.py); where it is not found, frames stay masked: slower, not
    wrong."""
    writer = getattr(ws, "_writer", None)
    if isinstance(getattr(writer, "use_mask", None), bool):
        writer.use_mask = False


class _Link:
    """One open channel: its socket, what seals its messages, the calls waiting for answers."""

    __slots__ = ("ws", "sender", "waiting")

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, sender: Sender):
        self.ws, self.sender = ws, sender
        self.waiting: dict[int, asyncio.Future] = {}


class ChannelClient:
    """The opener's end of one channel to one peer (``base_url``)."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str):
        self.session, self.url = session, base_url + PATH
        u = aiohttp.client.URL(base_url)
        self.host, self.port = u.host, u.port
        self._link: _Link | None = None
        self._next_id = 0
        self._opening: asyncio.Task | None = None
        self._closed_until = 0.0
        self.opened = 0                  # channels opened (status, tests)
        self.enabled = ENABLED

    @property
    def usable(self) -> bool:
        return self.enabled and self.session in _SESSIONS and time.monotonic() >= self._closed_until

    async def call(self, payload: bytes) -> bytes:
        """The peer's answer to ``payload``. Unavailable: no channel could be
        opened (send it as a request); ConnectionError: the channel closed or
        the answer took longer than the session's read timeout."""
        secret, delay, timeout_s = _SESSIONS[self.session]
        if delay is not None:
            wait = delay.seconds(self.host, self.port)
            if wait:
                await asyncio.sleep(wait)
        link = self._link
        if link is None or link.ws.closed:
            link = await self._open(secret, timeout_s)
        self._next_id += 1
        msg_id = self._next_id
        fut = asyncio.get_running_loop().create_future()
        link.waiting[msg_id] = fut
        try:
            # Sealed and written with no await between (an uncompressed frame
            # goes to the transport at once), so messages leave in the order
            # of their sequence numbers, whatever other calls run meanwhile.
            await link.ws.send_bytes(link.sender.seal(msg_id, payload))
            return await asyncio.wait_for(fut, timeout_s)
        except (aiohttp.ClientError, OSError, RuntimeError) as exc:   # RuntimeError: sent on a closing socket
            raise ConnectionError(f"channel to {self.url}: {exc!r}") from exc
        except TimeoutError:
            raise ConnectionError(f"channel to {self.url}: no answer in {timeout_s:g} s") from None
        finally:
            link.waiting.pop(msg_id, None)

    async def _open(self, secret: str, timeout_s: float) -> _Link:
        """The channel, opened by a task of its own that every caller waiting
        for it shares (a caller given up on, as a hedged read is, does not
        stop it)."""
        if self._opening is None:
            if time.monotonic() < self._closed_until:
                raise Unavailable(self.url)
            self._opening = asyncio.ensure_future(self._open_or_give_up(secret, timeout_s))
            self._opening.add_done_callback(self._opened)
        return await asyncio.shield(self._opening)

    async def _open_or_give_up(self, secret: str, timeout_s: float) -> _Link:
        try:
            return await asyncio.wait_for(self._connect(secret, timeout_s), OPEN_TIMEOUT_S)
        except Exception as exc:
            self._closed_until = time.monotonic() + RETRY_AFTER_S
            raise Unavailable(f"{self.url}: {exc!r}") from exc

    def _opened(self, fut: asyncio.Future) -> None:
        self._opening = None
        if not fut.cancelled():
            fut.exception()                          # retrieved: each waiting caller raised it

    async def _connect(self, secret: str, timeout_s: float) -> _Link:
        salt = os.urandom(SALT_BYTES)
        ws = await self.session.ws_connect(self.url, headers={SALT_HEADER: salt.hex()}, max_msg_size=MAX_MESSAGE,
                                           autoping=True, heartbeat=HEARTBEAT_S, compress=0)
        send_unmasked(ws)
        try:                                          # the acceptor's salt: its first message
            first = await ws.receive(timeout=timeout_s)
            if first.type != aiohttp.WSMsgType.BINARY:
                raise ChannelError(f"expected the acceptor's salt, got {first.type.name}")
            key = channel_key(secret, salt, bytes(first.data))
        except BaseException:
            await ws.close()
            raise
        link = self._link = _Link(ws, Sender(key, TO_ACCEPTOR))
        self.opened += 1
        reader = asyncio.ensure_future(self._read(link, Receiver(key, TO_OPENER)))
        _READERS.add(reader)
        reader.add_done_callback(_READERS.discard)
        return link

    async def _read(self, link: _Link, receiver: Receiver) -> None:
        why = "closed"
        try:
            async for msg in link.ws:
                if msg.type != aiohttp.WSMsgType.BINARY:
                    why = f"unexpected {msg.type.name}"
                    break
                msg_id, answer = receiver.open(msg.data)
                fut = link.waiting.get(msg_id)
                if fut is not None and not fut.done():
                    fut.set_result(bytes(answer))
        except ChannelError as exc:
            why = str(exc)
            log.warning("channel to %s: %s; closing it", self.url, exc)
        except Exception as exc:                     # never a task dying unseen
            why = repr(exc)
        finally:
            if self._link is link:
                self._link = None
            err = ConnectionError(f"channel to {self.url}: {why}")
            for fut in list(link.waiting.values()):  # this channel's calls only: a new one may be open
                if not fut.done():
                    fut.set_exception(err)
            await link.ws.close()


async def accept(request: web.Request, secret: str, serve: Callable[[memoryview], Awaitable[bytes]],
                 on_refused: Callable[[str], None] | None = None) -> web.WebSocketResponse:
    """Serve a channel on this (already authenticated) request: each message's
    answer is ``serve(payload)``, sent back with the message's id."""
    try:
        opener_salt = parse_salt(request.headers.get(SALT_HEADER))
    except ChannelError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    salt = os.urandom(SALT_BYTES)
    key = channel_key(secret, opener_salt, salt)
    ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE, compress=False)
    await ws.prepare(request)
    await ws.send_bytes(salt)
    receiver, sender = Receiver(key, TO_ACCEPTOR), Sender(key, TO_OPENER)
    tasks: set[asyncio.Task] = set()
    room = asyncio.Semaphore(MAX_IN_FLIGHT)

    async def answer(msg_id: int, payload: memoryview) -> None:
        try:
            body = await serve(payload)
            if not ws.closed:
                await ws.send_bytes(sender.seal(msg_id, body))
        except (ConnectionError, RuntimeError):      # the opener went away: it fails the call itself
            pass
        finally:
            room.release()

    try:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.BINARY:
                break
            try:
                msg_id, payload = receiver.open(msg.data)
            except ChannelError as exc:
                log.warning("channel from %s: %s; closing it", request.remote, exc)
                if on_refused is not None:
                    on_refused("signature")
                break
            await room.acquire()                     # at most MAX_IN_FLIGHT: then TCP holds the opener back
            t = asyncio.ensure_future(answer(msg_id, payload))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
    finally:
        await ws.close()
    return ws
