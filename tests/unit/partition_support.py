"""Helpers for test modules that open a replica's partition files."""
from __future__ import annotations

import asyncio

from minis3.meta.partition import PartitionSet


async def quiesce(ps: PartitionSet) -> None:
    """Wait for background snapshots, then close (a test reopens the same files)."""
    for _ in range(500):
        if not any(p.wal.busy for p in ps.partitions):
            break
        await asyncio.sleep(0.01)
    for p in ps.partitions:
        p.wal.close()
