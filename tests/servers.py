"""Test helpers: local servers in a background thread, for CLI and subprocess tests.

The CLI runs its own event loop, so a server it talks to must live on another one.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from netfly_batch.simulator import RunningSimulator, SimulatorSettings, running_simulator


class LoopThread:
    """An event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def call(self, coroutine: Awaitable[Any], timeout: float = 30) -> Any:
        """Run a coroutine on the thread's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)  # type: ignore[arg-type]

    def close(self) -> None:
        """Stop the loop and join the thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@contextlib.contextmanager
def simulator_thread(settings: SimulatorSettings | None = None) -> Iterator[RunningSimulator]:
    """The project's simulator on a free loopback port, served from another thread."""
    thread = LoopThread()
    manager = running_simulator(settings or SimulatorSettings())
    try:
        simulator = thread.call(manager.__aenter__())
        yield simulator
    finally:
        thread.call(manager.__aexit__(None, None, None))
        thread.close()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@contextlib.contextmanager
def app_thread(routes: list[web.RouteDef]) -> Iterator[str]:
    """Any aiohttp app on a free loopback port in another thread; yields its base URL."""
    thread = LoopThread()
    app = web.Application()
    app.add_routes(routes)
    runner = web.AppRunner(app, shutdown_timeout=0.2)

    async def start() -> str:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{port}"

    try:
        yield thread.call(start())
    finally:
        thread.call(runner.cleanup())
        thread.close()


def sse_answer(text: str, model: str = "test-model") -> bytes:
    """A complete, healthy streamed answer."""
    chunks = [
        {"choices": [{"index": 0, "delta": {"role": "assistant"}}], "model": model},
        {"choices": [{"index": 0, "delta": {"content": text}}], "model": model},
        {
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "model": model,
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        },
    ]
    return b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


def read_results(path: Path) -> list[dict[str, Any]]:
    """Every line of OUT, parsed (a torn line fails the test)."""
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    """Write rows as JSONL (bytes rows are written as they are)."""
    with open(path, "wb") as handle:
        for row in rows:
            handle.write((row if isinstance(row, bytes) else orjson.dumps(row)) + b"\n")
    return path
