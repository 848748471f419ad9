"""Dataset options of `run`: --id-field (ids from another key) and --limit (try the first
N prompts, then go on with a larger N)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from click.testing import CliRunner

from netfly_batch.cli import main


def write(path: Path, rows: list[Any]) -> Path:
    path.write_bytes(b"".join((r if isinstance(r, bytes) else orjson.dumps(r)) + b"\n"
                              for r in rows))  # fmt: skip
    return path


def run(prompts: Path, out: Path, *options: str) -> tuple[Any, dict[str, Any]]:
    summary = out.with_suffix(".summary.json")
    result = CliRunner().invoke(main, ["run", str(prompts), "-o", str(out), "--simulate", "-q",
                                       "--summary-json", str(summary), *options])  # fmt: skip
    return result, orjson.loads(summary.read_bytes()) if summary.exists() else {}


def results(out: Path) -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in map(orjson.loads, out.read_bytes().splitlines())}


def test_id_field_takes_ids_from_another_key(tmp_path):
    """uid gives the id (integers as text); a missing or repeated uid is an invalid line;
    the id field is no request parameter and no part of request_hash."""
    prompts = write(tmp_path / "data.jsonl", [
        {"uid": 17, "prompt": "a"},
        {"uid": "x", "prompt": "b", "id": "ignored"},
        {"prompt": "no uid"},
        {"uid": 17, "prompt": "repeat"},
        {"uid": 1.5, "prompt": "float"},
    ])  # fmt: skip
    out = tmp_path / "out.jsonl"
    result, summary = run(prompts, out, "--id-field", "uid")
    assert result.exit_code == 1, result.output
    rows = results(out)
    assert (rows["17"]["status"], rows["17"]["content"]) == ("ok", "Echo: a")
    assert rows["x"]["status"] == "ok"
    assert (summary["ok"], summary["invalid"]) == (2, 3)
    every = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    invalid = [r["error"]["message"] for r in every if r["status"] == "invalid"]
    assert any("no 'uid' field" in message for message in invalid)
    assert any("already used" in message for message in invalid)
    assert any("uid: id must be a string or an integer" in message for message in invalid)
    same = write(tmp_path / "same.jsonl", [{"uid": 17, "prompt": "a"}])
    other = write(tmp_path / "other.jsonl", [{"uid": 99, "prompt": "a"}])
    hashes = []
    for path in (same, other):
        target = tmp_path / f"{path.stem}.out.jsonl"
        run(path, target, "--id-field", "uid")
        (row,) = results(target).values()
        hashes.append(row["request_hash"])
    assert hashes[0] == hashes[1] == rows["17"]["request_hash"]


def test_limit_grows_across_reruns_without_redoing_anything(tmp_path):
    """--limit 3, then --limit 6 sends the next three; the ids beyond are never 'missing'."""
    prompts = write(tmp_path / "in.jsonl", [
        {"id": "a", "prompt": "1"}, b"", {"id": "b", "prompt": "2"}, b"not json",
        *({"id": f"p{i}", "prompt": str(i)} for i in range(6)),
    ])  # fmt: skip
    out = tmp_path / "out.jsonl"
    first, summary = run(prompts, out, "--limit", "3")
    assert first.exit_code == 1, first.output  # the broken line is one of the three
    assert sorted(results(out)) == ["4", "a", "b"]
    assert summary["not_in_input"] == 0
    _, summary = run(prompts, out, "--limit", "6")
    assert (summary["skipped_ok"], summary["ok"], summary["invalid"]) == (2, 3, 1)
    assert sorted(results(out)) == ["4", "a", "b", "p0", "p1", "p2"]
    back, summary = run(prompts, out, "--limit", "2")
    assert back.exit_code == 0, back.output
    assert (summary["skipped_ok"], summary["attempts"], summary["not_in_input"]) == (2, 0, 0)


def test_merge_and_report_read_a_datasets_ids_as_the_run_did(tmp_path):
    """A dataset run with --template and --id-field: `merge --input` and `report --input`
    with the same --id-field find every line answered, and name the ones left."""
    data = write(tmp_path / "data.jsonl", [
        {"uid": 7, "title": "A"}, {"uid": "b", "title": "B"}, {"uid": 9, "title": "C"},
    ])  # fmt: skip
    out = tmp_path / "out.jsonl"
    result, _ = run(data, out, "--template", "Summarise {title}", "--id-field", "uid",
                    "--limit", "2")  # fmt: skip
    assert result.exit_code == 0, result.output
    merged = tmp_path / "merged.jsonl"
    merge = CliRunner().invoke(main, ["merge", str(out), "-o", str(merged), "--input", str(data),
                                      "--id-field", "uid"])  # fmt: skip
    assert merge.exit_code == 6  # the line past --limit has no result yet
    assert "1 input ids have no result: 9\n" in merge.output
    report_json = tmp_path / "report.json"
    report = CliRunner().invoke(main, ["report", str(out), "--input", str(data), "--id-field",
                                       "uid", "--json", str(report_json)])  # fmt: skip
    assert report.exit_code == 0, report.output
    assert orjson.loads(report_json.read_bytes())["left_to_do"] == 1
    run(data, out, "--template", "Summarise {title}", "--id-field", "uid")
    merge = CliRunner().invoke(main, ["merge", str(out), "-o", str(merged), "--input", str(data),
                                      "--id-field", "uid"])  # fmt: skip
    assert merge.exit_code == 0, merge.output


def test_line_ids_are_the_ids_a_run_gives_every_line():
    """`line_ids` (merge/report --input) reads ids cheaply; on every odd line it agrees
    with the run's own reader, with and without --id-field."""
    from netfly_batch.batch.prompts import PromptReader, line_ids

    lines = [b'\xef\xbb\xbf{"id":"bom","prompt":"x"}', b'{"id":"a","prompt":"x"}', b"",
             b"not json", b"[1]", b'{"prompt":"no id"}', b'{"id":"a","prompt":"again"}',
             b'{"id":1.5,"prompt":"x"}', b'{"id":"","prompt":"x"}', b'{"custom_id":"c"}',
             b'{"id":7}', b'{"uid":5,"title":"t"}', b'{"title":"no uid"}', b'{"uid":true}',
             b"\xff\xfe", b"   "]  # fmt: skip
    for field in (None, "uid"):
        expected = [item.id for item in PromptReader(id_field=field).read(lines)]
        assert list(line_ids(lines, field)) == expected
