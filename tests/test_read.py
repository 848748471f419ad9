"""outputs/read.py: the latest result per id, kept as one packed int per id."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from netfly_batch.errors import InputFileError
from netfly_batch.outputs.read import Entry, select_latest, stamp_us


def line(prompt_id: str, status: str, at: str | None, number: int = 1) -> bytes:
    record = {"id": prompt_id, "status": status, "line": number, "finished_at": at}
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("1970-01-01T00:00:00.000Z", 0),
        ("1970-01-01T00:01:02.345Z", 62_345_000),
        ("1970-01-01T00:01:02.345678+00:00", 62_345_678),
        ("1970-01-01T01:01:02+01:00", 62_000_000),
        ("1970-01-01T00:01:02", 62_000_000),
        ("2026-01-01T10:00:00.123Z", 1_767_261_600_123_000),
        ("yesterday", 0),
        ("", 0),
        (None, 0),
        (12, 0),
        ("2026-01-01T10:00:00.12\u00b2Z", 0),
    ],
    ids=[
        "epoch",
        "ours",
        "micro",
        "offset",
        "naive",
        "2026",
        "text",
        "empty",
        "none",
        "int",
        "superscript",
    ],
)
def test_stamp_us(stamp, expected):
    """finished_at in any ISO 8601 form is microseconds since 1970; anything else is 0."""
    assert stamp_us(stamp) == expected


def test_an_entry_packs_and_unpacks_its_fields():
    """Each field comes back, and entries compare by (time, file, line index)."""
    entry = Entry.pack(1_767_261_600_123_000, 3, 2**39, 2**32 - 1, 7)
    assert Entry.where(entry) == (3, 2**39)
    assert Entry.line(entry) == 2**32 - 1
    assert Entry.status(entry) == 7
    assert Entry.pack(5, 0, 0, 9, 9) < Entry.pack(5, 0, 1, 0, 0) < Entry.pack(5, 1, 0, 0, 0)
    assert Entry.pack(5, 9, 9, 9, 9) < Entry.pack(6, 0, 0, 0, 0)


def test_the_latest_result_wins_by_time_then_by_file_and_line(tmp_path):
    """A later finished_at wins whatever its form; equal times go to the later line."""
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_bytes(
        line("a", "ok", "2026-01-01T10:00:05.000Z")  # later than b's "+01:00" time
        + line("b", "error", "2026-01-01T10:00:00.000Z")
        + line("c", "error", None)
        + line("c", "ok", None)  # same (no) time: the later line wins
        + b"not json\n"
        + line("d", "invalid", None, 4)
    )
    second.write_bytes(
        line("a", "error", "2026-01-01T11:00:00+01:00")
        + line("b", "ok", "2026-01-01T10:00:00.001Z")
        + line("d", "invalid", None, 4)  # the same invalid line again: kept once
        + line("d", "ok", "2026-01-01T09:00:00.000Z", 4)
    )
    selection = select_latest([first, second])
    statuses = {
        prompt_id: (selection.statuses[Entry.status(entry)], Entry.where(entry)[0])
        for prompt_id, entry in selection.entries(True)
    }
    assert statuses == {"a": ("ok", 0), "b": ("ok", 1), "c": ("ok", 0), "d": ("ok", 1)}
    assert selection.by_status() == {"ok": 4, "invalid": 1}
    assert selection.unreadable_lines == 1
    kept = [orjson.loads(text) for text in selection.kept_lines()]
    assert [(r["id"], r["status"]) for r in kept] == [
        ("a", "ok"), ("c", "ok"), ("b", "ok"), ("d", "invalid"), ("d", "ok")]  # fmt: skip
    answered = [orjson.loads(text)["id"] for text in selection.kept_lines(True)]
    assert answered == ["a", "c", "b", "d"]
    places = list(selection.places("none"))
    assert places == sorted(places)
    assert first.read_bytes()[places[1][1] :].startswith(b'{"id":"c"')


def test_a_line_appended_between_the_two_reads_is_left_for_next_time(tmp_path):
    """A run still writing OUT: the second read stops where the first one did."""
    out = tmp_path / "out.jsonl"
    out.write_bytes(line("a", "ok", "2026-01-01T10:00:00.000Z"))
    selection = select_latest([out])
    with open(out, "ab") as handle:
        handle.write(line("b", "ok", "2026-01-01T10:00:01.000Z"))
    assert [orjson.loads(kept)["id"] for kept in selection.kept_lines()] == ["a"]


def test_a_file_replaced_between_the_two_reads_is_refused(tmp_path):
    """A run's compaction renames a new OUT into place: the line numbers no longer hold."""
    out = tmp_path / "out.jsonl"
    out.write_bytes(line("a", "ok", None) + line("b", "ok", None))
    selection = select_latest([out])
    fresh = tmp_path / "new.jsonl"
    fresh.write_bytes(line("b", "ok", None))
    fresh.replace(out)
    with pytest.raises(InputFileError, match="replaced while it was read"):
        list(selection.kept_lines())


def test_a_pipe_is_refused_with_a_reason(tmp_path):
    """Results are read twice, which a pipe cannot be."""
    import os

    reading, writing = os.pipe()
    os.close(writing)
    try:
        with pytest.raises(InputFileError, match="not a regular file"):
            select_latest([Path(f"/dev/fd/{reading}")])
    finally:
        os.close(reading)


def test_a_flood_of_foreign_statuses_does_not_spill_into_other_fields(tmp_path):
    """More distinct statuses than the packed field holds: the rest count as "other"."""
    out = tmp_path / "out.jsonl"
    out.write_bytes(b"".join(line(f"x{i}", f"s{i}", None, number=i) for i in range(300))
                    + line("k", "ok", None, number=7))  # fmt: skip
    selection = select_latest([out])
    assert Entry.status(selection.latest["k"]) < 2**8
    assert selection.statuses[Entry.status(selection.latest["k"])] == "other"
    assert Entry.line(selection.latest["k"]) == 7
    assert sum(selection.by_status().values()) == 301


@pytest.mark.parametrize(
    ("order", "expected"),
    [("line", ["x", "z", "y"]), ("id", ["x", "y", "z"]), ("none", ["z", "y", "x"])],
)
def test_places_in_each_order(tmp_path, order, expected):
    """Input line order (then file order), id order, or file order."""
    out = tmp_path / "out.jsonl"
    out.write_bytes(line("z", "ok", None, 2) + line("y", "ok", None, 3) + line("x", "ok", None, 1))
    selection = select_latest([out])
    with open(out, "rb") as handle:
        ids = []
        for _, offset in selection.places(order):
            handle.seek(offset)
            ids.append(orjson.loads(handle.readline())["id"])
    assert ids == expected
