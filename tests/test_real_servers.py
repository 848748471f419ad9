"""How real servers misbehave, end to end: every input line still gets exactly one result.

Each case reproduces a real server's behaviour (llama.cpp cutting a stream short, LiteLLM
relaying errors inside a 200, slow first bytes, huge events, renamed headers) and runs the
real CLI against it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from click.testing import CliRunner
from servers import app_thread, read_results, simulator_thread, sse_answer, write_jsonl

from netfly_batch.cli import main
from netfly_batch.simulator import SimulatorSettings
from netfly_batch.simulator.faults import FaultRates

PROMPTS = 6
CAPTURES = Path(__file__).resolve().parent / "data" / "captures"


def run_cli(url: str, tmp_path: Path, *extra: str) -> tuple[Any, list[dict[str, Any]]]:
    """Run PROMPTS prompts against `url`; return the CLI result and OUT's rows."""
    source = write_jsonl(
        tmp_path / "in.jsonl", [{"id": f"p{i}", "prompt": f"prompt {i}"} for i in range(PROMPTS)]
    )
    out = tmp_path / "out.jsonl"
    summary = tmp_path / "summary.json"
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(source),
            "-o",
            str(out),
            "--base-url",
            url,
            "--retry-wait",
            "0",
            "--summary-json",
            str(summary),
            *extra,
        ],
        catch_exceptions=False,
    )
    rows = read_results(out)
    assert sorted(Counter(r["id"] for r in rows).items()) == [(f"p{i}", 1) for i in range(PROMPTS)]
    result.summary = orjson.loads(summary.read_bytes())
    return result, rows


def scripted(*answers: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
    """A handler that gives each prompt the scripted answers in turn (the last one repeats)."""
    seen: Counter[str] = Counter()

    async def handler(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        key = body["messages"][-1]["content"]
        answer = answers[min(seen[key], len(answers) - 1)]
        seen[key] += 1
        return await answer(request)

    handler.seen = seen  # type: ignore[attr-defined]
    return handler


def streaming(
    *pieces: bytes,
    delay_s: float = 0.0,
    content_type: str = "text/event-stream",
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Any:
    """An answer that writes `pieces` one by one."""

    async def answer(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            status=status, headers={"content-type": content_type, **(headers or {})}
        )
        await response.prepare(request)
        for piece in pieces:
            if delay_s:
                await asyncio.sleep(delay_s)
            await response.write(piece)
        return response

    return answer


def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return b"data: " + orjson.dumps({"choices": [choice]}) + b"\n\n"


HEALTHY = streaming(sse_answer("complete answer"))


def serve(tmp_path: Path, handler: Any, *extra: str) -> tuple[Any, list[dict[str, Any]]]:
    with app_thread([web.post("/v1/chat/completions", handler)]) as url:
        return run_cli(url, tmp_path, *extra)


def test_done_without_finish_reason_is_retried(tmp_path: Path) -> None:
    """llama.cpp when busy: role chunk, [DONE], no finish_reason: retried, never an empty ok."""
    busy = streaming(
        chunk({"role": "assistant"}), chunk({"content": "partial"}), b"data: [DONE]\n\n"
    )
    handler = scripted(busy, HEALTHY)
    result, rows = serve(tmp_path, handler)
    assert result.exit_code == 0
    assert {(r["content"], r["attempts"]) for r in rows} == {("complete answer", 2)}


def test_done_without_finish_reason_every_time_is_an_error(tmp_path: Path) -> None:
    """When every attempt is cut short, the result is an error, not an empty ok."""
    busy = streaming(chunk({"role": "assistant"}), b"data: [DONE]\n\n")
    result, rows = serve(tmp_path, scripted(busy), "--max-attempts", "2")
    assert result.exit_code == 1
    assert {r["status"] for r in rows} == {"error"}
    assert all("finish_reason" in r["error"]["message"] for r in rows)


@pytest.mark.parametrize(
    ("code", "retried"),
    [
        ("500", True),
        (429, True),
        ("503", True),
        (None, True),
        ("400", False),
        ("content_filter", False),
    ],
    ids=["str-500", "int-429", "str-503", "no-code", "str-400", "filter"],
)
def test_inband_error_is_classified_by_its_code(tmp_path: Path, code: Any, retried: bool) -> None:
    """LiteLLM's error event inside a 200: retried like its status, else failed at once."""
    error = {"error": {"message": "upstream says no", "type": None, "code": code}}
    relayed = streaming(
        chunk({"role": "assistant", "content": "Hel"}), b"data: " + orjson.dumps(error) + b"\n\n"
    )
    result, rows = serve(tmp_path, scripted(relayed, HEALTHY))
    if retried:
        assert result.exit_code == 0
        assert {(r["content"], r["attempts"]) for r in rows} == {("complete answer", 2)}
    else:
        assert result.exit_code == 1
        for row in rows:
            assert row["attempts"] == 1
            assert row["error"]["type"] == "stream_error"
            assert "upstream says no" in row["error"]["message"]
            assert row["error"]["code"] == str(code)


def test_unparseable_200_body_fails_after_attempts(tmp_path: Path) -> None:
    """A 200 whose body is neither SSE nor JSON is retried, then one error result each."""
    garbage = streaming(b"<html>Bad gateway</html>\n", content_type="text/html")
    result, rows = serve(tmp_path, scripted(garbage), "--max-attempts", "3")
    assert result.exit_code == 1
    for row in rows:
        assert row["attempts"] == 3
        assert "neither SSE nor JSON" in row["error"]["message"]
        assert "<html>Bad gateway</html>" in row["error"]["message"]


def test_plain_text_500_says_it_was_not_json(tmp_path: Path) -> None:
    """LiteLLM without a key: a plain-text 500; the error shows its first line."""
    body = (CAPTURES / "litellm-no-key.body").read_bytes()
    plain = streaming(body, status=500, content_type="text/plain")
    result, rows = serve(tmp_path, scripted(plain), "--max-attempts", "2")
    assert result.exit_code == 1
    for row in rows:
        assert row["error"]["status"] == 500
        assert "not JSON" in row["error"]["message"]
        assert body.decode().strip() in row["error"]["message"]


def test_headers_delayed_past_the_idle_timeout_fail_the_attempt(tmp_path: Path) -> None:
    """A server that sends nothing at all for longer than --idle-timeout fails the attempt."""
    with simulator_thread(SimulatorSettings(first_byte_delay_s=1.0)) as sim:
        result, rows = run_cli(sim.url, tmp_path, "--idle-timeout", "0.2", "--max-attempts", "2")
    assert result.exit_code == 1
    assert all("no data from the server for 0.2 s" in r["error"]["message"] for r in rows)


def test_keepalive_pings_keep_a_slow_request_alive(tmp_path: Path) -> None:
    """Headers at once, then `: ping` comments: the queued request waits and succeeds."""
    settings = SimulatorSettings(first_byte_delay_s=1.0, ping_interval_s=0.1)
    with simulator_thread(settings) as sim:
        result, rows = run_cli(sim.url, tmp_path, "--idle-timeout", "0.4", "-c", "6")
    assert result.exit_code == 0, result.output
    assert {r["attempts"] for r in rows} == {1}


def test_a_one_megabyte_event_is_fine(tmp_path: Path) -> None:
    """A long answer in one event (1 MB) is read whole; aiohttp's line limit does not apply."""
    big = "x" * 1_000_000
    answer = streaming(
        chunk({"content": big[:500_000]}) + chunk({"content": big[500_000:]}, "stop"),
        b"data: [DONE]\n\n",
    )
    result, rows = serve(tmp_path, scripted(answer))
    assert result.exit_code == 0
    assert {len(r["content"]) for r in rows} == {1_000_000}


def test_an_event_over_the_limit_fails_clearly(tmp_path: Path) -> None:
    """An event larger than --max-event-bytes fails at once with a clear error."""
    answer = streaming(chunk({"content": "y" * 300_000}, "stop"), b"data: [DONE]\n\n")
    result, rows = serve(tmp_path, scripted(answer), "--max-event-bytes", "100000")
    assert result.exit_code == 1
    for row in rows:
        assert row["attempts"] == 1
        assert "larger than 100000 bytes" in row["error"]["message"]


def test_litellm_renamed_retry_after_is_honoured(tmp_path: Path) -> None:
    """`llm_provider-retry-after` is read like Retry-After (so the wait is short here)."""
    body = (CAPTURES / "litellm-429.body").read_bytes()
    limited = streaming(
        body,
        status=429,
        content_type="application/json",
        headers={"llm_provider-retry-after": "0.05"},
    )
    handler = scripted(limited, HEALTHY)
    result, rows = serve(tmp_path, handler, "--retry-wait", "30")
    assert result.exit_code == 0, result.output
    assert {r["attempts"] for r in rows} == {2}
    assert result.summary["rate_limited"] == PROMPTS
    assert result.summary["wall_s"] < 10


def test_empty_ok_results_are_counted(tmp_path: Path) -> None:
    """A server that 'succeeds' with nothing: ok results, but the summary says how many."""
    empty = streaming(chunk({"role": "assistant"}), chunk({}, "stop"), b"data: [DONE]\n\n")
    result, rows = serve(tmp_path, scripted(empty))
    assert result.exit_code == 0
    assert {r["content"] for r in rows} == {""}
    assert result.summary["empty_ok"] == PROMPTS
    assert f"{PROMPTS} ok with empty content" in result.stderr


@pytest.mark.parametrize(
    "fault",
    [
        "rate_429",
        "rate_500",
        "rate_502",
        "rate_503",
        "reset",
        "disconnect",
        "malformed",
        "inband_error",
        "truncated",
        "no_done",
    ],
)
def test_each_simulated_fault_is_retried_to_success(tmp_path: Path, fault: str) -> None:
    """The simulator's fault kinds, injected on the first attempt of each prompt."""
    settings = SimulatorSettings(fail_first=1, fail_first_kind=fault, retry_after_s=0.01)
    with simulator_thread(settings) as sim:
        result, rows = run_cli(sim.url, tmp_path)
        assert sim.stats.requests == 2 * PROMPTS
    assert result.exit_code == 0, result.output
    for row in rows:
        assert row["attempts"] == 2
        assert row["content"] == f"Echo: prompt {row['id'][1:]}"


def test_stall_hits_the_idle_timeout_then_recovers(tmp_path: Path) -> None:
    """A stream that stalls fails its attempt at --idle-timeout; the retry succeeds."""
    settings = SimulatorSettings(fail_first=1, fail_first_kind="stall", stall_s=30)
    with simulator_thread(settings) as sim:
        result, rows = run_cli(sim.url, tmp_path, "--idle-timeout", "0.3", "-c", "6")
    assert result.exit_code == 0
    assert {r["attempts"] for r in rows} == {2}


def test_fault_rates_every_line_ends_once(tmp_path: Path) -> None:
    """A mix of every fault at once: each prompt still ends as exactly one result."""
    rates = FaultRates(
        rate_429=0.05,
        rate_500=0.05,
        reset=0.05,
        disconnect=0.05,
        malformed=0.05,
        inband_error=0.05,
        truncated=0.05,
        no_done=0.05,
    )
    with simulator_thread(SimulatorSettings(faults=rates, seed=3, retry_after_s=0)) as sim:
        result, rows = run_cli(sim.url, tmp_path, "--max-attempts", "2")
    assert result.exit_code in (0, 1)
    for row in rows:
        if row["status"] == "ok":
            assert row["content"] == f"Echo: prompt {row['id'][1:]}"
        else:
            assert row["attempts"] == 2
