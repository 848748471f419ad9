"""Retry decisions: Retry-After parsing, the wait before each attempt, what is retryable."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from netfly_batch.errors import HTTPStatusError, RequestError, StreamError, TransportError
from netfly_batch.http.retry import is_retryable, parse_retry_after, retrying, wait_before
from netfly_batch.settings import RetrySettings

NOW = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC).timestamp()

RETRY_AFTER = [
    ("ms", {"retry-after-ms": "1500"}, 1.5),
    ("ms float", {"retry-after-ms": "12.5"}, 0.0125),
    ("seconds int", {"Retry-After": "7"}, 7.0),
    ("seconds float", {"Retry-After": "2.5"}, 2.5),
    ("seconds with spaces", {"retry-after": " 3 "}, 3.0),
    ("zero", {"Retry-After": "0"}, 0.0),
    ("HTTP-date", {"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT"}, 30.0),
    ("HTTP-date -0000 is UTC", {"Retry-After": "Wed, 21 Oct 2015 07:29:00 -0000"}, 60.0),
    ("HTTP-date +0100", {"Retry-After": "Wed, 21 Oct 2015 08:28:10 +0100"}, 10.0),
    ("HTTP-date in the past", {"Retry-After": "Wed, 21 Oct 2015 07:00:00 GMT"}, 0.0),
    ("LiteLLM renamed", {"llm_provider-retry-after": "4"}, 4.0),
    ("LiteLLM renamed ms", {"llm_provider-retry-after-ms": "250"}, 0.25),
    ("ms wins over seconds", {"Retry-After": "9", "retry-after-ms": "100"}, 0.1),
    ("bad ms falls back to seconds", {"retry-after-ms": "soon", "Retry-After": "3"}, 3.0),
    ("garbage", {"Retry-After": "soon"}, None),
    ("negative", {"Retry-After": "-1"}, None),
    ("NaN", {"Retry-After": "nan"}, None),
    ("empty", {"Retry-After": ""}, None),
    ("bad date", {"Retry-After": "Wed, 99 Foo 2015"}, None),
    ("garbage then LiteLLM", {"Retry-After": "soon", "llm_provider-retry-after": "5"}, 5.0),
    ("no header", {"Content-Type": "application/json"}, None),
]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [case[1:] for case in RETRY_AFTER],
    ids=[case[0] for case in RETRY_AFTER],
)
def test_parse_retry_after(headers, expected):
    """Each header form gives the seconds the server asked for, or None."""
    assert parse_retry_after(headers, now=NOW) == expected
    proxy = CIMultiDictProxy(CIMultiDict(headers))  # what aiohttp hands over
    assert parse_retry_after(proxy, now=NOW) == expected


def test_retry_after_date_uses_the_clock_by_default():
    """Without `now`, an HTTP-date is measured from the current time."""
    soon = datetime.fromtimestamp(time.time() + 100, tz=UTC)
    seconds = parse_retry_after({"Retry-After": soon.strftime("%a, %d %b %Y %H:%M:%S GMT")})
    assert seconds is not None
    assert 97 <= seconds <= 100


@pytest.fixture
def tokyo_time(monkeypatch):
    """Run the test with the local time zone nine hours east of UTC."""
    monkeypatch.setenv("TZ", "JST-9")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("tokyo_time")
def test_retry_after_date_does_not_depend_on_the_local_time_zone():
    """A -0000 HTTP-date is read as UTC, not as local time."""
    headers = {"Retry-After": "Wed, 21 Oct 2015 07:29:00 -0000"}
    assert parse_retry_after(headers, now=NOW) == 60.0


def policy(**changes: float) -> RetrySettings:
    """The default retry settings with some changes."""
    return RetrySettings(**changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (5, 32.0), (6, 60.0), (30, 60.0)],
    ids=lambda value: str(value),
)
def test_backoff_doubles_and_is_capped(attempt, expected):
    """Without jitter the wait is 2, 4, 8, ... seconds, never above max_wait_s."""
    error = TransportError("dropped")
    assert wait_before(attempt, error, policy(jitter_s=0.0)) == expected


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 5])
def test_jitter_stays_within_its_range(attempt):
    """The default jitter adds between 0 and jitter_s seconds, and does vary."""
    base = 2.0 * 2 ** (attempt - 1)
    waits = [wait_before(attempt, TransportError("x"), policy()) for _ in range(300)]
    assert all(base <= wait <= base + 1.0 for wait in waits)
    assert max(waits) - min(waits) > 0.5


def test_jitter_never_lifts_the_wait_above_the_cap():
    """Backoff plus jitter is still capped at max_wait_s."""
    waits = {wait_before(6, TransportError("x"), policy(max_wait_s=60.0)) for _ in range(100)}
    assert waits == {60.0}


def test_max_wait_applies_to_the_first_wait_too():
    """A small max_wait_s caps even the first backoff."""
    assert wait_before(1, TransportError("x"), policy(max_wait_s=0.5)) == 0.5


@pytest.mark.parametrize(
    ("retry_after_s", "expected"),
    [(7.0, 7.0), (0.0, 0.0), (119.0, 119.0), (500.0, 120.0)],
    ids=["seven", "zero", "just under the cap", "capped"],
)
def test_retry_after_replaces_the_backoff(retry_after_s, expected):
    """A server's Retry-After is used as is (capped at max_retry_after_s), at any attempt."""
    error = HTTPStatusError(429, "slow down", retry_after_s=retry_after_s)
    for attempt in (1, 4):
        assert wait_before(attempt, error, policy()) == expected


def test_retry_after_cap_is_configurable():
    """max_retry_after_s bounds what the server may ask for."""
    error = HTTPStatusError(503, "busy", retry_after_s=30.0)
    assert wait_before(1, error, policy(max_retry_after_s=5.0)) == 5.0


@pytest.mark.parametrize(
    "error",
    [HTTPStatusError(503, "busy"), StreamError("bad chunk"), None],
    ids=["status without Retry-After", "stream error", "no error"],
)
def test_backoff_when_the_server_names_no_wait(error):
    """Without a Retry-After the exponential backoff applies."""
    assert wait_before(3, error, policy(jitter_s=0.0)) == 8.0


RETRYABLE = [
    ("HTTP 408", HTTPStatusError(408, "timeout"), True),
    ("HTTP 409", HTTPStatusError(409, "conflict"), True),
    ("HTTP 429", HTTPStatusError(429, "slow down"), True),
    ("HTTP 500", HTTPStatusError(500, "oops"), True),
    ("HTTP 502", HTTPStatusError(502, "bad gateway"), True),
    ("HTTP 503", HTTPStatusError(503, "busy"), True),
    ("HTTP 504", HTTPStatusError(504, "gateway timeout"), True),
    ("HTTP 400", HTTPStatusError(400, "bad request"), False),
    ("HTTP 401", HTTPStatusError(401, "no key"), False),
    ("HTTP 403", HTTPStatusError(403, "forbidden"), False),
    ("HTTP 404", HTTPStatusError(404, "not found"), False),
    ("HTTP 422", HTTPStatusError(422, "unprocessable"), False),
    ("transport", TransportError("dropped"), True),
    ("unreachable", TransportError("refused", unreachable=True), True),
    ("stream error", StreamError("bad chunk"), True),
    ("stream error, final", StreamError("too big", retryable=False), False),
    ("request error", RequestError("x", retryable=True), True),
    ("request error, final", RequestError("x", retryable=False), False),
    ("not ours", ValueError("x"), False),
    ("keyboard interrupt", KeyboardInterrupt(), False),
]


@pytest.mark.parametrize(
    ("error", "expected"), [case[1:] for case in RETRYABLE], ids=[case[0] for case in RETRYABLE]
)
def test_is_retryable(error, expected):
    """Only RequestErrors that say so are retried; 408/409/429/5xx yes, other 4xx no."""
    assert is_retryable(error) is expected


class Script:
    """An async callable that raises the scripted errors in turn, then returns "done"."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


async def run(script: Script, settings: RetrySettings, sleep) -> str:
    """Call `script` inside the tenacity loop built by `retrying()`."""
    result = ""
    async for attempt in retrying(settings, sleep):
        with attempt:
            result = await script()
    return result


async def test_retrying_retries_then_succeeds(fake_sleep):
    """Retryable failures are retried, sleeping the backoff between attempts."""
    script = Script(TransportError("a"), HTTPStatusError(503, "b"))
    assert await run(script, policy(), fake_sleep) == "done"
    assert script.calls == 3
    assert len(fake_sleep.delays) == 2
    assert 2.0 <= fake_sleep.delays[0] <= 3.0
    assert 4.0 <= fake_sleep.delays[1] <= 5.0


async def test_retrying_honours_retry_after(fake_sleep):
    """A failure carrying Retry-After makes the loop sleep that long."""
    script = Script(HTTPStatusError(429, "slow", retry_after_s=7.5))
    assert await run(script, policy(), fake_sleep) == "done"
    assert fake_sleep.delays == [7.5]


async def test_retrying_stops_at_a_final_error(fake_sleep):
    """A non-retryable error is raised as is after one attempt, without sleeping."""
    error = HTTPStatusError(401, "no key")
    script = Script(error)
    with pytest.raises(HTTPStatusError) as caught:
        await run(script, policy(), fake_sleep)
    assert caught.value is error
    assert script.calls == 1
    assert fake_sleep.delays == []


async def test_retrying_gives_up_after_max_attempts(fake_sleep):
    """After max_attempts failures the last error itself is raised (not a RetryError)."""
    errors = [TransportError(f"failure {n}") for n in range(1, 6)]
    script = Script(*errors)
    with pytest.raises(TransportError) as caught:
        await run(script, policy(max_attempts=3), fake_sleep)
    assert caught.value is errors[2]
    assert script.calls == 3
    assert len(fake_sleep.delays) == 2


async def test_retrying_never_retries_foreign_exceptions(fake_sleep):
    """An exception outside the RequestError tree propagates at once."""
    script = Script(KeyError("bug"))
    with pytest.raises(KeyError):
        await run(script, policy(), fake_sleep)
    assert script.calls == 1
