"""Flow control for the pool: rate limits, adaptive concurrency, pauses, the breaker.

`FlowControl` is the `AttemptGate` the client calls around every HTTP attempt:
`started = await enter(cost)` before it (waits for the request and token buckets, the
in-flight limit and any pool-wide pause), `leave(started, error, headers)` after it
(adapts the limit, reads rate-limit headers, counts 429s, feeds the breaker).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..durations import parse_duration
from ..errors import HTTPStatusError, InvalidOutputError, RequestError, TransportError
from ..settings import BREAKER_THRESHOLD

Clock = Callable[[], float]

MAX_POOL_PAUSE_S = 60.0


@dataclass(frozen=True, slots=True)
class FlowSettings:
    """The user's limits: --concurrency, --rpm, --tpm, --adaptive, --breaker-threshold."""

    concurrency: int
    rpm: float | None = None
    tpm: float | None = None
    adaptive: bool = False
    breaker_threshold: int = BREAKER_THRESHOLD  # 0: never trip
    max_pause_s: float = MAX_POOL_PAUSE_S


def estimate_tokens(body: Mapping[str, Any]) -> int:
    """Tokens a request may use: characters of the messages / 4, plus max_tokens."""
    return estimate_input_tokens(body) + (output_limit(body) or 0)


def estimate_input_tokens(body: Mapping[str, Any]) -> int:
    """The prompt's tokens, estimated as characters of the messages / 4."""
    chars = 0
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            chars += sum(
                len(str(part.get("text", ""))) for part in content if isinstance(part, dict)
            )
    return chars // 4


def output_limit(body: Mapping[str, Any]) -> int | None:
    """The most tokens the answer may have (`max_tokens` or `max_completion_tokens`)."""
    limit = body.get("max_tokens") or body.get("max_completion_tokens")
    return limit if isinstance(limit, int) and not isinstance(limit, bool) else None


def is_refusal(error: RequestError | None) -> bool:
    """The endpoint refused us, as the breaker counts it: unreachable (connection refused,
    DNS, TLS), or 401/403."""
    return (isinstance(error, TransportError) and error.unreachable) or (
        isinstance(error, HTTPStatusError) and error.status in (401, 403)
    )


class TokenBucket:
    """A smooth rate limit: `rate_per_s` refill, at most `capacity` saved up.

    A take larger than the whole bucket waits for a full bucket and then goes alone
    (the bucket goes into debt), so it never waits forever.
    """

    def __init__(self, rate_per_s: float, capacity: float, clock: Clock = time.monotonic) -> None:
        self.rate_per_s = rate_per_s
        self.capacity = max(1.0, capacity)
        self._tokens = self.capacity
        self._clock = clock
        self._updated = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate_per_s)
        self._updated = now

    def wait_s(self, amount: float) -> float:
        """Seconds until `amount` (or a full bucket, if larger) is available."""
        self._refill()
        missing = min(amount, self.capacity) - self._tokens
        return max(0.0, missing / self.rate_per_s)

    async def take(self, amount: float) -> None:
        """Wait until `amount` may be spent, then spend it (first come, first served)."""
        async with self._lock:
            while (delay := self.wait_s(amount)) > 0:  # noqa: ASYNC110 - a timed refill, no event
                await asyncio.sleep(delay)
            self._tokens -= amount


class FlowControl:
    """In-flight limit (fixed or AIMD), rate buckets, pool pauses, 429 count, breaker."""

    def __init__(
        self,
        settings: FlowSettings,
        clock: Clock = time.monotonic,
        on_trip: Callable[[RequestError], None] | None = None,
    ) -> None:
        self.settings = settings
        self._on_trip = on_trip
        self._clock = clock
        self.limit = float(settings.concurrency)
        self.in_flight = 0
        self.attempts = 0
        self.rate_limited = 0
        self.invalid_output = 0  # attempts whose answer was not what was asked for
        self.consecutive_refusals = 0
        self.tripped_by: RequestError | None = None
        self._paused_until = 0.0
        self._last_decrease = -1.0e9
        self._changed = asyncio.Event()
        self._requests = (
            TokenBucket(settings.rpm / 60.0, settings.rpm / 60.0, clock) if settings.rpm else None
        )
        self._tokens = (
            TokenBucket(settings.tpm / 60.0, settings.tpm / 60.0, clock) if settings.tpm else None
        )

    @property
    def current_limit(self) -> int:
        """The in-flight limit in force now."""
        return max(1, int(self.limit))

    async def enter(self, cost: int = 0) -> float:
        """Wait for a pool slot, the end of any pause, and the rate buckets.

        Returns the attempt's start time, to hand back to `leave()`.
        """
        while True:
            pause = self._paused_until - self._clock()
            if pause > 0:
                await asyncio.sleep(pause)
                continue
            if self.in_flight < self.current_limit:
                break
            self._changed.clear()
            await self._changed.wait()
        self.in_flight += 1
        try:
            if self._requests is not None:
                await self._requests.take(1)
            if self._tokens is not None and cost:
                await self._tokens.take(cost)
        except BaseException:
            self.in_flight -= 1
            self._changed.set()
            raise
        return self._clock()

    def leave(
        self, started: float, error: RequestError | None, headers: Mapping[str, str] | None
    ) -> None:
        """The attempt that `enter()` started at `started` ended: free its slot and learn."""
        self.in_flight -= 1
        self.attempts += 1
        if headers is not None and self.settings.adaptive:
            self._read_rate_limit_headers(headers)
        if isinstance(error, HTTPStatusError) and error.status in (429, 503):
            if error.status == 429:
                self.rate_limited += 1
            if error.status == 429 or error.retry_after_s is not None:
                self._throttled(started, error.retry_after_s)
        elif isinstance(error, InvalidOutputError):
            self.invalid_output += 1
        elif error is None and self.settings.adaptive:
            self.limit = min(float(self.settings.concurrency), self.limit + 1.0 / self.limit)
        self._watch_for_dead_endpoint(error)
        self._changed.set()

    def _throttled(self, started: float, retry_after_s: float | None) -> None:
        if not self.settings.adaptive:
            return
        if retry_after_s:
            self.pause(retry_after_s)
        # Halve once per round trip, as TCP does: a 429 for an attempt that was already
        # in flight at the last decrease says nothing new.
        if started >= self._last_decrease:
            self.limit = max(1.0, self.limit / 2)
            self._last_decrease = self._clock()

    def pause(self, seconds: float) -> None:
        """Start no attempt for `seconds` (capped), pool-wide."""
        until = self._clock() + min(seconds, self.settings.max_pause_s)
        self._paused_until = max(self._paused_until, until)

    def _read_rate_limit_headers(self, headers: Mapping[str, str]) -> None:
        for kind in ("requests", "tokens"):
            remaining = headers.get(f"x-ratelimit-remaining-{kind}")
            if remaining is None or remaining.strip() not in ("0", "0.0"):
                continue
            reset_s = parse_duration(headers.get(f"x-ratelimit-reset-{kind}", ""))
            if reset_s:
                self.pause(reset_s)

    @property
    def paused_until(self) -> float:
        """The clock time before which no attempt starts (a pause; 0: none yet)."""
        return self._paused_until

    @property
    def free_slots(self) -> int:
        """Attempts that may start now before the in-flight limit is reached."""
        return self.current_limit - self.in_flight

    def reset_breaker(self) -> None:
        """Forget the refusals counted and a trip: the endpoint answered again."""
        self.tripped_by = None
        self.consecutive_refusals = 0

    def _watch_for_dead_endpoint(self, error: RequestError | None) -> None:
        if not is_refusal(error):
            self.consecutive_refusals = 0
            return
        self.consecutive_refusals += 1
        threshold = self.settings.breaker_threshold
        if (
            threshold
            and self.consecutive_refusals >= threshold
            and self.tripped_by is None
            and error is not None
        ):
            self.tripped_by = error
            if self._on_trip is not None:
                self._on_trip(error)
