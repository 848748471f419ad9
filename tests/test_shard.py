"""Sharding across workers and merging their outputs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from servers import read_results, simulator_thread, write_jsonl

from netfly_batch.batch.shard import Shard, ShardError, parse_shard, shard_of
from netfly_batch.cli import main


def rows(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"id": f"q{i}", "prompt": f"prompt {i}"} for i in range(start, start + count)]


def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.mark.parametrize(
    ("env", "count", "expected"),
    [
        ({"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "4"}, None, Shard(2, 4)),
        (
            {
                "SLURM_ARRAY_TASK_ID": "1",
                "SLURM_ARRAY_TASK_COUNT": "4",
                "SLURM_ARRAY_TASK_MIN": "1",
            },
            None,
            Shard(0, 4),
        ),
        (
            {"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "4"},
            None,
            Shard(3, 4),
        ),
        ({"JOB_COMPLETION_INDEX": "5"}, 8, Shard(5, 8)),
    ],
    ids=["slurm", "slurm-from-1", "slurm-min-max", "kubernetes"],
)
def test_auto_reads_the_scheduler(env: dict[str, str], count: int | None, expected: Shard) -> None:
    """--shard auto finds I and N in Slurm and Kubernetes variables."""
    assert parse_shard("auto", env, count) == expected


@pytest.mark.parametrize(
    ("text", "env", "count", "message"),
    [
        ("auto", {}, None, "needs a Slurm job array"),
        ("auto", {"JOB_COMPLETION_INDEX": "1"}, None, "--shard-count"),
        ("auto", {"JOB_COMPLETION_INDEX": "3"}, 3, "outside 0..2"),
        ("auto", {"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "2"}, None, "whole number"),
        ("3/3", {}, None, "outside 0..2"),
        ("1-3", {}, None, "expected I/N"),
        ("a/b", {}, None, "whole numbers"),
        ("0/0", {}, None, "at least 1"),
    ],
    ids=[
        "no-scheduler",
        "k8s-no-count",
        "k8s-out-of-range",
        "slurm-garbage",
        "index-too-big",
        "no-slash",
        "not-numbers",
        "zero-shards",
    ],
)
def test_bad_shard_specs_are_refused(
    text: str, env: dict[str, str], count: int | None, message: str
) -> None:
    """Each impossible shard gets a clear error."""
    with pytest.raises(ShardError, match=message):
        parse_shard(text, env, count)


def test_shard_of_is_stable_and_spread() -> None:
    """The same id always lands in the same shard, and ids spread over all shards."""
    counts = Counter(shard_of(f"id-{i}", 4) for i in range(4000))
    assert set(counts) == {0, 1, 2, 3}
    assert min(counts.values()) > 800
    assert shard_of("q1", 7) == shard_of("q1", 7) == 3  # pinned: a change would move ids


def test_output_needs_the_placeholder() -> None:
    """OUT without {shard} is refused; with it, the shard's name fills it."""
    assert Shard(1, 3).output_path("out.{shard}.jsonl") == "out.1-of-3.jsonl"
    with pytest.raises(ShardError, match="must contain"):
        Shard(1, 3).output_path("out.jsonl")


def test_three_shards_then_merge(tmp_path: Path) -> None:
    """Each valid id is sent by exactly one shard; merge gives one ok line per input id."""
    source = write_jsonl(
        tmp_path / "in.jsonl", [*rows(60), b"not json", {"id": "q0", "prompt": "repeated"}]
    )
    template = str(tmp_path / "out.{shard}.jsonl")
    with simulator_thread() as sim:
        for index in range(3):
            result = invoke(
                "run", str(source), "-o", template, "--base-url", sim.url, "--shard", f"{index}/3"
            )
            assert result.exit_code == (1 if index == 0 else 0), result.output
        asked = Counter(sim.stats.requests_by_content)
    assert sorted(asked) == sorted(f"prompt {i}" for i in range(60))
    assert set(asked.values()) == {1}
    outputs = [tmp_path / f"out.{i}-of-3.jsonl" for i in range(3)]
    invalid = [r for o in outputs for r in read_results(o) if r["status"] == "invalid"]
    assert sorted(r["line"] for r in invalid) == [61, 62]  # reported once, by shard 0
    assert all(r["status"] == "invalid" for r in read_results(outputs[0]) if r["line"] > 60)
    merged = tmp_path / "merged.jsonl"
    result = invoke("merge", *map(str, outputs), "-o", str(merged), "--input", str(source))
    assert result.exit_code == 1  # the two invalid lines
    results = read_results(merged)
    ok = [r for r in results if r["status"] == "ok"]
    assert sorted(r["id"] for r in ok) == sorted(f"q{i}" for i in range(60))
    assert len(results) == 62


def test_appending_input_moves_no_id(tmp_path: Path) -> None:
    """After lines are appended, every old id stays in its shard: a rerun sends only new ids."""
    source = write_jsonl(tmp_path / "in.jsonl", rows(30))
    template = str(tmp_path / "out.{shard}.jsonl")
    with simulator_thread() as sim:
        for index in range(2):
            invoke(
                "run", str(source), "-o", template, "--base-url", sim.url, "--shard", f"{index}/2"
            )
        write_jsonl(source, rows(45))
        before = Counter(sim.stats.requests_by_content)
        for index in range(2):
            result = invoke(
                "run", str(source), "-o", template, "--base-url", sim.url, "--shard", f"{index}/2"
            )
            assert result.exit_code == 0
        sent_again = Counter(sim.stats.requests_by_content) - before
    assert sorted(sent_again) == sorted(f"prompt {i}" for i in range(30, 45))


def test_merge_reports_missing_ids_and_strangers(tmp_path: Path) -> None:
    """merge --input exits 6 naming ids no OUT answers, and lists ids in no input line."""
    source = write_jsonl(tmp_path / "in.jsonl", rows(4))
    first = write_jsonl(
        tmp_path / "a.jsonl",
        [
            {"id": "q0", "status": "error", "finished_at": "2026-01-01T00:00:00.000Z"},
            {"id": "q1", "status": "ok", "finished_at": "2026-01-01T00:00:00.000Z"},
        ],
    )
    second = write_jsonl(
        tmp_path / "b.jsonl",
        [
            {"id": "q0", "status": "ok", "finished_at": "2026-01-02T00:00:00.000Z"},
            {"id": "zz", "status": "ok", "finished_at": "2026-01-02T00:00:00.000Z"},
        ],
    )
    with (tmp_path / "b.jsonl").open("ab") as handle:
        handle.write(b'{"id": "torn", "sta')
    merged = tmp_path / "m.jsonl"
    result = invoke("merge", str(first), str(second), "-o", str(merged), "--input", str(source))
    assert result.exit_code == 6
    assert "2 input ids have no result: q2, q3" in result.stderr
    assert "1 ids are in no input line: zz" in result.stderr
    assert "skipped 1 unreadable lines" in result.stderr
    assert {r["id"]: r["status"] for r in read_results(merged)} == {
        "q0": "ok",
        "q1": "ok",
        "zz": "ok",
    }
    plain = invoke("merge", str(first), str(second), "-o", str(merged))
    assert plain.exit_code == 0


@pytest.mark.parametrize("line", ["x", [1], None, 3.5])
def test_merge_takes_invalid_reports_whatever_their_line_field(
    tmp_path: Path, line: object
) -> None:
    """Result files from elsewhere may carry any `line`: merged, never a traceback."""
    source = write_jsonl(
        tmp_path / "a.jsonl",
        [
            {"id": "q0", "status": "invalid", "line": line, "error": {"message": "bad"}},
            {"id": "q1", "status": "ok", "finished_at": "2026-01-01T00:00:00.000Z"},
        ],
    )
    merged = tmp_path / "m.jsonl"
    result = invoke("merge", str(source), "-o", str(merged))
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1  # as for a run: an invalid line is there
    assert sorted((r["id"], r["status"]) for r in read_results(merged)) == [
        ("q0", "invalid"),
        ("q1", "ok"),
    ]


def test_sharded_run_without_placeholder_is_refused(tmp_path: Path) -> None:
    """--shard with an OUT lacking {shard} is a usage error, and nothing is sent."""
    source = write_jsonl(tmp_path / "in.jsonl", rows(2))
    result = CliRunner().invoke(
        main, ["run", str(source), "-o", str(tmp_path / "o.jsonl"), "--simulate", "--shard", "0/2"]
    )
    assert result.exit_code == 2
    assert "must contain {shard}" in result.output
    assert not (tmp_path / "o.jsonl").exists()


def test_shard_auto_from_a_slurm_array_starting_at_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With SLURM_ARRAY_TASK_MIN=1, task 1 is shard 0 and writes out.0-of-2.jsonl."""
    source = write_jsonl(tmp_path / "in.jsonl", rows(10))
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "1")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "2")
    result = invoke(
        "run",
        str(source),
        "-o",
        str(tmp_path / "out.{shard}.jsonl"),
        "--simulate",
        "--shard",
        "auto",
    )
    assert result.exit_code == 0
    ids = {r["id"] for r in read_results(tmp_path / "out.0-of-2.jsonl")}
    assert ids == {f"q{i}" for i in range(10) if shard_of(f"q{i}", 2) == 0}


def test_model_errors_are_reported_by_the_owning_shard(tmp_path: Path) -> None:
    """Lines naming an unknown model (default FreeNetfly URL) get one result overall."""
    source = write_jsonl(
        tmp_path / "in.jsonl", [{"id": f"q{i}", "prompt": "x", "model": "nope"} for i in range(12)]
    )
    template = str(tmp_path / "out.{shard}.jsonl")
    for index in range(3):
        invoke("run", str(source), "-o", template, "--shard", f"{index}/3", "-q")
    rows = [r for i in range(3) for r in read_results(tmp_path / f"out.{i}-of-3.jsonl")]
    assert sorted(r["id"] for r in rows) == sorted(f"q{i}" for i in range(12))
    assert {r["status"] for r in rows} == {"invalid"}
    assert all("known models" in r["error"]["message"] for r in rows)
