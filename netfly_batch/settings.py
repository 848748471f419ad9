"""Frozen settings and their defaults: the one place where a default lives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .shard import Shard

FREENETFLY_URL = "https://free.netfly.top"
FREENETFLY_ENDPOINT = "/api/openai/v1/chat/completions"
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


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """Where and how to connect; never holds a request body."""

    base_url: str = FREENETFLY_URL
    endpoint: str = FREENETFLY_ENDPOINT
    api_key: str | None = field(default=None, repr=False)
    proxy: str | None = field(default=None, repr=False)
    trust_env: bool = False
    connect_timeout_s: float = CONNECT_TIMEOUT_S
    idle_timeout_s: float = IDLE_TIMEOUT_S
    total_timeout_s: float = TOTAL_TIMEOUT_S
    max_event_bytes: int = MAX_EVENT_BYTES
    connection_limit: int = 0  # 0: no limit of its own; the runner bounds concurrency
    extra_headers: tuple[tuple[str, str], ...] = ()
    # The desktop-browser headers the FreeNetfly service was sent; other servers need none.
    browser_headers: bool = True

    @property
    def url(self) -> str:
        """The full chat-completions URL."""
        endpoint = self.endpoint if self.endpoint.startswith("/") else "/" + self.endpoint
        return self.base_url.rstrip("/") + endpoint


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """How many attempts a request gets and how long to wait between them."""

    max_attempts: int = MAX_ATTEMPTS
    initial_wait_s: float = INITIAL_WAIT_S
    max_wait_s: float = MAX_WAIT_S
    jitter_s: float = JITTER_S
    max_retry_after_s: float = MAX_RETRY_AFTER_S


@dataclass(frozen=True, slots=True)
class RunSettings:
    """One `netfly-batch run`: what to read, where to write, how hard to push."""

    input_path: str  # "-" is standard input
    output_path: str
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)  # request defaults for every line
    concurrency: int = CONCURRENCY
    fresh: bool = False
    max_runtime_s: float | None = None
    progress: bool | None = None  # None: only when stderr is a terminal
    quiet: bool = False
    summary_json: str | None = None
    check_models: bool = True  # the FreeNetfly service knows only its two models
    stop_grace_s: float = 30.0  # after --max-runtime, how long in-flight requests may finish
    rpm: float | None = None  # requests per minute
    tpm: float | None = None  # estimated tokens per minute
    adaptive: bool = False  # AIMD in-flight limit, like TCP congestion control
    breaker_threshold: int = BREAKER_THRESHOLD  # consecutive refused attempts that stop a run
    shard: Shard | None = None  # send only this shard's ids (invalid lines: shard 0 reports)
