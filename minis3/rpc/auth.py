"""Internal request authentication: an HMAC over each request with the cluster secret.

Storage nodes, metadata processes, the scrubber, the DNS process and the
frontend's internal endpoints accept only requests signed this way, so a
process that does not hold the cluster secret can neither read nor change
anything through them. Every request carries three headers:

    X-Minis3-Auth:        <unix time>:<HMAC-SHA256 hex>
    X-Minis3-Nonce:       a process's 64 random bits and a counter: never used twice
    X-Minis3-Body-SHA256: the SHA-256 of the body (absent: the body is empty),
                          or ``sealed-blocks`` for a streamed fragment body

The MAC covers the method, the path with its query, the time, the nonce and
the body's digest. A receiver (:class:`Verifier`) refuses a time more than
``WINDOW_S`` away from its own clock, and a nonce it has already accepted
inside that window: a captured request can't be sent again, changed or not.
It then reads the body and checks its SHA-256 (rpc/http.py).

A fragment PUT streams its body while the object is still being encoded, so
its digest is not known when the headers go out. Its body is a sequence of
blocks (storage/blocks.py), each with its own length and xxh3, and it ends with
a *seal*: an HMAC, keyed by the cluster secret and this request's nonce, over
every block's head (length and xxh3) in order (:class:`Seal`). The node checks
each block against its xxh3 as it arrives and the seal before the fragment is
made visible (renamed into place): a body cut short, reordered, or spliced
from another request is refused. The binding of the data to the seal is as
strong as xxh3's: good against accident and against splicing, not a
cryptographic proof against someone who can both capture and rewrite the
stream in flight (docs/security.md says so).
"""
from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import struct
import time

HEADER = "X-Minis3-Auth"
NONCE_HEADER = "X-Minis3-Nonce"
BODY_HEADER = "X-Minis3-Body-SHA256"
SEALED = "sealed-blocks"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
#: A request's time may differ from the receiver's clock by this much, either way.
WINDOW_S = 30
#: Why a request was refused: the label of ``minis3_rpc_refused_total``.
REASONS = ("missing", "malformed", "stale", "future", "signature", "replayed", "body")


class _Nonces:
    """Unique, not secret: 64 random bits drawn once per process, then a
    counter (a system call per request for 96 fresh random bits showed in
    the frontend's profile). A forked child draws its own prefix."""

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.prefix, self.count = os.urandom(8).hex(), itertools.count()

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.count):08x}"


#: A nonce no process of the cluster has used (or will use).
new_nonce = _Nonces()


def _string(method: str, path_qs: str, ts: str, nonce: str, body_sha256: str | None) -> bytes:
    return f"{method}\n{path_qs}\n{ts}\n{nonce}\n{body_sha256 or EMPTY_SHA256}".encode()


def mac(secret: str, method: str, path_qs: str, ts: str, nonce: str, body_sha256: str | None) -> str:
    return hmac.new(secret.encode(), _string(method, path_qs, ts, nonce, body_sha256), hashlib.sha256).hexdigest()


def sign(secret: str, method: str, path_qs: str, nonce: str, now: float | None = None,
         body_sha256: str | None = None) -> str:
    """The ``X-Minis3-Auth`` value for one request."""
    ts = str(int(now if now is not None else time.time()))
    return f"{ts}:{mac(secret, method, path_qs, ts, nonce, body_sha256)}"


def headers(secret: str, method: str, path_qs: str, body: bytes | None = None, *,
            now: float | None = None) -> dict[str, str]:
    """Every authentication header of one request (for callers that do not
    go through rpc.http.client_session, e.g. urllib in tools and tests)."""
    nonce = new_nonce()
    h = {NONCE_HEADER: nonce}
    digest = None
    if body:
        digest = h[BODY_HEADER] = hashlib.sha256(body).hexdigest()
    h[HEADER] = sign(secret, method, path_qs, nonce, now=now, body_sha256=digest)
    return h


class ReplayGuard:
    """The nonces accepted in the last ``2 * window_s`` seconds, so that each is
    accepted once. A nonce is kept until its request's time stamp leaves the
    window (``ts + window_s``), in buckets by that expiry: a replay carries the
    same time stamp as the original (the MAC covers it), so only one bucket
    need be looked at, and whole buckets are dropped as they expire. Memory:
    about 100 bytes per internal request of the last minute."""

    def __init__(self, window_s: float = WINDOW_S):
        self.window_s = window_s
        self._buckets: dict[int, set[str]] = {}
        self._swept = 0.0

    def __len__(self) -> int:
        return sum(len(b) for b in self._buckets.values())

    def first_use(self, nonce: str, ts: int, now: float) -> bool:
        """Record ``nonce`` (of a request stamped ``ts``); False if it was seen before."""
        if now - self._swept >= 1.0:
            self._swept = now
            for b in [b for b in self._buckets if (b + 1) * self.window_s < now]:
                del self._buckets[b]
        bucket = self._buckets.setdefault(int((ts + self.window_s) // self.window_s), set())
        if nonce in bucket:
            return False
        bucket.add(nonce)
        return True


class Verifier:
    """A receiver's check of the authentication headers (the body is checked
    by the caller, against the digest the MAC covered). Counts refusals by
    reason, for ``/metrics``."""

    def __init__(self, secret: str, window_s: float = WINDOW_S, clock=time.time):
        self.secret, self.window_s, self.clock = secret, window_s, clock
        self.replays = ReplayGuard(window_s)
        self.refused = dict.fromkeys(REASONS, 0)

    def refusal(self, method: str, path_qs: str, value: str | None, nonce: str | None,
                body_sha256: str | None) -> str | None:
        """None if the headers are good (and the nonce is now used up), else why not."""
        why = self._why(method, path_qs, value, nonce, body_sha256)
        if why is not None:
            self.refused[why] += 1
        return why

    def _why(self, method, path_qs, value, nonce, body_sha256) -> str | None:
        if not value or not nonce:
            return "missing"
        ts, _, got = value.partition(":")
        if not ts.isdigit() or len(got) != 64 or not 16 <= len(nonce) <= 64:
            return "malformed"
        now, t = self.clock(), int(ts)
        if t < now - self.window_s:
            return "stale"
        if t > now + self.window_s:
            return "future"
        if not hmac.compare_digest(mac(self.secret, method, path_qs, ts, nonce, body_sha256), got):
            return "signature"
        if not self.replays.first_use(nonce, t, now):
            return "replayed"
        return None

    def count(self, reason: str) -> None:
        self.refused[reason] += 1


# -- sealed block streams ------------------------------------------------------------------
SEAL_MARK = 0xFFFFFFFF          # in a block head's length field: the seal, not a block
SEAL = struct.Struct(">IQ32s")   # SEAL_MARK, 0, HMAC-SHA256
SEAL_HEAD = struct.pack(">IQ", SEAL_MARK, 0)


class Seal:
    """The MAC over a fragment body's block heads (see the module's doc). The
    sender creates it unarmed; the request's signing arms it with the secret
    and the nonce it chose (rpc/http.py), before any of the body is sent."""

    def __init__(self, secret: str | None = None, nonce: str | None = None):
        self._mac = None
        self.blocks = 0
        if secret is not None and nonce is not None:
            self.arm(secret, nonce)

    def arm(self, secret: str, nonce: str) -> None:
        self._mac = hmac.new(secret.encode(), b"minis3 seal\n" + nonce.encode() + b"\n", hashlib.sha256)

    def copy(self) -> "Seal":
        """The same seal so far, to add to without changing this one."""
        other = Seal()
        other._mac, other.blocks = self._mac.copy(), self.blocks
        return other

    def add(self, head: bytes) -> None:
        """One block's head (its 12 bytes: length and xxh3), in order."""
        self._mac.update(head)
        self.blocks += 1

    def digest(self) -> bytes:
        m = self._mac.copy()
        m.update(struct.pack(">Q", self.blocks))
        return m.digest()

    def frame(self) -> bytes:
        """What ends the body: a block head with SEAL_MARK as its length, then the MAC."""
        return SEAL.pack(SEAL_MARK, 0, self.digest())

    def matches(self, mac_bytes: bytes) -> bool:
        return hmac.compare_digest(self.digest(), mac_bytes)
