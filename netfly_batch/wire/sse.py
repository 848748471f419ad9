"""Server-sent events framing: raw bytes in, `ServerSentEvent`s out.

Knows the SSE wire format (WHATWG HTML, "Server-sent events") and nothing about
OpenAI. Bytes are framed into lines on `\\r\\n`, `\\r` or `\\n` only, even when a line
ending or a multi-byte character is split across network chunks; each complete line
is decoded as UTF-8. Memory is bounded: an event (or a line) larger than
`max_event_bytes` raises `StreamError` instead of growing without end.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import StreamError
from ..settings import MAX_EVENT_BYTES

_BOM = b"\xef\xbb\xbf"


@dataclass(slots=True)
class ServerSentEvent:
    """One dispatched event: its data lines joined with `\\n`."""

    data: str
    event: str = "message"
    id: str | None = None
    retry_ms: int | None = None


class SSEDecoder:
    """Incremental decoder: `feed()` each chunk as it arrives, `close()` at the end."""

    __slots__ = (
        "_at_start",
        "_data",
        "_data_size",
        "_event",
        "_id",
        "_max",
        "_more",
        "_more_size",
        "_retry",
        "_skip_lf",
        "_tail",
        "comments",
    )

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._max = max_event_bytes
        self._tail = b""
        self._more: list[bytes] = []  # later pieces of the tail's line, joined once it ends
        self._more_size = 0
        self._skip_lf = False  # the last chunk ended in "\r": a leading "\n" belongs to it
        self._at_start = True
        self._data: list[bytes] = []
        self._data_size = 0
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None
        self.comments = 0

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Take the next piece of the body; return the events it completed."""
        events: list[ServerSentEvent] = []
        for line in self._lines(chunk):
            self._take_line(line, events)
        return events

    def feed_data(self, chunk: bytes) -> list[bytes]:
        """Like `feed()`, but return only each event's data, undecoded (the fast path)."""
        payloads: list[bytes] = []
        for line in self._lines(chunk):
            if line[:6] == b"data: ":  # the common line, handled inline
                value = line[6:]
                self._data_size += len(value) + 1
                if self._data_size > self._max:
                    raise _too_large(self._max)
                self._data.append(value)
            elif line:
                self._take_field(line)
            else:
                data = self._data
                payload = data[0] if len(data) == 1 else b"\n".join(data)
                if payload:  # an empty data buffer dispatches nothing (WHATWG)
                    payloads.append(payload)
                self._reset_event()
        return payloads

    def close_data(self) -> list[bytes]:
        """Like `close()`, for `feed_data()` callers."""
        return [event.data.encode("utf-8", "surrogatepass") for event in self.close()]

    def _lines(self, chunk: bytes) -> list[bytes]:
        """Frame complete lines; keep the unfinished last one for the next chunk."""
        if self._skip_lf and chunk:
            self._skip_lf = False
            if chunk[0] == 0x0A:
                chunk = chunk[1:]
        if (
            self._tail
            and not self._at_start
            and chunk
            and b"\n" not in chunk
            and b"\r" not in chunk
        ):
            # The line goes on: keep the piece aside instead of copying the whole line again
            # (a long event trickling in small pieces would otherwise cost quadratic time).
            self._more.append(chunk)
            self._more_size += len(chunk)
            if len(self._tail) + self._more_size > self._max:
                raise _too_large(self._max)
            return []
        self._join_tail()
        buffer = self._tail + chunk if self._tail else chunk
        if self._at_start:
            if len(buffer) < len(_BOM) and _BOM.startswith(buffer):
                self._tail = buffer
                return []
            self._at_start = False
            if buffer.startswith(_BOM):
                buffer = buffer[len(_BOM) :]
        if b"\r" in buffer:
            self._skip_lf = buffer.endswith(b"\r")
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buffer.split(b"\n")
        self._tail = lines.pop()
        if len(self._tail) > self._max:
            raise _too_large(self._max)
        return lines

    def close(self) -> list[ServerSentEvent]:
        """End of body: an unterminated last line and event are still delivered."""
        events: list[ServerSentEvent] = []
        self._join_tail()
        if self._tail:
            tail, self._tail = self._tail, b""
            if not (self._at_start and _BOM.startswith(tail)):
                self._take_line(tail, events)
        self._take_line(b"", events)
        return events

    def _join_tail(self) -> None:
        if self._more:
            self._tail = b"".join([self._tail, *self._more])
            self._more = []
            self._more_size = 0

    def _take_line(self, line: bytes, events: list[ServerSentEvent]) -> None:
        if line:
            self._take_field(line)
            return
        if self._data:  # a lone "data:" leaves an empty buffer: nothing to dispatch (WHATWG)
            data = b"\n".join(self._data).decode("utf-8", "replace")
            if data:
                events.append(
                    ServerSentEvent(data, self._event or "message", self._id, self._retry)
                )
        self._reset_event()

    def _reset_event(self) -> None:
        self._data = []
        self._data_size = 0
        self._event = ""
        self._retry = None

    def _take_field(self, line: bytes) -> None:
        if line[0] == 0x3A:  # ":" starts a comment, e.g. ": keep-alive"
            self.comments += 1
            return
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data_size += len(value) + 1
            if self._data_size > self._max:
                raise _too_large(self._max)
            self._data.append(value)
            return
        text = value.decode("utf-8", "replace")
        if name == b"event":
            self._event = text
        elif name == b"id":
            if "\0" not in text:
                self._id = text
        elif name == b"retry" and text.isascii() and text.isdigit():
            self._retry = int(text)


def _too_large(limit: int) -> StreamError:
    return StreamError(
        f"a server-sent event is larger than {limit} bytes (raise --max-event-bytes to allow it)",
        retryable=False,
    )
