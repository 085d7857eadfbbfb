"""The storage nodes as the scrubber sees them: which answer, which are gone, what they hold.

:class:`NodeWatch` probes every node (``GET /health``), remembers since when
a node has been down (one down longer than ``scrub.down_after_s`` is *gone*:
its fragments count as lost, ``plan.gone_nodes``) and when a node came back
(the recovery clock), and wakes the scrubber for a pass when a node returns
or goes. For a pass it asks the live nodes to audit their files
(``POST /audit``, then polls ``GET /audit``) and for their inventories and
quarantines.
"""
from __future__ import annotations

import asyncio
import logging
import time

import aiohttp

from ..storage.client import FragmentError, StorageClient
from . import plan as P
from .report import NODES_GONE, PassReport

log = logging.getLogger("minis3.scrub")

AUDIT_WAIT = 3600.0       # seconds a pass waits for the nodes' audits at most

#: node → {(object id, index): (size, age)}, of the nodes that answered.
Inventories = dict[str, dict[tuple[str, int], tuple[int, float]]]


class NodeWatch:
    """Every storage node's state. ``settings``: the topology's ``scrub``
    table (``down_after_s``)."""

    def __init__(self, session: aiohttp.ClientSession, storage: StorageClient, settings) -> None:
        self.session, self.storage, self.settings = session, storage, settings
        self.up: dict[str, bool] = {n: True for n in storage.urls}
        # node → when a probe first found it down (monotonic), while it stays down.
        # (A scrubber that restarts times a node down from its own start: later, never sooner.)
        self.down_since: dict[str, float] = {}
        self.gone_seen: set[str] = set()              # nodes already reported gone
        #: Nodes whose disk is full or failing (their /health says so): read from, never written to.
        self.full: set[str] = set()
        self.returned_at: float | None = None        # monotonic: a node came back, not yet all full
        self.returned_nodes: set[str] = set()
        #: Set when a pass should start now: a node came back, or is newly gone.
        self.wake = asyncio.Event()

    async def _probe(self, node_id: str) -> bool:
        try:
            async with self.session.get(self.storage.urls[node_id] + "/health",
                                        timeout=aiohttp.ClientTimeout(total=1.0)) as r:
                if r.status != 200:
                    return False
                doc = await r.json()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError):
            return False
        (self.full.add if doc.get("full") or doc.get("failing") else self.full.discard)(node_id)
        return True

    async def probe_all(self) -> set[str]:
        """Probe every node; the ones that answered. The recovery clock starts
        when the outage is over: a node came back and every node answers
        (reset while any is down)."""
        ids = list(self.storage.urls)
        results = await asyncio.gather(*(self._probe(n) for n in ids))
        now = time.monotonic()
        came_back = False
        for n, ok in zip(ids, results):
            if ok and not self.up.get(n, True):
                log.info("node %s is back: a pass starts now", n)
                self.returned_nodes.add(n)
                came_back = True
                self.wake.set()
            elif not ok and self.up.get(n, True):
                log.warning("node %s is down", n)
            if ok:
                self.down_since.pop(n, None)
            else:
                self.down_since.setdefault(n, now)
            self.up[n] = ok
        if not all(results):
            self.returned_at = None
        elif came_back:
            self.returned_at = now
        gone = self.gone()
        for n in sorted(gone - self.gone_seen):
            log.warning("node %s has been down %.0f s (scrub.down_after_s): its fragments are lost, "
                        "a pass rebuilds them on other nodes", n, now - self.down_since[n])
            self.wake.set()
        self.gone_seen = gone
        NODES_GONE.set(len(gone))
        return {n for n, ok in zip(ids, results) if ok}

    def gone(self) -> set[str]:
        """The nodes down for longer than ``scrub.down_after_s`` (plan.gone_nodes)."""
        return P.gone_nodes(self.down_since, time.monotonic(), self.settings.down_after_s)

    async def audit(self, nodes: set[str], rate: float, rep: PassReport) -> None:
        """Have every node in ``nodes`` audit all its files now, and wait for
        them (``AUDIT_WAIT`` at most); their findings are added to ``rep``."""
        async def one(n: str) -> dict | None:
            deadline = time.monotonic() + AUDIT_WAIT
            try:
                started = await self.storage.start_audit(n, rate)
                while True:
                    st = await self.storage.audit_status(n)
                    last = st.get("last_pass") or {}
                    if last.get("id", -1) >= started["pass"]:
                        return last
                    if not st.get("running"):
                        # The node restarted and forgot the request: its
                        # fragments are audited by its own next pass.
                        log.warning("audit on %s was lost (the node restarted?)", n)
                        return None
                    if time.monotonic() > deadline:
                        log.warning("audit on %s still running after %.0f s: going on without it", n, AUDIT_WAIT)
                        return None
                    await asyncio.sleep(0.2)
            except (FragmentError, aiohttp.ClientError, asyncio.TimeoutError, OSError, KeyError) as exc:
                log.warning("audit on %s failed: %s", n, exc)
                return None
        for last in await asyncio.gather(*(one(n) for n in sorted(nodes))):
            if last:
                rep.audit_bytes += last.get("bytes", 0)
                rep.audit_fragments += last.get("files", 0)
                rep.corrupt_found += last.get("corrupt", 0)

    async def inventories(self, nodes: set[str]) -> tuple[Inventories, dict[str, float],
                                                          dict[str, set[tuple[str, int]]]]:
        """Each node's inventory, when it was received (monotonic) and what
        it has quarantined; a node that does not answer is left out of all three."""
        inv: Inventories = {}
        received: dict[str, float] = {}
        quarantined: dict[str, set[tuple[str, int]]] = {}

        async def one(n: str) -> None:
            try:
                frags = {(oid, int(idx)): (size, age) for oid, idx, size, age in await self.storage.inventory(n)}
                q = {(it["object_id"], int(it["index"])) for it in await self.storage.quarantine(n)}
            except (FragmentError, aiohttp.ClientError, asyncio.TimeoutError, OSError, KeyError, ValueError) as exc:
                log.warning("inventory of %s failed: %s", n, exc)
                return
            inv[n], quarantined[n], received[n] = frags, q, time.monotonic()
        await asyncio.gather(*(one(n) for n in sorted(nodes)))
        return inv, received, quarantined
