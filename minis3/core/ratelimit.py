"""A token bucket: the one rate limiter every process uses.

Pure (asyncio only for resting): the storage node's audit, the scrubber's
metadata scan and its rebuilds pay for what they did and rest
(:meth:`TokenBucket.take`); a metadata partition asks before it serves and
refuses when the bucket is empty (:meth:`TokenBucket.try_take`, S3's
SlowDown). The clock is injected so the arithmetic is tested without sleeping.
"""
from __future__ import annotations

import asyncio
import time
from typing import Callable


class TokenBucket:
    """Keeps a reader to ``rate`` bytes (or requests) per second, on average.

    The reader reads first and pays afterwards: :meth:`spend` takes the bytes
    just read from the bucket, which may go into debt, and :meth:`wait_s` says
    how long to rest until the debt is repaid. The bucket refills at ``rate``
    and holds at most ``burst`` bytes, so a reader that was idle may go at
    full speed for ``burst`` bytes, no more. It starts empty (a pass of N bytes
    takes at least about N / rate seconds), or ``full``. ``rate`` 0 means no limit.

    Two ways to use it: pay and rest (:meth:`take`: the node audit, the
    scrubber's scan and rebuilds), or ask and be refused (:meth:`try_take`: a
    metadata partition's request budget, which answers SlowDown when empty).

    The clock is injected so the arithmetic can be tested without sleeping.
    """

    def __init__(self, rate: float, burst: float = 1 << 20, clock: Callable[[], float] = time.monotonic,
                 *, full: bool = False):
        self.clock = clock
        self.rate, self.burst = float(rate), float(burst)
        self.tokens = self.burst if full else 0.0
        self.earned = 0.0           # bytes the bucket has refilled since it was made (see take)
        self.stamp = clock()
        self._changed: asyncio.Event | None = None

    def _refill(self) -> None:
        now = self.clock()
        if self.rate > 0:
            add = (now - self.stamp) * self.rate
            self.earned += add
            self.tokens = min(self.burst, self.tokens + add)
        else:
            self.tokens = max(self.tokens, 0.0)          # unlimited: no debt
        self.stamp = now

    def set_rate(self, rate: float) -> None:
        """Change the rate from now on (a debt is then repaid at the new rate)."""
        self._refill()
        self.rate = float(rate)
        self._refill()
        if self._changed is not None:
            self._changed.set()

    def spend(self, n: int) -> None:
        self._refill()
        if self.rate > 0:
            self.tokens -= n

    def try_take(self, n: float = 1) -> bool:
        """Take ``n`` if the bucket holds them (never into debt); False if not."""
        self._refill()
        if self.rate <= 0:
            return True
        if self.tokens >= n:
            self.tokens -= n
            return True
        return False

    def wait_s(self) -> float:
        """Seconds until the bucket is out of debt (0 if it is not in debt)."""
        self._refill()
        if self.rate <= 0 or self.tokens >= 0:
            return 0.0
        return -self.tokens / self.rate

    async def take(self, n: int) -> None:
        """Pay for ``n`` bytes read, resting as long as the rate requires
        (woken early if :meth:`set_rate` changes the rate meanwhile).

        Several readers may share a bucket: each rests until the debt there
        was when it paid is repaid, not the debt readers who paid after it
        added (which would hold them all back, then let them go at once)."""
        self.spend(n)
        if self._changed is None:
            self._changed = asyncio.Event()
        repaid_at = self.earned + max(0.0, -self.tokens)     # when this payment's debt is repaid
        while True:
            self._refill()
            if self.rate <= 0 or self.tokens >= 0 or self.earned >= repaid_at:
                return
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), (repaid_at - self.earned) / self.rate)
            except asyncio.TimeoutError:
                pass


def request_budget(rate: float) -> TokenBucket:
    """``rate`` requests a second, with bursts up to one second's worth, starting full (0: unlimited)."""
    return TokenBucket(rate, burst=max(rate, 1), full=True)
