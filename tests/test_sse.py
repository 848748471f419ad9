"""SSEDecoder: framing of server-sent events, however the bytes are cut."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from netfly_batch.errors import StreamError
from netfly_batch.wire.sse import ServerSentEvent, SSEDecoder

CAPTURES = Path(__file__).parent / "data" / "captures"
LLAMA = (CAPTURES / "llamacpp-smollm2-stream.sse").read_bytes()
LITELLM = (CAPTURES / "litellm-mock-stream.sse").read_bytes()
BOM = b"\xef\xbb\xbf"
ENDINGS = {"lf": b"\n", "crlf": b"\r\n", "cr": b"\r"}


def decode(pieces: list[bytes], max_event_bytes: int = 1 << 20) -> tuple[list, SSEDecoder]:
    """Feed each piece, then close; return every event and the decoder."""
    decoder = SSEDecoder(max_event_bytes)
    events = []
    for piece in pieces:
        events += decoder.feed(piece)
    events += decoder.close()
    return events, decoder


def with_ending(body: bytes, ending: bytes) -> bytes:
    """The same body with every `\\n` line ending replaced by `ending`."""
    return body.replace(b"\n", ending)


def test_captures_hold_the_expected_events():
    """The captured streams frame into their known number of events, ending in [DONE]."""
    llama, _ = decode([LLAMA])
    litellm, _ = decode([LITELLM])
    assert len(llama) == 27
    assert len(litellm) == 24
    assert llama[-1].data == litellm[-1].data == "[DONE]"
    assert '"content": " Red"' in llama[3].data
    assert all(event.event == "message" and event.id is None for event in llama + litellm)


@pytest.mark.parametrize("name", ["llama", "litellm"])
@pytest.mark.parametrize("ending", list(ENDINGS.values()), ids=list(ENDINGS))
def test_a_cut_at_every_byte_gives_the_same_events(name, ending):
    """Cutting a captured stream in two at any byte yields the events of the whole."""
    body = with_ending(LLAMA if name == "llama" else LITELLM, ending)
    expected, _ = decode([body])
    expected_lf, _ = decode([with_ending(LLAMA if name == "llama" else LITELLM, b"\n")])
    assert expected == expected_lf
    for cut in range(len(body) + 1):
        events, _ = decode([body[:cut], body[cut:]])
        assert events == expected, f"cut at byte {cut}"


@pytest.mark.parametrize("name", ["llama", "litellm"])
@pytest.mark.parametrize("ending", list(ENDINGS.values()), ids=list(ENDINGS))
def test_one_byte_pieces_give_the_same_events(name, ending):
    """Feeding a captured stream one byte at a time yields the events of the whole."""
    body = with_ending(LLAMA if name == "llama" else LITELLM, ending)
    expected, _ = decode([body])
    events, _ = decode([body[i : i + 1] for i in range(len(body))])
    assert len(events) == (27 if name == "llama" else 24)
    assert events == expected


def test_three_cuts_around_every_line_ending_give_the_same_events():
    """Cutting a CRLF stream at every pair of positions near line ends keeps the events."""
    body = with_ending(LITELLM[:600], b"\r\n")
    expected, _ = decode([body])
    ends = [i for i in range(len(body)) if body[i : i + 1] in (b"\r", b"\n")]
    for first in ends:
        for second in range(first + 1, min(first + 4, len(body)) + 1):
            pieces = [body[:first], body[first:second], body[second:]]
            assert decode(pieces)[0] == expected, f"cuts at {first} and {second}"


def event(
    data: str, kind: str = "message", id: str | None = None, retry: int | None = None
) -> ServerSentEvent:
    """An expected event."""
    return ServerSentEvent(data, kind, id, retry)


CASES = [
    (
        "several events in one chunk",
        [b"data: a\n\ndata: b\n\ndata: c\n\n"],
        [event("a"), event("b"), event("c")],
        0,
    ),
    ("data without a space", [b"data:x\n\n"], [event("x")], 0),
    ("only one space is removed", [b"data:  two\n\n"], [event(" two")], 0),
    ("multi-line data joined with LF", [b"data: a\ndata: b\ndata:c\n\n"], [event("a\nb\nc")], 0),
    (
        "comments ignored and counted",
        [b": keep-alive\n\ndata: x\n: ping\n\n:\n\n"],
        [event("x")],
        3,
    ),
    (
        "event, id and retry fields",
        [b"event: update\nid: 7\nretry: 1500\ndata: x\n\n"],
        [event("x", "update", "7", 1500)],
        0,
    ),
    (
        "id persists, event type and retry reset",
        [b"event: e\nid: 7\nretry: 10\ndata: a\n\ndata: b\n\n"],
        [event("a", "e", "7", 10), event("b", "message", "7")],
        0,
    ),
    ("id with NUL ignored", [b"id: 1\x002\ndata: x\n\n"], [event("x")], 0),
    (
        "retry that is not ASCII digits ignored",
        [b"retry: soon\ndata: a\n\n", "retry: ²\ndata: b\n\n".encode()],
        [event("a"), event("b")],
        0,
    ),
    ("unknown field ignored", [b"foo: bar\ndata: x\n\n"], [event("x")], 0),
    ("field name without colon", [b"data\ndata\n\n"], [event("\n")], 0),
    ("lone empty data dispatches nothing", [b"data:\n\ndata: x\n\n"], [event("x")], 0),
    ("blank lines alone dispatch nothing", [b"\n\n\r\n\r\r"], [], 0),
    ("BOM at the start", [BOM + b"data: x\n\n"], [event("x")], 0),
    ("BOM split across chunks", [BOM[:1], BOM[1:2], BOM[2:] + b"data: x\n\n"], [event("x")], 0),
    (
        "BOM in the second chunk after a split first",
        [BOM[:2], BOM[2:], b"data: x\n\n"],
        [event("x")],
        0,
    ),
    ("BOM is only stripped at the start", [b"data: a\n\n" + BOM + b"data: b\n\n"], [event("a")], 0),
    (
        "multi-byte character split across chunks",
        ["data: Привет\n\n".encode()[:7], "data: Привет\n\n".encode()[7:]],
        [event("Привет")],
        0,
    ),
    (
        "final event without trailing blank line",
        [b"data: a\n\ndata: last"],
        [event("a"), event("last")],
        0,
    ),
    ("final event with one line ending", [b"data: last\n"], [event("last")], 0),
    (
        "CR at a chunk end then LF",
        [b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"],
        [event("a\nb")],
        0,
    ),
    ("CR, empty chunk, then LF", [b"data: a\r", b"", b"\n\r\n"], [event("a")], 0),
    ("CR CR is two line endings", [b"data: a\r\rdata: b\r\r"], [event("a"), event("b")], 0),
    ("U+2028 is not a line ending", ["data: a\u2028b\n\n".encode()], [event("a\u2028b")], 0),
    ("invalid UTF-8 replaced", [b"data: \xff\n\n"], [event("\ufffd")], 0),
]


@pytest.mark.parametrize(
    ("pieces", "expected", "comments"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_decoder_cases(pieces, expected, comments):
    """Each framing case yields exactly the expected events and comment count."""
    events, decoder = decode(pieces)
    assert events == expected
    assert decoder.comments == comments


@pytest.mark.parametrize(
    ("pieces", "expected", "comments"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_decoder_cases_in_one_byte_pieces(pieces, expected, comments):
    """Each framing case gives the same events when fed one byte at a time."""
    body = b"".join(pieces)
    events, decoder = decode([body[i : i + 1] for i in range(len(body))])
    assert events == expected
    assert decoder.comments == comments


def test_events_are_returned_by_the_feed_that_completes_them():
    """feed() returns an event as soon as its blank line arrives, not before."""
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"\n") == [event("a")]
    assert decoder.feed(b"data: b") == []
    assert decoder.close() == [event("b")]


def test_an_event_larger_than_the_limit_raises():
    """Data lines adding up to more than max_event_bytes raise a non-retryable StreamError."""
    decoder = SSEDecoder(max_event_bytes=100)
    for _ in range(9):
        assert decoder.feed(b"data: " + b"x" * 10 + b"\n") == []
    with pytest.raises(StreamError, match="larger than 100 bytes") as caught:
        decoder.feed(b"data: " + b"x" * 10 + b"\n")
    assert caught.value.retryable is False


def test_an_event_at_the_limit_passes():
    """An event just inside max_event_bytes is delivered whole."""
    events, _ = decode([b"data: " + b"x" * 99 + b"\n\n"], max_event_bytes=100)
    assert events == [event("x" * 99)]


def test_a_long_line_without_newline_raises_early():
    """A line longer than max_event_bytes raises before its end arrives (memory bounded)."""
    decoder = SSEDecoder(max_event_bytes=100)
    for _ in range(100):
        assert decoder.feed(b"x") == []
    with pytest.raises(StreamError, match="larger than 100 bytes"):
        decoder.feed(b"x")


def test_a_long_line_in_one_chunk_raises():
    """One chunk holding an unterminated line over the limit raises at once."""
    with pytest.raises(StreamError, match="larger than 100 bytes"):
        SSEDecoder(max_event_bytes=100).feed(b"data: " + b"x" * 200)


def test_a_long_line_in_small_pieces_takes_linear_time():
    """An 8 MB event trickling in 1460-byte pieces is framed without re-copying its line."""
    body = b"data: " + b"x" * 8_000_000 + b"\n\n"
    decoder = SSEDecoder(max_event_bytes=16_000_000)
    started = time.perf_counter()
    events = []
    for start in range(0, len(body), 1460):
        events += decoder.feed(body[start : start + 1460])
    assert time.perf_counter() - started < 2.0  # quadratic copying took over 7 s
    assert len(events) == 1
    assert len(events[0].data) == 8_000_000


def test_many_small_events_are_not_limited_together():
    """The limit applies per event: many small events pass in any total size."""
    events, _ = decode([b"data: xxxxxxxxxx\n\n" * 1000], max_event_bytes=100)
    assert len(events) == 1000


def decode_data(pieces: list[bytes]) -> list[bytes]:
    """Feed each piece through the data-only fast path, then close."""
    decoder = SSEDecoder(1 << 20)
    payloads = []
    for piece in pieces:
        payloads += decoder.feed_data(piece)
    return payloads + decoder.close_data()


@pytest.mark.parametrize(
    ("pieces", "expected", "comments"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_feed_data_gives_the_data_of_feed(pieces, expected, comments):
    """The data-only path yields each event's data as bytes, exactly as feed() frames it."""
    payloads = decode_data(pieces)
    events, _ = decode(pieces)
    assert [p.decode("utf-8", "replace") for p in payloads] == [e.data for e in events]


@pytest.mark.parametrize("ending", list(ENDINGS.values()), ids=list(ENDINGS))
def test_feed_data_at_every_cut(ending):
    """The data-only path frames a captured stream cut at any byte like the whole."""
    body = with_ending(LITELLM, ending)
    expected = [e.data.encode() for e in decode([body])[0]]
    for cut in range(len(body) + 1):
        assert decode_data([body[:cut], body[cut:]]) == expected, f"cut at byte {cut}"
