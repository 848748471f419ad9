"""The shared attempt clock: limits fire late by at most a tick, never early."""

from __future__ import annotations

import asyncio

import pytest

from netfly_batch.deadlines import AttemptClock


async def idle_until_cancelled(clock: AttemptClock) -> tuple[float, str | None]:
    """Run one silent 'attempt' under the clock; how long until it was ended, and why."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(None) as deadline:
            watch = clock.watch(deadline)
            await asyncio.sleep(10)
    watch.stop()
    return loop.time() - started, watch.fired


async def test_idle_limit_fires_after_the_limit_and_within_a_tick():
    clock = AttemptClock(idle_s=0.2, total_s=5.0)
    took, fired = await idle_until_cancelled(clock)
    assert fired == "idle"
    assert 0.2 <= took < 0.2 + clock.tick_s + 0.15


async def test_total_limit_fires_when_it_is_the_shorter():
    clock = AttemptClock(idle_s=5.0, total_s=0.2)
    took, fired = await idle_until_cancelled(clock)
    assert fired == "total"
    assert 0.2 <= took < 0.2 + clock.tick_s + 0.15


async def test_a_paused_attempt_never_fires_and_counts_from_its_resume():
    clock = AttemptClock(idle_s=0.1, total_s=0.3)
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(None) as deadline:
        watch = clock.watch(deadline)
        watch.pause()
        await asyncio.sleep(0.5)  # past both limits, but paused
        watch.resume()
        resumed = loop.time()
    assert watch.fired is None
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(None) as deadline:
            watch.stop()
            watch = clock.watch(deadline)
            await asyncio.sleep(10)
    assert watch.fired == "idle"
    assert loop.time() - resumed >= 0.1


async def test_the_clock_sleeps_when_no_attempt_is_in_flight():
    clock = AttemptClock(idle_s=0.05, total_s=1.0)
    async with asyncio.timeout(None) as deadline:
        watch = clock.watch(deadline)
        assert clock._timer is not None
    watch.stop()
    await asyncio.sleep(clock.tick_s * 3)
    assert clock._timer is None
    assert watch.fired is None


def test_tick_follows_the_shortest_limit_within_bounds():
    assert AttemptClock(120.0, 900.0).tick_s == 1.0
    assert AttemptClock(0.3, 900.0).tick_s == pytest.approx(0.03)
    assert AttemptClock(0.001, 900.0).tick_s == 0.005
