"""OUT read back as the resume ledger: what each kind of line means, and repeats of its ids."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from netfly_batch.batch.ledger import (
    _OWN_LINE,
    _OWN_OK_LINE,
    ANSWERED,
    KNOWN,
    NEW,
    REPEATED,
    LedgerState,
    _parse_other_line,
    fingerprint_key,
    scan_into,
)
from netfly_batch.batch.prompts import InvalidLine, PromptReader
from netfly_batch.results import LEADING_FIELDS, Result

HASH_A = 0x0123456789ABCDEF
HASH_B = 0xFEDCBA9876543210


def own_line(
    prompt_id: str, status: str, attempts: int = 1, request_hash: int | None = HASH_A
) -> bytes:
    """A result line exactly as a run writes it."""
    return Result(
        id=prompt_id,
        status=status,
        attempts=attempts,  # type: ignore[arg-type]
        content="text" if status == "ok" else None,
        error=None if status == "ok" else {"type": "x", "message": "m"},
        line=1,
        request_hash=None if request_hash is None else f"{request_hash:016x}",
    ).to_line()


def foreign_line(**fields: object) -> bytes:
    """A result line written by something else: keys in another order."""
    return orjson.dumps(dict(reversed(list(fields.items()))), option=orjson.OPT_APPEND_NEWLINE)


def scanned(tmp_path: Path, *lines: bytes) -> LedgerState:
    out = tmp_path / "out.jsonl"
    out.write_bytes(b"".join(lines))
    state = LedgerState()
    scan_into(out, state)
    return state


OWN_LINES = [
    own_line("plain", "ok"),
    own_line("ünïcode id", "ok"),
    own_line('quote " and \\ backslash', "ok"),  # escaped in JSON: parsed the long way
    own_line("tab\tin id", "error", attempts=7),
    own_line("no hash", "ok", request_hash=None),
    own_line("failed", "error", attempts=3, request_hash=HASH_B),
]


def test_result_lines_start_with_the_leading_fields():
    """Result.to_line writes LEADING_FIELDS first, in order (the resume contract)."""
    for line in OWN_LINES:
        assert list(orjson.loads(line))[: len(LEADING_FIELDS)] == list(LEADING_FIELDS)


@pytest.mark.parametrize(
    ("line", "pattern"),
    [
        (own_line("plain", "ok"), _OWN_OK_LINE),
        (own_line("ünïcode id", "ok"), _OWN_OK_LINE),
        (own_line("no hash", "ok", request_hash=None), _OWN_LINE),
        (own_line("failed", "error", attempts=3), _OWN_LINE),
    ],
    ids=["ok", "unicode ok", "ok without hash", "error"],
)
def test_our_own_lines_take_the_fast_path(line, pattern):
    """Lines a run writes are read by their start, never parsed whole (resume speed)."""
    match = pattern.match(line)
    assert match is not None
    assert match.group("id").decode() == orjson.loads(line)["id"]


def test_fast_path_groups_come_in_the_order_scan_into_reads_them():
    """scan_into unpacks match.groups() by position: the names must stay in this order."""
    assert _OWN_OK_LINE.groupindex == {"id": 1, "hash": 2}
    assert _OWN_LINE.groupindex == {"id": 1, "status": 2, "attempts": 3, "hash": 4}


@pytest.mark.parametrize("line", OWN_LINES, ids=lambda line: orjson.loads(line)["id"])
def test_own_lines_read_by_their_start_mean_what_the_whole_line_says(tmp_path, line):
    whole = _parse_other_line(line)
    assert whole is not None
    state = scanned(tmp_path, line)
    key, value, attempts = whole
    assert state.entries == {key: value}
    if orjson.loads(line)["status"] == "error":
        assert state.attempts == {key: attempts}


def test_the_latest_line_of_an_id_wins_and_the_rest_are_dropped(tmp_path):
    state = scanned(
        tmp_path,
        own_line("a", "error", attempts=2),
        own_line("a", "ok", request_hash=HASH_B),
        foreign_line(id="b", status="ok", attempts=1, request_hash=f"{HASH_A:016x}"),
        own_line("b", "error", attempts=4),
        orjson.dumps({"id": "c", "status": "invalid", "error": {}}) + b"\n",
        b"not json at all\n",
        foreign_line(id=7, status="ok", request_hash=f"{HASH_A:016x}"),
    )
    assert state.has_ok("a")
    assert state.check("a", HASH_B) == ANSWERED
    assert not state.has_ok("b")
    assert state.attempts_before("b", HASH_A) == 4
    assert state.attempts_before("b", HASH_B) == 0  # attempts count for that request only
    assert not state.has("c")
    assert state.check("7", HASH_A) == ANSWERED  # a numeric id is its text
    assert state.dropped_lines == 4  # a's error, b's ok, c's invalid result, the garbage
    assert len(state) == 3


def test_check_and_claim(tmp_path):
    state = scanned(tmp_path, own_line("done", "ok"), own_line("failed", "error", 2))
    assert state.check("new", HASH_A) == NEW
    assert state.check("done", HASH_B) == KNOWN  # another request: not taken yet
    assert state.check("done", HASH_A) == ANSWERED  # taken now
    assert state.check("done", HASH_A) == REPEATED
    assert state.check("done", HASH_B) == REPEATED
    assert state.check("failed", HASH_A) == KNOWN
    assert state.claim("failed") is True
    assert state.check("failed", HASH_A) == REPEATED
    assert state.has_ok("done")
    assert state.attempts_before("failed", HASH_A) == 2


def test_a_line_fingerprint_matches_its_request_hash():
    assert fingerprint_key(HASH_A) == fingerprint_key(f"{HASH_A:016x}")
    assert fingerprint_key(None) != fingerprint_key(0)


def reread(state: LedgerState, *lines: dict[str, object]) -> list[object]:
    """The reader's items, and a "done" marker for each line handed to `on_done`."""
    items: list[object] = []
    reader = PromptReader(known=state, on_done=lambda prompt_id: items.append("done"))
    items.extend(reader.read(orjson.dumps(line) for line in lines))
    return items


def test_repeats_of_ids_in_out_are_found_whatever_the_order(tmp_path):
    """Done, changed, failed and broken lines sharing ids: the first valid line wins."""
    from netfly_batch.batch.prompts import request_fingerprint

    first = {"id": "x", "prompt": "same as before"}
    state = scanned(
        tmp_path,
        own_line("x", "ok", request_hash=int(request_fingerprint(first), 16)),
        own_line("y", "error", 2),
    )
    items = reread(
        state,
        {"id": "y", "prompt": 5},  # broken: uses no id
        first,  # done
        {"id": "x", "prompt": "changed"},  # repeat of a done id
        {"id": "y", "prompt": "fixed now"},  # the first valid line of y
        {"id": "y", "prompt": "again"},  # repeat
        first,  # repeat
    )
    kinds = [
        item
        if item == "done"
        else type(item).__name__ + ("-repeat" if getattr(item, "repeat", False) else "")
        for item in items
    ]
    assert kinds == [
        "InvalidLine",
        "done",
        "InvalidLine-repeat",
        "Prompt",
        "InvalidLine-repeat",
        "InvalidLine-repeat",
    ]
    assert isinstance(items[2], InvalidLine)
    assert "already used" in items[2].reason


def test_lines_that_are_not_utf8_or_carry_odd_hashes_are_not_taken_for_results(tmp_path):
    """An id that is not UTF-8 is unreadable, as JSON says; a request_hash that is no
    fingerprint (negative, huge, not hex) matches no request and takes no id."""
    state = scanned(
        tmp_path,
        own_line("good", "ok"),
        own_line("bad", "ok").replace(b'"bad"', b'"b\xffd"'),
        foreign_line(id="neg", status="ok", request_hash="-1"),
        foreign_line(id="negative int", status="ok", request_hash=-(2**63)),
        foreign_line(id="text", status="ok", request_hash="not hex"),
    )
    assert state.dropped_lines == 1
    assert len(state) == 4
    for prompt_id in ("neg", "negative int", "text"):
        assert state.check(prompt_id, HASH_A) == KNOWN  # to be sent again, not a repeat
        assert state.claim(prompt_id) is True


def test_ids_no_line_names_are_counted_whatever_the_order_of_lines(tmp_path):
    state = scanned(
        tmp_path, *(own_line(i, "ok") for i in ("a", "b", "c", "d")), own_line("e", "error", 2)
    )
    state.mention("a")  # a broken line of a first ...
    assert state.check("a", HASH_A) == ANSWERED  # ... then its done line
    state.mention("a")
    assert state.check("b", HASH_B) == KNOWN
    assert state.claim("b") is True
    state.mention("e")
    state.mention("not in OUT")
    assert state.not_in_input == 2  # c and d


def test_a_broken_line_of_a_taken_id_reports_what_is_wrong_with_it(tmp_path):
    from netfly_batch.batch.prompts import request_fingerprint

    line = {"id": "a", "prompt": "hi"}
    state = scanned(tmp_path, own_line("a", "ok", request_hash=int(request_fingerprint(line), 16)))
    items = reread(state, line, {"id": "a"})
    assert items[0] == "done"
    assert isinstance(items[1], InvalidLine)
    assert items[1].repeat is False
    assert "prompt" in items[1].reason


def test_one_bom_is_forgiven_on_the_first_line_only():
    lines = [
        b'\xef\xbb\xbf{"id": "a", "prompt": "x"}\n',
        b'\xef\xbb\xbf{"id": "b", "prompt": "y"}\n',
    ]
    items = list(PromptReader().read(lines))
    assert [type(item).__name__ for item in items] == ["Prompt", "InvalidLine"]
    twice = list(PromptReader().read([b'\xef\xbb\xbf\xef\xbb\xbf{"id": "a", "prompt": "x"}\n']))
    assert isinstance(twice[0], InvalidLine)
