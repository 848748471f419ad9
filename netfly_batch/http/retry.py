"""What to retry and how long to wait: pure decisions, plus the tenacity wiring."""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from ..errors import HTTPStatusError, InvalidOutputError, RequestError
from ..settings import RetrySettings

Sleep = Callable[[float], Awaitable[None]]

# Header names that carry "wait this long", most precise first. LiteLLM renames an
# upstream Retry-After to `llm_provider-retry-after`.
_RETRY_AFTER_MS = ("retry-after-ms", "llm_provider-retry-after-ms")
_RETRY_AFTER = ("retry-after", "llm_provider-retry-after")


def is_retryable(error: BaseException) -> bool:
    """True when another attempt could succeed."""
    return isinstance(error, RequestError) and error.retryable


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asked us to wait, from `retry-after-ms` or `Retry-After`."""
    lowered: dict[str, str] = {}  # header names are case-insensitive, even in a plain dict
    for key, text in headers.items():
        lowered.setdefault(key.lower(), text)
    for name in _RETRY_AFTER_MS:
        value = lowered.get(name)
        if value is not None:
            seconds = _parse_seconds(value)
            if seconds is not None:
                return seconds / 1000.0
    for name in _RETRY_AFTER:
        value = lowered.get(name)
        if value is None:
            continue
        seconds = _parse_seconds(value)
        if seconds is None:
            seconds = _seconds_until_date(value, time.time() if now is None else now)
        if seconds is not None:
            return seconds
    return None


def wait_before(attempt: int, error: BaseException | None, policy: RetrySettings) -> float:
    """Seconds to sleep after failed attempt number `attempt` (1-based); none after an
    invalid answer (the server is fine: ask again at once)."""
    if isinstance(error, InvalidOutputError):
        return 0.0
    if isinstance(error, HTTPStatusError) and error.retry_after_s is not None:
        return min(error.retry_after_s, policy.max_retry_after_s)
    backoff = policy.initial_wait_s * 2.0 ** (attempt - 1)
    return min(policy.max_wait_s, backoff + random.uniform(0, policy.jitter_s))


def retrying(policy: RetrySettings, sleep: Sleep, done: int = 0) -> AsyncRetrying:
    """A tenacity loop for the attempts left after `done`; retryable errors only.

    Attempt numbers inside it are tenacity's plus `done`. Callers make their first
    attempt outside any loop (the common, successful case costs nothing) and come here
    only after a retryable failure, having slept `wait_before(1, ...)`.
    """

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        return wait_before(state.attempt_number + done, error, policy)

    return AsyncRetrying(
        stop=stop_after_attempt(max(1, policy.max_attempts - done)),
        retry=retry_if_exception(is_retryable),
        wait=wait,
        sleep=sleep,
        reraise=True,
    )


def _parse_seconds(value: str) -> float | None:
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if seconds != seconds or seconds < 0:  # NaN or negative
        return None
    return seconds


def _seconds_until_date(value: str, now: float) -> float | None:
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": a UTC time, not the local one
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)
