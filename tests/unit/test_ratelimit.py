"""core/ratelimit.TokenBucket asked, not paid: the request budget a metadata
partition refuses with SlowDown when it is empty (the pay-and-rest side is
tested with the node audit, tests/unit/test_audit.py)."""
from __future__ import annotations

from minis3.core.ratelimit import TokenBucket, request_budget


def test_a_budget_starts_full_refuses_when_empty_and_refills_at_its_rate():
    now = [0.0]
    b = TokenBucket(10, burst=10, clock=lambda: now[0], full=True)
    assert all(b.try_take() for _ in range(10))
    assert not b.try_take()                       # empty: refused, never into debt
    assert b.tokens == 0
    now[0] += 0.1                                 # one request's worth
    assert b.try_take() and not b.try_take()
    now[0] += 100                                 # idle: at most one second's burst
    assert sum(b.try_take() for _ in range(50)) == 10


def test_a_zero_rate_is_no_limit():
    b = request_budget(0)
    assert all(b.try_take() for _ in range(10_000))
    assert request_budget(5).burst == 5 and request_budget(5).tokens == 5
