"""The answer in one place: the SSE reader, the acceptance step, and both client paths
(`complete()`'s written-out attempt and `stream()`'s) fed the same faults."""

from __future__ import annotations

import orjson
import pytest
from aiohttp import web

from netfly_batch.errors import RequestError, StreamError, TransportError
from netfly_batch.http.client import ChatClient
from netfly_batch.settings import ClientSettings, RetrySettings
from netfly_batch.wire.answer import Completion, require_finish
from netfly_batch.wire.assemble import AnswerBuilder, SSEAnswerReader


def chunk(content: str | None = None, finish: str | None = None) -> bytes:
    delta = {} if content is None else {"content": content}
    body = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}], "model": "m"}
    return b"data: " + orjson.dumps(body) + b"\n\n"


HEALTHY = chunk("Hel") + chunk("lo") + chunk(finish="stop") + b"data: [DONE]\n\n"

# name -> (content type, body, status)
FAULTS: dict[str, tuple[str, bytes, int]] = {
    "healthy": ("text/event-stream", HEALTHY, 200),
    "no [DONE]": ("text/event-stream", HEALTHY.replace(b"data: [DONE]\n\n", b""), 200),
    "[DONE] before finish": ("text/event-stream", chunk("Hel") + b"data: [DONE]\n\n", 200),
    "closed before finish": ("text/event-stream", chunk("Hel") + chunk("lo"), 200),
    "malformed chunk": ("text/event-stream", chunk("a") + b"data: {oops\n\n" + HEALTHY, 200),
    "not an object": ("text/event-stream", chunk("a") + b"data: [1]\n\n" + HEALTHY, 200),
    "in-band error": (
        "text/event-stream",
        chunk("a") + b'data: {"error": {"message": "boom", "code": "400"}}\n\n',
        200,
    ),
    "after [DONE]": ("text/event-stream", HEALTHY + chunk("more"), 200),
    "json reply": (
        "application/json",
        orjson.dumps(
            {"choices": [{"index": 0, "message": {"content": "Hello"}, "finish_reason": "stop"}]}
        ),
        200,
    ),
    "sse as text/plain": ("text/plain", HEALTHY, 200),
    "neither sse nor json": ("text/plain", b"<html>busy</html>", 200),
    "status 500": ("application/json", b'{"error": {"message": "down"}}', 500),
    "event too large": ("text/event-stream", b"data: " + b"x" * 5000 + b"\n\n", 200),
}


def outcome(result: object) -> tuple[str, ...]:
    """What a path made of a reply: the text, or the error's type and message."""
    if isinstance(result, RequestError):
        return (type(result).__name__, result.message)
    return ("text", str(result))


@pytest.mark.parametrize("fault", list(FAULTS), ids=list(FAULTS))
async def test_complete_and_stream_agree_on_every_fault(serve, fault):
    """complete() and stream() give the same text, or fail with the same error."""
    content_type, body, status = FAULTS[fault]

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body, status=status, content_type=content_type)

    server = await serve(handler, path="/v1/chat/completions")
    settings = ClientSettings(
        base_url=server.url, endpoint="/v1/chat/completions", max_event_bytes=4096
    )
    results: list[tuple[str, ...]] = []
    async with ChatClient(settings, RetrySettings(max_attempts=1)) as client:
        try:
            completion = await client.complete({"model": "m", "messages": []})
            results.append(outcome(completion.content))
        except RequestError as error:
            results.append(outcome(error))
        pieces: list[str] = []
        try:
            async for piece in client.stream({"model": "m", "messages": []}):
                pieces.append(piece)
            results.append(outcome("".join(pieces)))
        except RequestError as error:
            results.append(outcome(error))
    assert results[0] == results[1]
    healthy = fault in ("healthy", "no [DONE]", "after [DONE]", "json reply", "sse as text/plain")
    assert (results[0] == ("text", "Hello")) is healthy


def test_reader_stops_at_done_and_counts_events():
    """The reader gives each chunk's text, stops at [DONE] and ignores what follows."""
    builder = AnswerBuilder()
    reader = SSEAnswerReader(builder)
    texts = reader.feed(HEALTHY[:20]) + reader.feed(HEALTHY[20:] + chunk("late"))
    assert texts == ["Hel", "lo"]
    assert reader.done
    assert reader.events == 4
    assert reader.close() == []
    assert builder.build().content == "Hello"


def test_lenient_reader_skips_what_the_strict_one_refuses():
    """Without on_malformed a broken chunk raises; with it, it is reported and skipped."""
    body = chunk("a") + b"data: {oops\n\n" + b"data: 42\n\n" + chunk("b", "stop")
    with pytest.raises(StreamError, match="malformed chunk"):
        SSEAnswerReader(AnswerBuilder()).feed(body)
    skipped: list[bytes] = []
    lenient = SSEAnswerReader(AnswerBuilder(), on_malformed=skipped.append)
    assert lenient.feed(body) == ["a", "b"]
    assert skipped == [b"{oops"]
    error_body = b'data: {"error": {"message": "quota", "code": "429"}}\n\n'
    with pytest.raises(StreamError, match="quota"):
        SSEAnswerReader(AnswerBuilder(), on_malformed=skipped.append).feed(error_body)


def test_require_finish_accepts_only_finished_answers():
    """An answer without a finish_reason was cut short: a retryable transport error."""
    require_finish(Completion("text", "stop"))
    with pytest.raises(TransportError, match="without a finish_reason") as caught:
        require_finish(Completion("text", None))
    assert caught.value.retryable


async def test_a_custom_acceptance_check_fails_the_attempt_and_is_retried(serve, fake_sleep):
    """An `accept` check that refuses an answer makes the attempt fail and retry."""

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=HEALTHY, content_type="text/event-stream")

    server = await serve(handler, path="/v1/chat/completions")
    seen: list[str] = []

    def accept(completion: Completion) -> None:
        seen.append(completion.content)
        if len(seen) < 3:
            raise StreamError("not good enough yet")

    settings = ClientSettings(base_url=server.url, endpoint="/v1/chat/completions")
    async with ChatClient(
        settings, RetrySettings(max_attempts=5), sleep=fake_sleep, accept=accept
    ) as client:
        completion = await client.complete({"model": "m", "messages": []})
    assert (completion.content, completion.attempts, server.requests) == ("Hello", 3, 3)
    assert seen == ["Hello"] * 3
