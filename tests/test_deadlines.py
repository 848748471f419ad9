"""The shared attempt clock: limits fire late by at most a tick, never early."""

from __future__ import annotations

import asyncio

import pytest

from netfly_batch.http.deadlines import AttemptClock, AttemptWatch


async def silent_attempt(clock: AttemptClock, seconds: float = 10.0) -> AttemptWatch:
    """One 'attempt' that waits in silence under the clock; its watch afterwards."""
    watch = clock.watch()
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError as failure:
        if not watch.ended_by_limit(failure):
            raise
    finally:
        watch.stop()
    return watch


async def timed(clock: AttemptClock) -> tuple[float, str | None]:
    loop = asyncio.get_running_loop()
    started = loop.time()
    watch = await silent_attempt(clock)
    return loop.time() - started, watch.fired


async def test_idle_limit_fires_after_the_limit_and_within_a_tick():
    clock = AttemptClock(idle_s=0.2, total_s=5.0)
    took, fired = await timed(clock)
    assert fired == "idle"
    assert 0.2 <= took < 0.2 + clock.tick_s + 0.15
    assert asyncio.current_task().cancelling() == 0


async def test_total_limit_fires_when_it_is_the_shorter():
    clock = AttemptClock(idle_s=5.0, total_s=0.2)
    took, fired = await timed(clock)
    assert fired == "total"
    assert 0.2 <= took < 0.2 + clock.tick_s + 0.15


async def test_an_attempt_within_its_limits_is_left_alone():
    clock = AttemptClock(idle_s=0.3, total_s=1.0)
    watch = await silent_attempt(clock, seconds=0.1)
    assert watch.fired is None


async def test_a_paused_attempt_never_fires_and_counts_from_its_resume():
    clock = AttemptClock(idle_s=0.1, total_s=0.3)
    loop = asyncio.get_running_loop()
    watch = clock.watch()
    watch.pause()
    await asyncio.sleep(0.5)  # past both limits, but paused
    assert watch.fired is None
    watch.resume()
    resumed = loop.time()
    ended_by_limit = False
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError as failure:
        ended_by_limit = watch.ended_by_limit(failure)
    watch.stop()
    assert ended_by_limit
    assert watch.fired == "total"  # the total limit had passed: it fires once resumed
    assert loop.time() - resumed < 0.1


async def test_an_outside_cancel_at_the_same_time_is_not_swallowed():
    """The run is stopping while a limit fires: the cancellation must go on."""
    clock = AttemptClock(idle_s=5.0, total_s=50.0)
    task = asyncio.ensure_future(silent_attempt(clock))
    await asyncio.sleep(0.05)  # the task waits
    (watch,) = clock._watches
    watch.last -= 10  # as if silent for longer than its idle limit
    clock._check()  # the limit fires now, and in the same step the run cancels:
    task.cancel()  # two cancellations pending before the task runs again
    assert task.cancelling() == 2
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_the_clock_sleeps_when_no_attempt_is_in_flight():
    clock = AttemptClock(idle_s=0.05, total_s=1.0)
    watch = clock.watch()
    assert clock._timer is not None
    watch.stop()
    await asyncio.sleep(clock.tick_s * 3)
    assert clock._timer is None
    assert watch.fired is None


def test_tick_follows_the_shortest_limit_within_bounds():
    assert AttemptClock(120.0, 900.0).tick_s == 1.0
    assert AttemptClock(0.3, 900.0).tick_s == pytest.approx(0.03)
    assert AttemptClock(0.001, 900.0).tick_s == 0.005
