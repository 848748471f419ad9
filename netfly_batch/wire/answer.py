"""The answer: chunks (or one whole reply) -> `Completion`, and when it is acceptable.

`AnswerBuilder` is the one place where chat-completion chunks add up to an answer;
`SSEAnswerReader` feeds it a streamed body's bytes (up to `[DONE]`), for the client's
paths and the seed provider's lenient one alike. `require_finish` is the acceptance
step every attempt passes before it counts as an answer. Knows nothing about HTTP.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from ..errors import TransportError
from ..settings import MAX_EVENT_BYTES
from .chunks import DONE, error_from_object, parse_chunk
from .sse import SSEDecoder

DONE_BYTES = DONE.encode()


@dataclass(slots=True)
class Completion:
    """One whole answer: the joined content and what the server said about it."""

    content: str
    finish_reason: str | None
    model: str | None = None
    usage: dict[str, Any] | None = None
    attempts: int = 1


class AnswerBuilder:
    """Folds chunks, or one whole reply, into a `Completion`."""

    __slots__ = ("finish_reason", "model", "parts", "usage")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.finish_reason: str | None = None
        self.model: str | None = None
        self.usage: dict[str, Any] | None = None

    def add(self, chunk: dict[str, Any]) -> str:
        """Take one parsed chunk; return the text it adds ("" when none)."""
        text = ""
        choices = chunk.get("choices")
        if choices and isinstance(choices, list):
            for choice in choices:
                if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                    continue
                delta = choice.get("delta")
                if delta is None:
                    delta = choice.get("message")
                if isinstance(delta, dict):
                    content = delta.get("content")
                    if content and isinstance(content, str):
                        text = content
                        self.parts.append(content)
                reason = choice.get("finish_reason")
                if reason:
                    self.finish_reason = str(reason)
        usage = chunk.get("usage")
        if usage and isinstance(usage, dict):
            self.usage = usage
        model = chunk.get("model")
        if model and isinstance(model, str):
            self.model = model
        return text

    def build(self, attempts: int = 1) -> Completion:
        """The completion so far."""
        return Completion("".join(self.parts), self.finish_reason, self.model, self.usage, attempts)


AnswerCheck = Callable[[Completion], None]


def require_finish(completion: Completion) -> None:
    """Accept an answer only when a choice carried a finish_reason (else it was cut)."""
    if not completion.finish_reason:
        raise TransportError(
            "the stream ended without a finish_reason (cut short by the server); "
            "its partial text was discarded"
        )


class SSEAnswerReader:
    """A streamed reply's bytes -> `builder`; `done` once `[DONE]` came (the rest is
    ignored). `on_malformed`, when given, is told of each chunk that is not JSON, which
    is skipped like any chunk that is not an object (the seed's lenient reading); without
    it such chunks raise `StreamError`."""

    __slots__ = ("_decoder", "_on_malformed", "builder", "done", "events")

    def __init__(
        self,
        builder: AnswerBuilder,
        max_event_bytes: int = MAX_EVENT_BYTES,
        on_malformed: Callable[[bytes], None] | None = None,
    ) -> None:
        self.builder = builder
        self.done = False
        self.events = 0  # events with data, [DONE] included
        self._decoder = SSEDecoder(max_event_bytes)
        self._on_malformed = on_malformed

    def feed(self, raw: bytes) -> list[str]:
        """Take the next piece of the body; return the text each completed chunk added."""
        if self.done:
            return []
        return self._take(self._decoder.feed_data(raw))

    def close(self) -> list[str]:
        """End of the body: an unterminated last event still counts."""
        if self.done:
            return []
        return self._take(self._decoder.close_data())

    def _take(self, payloads: list[bytes]) -> list[str]:
        texts: list[str] = []
        add = self.builder.add
        for data in payloads:
            self.events += 1
            if data == DONE_BYTES:
                self.done = True
                break
            chunk = parse_chunk(data) if self._on_malformed is None else self._lenient(data)
            if chunk is not None:
                text = add(chunk)
                if text:
                    texts.append(text)
        return texts

    def _lenient(self, data: bytes) -> dict[str, Any] | None:
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            assert self._on_malformed is not None
            self._on_malformed(data)
            return None
        if not isinstance(chunk, dict):
            return None
        if chunk.get("error") is not None:
            raise error_from_object(chunk["error"])
        return chunk
