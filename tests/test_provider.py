"""FreeNetfly: the seed design's examples, its attributes, the model mixin, complete()."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

import netfly_batch
from netfly_batch import (
    AsyncGeneratorProvider,
    ChatClient,
    Completion,
    FreeNetfly,
    ModelNotSupportedError,
    ProviderModelMixin,
)
from netfly_batch.errors import HTTPStatusError, RequestError, StreamError, TransportError
from netfly_batch.settings import ClientSettings

CAPTURES = Path(__file__).parent / "data" / "captures"
LITELLM = (CAPTURES / "litellm-mock-stream.sse").read_bytes()
LITELLM_TEXT = "Hello from the LiteLLM mock. This is a canned streamed answer."
MESSAGES = [{"role": "user", "content": "Привет!"}]
SEED_BODY = 'data: {"choices": [{"delta": {"content": "Привет"}}]}\n\ndata: [DONE]\n\n'


def content_event(text: str) -> bytes:
    """One SSE event holding a chunk with this content."""
    chunk = {"choices": [{"index": 0, "delta": {"content": text}}]}
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def answer(*texts: str, finish: str = "stop") -> bytes:
    """A whole streamed answer: one chunk per text, a finish chunk, [DONE]."""
    finish_chunk = {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
    return (
        b"".join(content_event(text) for text in texts)
        + b"data: "
        + orjson.dumps(finish_chunk)
        + b"\n\ndata: [DONE]\n\n"
    )


def streaming(body: bytes, piece_size: int = 0):
    """A handler streaming `body` (in pieces of `piece_size` bytes, if given)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_type = "text/event-stream"
        await response.prepare(request)
        size = piece_size or len(body) or 1
        for start in range(0, len(body), size):
            await response.write(body[start : start + size])
            await asyncio.sleep(0)
        await response.write_eof()
        return response

    return handler


def replying(status: int, body: bytes, headers: dict[str, str] | None = None):
    """A handler answering with one whole JSON response."""

    async def handler(request: web.Request) -> web.Response:
        return web.Response(
            status=status, body=body, content_type="application/json", headers=headers
        )

    return handler


async def drain(fragments, into: list[str] | None = None) -> None:
    """Read a stream to its end, appending its fragments to `into` if given."""
    async for text in fragments:
        if into is not None:
            into.append(text)


# --- the seed's examples ------------------------------------------------------------------


async def test_seed_example_create_async_generator(serve):
    """The seed's first example: await the generator, then `async for` its text."""
    server = await serve(streaming(answer("Привет! ", "Чем могу помочь?"), piece_size=1))
    model = "gpt-3.5-turbo"
    messages = [{"role": "user", "content": "Привет!"}]
    proxy = None
    chunks = []

    async def consume_generator(generator):
        async for chunk in generator:
            chunks.append(chunk)

    generator = await FreeNetfly.create_async_generator(
        model=model, messages=messages, proxy=proxy, base_url=server.url
    )
    if generator:
        await consume_generator(generator)
    assert "".join(chunks) == "Привет! Чем могу помочь?"
    assert chunks == ["Привет! ", "Чем могу помочь?"]
    sent = orjson.loads(server.bodies[0])
    assert sent["messages"] == messages
    assert sent["model"] == "gpt-3.5-turbo"
    assert sent["stream"] is True


async def test_generator_works_without_await(serve, fake_sleep):
    """The result of create_async_generator can also be iterated directly."""
    server = await serve(streaming(LITELLM, piece_size=7))
    fragments = [
        text
        async for text in FreeNetfly.create_async_generator(
            "gpt-4", MESSAGES, base_url=server.url, sleep=fake_sleep
        )
    ]
    assert "".join(fragments) == LITELLM_TEXT
    assert len(fragments) == 21


async def test_generator_retries_before_the_first_fragment(serve, fake_sleep):
    """A failed first attempt is retried before any text is handed out."""
    server = await serve(
        replying(503, b'{"error": {"message": "busy"}}'), streaming(answer("second"))
    )
    stream = FreeNetfly.create_async_generator(
        "gpt-4", MESSAGES, base_url=server.url, sleep=fake_sleep
    )
    assert [text async for text in stream] == ["second"]
    assert server.requests == 2
    assert len(fake_sleep.delays) == 1


async def test_generator_reports_a_final_error(serve, fake_sleep):
    """A non-retryable status surfaces as HTTPStatusError from the iteration."""
    server = await serve(replying(403, b'{"error": {"message": "region not allowed"}}'))
    stream = FreeNetfly.create_async_generator(
        "gpt-4", MESSAGES, base_url=server.url, sleep=fake_sleep
    )
    with pytest.raises(HTTPStatusError, match="region not allowed"):
        await drain(stream)
    assert server.requests == 1


async def test_generator_early_stop_releases_the_connection(serve, fake_sleep):
    """Breaking out and calling aclose() raises nothing and lets the server see us leave."""
    left = asyncio.Event()

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_type = "text/event-stream"
        await response.prepare(request)
        try:
            for n in range(200):
                await response.write(content_event(f"part {n} "))
                await asyncio.sleep(0.01)
        except (asyncio.CancelledError, ConnectionResetError):
            left.set()
            raise
        return response

    server = await serve(endless)
    stream = FreeNetfly.create_async_generator(
        "gpt-4", MESSAGES, base_url=server.url, sleep=fake_sleep
    )
    async for text in stream:
        assert text == "part 0 "
        break
    await stream.aclose()
    await asyncio.wait_for(left.wait(), 2)


async def test_generator_uses_a_given_client(serve, fake_sleep):
    """`client=` reuses an open ChatClient (its settings win) and leaves it open."""
    server = await serve(streaming(answer("shared")))
    async with ChatClient(ClientSettings(base_url=server.url), sleep=fake_sleep) as client:
        for _ in range(3):
            stream = FreeNetfly.create_async_generator(
                "any-model", MESSAGES, client=client, base_url="http://unused.invalid"
            )
            assert [text async for text in stream] == ["shared"]
        assert client._session is not None
        assert not client._session.closed
    assert server.requests == 3
    assert server.connections == 1


class LineStream:
    """The seed's MockStream: an async iterator over the given items."""

    def __init__(self, items: list[Any]) -> None:
        self._items = list(items)

    def __aiter__(self) -> LineStream:
        return self

    async def __anext__(self) -> Any:
        if not self._items:
            raise StopAsyncIteration
        return self._items.pop(0)


class MockResponse:
    """Anything with a `.content` to read, as the seed's mock_response built."""

    def __init__(self, items: list[Any]) -> None:
        self.content = LineStream(items)


async def process(items: list[Any]) -> list[str]:
    """All fragments _process_response yields for a response over `items`."""
    return [text async for text in FreeNetfly._process_response(MockResponse(items))]


def test_seed_body_lines():
    """The seed's body splits into the four lines its example feeds."""
    assert [line.encode() for line in SEED_BODY.splitlines()] == [
        'data: {"choices": [{"delta": {"content": "Привет"}}]}'.encode(),
        b"",
        b"data: [DONE]",
        b"",
    ]


@pytest.mark.parametrize(
    "items",
    [
        [line.encode("utf-8") for line in SEED_BODY.splitlines()],
        [line.encode("utf-8") for line in SEED_BODY.splitlines(keepends=True)],
        [line.encode("utf-8") + b"\r\n" for line in SEED_BODY.splitlines()],
        SEED_BODY.splitlines(),
    ],
    ids=["seed lines", "line endings kept", "CRLF", "str lines"],
)
async def test_seed_example_process_response(items):
    """The seed's second example yields exactly "Привет", however the lines come."""
    assert await process(items) == ["Привет"]


async def test_process_response_over_a_real_response(serve):
    """_process_response reads a real aiohttp response in raw chunks."""
    server = await serve(streaming(LITELLM, piece_size=5))
    async with (
        aiohttp.ClientSession() as session,
        session.post(server.url + FreeNetfly.api_endpoint, json={}) as response,
    ):
        fragments = [text async for text in FreeNetfly._process_response(response)]
    assert "".join(fragments) == LITELLM_TEXT


async def test_process_response_skips_malformed_chunks(caplog):
    """A malformed or non-object chunk is logged and skipped; the rest still arrives."""
    items = [
        b"data: {oops",
        b"",
        b"data: 42",
        b"",
        b'data: {"choices": [{"delta": {"content": "ok"}}]}',
        b"",
        b"data: [DONE]",
        b"",
    ]
    with caplog.at_level(logging.WARNING, logger="netfly_batch.providers.freenetfly"):
        assert await process(items) == ["ok"]
    assert len(caplog.records) == 1
    assert "skipping a malformed chunk" in caplog.records[0].getMessage()
    assert "{oops" in caplog.records[0].getMessage()


async def test_process_response_raises_on_an_error_object():
    """An error object in the stream raises StreamError with the server's message and code."""
    items = [
        b'data: {"choices": [{"delta": {"content": "a"}}]}',
        b"",
        b'data: {"error": {"message": "quota exceeded", "code": "429"}}',
        b"",
        b'data: {"choices": [{"delta": {"content": "never"}}]}',
        b"",
    ]
    fragments: list[str] = []
    with pytest.raises(StreamError, match="quota exceeded") as caught:
        await drain(FreeNetfly._process_response(MockResponse(items)), fragments)
    assert fragments == ["a"]
    assert caught.value.code == "429"
    assert caught.value.retryable is True


async def test_process_response_stops_at_done_and_flushes_the_tail():
    """Nothing after [DONE] is yielded; a last event without a blank line still is."""
    assert await process(
        [
            b'data: {"choices": [{"delta": {"content": "x"}}]}',
            b"",
            b"data: [DONE]",
            b"",
            b'data: {"choices": [{"delta": {"content": "y"}}]}',
            b"",
        ]
    ) == ["x"]
    assert await process([b'data: {"choices": [{"delta": {"content": "end"}}]}']) == ["end"]


# --- attributes and models ----------------------------------------------------------------


def test_attributes():
    """The class attributes are the seed's values."""
    assert FreeNetfly.url == "https://free.netfly.top"
    assert FreeNetfly.api_endpoint == "/api/openai/v1/chat/completions"
    assert FreeNetfly.working is False
    assert FreeNetfly.default_model == "gpt-3.5-turbo"
    assert FreeNetfly.models == ["gpt-3.5-turbo", "gpt-4"]


def test_bases():
    """FreeNetfly is an AsyncGeneratorProvider with the ProviderModelMixin."""
    assert issubclass(FreeNetfly, AsyncGeneratorProvider)
    assert issubclass(FreeNetfly, ProviderModelMixin)
    assert isinstance(FreeNetfly(), AsyncGeneratorProvider)
    assert isinstance(FreeNetfly(), ProviderModelMixin)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (None, "gpt-3.5-turbo"),
        ("", "gpt-3.5-turbo"),
        ("gpt-3.5-turbo", "gpt-3.5-turbo"),
        ("gpt-4", "gpt-4"),
    ],
    ids=["None", "empty", "default", "gpt-4"],
)
def test_get_model_known(model, expected):
    """get_model returns a known model as is, and the default for an empty name."""
    assert FreeNetfly.get_model(model) == expected


@pytest.mark.parametrize("model", ["gpt-4o", "GPT-4", "gpt-4 ", "claude-3"])
def test_get_model_unknown(model):
    """An unknown model raises ModelNotSupportedError naming it and the known models."""
    with pytest.raises(ModelNotSupportedError) as caught:
        FreeNetfly.get_model(model)
    assert caught.value.model == model
    assert caught.value.known == ["gpt-3.5-turbo", "gpt-4"]
    assert repr(model) in str(caught.value)
    assert "known models: gpt-3.5-turbo, gpt-4" in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    "base_url",
    [None, "https://free.netfly.top", "https://free.netfly.top/"],
    ids=["default", "explicit", "trailing slash"],
)
def test_unknown_model_rejected_for_freenetfly(base_url):
    """Against FreeNetfly itself an unknown model fails at once, before any request."""
    kwargs = {} if base_url is None else {"base_url": base_url}
    with pytest.raises(ModelNotSupportedError, match="llama-local"):
        FreeNetfly.create_async_generator("llama-local", MESSAGES, **kwargs)


@pytest.mark.parametrize(
    ("model", "sent"),
    [("llama-local", "llama-local"), ("", "gpt-3.5-turbo")],
    ids=["any model", "empty means default"],
)
async def test_any_model_with_another_base_url(serve, fake_sleep, model, sent):
    """With a base_url override any model name is sent as given (empty: the default)."""
    server = await serve(streaming(answer("fine")))
    stream = FreeNetfly.create_async_generator(
        model, MESSAGES, base_url=server.url, sleep=fake_sleep
    )
    assert [text async for text in stream] == ["fine"]
    assert orjson.loads(server.bodies[0])["model"] == sent


# --- netfly_batch.complete() --------------------------------------------------------------


async def test_complete_returns_a_completion(serve):
    """complete() gives content, finish_reason, usage, model and attempts in one call."""
    server = await serve(streaming(LITELLM, piece_size=11), path="/v1/chat/completions")
    completion = await netfly_batch.complete(
        MESSAGES, base_url=server.url, api_endpoint="/v1/chat/completions"
    )
    assert isinstance(completion, Completion)
    assert completion.content == LITELLM_TEXT
    assert completion.finish_reason == "stop"
    assert completion.model == "mock-gpt"
    assert completion.usage is not None
    assert completion.usage["prompt_tokens"] == 8
    assert completion.attempts == 1
    assert orjson.loads(server.bodies[0])["model"] == "gpt-3.5-turbo"


async def test_complete_counts_attempts(serve):
    """complete() retries (here after Retry-After: 0) and reports the attempts made."""
    server = await serve(
        replying(429, b'{"error": {"message": "slow"}}', {"Retry-After": "0"}),
        streaming(answer("done")),
        path="/v1/chat/completions",
    )
    completion = await netfly_batch.complete(
        MESSAGES, model="local", base_url=server.url, api_endpoint="/v1/chat/completions"
    )
    assert completion.content == "done"
    assert completion.attempts == 2
    assert server.requests == 2


async def test_complete_rejects_an_unknown_model_for_freenetfly():
    """complete() against FreeNetfly itself refuses an unknown model before any request."""
    with pytest.raises(ModelNotSupportedError, match=r"known models: gpt-3\.5-turbo, gpt-4"):
        await netfly_batch.complete(MESSAGES, model="llama-local")


# --- no secret in any message -------------------------------------------------------------

API_KEY = "sk-very-secret-key-123"
PASSWORD = "hunter2-proxy-password"


def assert_no_secret(error: BaseException) -> None:
    """Neither the API key nor the proxy password shows in the error's str or repr."""
    for text in (str(error), repr(error)):
        assert API_KEY not in text
        assert PASSWORD not in text


def test_settings_repr_hides_secrets():
    """ClientSettings' repr shows neither the API key nor the proxy URL's password."""
    settings = ClientSettings(api_key=API_KEY, proxy=f"http://user:{PASSWORD}@proxy.local:3128")
    assert API_KEY not in repr(settings)
    assert PASSWORD not in repr(settings)
    assert "base_url='https://free.netfly.top'" in repr(settings)


async def test_errors_hide_secrets_proxy_refused(closed_port, fake_sleep):
    """A refused proxy with a password in its URL gives an error without the password."""
    stream = FreeNetfly.create_async_generator(
        "gpt-4",
        MESSAGES,
        proxy=f"http://user:{PASSWORD}@127.0.0.1:{closed_port}",
        api_key=API_KEY,
        sleep=fake_sleep,
        max_attempts=2,
    )
    with pytest.raises(TransportError) as caught:
        await drain(stream)
    assert caught.value.unreachable is True
    assert "proxy" in str(caught.value)
    assert_no_secret(caught.value)


async def test_errors_hide_secrets_invalid_proxy_url(fake_sleep):
    """A proxy URL aiohttp cannot parse is reported with its password masked."""
    stream = FreeNetfly.create_async_generator(
        "gpt-4",
        MESSAGES,
        proxy=f"http://user:{PASSWORD}@[::1",
        api_key=API_KEY,
        sleep=fake_sleep,
        max_attempts=1,
    )
    with pytest.raises(RequestError) as caught:
        await drain(stream)
    assert "***@" in str(caught.value)
    assert_no_secret(caught.value)


@pytest.mark.parametrize("status", [401, 500])
async def test_errors_hide_secrets_status(serve, fake_sleep, status):
    """A status error for a request sent with an API key does not show the key."""
    server = await serve(replying(status, b'{"error": {"message": "Invalid API key"}}'))
    stream = FreeNetfly.create_async_generator(
        "gpt-4", MESSAGES, base_url=server.url, api_key=API_KEY, sleep=fake_sleep
    )
    with pytest.raises(HTTPStatusError) as caught:
        await drain(stream)
    assert server.headers[0]["Authorization"] == f"Bearer {API_KEY}"
    assert "Invalid API key" in str(caught.value)
    assert_no_secret(caught.value)
