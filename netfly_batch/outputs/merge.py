"""`netfly-batch merge`: the union of several OUT files, one line per id, written atomically.

The latest result per id wins (by `finished_at`, then by file and line order); invalid
results are kept once each. Memory holds one small entry per id, never the results.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import orjson

from ..batch.prompts import Prompt, read_prompts
from ..errors import InputFileError, OutputError


@dataclass(slots=True)
class MergeReport:
    """What a merge found; `missing` are input ids with no result in any OUT."""

    written: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    unreadable_lines: int = 0
    missing: list[str] = field(default_factory=list)
    not_in_input: list[str] = field(default_factory=list)


def merge_outputs(sources: list[Path], target: Path, input_path: Path | None = None) -> MergeReport:
    """Merge `sources` into `target`; compare with `input_path`'s ids when given."""
    report = MergeReport()
    latest: dict[str, tuple[str, int, int]] = {}  # id -> (finished_at, source, offset)
    keep_invalid: dict[tuple[str, int], tuple[int, int]] = {}  # (id, line) -> place
    statuses: dict[str, str] = {}
    for number, source in enumerate(sources):
        for offset, record in _records(source, report):
            prompt_id, status = str(record["id"]), record["status"]
            if status == "invalid":
                line = record.get("line")
                keep_invalid[(prompt_id, line if isinstance(line, int) else 0)] = (number, offset)
                continue
            stamp = str(record.get("finished_at") or "")
            previous = latest.get(prompt_id)
            if previous is None or (stamp, number, offset) >= previous:
                latest[prompt_id] = (stamp, number, offset)
                statuses[prompt_id] = str(status)
    places = {(n, o) for _, n, o in latest.values()} | set(keep_invalid.values())
    report.written = _write_atomically(sources, places, target)
    for status in statuses.values():
        report.by_status[status] = report.by_status.get(status, 0) + 1
    if keep_invalid:
        report.by_status["invalid"] = len(keep_invalid)
    if input_path is not None:
        input_ids = set(_input_ids(input_path))
        report.missing = sorted(i for i in input_ids if i not in latest)
        report.not_in_input = sorted(i for i in latest if i not in input_ids)
    return report


def _open(path: Path) -> BinaryIO:
    try:
        return open(path, "rb")
    except OSError as exc:
        raise InputFileError(f"cannot read {path}: {exc.strerror}") from exc


def _records(source: Path, report: MergeReport) -> Iterable[tuple[int, dict[str, object]]]:
    with _open(source) as handle:
        offset = 0
        for line in handle:
            start, offset = offset, offset + len(line)
            try:
                record = orjson.loads(line)
                if not line.endswith(b"\n") or "id" not in record or "status" not in record:
                    raise ValueError
            except (orjson.JSONDecodeError, ValueError, TypeError):
                report.unreadable_lines += 1
                continue
            yield start, record


def _write_atomically(sources: list[Path], places: set[tuple[int, int]], target: Path) -> int:
    temporary = target.with_name(f".{target.name}.merge-{os.getpid()}.tmp")
    written = 0
    try:
        with open(temporary, "wb") as out:
            for number, source in enumerate(sources):
                with open(source, "rb") as handle:
                    offset = 0
                    for line in handle:
                        if (number, offset) in places:
                            out.write(line)
                            written += 1
                        offset += len(line)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from exc
    return written


def _input_ids(path: Path) -> Iterable[str]:
    with _open(path) as handle:
        for item in read_prompts(handle):
            if isinstance(item, Prompt):
                yield item.id
