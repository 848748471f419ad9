"""`complete()`: one whole answer in one call, for scripts that need no pool."""

from __future__ import annotations

from typing import Any

from .http.client import ChatClient
from .http.endpoints import endpoint_of
from .providers import FreeNetfly
from .settings import DEFAULT_MODEL
from .wire.answer import Completion


async def complete(
    messages: list[dict[str, Any]], model: str = DEFAULT_MODEL, **kwargs: Any
) -> Completion:
    """One whole answer (with retries) from FreeNetfly or any server given `base_url=`.

    kwargs are split as in `FreeNetfly.create_async_generator`: connection settings
    configure the client, everything else goes into the request body.
    """
    proxy = kwargs.pop("proxy", None)
    settings, retry, params = FreeNetfly.split_kwargs(proxy, kwargs)
    endpoint = endpoint_of(settings)
    body = endpoint.request_body(model, messages, params)
    async with ChatClient(settings, retry, endpoint=endpoint) as client:
        return await client.complete(body)
