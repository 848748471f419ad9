"""The aiohttp client: one shared connection pool, `ChatClient.complete()` and `stream()`.

One attempt is one whole HTTP request and its whole body (read by `response.py`). An
attempt succeeds only when its answer passes the acceptance check (`accept`, by default
`require_finish`: `[DONE]` or a clean close without a `finish_reason` is a truncated
stream, retryable, its partial text discarded).
aiohttp and asyncio exceptions are mapped to the `RequestError` tree; none escapes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any, Protocol

import aiohttp
import orjson

from ..errors import RequestError, TransportError, redact
from ..settings import ClientSettings, RetrySettings
from ..wire.answer import AnswerCheck, Completion, require_finish
from ..wire.assemble import AnswerBuilder
from .deadlines import AttemptClock, AttemptWatch
from .endpoints import Endpoint, endpoint_of
from .response import fold, status_error, texts, transport_error
from .retry import Sleep, retrying, with_retries


class AttemptGate(Protocol):
    """Called around every HTTP attempt (flow control: limits, pauses, the breaker)."""

    async def enter(self, cost: int) -> float:
        """Wait until an attempt of `cost` estimated tokens may start; return a start mark."""

    def leave(
        self, started: float, error: RequestError | None, headers: Mapping[str, str] | None
    ) -> None:
        """The attempt ended (error None: it succeeded); `headers` if a response came."""


class ChatClient:
    """A reusable client for one chat-completions URL (one connection pool).

    Use as `async with ChatClient(settings) as client: await client.complete(body)`.
    Thousands of concurrent calls share its pool; it never opens a session per call.
    """

    def __init__(
        self,
        settings: ClientSettings | None = None,
        retry: RetrySettings | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
        gate: AttemptGate | None = None,
        endpoint: Endpoint | None = None,
        accept: AnswerCheck = require_finish,
    ) -> None:
        """`endpoint`, when given, says where to connect instead of `settings`' fields;
        `accept` raises a `RequestError` for an answer that must not count (retried if
        the error says so)."""
        self.settings = settings or ClientSettings()
        self.retry = retry or RetrySettings()
        self.endpoint = endpoint or endpoint_of(self.settings)
        self._accept = accept
        self._sleep = sleep
        self._gate = gate
        self._url = self.endpoint.url
        self._headers = self.endpoint.headers()
        self._public_url = self.endpoint.public_url
        self._url_has_password = redact(f"{self.settings.proxy} {self._url}") != (
            f"{self.settings.proxy} {self._url}"
        )
        self._session: aiohttp.ClientSession | None = None
        self._clock = AttemptClock(self.settings.idle_timeout_s, self.settings.total_timeout_s)

    async def __aenter__(self) -> ChatClient:
        self._open()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            s = self.settings
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=s.connection_limit),
                # The total and idle limits are the clock's (no timer per request).
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=s.connect_timeout_s),
                trust_env=s.trust_env,
                json_serialize=lambda value: orjson.dumps(value).decode(),
                read_bufsize=2**16,
            )
        return self._session

    async def close(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def complete(
        self,
        body: dict[str, Any],
        cost: int = 0,
        accept: AnswerCheck | None = None,
        reask: bool = False,
    ) -> Completion:
        """Send `body` and return the whole answer, retrying as `self.retry` says.

        `cost` is the request's estimated tokens, for the gate's token budget. `accept`
        checks this request's answers after the client's own check; with `reask`, an
        attempt after an invalid answer shows the model that answer and its problem.
        Raises a `RequestError` whose `attempts` says how many HTTP attempts were made.
        """
        return await with_retries(
            body,
            lambda payload, number: self.attempt(payload, number, cost, accept),
            self.retry,
            self._sleep,
            reask=reask,
        )

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[str]:
        """Yield text fragments as they arrive.

        Failures before the first fragment are retried like `complete()`; after it, a
        failure is raised (a generator cannot take back text it has handed out).
        """
        payload = orjson.dumps(body)
        async for attempt in retrying(self.retry, self._sleep):
            with attempt:
                number = attempt.retry_state.attempt_number
                delivered = False
                try:
                    async with self._exchange(payload, number) as (response, watch):
                        builder = AnswerBuilder()
                        async with contextlib.aclosing(
                            texts(response, builder, self.settings)
                        ) as pieces:
                            async for text in pieces:
                                delivered = True
                                watch.pause()  # a slow consumer is not a silent server
                                yield text
                                watch.resume()
                        self._accept(builder.build(number))
                except RequestError as error:
                    if delivered:
                        error.retryable = False
                    raise

    async def attempt(
        self, payload: bytes, number: int, cost: int = 0, check: AnswerCheck | None = None
    ) -> Completion:
        """One HTTP attempt of `complete()` (number `number`, for errors and the answer):
        `_exchange` written out, as it runs per request. Raises a `RequestError`."""
        gate = self._gate
        started = await gate.enter(cost) if gate is not None else 0.0
        builder = AnswerBuilder()
        completion: Completion | None = None
        headers: Mapping[str, str] | None = None
        watch: AttemptWatch | None = None
        error: RequestError | None = None
        cause: BaseException | None = None
        try:
            watch = self._clock.watch()
            async with self._post(payload) as response:
                watch.follow(response.content)
                headers = response.headers
                if response.status >= 300:
                    raise await status_error(response, self.settings.max_event_bytes)
                await fold(response, builder, self.settings)
            completion = builder.build(number, response.headers.get("x-request-id"))
            completion.endpoint = self._public_url
            self._accept(completion)
            if check is not None:
                check(completion)
        except BaseException as failure:
            mapped = self._failed(failure, number, watch, started, headers)
            if mapped is None:
                raise
            error, cause = mapped
        finally:
            if watch is not None:
                watch.stop()
        self._settle(started, headers, error, cause)
        assert completion is not None  # else _settle raised
        return completion

    @contextlib.asynccontextmanager
    async def _exchange(
        self, payload: bytes, number: int, cost: int = 0
    ) -> AsyncIterator[tuple[aiohttp.ClientResponse, AttemptWatch]]:
        """One attempt's HTTP exchange: gate, POST, status check; every failure mapped.

        Whatever goes wrong inside the block, aiohttp's or ours, leaves as a
        `RequestError` carrying the attempt number, with no secret in its message.
        """
        gate = self._gate
        started = await gate.enter(cost) if gate is not None else 0.0
        headers: Mapping[str, str] | None = None
        watch: AttemptWatch | None = None
        error: RequestError | None = None
        cause: BaseException | None = None
        try:
            watch = self._clock.watch()
            async with self._post(payload) as response:
                watch.follow(response.content)
                headers = response.headers
                if response.status >= 300:
                    raise await status_error(response, self.settings.max_event_bytes)
                yield response, watch
        except BaseException as failure:
            mapped = self._failed(failure, number, watch, started, headers)
            if mapped is None:
                raise
            error, cause = mapped
        finally:
            if watch is not None:
                watch.stop()
        self._settle(started, headers, error, cause)

    def _post(self, payload: bytes) -> Any:
        return self._open().post(
            self._url, data=payload, headers=self._headers, proxy=self.settings.proxy
        )

    def _settle(
        self,
        started: float,
        headers: Mapping[str, str] | None,
        error: RequestError | None,
        cause: BaseException | None,
    ) -> None:
        """Raise the attempt's error, or tell the gate it succeeded."""
        if error is not None:
            # aiohttp's own exception may quote a proxy or URL password: drop it then.
            raise error from (None if self._url_has_password else cause)
        if self._gate is not None:
            self._gate.leave(started, None, headers)

    def _failed(
        self,
        failure: BaseException,
        number: int,
        watch: AttemptWatch | None,
        started: float,
        headers: Mapping[str, str] | None,
    ) -> tuple[RequestError, BaseException | None] | None:
        """An attempt failed: its `RequestError` and the aiohttp cause, the gate told.

        None for a cancelled or abandoned attempt (not an outcome to learn from): the
        caller re-raises it.
        """
        cause: BaseException | None = failure
        if watch is not None and watch.ended_by_limit(failure):
            failure = cause = TimeoutError()
        if isinstance(failure, RequestError):
            error, cause = failure, None
        elif isinstance(failure, aiohttp.ClientError | TimeoutError | OSError):
            error = transport_error(failure, self.settings, watch.fired if watch else None)
        elif isinstance(failure, ValueError):  # e.g. aiohttp refusing an impossible URL
            error = RequestError(f"the request could not be made: {failure}", retryable=False)
        else:
            if self._gate is not None:
                self._gate.leave(started, TransportError("the attempt was cancelled"), headers)
            return None
        error.attempts = number
        error.endpoint = self._public_url
        error.hide(self.endpoint.api_key)
        if self._gate is not None:
            self._gate.leave(started, error, headers)
        return error, cause
