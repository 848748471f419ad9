"""ChatClient against a real local aiohttp server: streaming, retries, faults, the pool."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from netfly_batch.errors import HTTPStatusError, RequestError, StreamError, TransportError
from netfly_batch.http.client import ChatClient
from netfly_batch.settings import FREENETFLY_ENDPOINT, ClientSettings, RetrySettings

CAPTURES = Path(__file__).parent / "data" / "captures"
LLAMA = (CAPTURES / "llamacpp-smollm2-stream.sse").read_bytes()
LITELLM = (CAPTURES / "litellm-mock-stream.sse").read_bytes()
LLAMA_TEXT = (
    "1. Red: This is the most obvious colour, but it's also a bit of an "
    "oversimplification as there are"
)
LITELLM_TEXT = "Hello from the LiteLLM mock. This is a canned streamed answer."
BODY: dict[str, Any] = {
    "model": "test-model",
    "stream": True,
    "messages": [{"role": "user", "content": "Name three colours."}],
}
BOM = b"\xef\xbb\xbf"


# --- what the scripted server sends -------------------------------------------------------


def chunk(content: str | None = None, finish: str | None = None, **choice: Any) -> bytes:
    """One SSE event holding one chat-completion chunk."""
    delta = {} if content is None else {"content": content}
    body = {"model": "test-model", "choices": [{"index": 0, "delta": delta, **choice}]}
    if finish is not None:
        body["choices"][0]["finish_reason"] = finish
    return b"data: " + orjson.dumps(body) + b"\n\n"


def answer(*texts: str, finish: str | None = "stop", done: bool = True) -> bytes:
    """A whole streamed answer: a role chunk, one chunk per text, finish, [DONE]."""
    body = b"data: " + orjson.dumps({"choices": [{"index": 0, "delta": {"role": "assistant"}}]})
    body += b"\n\n" + b"".join(chunk(text) for text in texts)
    if finish is not None:
        body += chunk(finish=finish)
    return body + (b"data: [DONE]\n\n" if done else b"")


def error_body(message: str, code: object = None) -> bytes:
    """An OpenAI-style error object."""
    return orjson.dumps({"error": {"message": message, "type": "test_error", "code": code}})


def odd_pieces(body: bytes, sizes: tuple[int, ...] = (1, 3, 7, 2, 13, 5, 31)) -> list[bytes]:
    """`body` cut into pieces of odd sizes, cycling through `sizes`."""
    pieces, start, turn = [], 0, 0
    while start < len(body):
        size = sizes[turn % len(sizes)]
        pieces.append(body[start : start + size])
        start, turn = start + size, turn + 1
    return pieces


async def open_stream(
    request: web.Request,
    status: int = 200,
    content_type: str = "text/event-stream",
    headers: dict[str, str] | None = None,
) -> web.StreamResponse:
    """Send the response head; the body follows piece by piece."""
    response = web.StreamResponse(status=status, headers=headers)
    response.content_type = content_type
    await response.prepare(request)
    return response


async def write_pieces(response: web.StreamResponse, pieces: list[bytes]) -> None:
    """Write each piece separately, letting the loop run in between."""
    for piece in pieces:
        await response.write(piece)
        await asyncio.sleep(0)


def streaming(
    *pieces: bytes,
    content_type: str = "text/event-stream",
    status: int = 200,
    headers: dict[str, str] | None = None,
):
    """A handler that streams the pieces, each in its own write, then ends the body."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = await open_stream(request, status, content_type, headers)
        await write_pieces(response, list(pieces))
        await response.write_eof()
        return response

    return handler


def replying(
    status: int,
    body: bytes,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
):
    """A handler that answers with one whole (non-streamed) response."""

    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status, body=body, content_type=content_type, headers=headers)

    return handler


def cut_off(*pieces: bytes):
    """A handler that streams the pieces, then drops the connection mid-body."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = await open_stream(request)
        await write_pieces(response, list(pieces))
        assert request.transport is not None
        request.transport.close()
        return response

    return handler


def stalled(*pieces: bytes):
    """A handler that streams the pieces, then goes silent (until the client leaves)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = await open_stream(request)
        await write_pieces(response, list(pieces))
        await asyncio.sleep(30)  # cancelled when the client disconnects
        return response

    return handler


def client_for(server, sleep, retry: RetrySettings | None = None, **settings: Any) -> ChatClient:
    """A ChatClient for the scripted server, sleeping with the fake `sleep`."""
    return ChatClient(ClientSettings(base_url=server.url, **settings), retry, sleep=sleep)


async def complete_with(server, sleep, retry: RetrySettings | None = None, **settings: Any):
    """One complete() call through a fresh client."""
    async with client_for(server, sleep, retry, **settings) as client:
        return await client.complete(BODY)


async def failure_of(
    server, sleep, retry: RetrySettings | None = None, **settings: Any
) -> RequestError:
    """The RequestError one complete() call ends with (nothing else may escape)."""
    with pytest.raises(RequestError) as caught:
        await complete_with(server, sleep, retry, **settings)
    return caught.value


# --- SSE framing, end to end --------------------------------------------------------------


def multi_line_data() -> bytes:
    """A chunk whose JSON is split over several data lines (joined with LF, still JSON)."""
    return (
        b'data: {"choices": [{"index": 0,\ndata: "delta": {"content": "multi"}}]}\n\n'
        + chunk(finish="stop")
        + b"data: [DONE]\n\n"
    )


def with_fields() -> bytes:
    """Comments, event/id/retry fields and `data:` without a space around the chunks."""
    return (
        b": keep-alive\n\nretry: 3000\nid: 1\nevent: message\n"
        + chunk("fields").replace(b"data: ", b"data:")
        + b": ping\n"
        + chunk(finish="stop")
        + b"data:[DONE]\n\n"
    )


SSE_CASES = [
    ("llama.cpp LF", LLAMA, LLAMA_TEXT, "length"),
    ("llama.cpp CRLF", LLAMA.replace(b"\n", b"\r\n"), LLAMA_TEXT, "length"),
    ("llama.cpp CR", LLAMA.replace(b"\n", b"\r"), LLAMA_TEXT, "length"),
    ("LiteLLM LF", LITELLM, LITELLM_TEXT, "stop"),
    ("LiteLLM CRLF", LITELLM.replace(b"\n", b"\r\n"), LITELLM_TEXT, "stop"),
    ("LiteLLM CR", LITELLM.replace(b"\n", b"\r"), LITELLM_TEXT, "stop"),
    ("BOM first", BOM + LITELLM, LITELLM_TEXT, "stop"),
    ("multi-byte text", answer("Привет, ", "мир! ", "😀"), "Привет, мир! 😀", "stop"),
    ("multi-line data", multi_line_data(), "multi", "stop"),
    ("comments and fields", with_fields(), "fields", "stop"),
    ("no trailing blank line", answer("tail", done=False).rstrip(b"\n"), "tail", "stop"),
]


@pytest.mark.parametrize(
    ("body", "content", "finish"),
    [case[1:] for case in SSE_CASES],
    ids=[case[0] for case in SSE_CASES],
)
@pytest.mark.parametrize("cut", ["odd pieces", "one piece"])
async def test_streams_frame_the_same_however_they_arrive(
    serve, fake_sleep, body, content, finish, cut
):
    """Each stream, in odd pieces or in one, gives its content and finish_reason at once."""
    pieces = odd_pieces(body) if cut == "odd pieces" else [body]
    server = await serve(streaming(*pieces))
    completion = await complete_with(server, fake_sleep)
    assert completion.content == content
    assert completion.finish_reason == finish
    assert completion.attempts == 1
    assert server.requests == 1
    assert fake_sleep.delays == []


async def test_one_byte_pieces(serve, fake_sleep):
    """A stream sent one byte per write (splitting every character) arrives whole."""
    body = BOM + answer("Привет", ", ", "мир").replace(b"\n", b"\r\n")
    server = await serve(streaming(*(body[i : i + 1] for i in range(len(body)))))
    completion = await complete_with(server, fake_sleep)
    assert completion.content == "Привет, мир"


async def test_litellm_usage_and_model_arrive(serve, fake_sleep):
    """The LiteLLM capture's usage chunk and model name end up in the Completion."""
    server = await serve(streaming(LITELLM))
    completion = await complete_with(server, fake_sleep)
    assert completion.model == "mock-gpt"
    assert completion.usage is not None
    assert completion.usage["total_tokens"] == 23


async def test_the_request_carries_the_body(serve, fake_sleep):
    """The server receives exactly the body given to complete()."""
    server = await serve(streaming(answer("ok")))
    await complete_with(server, fake_sleep)
    assert orjson.loads(server.bodies[0]) == BODY
    assert server.headers[0]["Content-Type"] == "application/json"


# --- statuses -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503])
async def test_retryable_status_then_success(serve, fake_sleep, status):
    """A retryable status is retried once with a backoff; the second answer is returned."""
    server = await serve(
        replying(status, error_body(f"try later ({status})")), streaming(answer("second ", "time"))
    )
    completion = await complete_with(server, fake_sleep)
    assert completion.content == "second time"
    assert completion.attempts == 2
    assert server.requests == 2
    assert len(fake_sleep.delays) == 1
    assert 2.0 <= fake_sleep.delays[0] <= 3.0


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_final_status_is_not_retried(serve, fake_sleep, status):
    """A non-retryable status fails after exactly one request, with the server's message."""
    server = await serve(
        replying(status, error_body(f"the server refuses: {status}", "x")),
        streaming(answer("never")),
    )
    error = await failure_of(server, fake_sleep)
    assert isinstance(error, HTTPStatusError)
    assert error.status == status
    assert error.retryable is False
    assert error.attempts == 1
    assert error.server_message == f"the server refuses: {status}"
    assert f"the server refuses: {status}" in str(error)
    assert str(error).startswith(f"HTTP {status}")
    assert server.requests == 1
    assert fake_sleep.delays == []


async def test_error_body_sent_in_pieces_is_read_whole(serve, fake_sleep):
    """An error body that arrives in several writes is still parsed for its message."""
    body = error_body("model not found: gpt-5", "model_not_found")
    server = await serve(streaming(*odd_pieces(body), status=404, content_type="application/json"))
    error = await failure_of(server, fake_sleep)
    assert isinstance(error, HTTPStatusError)
    assert error.server_message == "model not found: gpt-5"
    assert error.code == "model_not_found"


@pytest.mark.parametrize(
    ("header", "value", "expected"),
    [
        ("Retry-After", "7", 7.0),
        ("Retry-After", "0.5", 0.5),
        ("retry-after-ms", "1500", 1.5),
        ("llm_provider-retry-after", "4", 4.0),
        ("Retry-After", "9999", 120.0),
    ],
    ids=["seconds", "fraction", "ms", "LiteLLM", "capped"],
)
async def test_retry_after_replaces_the_backoff(serve, fake_sleep, header, value, expected):
    """The wait before the next attempt is the server's Retry-After (capped), not the backoff."""
    server = await serve(
        replying(429, error_body("slow down", "429"), headers={header: value}),
        streaming(answer("ok")),
    )
    completion = await complete_with(server, fake_sleep)
    assert completion.content == "ok"
    assert completion.attempts == 2
    assert fake_sleep.delays == [expected]


async def test_litellm_429_capture(serve, fake_sleep):
    """LiteLLM's 429 (string code, no Retry-After) is retried with backoff, then reported."""
    body = (CAPTURES / "litellm-429.body").read_bytes()
    server = await serve(replying(429, body))
    error = await failure_of(server, fake_sleep)
    assert isinstance(error, HTTPStatusError)
    assert error.status == 429
    assert error.code == "429"
    assert error.retry_after_s is None
    assert error.attempts == 5
    assert "litellm.RateLimitError: This is a mock exception for model=mock-gpt" in str(error)
    assert server.requests == 5
    assert len(fake_sleep.delays) == 4
    for wait, base in zip(fake_sleep.delays, [2.0, 4.0, 8.0, 16.0], strict=True):
        assert base <= wait <= base + 1.0


async def test_plain_text_500_capture(serve, fake_sleep):
    """A plain-text 500 is retried; the error says it was not JSON and shows its first line."""
    body = (CAPTURES / "litellm-no-key.body").read_bytes()
    server = await serve(replying(500, body, content_type="text/plain"))
    error = await failure_of(server, fake_sleep)
    assert isinstance(error, HTTPStatusError)
    assert error.status == 500
    assert error.attempts == 5
    assert "not JSON" in str(error)
    assert "'Internal Server Error'" in str(error)
    assert server.requests == 5


# --- broken and slow streams --------------------------------------------------------------


@pytest.mark.parametrize(
    "cut_at",
    [len(LITELLM) // 2, LITELLM.index(b"\n\n", 900) + 2, 5],
    ids=["mid-line", "between events", "in the first line"],
)
async def test_mid_stream_disconnect_then_success(serve, fake_sleep, cut_at):
    """A dropped connection is retried; the answer's text is not duplicated."""
    server = await serve(cut_off(LITELLM[:cut_at]), streaming(*odd_pieces(LITELLM)))
    completion = await complete_with(server, fake_sleep)
    assert completion.content == LITELLM_TEXT
    assert completion.attempts == 2
    assert server.requests == 2


async def test_mid_stream_disconnect_every_time(serve, fake_sleep):
    """A connection that always drops ends in a retryable TransportError after all attempts."""
    server = await serve(cut_off(LITELLM[:700]))
    error = await failure_of(server, fake_sleep)
    assert isinstance(error, TransportError)
    assert error.attempts == 5
    assert error.unreachable is False
    assert server.requests == 5


async def test_stall_hits_the_idle_timeout(serve, fake_sleep):
    """A stream that goes silent fails each attempt after the idle timeout."""
    server = await serve(stalled(chunk("partial")))
    error = await failure_of(server, fake_sleep, RetrySettings(max_attempts=2), idle_timeout_s=0.3)
    assert isinstance(error, TransportError)
    assert error.attempts == 2
    assert "0.3 s" in str(error)
    assert "idle timeout" in str(error)
    assert server.requests == 2
    assert asyncio.current_task().cancelling() == 0  # the limit's cancels were taken back


async def test_headers_later_than_the_idle_timeout_fail(serve, fake_sleep):
    """A server that sends no response head within the idle timeout fails the attempt."""

    async def slow_head(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(30)  # cancelled when the client disconnects
        raise AssertionError("unreachable")

    server = await serve(slow_head)
    error = await failure_of(server, fake_sleep, RetrySettings(max_attempts=1), idle_timeout_s=0.3)
    assert isinstance(error, TransportError)
    assert "idle timeout" in str(error)
    assert server.requests == 1


async def test_a_stream_that_never_ends_hits_the_total_timeout(serve, fake_sleep):
    """Pings keep the idle limit away, but the attempt still ends at the total limit."""

    async def endless(request: web.Request) -> web.StreamResponse:
        response = await open_stream(request)
        await response.write(chunk("forever "))
        while True:
            await response.write(b": ping\n\n")
            await asyncio.sleep(0.05)

    server = await serve(endless)
    started = asyncio.get_running_loop().time()
    error = await failure_of(
        server, fake_sleep, RetrySettings(max_attempts=1), idle_timeout_s=0.3, total_timeout_s=0.6
    )
    took = asyncio.get_running_loop().time() - started
    assert isinstance(error, TransportError)
    assert "took longer than 0.6 s" in str(error)
    assert error.retryable is True
    assert 0.6 <= took < 2.0


async def test_keep_alive_comments_keep_a_slow_answer_alive(serve, fake_sleep):
    """Comments every 0.1 s keep a 1 s wait within a 0.3 s idle timeout."""

    async def queued(request: web.Request) -> web.StreamResponse:
        response = await open_stream(request)
        for _ in range(10):
            await response.write(b": ping\n\n")
            await asyncio.sleep(0.1)
        await write_pieces(response, [answer("worth ", "the wait")])
        await response.write_eof()
        return response

    server = await serve(queued)
    completion = await complete_with(server, fake_sleep, idle_timeout_s=0.3)
    assert completion.content == "worth the wait"
    assert completion.attempts == 1


@pytest.mark.parametrize(
    "code",
    ["500", 503, "server_error", None],
    ids=["string 500", "number 503", "server_error", "no code"],
)
async def test_retryable_error_inside_the_stream(serve, fake_sleep, code):
    """A retryable in-band error is retried; the failed attempt's text is discarded."""
    broken = chunk("partial ") + b"data: " + error_body("upstream overloaded", code) + b"\n\n"
    server = await serve(streaming(broken), streaming(answer("fresh")))
    completion = await complete_with(server, fake_sleep)
    assert completion.content == "fresh"
    assert completion.attempts == 2


@pytest.mark.parametrize("code", ["400", 403, "content_filter", "context_length_exceeded"])
async def test_final_error_inside_the_stream(serve, fake_sleep, code):
    """A non-retryable in-band error fails after one request, keeping the server's words."""
    broken = chunk("partial ") + b"data: " + error_body("prompt rejected by policy", code)
    server = await serve(streaming(broken + b"\n\n"), streaming(answer("never")))
    error = await failure_of(server, fake_sleep)
    assert isinstance(error, StreamError)
    assert error.retryable is False
    assert error.code == str(code)
    assert "prompt rejected by policy" in str(error)
    assert error.attempts == 1
    assert server.requests == 1


async def test_done_without_finish_reason_is_retried(serve, fake_sleep):
    """[DONE] without any finish_reason (llama.cpp when busy) is a truncated attempt."""
    server = await serve(
        streaming(answer("half an ans", finish=None)), streaming(answer("a whole answer"))
    )
    completion = await complete_with(server, fake_sleep)
    assert completion.content == "a whole answer"
    assert completion.attempts == 2
    assert server.requests == 2


async def test_done_without_finish_reason_every_time(serve, fake_sleep):
    """A stream that is always truncated fails, retryable, after every attempt."""
    server = await serve(streaming(answer("half", finish=None)))
    error = await failure_of(server, fake_sleep)
    assert isinstance(error, TransportError)
    assert error.retryable is True
    assert error.attempts == 5
    assert "finish_reason" in str(error)
    assert server.requests == 5
    assert len(fake_sleep.delays) == 4


async def test_clean_close_without_done_or_finish_is_retried(serve, fake_sleep):
    """A body that just ends, with no [DONE] and no finish_reason, is truncated."""
    server = await serve(
        streaming(answer("cut", finish=None, done=False)), streaming(answer("whole"))
    )
    completion = await complete_with(server, fake_sleep)
    assert completion.content == "whole"
    assert completion.attempts == 2


async def test_clean_close_with_finish_but_no_done_is_ok(serve, fake_sleep):
    """A finish_reason then the end of the body (no [DONE]) is a whole answer."""
    body = LITELLM.replace(b"data: [DONE]\n\n", b"")
    server = await serve(streaming(*odd_pieces(body)))
    completion = await complete_with(server, fake_sleep)
    assert completion.content == LITELLM_TEXT
    assert completion.finish_reason == "stop"
    assert completion.attempts == 1


async def test_body_neither_sse_nor_json(serve, fake_sleep):
    """A 200 body that is neither SSE nor JSON is retried, then reported as such."""
    page = b"<html>\n<body>Service temporarily unavailable</body>\n</html>\n"
    server = await serve(replying(200, page, content_type="text/html"))
    error = await failure_of(server, fake_sleep)
    assert isinstance(error, StreamError)
    assert error.retryable is True
    assert error.attempts == 5
    assert "neither SSE nor JSON" in str(error)
    assert "'<html>'" in str(error)
    assert server.requests == 5


async def test_plain_json_reply(serve, fake_sleep):
    """A server ignoring `stream` and sending one JSON reply gives a whole Completion."""
    reply = (CAPTURES / "llamacpp-smollm2-nonstream.json").read_bytes()
    server = await serve(replying(200, reply))
    completion = await complete_with(server, fake_sleep)
    assert completion.content == LLAMA_TEXT
    assert completion.finish_reason == "length"
    assert completion.model == "smollm2-135m"
    assert completion.usage == {"prompt_tokens": 34, "completion_tokens": 24, "total_tokens": 58}
    assert completion.attempts == 1


async def test_sse_under_another_content_type(serve, fake_sleep):
    """An SSE body labelled text/plain is still read as SSE."""
    server = await serve(replying(200, answer("labelled ", "wrong"), content_type="text/plain"))
    completion = await complete_with(server, fake_sleep)
    assert completion.content == "labelled wrong"


async def test_one_megabyte_event(serve, fake_sleep):
    """A single 1 MB event (within max_event_bytes) arrives whole."""
    big = "x" * 1_000_000
    server = await serve(streaming(chunk(big) + chunk(finish="stop") + b"data: [DONE]\n\n"))
    completion = await complete_with(server, fake_sleep)
    assert len(completion.content) == 1_000_000
    assert completion.content == big


async def test_event_over_max_event_bytes(serve, fake_sleep):
    """An event over max_event_bytes fails at once with a clear, non-retryable error."""
    server = await serve(streaming(*odd_pieces(chunk("y" * 10_000), (999,))))
    error = await failure_of(server, fake_sleep, max_event_bytes=4096)
    assert isinstance(error, StreamError)
    assert error.retryable is False
    assert "larger than 4096 bytes" in str(error)
    assert error.attempts == 1
    assert server.requests == 1


async def test_whole_reply_over_max_event_bytes(serve, fake_sleep):
    """A non-stream reply over max_event_bytes fails at once, non-retryable."""
    reply = orjson.dumps(
        {"choices": [{"index": 0, "message": {"content": "z" * 10_000}, "finish_reason": "stop"}]}
    )
    server = await serve(replying(200, reply))
    error = await failure_of(server, fake_sleep, max_event_bytes=4096)
    assert isinstance(error, StreamError)
    assert error.retryable is False
    assert "larger than 4096 bytes" in str(error)


async def test_content_after_done_is_ignored(serve, fake_sleep):
    """Events after [DONE] are not part of the answer."""
    server = await serve(streaming(answer("only this") + chunk(" and not this")))
    completion = await complete_with(server, fake_sleep)
    assert completion.content == "only this"


async def test_content_after_done_is_ignored_in_a_whole_reply(serve, fake_sleep):
    """An SSE body read whole (not labelled as a stream) also ends at [DONE]."""
    body = answer("only this") + chunk(" and not this")
    server = await serve(replying(200, body, content_type="text/plain"))
    completion = await complete_with(server, fake_sleep)
    assert completion.content == "only this"


async def test_connection_refused(closed_port, fake_sleep):
    """A port nobody listens on gives an unreachable TransportError after every attempt."""
    settings = ClientSettings(base_url=f"http://127.0.0.1:{closed_port}")
    async with ChatClient(settings, sleep=fake_sleep) as client:
        with pytest.raises(TransportError) as caught:
            await client.complete(BODY)
    assert caught.value.unreachable is True
    assert caught.value.attempts == 5
    assert "cannot connect" in str(caught.value)
    assert len(fake_sleep.delays) == 4


# --- nothing but RequestError escapes -----------------------------------------------------


async def invalid_http(request: web.Request) -> web.StreamResponse:
    """Answer with bytes that are not HTTP at all, then hang up."""
    assert request.transport is not None
    request.transport.write(b"SPDY/9 banana\r\n\r\n")
    request.transport.close()
    return web.Response()


FAULTS = {
    "non-retryable status": replying(400, error_body("bad")),
    "retryable status": replying(503, b"busy"),
    "status with a huge body": replying(502, b"x" * 200_000, content_type="text/plain"),
    "invalid JSON status body": replying(500, b'{"error": ', content_type="application/json"),
    "error body not an object": replying(500, b'["error"]'),
    "dropped mid-stream": cut_off(LITELLM[:333]),
    "dropped before the body": cut_off(),
    "stalled": stalled(chunk("a")),
    "neither SSE nor JSON": replying(200, b"hello", content_type="text/plain"),
    "JSON that is not an object": replying(200, b"[1, 2]"),
    "malformed chunk": streaming(b"data: {oops\n\n"),
    "chunk not an object": streaming(b"data: 42\n\n"),
    "error object": streaming(b"data: " + error_body("no", "500") + b"\n\n"),
    "error object, final": streaming(b"data: " + error_body("no", "400") + b"\n\n"),
    "done without finish": streaming(answer("x", finish=None)),
    "empty body": streaming(),
    "event over the limit": streaming(chunk("z" * 5000)),
    "unicode retry field": streaming("retry: ²\n".encode() + answer("x", finish=None)),
    "unicode error code": streaming(b"data: " + error_body("no", "²²²") + b"\n\n"),
    "invalid utf-8": streaming(b"data: \xff\xfe\n\n"),
    "not HTTP": invalid_http,
}


@pytest.mark.parametrize("handler", list(FAULTS.values()), ids=list(FAULTS))
async def test_only_request_errors_escape(serve, fake_sleep, handler):
    """Whatever the server does wrong, complete() raises a RequestError and nothing else."""
    server = await serve(handler)
    error = await failure_of(
        server, fake_sleep, RetrySettings(max_attempts=2), idle_timeout_s=0.3, max_event_bytes=4096
    )
    assert error.attempts in (1, 2)
    assert error.attempts == server.requests
    assert str(error)


# --- the pool -----------------------------------------------------------------------------


async def test_concurrent_calls_share_one_session_and_pool(serve, fake_sleep):
    """200 concurrent complete() calls on one client use one session and reuse connections."""
    server = await serve(streaming(*odd_pieces(answer("pooled"), (40,))))
    async with client_for(server, fake_sleep, connection_limit=20) as client:
        session = client._session
        completions = await asyncio.gather(*(client.complete(BODY) for _ in range(200)))
        assert client._session is session
    assert [c.content for c in completions] == ["pooled"] * 200
    assert all(c.attempts == 1 for c in completions)
    assert server.requests == 200
    assert server.connections <= 20


async def test_sequential_calls_reuse_one_connection(serve, fake_sleep):
    """Calls one after another on one client keep using the same connection."""
    server = await serve(streaming(answer("again")))
    async with client_for(server, fake_sleep) as client:
        for _ in range(10):
            assert (await client.complete(BODY)).content == "again"
    assert server.requests == 10
    assert server.connections == 1


async def test_client_reopens_after_close(serve, fake_sleep):
    """A closed client opens a new pool on its next call."""
    server = await serve(streaming(answer("back")))
    client = client_for(server, fake_sleep)
    try:
        assert (await client.complete(BODY)).content == "back"
        await client.close()
        assert client._session is None
        assert (await client.complete(BODY)).content == "back"
    finally:
        await client.close()


# --- ChatClient.stream() ------------------------------------------------------------------


async def collect(fragments, into: list[str]) -> None:
    """Append every fragment to `into` (kept even if the stream then fails)."""
    async for text in fragments:
        into.append(text)


async def test_stream_yields_fragments_as_they_arrive(serve, fake_sleep):
    """The first fragment is yielded before the server has sent the rest."""
    go_on = asyncio.Event()
    sent_rest = []

    async def two_halves(request: web.Request) -> web.StreamResponse:
        response = await open_stream(request)
        await response.write(answer("first")[: -len(chunk(finish="stop") + b"data: [DONE]\n\n")])
        await asyncio.wait_for(go_on.wait(), 5)
        sent_rest.append(True)
        await write_pieces(response, [chunk(" second"), chunk(finish="stop"), b"data: [DONE]\n\n"])
        await response.write_eof()
        return response

    server = await serve(two_halves)
    async with client_for(server, fake_sleep) as client:
        fragments = client.stream(BODY)
        first = await asyncio.wait_for(anext(fragments), 5)
        assert first == "first"
        assert sent_rest == []
        go_on.set()
        rest = [text async for text in fragments]
    assert rest == [" second"]
    assert server.requests == 1


async def test_stream_retries_failures_before_the_first_fragment(serve, fake_sleep):
    """A failed attempt that yielded nothing is retried transparently."""
    server = await serve(
        replying(503, error_body("busy")),
        cut_off(answer("")[:60]),  # the role chunk only, then dropped
        streaming(answer("at ", "last")),
    )
    async with client_for(server, fake_sleep) as client:
        fragments = [text async for text in client.stream(BODY)]
    assert fragments == ["at ", "last"]
    assert server.requests == 3
    assert len(fake_sleep.delays) == 2


async def test_stream_raises_failures_after_the_first_fragment(serve, fake_sleep):
    """Once text was handed out, a failure is raised, final, and not retried."""
    server = await serve(cut_off(chunk("given ") + chunk("out")), streaming(answer("never")))
    fragments: list[str] = []
    async with client_for(server, fake_sleep) as client:
        with pytest.raises(TransportError) as caught:
            await collect(client.stream(BODY), fragments)
    assert fragments == ["given ", "out"]
    assert caught.value.retryable is False
    assert caught.value.attempts == 1
    assert server.requests == 1
    assert fake_sleep.delays == []


async def test_stream_stops_at_done(serve, fake_sleep):
    """stream() yields nothing after [DONE]."""
    server = await serve(streaming(answer("a", "b") + chunk("c")))
    async with client_for(server, fake_sleep) as client:
        assert [text async for text in client.stream(BODY)] == ["a", "b"]


async def test_stream_early_break_and_aclose(serve, fake_sleep):
    """Stopping a stream early raises nothing, frees its connection, keeps the client usable."""
    left = asyncio.Event()

    async def endless(request: web.Request) -> web.StreamResponse:
        response = await open_stream(request)
        try:
            for n in range(200):
                await response.write(chunk(f"part {n} "))
                await asyncio.sleep(0.01)
        except (asyncio.CancelledError, ConnectionResetError):
            left.set()
            raise
        return response

    server = await serve(endless, streaming(answer("still ", "working")))
    async with client_for(server, fake_sleep) as client:
        fragments = client.stream(BODY)
        async for text in fragments:
            assert text == "part 0 "
            break
        await fragments.aclose()
        await asyncio.wait_for(left.wait(), 2)
        assert (await client.complete(BODY)).content == "still working"
    assert server.requests == 2


# --- secrets ----------------------------------------------------------------------------


async def test_an_api_key_echoed_by_the_server_is_hidden(serve, fake_sleep):
    """A server that quotes our API key in its error: the key never reaches the message."""

    async def echo_key(request: web.Request) -> web.Response:
        key = request.headers["Authorization"].removeprefix("Bearer ")
        return web.json_response({"error": {"message": f"Incorrect API key: {key}"}}, status=401)

    server = await serve(echo_key)
    error = await failure_of(server, fake_sleep, api_key="sk-live-SECRET123")
    assert "SECRET123" not in str(error)
    assert "SECRET123" not in repr(error)
    assert "Incorrect API key: ***" in str(error)
    assert "SECRET123" not in error.server_message


async def test_credentials_in_the_url_and_an_api_key_fail_as_a_request_error(fake_sleep):
    """aiohttp's ValueError for user:pass@ in the URL plus a key is mapped, not escaped."""
    async with ChatClient(
        ClientSettings(base_url="http://user:pw-SECRET@127.0.0.1:9", api_key="k"), sleep=fake_sleep
    ) as client:
        with pytest.raises(RequestError) as caught:
            await client.complete(BODY)
    assert caught.value.retryable is False
    assert caught.value.attempts == 1
    assert "pw-SECRET" not in str(caught.value)
    assert caught.value.__cause__ is None


async def test_a_slow_stream_consumer_is_not_taken_for_a_silent_server(serve, fake_sleep):
    """stream(): a consumer slower than the idle timeout gets every fragment, no cancel."""
    server = await serve(streaming(answer("one ", "two ", "three")))
    received = []
    async with client_for(server, fake_sleep, idle_timeout_s=0.2) as client:
        async for fragment in client.stream(BODY):
            received.append(fragment)
            await asyncio.sleep(0.35)
    assert "".join(received) == "one two three"
    assert server.requests == 1


async def test_a_busy_event_loop_is_not_taken_for_a_silent_server(fake_sleep):
    """Chunks that arrive while the loop is blocked count as activity: no spurious timeout."""
    import time

    from servers import app_thread

    async def trickle(request: web.Request) -> web.StreamResponse:
        response = await open_stream(request)
        for letter in "abcdefghij":
            await response.write(chunk(letter))
            await asyncio.sleep(0.1)
        await response.write(chunk(finish="stop") + b"data: [DONE]\n\n")
        return response

    with app_thread([web.post(FREENETFLY_ENDPOINT, trickle)]) as url:
        settings = ClientSettings(base_url=url, idle_timeout_s=0.3)
        async with ChatClient(settings, RetrySettings(max_attempts=1), sleep=fake_sleep) as client:
            task = asyncio.ensure_future(client.complete(BODY))
            await asyncio.sleep(0.05)
            time.sleep(0.6)  # noqa: ASYNC251 - the loop blocked on purpose (a slow stdin read)
            completion = await task
    assert completion.content == "abcdefghij"
    assert completion.attempts == 1


async def test_the_response_head_counts_as_activity(serve, fake_sleep):
    """Head after 0.2 s, first body byte 0.2 s later: no gap reaches the 0.3 s idle limit."""

    async def late_head(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0.2)
        response = await open_stream(request)  # headers: data from the server
        await asyncio.sleep(0.2)
        await response.write(answer("fine"))
        await response.write_eof()
        return response

    server = await serve(late_head)
    async with ChatClient(
        ClientSettings(base_url=server.url, idle_timeout_s=0.3),
        RetrySettings(max_attempts=1),
        sleep=fake_sleep,
    ) as client:
        completion = await client.complete(BODY)
    assert completion.content == "fine"


async def test_a_stream_read_from_other_tasks_still_hits_the_total_timeout(serve, fake_sleep):
    """stream() pulled by per-item tasks (as asyncio.wait/merge helpers do): the total
    limit of the attempt must still end an endless stream."""

    async def endless(request: web.Request) -> web.StreamResponse:
        response = await open_stream(request)
        while True:
            await response.write(chunk("x"))
            await asyncio.sleep(0.02)

    server = await serve(endless)
    async with ChatClient(
        ClientSettings(base_url=server.url, idle_timeout_s=0.3, total_timeout_s=0.5),
        RetrySettings(max_attempts=1),
        sleep=fake_sleep,
    ) as client:
        gen = client.stream(BODY)
        loop = asyncio.get_running_loop()
        start = loop.time()

        async def pull_each_fragment_in_a_new_task() -> None:
            while loop.time() - start < 3:
                await asyncio.ensure_future(gen.__anext__())

        with pytest.raises(RequestError, match=r"took longer than 0\.5 s"):
            await pull_each_fragment_in_a_new_task()
        await gen.aclose()
