"""Reading OUT files back: every result line, and the latest result of each id.

One reader for `merge`, `export` (and reports): several files (shards, runs) are read
as one; the latest result per id wins (by `finished_at`, then by file and line order)
and each invalid result is kept once. Memory holds one small entry per id, never the
results: a chosen line is read again by its place (file number, byte offset).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from ..errors import InputFileError

Place = tuple[int, int]  # (file number, byte offset of the line)


@dataclass(slots=True)
class Chosen:
    """One result a reader keeps: where its line is, and what sorting needs."""

    id: str
    status: str
    line: int
    place: Place


@dataclass(slots=True)
class Selection:
    """The results to keep of several OUT files, and what could not be read."""

    sources: list[Path]
    latest: dict[str, tuple[str, Chosen]] = field(default_factory=dict)  # id -> (stamp, chosen)
    invalid: dict[tuple[str, int], Chosen] = field(default_factory=dict)  # (id, line) -> chosen
    unreadable_lines: int = 0

    def chosen(self, answered_ids_only_once: bool = False) -> list[Chosen]:
        """Every kept result, in file order; with `answered_ids_only_once`, an invalid
        result of an id that also has an ok or error result is left out (one line per id)."""
        invalid = list(self.invalid.values())
        if answered_ids_only_once:
            invalid = [chosen for chosen in invalid if chosen.id not in self.latest]
        kept = [chosen for _, chosen in self.latest.values()] + invalid
        kept.sort(key=lambda chosen: chosen.place)
        return kept

    def by_status(self) -> dict[str, int]:
        """How many kept results have each status."""
        counts: dict[str, int] = {}
        for _, chosen in self.latest.values():
            counts[chosen.status] = counts.get(chosen.status, 0) + 1
        if self.invalid:
            counts["invalid"] = len(self.invalid)
        return counts


def open_result_file(path: Path) -> BinaryIO:
    """An OUT file opened for reading, or a clear `InputFileError`."""
    try:
        return open(path, "rb")
    except OSError as exc:
        raise InputFileError(f"cannot read {path}: {exc.strerror}") from exc


def read_results(path: Path) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """(offset, record) of every line; record None for a line that is no result (not
    JSON, no `id` or `status`, or a torn last line without its newline)."""
    with open_result_file(path) as handle:
        offset = 0
        for line in handle:
            start, offset = offset, offset + len(line)
            try:
                record = orjson.loads(line)
                if (not line.endswith(b"\n") or not isinstance(record, dict)
                        or "id" not in record or "status" not in record):  # fmt: skip
                    raise ValueError
            except (orjson.JSONDecodeError, ValueError, TypeError):
                yield start, None
                continue
            yield start, record


def select_latest(sources: list[Path]) -> Selection:
    """Read every source once; keep the latest result of each id and each invalid one."""
    selection = Selection(sources)
    latest, invalid = selection.latest, selection.invalid
    for number, source in enumerate(sources):
        for offset, record in read_results(source):
            if record is None:
                selection.unreadable_lines += 1
                continue
            prompt_id, status = str(record["id"]), str(record["status"])
            line = record.get("line")
            chosen = Chosen(
                prompt_id, status, line if isinstance(line, int) else 0, (number, offset)
            )
            if status == "invalid":
                invalid[(prompt_id, chosen.line)] = chosen
                continue
            stamp = str(record.get("finished_at") or "")
            previous = latest.get(prompt_id)
            if previous is None or (stamp, chosen.place) >= (previous[0], previous[1].place):
                latest[prompt_id] = (stamp, chosen)
    return selection


class LineReader:
    """Reads chosen lines back by their place, keeping each source open once."""

    def __init__(self, sources: list[Path]) -> None:
        self._handles = [open_result_file(path) for path in sources]

    def line_at(self, place: Place) -> bytes:
        """The whole line (newline included) at `place`."""
        handle = self._handles[place[0]]
        handle.seek(place[1])
        return handle.readline()

    def close(self) -> None:
        """Close every source."""
        for handle in self._handles:
            handle.close()

    def __enter__(self) -> LineReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
