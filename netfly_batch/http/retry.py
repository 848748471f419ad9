"""What to retry and how long to wait: pure decisions, plus the tenacity wiring."""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

import orjson
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from ..errors import HTTPStatusError, InvalidOutputError, RequestError
from ..settings import RetrySettings
from ..wire.answer import Completion
from ..wire.validation import reask_body

Sleep = Callable[[float], Awaitable[None]]
# One HTTP attempt: (payload, attempt number) -> the accepted answer, or a RequestError.
Attempt = Callable[[bytes, int], Awaitable[Completion]]
# Seconds to wait after failed attempt number n (1-based) that raised the error.
WaitBefore = Callable[[int, BaseException | None], float]

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


def retrying(
    policy: RetrySettings, sleep: Sleep, done: int = 0, wait: WaitBefore | None = None
) -> AsyncRetrying:
    """A tenacity loop for the attempts left after `done`; retryable errors only.

    Attempt numbers inside it are tenacity's plus `done`. Callers make their first
    attempt outside any loop (the common, successful case costs nothing) and come here
    only after a retryable failure, having slept `wait_before(1, ...)`. `wait` replaces
    `wait_before` (a fleet does not back off when it fails over to a fresh endpoint).
    """

    def wait_for(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        number = state.attempt_number + done
        return wait(number, error) if wait else wait_before(number, error, policy)

    return AsyncRetrying(
        stop=stop_after_attempt(max(1, policy.max_attempts - done)),
        retry=retry_if_exception(is_retryable),
        wait=wait_for,
        sleep=sleep,
        reraise=True,
    )


async def with_retries(
    body: dict[str, Any],
    attempt: Attempt,
    policy: RetrySettings,
    sleep: Sleep,
    *,
    reask: bool = False,
    wait: WaitBefore | None = None,
) -> Completion:
    """Send `body` by `attempt` until an answer is accepted or retrying cannot help.

    With `reask`, an attempt after an invalid answer shows the model that answer and its
    problem. The answer's `attempts` says how many were made; a raised `RequestError`
    carries its own count.
    """
    payload = orjson.dumps(body)
    try:
        return await attempt(payload, 1)
    except RequestError as error:
        if not is_retryable(error) or policy.max_attempts <= 1:
            raise
        if reask and isinstance(error, InvalidOutputError):
            payload = orjson.dumps(reask_body(body, error))
        await sleep(wait(1, error) if wait else wait_before(1, error, policy))
    number = 1
    async for retry in retrying(policy, sleep, done=1, wait=wait):
        with retry:
            number = retry.retry_state.attempt_number + 1
            try:
                completion = await attempt(payload, number)
            except InvalidOutputError as error:
                if reask:
                    payload = orjson.dumps(reask_body(body, error))
                raise
    completion.attempts = number
    return completion


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
