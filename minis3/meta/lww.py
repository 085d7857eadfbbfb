"""Last writer wins, with clocks that disagree: what a replica says to a write it
did not keep, and what the coordinator does about it (pure).

Replicas keep the newest version of a key by its stamp (``meta/partition.py``
``version``: HLC timestamp, then the write's random ``vid``). The stamp comes
from the coordinator's hybrid logical clock (core/hlc.py), which moves past
every stamp that coordinator has *seen*, but a frontend that has not seen a
key's newest version (another frontend wrote it) stamps from its own wall
clock. If that clock is behind (``minis3 chaos clock-skew frontend-az-a
-5m``), an unconditional PUT or DELETE acknowledged *after* another one can
carry an *older* stamp: the replicas would keep the earlier write, and the
later, acknowledged one would be lost to every reader.

The rule that prevents it:

* a replica that receives a new version older than the one it holds for the
  key says so in its acknowledgement, with the newer stamp it holds
  (:func:`write_answer`); a version equal to the one it holds (the same
  write, sent again) is simply not written again;
* the coordinator looks at the first W answers of its write quorum
  (:func:`newer_held`). Every earlier acknowledged write of the key is on a
  write quorum, which shares a replica with these W, and that replica holds
  it or something newer. So if no answer names a newer stamp, this write is
  newer than every write acknowledged before it began, and it is
  acknowledged; if one does, the coordinator's clock moves past that stamp,
  the version is stamped again, and written again (a bounded number of
  times: each round only meets versions written while it ran).

A write that raced this one (neither acknowledged before the other began)
may be ordered either way; the rule then only costs a round. When clocks
agree, nothing is older, and no round is added.
"""
from __future__ import annotations

from .partition import version

#: Rounds a freshly stamped write tries before 503 (each meets only versions written while the one before ran).
RESTAMP_ATTEMPTS = 6


def write_answer(rec: dict, held: dict | None, applied: bool) -> dict:
    """A replica's answer to a write of ``rec`` where it held ``held``
    (before the write): ``applied``, and if the version held was newer (a
    different write, stamped later), its stamp as ``newer_ts``."""
    if applied or not is_newer_write(held, rec):
        return {"applied": applied}
    return {"applied": False, "newer_ts": int(held["ts"])}


def is_newer_write(held: dict | None, rec: dict) -> bool:
    """Is ``held`` a different write stamped after ``rec``? (The same write
    moved by the scrubber, a higher placement epoch of the same stamp, is not.)"""
    return held is not None and version(held)[:2] > version(rec)[:2]


def newer_held(answers: list[dict]) -> int | None:
    """The newest stamp that any of a write quorum's answers held over the
    version written (None: none did, the write is the newest)."""
    stamps = [int(a["newer_ts"]) for a in answers if isinstance(a, dict) and a.get("newer_ts") is not None]
    return max(stamps) if stamps else None


def newer_held_per_key(answers: list[dict]) -> dict[str, int]:
    """For a write of many keys (``POST /v/objects``): each key some answer of
    the quorum held a newer version of, with the newest such stamp."""
    out: dict[str, int] = {}
    for a in answers:
        for key, ts in ((a or {}).get("newer") or {}).items():
            out[key] = max(out.get(key, 0), int(ts))
    return out
