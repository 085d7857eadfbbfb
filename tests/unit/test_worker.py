"""The one shape of background work (rpc/worker.py): rounds, failures, pauses, stop, metrics."""
import asyncio

import prometheus_client
import pytest

from minis3.rpc.worker import Worker


def metric(registry, name: str, worker: str) -> float:
    return registry.get_sample_value(name, {"worker": worker})


@pytest.mark.asyncio
async def test_rounds_run_again_after_a_failure_and_are_counted():
    registry = prometheus_client.CollectorRegistry()
    seen = []

    async def round_():
        seen.append(len(seen))
        if len(seen) == 2:
            raise RuntimeError("disk on fire")

    w = Worker("t", round_, 0.001, registry=registry)
    w.start()
    while len(seen) < 5:
        await asyncio.sleep(0.001)
    await w.stop()
    st = w.status()
    assert st["name"] == "t" and st["running"] is False
    assert st["rounds"] >= 5 and st["failures"] == 1
    assert st["last_error"] is None                        # the rounds after the failure went well
    assert metric(registry, "minis3_worker_rounds_total", "t") == st["rounds"]
    assert metric(registry, "minis3_worker_failures_total", "t") == 1
    assert metric(registry, "minis3_worker_last_round_seconds", "t") >= 0


@pytest.mark.asyncio
async def test_a_failed_round_is_reported_until_one_succeeds():
    w = Worker("f", lambda: _raise(ValueError("bad map")), 3600, registry=prometheus_client.CollectorRegistry())
    assert await w.run_round() is False
    assert w.status()["last_error"] == "ValueError('bad map')" and w.status()["failures"] == 1


async def _raise(exc):
    raise exc


@pytest.mark.asyncio
async def test_a_pause_function_decides_when_the_next_round_starts():
    wake = asyncio.Event()
    rounds = []

    async def pause():
        await wake.wait()
        wake.clear()

    async def round_():
        rounds.append(1)

    w = Worker("p", round_, pause, registry=prometheus_client.CollectorRegistry())
    w.start()
    await asyncio.sleep(0.05)
    assert len(rounds) == 1                                  # waiting for the wake
    wake.set()
    await asyncio.sleep(0.05)
    assert len(rounds) == 2
    await w.stop()


@pytest.mark.asyncio
async def test_stop_cancels_a_round_in_progress_and_start_twice_runs_one_loop():
    started, cancelled = asyncio.Event(), []

    async def round_():
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(1)
            raise

    w = Worker("c", round_, 0, registry=prometheus_client.CollectorRegistry())
    w.start()
    w.start()
    await started.wait()
    assert w.status()["running"]
    await w.stop()
    assert cancelled == [1] and not w.status()["running"]
    assert w.status()["rounds"] == 0 and w.status()["failures"] == 0     # a cancelled round is neither
