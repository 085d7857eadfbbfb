"""The console's pure defences: the login's ``next`` never leaves the console,
and failed logins are throttled per address."""
from __future__ import annotations

import pytest

from minis3.console.guard import LoginThrottle, safe_next


@pytest.mark.parametrize("raw", [
    "/", "/b/photos", "/o/b/k%20with%20space?versionId=abc", "/trace/0123", "/b/a%2Fb",
])
def test_same_origin_paths_pass(raw):
    assert safe_next(raw) == raw


@pytest.mark.parametrize("raw", [
    None, "", "b/photos", "http://evil.example/", "https://evil.example", "//evil.example/",
    "/\t/evil.example/", "/%09/evil.example/", "/%0a/evil.example", "/\\evil.example", "/%5cevil.example",
    "/%2f/evil.example", "/ /evil.example", "/%00", "javascript:alert(1)", "/\x7f",
])
def test_anything_that_could_leave_the_console_goes_home(raw):
    assert safe_next(raw) == "/"


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_throttle_after_five_failures_until_the_oldest_ages_out():
    clock = Clock()
    t = LoginThrottle(failures=5, window_s=300, clock=clock)
    for i in range(5):
        assert t.retry_after("10.0.0.1") == 0
        t.failed("10.0.0.1")
        clock.t += 10
    assert t.retry_after("10.0.0.1") == pytest.approx(250)
    assert t.retry_after("10.0.0.2") == 0                     # another address is not affected
    clock.t += 250
    assert t.retry_after("10.0.0.1") == 0                     # the first failure aged out


def test_a_success_forgets_and_memory_is_bounded():
    clock = Clock()
    t = LoginThrottle(failures=2, window_s=60, max_addresses=3, clock=clock)
    t.failed("a"), t.failed("a")
    assert t.retry_after("a") > 0
    t.succeeded("a")
    assert t.retry_after("a") == 0
    for addr in "bcdef":
        t.failed(addr)
    assert len(t._seen) == 3
