"""netfly-batch: large batches of streamed chat completions, reliably and fast.

Layers, highest first; a module imports only its own layer and those below it
(`tests/test_layers.py` holds this):

    cli/, api.py, __init__   commands and the public Python API
    outputs/                 made from OUT files: merge (export, report)
    batch/  providers/  simulator/
                             one run, INPUT to OUT | the seed's FreeNetfly API | the
                             simulated server (peers: none imports another)
    http/                    endpoints (one, or a fleet), ChatClient, retries, limits
    wire/                    SSE, chunks, the answer and its acceptance (pure)
    core                     errors.py, settings.py, results.py, durations.py

Public names are imported on first use (PEP 562), so `netfly-batch --help` does not pay
for aiohttp.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "AsyncGeneratorProvider": "providers",
    "ChatClient": "http.client",
    "Choice": "wire.answer",
    "ClientSettings": "settings",
    "Completion": "wire.answer",
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
    "ToolCall": "wire.answer",
    "TransportError": "errors",
    "complete": "api",
}

__all__ = [
    "AsyncGeneratorProvider",
    "ChatClient",
    "Choice",
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
    "ToolCall",
    "TransportError",
    "__version__",
    "complete",
]

if TYPE_CHECKING:
    from .api import complete
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
    from .http.client import ChatClient
    from .providers import AsyncGeneratorProvider, FreeNetfly, ProviderModelMixin
    from .settings import ClientSettings, RetrySettings
    from .wire.answer import Choice, Completion, ToolCall


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'netfly_batch' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
