"""netfly-batch: large batches of streamed chat completions, reliably and fast.

Public names are imported on first use (PEP 562), so `netfly-batch --help` does not pay
for aiohttp.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "AsyncGeneratorProvider": "providers",
    "ChatClient": "client",
    "ClientSettings": "settings",
    "Completion": "answer",
    "FreeNetfly": "providers",
    "HTTPStatusError": "errors",
    "InputError": "errors",
    "ModelNotSupportedError": "errors",
    "NetflyError": "errors",
    "OutputError": "errors",
    "ProviderModelMixin": "providers",
    "RequestError": "errors",
    "RetrySettings": "settings",
    "StreamError": "errors",
    "TransportError": "errors",
    "complete": "api",
}

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

if TYPE_CHECKING:
    from .answer import Completion
    from .api import complete
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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'netfly_batch' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
