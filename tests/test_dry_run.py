"""`run --dry-run`: counts what a run would send, skip and refuse; sends and writes nothing."""

from __future__ import annotations

import orjson
from click.testing import CliRunner

from netfly_batch.batch.plan import request_defaults
from netfly_batch.batch.prompts import request_fingerprint
from netfly_batch.batch.run_settings import RunSettings
from netfly_batch.cli import main
from netfly_batch.http.endpoints import endpoint_for
from netfly_batch.results import Result

BASE = "http://127.0.0.1:9"  # nothing listens: a dry run must not connect


def hash_of(line: dict) -> str:
    settings = RunSettings(input_path="-", output_path="-", endpoint=endpoint_for(BASE))
    return request_fingerprint(line, request_defaults(settings))


def test_counts_match_what_a_run_would_do_and_nothing_is_written(tmp_path):
    """new / changed / error retried / already ok / invalid; OUT untouched, no lock."""
    lines = [
        {"id": "a", "prompt": "same"},
        {"id": "b", "prompt": "failed before", "max_tokens": 30},
        {"id": "c", "prompt": "changed", "max_tokens": 20},
        {"id": "d", "prompt": "new one", "max_tokens": 10},
    ]
    prompts = tmp_path / "in.jsonl"
    prompts.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines) + b"[1]\n")
    out = tmp_path / "out.jsonl"
    out.write_bytes(
        Result("a", "ok", 1, "x", None, 1, request_hash=hash_of(lines[0])).to_line()
        + Result("b", "error", 5, None, {"type": "transport_error"}, 2,
                 request_hash=hash_of(lines[1])).to_line()
        + Result("c", "ok", 1, "old", None, 3, request_hash="0" * 16).to_line()
    )  # fmt: skip
    before = out.read_bytes()
    summary = tmp_path / "summary.json"
    result = CliRunner().invoke(main, ["run", str(prompts), "-o", str(out), "--base-url", BASE,
                                       "--dry-run", "--summary-json", str(summary),
                                       "--api-key", "sk-secret"])  # fmt: skip
    assert result.exit_code == 1, result.output  # one invalid line
    data = orjson.loads(summary.read_bytes())
    counts = [data[k] for k in ("to_send", "new", "redone_changed", "error_retried",
                                "skipped_ok", "invalid")]  # fmt: skip
    assert counts == [3, 1, 1, 1, 1, 1]
    assert data["max_output_tokens"] == 60
    assert data["input_tokens"] == sum(len(line["prompt"]) // 4 for line in lines[1:])
    assert data["first_body"]["messages"] == [{"role": "user", "content": "failed before"}]
    (group,) = data["invalid_groups"].values()
    assert group == {"count": 1, "first_lines": [5]}
    assert "3 prompts would be sent" in result.output
    assert "sk-secret" not in result.output
    assert out.read_bytes() == before
    assert not (tmp_path / "out.jsonl.lock").exists()


def test_without_an_out_nothing_is_created(tmp_path):
    """A first dry run creates no OUT and no lock; every prompt is new."""
    prompts = tmp_path / "in.jsonl"
    prompts.write_bytes(b'{"id": "a", "prompt": "hello there"}\n')
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(main, ["run", str(prompts), "-o", str(out), "--base-url", BASE,
                                       "--dry-run"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1 prompts would be sent" in result.output
    assert "unbounded (max_tokens not set)" in result.output
    assert '"content": "hello there"' in result.output
    assert not out.exists()
    assert not (tmp_path / "out.jsonl.lock").exists()
