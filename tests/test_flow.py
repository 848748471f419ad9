"""Flow control: rate limits, adaptive concurrency on 429s, and the dead-endpoint breaker."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from click.testing import CliRunner
from servers import app_thread, read_results, simulator_thread, sse_answer, write_jsonl

from netfly_batch.cli import main
from netfly_batch.errors import HTTPStatusError, TransportError
from netfly_batch.http.flow import (
    FlowControl,
    FlowSettings,
    TokenBucket,
    estimate_tokens,
)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(main, ["run", *args], catch_exceptions=False)


def test_estimate_tokens_is_chars_over_four_plus_max_tokens() -> None:
    """The documented estimate: message characters / 4 plus max_tokens."""
    body = {
        "messages": [
            {"role": "user", "content": "x" * 40},
            {"role": "user", "content": [{"type": "text", "text": "y" * 8}]},
        ],
        "max_tokens": 100,
    }
    assert estimate_tokens(body) == 12 + 100
    assert estimate_tokens({"messages": [{"role": "user", "content": "abcd"}]}) == 1


def test_token_bucket_waits_for_refill_and_lets_a_huge_take_go_alone() -> None:
    """Taking more than is saved up waits; a take above capacity waits for a full bucket only."""
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=10, capacity=10, clock=clock)
    assert bucket.wait_s(10) == 0
    bucket._tokens -= 10
    assert bucket.wait_s(5) == pytest.approx(0.5)
    clock.now += 1.0
    assert bucket.wait_s(1000) == 0  # full bucket: the oversized take may go
    bucket._tokens -= 1000
    assert bucket.wait_s(1) == pytest.approx(99.1)  # ... and the debt slows what follows


async def test_adaptive_limit_halves_on_429_and_grows_back() -> None:
    """AIMD: a 429 halves the limit once per round trip; successes add 1/limit; bounds hold."""
    clock = FakeClock()
    flow = FlowControl(FlowSettings(concurrency=16, adaptive=True), clock=clock)
    throttled = HTTPStatusError(429, "slow down")
    starts = [await flow.enter() for _ in range(3)]
    clock.now += 0.1
    for started in starts:
        flow.leave(started, throttled, None)
    assert flow.current_limit == 8  # three 429s of one round trip: one decrease
    clock.now += 0.1
    flow.leave(await flow.enter(), throttled, None)
    assert flow.current_limit == 4
    for _ in range(4 * 3):
        flow.leave(await flow.enter(), None, None)
    assert 6 <= flow.current_limit <= 7
    for _ in range(10):
        clock.now += 0.1
        flow.leave(await flow.enter(), throttled, None)
    assert flow.current_limit == 1
    for _ in range(2000):
        flow.leave(await flow.enter(), None, None)
    assert flow.current_limit == 16
    assert flow.rate_limited == 14


async def test_fixed_limit_never_changes_and_counts_429s() -> None:
    """Without --adaptive the limit stays at --concurrency; 429s are still counted."""
    flow = FlowControl(FlowSettings(concurrency=5))
    flow.leave(await flow.enter(), HTTPStatusError(429, "x", retry_after_s=3), None)
    assert flow.current_limit == 5
    assert flow.rate_limited == 1


async def test_retry_after_and_ratelimit_headers_pause_the_pool() -> None:
    """A Retry-After, or x-ratelimit-remaining 0, pauses new attempts for everyone."""
    clock = FakeClock()
    flow = FlowControl(FlowSettings(concurrency=4, adaptive=True), clock=clock)
    flow.leave(await flow.enter(), HTTPStatusError(429, "x", retry_after_s=2.5), None)
    assert flow._paused_until == pytest.approx(102.5)
    clock.now = 200.0
    flow.leave(
        await flow.enter(),
        None,
        {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "0m30s"},
    )
    assert flow._paused_until == pytest.approx(230.0)
    clock.now = 300.0
    flow.leave(
        await flow.enter(),
        None,
        {"x-ratelimit-remaining-tokens": "15", "x-ratelimit-reset-tokens": "9s"},
    )
    assert flow._paused_until == pytest.approx(230.0)
    flow.leave(
        await flow.enter(),
        None,
        {"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "6m0s"},
    )
    assert flow._paused_until == pytest.approx(360.0)  # capped at a minute


async def test_pause_holds_new_attempts_in_real_time() -> None:
    """While the pool is paused, enter() waits; after it, attempts go on."""
    flow = FlowControl(FlowSettings(concurrency=4, adaptive=True))
    flow.pause(0.2)
    started = time.monotonic()
    mark = await flow.enter()
    assert time.monotonic() - started >= 0.18
    flow.leave(mark, None, None)


async def test_in_flight_never_exceeds_the_adaptive_limit() -> None:
    """Concurrent enter() calls are held at the current limit."""
    flow = FlowControl(FlowSettings(concurrency=8, adaptive=True))
    flow.limit = 3
    over: list[tuple[int, int]] = []
    peaks: list[int] = []

    async def attempt() -> None:
        mark = await flow.enter()
        peaks.append(flow.in_flight)
        if flow.in_flight > flow.current_limit:
            over.append((flow.in_flight, flow.current_limit))
        await asyncio.sleep(0.01)
        flow.leave(mark, None, None)

    await asyncio.gather(*(attempt() for _ in range(30)))
    assert not over
    assert max(peaks[:3]) == 3
    assert max(peaks) <= 8


def test_breaker_counts_only_refusals_in_a_row() -> None:
    """Refused connections and 401/403 count; any other outcome resets the count."""
    tripped: list[Any] = []
    flow = FlowControl(FlowSettings(concurrency=1, breaker_threshold=3), on_trip=tripped.append)
    refused = TransportError("cannot connect", unreachable=True)
    for error in (
        refused,
        HTTPStatusError(401, "no"),
        HTTPStatusError(500, "oops"),
        refused,
        HTTPStatusError(403, "no"),
    ):
        flow.in_flight += 1
        flow.leave(0.0, error, None)
    assert not tripped
    flow.in_flight += 1
    flow.leave(0.0, refused, None)
    assert tripped == [refused]


def request_times(tmp_path: Path, rows: list[dict[str, Any]], *options: str) -> list[float]:
    """Run `rows` at -c 16 with `options` against a quick server; when each request came."""
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    stamps: list[float] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        stamps.append(time.monotonic())
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        await response.write(sse_answer("ok"))
        return response

    with app_thread([web.post("/v1/chat/completions", handler)]) as url:
        result = run_cli(
            str(source), "-o", str(tmp_path / "o.jsonl"), "--base-url", url, "-c", "16", *options
        )
    assert result.exit_code == 0, result.output
    return stamps


def test_rpm_spreads_requests_evenly(tmp_path: Path) -> None:
    """--rpm 1200 (20/s, one second saved up): 60 requests take about two seconds."""
    stamps = request_times(tmp_path, [{"id": i, "prompt": "p"} for i in range(60)], "--rpm", "1200")
    span = stamps[-1] - stamps[0]
    assert span >= 1.6, span
    assert span <= 3.5, span
    late = [t for t in stamps if t - stamps[0] >= 0.5]
    rate = (len(late) - 1) / (late[-1] - late[0])
    assert 15 <= rate <= 24, rate


def throttling_server(capacity: int) -> tuple[list[web.RouteDef], dict[str, int]]:
    """A server that answers 429 (Retry-After 0.05) above `capacity` concurrent requests."""
    state = {"in_flight": 0, "throttled": 0, "answered": 0}

    async def handler(request: web.Request) -> web.StreamResponse:
        if state["in_flight"] >= capacity:
            state["throttled"] += 1
            return web.json_response(
                {"error": {"message": "busy", "code": 429}},
                status=429,
                headers={"Retry-After": "0.05"},
            )
        state["in_flight"] += 1
        try:
            response = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await response.prepare(request)
            await asyncio.sleep(0.03)
            await response.write(sse_answer("fine"))
            state["answered"] += 1
            return response
        finally:
            state["in_flight"] -= 1

    return [web.post("/v1/chat/completions", handler)], state


def test_adaptive_mode_converges_and_beats_a_fixed_pool(tmp_path: Path) -> None:
    """Against a server with room for 4, --adaptive sees far fewer 429s and loses nothing."""
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": i, "prompt": "p"} for i in range(150)])
    outcomes = {}
    for mode in ("--no-adaptive", "--adaptive"):
        routes, state = throttling_server(capacity=4)
        out = tmp_path / f"{mode}.jsonl"
        summary = tmp_path / f"{mode}.json"
        with app_thread(routes) as url:
            result = run_cli(
                str(source),
                "-o",
                str(out),
                "--base-url",
                url,
                "-c",
                "32",
                mode,
                "--max-attempts",
                "30",
                "--retry-wait",
                "0.01",
                "--summary-json",
                str(summary),
            )
        assert result.exit_code == 0, result.output
        rows = read_results(out)
        assert len(rows) == 150
        assert {r["status"] for r in rows} == {"ok"}
        assert state["answered"] == 150
        outcomes[mode] = (state["throttled"], orjson.loads(summary.read_bytes()))
    fixed_429s, _ = outcomes["--no-adaptive"]
    adaptive_429s, adaptive_summary = outcomes["--adaptive"]
    assert adaptive_summary["rate_limited"] == adaptive_429s
    assert adaptive_429s * 2 < fixed_429s, (adaptive_429s, fixed_429s)
    assert adaptive_summary["concurrency_limit"] <= 12


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_breaker_trips_on_a_closed_port_and_rerun_completes(tmp_path: Path) -> None:
    """Connection refused everywhere: exit 5, no result written, a later run does it all."""
    source = write_jsonl(
        tmp_path / "in.jsonl", [{"id": f"p{i}", "prompt": f"prompt {i}"} for i in range(40)]
    )
    out = tmp_path / "out.jsonl"
    result = run_cli(
        str(source),
        "-o",
        str(out),
        "--base-url",
        f"http://127.0.0.1:{closed_port()}",
        "--retry-wait",
        "0.01",
        "--breaker-threshold",
        "10",
    )
    assert result.exit_code == 5
    assert "endpoint unreachable: cannot connect to 127.0.0.1" in result.stderr
    assert "rerun to resume" in result.stderr
    assert out.read_bytes() == b""
    with simulator_thread() as sim:
        again = run_cli(str(source), "-o", str(out), "--base-url", sim.url)
    assert again.exit_code == 0
    assert sorted(r["id"] for r in read_results(out)) == sorted(f"p{i}" for i in range(40))


def test_breaker_trips_on_401_and_leaves_the_rest_untried(tmp_path: Path) -> None:
    """401 to everything: the run stops after the threshold; untried prompts have no line."""
    source = write_jsonl(
        tmp_path / "in.jsonl", [{"id": f"p{i}", "prompt": f"prompt {i}"} for i in range(100)]
    )
    out = tmp_path / "out.jsonl"
    seen = {"count": 0}

    async def refuse(request: web.Request) -> web.Response:
        seen["count"] += 1
        return web.json_response({"error": {"message": "invalid api key", "code": 401}}, status=401)

    with app_thread([web.post("/v1/chat/completions", refuse)]) as url:
        result = run_cli(str(source), "-o", str(out), "--base-url", url, "-c", "2")
    assert result.exit_code == 5
    assert "invalid api key" in result.stderr
    rows = read_results(out)
    assert 20 <= seen["count"] <= 22
    assert len(rows) <= seen["count"]
    assert {r["status"] for r in rows} == {"error"}
    with simulator_thread() as sim:
        again = run_cli(str(source), "-o", str(out), "--base-url", sim.url)
        assert sim.stats.requests == 100
    assert again.exit_code == 0
    assert len(read_results(out)) == 100


def test_tpm_spreads_estimated_tokens_evenly(tmp_path: Path) -> None:
    """--tpm 6000 (100 estimated tokens/s): 30 requests of ~10 tokens take about two seconds."""
    stamps = request_times(
        tmp_path, [{"id": i, "prompt": "p", "max_tokens": 10} for i in range(30)], "--tpm", "6000"
    )
    span = stamps[-1] - stamps[0]
    assert span >= 1.5, span
    assert span <= 4.0, span
