"""Reading OUT files back: every result line, and the latest result of each id.

One reader for `merge`, `export` and `report`: several files (shards, runs) are read as
one; the latest result per id wins (by `finished_at`, then by file and line order) and
each invalid result is kept once. Memory holds one int per id (`Entry`: about 50 bytes
besides the id itself) and 8 bytes per line, never the results: the chosen lines are
read again, in file order (`Selection.kept_lines`) or by their place (`LineReader`).
"""

from __future__ import annotations

import functools
import itertools
import os
import stat
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Literal

import orjson

from ..errors import InputFileError

Place = tuple[int, int]  # (file number, byte offset of the line)
Order = Literal["line", "id", "none"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
UNREADABLE_EXAMPLES = 3  # lines that are no result, named in reports
MAX_STATUSES = 255  # distinct status strings kept apart; more are counted as "other"
MICROSECOND = timedelta(microseconds=1)


class Entry:
    """One kept result packed into one int, fields from the lowest bits up: status (its
    number in `Selection.statuses`), the result's `line`, the line's index in its file,
    the file's number, and `finished_at` in microseconds. Comparing two entries compares
    (finished_at, file, index): the larger one is the later result."""

    STATUS_BITS = 16
    LINE_BITS = 32  # a `line` outside 0 .. 2**32 - 1 is kept as 0
    INDEX_BITS = 40
    FILE_BITS = 24
    LINE_AT = STATUS_BITS
    INDEX_AT = LINE_AT + LINE_BITS
    FILE_AT = INDEX_AT + INDEX_BITS
    STAMP_AT = FILE_AT + FILE_BITS

    @staticmethod
    def pack(stamp_us: int, number: int, index: int, line: int, status: int) -> int:
        return (
            stamp_us << Entry.STAMP_AT
            | number << Entry.FILE_AT
            | index << Entry.INDEX_AT
            | line << Entry.LINE_AT
            | status
        )

    @staticmethod
    def status(entry: int) -> int:
        return entry & ((1 << Entry.STATUS_BITS) - 1)

    @staticmethod
    def line(entry: int) -> int:
        return (entry >> Entry.LINE_AT) & ((1 << Entry.LINE_BITS) - 1)

    @staticmethod
    def where(entry: int) -> tuple[int, int]:
        """(file number, line index in that file)."""
        index = (entry >> Entry.INDEX_AT) & ((1 << Entry.INDEX_BITS) - 1)
        return (entry >> Entry.FILE_AT) & ((1 << Entry.FILE_BITS) - 1), index


@dataclass(slots=True)
class Selection:
    """The results to keep of several OUT files, and what could not be read."""

    sources: list[Path]
    latest: dict[str, int] = field(default_factory=dict)  # id -> Entry
    invalid: dict[tuple[str, int], int] = field(default_factory=dict)  # (id, line) -> Entry
    unreadable_lines: int = 0
    unreadable_examples: list[str] = field(default_factory=list)  # the first few, as file:line
    statuses: list[str] = field(default_factory=list)  # an Entry's status number -> status
    offsets: list[array[int]] = field(default_factory=list)  # per file: each line's offset
    identities: list[tuple[int, int]] = field(default_factory=list)  # per file: (device, inode)

    def ids_without_result(self, ids: Iterable[str]) -> set[str]:
        """Those of `ids` that no kept result (ok, error or invalid) has."""
        invalid_ids = {prompt_id for prompt_id, _ in self.invalid}
        latest = self.latest
        return {i for i in ids if i not in latest and i not in invalid_ids}

    def entries(self, answered_ids_only_once: bool = False) -> Iterator[tuple[str, int]]:
        """(id, Entry) of every kept result, in no set order; with
        `answered_ids_only_once`, an invalid result of an id that also has an ok or error
        result is left out (one line per id)."""
        yield from self.latest.items()
        for (prompt_id, _), entry in self.invalid.items():
            if not (answered_ids_only_once and prompt_id in self.latest):
                yield prompt_id, entry

    def places(self, order: Order, answered_ids_only_once: bool = False) -> Iterator[Place]:
        """Where each kept result's line is (see `entries`): by input `line` (then file
        order), by id (then line), or in file order. Sorting holds one int per result
        (one (id, int) pair for the id order), never the results."""
        if order == "id":
            by_id = sorted(self.entries(answered_ids_only_once),
                           key=lambda item: (item[0], Entry.line(item[1])))  # fmt: skip
            packed: Iterable[int] = (entry for _, entry in by_id)
        else:
            keys = [
                (Entry.line(entry) << 64 if order == "line" else 0)
                | (entry >> Entry.INDEX_AT) & ((1 << (Entry.INDEX_BITS + Entry.FILE_BITS)) - 1)
                for _, entry in self.entries(answered_ids_only_once)
            ]
            keys.sort()
            packed = (key << Entry.INDEX_AT for key in keys)  # file and index back in place
        for entry in packed:
            number, index = Entry.where(entry)
            yield number, self.offsets[number][index]

    def kept_lines(self, answered_ids_only_once: bool = False) -> Iterator[bytes]:
        """Every kept result's line (newline included), in file order, read in one pass
        over each file (see `entries`)."""
        marks = [bytearray((len(offsets) + 7) // 8) for offsets in self.offsets]
        for _, entry in self.entries(answered_ids_only_once):
            number, index = Entry.where(entry)
            marks[number][index >> 3] |= 1 << (index & 7)
        for number, mark in enumerate(marks):
            if not any(mark):
                continue
            with self.reopen(number) as handle:
                # only the lines the first pass saw: a run may still be appending
                lines = itertools.islice(handle, len(self.offsets[number]))
                for index, line in enumerate(lines):
                    if mark[index >> 3] >> (index & 7) & 1:
                        yield line

    def reopen(self, number: int) -> BinaryIO:
        """Source `number` opened again for the second read; an `InputFileError` when it
        is no longer the file the first read saw (replaced, e.g. by a run's compaction)."""
        source = self.sources[number]
        handle = open_result_file(source)
        if _identity(handle) != self.identities[number]:
            handle.close()
            raise InputFileError(f"{source} was replaced while it was read; run this again")
        return handle

    def by_status(self) -> dict[str, int]:
        """How many kept results have each status."""
        numbers: dict[int, int] = {}
        for entry in self.latest.values():
            status = Entry.status(entry)
            numbers[status] = numbers.get(status, 0) + 1
        counts = {self.statuses[number]: count for number, count in numbers.items()}
        if self.invalid:
            counts["invalid"] = len(self.invalid)
        return counts


def open_result_file(path: Path) -> BinaryIO:
    """An OUT file opened for reading, or a clear `InputFileError` (also for a pipe or a
    device: results are read twice)."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - the caller closes it
    except OSError as exc:
        raise InputFileError(f"cannot read {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
        handle.close()
        raise InputFileError(f"{path} is not a regular file (results are read twice); "
                             "save it to a file first")  # fmt: skip
    return handle


def _identity(handle: BinaryIO) -> tuple[int, int]:
    info = os.fstat(handle.fileno())
    return info.st_dev, info.st_ino


def select_latest(sources: list[Path]) -> Selection:
    """Read every source once; keep the latest result of each id and each invalid one.

    A line is no result when it is not JSON, has no `id` or `status`, or is a torn last
    line without its newline; those are counted as unreadable."""
    if len(sources) >= 1 << Entry.FILE_BITS:
        raise InputFileError(f"too many files ({len(sources)}); merge them in groups")
    selection = Selection(sources)
    latest, invalid, statuses = selection.latest, selection.invalid, selection.statuses
    status_numbers: dict[str, int] = {}
    for number, source in enumerate(sources):
        offsets = array("q")
        selection.offsets.append(offsets)
        with open_result_file(source) as handle:
            selection.identities.append(_identity(handle))
            offset = 0
            for index, text in enumerate(handle):
                offsets.append(offset)
                offset += len(text)
                try:
                    record = orjson.loads(text)
                    prompt_id, status = record["id"], record["status"]
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    record = None
                if record is None or type(record) is not dict or text[-1:] != b"\n":
                    selection.unreadable_lines += 1
                    if len(selection.unreadable_examples) < UNREADABLE_EXAMPLES:
                        selection.unreadable_examples.append(f"{source}:{index + 1}")
                    continue
                if type(prompt_id) is not str:
                    prompt_id = str(prompt_id)
                if type(status) is not str:
                    status = str(status)
                status_number = status_numbers.get(status)
                if status_number is None:
                    if len(statuses) >= MAX_STATUSES:  # foreign lines: one bucket for the rest
                        status = "other"
                    status_number = status_numbers.setdefault(status, len(statuses))
                    if status_number == len(statuses):
                        statuses.append(status)
                line = record.get("line")
                if type(line) is not int or not 0 <= line < 1 << Entry.LINE_BITS:
                    line = 0
                entry = Entry.pack(stamp_us(record.get("finished_at")), number, index, line,
                                   status_number)  # fmt: skip
                if status == "invalid":
                    invalid[(prompt_id, line)] = entry
                    continue
                previous = latest.get(prompt_id)
                if previous is None or entry > previous:
                    latest[prompt_id] = entry
    return selection


def stamp_us(stamp: object) -> int:
    """A `finished_at` as microseconds since 1970 (UTC); 0 when missing or not an ISO 8601
    time (such a result is older than any with a time). Our own form
    (`2026-01-01T10:00:00.123Z`) takes a fast path: its second is parsed once."""
    if type(stamp) is str and len(stamp) == 24 and stamp[19] == "." and stamp[23] == "Z":
        millis = stamp[20:23]
        if millis.isascii() and millis.isdigit():
            second = _second_us(stamp[:19])
            if second >= 0:
                return second + int(millis) * 1_000
    if not isinstance(stamp, str):
        return 0
    return max(0, _moment_us(stamp))


@functools.lru_cache(maxsize=4096)
def _second_us(second: str) -> int:
    """`2026-01-01T10:00:00` (UTC) as microseconds since 1970; -1 when it is no time."""
    return _moment_us(second + "+00:00")


def _moment_us(text: str) -> int:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return -1
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // MICROSECOND


class LineReader:
    """Reads chosen lines back by their place, keeping each source open once."""

    def __init__(self, selection: Selection) -> None:
        self._handles: list[BinaryIO] = []
        try:
            for number in range(len(selection.sources)):
                self._handles.append(selection.reopen(number))
        except BaseException:
            self.close()
            raise

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
