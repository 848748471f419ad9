"""End-to-end tests of `netfly-batch run`: the real CLI against real local HTTP servers."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from click.testing import CliRunner
from servers import app_thread, read_results, simulator_thread, sse_answer, write_jsonl

from netfly_batch.cli import main
from netfly_batch.simulator import SimulatorSettings, reply_for
from netfly_batch.simulator.faults import FaultRates

SHAPES = [
    {"id": "plain", "prompt": "Hello"},
    {"id": "with-system", "prompt": "Hi", "system": "Be brief."},
    {"id": 7, "messages": [{"role": "user", "content": "Numbered id"}]},
    {
        "custom_id": "batch-api",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "gpt-4", "messages": [{"role": "user", "content": "From a batch file"}]},
    },
    {"prompt": "No id at all"},
]


def run_cli(args: list[str], stdin: bytes | None = None) -> Any:
    """Invoke the real Click command in-process."""
    return CliRunner().invoke(main, ["run", *args], input=stdin, catch_exceptions=False)


def messages_of(row: dict[str, Any]) -> list[dict[str, Any]]:
    source = row.get("body", row)
    if "messages" in source:
        return source["messages"]
    return [{"role": "user", "content": source["prompt"]}]


def test_every_input_shape_gets_its_answer(tmp_path: Path) -> None:
    """Each accepted line shape is sent and answered with the simulator's content."""
    source = write_jsonl(tmp_path / "in.jsonl", SHAPES)
    out = tmp_path / "out.jsonl"
    with simulator_thread() as sim:
        result = run_cli([str(source), "-o", str(out), "--base-url", sim.url])
    assert result.exit_code == 0, result.output
    rows = {r["id"]: r for r in read_results(out)}
    assert set(rows) == {"plain", "with-system", "7", "batch-api", "5"}
    for line_no, shape in enumerate(SHAPES, start=1):
        row = rows[str(shape.get("id", shape.get("custom_id", line_no)))]
        assert row["status"] == "ok"
        assert row["content"] == reply_for(messages_of(shape), "m")
        assert row["attempts"] == 1
        assert row["line"] == line_no
        assert row["finish_reason"] == "stop"
        assert row["usage"]["total_tokens"] > 0
        assert row["error"] is None
        assert row["finished_at"].endswith("Z")
    assert rows["batch-api"]["model"] == "gpt-4"


BAD_LINES: list[tuple[bytes, str]] = [
    (b'{"id": "broken", "prompt": "x"', "invalid JSON"),
    (b'["not", "an", "object"]', "expected a JSON object"),
    (b'{"id": "nothing"}', '"prompt" or "messages"'),
    (b'{"id": "t", "prompt": "x", "temperature": "hot"}', "temperature must be a number"),
    (b'{"id": "m", "messages": []}', "messages must be a non-empty list"),
    (b'{"id": "r", "messages": [{"role": "robot", "content": "x"}]}', "role must be one of"),
    (b'{"id": {"a": 1}, "prompt": "x"}', "id must be a string or an integer"),
    (b'{"id": "latin1", "prompt": "caf\xe9"}', "not valid UTF-8"),
    (b'{"id": "good", "prompt": "again"}', "already used on an earlier line"),
]


def test_bad_lines_are_reported_and_never_sent(tmp_path: Path) -> None:
    """Every kind of bad line becomes an invalid result naming its line; good lines go on."""
    rows: list[Any] = [
        {"id": "good", "prompt": "fine"},
        *[line for line, _ in BAD_LINES],
        {"id": "good-2", "prompt": "still fine"},
    ]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    with simulator_thread() as sim:
        result = run_cli([str(source), "-o", str(out), "--base-url", sim.url])
        assert sim.stats.requests == 2
    assert result.exit_code == 1
    results = read_results(out)
    invalid = sorted((r for r in results if r["status"] == "invalid"), key=lambda r: r["line"])
    assert [r["line"] for r in invalid] == list(range(2, 2 + len(BAD_LINES)))
    for row, (_, reason) in zip(invalid, BAD_LINES, strict=True):
        assert row["attempts"] == 0
        assert row["content"] is None
        assert row["error"]["type"] == "invalid_line"
        assert row["error"]["message"].startswith(f"line {row['line']}: ")
        assert reason in row["error"]["message"]
    assert sorted(r["id"] for r in results if r["status"] == "ok") == ["good", "good-2"]
    assert "0 error, 9 invalid" in result.stderr


def test_line_parameters_override_command_line_defaults(tmp_path: Path) -> None:
    """Per-line parameters win over --temperature/--param; others pass through; metadata returns."""
    bodies: list[dict[str, Any]] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        bodies.append(await request.json())
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        await response.write(sse_answer("answer"))
        return response

    rows = [
        {"id": "a", "prompt": "x", "temperature": 0.9, "seed": 3, "metadata": {"row": [1, 2]}},
        {
            "id": "b",
            "body": {
                "messages": [{"role": "user", "content": "y"}],
                "max_tokens": 5,
                "model": "line-model",
            },
        },
        {"id": "c", "prompt": "z"},
    ]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    with app_thread([web.post("/v1/chat/completions", handler)]) as url:
        result = run_cli(
            [
                str(source),
                "-o",
                str(out),
                "--base-url",
                url,
                "-m",
                "cli-model",
                "--temperature",
                "0.1",
                "--max-tokens",
                "50",
                "--param",
                'stop=["END"]',
                "--param",
                "user=tester",
            ]
        )
    assert result.exit_code == 0, result.output
    by_content = {b["messages"][-1]["content"]: b for b in bodies}
    assert by_content["x"]["temperature"] == 0.9
    assert by_content["x"]["seed"] == 3
    assert by_content["x"]["model"] == "cli-model"
    assert by_content["y"]["max_tokens"] == 5
    assert by_content["y"]["model"] == "line-model"
    assert by_content["z"]["temperature"] == 0.1
    assert by_content["z"]["max_tokens"] == 50
    for body in bodies:
        assert body["stream"] is True
        assert body["stop"] == ["END"]
        assert body["user"] == "tester"
        assert body["top_p"] == 1
        assert body["presence_penalty"] == 0
    results = {r["id"]: r for r in read_results(out)}
    assert results["a"]["metadata"] == {"row": [1, 2]}
    assert results["c"]["metadata"] is None


def test_concurrency_is_never_exceeded(tmp_path: Path) -> None:
    """The server never sees more than -c requests at once, and does see that many."""
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": i, "prompt": f"p{i}"} for i in range(30)])
    out = tmp_path / "out.jsonl"
    with simulator_thread(SimulatorSettings(chunk_delay_s=0.01, chunk_count=4)) as sim:
        result = run_cli([str(source), "-o", str(out), "--base-url", sim.url, "-c", "4"])
        assert sim.stats.max_in_flight == 4
        assert sim.stats.requests == 30
    assert result.exit_code == 0
    assert len(read_results(out)) == 30


def test_errors_after_max_attempts_are_recorded(tmp_path: Path) -> None:
    """A prompt that fails every attempt becomes one error result with the server's status."""
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": "x", "prompt": "p"}])
    out = tmp_path / "out.jsonl"
    settings = SimulatorSettings(faults=FaultRates(rate_500=1.0))
    with simulator_thread(settings) as sim:
        result = run_cli(
            [
                str(source),
                "-o",
                str(out),
                "--base-url",
                sim.url,
                "--max-attempts",
                "3",
                "--retry-wait",
                "0",
            ]
        )
        assert sim.stats.requests == 3
    assert result.exit_code == 1
    [row] = read_results(out)
    assert row["status"] == "error"
    assert row["attempts"] == 3
    assert row["content"] is None
    assert row["error"]["type"] == "http_error"
    assert row["error"]["status"] == 500


def test_standard_input_and_summary_json(tmp_path: Path) -> None:
    """`-` reads prompts from stdin; --summary-json writes the summary counts."""
    out = tmp_path / "out.jsonl"
    summary = tmp_path / "summary.json"
    stdin = b'{"id": "s1", "prompt": "one"}\n\n{"id": "s2", "prompt": "two"}\nnope\n'
    with simulator_thread() as sim:
        result = run_cli(
            ["-", "-o", str(out), "--base-url", sim.url, "--summary-json", str(summary)],
            stdin=stdin,
        )
    assert result.exit_code == 1
    data = orjson.loads(summary.read_bytes())
    assert (data["ok"], data["error"], data["invalid"]) == (2, 0, 1)
    assert data["attempts"] == 2
    assert data["exit_code"] == 1
    assert data["outcome"] == "finished"
    assert {r["id"] for r in read_results(out)} == {"s1", "s2", "4"}


def test_simulate_runs_the_bundled_sample(tmp_path: Path) -> None:
    """`--simulate` answers every valid line of samples/prompts.jsonl, offline."""
    sample = Path(__file__).resolve().parents[1] / "samples" / "prompts.jsonl"
    out = tmp_path / "out.jsonl"
    result = run_cli(
        [
            str(sample),
            "-o",
            str(out),
            "--simulate",
            "--sim-fail-rate",
            "0.3",
            "--sim-seed",
            "1",
            "--sim-retry-after-s",
            "0",
            "--retry-wait",
            "0",
            "--max-attempts",
            "10",
        ]
    )
    assert result.exit_code == 0, result.output
    rows = read_results(out)
    assert len(rows) == sum(1 for line in sample.read_bytes().splitlines() if line.strip())
    assert all(r["status"] == "ok" and r["content"].startswith("Echo: ") for r in rows)
    assert sum(r["attempts"] for r in rows) > len(rows)  # some faults were injected


@pytest.mark.parametrize(
    ("make_args", "code", "message"),
    [
        (lambda d: [str(d / "missing.jsonl"), "-o", str(d / "o.jsonl")], 3, "cannot read"),
        (lambda d: [str(d / "in.jsonl"), "-o", str(d / "nodir" / "o.jsonl")], 3, "does not exist"),
        (lambda d: [str(d / "in.jsonl"), "-o", str(d / "in.jsonl")], 3, "same file as INPUT"),
        (lambda d: [str(d / "in.jsonl"), "-o", str(d)], 2, "directory"),
        (lambda d: [str(d / "in.jsonl"), "-o", str(d / "o.jsonl"), "-c", "0"], 2, "-c"),
        (
            lambda d: [str(d / "in.jsonl"), "-o", str(d / "o.jsonl"), "-m", "nope"],
            2,
            "known models",
        ),
        (
            lambda d: [str(d / "in.jsonl"), "-o", str(d / "o.jsonl"), "--max-runtime", "soon"],
            2,
            "not a duration",
        ),
    ],
    ids=[
        "input-missing",
        "out-folder-missing",
        "out-is-input",
        "out-is-folder",
        "bad-concurrency",
        "unknown-model",
        "bad-duration",
    ],
)
def test_user_mistakes_exit_with_one_clear_line(
    tmp_path: Path, make_args: Any, code: int, message: str
) -> None:
    """Each mistake gets its documented exit code and a message, never a traceback."""
    write_jsonl(tmp_path / "in.jsonl", [{"id": 1, "prompt": "x"}])
    result = CliRunner().invoke(main, ["run", *make_args(tmp_path)])
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert (tmp_path / "in.jsonl").read_bytes().count(b"\n") == 1


def test_no_secret_reaches_output_or_stderr(tmp_path: Path) -> None:
    """The API key and the proxy password appear in neither OUT, stderr nor the summary."""
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": "k", "prompt": "p"}])
    out = tmp_path / "out.jsonl"
    summary = tmp_path / "s.json"
    seen_auth: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen_auth.append(request.headers.get("Authorization", ""))
        return web.json_response({"error": {"message": "bad key", "code": 401}}, status=401)

    with app_thread([web.post("/v1/chat/completions", handler)]) as url:
        result = run_cli(
            [
                str(source),
                "-o",
                str(out),
                "--base-url",
                url,
                "--api-key",
                "sk-TOPSECRET-1",
                "--summary-json",
                str(summary),
            ]
        )
        proxied = run_cli(
            [
                str(source),
                "-o",
                str(out),
                "--base-url",
                url,
                "--fresh",
                "--proxy",
                "http://bob:pr0xyPASS@127.0.0.1:9",
                "--max-attempts",
                "1",
            ]
        )
    assert seen_auth == ["Bearer sk-TOPSECRET-1"]
    assert result.exit_code == 1
    assert proxied.exit_code == 1
    text = out.read_text() + result.output + proxied.output + summary.read_text()
    assert "TOPSECRET" not in text
    assert "pr0xyPASS" not in text
    [row] = read_results(out)
    assert row["error"]["type"] == "transport_error"
    assert "proxy" in row["error"]["message"]


def test_results_are_flushed_line_by_line(tmp_path: Path) -> None:
    """While the run goes on, finished results are already complete lines in OUT."""
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": i, "prompt": f"p{i}"} for i in range(4)])
    out = tmp_path / "out.jsonl"
    with simulator_thread(SimulatorSettings(first_byte_delay_s=0.4)) as sim:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "netfly_batch",
                "run",
                str(source),
                "-o",
                str(out),
                "--base-url",
                sim.url,
                "-c",
                "1",
                "-q",
            ],
            stderr=subprocess.DEVNULL,
        )
        counts = []
        deadline = time.monotonic() + 20
        while process.poll() is None and time.monotonic() < deadline:
            if out.exists():
                data = out.read_bytes()
                assert data == b"" or data.endswith(b"\n")
                counts.append(data.count(b"\n"))
            time.sleep(0.05)
        assert process.wait(10) == 0
    seen = sorted(set(counts))
    assert {1, 2, 3} <= set(seen), seen
    assert len(read_results(out)) == 4


def test_help_shows_every_option_and_an_example() -> None:
    """`run --help` explains the options the README names, with an example."""
    result = CliRunner().invoke(main, ["run", "--help"])
    assert result.exit_code == 0
    for option in (
        "--base-url",
        "--endpoint",
        "--api-key",
        "--model",
        "--concurrency",
        "--max-attempts",
        "--idle-timeout",
        "--timeout",
        "--proxy",
        "--temperature",
        "--max-tokens",
        "--progress",
        "--quiet",
        "--summary-json",
        "--fresh",
        "--max-runtime",
        "--simulate",
        "--sim-fail-rate",
        "Example",
    ):
        assert option in result.output


def test_readme_lists_the_options_of_help() -> None:
    """Every long option of `run --help` appears in README.md, so the two stay in step."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    result = CliRunner().invoke(main, ["run", "--help"])
    options = {
        word.strip(",;.[]").split("/")[0]
        for word in result.output.split()
        if word.startswith("--") and not word.startswith("--sim-")
    }
    missing = sorted(o for o in options if o not in readme)
    assert not missing, missing


def test_progress_bar_can_be_forced(tmp_path: Path) -> None:
    """--progress draws a bar on stderr even when it is not a terminal."""
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": i, "prompt": "p"} for i in range(3)])
    result = run_cli([str(source), "-o", str(tmp_path / "o.jsonl"), "--simulate", "--progress"])
    assert result.exit_code == 0
    assert "3/3" in result.stderr
    quiet = run_cli([str(source), "-o", str(tmp_path / "q.jsonl"), "--simulate", "-q"])
    assert quiet.stderr == ""


def test_run_help_lists_options_under_headings() -> None:
    """`run --help` groups its options: each heading once, each option under one."""
    result = CliRunner().invoke(main, ["run", "--help"])
    text = result.output
    headings = ["Output and resume:", "Where to send:", "What to send:", "From a dataset:",
                "Checked answers:", "How hard to push:", "Retries and timeouts:"]  # fmt: skip
    positions = [text.index(heading) for heading in headings]
    assert positions == sorted(positions)
    where = text.index("Where to send:")
    assert where < text.index("--base-url") < text.index("What to send:")
    assert text.index("How hard to push:") < text.index("--probe-after")
    assert text.index("(--simulate starts it)") < text.index("--sim-fail-rate")
    assert text.count("--max-attempts") == 1
