"""What goes on the wire (URL, headers, body, proxy) and how failures map, via aioresponses.

aioresponses sends each body in one piece and answers an unknown URL with a (retryable)
connection error, so streaming and real faults are tested in test_client.py instead.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import aiohttp
import orjson
import pytest
from aioresponses import aioresponses
from yarl import URL

import netfly_batch
from netfly_batch.errors import HTTPStatusError, TransportError
from netfly_batch.http.client import ChatClient
from netfly_batch.providers import FreeNetfly
from netfly_batch.settings import ClientSettings

DEFAULT_URL = "https://free.netfly.top/api/openai/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "Привет!"}]
BODY: dict[str, Any] = {"model": "gpt-4", "messages": MESSAGES, "stream": True}
CHROME_126_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
)


class FilledResponse(aiohttp.ClientResponse):
    """A ClientResponse aioresponses 0.7.9 can build on aiohttp 3.14.

    aiohttp 3.14 made `stream_writer` a required argument that aioresponses does not
    pass; with `writer=None` (request already sent) only its `output_size` is read.
    """

    def __init__(self, method: str, url: URL, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(method, url, **kwargs)


def sse(text: str) -> bytes:
    """A whole streamed answer holding `text`."""
    chunks = [
        {"choices": [{"index": 0, "delta": {"content": text}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]
    return b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


@pytest.fixture
def mocked():
    """aioresponses patching every aiohttp session for the test."""
    with aioresponses() as mock:
        yield mock


def answer_at(mocked, url: str, text: str = "ok", **kwargs: Any) -> None:
    """Make `url` answer POSTs with a streamed answer holding `text`."""
    kwargs.setdefault("body", sse(text))
    kwargs.setdefault("content_type", "text/event-stream")
    mocked.post(url, response_class=FilledResponse, **kwargs)


def calls_to(mocked, url: str) -> list:
    """The recorded POST calls to `url`."""
    return mocked.requests.get(("POST", URL(url)), [])


def sent_body(mocked, url: str = DEFAULT_URL) -> dict[str, Any]:
    """The JSON body of the one POST to `url`."""
    (call,) = calls_to(mocked, url)
    return orjson.loads(call.kwargs["data"])


async def complete(settings: ClientSettings, sleep, body: dict[str, Any] = BODY):
    """One complete() call through a fresh client with these settings."""
    async with ChatClient(settings, sleep=sleep) as client:
        return await client.complete(body)


async def test_default_url(mocked, fake_sleep):
    """By default the request goes to FreeNetfly's chat-completions URL."""
    answer_at(mocked, DEFAULT_URL, "from netfly")
    completion = await complete(ClientSettings(), fake_sleep)
    assert completion.content == "from netfly"
    assert len(calls_to(mocked, DEFAULT_URL)) == 1


@pytest.mark.parametrize(
    ("base_url", "endpoint", "url"),
    [
        (
            "http://127.0.0.1:8000",
            "/v1/chat/completions",
            "http://127.0.0.1:8000/v1/chat/completions",
        ),
        (
            "http://127.0.0.1:8000/",
            "/v1/chat/completions",
            "http://127.0.0.1:8000/v1/chat/completions",
        ),
        (
            "http://127.0.0.1:8000",
            "v1/chat/completions",
            "http://127.0.0.1:8000/v1/chat/completions",
        ),
        (
            "https://gw.example/llm/",
            "/api/openai/v1/chat/completions",
            "https://gw.example/llm/api/openai/v1/chat/completions",
        ),
    ],
    ids=["plain", "trailing slash", "endpoint without slash", "base with a path"],
)
async def test_url_is_base_url_plus_endpoint(mocked, fake_sleep, base_url, endpoint, url):
    """The request URL is base_url and endpoint joined by exactly one slash."""
    answer_at(mocked, url)
    await complete(ClientSettings(base_url=base_url, endpoint=endpoint), fake_sleep)
    assert len(calls_to(mocked, url)) == 1


def browser_headers(origin: str) -> dict[str, str]:
    """The headers the seed's FreeNetfly provider sent, as a Chrome 126 on Linux."""
    return {
        "accept": "application/json, text/event-stream",
        "accept-language": "en-US,en;q=0.9",
        "content-type": "application/json",
        "dnt": "1",
        "origin": origin,
        "referer": origin + "/",
        "sec-ch-ua": '"Not/A)Brand";v="8", "Chromium";v="126"',
        "sec-ch-ua-mobile": "?0",
        "sec-ch-ua-platform": '"Linux"',
        "sec-fetch-dest": "empty",
        "sec-fetch-mode": "cors",
        "sec-fetch-site": "same-origin",
        "user-agent": CHROME_126_LINUX,
    }


async def test_browser_headers(mocked, fake_sleep):
    """Without an API key the request carries exactly the browser headers, no Authorization."""
    answer_at(mocked, DEFAULT_URL)
    await complete(ClientSettings(), fake_sleep)
    (call,) = calls_to(mocked, DEFAULT_URL)
    assert call.kwargs["headers"] == browser_headers("https://free.netfly.top")


async def test_origin_follows_base_url(mocked, fake_sleep):
    """With another server, origin and referer name that server."""
    url = "http://127.0.0.1:8000/v1/chat/completions"
    answer_at(mocked, url)
    settings = ClientSettings(base_url="http://127.0.0.1:8000", endpoint="/v1/chat/completions")
    await complete(settings, fake_sleep)
    (call,) = calls_to(mocked, url)
    assert call.kwargs["headers"]["origin"] == "http://127.0.0.1:8000"
    assert call.kwargs["headers"]["referer"] == "http://127.0.0.1:8000/"


@pytest.mark.parametrize(
    ("api_key", "authorization"),
    [
        (None, None),
        ("", None),
        ("sk-test-123", "Bearer sk-test-123"),
    ],
    ids=["no key", "empty key", "key"],
)
async def test_authorization_only_with_an_api_key(mocked, fake_sleep, api_key, authorization):
    """Authorization is sent as a Bearer token exactly when an API key is set."""
    answer_at(mocked, DEFAULT_URL)
    await complete(ClientSettings(api_key=api_key), fake_sleep)
    (call,) = calls_to(mocked, DEFAULT_URL)
    assert call.kwargs["headers"].get("authorization") == authorization
    assert {name.lower() for name in call.kwargs["headers"]} >= set(browser_headers("x"))


async def test_extra_headers_add_and_override(mocked, fake_sleep):
    """extra_headers are added, and replace a browser header of the same name."""
    answer_at(mocked, DEFAULT_URL)
    extra = (("x-request-source", "tests"), ("user-agent", "netfly-batch/0.1"))
    await complete(ClientSettings(extra_headers=extra), fake_sleep)
    (call,) = calls_to(mocked, DEFAULT_URL)
    assert call.kwargs["headers"]["x-request-source"] == "tests"
    assert call.kwargs["headers"]["user-agent"] == "netfly-batch/0.1"


async def test_body_defaults(mocked, fake_sleep):
    """The provider's body holds the messages, model, stream and the seed's defaults."""
    answer_at(mocked, DEFAULT_URL)
    stream = FreeNetfly.create_async_generator("gpt-4", MESSAGES, sleep=fake_sleep)
    assert [text async for text in stream] == ["ok"]
    assert sent_body(mocked) == {
        "messages": MESSAGES,
        "model": "gpt-4",
        "stream": True,
        "temperature": 0.5,
        "presence_penalty": 0,
        "frequency_penalty": 0,
        "top_p": 1,
    }


async def test_caller_parameters_override_and_pass_through(mocked, fake_sleep):
    """Caller parameters replace the defaults; extras go in the body; settings do not."""
    answer_at(mocked, DEFAULT_URL)
    stream = FreeNetfly.create_async_generator(
        "gpt-3.5-turbo",
        MESSAGES,
        sleep=fake_sleep,
        temperature=0.2,
        top_p=0.9,
        presence_penalty=0.5,
        max_tokens=50,
        stop=["\n"],
        seed=7,
        api_key="sk-never-in-body",
        idle_timeout_s=30.0,
        max_attempts=2,
        timeout=60,
    )
    assert [text async for text in stream] == ["ok"]
    assert sent_body(mocked) == {
        "messages": MESSAGES,
        "model": "gpt-3.5-turbo",
        "stream": True,
        "temperature": 0.2,
        "presence_penalty": 0.5,
        "frequency_penalty": 0,
        "top_p": 0.9,
        "max_tokens": 50,
        "stop": ["\n"],
        "seed": 7,
    }
    (call,) = calls_to(mocked, DEFAULT_URL)
    assert call.kwargs["headers"]["authorization"] == "Bearer sk-never-in-body"


async def test_proxy_is_passed_to_aiohttp(mocked, fake_sleep):
    """The proxy setting reaches aiohttp's request as `proxy=`."""
    answer_at(mocked, DEFAULT_URL)
    await complete(ClientSettings(proxy="http://user:pw@proxy.local:3128"), fake_sleep)
    (call,) = calls_to(mocked, DEFAULT_URL)
    assert call.kwargs["proxy"] == "http://user:pw@proxy.local:3128"


@pytest.mark.parametrize("proxy", ["http://proxy.local:3128", None], ids=["proxy", "no proxy"])
async def test_provider_proxy_argument(mocked, fake_sleep, proxy):
    """create_async_generator(proxy=...) is the proxy aiohttp is given (None: none)."""
    answer_at(mocked, DEFAULT_URL)
    stream = FreeNetfly.create_async_generator("gpt-4", MESSAGES, proxy=proxy, sleep=fake_sleep)
    assert [text async for text in stream] == ["ok"]
    (call,) = calls_to(mocked, DEFAULT_URL)
    assert call.kwargs["proxy"] == proxy


async def test_complete_function_uses_base_url_and_api_endpoint(mocked):
    """netfly_batch.complete() posts the default body (usage asked for) to its URL."""
    url = "http://127.0.0.1:9999/v1/chat/completions"
    answer_at(mocked, url, "whole")
    completion = await netfly_batch.complete(
        MESSAGES, base_url="http://127.0.0.1:9999", api_endpoint="/v1/chat/completions", seed=1
    )
    assert completion.content == "whole"
    assert sent_body(mocked, url) == {
        "messages": MESSAGES,
        "model": "gpt-3.5-turbo",
        "stream": True,
        "temperature": 0.5,
        "presence_penalty": 0,
        "frequency_penalty": 0,
        "top_p": 1,
        "seed": 1,
        "stream_options": {"include_usage": True},
    }


async def test_unknown_url_is_a_retried_connection_error(mocked, fake_sleep):
    """A URL nobody answers fails with a TransportError after every attempt."""
    answer_at(mocked, DEFAULT_URL)  # the right URL answers; the request goes elsewhere
    other = "http://127.0.0.1:1/api/openai/v1/chat/completions"
    with pytest.raises(TransportError) as caught:
        await complete(ClientSettings(base_url="http://127.0.0.1:1"), fake_sleep)
    assert caught.value.attempts == 5
    assert len(calls_to(mocked, other)) == 5
    assert calls_to(mocked, DEFAULT_URL) == []
    assert len(fake_sleep.delays) == 4


CONNECTION_KEY = SimpleNamespace(host="free.netfly.top", port=443, ssl=True)
TRANSPORT_FAULTS = [
    (
        "refused",
        aiohttp.ClientConnectorError(CONNECTION_KEY, OSError(111, "Connection refused")),
        "cannot connect to free.netfly.top:443",
        True,
    ),
    (
        "proxy refused",
        aiohttp.ClientProxyConnectionError(CONNECTION_KEY, OSError(111, "Connection refused")),
        "cannot connect to the proxy",
        True,
    ),
    (
        "connect timeout",
        aiohttp.ConnectionTimeoutError("Connection timeout"),
        "could not connect within 10 s",
        True,
    ),
    (
        "idle timeout",
        aiohttp.SocketTimeoutError("Timeout on reading data from socket"),
        "no data from the server for 120 s (the idle timeout",
        False,
    ),
    ("total timeout", TimeoutError(), "the attempt took longer than 900 s", False),
    (
        "server disconnected",
        aiohttp.ServerDisconnectedError(),
        "the connection dropped mid-response: Server disconnected",
        False,
    ),
    (
        "payload cut",
        aiohttp.ClientPayloadError("Response payload is not completed"),
        "the connection dropped mid-response: Response payload is not completed",
        False,
    ),
    (
        "reset",
        ConnectionResetError(104, "Connection reset by peer"),
        "connection failed: [Errno 104] Connection reset by peer",
        False,
    ),
    (
        "other client error",
        aiohttp.ClientOSError(32, "Broken pipe"),
        "connection failed: [Errno 32] Broken pipe",
        False,
    ),
]


@pytest.mark.parametrize(
    ("exception", "message", "unreachable"),
    [case[1:] for case in TRANSPORT_FAULTS],
    ids=[case[0] for case in TRANSPORT_FAULTS],
)
async def test_transport_failures_map_to_transport_error(
    mocked, fake_sleep, exception, message, unreachable
):
    """Each aiohttp/asyncio failure becomes a retried TransportError with a clear message."""
    mocked.post(DEFAULT_URL, exception=exception, repeat=True)
    with pytest.raises(TransportError) as caught:
        await complete(ClientSettings(), fake_sleep)
    assert message in str(caught.value)
    assert caught.value.unreachable is unreachable
    assert caught.value.attempts == 5
    assert caught.value.__cause__ is exception
    assert len(calls_to(mocked, DEFAULT_URL)) == 5


async def test_status_with_retry_after_then_success(mocked, fake_sleep):
    """A 503 with Retry-After is retried after exactly that wait."""
    answer_at(
        mocked,
        DEFAULT_URL,
        status=503,
        content_type="application/json",
        body=orjson.dumps({"error": {"message": "busy", "code": 503}}),
        headers={"Retry-After": "3"},
    )
    answer_at(mocked, DEFAULT_URL, "after the wait")
    completion = await complete(ClientSettings(), fake_sleep)
    assert completion.content == "after the wait"
    assert completion.attempts == 2
    assert fake_sleep.delays == [3.0]
    assert len(calls_to(mocked, DEFAULT_URL)) == 2


async def test_final_status_maps_to_http_status_error(mocked, fake_sleep):
    """A 401 becomes an HTTPStatusError with the server's message and code, one call."""
    answer_at(
        mocked,
        DEFAULT_URL,
        status=401,
        content_type="application/json",
        body=orjson.dumps({"error": {"message": "Invalid API key", "code": "invalid_key"}}),
    )
    with pytest.raises(HTTPStatusError) as caught:
        await complete(ClientSettings(api_key="sk-bad"), fake_sleep)
    assert caught.value.status == 401
    assert caught.value.code == "invalid_key"
    assert str(caught.value) == "HTTP 401: Invalid API key"
    assert len(calls_to(mocked, DEFAULT_URL)) == 1
    assert fake_sleep.delays == []
