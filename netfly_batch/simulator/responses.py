"""Writing one answer: an SSE stream or a JSON object, healthy or with a fault injected."""

from __future__ import annotations

import asyncio
import logging
from enum import StrEnum
from typing import Any

import orjson
from aiohttp import web

from .chat import SimulatedAnswer, split_content
from .faults import FaultKind
from .settings import SimulatorSettings, format_retry_after

log = logging.getLogger(__name__)

SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
PING_EVENT = b": ping\n\n"
DONE_EVENT = b"data: [DONE]\n\n"
MALFORMED_EVENT = b'data: {"choices": [{"delta": {"content": "x"\n\n'
MALFORMED_JSON = b'{"id": "chatcmpl-sim", "choices": [{"message": {"content": "x"'
INBAND_ERROR_MESSAGE = "simulated upstream failure"
IDLE_POLL_S = 0.05
# Set when the app shuts down, so stalled answers end instead of holding up the shutdown.
CLOSING_KEY = web.AppKey("netfly_simulator_closing", asyncio.Event)


class StreamEnd(StrEnum):
    """How a response body ends."""

    EOF = "eof"  # a clean end (the terminating chunk of a chunked body)
    CUT = "cut"  # the connection closes without the terminating chunk
    STALL = "stall"  # nothing more for `stall_s` (or until the client leaves), then a cut


def sse_event(payload: Any) -> bytes:
    """One `data: <compact json>` event."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def chunk_payload(
    completion: SimulatedAnswer,
    delta: dict[str, Any],
    finish_reason: str | None = None,
    index: int = 0,
) -> dict[str, Any]:
    """A `chat.completion.chunk` object carrying `delta` for choice `index`."""
    return {
        "id": completion.id,
        "object": "chat.completion.chunk",
        "created": completion.created,
        "model": completion.model,
        "choices": [{"index": index, "delta": delta, "finish_reason": finish_reason}],
    }


def completion_payload(completion: SimulatedAnswer, finish_reason: str | None) -> dict[str, Any]:
    """A non-streamed `chat.completion` object."""
    return {
        "id": completion.id,
        "object": "chat.completion",
        "created": completion.created,
        "model": completion.model,
        "choices": [
            {"index": index, "message": _message(completion, index), "finish_reason": finish_reason}
            for index in range(completion.n)
        ],
        "usage": completion.usage,
    }


def _message(completion: SimulatedAnswer, index: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": completion.content_of(index) or None}
    if completion.reasoning is not None:
        message["reasoning_content"] = completion.reasoning
    call = completion.tool_call_of(index)
    if call is not None:
        call_id, name, arguments = call
        message["tool_calls"] = [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        ]
    return message


def body_deltas(
    completion: SimulatedAnswer, chunk_count: int, index: int = 0
) -> list[dict[str, Any]]:
    """Choice `index`'s deltas after the role: reasoning pieces, then content, or a tool
    call whose arguments come in pieces (as OpenAI and vLLM stream them)."""
    deltas: list[dict[str, Any]] = []
    if completion.reasoning:
        deltas += [
            {"reasoning_content": piece}
            for piece in split_content(completion.reasoning, max(1, chunk_count // 2))
        ]
    call = completion.tool_call_of(index)
    if call is not None:
        call_id, name, arguments = call
        head = {"index": 0, "id": call_id, "type": "function", "function": {"name": name}}
        deltas.append({"tool_calls": [{**head, "function": {"name": name, "arguments": ""}}]})
        deltas += [
            {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
            for piece in split_content(arguments, chunk_count)
        ]
        return deltas
    content = completion.content_of(index)
    return deltas + [{"content": piece} for piece in split_content(content, chunk_count)]


def error_payload(message: str, error_type: str | None, code: str | None) -> dict[str, Any]:
    """An OpenAI-style error object."""
    return {"error": {"message": message, "type": error_type, "code": code}}


def stream_events(
    completion: SimulatedAnswer, fault: FaultKind | None, chunk_count: int, inband_error_code: str
) -> tuple[list[bytes], StreamEnd]:
    """The SSE events of one streamed answer and how the body ends (pure)."""
    role, contents, tail = _stream_parts(completion, chunk_count)
    half = max(1, len(contents) // 2)
    if fault is None:
        return [role, *contents, *tail], StreamEnd.EOF
    if fault is FaultKind.DISCONNECT:
        return [role, *contents[:half]], StreamEnd.CUT
    if fault is FaultKind.STALL:
        return [role, *contents[:half]], StreamEnd.STALL
    if fault is FaultKind.MALFORMED:
        broken = min(half, len(contents) - 1)
        events = [role, *contents[:broken], MALFORMED_EVENT, *contents[broken + 1 :], *tail]
        return events, StreamEnd.EOF
    if fault is FaultKind.INBAND_ERROR:
        error = sse_event(error_payload(INBAND_ERROR_MESSAGE, None, inband_error_code))
        return [role, *contents[:half], error], StreamEnd.EOF
    if fault is FaultKind.TRUNCATED:
        return [role, *contents[:half], DONE_EVENT], StreamEnd.EOF
    if fault is FaultKind.NO_DONE:
        return [role, *contents], StreamEnd.EOF
    raise ValueError(f"fault {fault} is not a stream fault")


def _stream_parts(
    completion: SimulatedAnswer, chunk_count: int
) -> tuple[bytes, list[bytes], list[bytes]]:
    """The role event, the body events and the tail (finish, usage, [DONE]) of a healthy
    stream. With n choices, each choice's events come in turn (as OpenAI interleaves
    them), every choice finishes, and usage comes last in a chunk with no choices."""
    if completion.n == 1:
        role = sse_event(chunk_payload(completion, {"role": "assistant"}))
        contents = [sse_event(chunk_payload(completion, delta))
                    for delta in body_deltas(completion, chunk_count)]  # fmt: skip
        finish = chunk_payload(completion, {}, completion.finish_reason)
        finish["usage"] = completion.usage  # on the last chunk, as llama.cpp sends it
        return role, contents, [sse_event(finish), DONE_EVENT]
    choices = range(completion.n)
    per_choice = [body_deltas(completion, chunk_count, index) for index in choices]
    contents = [sse_event(chunk_payload(completion, {"role": "assistant"}, index=i))
                for i in choices[1:]]  # fmt: skip
    for step in range(max(len(deltas) for deltas in per_choice)):
        contents += [sse_event(chunk_payload(completion, deltas[step], index=index))
                     for index, deltas in enumerate(per_choice) if step < len(deltas)]  # fmt: skip
    finishes = [sse_event(chunk_payload(completion, {}, completion.finish_reason, index=i))
                for i in choices]  # fmt: skip
    usage = {**chunk_payload(completion, {}), "choices": [], "usage": completion.usage}
    role = sse_event(chunk_payload(completion, {"role": "assistant"}))
    return role, contents, [*finishes, sse_event(usage), DONE_EVENT]


def request_id_header(completion: SimulatedAnswer) -> dict[str, str]:
    """The `x-request-id` header OpenAI and vLLM send, naming this answer."""
    return {"x-request-id": "req-" + completion.id.removeprefix("chatcmpl-")}


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A compact JSON response."""
    return web.Response(
        body=orjson.dumps(payload), status=status, content_type="application/json", headers=headers
    )


def status_fault_response(fault: FaultKind, settings: SimulatorSettings) -> web.Response:
    """The 429 (with Retry-After) or 5xx answer of a status fault."""
    status = fault.status
    if status is None:
        raise ValueError(f"fault {fault} is not a status fault")
    if status == 429:
        message = "simulated rate limit: too many requests, try again later"
        return json_response(
            error_payload(message, "rate_limit_exceeded", "rate_limit_exceeded"),
            status=429,
            headers={"Retry-After": format_retry_after(settings.retry_after_s)},
        )
    message = f"simulated server error (HTTP {status})"
    return json_response(error_payload(message, "server_error", None), status=status)


def cut_connection(request: web.Request) -> None:
    """Close the connection at once: the client sees no (further) response bytes."""
    transport = request.transport
    if transport is not None:
        transport.close()


def is_connected(request: web.Request) -> bool:
    """Whether the client is still connected."""
    transport = request.transport
    return transport is not None and not transport.is_closing()


async def idle(request: web.Request, seconds: float) -> None:
    """Send nothing for `seconds`, or until the client leaves or the app shuts down."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    closing = request.app.get(CLOSING_KEY) or asyncio.Event()

    def waiting() -> bool:
        return is_connected(request) and not closing.is_set() and deadline > loop.time()

    # No event fires when a client leaves (unless handler_cancellation is on), so poll.
    while waiting():  # noqa: ASYNC110
        await asyncio.sleep(min(IDLE_POLL_S, deadline - loop.time()))


async def open_stream(
    request: web.Request, response: web.StreamResponse, settings: SimulatorSettings
) -> None:
    """Send the headers after `first_byte_delay_s`, or at once and then pings during it."""
    delay_s, interval_s = settings.first_byte_delay_s, settings.ping_interval_s
    if interval_s <= 0:
        await asyncio.sleep(delay_s)
        await response.prepare(request)
        return
    await response.prepare(request)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + delay_s
    while deadline - loop.time() > interval_s:
        await asyncio.sleep(interval_s)
        await response.write(PING_EVENT)
    await asyncio.sleep(max(0.0, deadline - loop.time()))


async def send_stream(
    request: web.Request,
    completion: SimulatedAnswer,
    fault: FaultKind | None,
    settings: SimulatorSettings,
) -> web.StreamResponse:
    """Stream `completion` as SSE, shaped by `fault`."""
    events, end = stream_events(completion, fault, settings.chunk_count, settings.inband_error_code)
    response = web.StreamResponse(headers={**SSE_HEADERS, **request_id_header(completion)})
    await open_stream(request, response, settings)
    for index, event in enumerate(events):
        if index and settings.chunk_delay_s:
            await asyncio.sleep(settings.chunk_delay_s)
        await response.write(event)
    await finish_body(request, response, end, settings)
    return response


async def finish_body(
    request: web.Request,
    response: web.StreamResponse,
    end: StreamEnd,
    settings: SimulatorSettings,
) -> None:
    """End a prepared body cleanly, or cut it (after a stall)."""
    if end is StreamEnd.EOF:
        await response.write_eof()
        return
    if end is StreamEnd.STALL:
        await idle(request, settings.stall_s)
    log.debug("cutting the connection of %s mid-body", request.path)
    cut_connection(request)


async def send_json(
    request: web.Request,
    completion: SimulatedAnswer,
    fault: FaultKind | None,
    settings: SimulatorSettings,
) -> web.StreamResponse:
    """Answer with one `chat.completion` object, shaped by `fault`."""
    await asyncio.sleep(settings.first_byte_delay_s)
    if fault is FaultKind.INBAND_ERROR:
        code = settings.inband_error_code
        return json_response(error_payload(INBAND_ERROR_MESSAGE, None, code))
    if fault is FaultKind.MALFORMED:
        return web.Response(body=MALFORMED_JSON, content_type="application/json")
    cut_early = fault in (FaultKind.TRUNCATED, FaultKind.NO_DONE)
    finish_reason = None if cut_early else completion.finish_reason
    body = orjson.dumps(completion_payload(completion, finish_reason))
    if fault not in (FaultKind.DISCONNECT, FaultKind.STALL):
        return web.Response(
            body=body, content_type="application/json", headers=request_id_header(completion)
        )
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = len(body)
    await response.prepare(request)
    await response.write(body[: len(body) // 2])
    end = StreamEnd.STALL if fault is FaultKind.STALL else StreamEnd.CUT
    await finish_body(request, response, end, settings)
    return response
