"""The console's defences that need no I/O: where a login may send the browser
next, how many failed logins an address may make, and the headers every page
carries. Pure, unit-tested alone (tests/unit/test_console_guard.py)."""
from __future__ import annotations

import time
from collections import deque
from urllib.parse import unquote, urlsplit

#: Every response: scripts and styles only from the console itself (the
#: waterfall's bars are inline style attributes, hence 'unsafe-inline' for
#: styles only), no framing (clickjacking), forms post only here.
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                                "img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                                "form-action 'self'; frame-ancestors 'none'"),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def safe_next(raw: str | None, default: str = "/") -> str:
    """A path on this console to go to after logging in, or ``default``.

    Only a same-origin absolute path passes: it starts with one "/"; it holds
    no whitespace or control character (browsers drop tabs and newlines in
    URLs, so "/\\t/evil.example" would become "//evil.example", another site);
    and neither it nor its percent-decoded form holds a backslash or a control
    character, starts with "//" or names a scheme or host."""
    if not raw or not raw.startswith("/"):
        return default
    if any(ord(c) <= 0x20 for c in raw):               # raw: not even a space (a key's is %20)
        return default
    for form in (raw, unquote(raw)):
        if any(c == "\\" or ord(c) < 0x20 or ord(c) == 0x7F for c in form):
            return default
        if form.startswith("//"):
            return default
        parts = urlsplit(form)
        if parts.scheme or parts.netloc:
            return default
    return raw


class LoginThrottle:
    """At most ``failures`` failed logins per client address in ``window_s``;
    past that, logins from it are refused until the oldest failure ages out.
    A success forgets the address's failures. Bounded: at most ``max_addresses``
    addresses are remembered (the oldest forgotten first)."""

    def __init__(self, failures: int = 5, window_s: float = 300.0, max_addresses: int = 10_000,
                 clock=time.monotonic):
        self.failures, self.window_s, self.max_addresses, self.clock = failures, window_s, max_addresses, clock
        self._seen: dict[str, deque[float]] = {}

    def _recent(self, addr: str) -> deque[float]:
        q = self._seen.get(addr)
        if q is None:
            return deque()
        now = self.clock()
        while q and now - q[0] >= self.window_s:
            q.popleft()
        if not q:
            del self._seen[addr]
        return q

    def retry_after(self, addr: str) -> float:
        """Seconds until ``addr`` may try again (0: now)."""
        q = self._recent(addr)
        if len(q) < self.failures:
            return 0.0
        return max(0.0, q[0] + self.window_s - self.clock())

    def failed(self, addr: str) -> None:
        self._recent(addr)
        q = self._seen.setdefault(addr, deque())
        q.append(self.clock())
        while len(self._seen) > self.max_addresses:
            del self._seen[next(iter(self._seen))]

    def succeeded(self, addr: str) -> None:
        self._seen.pop(addr, None)
