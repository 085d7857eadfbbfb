"""Keep the garbage collector away from the index's records.

CPython frees an object as soon as nothing refers to it (reference counting).
On top of that, a *cyclic* collector looks for groups of objects that refer to
each other and to nothing else; its oldest generation walks every container
object that has lived a while. A metadata process holding a million records
has millions of them (each record is a dict, most hold dicts), so one such
walk measured 420 ms on this machine: the event loop stands still that long,
a read waits for it, and lookups' 99th percentile shows it. It comes back each
time the objects that survived younger collections reach a quarter of the old
ones, which a steady stream of traced requests does within minutes.

Records never form cycles: they are replaced, never changed in place, and
refer only to strings, numbers and small dicts of those. So they need no
cyclic collection; reference counting frees a replaced record at once. After
the records have grown by ``every`` since the last time (and once after
recovery), :meth:`Freezer.maybe` collects what is not yet frozen (so no
cyclic garbage is frozen with it) and then ``gc.freeze()`` moves every live
object into the permanent generation, which collections never walk. Cost: one
collection of the objects made since the last freeze, a few tens of ms per
25,000 new records (the default step), while writes are coming in anyway.
"""
from __future__ import annotations

import gc
import logging
import time

log = logging.getLogger("minis3.meta.gc")


class Freezer:
    def __init__(self, every: int = 25_000):
        self.every = every
        self.frozen_at = -1           # records counted at the last freeze (-1: never)
        self.freezes = 0
        self.last_ms = 0.0

    def maybe(self, records: int) -> bool:
        """Freeze if the records grew by ``every`` since the last freeze (or never froze)."""
        if self.frozen_at >= 0 and records - self.frozen_at < self.every:
            return False
        t0 = time.perf_counter()
        gc.collect()
        gc.freeze()
        self.last_ms = (time.perf_counter() - t0) * 1000
        self.frozen_at, self.freezes = records, self.freezes + 1
        log.info("gc.freeze() at %d records: %d objects now outside the cyclic collector's walks (%.1f ms)",
                 records, gc.get_freeze_count(), self.last_ms)
        return True
