"""Compressed INPUT (gzip, bzip2, xz, zstd): read by its magic bytes, counted, read twice,
resumed and sharded like a plain file; a truncated file is a clear error that loses nothing."""

from __future__ import annotations

import asyncio
import bz2
import gzip
import lzma
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
import zstandard
from click.testing import CliRunner

from netfly_batch.batch.inputs import InputFile
from netfly_batch.cli import main

COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
}
COUNT = 40


def dataset(repeat: bool = True) -> bytes:
    lines = [orjson.dumps({"id": f"p{i}", "prompt": f"question {i}"}) for i in range(COUNT)]
    if repeat:
        lines.append(orjson.dumps({"id": "p3", "prompt": "a repeated id"}))
    return b"\n".join(lines) + b"\n"


def invoke(*args: str):
    return CliRunner().invoke(main, ["run", *args, "--simulate", "-q"], catch_exceptions=False)


def rows(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


@pytest.mark.parametrize("kind", list(COMPRESSORS))
def test_each_format_runs_resumes_and_finds_repeats(tmp_path, kind):
    """Whatever its name, the file is read decompressed; a rerun sends nothing."""
    source = tmp_path / "prompts.data"  # no telling suffix: the magic bytes decide
    source.write_bytes(COMPRESSORS[kind](dataset()))
    out = tmp_path / "out.jsonl"
    first = invoke(str(source), "-o", str(out))
    assert first.exit_code == 1, first.output  # the repeated id is an invalid line
    results = rows(out)
    assert sorted(r["id"] for r in results if r["status"] == "ok") == sorted(
        f"p{i}" for i in range(COUNT))  # fmt: skip
    (invalid,) = [r for r in results if r["status"] == "invalid"]
    assert invalid["line"] == COUNT + 1
    again = invoke(str(source), "-o", str(out), "--summary-json", str(tmp_path / "s.json"))
    summary = orjson.loads((tmp_path / "s.json").read_bytes())
    assert again.exit_code == 1
    assert (summary["skipped_ok"], summary["ok"], summary["attempts"]) == (COUNT, 0, 0)


@pytest.mark.parametrize("kind", list(COMPRESSORS))
def test_lines_are_counted_for_the_progress_bar_and_read_twice(tmp_path, kind):
    """The count is of decompressed lines; the second pass reads the same lines."""
    source = tmp_path / f"prompts.{kind}"
    source.write_bytes(COMPRESSORS[kind](dataset(repeat=False)))
    opened = InputFile(str(source))
    opened.open()
    loop = asyncio.new_event_loop()
    try:
        first = list(opened.lines(loop))
        with opened.reopen() as again:
            second = list(again)
    finally:
        opened.close()
        loop.close()
    assert opened.compression == kind
    assert opened.total_lines == COUNT
    assert first == second
    assert len(first) == COUNT


def test_shards_of_a_compressed_input_cover_it_once(tmp_path):
    """Two shards of a .zst input answer every prompt exactly once between them."""
    source = tmp_path / "prompts.jsonl.zst"
    source.write_bytes(COMPRESSORS["zstd"](dataset(repeat=False)))
    for index in range(2):
        done = invoke(str(source), "-o", str(tmp_path / "out.{shard}.jsonl"), "--shard",
                      f"{index}/2")  # fmt: skip
        assert done.exit_code == 0, done.output
    ids = [r["id"] for path in tmp_path.glob("out.*.jsonl") for r in rows(path)]
    assert sorted(ids) == sorted(f"p{i}" for i in range(COUNT))


def test_a_truncated_gzip_is_a_clear_error_and_loses_nothing(tmp_path):
    """Exit 3 naming the file; every result written before the bad bytes is whole."""
    whole = gzip.compress(dataset(repeat=False) * 50, mtime=0)
    source = tmp_path / "prompts.jsonl.gz"
    source.write_bytes(whole[: len(whole) // 2])
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(main, ["run", str(source), "-o", str(out), "--simulate"])
    assert result.exit_code == 3
    assert f"cannot read {source}" in result.output
    assert "truncated or corrupt" in result.output
    assert all(row["status"] in ("ok", "invalid") for row in rows(out))  # every line parses


def test_merge_and_report_read_a_compressed_input(tmp_path):
    """`merge --input` and `report --input` read a .gz prompts file like a plain one."""
    source = tmp_path / "prompts.jsonl.gz"
    source.write_bytes(COMPRESSORS["gzip"](dataset(repeat=False)))
    out = tmp_path / "out.jsonl"
    assert invoke(str(source), "-o", str(out), "--limit", "30").exit_code == 0
    merged = CliRunner().invoke(main, ["merge", str(out), "-o", str(tmp_path / "m.jsonl"),
                                       "--input", str(source)])  # fmt: skip
    assert merged.exit_code == 6  # partial: the ten prompts past the limit
    assert "10 input ids have no result" in merged.output
    reported = CliRunner().invoke(main, ["report", str(out), "--input", str(source),
                                         "--json", str(tmp_path / "r.json")])  # fmt: skip
    assert reported.exit_code == 0, reported.output
    assert orjson.loads((tmp_path / "r.json").read_bytes())["left_to_do"] == 10
