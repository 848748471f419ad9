"""The two small bases of a provider: the async-generator contract and model names."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from ..errors import ModelNotSupportedError

Messages = list[dict[str, Any]]


class AsyncGeneratorProvider(ABC):
    """A provider whose answer arrives as an async stream of text fragments.

    `await Provider.create_async_generator(model, messages)` returns something to
    consume with `async for`; subclasses say where the service is (`url`) and whether
    it is known to work (`working`).
    """

    url: ClassVar[str]
    working: ClassVar[bool] = False

    @classmethod
    @abstractmethod
    async def create_async_generator(
        cls, model: str, messages: Messages, proxy: str | None = None, **kwargs: Any
    ) -> AsyncIterator[str]:
        """Start a request; the result yields the answer's text fragments."""


class ProviderModelMixin:
    """Resolves model names against `models`, falling back to `default_model`."""

    default_model: ClassVar[str]
    models: ClassVar[list[str]]

    @classmethod
    def get_model(cls, model: str | None) -> str:
        """`model` itself if known, `default_model` when empty; else a clear error."""
        if not model:
            return cls.default_model
        if model in cls.models:
            return model
        raise ModelNotSupportedError(model, cls.models)
