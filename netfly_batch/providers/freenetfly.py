"""The FreeNetfly provider from the seed design, on top of `ChatClient`.

`await FreeNetfly.create_async_generator(model, messages)` streams text fragments from
FreeNetfly, or from any OpenAI-compatible server given `base_url=`. The public service
is down (`working = False`); the request shape and retry policy are the seed's, with
its bugs fixed (see README, "Python API").
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Generator
from typing import TYPE_CHECKING, Any, ClassVar

from ..http.endpoints import FREENETFLY, endpoint_of
from ..settings import ClientSettings, RetrySettings
from ..wire.assemble import AnswerBuilder, SSEAnswerReader
from .base import AsyncGeneratorProvider, Messages, ProviderModelMixin

if TYPE_CHECKING:  # aiohttp is imported when a request is made, not with the class
    from ..http.client import ChatClient
    from ..http.retry import Sleep

log = logging.getLogger(__name__)

# kwargs of create_async_generator that configure the connection; all others go in the body.
_CLIENT_KWARGS = frozenset(ClientSettings.__dataclass_fields__) | {"api_endpoint", "timeout"}
_RETRY_KWARGS = frozenset(RetrySettings.__dataclass_fields__)


class FragmentStream:
    """Text fragments of one answer: `async for` it, or `await` it first (as the seed does)."""

    def __init__(self, fragments: AsyncIterator[str]) -> None:
        self._fragments = fragments

    def __await__(self) -> Generator[Any, None, FragmentStream]:
        return self._itself().__await__()

    async def _itself(self) -> FragmentStream:
        return self

    def __aiter__(self) -> FragmentStream:
        return self

    async def __anext__(self) -> str:
        return await self._fragments.__anext__()

    async def aclose(self) -> None:
        """Stop early and release the connection."""
        aclose = getattr(self._fragments, "aclose", None)
        if aclose is not None:
            await aclose()


class FreeNetfly(AsyncGeneratorProvider, ProviderModelMixin):
    """FreeNetfly's OpenAI-compatible chat endpoint (or any other, by `base_url=`)."""

    url: ClassVar[str] = FREENETFLY.base_url
    api_endpoint: ClassVar[str] = FREENETFLY.path
    working: ClassVar[bool] = FREENETFLY.working
    default_model: ClassVar[str] = FREENETFLY.default_model
    models: ClassVar[list[str]] = list(FREENETFLY.models)

    @classmethod
    def create_async_generator(  # type: ignore[override]  # awaitable, as the seed's
        cls, model: str, messages: Messages, proxy: str | None = None, **kwargs: Any
    ) -> FragmentStream:
        """Stream the answer to `messages` as text fragments.

        kwargs: request parameters (temperature, top_p, max_tokens, stop, seed, ...) go
        into the body; connection settings (base_url, api_endpoint, api_key, trust_env,
        connect_timeout_s, idle_timeout_s, total_timeout_s or timeout, max_attempts, ...)
        configure the client; `client=` reuses an open `ChatClient` (its settings win).
        Failures before the first fragment are retried; after it they are raised.
        """
        client: ChatClient | None = kwargs.pop("client", None)
        sleep: Sleep | None = kwargs.pop("sleep", None)
        settings, retry, params = cls.split_kwargs(proxy, kwargs)
        endpoint = endpoint_of(settings)
        body = endpoint.request_body(model, messages, params)
        return FragmentStream(cls._fragments(body, client, settings, retry, sleep))

    @classmethod
    def build_body(cls, model: str, messages: Messages, params: dict[str, Any]) -> dict[str, Any]:
        """The request body: the seed's defaults, then the caller's parameters."""
        return FREENETFLY.build_body(model, messages, params)

    @classmethod
    def split_kwargs(
        cls, proxy: str | None, kwargs: dict[str, Any]
    ) -> tuple[ClientSettings, RetrySettings, dict[str, Any]]:
        """Separate connection and retry settings from request parameters."""
        client_kwargs = {k: kwargs[k] for k in kwargs if k in _CLIENT_KWARGS}
        retry_kwargs = {k: kwargs[k] for k in kwargs if k in _RETRY_KWARGS}
        params = {
            k: v for k, v in kwargs.items() if k not in client_kwargs and k not in retry_kwargs
        }
        if "api_endpoint" in client_kwargs:
            client_kwargs["endpoint"] = client_kwargs.pop("api_endpoint")
        if "timeout" in client_kwargs:
            client_kwargs["total_timeout_s"] = float(client_kwargs.pop("timeout"))
        client_kwargs.setdefault("endpoint", cls.api_endpoint)
        client_kwargs.setdefault("base_url", cls.url)
        return (ClientSettings(proxy=proxy, **client_kwargs), RetrySettings(**retry_kwargs), params)

    @classmethod
    async def _fragments(
        cls,
        body: dict[str, Any],
        client: ChatClient | None,
        settings: ClientSettings,
        retry: RetrySettings,
        sleep: Sleep | None,
    ) -> AsyncIterator[str]:
        if client is not None:
            async for text in client.stream(body):
                yield text
            return
        from ..http.client import ChatClient

        own = (
            ChatClient(settings, retry)
            if sleep is None
            else ChatClient(settings, retry, sleep=sleep)
        )
        async with own as own_client:
            async for text in own_client.stream(body):
                yield text

    @classmethod
    async def _process_response(cls, response: Any) -> AsyncIterator[str]:
        """Yield the text fragments of a streamed body, leniently, up to `[DONE]`.

        `response.content` is an aiohttp stream (read in raw chunks) or any async
        iterable of byte lines, with or without their line endings. Malformed chunks
        are logged and skipped; an error object in the stream raises `StreamError`.
        """
        reader = SSEAnswerReader(AnswerBuilder(), on_malformed=_log_malformed)
        async for piece in _body_pieces(response.content):
            for text in reader.feed(piece):
                yield text
            if reader.done:
                return
        for text in reader.close():
            yield text


def _log_malformed(data: bytes) -> None:
    log.warning("skipping a malformed chunk: %.80r", data.decode("utf-8", "replace"))


async def _body_pieces(content: Any) -> AsyncIterator[bytes]:
    """Raw chunks of an aiohttp stream, or the items of a line iterator, newline-ended."""
    if hasattr(content, "iter_any"):
        async for raw in content.iter_any():
            yield raw
        return
    async for item in content:
        line = item.encode() if isinstance(item, str) else bytes(item)
        yield line if line.endswith((b"\n", b"\r")) else line + b"\n"
