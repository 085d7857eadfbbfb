"""Background work in one shape: a loop of rounds, started and stopped with its process.

Every minis3 process has work that runs beside its requests: the frontend probes the storage
nodes, a storage node re-verifies its fragment files, a metadata replica syncs the partition
map, the scrubber probes the nodes and starts passes, and the index manager (in the
scrubber's process) looks for partitions to split. Each is a :class:`Worker`: a ``round``
coroutine run again and again with a ``pause`` between rounds. A round that raises is
counted, logged and retried next time; only ``stop()`` ends the loop.

They all report alike: ``status()`` (served in the process's ``GET /status`` under
``workers``, shown by ``minis3 status``) and three metrics in the process's registry,
labelled by worker: ``minis3_worker_rounds_total``, ``minis3_worker_failures_total`` and
``minis3_worker_last_round_seconds``.
"""
from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Awaitable, Callable

import prometheus_client

log = logging.getLogger("minis3.worker")

#: Each registry's worker metrics, made once per registry (weakly held: a registry gone
#: takes its metrics with it, and a new one never inherits them).
_FAMILIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _families(registry: prometheus_client.CollectorRegistry) -> tuple:
    """The worker metrics of one registry."""
    if registry not in _FAMILIES:
        _FAMILIES[registry] = (
            prometheus_client.Counter("minis3_worker_rounds", "Rounds a background worker finished",
                                      ["worker"], registry=registry),
            prometheus_client.Counter("minis3_worker_failures", "Rounds of a background worker that raised",
                                      ["worker"], registry=registry),
            prometheus_client.Gauge("minis3_worker_last_round_seconds", "How long a worker's last round took",
                                    ["worker"], registry=registry))
    return _FAMILIES[registry]


class Worker:
    """``round``: one round of the work. ``pause``: seconds between rounds, or a coroutine
    function that returns when the next round should start (woken early, say)."""

    def __init__(self, name: str, round: Callable[[], Awaitable[None]],
                 pause: float | Callable[[], Awaitable[None]], *,
                 registry: prometheus_client.CollectorRegistry = prometheus_client.REGISTRY):
        self.name, self.round, self.pause = name, round, pause
        self.rounds = self.failures = 0
        self.last_error: str | None = None
        self.last_round_s: float | None = None
        self.last_round_unix: float | None = None
        self._task: asyncio.Task | None = None
        rounds, failures, last = _families(registry)
        self._m_rounds, self._m_failures = rounds.labels(worker=name), failures.labels(worker=name)
        self._m_last = last.labels(worker=name)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"worker-{self.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            await self.run_round()
            if callable(self.pause):
                await self.pause()
            else:
                await asyncio.sleep(self.pause)

    async def run_round(self) -> bool:
        """One round now, counted; False if it raised (logged, not raised again)."""
        started = time.monotonic()
        try:
            await self.round()
            self.last_error = None
            ok = True
        except asyncio.CancelledError:
            raise
        except Exception as exc:        # keep working: a failed round is retried next time
            self.failures += 1
            self._m_failures.inc()
            self.last_error = repr(exc)
            log.exception("%s: a round failed; trying again", self.name)
            ok = False
        self.rounds += 1
        self._m_rounds.inc()
        self.last_round_s = time.monotonic() - started
        self.last_round_unix = time.time()
        self._m_last.set(self.last_round_s)
        return ok

    def status(self) -> dict:
        return {"name": self.name, "running": self.running, "rounds": self.rounds, "failures": self.failures,
                "last_error": self.last_error,
                "last_round_s": None if self.last_round_s is None else round(self.last_round_s, 4),
                "last_round_unix": None if self.last_round_unix is None else round(self.last_round_unix, 3)}
