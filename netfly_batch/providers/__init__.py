"""Providers: classes that know one service's URL, models and request shape."""

from .base import AsyncGeneratorProvider, Messages, ProviderModelMixin
from .freenetfly import FreeNetfly

__all__ = ["AsyncGeneratorProvider", "FreeNetfly", "Messages", "ProviderModelMixin"]
