"""Shared fixtures: a recording fake `sleep`, a scripted local HTTP server, a closed port."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence

import pytest
from aiohttp import web

from netfly_batch.settings import FREENETFLY_ENDPOINT

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RecordingSleep:
    """A fake `sleep` for `ChatClient(sleep=...)`: returns at once, records each delay."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


class ScriptedServer:
    """A local HTTP server that answers its n-th request with the n-th handler.

    The last handler answers every request after it. Every request's body, headers and
    connection (its transport) are recorded, so tests can count requests and connections.
    """

    def __init__(self, handlers: Sequence[Handler]) -> None:
        if not handlers:
            raise ValueError("a scripted server needs at least one handler")
        self.handlers = list(handlers)
        self.bodies: list[bytes] = []
        self.headers: list[Mapping[str, str]] = []
        self.transports: list[object] = []  # kept alive, so their ids stay distinct
        self.url = ""

    @property
    def requests(self) -> int:
        """How many requests arrived."""
        return len(self.bodies)

    @property
    def connections(self) -> int:
        """How many distinct connections those requests came on."""
        return len({id(transport) for transport in self.transports})

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Record the request, then answer it with its scripted handler."""
        index = len(self.bodies)
        self.bodies.append(await request.read())
        self.headers.append(request.headers)
        self.transports.append(request.transport)
        return await self.handlers[min(index, len(self.handlers) - 1)](request)


@pytest.fixture
def fake_sleep() -> RecordingSleep:
    """A `sleep` that takes no time and records the delays it was asked for."""
    return RecordingSleep()


@pytest.fixture
async def serve(aiohttp_server):
    """Start a `ScriptedServer` on loopback: `server = await serve(handler, ...)`.

    It answers POST on FreeNetfly's endpoint path (or `path=`); `server.url` is the
    base URL to pass as `base_url`.
    """

    async def start(*handlers: Handler, path: str = FREENETFLY_ENDPOINT) -> ScriptedServer:
        server = ScriptedServer(handlers)
        app = web.Application()
        app.router.add_post(path, server.handle)
        running = await aiohttp_server(app)
        server.url = str(running.make_url("/")).rstrip("/")
        return server

    return start


@pytest.fixture
def closed_port() -> int:
    """A loopback TCP port that nothing listens on (connecting is refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
