"""The partition map: which key ranges of the index exist, and who holds them. Pure.

The object index is one sorted key space (``bucket + "/" + key``, plus the
multipart spaces that start with "\\x00"), cut into contiguous *partitions*.
Each partition has one replica per AZ, held by one of that AZ's metadata
processes. The map is versioned: every change (a split, a move, a merge)
makes a new version, and every metadata process keeps the newest it has seen
(``map.json``), so a process that was down during a change learns it from its
peers when it returns.

A *split* cuts a partition at a key into two with the same replicas: each
replica cuts its own copy in place (no data moves between processes), so a
split is safe whatever order replicas learn it in: a replica routes every key
to whichever of its own partitions covers it. What the map adds is the unit of
accounting (key counts, request rates, the per-partition request budget that
answers SlowDown) and of placement.

:func:`choose_split_key` picks where: the median key, moved to the nearest
prefix boundary ("/") within a window around it, so a split tends to fall
between "folders" rather than inside one.
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field, replace
from typing import Sequence

MAX_EVENTS = 200                 # the map keeps this many recent splits, moves and merges


class MapError(ValueError):
    pass


@dataclass(frozen=True)
class Entry:
    """One partition: the key range [lo, hi) (hi None: to the end) and, per AZ,
    the metadata process holding its replica there."""
    id: str
    lo: str
    hi: str | None
    replicas: tuple[tuple[str, str], ...]          # ((az, meta process id), ...) in AZ order
    parent: str | None = None                      # the partition it was split from

    def contains(self, key: str) -> bool:
        return key >= self.lo and (self.hi is None or key < self.hi)

    def replica_in(self, az: str) -> str | None:
        return dict(self.replicas).get(az)

    def doc(self) -> dict:
        return {"id": self.id, "lo": self.lo, "hi": self.hi, "replicas": dict(self.replicas),
                **({"parent": self.parent} if self.parent else {})}

    @classmethod
    def from_doc(cls, d: dict) -> "Entry":
        return cls(id=str(d["id"]), lo=str(d["lo"]), hi=None if d.get("hi") is None else str(d["hi"]),
                   replicas=tuple((str(a), str(m)) for a, m in d["replicas"].items()), parent=d.get("parent"))


@dataclass(frozen=True)
class PartitionMap:
    version: int
    partitions: tuple[Entry, ...]                  # in key order, contiguous, from "" to the end
    next_id: int
    events: tuple[dict, ...] = field(default=())   # the most recent changes, oldest first

    def __post_init__(self) -> None:
        object.__setattr__(self, "_los", [p.lo for p in self.partitions])   # for locate's binary search

    # -- building ----------------------------------------------------------------------
    @classmethod
    def initial(cls, bounds: Sequence[str], replicas: dict[str, str]) -> "PartitionMap":
        """Version 1: partitions p000, p001, … cut at ``bounds`` (the topology's
        initial split points), each with the given replica in every AZ."""
        edges = [""] + sorted(set(b for b in bounds if b))
        reps = tuple(replicas.items())
        parts = tuple(Entry(f"p{i:03d}", lo, edges[i + 1] if i + 1 < len(edges) else None, reps)
                      for i, lo in enumerate(edges))
        m = cls(version=1, partitions=parts, next_id=len(parts))
        m.check()
        return m

    def check(self) -> None:
        """The map covers the whole key space exactly once, in order."""
        if not self.partitions or self.partitions[0].lo != "" or self.partitions[-1].hi is not None:
            raise MapError("the partitions must run from the empty key to the end")
        for a, b in zip(self.partitions, self.partitions[1:]):
            if a.hi is None or a.hi != b.lo or not a.lo < a.hi:
                raise MapError(f"partitions {a.id} and {b.id} are not contiguous and ordered")
        ids = [p.id for p in self.partitions]
        if len(set(ids)) != len(ids):
            raise MapError("partition ids must be unique")

    # -- lookups -----------------------------------------------------------------------
    def locate(self, key: str) -> Entry:
        """The partition holding ``key``: a binary search over the ranges' lower bounds."""
        return self.partitions[bisect_right(self._los, key) - 1]

    def get(self, pid: str) -> Entry:
        for p in self.partitions:
            if p.id == pid:
                return p
        raise MapError(f"no partition {pid} in map version {self.version}")

    def covering(self, start: str, end: str | None = None) -> list[Entry]:
        """The partitions that hold keys in [start, end), in key order."""
        i = bisect_right(self._los, start) - 1
        out = []
        for p in self.partitions[i:]:
            if end is not None and p.lo >= end:
                break
            out.append(p)
        return out

    def held_by(self, meta_id: str) -> list[Entry]:
        return [p for p in self.partitions if meta_id in dict(p.replicas).values()]

    def holds(self, meta_id: str, az: str, start: str, end: str | None = None) -> bool:
        """Does ``meta_id`` hold ``az``'s replica of every key in [start, end)?"""
        return all(p.replica_in(az) == meta_id for p in self.covering(start, end))

    def last_move(self, pid: str, az: str) -> dict | None:
        """The most recent recorded move of ``pid``'s replica in ``az``."""
        for ev in reversed(self.events):
            if ev["kind"] == "move" and ev["partition"] == pid and ev["az"] == az:
                return ev
        return None

    # -- changes -----------------------------------------------------------------------
    def _changed(self, partitions: list[Entry], event: dict, next_id: int | None = None) -> "PartitionMap":
        event = {"version": self.version + 1, **event}
        m = PartitionMap(self.version + 1, tuple(partitions), self.next_id if next_id is None else next_id,
                         (self.events + (event,))[-MAX_EVENTS:])
        m.check()
        return m

    def split(self, pid: str, key: str, *, reason: str, at_ms: int) -> "PartitionMap":
        """Cut partition ``pid`` at ``key``: [lo, key) and [key, hi), both with its replicas."""
        p = self.get(pid)
        if not (key > p.lo and (p.hi is None or key < p.hi)):
            raise MapError(f"split key {key!r} is not strictly inside {pid} [{p.lo!r}, {p.hi!r})")
        left = Entry(f"p{self.next_id:03d}", p.lo, key, p.replicas, parent=p.id)
        right = Entry(f"p{self.next_id + 1:03d}", key, p.hi, p.replicas, parent=p.id)
        i = self.partitions.index(p)
        parts = list(self.partitions[:i]) + [left, right] + list(self.partitions[i + 1:])
        return self._changed(parts, {"kind": "split", "partition": pid, "key": key, "into": [left.id, right.id],
                                     "reason": reason, "at_ms": at_ms}, self.next_id + 2)

    def move(self, pid: str, az: str, to: str, *, reason: str, at_ms: int, **extra) -> "PartitionMap":
        """Give partition ``pid``'s replica in ``az`` to metadata process ``to``
        (``extra``: more to record in the event, e.g. when the copy began)."""
        p = self.get(pid)
        frm = p.replica_in(az)
        if frm is None:
            raise MapError(f"{pid} has no replica in {az}")
        reps = tuple((a, to if a == az else m) for a, m in p.replicas)
        parts = [replace(x, replicas=reps) if x.id == pid else x for x in self.partitions]
        return self._changed(parts, {"kind": "move", "partition": pid, "az": az, "from": frm, "to": to,
                                     "reason": reason, "at_ms": at_ms, **extra})

    def merge(self, left_id: str, *, reason: str, at_ms: int) -> "PartitionMap":
        """Join ``left_id`` with its right neighbour (they must have the same replicas)."""
        left = self.get(left_id)
        i = self.partitions.index(left)
        if i + 1 >= len(self.partitions):
            raise MapError(f"{left_id} is the last partition: nothing to merge it with")
        right = self.partitions[i + 1]
        if left.replicas != right.replicas:
            raise MapError(f"{left_id} and {right.id} have different replicas; move one first")
        joined = Entry(f"p{self.next_id:03d}", left.lo, right.hi, left.replicas, parent=left.id)
        parts = list(self.partitions[:i]) + [joined] + list(self.partitions[i + 2:])
        return self._changed(parts, {"kind": "merge", "partitions": [left.id, right.id], "into": joined.id,
                                     "reason": reason, "at_ms": at_ms}, self.next_id + 1)

    def history_of(self, pid: str) -> list[dict]:
        """The recorded events that made partition ``pid`` what it is (its
        ancestors' splits and merges, and its own moves), oldest first."""
        lineage, out = {pid}, []
        for ev in reversed(self.events):
            if ev["kind"] == "move" and ev["partition"] in lineage:
                out.append(ev)
            elif ev["kind"] == "split" and set(ev["into"]) & lineage:
                out.append(ev)
                lineage.add(ev["partition"])
            elif ev["kind"] == "merge" and ev["into"] in lineage:
                out.append(ev)
                lineage.update(ev["partitions"])
        return list(reversed(out))

    # -- on disk and on the wire -------------------------------------------------------
    def doc(self) -> dict:
        return {"version": self.version, "next_id": self.next_id,
                "partitions": [p.doc() for p in self.partitions], "events": list(self.events)}

    @classmethod
    def from_doc(cls, d: dict) -> "PartitionMap":
        m = cls(version=int(d["version"]), partitions=tuple(Entry.from_doc(p) for p in d["partitions"]),
                next_id=int(d["next_id"]), events=tuple(d.get("events", ())))
        m.check()
        return m


def newest(maps: Sequence[PartitionMap | None]) -> PartitionMap | None:
    got = [m for m in maps if m is not None]
    return max(got, key=lambda m: m.version) if got else None


# ----------------------------------------------------------------------------- split keys
def prefix_boundary(before: str, key: str) -> str:
    """The shortest key that sorts after ``before`` and no later than ``key``,
    extended to the end of the "/"-separated segment where they differ: a split
    there sends everything under the same folder to the same side."""
    n = 0
    while n < len(before) and n < len(key) and before[n] == key[n]:
        n += 1
    slash = key.find("/", n)
    return key if slash < 0 else key[:slash + 1]


def choose_split_key(keys: Sequence[str], lo: str, hi: str | None, window: float = 0.1) -> str | None:
    """Where to split a partition whose keys (sorted) are ``keys``: near the
    median, at the widest prefix boundary within ``window`` (a fraction of the
    keys) of it. None if the partition cannot be split (fewer than two keys).

    ``keys`` may be a sample (for a hot partition, the keys recently asked
    for), as long as it is sorted.
    """
    # A cut never falls inside a key's run of version rows (core/versions.py):
    # a row stands for its head key, so every cut is at a head (or a prefix
    # boundary), and the rows sort on the same side as their head.
    keys = [k if k.startswith("\x00") else k.split("\x00", 1)[0] for k in keys]
    n = len(keys)
    if n < 2:
        return None
    mid = n // 2
    span = max(1, int(n * window))
    best, best_len = None, None
    for i in range(max(1, mid - span), min(n, mid + span + 1)):
        if keys[i] == keys[i - 1]:
            continue
        cand = prefix_boundary(keys[i - 1], keys[i])
        if not (cand > lo and (hi is None or cand < hi) and keys[i - 1] < cand <= keys[i]):
            continue
        # Shorter candidates cut higher up the "folder" tree; ties go to the median.
        score = (len(cand), abs(i - mid))
        if best is None or score < best_len:
            best, best_len = cand, score
    if best is None:
        cand = keys[mid]
        best = cand if cand > lo and (hi is None or cand < hi) else None
    return best
