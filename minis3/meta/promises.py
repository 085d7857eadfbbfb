"""A replica's promises: what makes a conditional write atomic across frontends.

S3's conditional writes (``If-None-Match: *``, ``If-Match``) must hold even
when two frontends write the same key at once: exactly one wins. Checking the
condition on a quorum read and then writing is not enough (both may read the
same old version, both write). So a conditional write is a compare-and-set
in two rounds, in the manner of single-decree Paxos, with the version's own
stamp (``ts``, ``vid``) as the ballot:

1. **prepare(ballot)**: each replica promises to accept no write of a
   lower ballot for the key, and answers its current version. It refuses if
   it promised a higher ballot, or already holds a version at least as new
   (that write would lose under last-writer-wins anyway).
2. The coordinator takes the newest version among a quorum (W = 2) of
   promises, evaluates the condition on it, and sends **accept**: the new
   version, under its ballot, with ``expect`` = the version it judged.
   A replica accepts only under its own promise for exactly this ballot, and
   only if its current version is no newer than ``expect`` (nothing the
   coordinator did not see has landed since).

Why at most one of two racing writes wins: each needs W = 2 accepts out of
3, so the two quorums share a replica. There, whichever promise came second
either has the higher ballot (and the first writer's accept is refused), or
the lower one (and is refused itself), or comes after the first writer's
accept (and its reply shows that version, so the second writer's condition
is judged against it: 412).

A promise lives in memory for ``ttl`` seconds: a coordinator that died
between its rounds blocks nobody for long. A replica that restarts forgets
its promises, and since an accept needs the replica's promise for exactly
its ballot, it refuses accepts that were promised before the restart: safe,
and the coordinator tries again with a new ballot.

Pure: no I/O. Versions are the tuples of :func:`minis3.meta.partition.version`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

Version = tuple


@dataclass
class Promise:
    ballot: Version
    expires: float


class Promises:
    def __init__(self, ttl: float = 5.0, clock: Callable[[], float] = time.monotonic, most: int = 10_000):
        self.ttl, self.clock, self.most = ttl, clock, most
        self._by_key: dict[str, Promise] = {}

    def _current(self, key: str) -> Promise | None:
        p = self._by_key.get(key)
        if p is not None and p.expires <= self.clock():
            del self._by_key[key]
            return None
        return p

    def prepare(self, key: str, ballot: Version, current: Version) -> bool:
        """Promise ``ballot`` for ``key`` (whose newest version here is ``current``)."""
        ballot = tuple(ballot)
        p = self._current(key)
        if ballot <= tuple(current) or (p is not None and p.ballot > ballot):
            return False
        if len(self._by_key) >= self.most:
            now = self.clock()
            for k in [k for k, v in self._by_key.items() if v.expires <= now]:
                del self._by_key[k]
        self._by_key[key] = Promise(ballot, self.clock() + self.ttl)
        return True

    def accept(self, key: str, ballot: Version, current: Version, expect: Version,
               current_is_ours: bool = False) -> bool:
        """May the version stamped ``ballot`` be written now? Yes under this
        replica's promise for exactly that ballot, if the key's version here
        (``current``) is no newer than what the coordinator judged
        (``expect``), or is one of the same write's own earlier attempts
        (``current_is_ours``). A yes uses the promise up."""
        ballot = tuple(ballot)
        p = self._current(key)
        if p is None or p.ballot != ballot or (tuple(current) > tuple(expect) and not current_is_ours):
            return False
        del self._by_key[key]
        return True

    def newest_stamp(self, key: str) -> int | None:
        """The timestamp of the ballot promised for ``key``, if a promise holds."""
        p = self._current(key)
        return int(p.ballot[0]) if p is not None else None

    def __len__(self) -> int:
        return len(self._by_key)
