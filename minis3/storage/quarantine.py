"""A storage node's quarantine: where a fragment file found bad is moved aside, never deleted.

Layout, under the node's data directory::

    quarantine/<oid>.<idx>.<unix_ms>        the bad file, moved here
    quarantine/<oid>.<idx>.<unix_ms>.json   why: {"object_id", "index", "problem",
                                            "detected_by": "audit" | "read", "detected_unix"}

A file lands here when a read (storage/server.py) or the background audit
(storage/auditor.py) finds it bad: it is never served again, a person can
still look at it, and the cluster scrubber sees the fragment missing from the
node's inventory and rebuilds it.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Callable

from ..fsutil import fsync_dir

log = logging.getLogger("minis3.storage")

#: "<oid>.<idx>.<unix_ms>", the name of a quarantined fragment file.
QUARANTINE_NAME = re.compile(r"^([0-9a-f]{32})\.(\d{1,3})\.(\d+)$")


def quarantine_name(object_id: str, index: int, unix_ms: int) -> str:
    """``<oid>.<idx>.<unix_ms>``: the moment in the name keeps every bad copy
    of a fragment that was rebuilt and went bad again."""
    return f"{object_id}.{index}.{unix_ms}"


class Quarantine:
    """One node's quarantine/ directory. ``path_for(oid, idx)``: where the
    node keeps a fragment; ``land_lock``: the lock held while a file is
    renamed into fragments/; ``corrupt``: the counter of files moved here,
    by who found them (NodeMetrics.corrupt)."""

    def __init__(self, directory: Path, path_for: Callable[[str, int], Path], land_lock: threading.Lock,
                 corrupt) -> None:
        self.dir = directory
        self.path_for, self.land_lock, self.corrupt = path_for, land_lock, corrupt

    def move(self, oid: str, idx: int, identity: tuple[int, int], problem: str,
             detected_by: str) -> str | None:
        """Move a bad fragment file to quarantine/ with a sidecar saying why.

        Blocking (run it in a thread). Moves the file only if the path still
        names the very file that was found bad (same st_dev and st_ino): a PUT
        may have put a fresh copy there since (a rebuild, say), and that one
        must stay. Returns the quarantined file's name, or None if nothing was
        moved (gone, or replaced).
        """
        path = self.path_for(oid, idx)
        self.dir.mkdir(parents=True, exist_ok=True)
        now = time.time()
        with self.land_lock:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                return None
            if (st.st_dev, st.st_ino) != identity:
                log.info("not quarantining %s: replaced since it was checked", path)
                return None
            ms = int(now * 1000)
            while any((self.dir / (quarantine_name(oid, idx, ms) + ext)).exists()
                      for ext in ("", ".json")):
                ms += 1                      # the same fragment twice in one millisecond
            dest = self.dir / quarantine_name(oid, idx, ms)
            os.rename(path, dest)
        sidecar = {"object_id": oid, "index": idx, "problem": problem, "detected_by": detected_by,
                   "detected_unix": round(now, 3)}
        with open(dest.with_name(dest.name + ".json"), "x") as f:
            json.dump(sidecar, f)
            f.flush()
            os.fsync(f.fileno())
        fsync_dir(self.dir)
        fsync_dir(path.parent)
        self.corrupt.labels(detected_by).inc()
        log.error("quarantined %s as %s (%s, found by %s)", path, dest.name, problem, detected_by)
        return dest.name

    def count(self) -> int:
        """How many fragment files are in quarantine now."""
        try:
            with os.scandir(self.dir) as it:
                return sum(1 for e in it if QUARANTINE_NAME.match(e.name))
        except FileNotFoundError:
            return 0

    def items(self) -> list[dict]:
        """Every quarantined file, in name order, with its sidecar (``GET /quarantine``)."""
        try:
            names = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return []
        items = []
        for name in names:
            m = QUARANTINE_NAME.match(name)
            if not m:
                continue
            try:
                with open(self.dir / (name + ".json")) as f:
                    item = json.load(f)
            except (FileNotFoundError, ValueError):      # a crash between the move and the sidecar
                item = {"object_id": m.group(1), "index": int(m.group(2)), "problem": None,
                        "detected_by": None, "detected_unix": int(m.group(3)) / 1000}
            item["file"] = name
            items.append(item)
        return items
