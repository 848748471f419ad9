"""`complete()`: one whole answer in one call, for scripts that need no pool."""

from __future__ import annotations

from typing import Any

from .chunks import Completion
from .client import ChatClient
from .providers import FreeNetfly


async def complete(messages: list[dict[str, Any]], model: str = FreeNetfly.default_model,
                   **kwargs: Any) -> Completion:
    """One whole answer (with retries) from FreeNetfly or any server given `base_url=`.

    kwargs are split as in `FreeNetfly.create_async_generator`: connection settings
    configure the client, everything else goes into the request body.
    """
    proxy = kwargs.pop("proxy", None)
    settings, retry, params = FreeNetfly.split_kwargs(proxy, kwargs)
    if settings.base_url.rstrip("/") == FreeNetfly.url:
        model = FreeNetfly.get_model(model)
    body = FreeNetfly.build_body(model, messages, params)
    async with ChatClient(settings, retry) as client:
        return await client.complete(body)
