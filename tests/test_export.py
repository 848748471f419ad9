"""`netfly-batch export`: OpenAI Batch output (and error) files, JSONL and CSV, in order."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from openai.types.chat import ChatCompletion

from netfly_batch.cli import main
from netfly_batch.outputs.export import batch_line, batch_request_id
from netfly_batch.results import Result


def batch_input(path: Path, count: int) -> Path:
    """An OpenAI Batch API input file of `count` requests, plus one broken line; the
    server refuses requests 5 and 7 (max_tokens 0: HTTP 400)."""
    lines = [
        orjson.dumps({
            "custom_id": f"req-{n}", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "gpt-4", "messages": [{"role": "user", "content": f"Q{n}"}],
                     **({"max_tokens": 0} if n in (5, 7) else {})},
        })
        for n in range(count)
    ]  # fmt: skip
    lines.insert(3, b'{"custom_id": "broken", "body": {"messages": "not a list"}}')
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_openai_batch_round_trip_with_an_error_file(tmp_path):
    """Run a Batch input file, export it: one line per custom_id, split as OpenAI splits."""
    prompts = batch_input(tmp_path / "batch.jsonl", 12)
    out = tmp_path / "out.jsonl"
    ran = invoke("run", str(prompts), "-o", str(out), "--simulate")
    assert ran.exit_code == 1, ran.output  # two 400s and one invalid line
    output, errors = tmp_path / "batch_output.jsonl", tmp_path / "batch_errors.jsonl"
    done = invoke("export", str(out), "-o", str(output), "--errors", str(errors))
    assert done.exit_code == 0, done.output
    answered, failed = read_lines(output), read_lines(errors)
    ids = [line["custom_id"] for line in answered + failed]
    assert sorted(ids) == sorted([f"req-{n}" for n in range(12)] + ["broken"])
    assert len(answered) == 10
    for line in answered:
        assert line["id"] == batch_request_id(line["custom_id"])
        assert line["error"] is None
        assert line["response"]["status_code"] == 200
        body = ChatCompletion.model_validate(line["response"]["body"])
        assert body.choices[0].message.content == "Echo: Q" + line["custom_id"][4:]
        assert body.model == "gpt-4"
    by_status = {line["custom_id"]: line for line in failed}
    broken = by_status.pop("broken")
    assert broken["response"] is None
    assert broken["error"]["code"] == "invalid_line"
    assert "messages" in broken["error"]["message"]
    assert len(by_status) == 2
    for line in by_status.values():
        assert line["response"]["status_code"] == 400
        assert "max_tokens" in line["response"]["body"]["error"]["message"]
        assert line["error"] is None


def result_line(prompt_id: str, line: int, finished_at: str, content: str = "x") -> bytes:
    return Result(prompt_id, "ok", 1, content, None, line, model="m", finish_reason="stop",
                  finished_at=finished_at, request_hash="0" * 16).to_line()  # fmt: skip


@pytest.mark.parametrize(("sort", "order"), [
    ("line", ["a", "b", "c", "d"]), ("id", ["a", "b", "c", "d"]), ("none", ["c", "a", "d", "b"]),
])  # fmt: skip
def test_sort_restores_input_order_across_shards_and_keeps_the_latest(tmp_path, sort, order):
    """Shards written in completion order come out by line, by id, or as they are;
    an id answered twice is exported once, its latest answer."""
    first, second = tmp_path / "out.0.jsonl", tmp_path / "out.1.jsonl"
    first.write_bytes(result_line("c", 3, "2026-01-01T00:00:01.000Z")
                      + result_line("a", 1, "2026-01-01T00:00:02.000Z", "old")
                      + result_line("d", 4, "2026-01-01T00:00:03.000Z"))  # fmt: skip
    second.write_bytes(result_line("b", 2, "2026-01-01T00:00:04.000Z")
                       + result_line("a", 1, "2026-01-01T00:00:05.000Z", "new"))  # fmt: skip
    target = tmp_path / "export.jsonl"
    done = invoke("export", str(first), str(second), "-o", str(target), "--format", "jsonl",
                  "--sort", sort)  # fmt: skip
    assert done.exit_code == 0, done.output
    rows = read_lines(target)
    if sort == "none":  # file order: the first file's lines, then the second's
        order = ["c", "d", "b", "a"]
    assert [row["id"] for row in rows] == order
    assert next(row for row in rows if row["id"] == "a")["content"] == "new"


def test_csv_has_one_row_per_result_with_calls_and_tokens(tmp_path):
    """CSV: a header, then one row per result with tool calls as JSON and token counts."""
    record = Result("t", "ok", 2, "", None, 1, model="m", finish_reason="tool_calls",
                    usage={"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
                    tool_calls=[{"id": "c", "type": "function",
                                 "function": {"name": "f", "arguments": "{}"}}],
                    request_hash="0" * 16, endpoint="http://gpu1:8000")  # fmt: skip
    failed = Result("e", "error", 5, None, {"type": "http_status", "message": "boom",
                                            "status": 500}, 2)  # fmt: skip
    out = tmp_path / "out.jsonl"
    out.write_bytes(record.to_line() + failed.to_line())
    target = tmp_path / "out.csv"
    assert invoke("export", str(out), "-o", str(target), "--format", "csv").exit_code == 0
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [row["id"] for row in rows] == ["t", "e"]
    assert orjson.loads(rows[0]["tool_calls"])[0]["function"]["name"] == "f"
    assert (rows[0]["prompt_tokens"], rows[0]["total_tokens"], rows[0]["attempts"]) == (
        "3", "7", "2")  # fmt: skip
    assert (rows[1]["status"], rows[1]["error_message"]) == ("error", "boom")
    assert (rows[0]["endpoint"], rows[1]["endpoint"]) == ("http://gpu1:8000", "")


def test_an_http_error_and_a_transport_error_as_batch_lines():
    """An HTTP error keeps its status and the server's error; a transport error has none."""
    http = batch_line({"id": "h", "status": "error", "request_id": "req-1",
                       "error": {"type": "http_status", "message": "quota", "status": 429,
                                 "code": "rate_limit_exceeded"}})  # fmt: skip
    assert http["response"] == {
        "status_code": 429,
        "request_id": "req-1",
        "body": {
            "error": {"message": "quota", "type": "http_status", "code": "rate_limit_exceeded"}
        },
    }
    transport = batch_line(
        {
            "id": "t",
            "status": "error",
            "error": {"type": "transport", "message": "connection dropped"},
        }
    )
    assert transport["response"] is None
    assert transport["error"] == {"code": "transport", "message": "connection dropped"}


def test_an_unreadable_file_exits_3(tmp_path):
    """A missing OUT is named, and the exit code is 3."""
    done = invoke("export", str(tmp_path / "missing.jsonl"), "-o", str(tmp_path / "x.jsonl"))
    assert done.exit_code == 3
    assert "cannot read" in done.output
    assert not (tmp_path / "x.jsonl").exists()


def test_an_id_with_an_answer_is_exported_once_even_after_an_invalid_line(tmp_path):
    """An older invalid line of an id answered later is not a second line for it."""
    out = tmp_path / "out.jsonl"
    out.write_bytes(Result("a", "invalid", 0, None, {"type": "invalid_line", "message": "m"},
                           1).to_line()
                    + result_line("a", 1, "2026-01-01T00:00:05.000Z")
                    + b'"id status"\n')  # fmt: skip
    target = tmp_path / "export.jsonl"
    done = invoke("export", str(out), "-o", str(target))
    assert done.exit_code == 0, done.output
    assert [line["custom_id"] for line in read_lines(target)] == ["a"]
    assert "skipped 1 unreadable lines" in done.output


def test_errors_file_must_not_be_the_output_file(tmp_path):
    """-o X --errors X is refused before anything is written."""
    out = tmp_path / "out.jsonl"
    out.write_bytes(result_line("a", 1, "2026-01-01T00:00:05.000Z"))
    target = tmp_path / "x.jsonl"
    done = invoke("export", str(out), "-o", str(target), "--errors", str(target))
    assert done.exit_code == 3
    assert "--errors names the output file itself" in done.output
    assert not target.exists()
