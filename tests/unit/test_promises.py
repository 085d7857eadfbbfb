"""The promises behind conditional writes (minis3/meta/promises.py): the rules
one replica keeps, and a model of three replicas and racing coordinators in
which every interleaving of their messages leaves at most one winner."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from minis3.meta.promises import Promises

NONE = (-1, "", 0)


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_a_promise_refuses_lower_ballots_and_accepts_only_its_own():
    p = Promises(ttl=5)
    assert p.prepare("b/k", (10, "a", 0), NONE)
    assert not p.prepare("b/k", (9, "z", 0), NONE)            # lower than promised
    assert p.prepare("b/k", (11, "b", 0), NONE)               # higher: the promise moves on
    assert not p.accept("b/k", (10, "a", 0), NONE, NONE)      # its promise is gone
    assert p.accept("b/k", (11, "b", 0), NONE, NONE)
    assert not p.accept("b/k", (11, "b", 0), NONE, NONE)      # used up


def test_a_ballot_no_newer_than_the_current_version_is_refused():
    p = Promises()
    assert not p.prepare("b/k", (10, "a", 0), (10, "a", 0))
    assert not p.prepare("b/k", (10, "a", 0), (12, "x", 0))
    assert p.prepare("b/k", (13, "a", 0), (12, "x", 3))


def test_accept_refuses_when_something_unjudged_landed_since():
    p = Promises()
    assert p.prepare("b/k", (20, "a", 0), (5, "x", 0))
    assert not p.accept("b/k", (20, "a", 0), current=(7, "y", 0), expect=(5, "x", 0))
    assert p.prepare("b/k", (21, "a", 0), (7, "y", 0))
    # ... unless what is on top is this same write's own earlier attempt.
    assert p.accept("b/k", (21, "a", 0), current=(20, "a", 0), expect=(7, "y", 0), current_is_ours=True)


def test_promises_expire():
    clock = Clock()
    p = Promises(ttl=5, clock=clock)
    assert p.prepare("b/k", (10, "a", 0), NONE)
    clock.t = 6
    assert p.prepare("b/k", (9, "b", 0), NONE)               # the old promise no longer holds
    assert not p.accept("b/k", (10, "a", 0), NONE, NONE)
    assert len(p) == 1


def test_the_coordinators_decisions():
    from minis3.meta.quorum import cas_judged, cas_outcome_unknown, cas_settled
    a0 = {"ts": 10, "vid": "a0", "wid": "me"}
    a1 = {"ts": 12, "vid": "a1", "wid": "me"}
    other = {"ts": 11, "vid": "o", "wid": "them"}
    # Two attempts of this write, one replica each: nothing is settled.
    assert cas_settled([a0, a1], "me", 2) is None
    assert cas_settled([a1, dict(a1)], "me", 2) == a1
    # Judged on what is not ours, and never older than what was judged before.
    assert cas_judged([a1, other], "me", None) == other
    assert cas_judged([a1, None], "me", other) == other
    # Failing now, after a version newer than the one judged was sent: unknown.
    assert cas_outcome_unknown(other, (12, "a1", 0))
    assert not cas_outcome_unknown(other, (10, "a0", 0)) and not cas_outcome_unknown(other, None)


# ---------------------------------------------------------------- a model of a race
# Three replicas (each: its newest version and its Promises), conditional
# writers that run MetaClient.compare_and_set's decisions (cas_settled,
# cas_judged, cas_outcome_unknown) with retries, and an unconditional writer
# whose clock may lag; the schedule decides who sends the next message, and
# some messages are lost.
from minis3.meta.quorum import cas_judged, cas_outcome_unknown, cas_settled, live  # noqa: E402
from minis3.meta.partition import version  # noqa: E402

ATTEMPTS = 4


class Replica:
    def __init__(self):
        self.latest = None
        self.promises = Promises(ttl=1e9)


class Conditional:
    """If-None-Match: * through compare_and_set's steps, one message a step."""

    def __init__(self, name: str):
        self.name, self.attempt, self.outcome = name, -1, None
        self.seen = self.sent = None
        self.versions = []
        self._new_attempt(0)

    def _new_attempt(self, ts: int):
        self.attempt += 1
        if self.attempt >= ATTEMPTS:
            self.outcome = "503" if self.sent is not None else "409"
            return
        self.phase, self.i, self.replies, self.accepted = "prepare", 0, [], 0
        self.ballot = (ts, f"{self.name}.{self.attempt}", 0)

    def step(self, replicas, clock, lost: bool):
        r = replicas[self.i]
        if self.phase == "prepare":
            if not lost and r.promises.prepare("k", self.ballot, version(r.latest)):
                self.replies.append(r.latest)
        elif not lost and r.promises.accept("k", self.ballot, version(r.latest), self.expect,
                                            current_is_ours=bool(r.latest and r.latest.get("wid") == self.name)):
            if version(self.rec) > version(r.latest):
                r.latest = self.rec
            self.accepted += 1
        self.i += 1
        if self.i < 3:
            return
        if self.phase == "prepare":
            if len(self.replies) < 2:
                return self._new_attempt(clock())
            found = self.replies[:2]
            if cas_settled(found, self.name, 2) is not None:
                self.outcome = "won"
                return
            cur = self.seen = cas_judged(found, self.name, self.seen)
            if live(cur) is not None:
                self.outcome = "503" if cas_outcome_unknown(cur, self.sent) else "412"
                return
            self.rec = {"ts": self.ballot[0], "vid": self.ballot[1], "wid": self.name}
            self.versions.append(version(self.rec))
            self.expect, self.sent = version(cur), version(self.rec)
            self.phase, self.i = "accept", 0
        elif self.accepted >= 2:
            self.outcome = "won"
        else:
            self._new_attempt(clock())


def _run(schedule: list[int], lost: set, lag: int) -> tuple[list, list, dict]:
    replicas = [Replica() for _ in range(3)]
    t = [0]

    def clock():
        t[0] += 1
        return t[0]
    writers = [Conditional("w0"), Conditional("w1")]
    for w in writers:
        w.ballot = (clock(), w.ballot[1], 0)
    plain = {"rec": None, "i": 0, "acks": 0}
    n = 0
    for pick in schedule + [0, 1] * 200 + [2] * 3:
        n += 1
        if pick == 2:                       # the unconditional writer, its clock `lag` behind
            if plain["rec"] is None:
                plain["rec"] = {"ts": max(1, clock() - lag), "vid": "plain"}
            if plain["i"] < 3:
                r = replicas[plain["i"]]
                if (2, plain["i"]) not in lost:
                    if version(plain["rec"]) > version(r.latest):
                        r.latest = plain["rec"]
                    plain["acks"] += 1
                plain["i"] += 1
            continue
        w = writers[pick]
        if w.outcome is None:
            w.step(replicas, clock, (pick, w.i, w.phase, w.attempt) in lost)
    return writers, replicas, plain


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.integers(0, 2), min_size=1, max_size=60),
       st.sets(st.tuples(st.integers(0, 2), st.integers(0, 2), st.sampled_from(["prepare", "accept"]),
                         st.integers(0, ATTEMPTS - 1)), max_size=3),
       st.integers(0, 20))
def test_racing_conditional_writes(schedule, lost, lag):
    lost = {x for x in lost if x[0] != 2} | {(2, x[1]) for x in lost if x[0] == 2}
    writers, replicas, plain = _run(schedule, lost, lag)
    outcomes = {w.name: w.outcome for w in writers}
    assert None not in outcomes.values(), outcomes
    winners = [w for w in writers if w.outcome == "won"]
    # At most one If-None-Match: * wins.
    assert len(winners) <= 1, outcomes
    newest_anywhere = max((r.latest for r in replicas if r.latest), key=version, default=None)
    # What reads converge on (the newest version anywhere, by read repair) is
    # never the version of a write that was told it failed (412 / 409).
    if newest_anywhere is not None and newest_anywhere.get("wid"):
        owner = next(w for w in writers if w.name == newest_anywhere["wid"])
        assert owner.outcome in ("won", "503"), (outcomes, newest_anywhere)
    if winners:
        win = winners[0]
        mine = max(win.versions)
        # Its version (or a newer unconditional write) is on a quorum, and no
        # other conditional write's version is newer than it anywhere.
        assert sum(1 for r in replicas if version(r.latest) >= mine) >= 2, outcomes
        assert all(version(r.latest) <= mine or r.latest["vid"] == "plain" for r in replicas), outcomes
