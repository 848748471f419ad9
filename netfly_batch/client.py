"""All aiohttp client code: one shared connection pool and `ChatClient.complete()`.

One attempt is one whole HTTP request and its whole body. An attempt succeeds only
when some choice carried a `finish_reason`; `[DONE]` or a clean close without one is a
truncated stream (retryable, its partial text discarded). aiohttp and asyncio
exceptions are mapped here to the `RequestError` tree; none escapes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any, Protocol

import aiohttp
import orjson

from .chunks import DONE, Completion, CompletionBuilder, parse_chunk
from .errors import HTTPStatusError, RequestError, StreamError, TransportError, redact
from .retry import Sleep, is_retryable, parse_retry_after, retrying, wait_before
from .settings import ClientSettings, RetrySettings
from .sse import SSEDecoder

log = logging.getLogger(__name__)

DONE_BYTES = DONE.encode()

# What the original FreeNetfly provider sent: a Chrome 126 browser on Linux.
BROWSER_HEADERS: dict[str, str] = {
    "accept": "application/json, text/event-stream",
    "accept-language": "en-US,en;q=0.9",
    "content-type": "application/json",
    "dnt": "1",
    "sec-ch-ua": '"Not/A)Brand";v="8", "Chromium";v="126"',
    "sec-ch-ua-mobile": "?0",
    "sec-ch-ua-platform": '"Linux"',
    "sec-fetch-dest": "empty",
    "sec-fetch-mode": "cors",
    "sec-fetch-site": "same-origin",
    "user-agent": (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
    ),
}



class AttemptGate(Protocol):
    """Called around every HTTP attempt (flow control: limits, pauses, the breaker)."""

    async def enter(self, cost: int) -> float:
        """Wait until an attempt of `cost` estimated tokens may start; return a start mark."""

    def leave(self, started: float, error: RequestError | None,
              headers: Mapping[str, str] | None) -> None:
        """The attempt ended (error None: it succeeded); `headers` if a response came."""


# What any OpenAI-compatible server needs (when `browser_headers` is off).
PLAIN_HEADERS: dict[str, str] = {
    "accept": "application/json, text/event-stream",
    "content-type": "application/json",
    "user-agent": "netfly-batch/0.1",
}


def build_headers(settings: ClientSettings, origin: str) -> dict[str, str]:
    """Request headers: the browser set (or the plain one), the API key, the user's extras."""
    if settings.browser_headers:
        headers = dict(BROWSER_HEADERS)
        headers["origin"] = origin
        headers["referer"] = origin.rstrip("/") + "/"
    else:
        headers = dict(PLAIN_HEADERS)
    if settings.api_key:
        headers["authorization"] = f"Bearer {settings.api_key}"
    headers.update(settings.extra_headers)
    return headers


class IdleWatch:
    """Fails an attempt after `idle_s` without a byte (the headers' wait included).

    Each read only notes the time; one timer per idle period checks it and re-arms,
    instead of a timer re-armed on every read.
    """

    __slots__ = ("_deadline", "_handle", "_idle_s", "_loop", "fired", "last")

    def __init__(self, idle_s: float, deadline: asyncio.Timeout) -> None:
        self._loop = asyncio.get_running_loop()
        self._idle_s = idle_s
        self._deadline = deadline
        self.fired = False
        self.last = self._loop.time()
        self._handle = self._loop.call_at(self.last + idle_s, self._check)

    def touch(self) -> None:
        """Bytes arrived."""
        self.last = self._loop.time()

    def stop(self) -> None:
        """The attempt is over."""
        self._handle.cancel()

    def _check(self) -> None:
        now = self._loop.time()
        due = self.last + self._idle_s
        if now < due:
            self._handle = self._loop.call_at(due, self._check)
            return
        self.fired = True
        self._deadline.reschedule(now)


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
    ) -> None:
        self.settings = settings or ClientSettings()
        self.retry = retry or RetrySettings()
        self._sleep = sleep
        self._gate = gate
        self._url = self.settings.url
        self._headers = build_headers(self.settings, self.settings.base_url)
        self._url_has_password = redact(f"{self.settings.proxy} {self._url}") != (
            f"{self.settings.proxy} {self._url}")
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ChatClient:
        self._open()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            s = self.settings
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=s.connection_limit),
                timeout=aiohttp.ClientTimeout(
                    total=s.total_timeout_s, sock_connect=s.connect_timeout_s,
                ),
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

    async def complete(self, body: dict[str, Any], cost: int = 0) -> Completion:
        """Send `body` and return the whole answer, retrying as `self.retry` says.

        `cost` is the request's estimated tokens, for the gate's token budget. Raises a
        `RequestError` whose `attempts` says how many HTTP attempts were made.
        """
        payload = orjson.dumps(body)
        try:
            return await self._complete_once(payload, 1, cost)
        except RequestError as error:
            if not is_retryable(error) or self.retry.max_attempts <= 1:
                raise
            await self._sleep(wait_before(1, error, self.retry))
        number = 1
        async for attempt in retrying(self.retry, self._sleep, done=1):
            with attempt:
                number = attempt.retry_state.attempt_number + 1
                completion = await self._complete_once(payload, number, cost)
        completion.attempts = number
        return completion

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
                        builder = CompletionBuilder()
                        async with contextlib.aclosing(
                                _texts(response, watch, builder, self.settings)) as texts:
                            async for text in texts:
                                delivered = True
                                yield text
                        _check_finished(builder)
                except RequestError as error:
                    if delivered:
                        error.retryable = False
                    raise

    async def _complete_once(self, payload: bytes, number: int, cost: int = 0) -> Completion:
        builder = CompletionBuilder()
        async with self._exchange(payload, number, cost) as (response, watch):
            await _fold(response, watch, builder, self.settings)
            _check_finished(builder)
        return builder.build(number)

    @contextlib.asynccontextmanager
    async def _exchange(
        self, payload: bytes, number: int, cost: int = 0
    ) -> AsyncIterator[tuple[aiohttp.ClientResponse, IdleWatch]]:
        """One attempt's HTTP exchange: gate, POST, status check; every failure mapped.

        Whatever goes wrong inside the block, aiohttp's or ours, leaves as a
        `RequestError` carrying the attempt number, with no secret in its message.
        """
        gate = self._gate
        started = await gate.enter(cost) if gate is not None else 0.0
        error: RequestError | None = None
        cause: BaseException | None = None
        headers: Mapping[str, str] | None = None
        watch: IdleWatch | None = None
        try:
            async with asyncio.timeout(None) as deadline:
                watch = IdleWatch(self.settings.idle_timeout_s, deadline)
                async with self._open().post(
                    self._url, data=payload, headers=self._headers, proxy=self.settings.proxy
                ) as response:
                    watch.touch()
                    headers = response.headers
                    if response.status >= 300:
                        raise await _status_error(response, self.settings.max_event_bytes)
                    yield response, watch
        except RequestError as failure:
            error = failure
        except (aiohttp.ClientError, TimeoutError, OSError) as failure:
            idle = watch is not None and watch.fired
            error, cause = _transport_error(failure, self.settings, idle), failure
        except ValueError as failure:  # e.g. aiohttp refusing an impossible URL or header
            error = RequestError(f"the request could not be made: {failure}", retryable=False)
            cause = failure
        except BaseException:  # cancelled or abandoned: not an outcome to learn from
            if gate is not None:
                gate.leave(started, TransportError("the attempt was cancelled"), headers)
            raise
        finally:
            if watch is not None:
                watch.stop()
            if error is not None:
                error.attempts = number
                error.hide(self.settings.api_key)
                if gate is not None:
                    gate.leave(started, error, headers)
        if error is not None:
            # aiohttp's own exception may quote a proxy or URL password: drop it then.
            raise error from (None if self._url_has_password else cause)
        if gate is not None:
            gate.leave(started, None, headers)


def _check_finished(builder: CompletionBuilder) -> None:
    """An answer is whole only when a choice carried a finish_reason."""
    if not builder.finish_reason:
        raise TransportError(
            "the stream ended without a finish_reason (cut short by the server); "
            "its partial text was discarded"
        )


async def _fold(response: aiohttp.ClientResponse, watch: IdleWatch,
                builder: CompletionBuilder, settings: ClientSettings) -> None:
    """Read the whole body into `builder` (the `complete()` path: no per-text yields)."""
    if response.content_type != "text/event-stream":
        await _read_whole_reply(response, watch, builder, settings)
        return
    decoder = SSEDecoder(settings.max_event_bytes)
    add = builder.add
    touch = watch.touch
    async for raw in response.content.iter_any():
        touch()
        for data in decoder.feed_data(raw):
            if data == DONE_BYTES:
                return
            add(parse_chunk(data))
    for data in decoder.close_data():
        if data == DONE_BYTES:
            return
        add(parse_chunk(data))


async def _texts(response: aiohttp.ClientResponse, watch: IdleWatch,
                 builder: CompletionBuilder, settings: ClientSettings) -> AsyncIterator[str]:
    """The text of each chunk as it arrives (the `stream()` path); stop at `[DONE]`."""
    if response.content_type != "text/event-stream":
        text = await _read_whole_reply(response, watch, builder, settings)
        if text:
            yield text
        return
    decoder = SSEDecoder(settings.max_event_bytes)
    async for raw in response.content.iter_any():
        watch.touch()
        for data in decoder.feed_data(raw):
            if data == DONE_BYTES:
                return
            text = builder.add(parse_chunk(data))
            if text:
                yield text
    for data in decoder.close_data():
        if data == DONE_BYTES:
            return
        text = builder.add(parse_chunk(data))
        if text:
            yield text


async def _read_whole_reply(response: aiohttp.ClientResponse, watch: IdleWatch,
                            builder: CompletionBuilder, settings: ClientSettings) -> str:
    """A server that ignored `stream`: one JSON reply (or SSE under another content type)."""
    body = await _read_bounded(response, watch, settings.max_event_bytes)
    stripped = body.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"{"):
        return builder.add(parse_chunk(stripped))
    decoder = SSEDecoder(settings.max_event_bytes)
    events = decoder.feed(body) + decoder.close()
    texts: list[str] = []
    for event in events:
        if event.data == DONE:  # as in a stream: nothing after [DONE] counts
            break
        texts.append(builder.add(parse_chunk(event.data)))
    if not events:
        raise StreamError(f"the server's answer was neither SSE nor JSON: {_first_line(body)}")
    return "".join(texts)


async def _read_bounded(response: aiohttp.ClientResponse, watch: IdleWatch,
                        limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    async for raw in response.content.iter_any():
        watch.touch()
        size += len(raw)
        if size > limit:
            raise StreamError(f"the server's answer is larger than {limit} bytes", retryable=False)
        parts.append(raw)
    return b"".join(parts)


async def _status_error(response: aiohttp.ClientResponse, limit: int) -> HTTPStatusError:
    """Describe a non-2xx answer with the server's own message."""
    retry_after_s = parse_retry_after(response.headers)
    code: str | None = None
    body = b""
    cap = min(limit, 65536)
    try:  # read(n) returns what has arrived so far, so read until the end or the cap
        while len(body) < cap and (piece := await response.content.read(cap - len(body))):
            body += piece
    except (aiohttp.ClientError, TimeoutError, OSError):
        pass
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("error") is not None:
        error = parsed["error"]
        if isinstance(error, dict):
            message = str(error.get("message") or error.get("type") or response.reason)
            code = None if error.get("code") is None else str(error.get("code"))
        else:
            message = str(error)
    elif isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
        message = parsed["message"]
    elif body.strip():
        message = f"{response.reason}; the server's answer was not JSON: {_first_line(body)}"
    else:
        message = str(response.reason or "no message")
    return HTTPStatusError(response.status, message, retry_after_s=retry_after_s, code=code)


def _transport_error(exc: BaseException, settings: ClientSettings,
                     idle: bool = False) -> TransportError:
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return TransportError(
            f"could not connect within {settings.connect_timeout_s:g} s", unreachable=True
        )
    if idle or isinstance(exc, aiohttp.SocketTimeoutError):
        return TransportError(
            f"no data from the server for {settings.idle_timeout_s:g} s (the idle timeout; "
            "raise --idle-timeout to wait longer)"
        )
    if isinstance(exc, TimeoutError):
        return TransportError(f"the attempt took longer than {settings.total_timeout_s:g} s")
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return TransportError(f"cannot connect to the proxy: {_describe(exc)}", unreachable=True)
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or str(exc.os_error) or type(exc.os_error).__name__
        return TransportError(f"cannot connect to {exc.host}:{exc.port}: {redact(reason)}",
                              unreachable=True)
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        return TransportError(f"the connection dropped mid-response: {_describe(exc)}")
    return TransportError(f"connection failed: {_describe(exc)}")


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return redact(text)


def _first_line(body: bytes, limit: int = 120) -> str:
    line = body.decode("utf-8", "replace").strip().split("\n", 1)[0]
    return repr(line[:limit] + ("..." if len(line) > limit else ""))
