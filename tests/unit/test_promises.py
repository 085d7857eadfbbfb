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


# ---------------------------------------------------------------- a model of a race
class Replica:
    def __init__(self):
        self.latest = None                  # (version, writer)
        self.promises = Promises(ttl=1e9)

    def version(self):
        return self.latest[0] if self.latest else NONE


def _run(schedule: list[int], n_writers: int, drop: set) -> list[str]:
    """Writers w0..wn each do If-None-Match: * on one key over three replicas.
    ``schedule`` picks which writer takes its next step; a step is one message
    to one replica (prepare to r0, r1, r2, then, once two promised and the
    condition held, accept to r0, r1, r2). ``drop``: (writer, replica) pairs
    whose messages are lost. Returns each writer's outcome."""
    replicas = [Replica() for _ in range(3)]
    state = []
    for w in range(n_writers):
        ballot = (100 + w, f"w{w}", 0)
        state.append({"ballot": ballot, "step": 0, "promised": [], "accepted": 0, "outcome": "pending"})
    for pick in schedule:
        w = pick % n_writers
        s = state[w]
        if s["outcome"] != "pending":
            continue
        step = s["step"]
        s["step"] += 1
        if step < 3:                                   # prepare to replica `step`
            r = replicas[step]
            if (w, step) not in drop and r.promises.prepare("k", s["ballot"], r.version()):
                s["promised"].append((step, r.latest))
            if step == 2:
                if len(s["promised"]) < 2:
                    s["outcome"] = "conflict"
                    continue
                judged = s["promised"][:2]             # the first quorum of answers
                cur = max((v for _, v in judged if v), default=None, key=lambda v: v[0])
                if cur is not None:
                    s["outcome"] = "412"
                    continue
                s["expect"] = cur[0] if cur else NONE
        elif step < 6:                                 # accept to replica `step - 3`
            i = step - 3
            r = replicas[i]
            if (w, i) not in drop and r.promises.accept("k", s["ballot"], r.version(), s["expect"]):
                if s["ballot"] > r.version():
                    r.latest = (s["ballot"], f"w{w}")
                s["accepted"] += 1
            if step == 5:
                s["outcome"] = "won" if s["accepted"] >= 2 else "conflict"
    # Let every writer finish its remaining steps in order.
    if any(s["outcome"] == "pending" for s in state):
        return _run(schedule + [w for w in range(n_writers) for _ in range(6)] * 2, n_writers, drop)
    outcomes = [s["outcome"] for s in state]
    winners = [f"w{w}" for w, o in enumerate(outcomes) if o == "won"]
    if winners:
        # The winner's version is on a quorum of replicas, and no replica has a
        # newer one (a read quorum takes the newest it sees: a loser's version
        # above the winner's would replace it).
        mine = [r.latest for r in replicas if r.latest and r.latest[1] == winners[0]]
        assert len(mine) >= 2
        assert all(r.version() <= mine[0][0] for r in replicas)
    return outcomes


@settings(max_examples=800, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=40), st.integers(2, 3),
       st.sets(st.tuples(st.integers(0, 2), st.integers(0, 2)), max_size=2))
def test_racing_conditional_writes_never_both_win(schedule, n_writers, drop):
    outcomes = _run(schedule, n_writers, drop)
    assert outcomes.count("won") <= 1, outcomes
