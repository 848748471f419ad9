"""Reading one response: SSE or JSON bodies into an `AnswerBuilder`, error bodies
and aiohttp failures into the `RequestError` tree.

Used by `client.py` inside one attempt; knows aiohttp's response, not the retry loop.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import aiohttp
import orjson

from ..errors import HTTPStatusError, StreamError, TransportError, redact
from ..settings import ClientSettings
from ..wire.assemble import AnswerBuilder, SSEAnswerReader
from ..wire.chunks import parse_chunk
from .deadlines import Limit
from .retry import parse_retry_after


async def fold(
    response: aiohttp.ClientResponse, builder: AnswerBuilder, settings: ClientSettings
) -> None:
    """Read the whole body into `builder` (the `complete()` path: no per-text yields)."""
    if response.content_type != "text/event-stream":
        await _read_whole_reply(response, builder, settings)
        return
    reader = SSEAnswerReader(builder, settings.max_event_bytes)
    fold_piece = reader.fold
    async for raw in response.content.iter_any():
        fold_piece(raw)
        if reader.done:
            return
    reader.close()


async def texts(
    response: aiohttp.ClientResponse, builder: AnswerBuilder, settings: ClientSettings
) -> AsyncGenerator[str, None]:
    """The text of each chunk as it arrives (the `stream()` path); stop at `[DONE]`."""
    if response.content_type != "text/event-stream":
        text = await _read_whole_reply(response, builder, settings)
        if text:
            yield text
        return
    reader = SSEAnswerReader(builder, settings.max_event_bytes)
    async for raw in response.content.iter_any():
        for text in reader.feed(raw):
            yield text
        if reader.done:
            return
    for text in reader.close():
        yield text


async def _read_whole_reply(
    response: aiohttp.ClientResponse, builder: AnswerBuilder, settings: ClientSettings
) -> str:
    """A server that ignored `stream`: one JSON reply (or SSE under another content type)."""
    body = await _read_bounded(response, settings.max_event_bytes)
    stripped = body.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"{"):
        return builder.add(parse_chunk(stripped))
    reader = SSEAnswerReader(builder, settings.max_event_bytes)
    texts = reader.feed(body) + reader.close()
    if not reader.events:
        raise StreamError(f"the server's answer was neither SSE nor JSON: {_first_line(body)}")
    return "".join(texts)


async def _read_bounded(response: aiohttp.ClientResponse, limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    async for raw in response.content.iter_any():
        size += len(raw)
        if size > limit:
            raise StreamError(f"the server's answer is larger than {limit} bytes", retryable=False)
        parts.append(raw)
    return b"".join(parts)


async def status_error(response: aiohttp.ClientResponse, limit: int) -> HTTPStatusError:
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


def transport_error(
    exc: BaseException, settings: ClientSettings, limit: Limit | None = None
) -> TransportError:
    """Describe an aiohttp/OS failure; `limit` names the time limit that ended the attempt."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return TransportError(
            f"could not connect within {settings.connect_timeout_s:g} s", unreachable=True
        )
    if limit == "idle" or isinstance(exc, aiohttp.SocketTimeoutError):
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
        return TransportError(
            f"cannot connect to {exc.host}:{exc.port}: {redact(reason)}", unreachable=True
        )
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        return TransportError(f"the connection dropped mid-response: {_describe(exc)}")
    return TransportError(f"connection failed: {_describe(exc)}")


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return redact(text)


def _first_line(body: bytes, limit: int = 120) -> str:
    line = body.decode("utf-8", "replace").strip().split("\n", 1)[0]
    return repr(line[:limit] + ("..." if len(line) > limit else ""))
