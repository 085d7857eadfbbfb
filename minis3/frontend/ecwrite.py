"""One erasure-coded PUT, written as its steps.

    place            → which node gets each of the k+m fragments (handoff for down nodes)
    segments         → the body cut into segments of ``erasure.segment_size``
    hash             → every byte once, in order, for the ETag and the checksums
    seal             → with a data key, each segment encrypted (AES-256-GCM, core/seal.py)
    encode           → each segment into k+m framed fragment blocks, and its xxh3
    store fragments  → one streaming fragment PUT per node; each node fsyncs before it answers
    hand off         → (one segment) a fragment its node refused (a full or failing disk) or
                       never answered goes to a handoff node, from the bytes still in memory
    finish           → all k+m durable and the body verified: a ``Stored`` with its commit deadline
    abort            → any failure: cancel every step, remove what landed, queue it for GC

The caller then commits the metadata record (``object.commit_stored``) before
``Stored.commit_by``, or abandons the fragments (``Stored`` keeps how).

An object of one segment (all of it read already) goes straight through: hash,
encode, and one plain body per node. A longer one runs three stages that
overlap: the request's coroutine reads segment n+2 from the client while the
hash stage hashes segment n+1 (MD5, SHA-256 and the CRCs release the GIL) and
the encode stage codes segment n and hands its blocks to the fragment PUTs. Every
queue between them is small, so memory is a few segments whatever the size,
and the slowest node sets the pace (back pressure).

Which step sets the pace is on the request's trace (``minis3 trace``): the
``pipeline`` span's attributes (:class:`StageTimes`) say how long the PUT
waited for the client's bytes, how long each stage worked, and how long each
step waited on the one after it.
"""
from __future__ import annotations

import asyncio
import base64
import time
import uuid
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, AsyncIterator, Awaitable, Callable

import prometheus_client

from ..core import errors as E
from ..core.seal import LayoutCipher
from ..ec import storage_class as SC
from ..ec.rebuild import segment_checksum
from ..ec.placement import NotEnoughNodes, handoff, place
from ..rpc.tracing import TRACER
from ..storage import blocks
from ..storage.client import FragmentError

if TYPE_CHECKING:
    from .datapath import DataPath

QUEUE_DEPTH = 4       # segments in flight per fragment PUT
HANDOFF_ROUNDS = 2    # times a one-segment PUT sends failed fragments to other nodes
PIPELINE_DEPTH = 2    # segments waiting for each PUT stage (hashing, encoding)
OFFLOAD_MIN = 256 * 1024   # smaller segments are hashed and coded on the loop (a thread hop costs more)
#: Fragments stored away from their home node (it was down): the scrubber moves
#: them home later. The console's live charts plot how many wait (console/series.py).
HANDED_OFF = prometheus_client.Counter("minis3_fragments_handed_off", "Fragments a PUT stored on a handoff "
                                       "node because their home node was down")


@dataclass
class Stored:
    """What a PUT's bytes became: an inline payload or an erasure-coded layout."""
    size: int
    inline: bytes | None = None
    ec: dict | None = None
    enc: dict | None = None       # a sealed inline payload's salt and tag (an ec layout keeps its own)
    # The time.monotonic() by which the metadata commit must start: the commit
    # window after the first fragment became durable (the GC rule, ScrubSpec).
    # None for inline bytes, which have no fragments to collect.
    commit_by: float | None = None

    def record_fields(self) -> dict:
        if self.inline is not None:
            out = {"size": self.size, "inline": base64.b64encode(self.inline).decode()}
            if self.enc is not None:
                out["enc"] = self.enc
            return out
        return {"size": self.size, "ec": self.ec}


@dataclass
class StageTimes:
    """Where a pipelined PUT's time went, in ms, shown on its trace's
    ``pipeline`` span. Work and waits overlap (that is the point of the
    pipeline), so they do not add up to the PUT's time; the step that was
    busy the whole time, with the steps before it waiting on it, set the pace."""
    segments: int = 0
    waiting_for_client: float = 0.0   # the reader waited for more of the body (received, decoded)
    hashing: float = 0.0              # the hash stage's work, thread hops included
    encoding: float = 0.0             # the encode stage's work (seal, erasure code, xxh3, framing), hops included
    behind_hashing: float = 0.0       # the reader waited: the hash stage's queue was full
    behind_encoding: float = 0.0      # the reader waited: the encode stage's queue was full
    behind_nodes: float = 0.0         # the encode stage waited: a node's queue was full

    def span_attributes(self) -> dict:
        return {k: (round(v, 1) if isinstance(v, float) else v) for k, v in asdict(self).items()}


class ECWrite:
    """The steps of one erasure-coded PUT (module docstring). ``run`` is the
    whole of it; nothing is visible until the caller commits."""

    def __init__(self, dp: "DataPath", on_segment: Callable[[bytes], None] | None,
                 verify: Callable[[], Awaitable[None]] | None, storage_class: str = SC.STANDARD,
                 data_key: bytes | None = None, size: int | None = None):
        k, m, self.one_zone = SC.scheme(storage_class, dp.codec.k, dp.codec.m)
        self.dp, self.codec = dp, dp.codec_for(k, m)
        self.on_segment, self.verify = on_segment, verify
        self.cipher = LayoutCipher(data_key) if data_key is not None else None
        self.size = 0
        self.expected_size = size                       # the body's length, when known before it is read
        self.segsums = bytearray()
        self.fragment_puts: list[asyncio.Future] = []
        self.bodies: list[bytes] | None = None          # one segment's fragments, kept for handoff
        self.refused: set[str] = set()                  # nodes whose fragment PUT failed
        self.landed: list[float] = []                   # when each fragment became durable
        self.stages: list[tuple[asyncio.Queue, asyncio.Future]] = []
        self.times = StageTimes()
        self.watch: asyncio.Future | None = None
        self.ec = self.place()

    async def run(self, seg: "Pieces", rest: AsyncIterator[bytes], eof: bool) -> Stored:
        try:
            if eof:
                await self.one_segment(seg.take(len(seg)))
            else:
                await self.pipeline(seg, rest)
            return await self.finish()
        except BaseException as exc:
            await self.abort()
            if isinstance(exc, FragmentError):
                raise E.ServiceUnavailable(f"could not store every fragment: {exc}") from exc
            raise

    # -- place ---------------------------------------------------------------------
    def place(self) -> dict:
        """Preferred placement, with fragments of down nodes handed off to live
        ones; the layout (and so the record) keeps where each fragment really is.
        A one-zone class (ONEZONE_IA) places and hands off within its zone only
        (``ec.zone``; ec/storage_class.py)."""
        object_id = uuid.uuid4().hex
        ec = {"id": object_id, "k": self.codec.k, "m": self.codec.m, "backend": self.codec.backend,
              "seg": self.dp.segment_size, "nodes": [None] * self.codec.width}
        for include_slow in (False, True):            # a slow node only if the others cannot hold them all
            up = self.dp._up(include_slow)
            if self.one_zone:
                ec["zone"] = SC.zone_for(object_id, self.dp.azs, up)
                up = {n for n in up if self.dp.node_az[n] == ec["zone"]}
            home = place(object_id, SC.home_azs(ec, self.dp.azs), self.codec.width)
            try:
                ec["nodes"] = handoff(object_id, home, self.dp.node_az, up,
                                      max_per_node=SC.max_per_node(ec, self.dp.azs))
                break
            except NotEnoughNodes as exc:
                if include_slow:
                    raise E.ServiceUnavailable(f"not enough storage nodes up: {exc}")
        self.handed_off = sum(a != b for a, b in zip(home, ec["nodes"]))
        return ec

    # -- hash and encode -----------------------------------------------------------
    async def hash(self, data: bytes) -> None:
        if len(data) < OFFLOAD_MIN:
            self.on_segment(data)                       # a small segment is not worth a thread hop
        else:
            await asyncio.to_thread(self.on_segment, data)

    def encode(self, n: int, data: bytes, framed: bool = True) -> list:
        """Segment n's fragments, each a framed block (``framed``) or a
        (head, data) pair, sent without joining them (storage/client.SealedStream)."""
        # pyeclib's encode holds the GIL for ~0.25 ms per MiB; xxh3 is faster still.
        # Sealed first: the checksums and the fragments are of the ciphertext.
        if self.cipher is not None:
            data = self.cipher.seal(n, data)
        self.segsums.extend(segment_checksum(data))
        fragments = self.codec.encode(data)
        if framed:
            return [blocks.frame(f) for f in fragments]
        return [(blocks.head(f), f) for f in fragments]

    async def encode_segment(self, n: int, data: bytes, framed: bool = True) -> list:
        with TRACER.span(f"encode segment {n}", bytes=len(data)):
            if len(data) < OFFLOAD_MIN:
                return self.encode(n, data, framed)
            return await asyncio.to_thread(self.encode, n, data, framed)

    # -- store fragments -----------------------------------------------------------
    def store_fragments(self, bodies: list, length: int | None = None) -> None:
        """Start one fragment PUT per node (``bodies[i]``: fragment i's bytes, or an
        async iterator of its blocks, ``length`` bytes each if known) and the
        watch on their nodes."""
        self.fragment_puts = [self.start_put(i, n, b, length)
                              for i, (n, b) in enumerate(zip(self.ec["nodes"], bodies))]
        if self.dp.health:
            self.watch = asyncio.ensure_future(self.watch_nodes())

    def fragment_length(self) -> int | None:
        """Every fragment body's framed blocks, in bytes, when the object's
        size is known before its bytes arrive (a Content-Length, a copy's
        source): all fragments of a segment are the same size."""
        if self.expected_size is None:
            return None
        return blocks.blocks_length(*self.codec.fragment_sizes(self.expected_size, self.dp.segment_size))

    def start_put(self, i: int, node: str, body, length: int | None = None) -> asyncio.Future:
        """Fragment i's PUT to ``node``, started; when it ends, the time is noted
        (the commit deadline runs from the first fragment durable)."""
        put = asyncio.ensure_future(self.store_fragment(i, node, body, length))
        put.add_done_callback(lambda _t: self.landed.append(time.monotonic()))
        return put

    async def store_fragment(self, i: int, node: str, body, length: int | None = None) -> dict:
        kind = "data" if i < self.codec.k else "parity"
        with TRACER.span(f"write fragment {i} ({kind})", node=node, az=self.dp.node_az.get(node)) as span:
            try:
                got = await self.dp.storage.put(node, self.ec["id"], i, body, length)
            except FragmentError as exc:
                self.dp._failed(exc)
                raise
            if span is not None and isinstance(got, dict):
                span.attributes.update({k: got[k] for k in ("bytes", "fsync_ms") if k in got})
            return got

    async def watch_nodes(self) -> None:
        """A node that stops answering mid-PUT (killed, frozen) is found by
        the health prober; abort its fragment PUT rather than wait on it."""
        while True:
            await asyncio.sleep(0.2)
            for n, up in zip(self.ec["nodes"], self.fragment_puts):
                if not up.done() and not self.dp._is_up(n):
                    up.cancel()

    # -- the two ways through ------------------------------------------------------
    async def one_segment(self, data: bytes) -> None:
        """All of a one-segment object is read: hash it, encode it, and send
        each node its one framed block as a plain body with a Content-Length
        (one write each way; no queues or stage tasks). Measured on 64 KiB
        PUTs: docs/performance.md, "What each change gained"."""
        if self.on_segment:
            await self.hash(data)
        self.size = len(data)
        self.bodies = await self.encode_segment(0, data)
        self.store_fragments(self.bodies)

    async def pipeline(self, seg: "Pieces", rest: AsyncIterator[bytes]) -> None:
        """Segments through the hash and encode stages into the fragment PUTs.
        Its trace span ends when every segment is hashed and encoded; the
        fragment PUTs go on to send the last blocks and fsync."""
        queues = [asyncio.Queue(QUEUE_DEPTH) for _ in self.ec["nodes"]]
        length = self.fragment_length()
        self.store_fragments([drain(q) for q in queues], length)
        with TRACER.span("pipeline: read, hash, encode") as span:
            await self._run_stages(seg, rest, queues, framed=length is None)
            if span is not None:
                span.attributes.update(self.times.span_attributes())

    async def _run_stages(self, seg: "Pieces", rest: AsyncIterator[bytes], queues: list[asyncio.Queue],
                          framed: bool) -> None:
        behind = []                                    # which StageTimes field each stage's wait adds to
        if self.on_segment:
            self.stages.append(self._stage(self._hash_stage))
            behind.append("behind_hashing")
        self.stages.append(self._stage(lambda q: self._encode_stage(q, queues, framed)))
        behind.append("behind_encoding")
        times = self.times
        async for data in self.segments(seg, rest):
            self.size += len(data)
            times.segments += 1
            for (q, task), field in zip(self.stages, behind):
                t = time.perf_counter()
                await put_or_fail(q, data, task)
                setattr(times, field, getattr(times, field) + (time.perf_counter() - t) * 1000)
        for q, task in self.stages:
            await put_or_fail(q, None, task)
        for _, task in self.stages:
            await task

    async def segments(self, seg: "Pieces", rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """The body cut into whole segments, then what is left."""
        eof = False
        while True:
            while len(seg) >= self.dp.segment_size:
                yield seg.take(self.dp.segment_size)
            if eof:
                break
            t = time.perf_counter()
            try:
                seg.add(await rest.__anext__())
            except StopAsyncIteration:
                eof = True
            self.times.waiting_for_client += (time.perf_counter() - t) * 1000
        if len(seg):
            yield seg.take(len(seg))

    @staticmethod
    def _stage(work) -> tuple[asyncio.Queue, asyncio.Future]:
        q: asyncio.Queue = asyncio.Queue(PIPELINE_DEPTH)
        return q, asyncio.ensure_future(work(q))

    async def _hash_stage(self, q: asyncio.Queue) -> None:
        while (data := await q.get()) is not None:
            t = time.perf_counter()
            await self.hash(data)
            self.times.hashing += (time.perf_counter() - t) * 1000

    async def _encode_stage(self, q: asyncio.Queue, queues: list[asyncio.Queue], framed: bool) -> None:
        n = 0
        times = self.times
        while (data := await q.get()) is not None:
            t = time.perf_counter()
            frames = await self.encode_segment(n, data, framed)
            t2 = time.perf_counter()
            n += 1
            for fq, frame, up in zip(queues, frames, self.fragment_puts):
                await put_or_fail(fq, frame, up)
            times.encoding += (t2 - t) * 1000
            times.behind_nodes += (time.perf_counter() - t2) * 1000
        for fq, up in zip(queues, self.fragment_puts):
            await put_or_fail(fq, None, up)

    # -- finish or abort -----------------------------------------------------------
    async def finish(self) -> Stored:
        # (The stages have ended: ``pipeline`` awaits them inside its span.)
        results = await asyncio.gather(*self.fragment_puts, return_exceptions=True)
        for _ in range(HANDOFF_ROUNDS if self.bodies is not None else 0):
            if not any(isinstance(r, BaseException) for r in results):
                break
            results = await self.hand_off(results)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            # Acknowledged only with all k+m fragments durable.
            raise E.ServiceUnavailable(f"could not store every fragment: {failed[0]}")
        if self.verify:
            await self.verify()
        if self.watch is not None:
            self.watch.cancel()
        self.ec["segsums"] = base64.b64encode(bytes(self.segsums)).decode()
        if self.cipher is not None:
            self.ec["enc"] = self.cipher.enc()
        HANDED_OFF.inc(self.handed_off)
        return Stored(size=self.size, ec=self.ec, commit_by=min(self.landed) + self.dp.commit_window_s)

    async def hand_off(self, results: list) -> list:
        """Send the fragments whose PUT failed (``results[i]`` an exception) to
        handoff nodes, as ``place`` does for a node known to be down: from the
        bytes in memory, the other fragments staying where they landed. The
        failed nodes are not tried again by this PUT; a node that refused for
        a full disk is marked so (``DataPath._failed``) and new PUTs avoid it.
        Returns every fragment's result again. A failed fragment whose node
        may have landed it after all (a timeout) is an orphan the scrubber's
        GC removes: the record never points at it."""
        failed = [i for i, r in enumerate(results) if isinstance(r, BaseException)]
        self.refused.update(self.ec["nodes"][i] for i in failed)
        landed = {n for i, n in enumerate(self.ec["nodes"]) if i not in failed}
        up = (self.dp._up(include_slow=True) | landed) - self.refused
        if self.one_zone:
            up = {n for n in up if self.dp.node_az[n] == self.ec["zone"]}
        try:
            nodes = handoff(self.ec["id"], self.ec["nodes"], self.dp.node_az, up,
                            max_per_node=SC.max_per_node(self.ec, self.dp.azs))
        except NotEnoughNodes:
            return results
        for i in failed:
            self.ec["nodes"][i] = nodes[i]
            self.fragment_puts[i] = self.start_put(i, nodes[i], self.bodies[i])
            self.handed_off += 1
        return await asyncio.gather(*self.fragment_puts, return_exceptions=True)

    async def abort(self) -> None:
        """Cancel every step and remove the fragments that landed (nothing to
        remove if no fragment PUT started)."""
        tasks = [*self.fragment_puts, *(task for _, task in self.stages)]
        for task in tasks:
            task.cancel()
        if self.watch is not None:
            self.watch.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.fragment_puts:
            await self.dp.discard(self.ec, "failed-write")


class Pieces:
    """Body pieces waiting to become a segment: joined once, when a segment's
    worth has arrived (one copy, where a growing bytearray made three)."""

    __slots__ = ("parts", "size")

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, piece: bytes) -> None:
        if piece:
            self.parts.append(piece)
            self.size += len(piece)

    def take(self, n: int) -> bytes:
        """The first n bytes (n <= len(self))."""
        joined = self.parts[0] if len(self.parts) == 1 else b"".join(self.parts)
        if not isinstance(joined, bytes):
            joined = bytes(joined)
        head, rest = (joined, b"") if n == len(joined) else (joined[:n], joined[n:])
        self.parts = [rest] if rest else []
        self.size = len(rest)
        return head


async def drain(q: asyncio.Queue) -> AsyncIterator[bytes]:
    """A queue's items as an async iterator, up to the None that ends them."""
    while True:
        item = await q.get()
        if item is None:
            return
        yield item


async def put_or_fail(q: asyncio.Queue, item, consumer: asyncio.Future) -> None:
    """Queue an item for a consumer task (a fragment PUT, a stage), unless that
    task has already failed: its error is raised here instead of waiting on a
    queue nobody reads."""
    if consumer.cancelled():
        raise FragmentError("fragment PUT aborted: its node stopped answering")
    if consumer.done():
        exc = consumer.exception()
        if exc is not None:
            raise exc
        if item is None:
            return
    if not q.full():                 # the common case: no task, no wait
        q.put_nowait(item)
        return
    put = asyncio.ensure_future(q.put(item))
    done, _ = await asyncio.wait({put, consumer}, return_when=asyncio.FIRST_COMPLETED)
    if put not in done:
        put.cancel()
        if consumer.cancelled():
            raise FragmentError("fragment PUT aborted: its node stopped answering")
        exc = consumer.exception()
        raise exc or FragmentError("fragment PUT ended early")
