"""A metadata process's GC notes: fragments no version points to any more.

When an object version replaces or deletes one that had fragments, the
replica notes those fragments here (a frontend also notes the fragments of a
write that failed). The notes only say why a fragment became garbage: the
scrubber's inventory-based GC checks a quorum before deleting anything, and
forgets the notes it has dealt with.
"""
from __future__ import annotations

from ..core.hlc import HLC
from ..rpc import fastjson
from .partition import Partition
from .responses import json_response


class GCNotes:
    """The notes, in the ``gc`` table (``part``), keyed by their stamp and fragment id."""

    def __init__(self, part: Partition, hlc: HLC):
        self.part, self.hlc = part, hlc

    async def note(self, ec: dict, reason: str) -> None:
        """Note an object's fragments as garbage candidates (the scrubber removes them)."""
        ts = self.hlc.now()
        await self.part.write(f"{ts:020d}-{ec['id']}", {"ts": ts, "reason": reason, "ec": ec})

    async def add(self, request):
        body = await request.json(loads=fastjson.loads)
        await self.note(body["ec"], body.get("reason", "failed-write"))
        return json_response({"ok": True})

    async def list_notes(self, request):
        return json_response({"items": [{"id": k, **v} for k, v in self.part.table.items()]})

    async def forget(self, request):
        """Drop GC notes the scrubber has dealt with (its inventory-based GC
        removes every unreferenced fragment; the notes only say why)."""
        body = await request.json(loads=fastjson.loads)
        n = 0
        for k in body.get("ids", []):
            if k in self.part.table:
                await self.part.write(k, None)
                n += 1
        return json_response({"forgotten": n})
