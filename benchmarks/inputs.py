"""Benchmark files: prompt inputs, an OUT that is already done, and the check of an OUT."""

from __future__ import annotations

import functools
import time
from pathlib import Path

import orjson

MODEL = "gpt-3.5-turbo"  # what netfly-batch sends with --base-url and no -m
BLOCK_LINES = 10_000


class BenchmarkError(RuntimeError):
    """A run did not do what the benchmark needs (wrong count, bad exit): stop loudly."""


def prompt_text(index: int) -> str:
    """The prompt of line `index` (0-based): short, distinct, plain ASCII."""
    return f"Prompt {index}: in one sentence, what is special about the number {index}?"


def write_prompts(path: Path, count: int) -> Path:
    """Write `count` lines `{"id": "p<i>", "prompt": ...}`."""
    with open(path, "wb") as handle:
        for start in range(0, count, BLOCK_LINES):
            handle.write(
                b"".join(
                    orjson.dumps(
                        {"id": f"p{i}", "prompt": prompt_text(i)}, option=orjson.OPT_APPEND_NEWLINE
                    )
                    for i in range(start, min(count, start + BLOCK_LINES))
                )
            )
    return path


def done_fingerprint(index: int) -> str:
    """The `request_hash` netfly-batch gives line `index` with no -m and no parameters.

    Computed with the package's own functions, so a resume over the OUT written by
    `write_done_output` sends nothing (the resume scenario checks that, too).
    """
    from netfly_batch.batch.prompts import request_fingerprint

    return request_fingerprint({"id": f"p{index}", "prompt": prompt_text(index)}, _run_defaults())


@functools.cache
def _run_defaults() -> bytes:
    from netfly_batch.batch.plan import request_defaults
    from netfly_batch.batch.run_settings import RunSettings

    return request_defaults(RunSettings(input_path="-", output_path="-"))


def write_done_output(path: Path, count: int, chunks: int = 16) -> Path:
    """Write an OUT holding an up-to-date ok result for each of `count` prompts, each line
    exactly as a run writes it (`Result.to_line`, every field)."""
    from netfly_batch.results import Result

    content = "".join(f"tok{i} " for i in range(chunks))
    usage = {"prompt_tokens": 12, "completion_tokens": chunks, "total_tokens": 12 + chunks}
    finished_at = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    with open(path, "wb") as handle:
        for start in range(0, count, BLOCK_LINES):
            handle.write(
                b"".join(
                    Result(
                        id=f"p{i}",
                        status="ok",
                        attempts=1,
                        content=content,
                        error=None,
                        line=i + 1,
                        model="bench-model",
                        finish_reason="stop",
                        usage=usage,
                        elapsed_s=0.016,
                        finished_at=finished_at,
                        request_hash=done_fingerprint(i),
                        completion_id="chatcmpl-bench",
                        created=1_700_000_000,
                    ).to_line()
                    for i in range(start, min(count, start + BLOCK_LINES))
                )
            )
    return path


def count_ok(path: Path) -> int:
    """Distinct ids whose latest line in OUT is ok."""
    status: dict[str, str] = {}
    with open(path, "rb") as handle:
        for line in handle:
            record = orjson.loads(line)
            status[record["id"]] = record["status"]
    return sum(1 for value in status.values() if value == "ok")


def check_ok(path: Path, expected: int, label: str) -> int:
    """`count_ok`, failing loudly unless every one of `expected` prompts is ok."""
    if not path.exists():
        raise BenchmarkError(f"{label}: wrote no OUT ({path})")
    ok = count_ok(path)
    if ok != expected:
        raise BenchmarkError(f"{label}: {ok} ok results in {path}, expected {expected}")
    return ok
