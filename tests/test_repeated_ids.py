"""Repeated ids with flat memory: a Bloom filter, settled exactly by a second pass."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from servers import read_results, simulator_thread, write_jsonl

from netfly_batch.batch import bloom
from netfly_batch.batch.bloom import BloomFilter
from netfly_batch.batch.prompts import (
    ExactIds,
    InvalidLine,
    MaybeRepeated,
    Prompt,
    read_prompts,
    settle_repeats,
)
from netfly_batch.cli import main


def lines_of(ids: list[str]) -> list[bytes]:
    return [orjson.dumps({"id": i, "prompt": f"about {i}"}) + b"\n" for i in ids]


def test_bloom_filter_never_forgets_and_rarely_guesses() -> None:
    """An added id is always 'maybe seen'; new ids are rarely mistaken at capacity."""
    ids = [f"id-{n}" for n in range(20_000)]
    found = BloomFilter(len(ids))
    for i in ids[:10_000]:
        found.add(i)
    assert not any(found.add(i) for i in ids[:10_000])  # every added id is remembered
    false_maybes = sum(not found.add(i) for i in ids[10_000:])
    assert false_maybes < 50
    assert found.size_bytes == 20_000 * bloom.BITS_PER_ID // 8


def test_exact_ids_report_repeats_at_once() -> None:
    """With exact ids (standard input), a repeat is an invalid line naming the id."""
    items = list(read_prompts(lines_of(["a", "b", "a"]), ExactIds()))
    assert isinstance(items[2], InvalidLine)
    assert "'a' was already used" in items[2].reason


def test_settle_repeats_keeps_the_first_line_of_each_id() -> None:
    """The second pass sends a falsely suspected first occurrence and rejects real repeats."""
    lines = lines_of(["a", "b", "c", "a", "d", "c", "c"])
    suspects = {"b": [2], "a": [4], "c": [6, 7]}
    settled = list(settle_repeats(lines, suspects))
    assert [(type(s).__name__, s.line_no) for s in settled] == [
        ("Prompt", 2),
        ("InvalidLine", 4),
        ("InvalidLine", 6),
        ("InvalidLine", 7),
    ]


class TinyBloom(BloomFilter):
    """A one-word filter: nearly every id looks 'maybe seen'."""

    def __init__(self, capacity: int) -> None:
        super().__init__(0)
        self._words = self._words[:1]


def test_read_prompts_with_a_saturated_filter_defers_instead_of_rejecting() -> None:
    """A probabilistic filter never calls a line invalid by itself: it defers it."""
    items = list(read_prompts(lines_of([f"x{n}" for n in range(50)]), TinyBloom(0)))
    assert any(isinstance(i, MaybeRepeated) for i in items)
    assert not any(isinstance(i, InvalidLine) for i in items)
    assert sum(isinstance(i, Prompt | MaybeRepeated) for i in items) == 50


def test_run_with_false_maybes_sends_each_id_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even when the filter suspects almost everything, each id is sent once, repeats invalid."""
    monkeypatch.setattr("netfly_batch.batch.inputs.BloomFilter", TinyBloom)
    ids = [f"q{n}" for n in range(40)] + ["q3", "q17", "q3"]
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": i, "prompt": f"about {i}"} for i in ids])
    out = tmp_path / "out.jsonl"
    with simulator_thread() as sim:
        result = CliRunner().invoke(
            main,
            ["run", str(source), "-o", str(out), "--base-url", sim.url],
            catch_exceptions=False,
        )
        asked = Counter(sim.stats.requests_by_content)
    assert result.exit_code == 1
    assert sorted(asked) == sorted(f"about q{n}" for n in range(40))
    assert set(asked.values()) == {1}
    rows = read_results(out)
    invalid = sorted(r["line"] for r in rows if r["status"] == "invalid")
    assert invalid == [41, 42, 43]
    assert sum(r["status"] == "ok" for r in rows) == 40


def test_a_corrected_copy_after_a_broken_line_is_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broken line uses no id, so its corrected copy later is sent, Bloom filter or not."""
    monkeypatch.setattr("netfly_batch.batch.inputs.BloomFilter", TinyBloom)
    source = write_jsonl(
        tmp_path / "in.jsonl", [{"id": "a", "prompt": 5}, {"id": "a", "prompt": "fixed"}]
    )
    out = tmp_path / "out.jsonl"
    with simulator_thread() as sim:
        CliRunner().invoke(
            main,
            ["run", str(source), "-o", str(out), "--base-url", sim.url],
            catch_exceptions=False,
        )
    statuses = {r["line"]: r["status"] for r in read_results(out)}
    assert statuses == {1: "invalid", 2: "ok"}
