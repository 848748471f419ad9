"""Frozen settings and their defaults: the one place where a default lives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FREENETFLY_URL = "https://free.netfly.top"
FREENETFLY_ENDPOINT = "/api/openai/v1/chat/completions"
FREENETFLY_MODELS = ("gpt-3.5-turbo", "gpt-4")
OPENAI_ENDPOINT = "/v1/chat/completions"  # vLLM, llama.cpp, LiteLLM, OpenAI
DEFAULT_MODEL = "gpt-3.5-turbo"

# Body defaults the original FreeNetfly provider sent; a caller's parameter overrides each.
BODY_DEFAULTS: dict[str, Any] = {
    "temperature": 0.5,
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "top_p": 1,
}

CONNECT_TIMEOUT_S = 10.0
# Covers the wait for the headers and every gap between chunks. Servers that queue a
# request send keep-alive comments every 15 s (llama.cpp), so this stays well above that.
IDLE_TIMEOUT_S = 120.0
TOTAL_TIMEOUT_S = 900.0
MAX_EVENT_BYTES = 8 * 1024 * 1024

MAX_ATTEMPTS = 5
INITIAL_WAIT_S = 2.0
MAX_WAIT_S = 60.0
JITTER_S = 1.0
MAX_RETRY_AFTER_S = 120.0

CONCURRENCY = 8
BREAKER_THRESHOLD = 20
PROBE_AFTER_S = 30.0  # a tripped endpoint of a fleet is tried again after this long
STOP_GRACE_S = 30.0  # after --max-runtime, how long requests in flight may finish


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """Where and how to connect; never holds a request body.

    The "where" fields (base_url, endpoint, api_key, extra_headers, browser_headers) serve
    the Python API; a run passes an `Endpoint` to `ChatClient(endpoint=)` instead.
    """

    base_url: str = FREENETFLY_URL
    endpoint: str = FREENETFLY_ENDPOINT
    api_key: str | None = field(default=None, repr=False)
    proxy: str | None = field(default=None, repr=False)
    trust_env: bool = False
    connect_timeout_s: float = CONNECT_TIMEOUT_S
    idle_timeout_s: float = IDLE_TIMEOUT_S
    total_timeout_s: float = TOTAL_TIMEOUT_S
    max_event_bytes: int = MAX_EVENT_BYTES
    connection_limit: int = 0  # 0: no limit of its own; the pool bounds concurrency
    extra_headers: tuple[tuple[str, str], ...] = ()
    # The desktop-browser headers the FreeNetfly service was sent; other servers need none.
    browser_headers: bool = True


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """How many attempts a request gets and how long to wait between them."""

    max_attempts: int = MAX_ATTEMPTS
    initial_wait_s: float = INITIAL_WAIT_S
    max_wait_s: float = MAX_WAIT_S
    jitter_s: float = JITTER_S
    max_retry_after_s: float = MAX_RETRY_AFTER_S
