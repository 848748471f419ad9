"""The idle and total time limits of HTTP attempts, checked by one clock per client.

Arming and cancelling a timer costs about 3 µs on uvloop, as much as parsing a dozen
stream chunks, and aiohttp's own `total` timeout arms one per request. Instead one
`AttemptClock` per client wakes every `tick` seconds while attempts are in flight and
checks them all. Activity is the response stream's byte count, so reading costs nothing
extra, and bytes that arrived while the event loop was busy elsewhere count as well.
A limit fires at most one tick late, never early, by cancelling the attempt's task
(as `asyncio.timeout` does, without its per-attempt cost); the attempt then asks
`ended_by_limit()` whether the cancellation was the watch's own.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import aiohttp

Limit = Literal["idle", "total"]

MAX_TICK_S = 1.0
MIN_TICK_S = 0.005


class AttemptWatch:
    """One attempt's clock entry: cancels the attempt's task when a limit passes."""

    __slots__ = (
        "_cancelling",
        "_clock",
        "_seen",
        "_stream",
        "_task",
        "ends",
        "fired",
        "last",
        "paused",
    )

    def __init__(self, clock: AttemptClock, task: asyncio.Task[Any], now: float) -> None:
        self._clock = clock
        self._task = task
        self._cancelling = task.cancelling()
        self._stream: aiohttp.StreamReader | None = None
        self._seen = 0
        self.last = now
        self.ends = now + clock.total_s
        self.paused = False
        self.fired: Limit | None = None

    def follow(self, stream: aiohttp.StreamReader) -> None:
        """The response head came (activity); from now on the body's byte count is."""
        self._stream = stream
        self._seen = stream.total_bytes
        self.last = self._clock.now()

    def pause(self) -> None:
        """The reader is away (a `stream()` consumer holds a fragment): never fire now."""
        self.paused = True

    def resume(self) -> None:
        """The reader is back, perhaps in another task: silence counts again from now."""
        task = asyncio.current_task()
        if task is not None and task is not self._task:
            self._task, self._cancelling = task, task.cancelling()
        self.paused = False
        self.last = self._clock.now()

    def stop(self) -> None:
        """The attempt is over."""
        self._clock.forget(self)

    def ended_by_limit(self, failure: BaseException) -> bool:
        """Whether `failure` is this watch's own cancellation (a limit passed).

        Call once, with whatever ended the attempt. A cancellation that also came from
        elsewhere (the run is stopping) is not the watch's: it must go on.
        """
        if self.fired is None:
            return False
        outer = self._task.uncancel() > self._cancelling
        return isinstance(failure, asyncio.CancelledError) and not outer

    def check(self, now: float) -> bool:
        """Fire if a limit has passed; True when the watch is done with."""
        stream = self._stream
        if stream is not None and stream.total_bytes != self._seen:
            self._seen = stream.total_bytes
            self.last = now
        if self.paused:
            return False
        if now - self.last >= self._clock.idle_s:
            self.fired = "idle"
        elif now >= self.ends:
            self.fired = "total"
        else:
            return False
        self._task.cancel()
        return True


class AttemptClock:
    """Watches every attempt of one client with a single periodic timer."""

    def __init__(self, idle_s: float, total_s: float) -> None:
        self.idle_s = idle_s
        self.total_s = total_s
        self.tick_s = min(MAX_TICK_S, max(MIN_TICK_S, min(idle_s, total_s) / 10))
        self._watches: set[AttemptWatch] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    def watch(self) -> AttemptWatch:
        """Start watching an attempt that runs in the current task."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop: nothing of the old one carries over
            self._loop, self._timer = loop, None
            self._watches.clear()
        now = loop.time()
        task = asyncio.current_task(loop)
        assert task is not None
        watch = AttemptWatch(self, task, now)
        self._watches.add(watch)
        if self._timer is None:
            self._timer = loop.call_at(now + self.tick_s, self._check)
        return watch

    def forget(self, watch: AttemptWatch) -> None:
        """An attempt ended."""
        self._watches.discard(watch)

    def now(self) -> float:
        """The event loop's clock."""
        return self._loop.time() if self._loop is not None else 0.0

    def _check(self) -> None:
        loop = self._loop
        assert loop is not None
        now = loop.time()
        done = [watch for watch in self._watches if watch.check(now)]
        self._watches.difference_update(done)
        self._timer = loop.call_at(now + self.tick_s, self._check) if self._watches else None
