"""Quorums over a key's three replicas, and the decisions of a compare-and-set.

:func:`quorum` runs one call on several replicas and returns the first
``need`` answers (a read quorum R = 2, a write quorum W = 2 of N = 3: every
read quorum overlaps every write quorum). The functions beside it judge what
replicas answered: the newest version (:func:`newest`), and, for a
conditional write's rounds (``meta/promises.py``), whether an earlier attempt
already won (:func:`cas_settled`), which version the condition is judged on
(:func:`cas_judged`) and when the outcome is unknown
(:func:`cas_outcome_unknown`). All but :func:`quorum` are pure.
"""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

from ..core import errors as E
from .partition import version
from .replica import Background, Replica, ReplicaError, ask_order

N_REPLICAS = 3
WRITE_QUORUM = 2
READ_QUORUM = 2
READ_HEDGE = 0.25        # seconds a read waits for its first replicas before asking another


def newest(recs) -> dict | None:
    best = None
    for r in recs:
        if r is not None and version(r) > version(best):
            best = r
    return best


def live(rec: dict | None) -> dict | None:
    return None if rec is None or rec.get("deleted") else rec


# ------------------------------------------------------------------ a compare-and-set's decisions (pure)
def cas_settled(found: list[dict | None], wid: str, w: int) -> dict | None:
    """One earlier attempt of write ``wid`` that a quorum of the prepare
    replies hold (the same version on ``w`` of them): it was acknowledged,
    though its answer was lost."""
    ours = [version(o) for o in found if o is not None and o.get("wid") == wid]
    for v in set(ours):
        if ours.count(v) >= w:
            return next(o for o in found if o is not None and version(o) == v)
    return None


def cas_judged(found: list[dict | None], wid: str, seen: dict | None) -> dict | None:
    """The version a condition is judged on: the newest in the replies that is
    not this write's own earlier attempt. Where one replica kept such an
    attempt, it lies on top of a version no newer than one an earlier
    attempt judged (``seen``), which counts too."""
    return newest([o for o in found if o is None or o.get("wid") != wid] + [seen])


def cas_outcome_unknown(judged: dict | None, sent: tuple | None) -> bool:
    """A write that now fails its condition, after an earlier attempt of it
    was sent (``sent``: that version) and may have landed on one replica:
    if that version is newer than the one judged, it could still surface
    under last-writer-wins, so the honest answer is "unknown" (503, the
    client retries), never 412."""
    return sent is not None and version(judged) < sent



async def quorum(replicas: list[Replica], call: Callable[[Replica], Awaitable], need: int, *,
                 finish_in_background: bool, ask: int | None = None) -> list[tuple[Replica, object]]:
    """Run call(r) on replicas; return the first `need` successes as (replica, result).

    Writes ask every replica (``ask`` = all) and let the slower ones finish in
    the background. Reads ask only ``ask`` = `need` of them, replicas that
    recently failed to answer last; when one fails, or none has answered after
    READ_HEDGE seconds (a frozen replica never answers), the next one is asked
    too. If `need` cannot succeed: the S3 error that a quorum of replicas gave
    (NoSuchBucket, AccessDenied), else 503 ServiceUnavailable."""
    order = ask_order(replicas)
    first = len(order) if ask is None else ask
    tasks: dict[asyncio.Future, Replica] = {}
    waiting = list(order[first:])
    for r in order[:first]:
        tasks[asyncio.ensure_future(call(r))] = r
    pending, ok, failed = set(tasks), [], []

    def ask_next() -> None:
        """Ask the next replica in order too (``pending`` is read when called)."""
        r = waiting.pop(0)
        t = asyncio.ensure_future(call(r))
        tasks[t] = r
        pending.add(t)
    try:
        while len(ok) < need:
            if len(ok) + len(pending) < need and waiting:
                ask_next()
                continue
            if not pending:
                break
            done, pending = await asyncio.wait(pending, timeout=READ_HEDGE if waiting else None,
                                               return_when=asyncio.FIRST_COMPLETED)
            if not done:                           # slow: ask one more replica
                ask_next()
                continue
            for t in done:
                if t.exception() is None:
                    ok.append((tasks[t], t.result()))
                else:
                    failed.append(t.exception())
    finally:
        for t in pending:
            if finish_in_background:
                Background.keep(t)
            else:
                t.cancel()
    if len(ok) < need:
        codes = [e.code for e in failed if isinstance(e, ReplicaError) and 400 <= e.status < 500]
        for code in set(codes):
            cls = getattr(E, str(code), None)
            if codes.count(code) >= need and isinstance(cls, type) and issubclass(cls, E.S3Error):
                raise cls()
        if any(isinstance(e, ReplicaError) and e.code == "SlowDown" for e in failed):
            # A partition over its request budget: S3's answer, which clients retry with back-off.
            raise E.SlowDown()
        raise E.ServiceUnavailable(f"metadata quorum not reached ({len(ok)}/{need}): "
                                   f"{'; '.join(map(str, failed))}")
    return ok

