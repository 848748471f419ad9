"""Running the simulator on a TCP port: for tests (`running_simulator`) and `serve`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from aiohttp import web

from .app import STATS_KEY, SimulatorStats, build_app
from .settings import DEFAULT_HOST, SimulatorSettings

log = logging.getLogger(__name__)

# Seconds the shutdown waits for answers in progress (stalls!) before cancelling them.
SHUTDOWN_TIMEOUT_S = 0.5
LISTENING = (
    "netfly-batch simulator listening on {url} "
    "(POST /v1/chat/completions, /api/openai/v1/chat/completions)"
)


@dataclass(frozen=True, slots=True)
class RunningSimulator:
    """A simulator serving on `url` until its context manager exits."""

    url: str
    app: web.Application

    @property
    def stats(self) -> SimulatorStats:
        """The live stats of the running app."""
        return self.app[STATS_KEY]


def _url(host: str, port: int) -> str:
    """The base URL of a listening socket."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


@contextlib.asynccontextmanager
async def running_simulator(
    settings: SimulatorSettings | None = None,
    host: str = DEFAULT_HOST,
    port: int = 0,
    *,
    shutdown_timeout_s: float = SHUTDOWN_TIMEOUT_S,
) -> AsyncIterator[RunningSimulator]:
    """Serve the simulator on `host:port` (0: a free port) for the duration of the block."""
    app = build_app(settings)
    runner = web.AppRunner(app, shutdown_timeout=shutdown_timeout_s)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = runner.addresses[0][1]
        simulator = RunningSimulator(url=_url(host, bound_port), app=app)
        log.info("simulator listening on %s", simulator.url)
        yield simulator
    finally:
        await runner.cleanup()


async def serve_forever(
    settings: SimulatorSettings,
    host: str,
    port: int,
    echo: Callable[[str], None],
) -> SimulatorStats:
    """Serve until SIGINT or SIGTERM, then echo a one-line summary; return the stats."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        async with running_simulator(settings, host, port) as simulator:
            echo(LISTENING.format(url=simulator.url))
            await stop.wait()
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
    echo(f"netfly-batch simulator stopped: {simulator.stats.summary()}")
    return simulator.stats
