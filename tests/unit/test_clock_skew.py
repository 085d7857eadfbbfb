"""Clocks that disagree: the offset `minis3 chaos clock-skew` sets (core/clockskew.py,
rpc/clock.py), a hybrid logical clock reading it (core/hlc.py), and the rule that keeps
last-writer-wins in acknowledgement order (meta/lww.py), down to a coordinator with a lagging
clock writing to three replicas that hold a newer version."""
from __future__ import annotations

import asyncio

import pytest

from minis3.core import clockskew
from minis3.core import errors as E
from minis3.core.hlc import HLC, LOGICAL_BITS, physical_ms
from minis3.meta import lww
from minis3.meta.client import MetaClient
from minis3.meta.partition import version
from minis3.meta.replica import Replica, ReplicaError
from minis3.rpc import clock

MIN = 60_000


# ----------------------------------------------------------------------------- offsets
@pytest.mark.parametrize("text, ms", [("+5m", 5 * MIN), ("-5m", -5 * MIN), ("-300s", -300_000), ("300s", 300_000),
                                      ("1500ms", 1500), ("0", 0), ("-0", 0), ("2min", 2 * MIN), ("1.5s", 1500)])
def test_an_offset_is_a_signed_duration_with_its_unit(text, ms):
    assert clockskew.parse_offset(text) == ms


@pytest.mark.parametrize("text", ["5", "-300", "5h", "", "+", "five minutes", "--5m"])
def test_an_offset_without_a_known_unit_is_refused(text):
    with pytest.raises(clockskew.OffsetError):
        clockskew.parse_offset(text)


def test_an_offset_is_written_in_its_shortest_exact_unit():
    assert [clockskew.format_offset(ms) for ms in (5 * MIN, -300_500, 120, 0, -2000)] == \
        ["+5m", "-300500ms", "+120ms", "0", "-2s"]
    for ms in (5 * MIN, -300_500, 120, 0, -2000):
        assert clockskew.parse_offset(clockskew.format_offset(ms)) == ms


def test_the_environment_spec_names_processes_or_all_of_them():
    spec = clockskew.parse_spec("frontend-az-a=-5m; meta-az-b=+300s")
    assert clockskew.offset_for(spec, "frontend-az-a") == -5 * MIN
    assert clockskew.offset_for(spec, "meta-az-b") == 300_000
    assert clockskew.offset_for(spec, "scrubber") == 0
    every = clockskew.parse_spec("-5m,scrubber=0")
    assert clockskew.offset_for(every, "frontend") == -5 * MIN and clockskew.offset_for(every, "scrubber") == 0
    with pytest.raises(clockskew.OffsetError):
        clockskew.parse_spec("=5m")


def test_a_process_takes_its_offset_from_the_environment(monkeypatch):
    monkeypatch.setenv(clock.ENV, "frontend-az-a=-5m")
    try:
        clock.skew_from_environment("frontend-az-b")
        assert clock.offset_ms() == 0
        clock.skew_from_environment("frontend-az-a")
        assert clock.offset_ms() == -5 * MIN
        assert clock.status()["offset"] == "-5m" and clock.status()["set_by"] == "$MINIS3_CLOCK_SKEW"
        import time
        assert abs(clock.wall_ms() - (time.time() * 1000 - 5 * MIN)) < 1000
        monkeypatch.setenv(clock.ENV, "frontend-az-a=soon")
        with pytest.raises(SystemExit):
            clock.skew_from_environment("frontend-az-a")
    finally:
        clock.set_offset_ms(0, "default")


# ----------------------------------------------------------------------------- the HLC
def test_an_hlc_reads_the_offset_clock_and_still_moves_past_what_it_saw():
    wall = [1_000_000]
    offset = [0]
    behind = HLC(lambda: wall[0] + offset[0])
    offset[0] = -5 * MIN
    a = behind.now()
    assert physical_ms(a) == 1_000_000 - 5 * MIN
    # A version stamped by a process whose clock is right: seen, so the next stamp is later.
    other = HLC(lambda: wall[0]).now()
    behind.observe(other)
    b = behind.now()
    assert b > other and physical_ms(b) == physical_ms(other)       # the counter moves, not the wall part
    wall[0] += 10
    assert behind.now() > b                                           # never backwards, though its wall is behind
    # A jump back of the offset (the skew reset from +5m to 0) never makes a stamp go back either.
    ahead = HLC(lambda: wall[0] + offset[0])
    offset[0] = 5 * MIN
    c = ahead.now()
    offset[0] = 0
    assert ahead.now() == c + 1 and (c + 1) >> LOGICAL_BITS == c >> LOGICAL_BITS


# ----------------------------------------------------------------------------- the rule (pure)
def _rec(ts, vid="v"):
    return {"ts": ts, "vid": vid}


def test_a_replica_tells_an_older_write_the_newer_stamp_it_holds():
    assert lww.write_answer(_rec(5), None, True) == {"applied": True}
    assert lww.write_answer(_rec(5), _rec(9, "x"), False) == {"applied": False, "newer_ts": 9}
    # The same write again (a retry, a read repair) is not "newer": nothing to stamp again.
    assert lww.write_answer(_rec(9, "x"), _rec(9, "x"), False) == {"applied": False}
    # Nor is the same write moved by the scrubber (a higher placement epoch of one stamp).
    assert lww.write_answer(_rec(9, "x"), dict(_rec(9, "x"), pe=2), False) == {"applied": False}
    # Equal stamps from two clocks: the version id decides, as every replica decides.
    assert lww.write_answer(_rec(9, "a"), _rec(9, "b"), False) == {"applied": False, "newer_ts": 9}


def test_the_coordinator_reads_the_newest_stamp_held_over_its_write():
    assert lww.newer_held([{"applied": True}, {"applied": True}]) is None
    assert lww.newer_held([{"applied": True}, {"applied": False, "newer_ts": 7}, {"applied": False, "newer_ts": 9}]) == 9
    assert lww.newer_held_per_key([{"applied": 2, "newer": {"a": 5}}, {"applied": 1, "newer": {"a": 8, "b": 3}},
                                   {"applied": 3, "newer": {}}]) == {"a": 8, "b": 3}


# ----------------------------------------------------------------------------- a coordinator behind
WINDOW_MS = 150_000


class Replicas:
    """Three replicas as POST /v/object and /v/objects answer (meta/server.py's rules: newest
    wins, the answer of meta/lww.py, 409 StaleCommit for a commit older than the window by
    the replica's own clock), each with its own clock (ms)."""

    def __init__(self, monkeypatch, now_ms: int):
        self.held: dict[str, dict[str, dict]] = {u: {} for u in ("http://a", "http://b", "http://c")}
        self.clock = {u: now_ms for u in self.held}
        self.posts = 0
        replicas = self

        async def call(r, method, path, *, params=None, json=None, body_sha256=None):
            from minis3.rpc import fastjson
            body = fastjson.loads(json) if isinstance(json, bytes) else json
            replicas.posts += 1
            if path == "/v/objects":
                answers = [replicas.keep(r.url, body["bucket"] + "/" + k, rec, False) for k, rec in body["items"]]
                return {"applied": sum(a["applied"] for a in answers),
                        "newer": {k: a["newer_ts"] for (k, _), a in zip(body["items"], answers) if "newer_ts" in a}}
            return replicas.keep(r.url, body["bucket"] + "/" + body["key"], body["record"], body.get("commit"))
        monkeypatch.setattr(Replica, "call", call)

    def keep(self, url: str, ikey: str, rec: dict, commit: bool) -> dict:
        if commit and rec.get("ec") and physical_ms(rec["ts"]) < self.clock[url] - WINDOW_MS:
            raise ReplicaError(f"{url}: 409 StaleCommit", "StaleCommit", 409,
                               {"code": "StaleCommit", "now_ts": self.clock[url] << LOGICAL_BITS})
        cur = self.held[url].get(ikey)
        applied = version(rec) > version(cur)
        if applied:
            self.held[url][ikey] = rec
        return lww.write_answer(rec, cur, applied)

    def newest(self, ikey: str) -> dict:
        return max((h[ikey] for h in self.held.values() if ikey in h), key=version)

    def client(self, clock_ms) -> MetaClient:
        c = MetaClient(None, list(self.held), account="owner", hlc=HLC(clock_ms))

        async def replicas(ikey=None):
            return c.replicas

        async def have_map():
            return None
        c._replicas, c.router.ensure, c.router.replicas_for = replicas, have_map, lambda ikey: c.replicas
        return c


NOW = 1_700_000_000_000


def ticking(offset_ms: int):
    """A wall clock that moves a millisecond each time it is read, ``offset_ms`` off."""
    t = [NOW]

    def read() -> int:
        t[0] += 1
        return t[0] + offset_ms
    return read


def test_a_coordinator_five_minutes_behind_writes_after_the_acknowledged_version(monkeypatch):
    reps = Replicas(monkeypatch, NOW)
    right, behind = reps.client(ticking(0)), reps.client(ticking(-5 * MIN))

    async def run():
        first = await right.put_object("b", "k", {"etag": "1"})
        reps.posts = 0
        second = await behind.put_object("b", "k", {"etag": "2"})
        assert version(second) > version(first)
        assert reps.posts == 6                  # stamped again once: two rounds of three
        assert reps.newest("b/k")["etag"] == "2"
        reps.posts = 0
        await right.delete_object("b", "k")     # its clock is right, and ahead of the behind one's stamps
        assert reps.posts == 3 and reps.newest("b/k").get("deleted")
        await behind.put_object("b", "k", {"etag": "3"})
        assert reps.newest("b/k")["etag"] == "3"
        reps.posts = 0
        await behind.put_object("b", "k", {"etag": "4"})     # it has seen the newest stamp: one round
        assert reps.posts == 3
    asyncio.run(run())


def test_a_bulk_load_behind_stamps_again_only_the_keys_held_newer(monkeypatch):
    reps = Replicas(monkeypatch, NOW)
    right, behind = reps.client(ticking(0)), reps.client(ticking(-5 * MIN))

    async def run():
        await right.put_object("b", "k1", {"etag": "old"})
        await behind.put_objects("b", [("k1", {"etag": "new"}), ("k2", {"etag": "new"})])
        assert reps.newest("b/k1")["etag"] == "new" and reps.newest("b/k2")["etag"] == "new"
    asyncio.run(run())


def test_a_commit_refused_as_stale_by_the_replicas_clocks_is_stamped_again_in_time(monkeypatch):
    reps = Replicas(monkeypatch, NOW)
    behind = reps.client(lambda: NOW - 5 * MIN)
    coded = {"etag": "1", "ec": {"id": "frag"}}

    async def run():
        import time
        rec = await behind.put_object("b", "k", coded, stamp_by=time.monotonic() + 60)
        assert physical_ms(rec["ts"]) >= NOW and reps.newest("b/k")["etag"] == "1"
        # Past its commit deadline, it is not stamped again: 503.
        late = reps.client(lambda: NOW - 5 * MIN)
        with pytest.raises(E.ServiceUnavailable):
            await late.put_object("b", "k2", coded, stamp_by=time.monotonic() - 1)
    asyncio.run(run())
