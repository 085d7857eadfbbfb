"""Internal request authentication: an HMAC over each request with the cluster secret.

Storage nodes and metadata processes accept only requests signed this way, so a
stray client on the network can't write fragments or metadata. The MAC covers
the method, the path with query and a timestamp (rejected beyond 5 minutes).
Bodies are not covered: they are streamed, and every fragment block carries its
own xxh3 checksum, verified by the receiver. A request whose body says what to
do (a batch of metadata calls, meta/batch.py) sends its SHA-256 in
``X-Minis3-Body-SHA256``; the MAC then covers that digest too, and the receiver
checks the body against it.
"""
from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "X-Minis3-Auth"
BODY_HEADER = "X-Minis3-Body-SHA256"
MAX_SKEW_S = 300


def _string(method: str, path_qs: str, ts: str, body_sha256: str | None) -> bytes:
    s = f"{method}\n{path_qs}\n{ts}"
    return (s if body_sha256 is None else f"{s}\n{body_sha256}").encode()


def sign(secret: str, method: str, path_qs: str, now: float | None = None, body_sha256: str | None = None) -> str:
    ts = str(int(now if now is not None else time.time()))
    mac = hmac.new(secret.encode(), _string(method, path_qs, ts, body_sha256), hashlib.sha256).hexdigest()
    return f"{ts}:{mac}"


def check(secret: str, method: str, path_qs: str, value: str | None, now: float | None = None,
          body_sha256: str | None = None) -> bool:
    if not value or ":" not in value:
        return False
    ts, mac = value.split(":", 1)
    try:
        t = int(ts)
    except ValueError:
        return False
    now = now if now is not None else time.time()
    if abs(now - t) > MAX_SKEW_S:
        return False
    want = hmac.new(secret.encode(), _string(method, path_qs, ts, body_sha256), hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, mac)
