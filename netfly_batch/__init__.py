"""netfly-batch: large batches of streamed chat completions, reliably and fast."""

from .chunks import Completion
from .client import ChatClient
from .errors import (
    HTTPStatusError,
    InputError,
    ModelNotSupportedError,
    NetflyError,
    OutputError,
    RequestError,
    StreamError,
    TransportError,
)
from .providers import AsyncGeneratorProvider, FreeNetfly, ProviderModelMixin
from .settings import ClientSettings, RetrySettings

__version__ = "0.1.0"

__all__ = [
    "AsyncGeneratorProvider",
    "ChatClient",
    "ClientSettings",
    "Completion",
    "FreeNetfly",
    "HTTPStatusError",
    "InputError",
    "ModelNotSupportedError",
    "NetflyError",
    "OutputError",
    "ProviderModelMixin",
    "RequestError",
    "RetrySettings",
    "StreamError",
    "TransportError",
    "__version__",
    "complete",
]


async def complete(messages: list[dict[str, object]], model: str = "gpt-3.5-turbo",
                   **kwargs: object) -> Completion:
    """One whole answer (with retries) from FreeNetfly or any server given `base_url=`."""
    settings, retry, params = FreeNetfly.split_kwargs(kwargs.pop("proxy", None), dict(kwargs))  # type: ignore[arg-type]
    body = FreeNetfly.build_body(model, messages, params)
    async with ChatClient(settings, retry) as client:
        return await client.complete(body)
