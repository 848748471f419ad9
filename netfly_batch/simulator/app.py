"""The simulated OpenAI-compatible endpoint: aiohttp.web routes and their stats."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web

from .chat import (
    BadRequestError,
    ChatRequest,
    last_user_text,
    parse_chat_request,
    prompt_key,
    reply_for,
    simulate_answer,
)
from .faults import FaultKind, FaultPlan
from .responses import (
    CLOSING_KEY,
    cut_connection,
    error_payload,
    json_response,
    send_json,
    send_stream,
    status_fault_response,
)
from .settings import SimulatorSettings
from .structured import invalid_variant

__all__ = [
    "CHAT_PATHS",
    "MODELS_PATH",
    "PLAN_KEY",
    "SETTINGS_KEY",
    "STATS_KEY",
    "SimulatorStats",
    "build_app",
    "reply_for",
]

log = logging.getLogger(__name__)

CHAT_PATHS = ("/api/openai/v1/chat/completions", "/v1/chat/completions")
MODELS_PATH = "/v1/models"
OWNER = "netfly-simulator"


@dataclass(slots=True)
class SimulatorStats:
    """What the simulator has seen and done since it started (mutated by the handlers)."""

    requests: int = 0
    answered: int = 0
    bad_requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    faults: Counter[FaultKind] = field(default_factory=Counter)
    attempts_by_key: Counter[str] = field(default_factory=Counter)
    requests_by_content: Counter[str] = field(default_factory=Counter)

    def record_request(self, key: str, content: str, fault: FaultKind | None) -> None:
        """Count one valid chat request and the fault it gets."""
        self.requests += 1
        self.attempts_by_key[key] += 1
        self.requests_by_content[content] += 1
        if fault is not None:
            self.faults[fault] += 1

    def enter(self) -> None:
        """Count a request that starts being answered."""
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        """Count a request that is no longer being answered."""
        self.in_flight -= 1

    def summary(self) -> str:
        """One line: requests served and faults injected by kind."""
        faults = ", ".join(f"{kind.value}={count}" for kind, count in sorted(self.faults.items()))
        injected = f"{sum(self.faults.values())} faults injected" + (
            f" ({faults})" if faults else ""
        )
        return (
            f"served {self.requests} requests ({self.answered} answered without a fault, "
            f"{self.bad_requests} refused as bad requests); {injected}"
        )


STATS_KEY = web.AppKey("netfly_simulator_stats", SimulatorStats)
SETTINGS_KEY = web.AppKey("netfly_simulator_settings", SimulatorSettings)
PLAN_KEY = web.AppKey("netfly_simulator_plan", FaultPlan)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """POST chat completions: a JSON or SSE answer, or the fault the plan picks."""
    settings, stats = request.app[SETTINGS_KEY], request.app[STATS_KEY]
    try:
        chat = parse_chat_request(await request.read(), settings.models[0])
    except BadRequestError as exc:
        stats.bad_requests += 1
        return json_response(error_payload(str(exc), "invalid_request_error", None), status=400)
    key = prompt_key(chat.messages)
    fault = request.app[PLAN_KEY].next_fault(key)
    stats.record_request(key, last_user_text(chat.messages), fault)
    if fault is not None:
        log.debug("request %d (prompt %s) gets fault %s", stats.requests, key, fault.value)
    stats.enter()
    try:
        response = await answer(request, chat, key, fault, settings)
    except ConnectionError:
        log.debug("client of request for prompt %s left mid-answer", key)
        return web.Response()  # never sent: the connection is gone
    finally:
        stats.leave()
    if fault is None:
        stats.answered += 1
    return response


async def answer(
    request: web.Request,
    chat: ChatRequest,
    key: str,
    fault: FaultKind | None,
    settings: SimulatorSettings,
) -> web.StreamResponse:
    """Write the answer to one valid request, with `fault` injected."""
    if fault is not None and fault.status is not None:
        await asyncio.sleep(settings.first_byte_delay_s)
        return status_fault_response(fault, settings)
    if fault is FaultKind.RESET:
        await asyncio.sleep(settings.first_byte_delay_s)
        cut_connection(request)
        return web.Response()  # never sent: the connection is gone
    attempt = request.app[STATS_KEY].attempts_by_key[key]
    completion = simulate_answer(chat, completion_id=f"chatcmpl-sim-{key}-{attempt}", created=now())
    if fault is FaultKind.INVALID_OUTPUT:  # a whole, well-formed answer with wrong content
        fault = None
        if chat.json:
            wrong = invalid_variant(completion.content, chat.schema, attempt)
            completion = dataclasses.replace(completion, content=wrong)
    if chat.stream:
        return await send_stream(request, completion, fault, settings)
    return await send_json(request, completion, fault, settings)


def now() -> int:
    """The `created` timestamp: whole seconds since the epoch."""
    return int(time.time())


async def list_models(request: web.Request) -> web.Response:
    """GET /v1/models: the simulator's models in the OpenAI list shape."""
    models = request.app[SETTINGS_KEY].models
    data = [{"id": model, "object": "model", "owned_by": OWNER} for model in models]
    return json_response({"object": "list", "data": data})


async def end_stalls(app: web.Application) -> None:
    """On shutdown, let stalled answers end at once."""
    app[CLOSING_KEY].set()


def build_app(settings: SimulatorSettings | None = None) -> web.Application:
    """The simulator as an aiohttp application; its stats are in `app[STATS_KEY]`."""
    settings = settings or SimulatorSettings()
    app = web.Application()
    app[SETTINGS_KEY] = settings
    app[STATS_KEY] = SimulatorStats()
    app[PLAN_KEY] = FaultPlan(
        settings.faults,
        seed=settings.seed,
        fail_first=settings.fail_first,
        fail_first_kind=settings.fail_first_kind,
    )
    app[CLOSING_KEY] = asyncio.Event()
    app.on_shutdown.append(end_stalls)
    for path in CHAT_PATHS:
        app.router.add_post(path, chat_completions)
    app.router.add_get(MODELS_PATH, list_models)
    return app
