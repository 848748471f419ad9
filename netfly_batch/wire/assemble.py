"""Chunks (or one whole reply) -> `Completion`: the one place where an answer adds up.

`AnswerBuilder` joins every choice by its `index`: content, reasoning (from
`reasoning_content` or `reasoning`, whichever the server sends), refusal, logprobs
lists, tool calls by their own `index` (a call without one is whole), a legacy
`function_call`, and the top-level id, created, model, system_fingerprint and usage.
A delta that holds only text takes a short path (most chunks). `SSEAnswerReader` feeds
it a streamed body's bytes up to `[DONE]`, for every reading path. No I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from ..settings import MAX_EVENT_BYTES
from .answer import Choice, Completion, ToolCall
from .chunks import DONE, error_from_object, parse_chunk
from .sse import SSEDecoder

DONE_BYTES = DONE.encode()
REASONING_FIELDS = ("reasoning_content", "reasoning")


class _CallParts:
    """One tool call being joined from its deltas."""

    __slots__ = ("arguments", "id", "name", "type")

    def __init__(self) -> None:
        self.id: str | None = None
        self.type: str | None = None
        self.name: list[str] = []
        self.arguments: list[str] = []

    def add(self, item: dict[str, Any]) -> None:
        call_id = item.get("id")
        if call_id and self.id is None and isinstance(call_id, str):
            self.id = call_id
        kind = item.get("type")
        if kind and self.type is None and isinstance(kind, str):
            self.type = kind
        function = item.get("function")
        if isinstance(function, dict):
            self.add_function(function)

    def add_function(self, function: dict[str, Any]) -> None:
        name = function.get("name")
        if name and isinstance(name, str) and name != "".join(self.name):  # not a repeat
            self.name.append(name)
        arguments = function.get("arguments")
        if arguments and isinstance(arguments, str):
            self.arguments.append(arguments)
        elif isinstance(arguments, dict):  # a server that sends the object itself
            self.arguments.append(orjson.dumps(arguments).decode())

    def build(self) -> ToolCall:
        return ToolCall(
            self.id, "".join(self.name), "".join(self.arguments), self.type or "function"
        )


class _ChoiceParts:
    """One choice being joined from its deltas."""

    __slots__ = (
        "calls",
        "calls_by_index",
        "content",
        "finish_reason",
        "function_call",
        "index",
        "logprobs",
        "reasoning",
        "reasoning_field",
        "refusal",
    )

    def __init__(self, index: int) -> None:
        self.index = index
        self.content: list[str] = []
        self.finish_reason: str | None = None
        self.reasoning: list[str] | None = None
        self.reasoning_field: str | None = None
        self.refusal: list[str] | None = None
        self.calls: list[_CallParts] | None = None
        self.calls_by_index: dict[object, _CallParts] = {}
        self.function_call: _CallParts | None = None
        self.logprobs: dict[str, list[Any]] | None = None

    def add_rest(self, delta: dict[str, Any]) -> None:
        """Everything of a delta but its content: reasoning, refusal, calls."""
        for key in REASONING_FIELDS:
            text = delta.get(key)
            if text and isinstance(text, str) and self.reasoning_field in (None, key):
                self.reasoning_field = key  # the first key the server used wins
                if self.reasoning is None:
                    self.reasoning = []
                self.reasoning.append(text)
        refusal = delta.get("refusal")
        if refusal and isinstance(refusal, str):
            if self.refusal is None:
                self.refusal = []
            self.refusal.append(refusal)
        calls = delta.get("tool_calls")
        if calls and isinstance(calls, list):
            for item in calls:
                if isinstance(item, dict):
                    self._call_for(item).add(item)
        function_call = delta.get("function_call")
        if function_call and isinstance(function_call, dict):
            if self.function_call is None:
                self.function_call = _CallParts()
            self.function_call.add_function(function_call)

    def add_logprobs(self, logprobs: dict[str, Any]) -> None:
        for key in ("content", "refusal"):
            items = logprobs.get(key)
            if items and isinstance(items, list):
                if self.logprobs is None:
                    self.logprobs = {}
                self.logprobs.setdefault(key, []).extend(items)

    def _call_for(self, item: dict[str, Any]) -> _CallParts:
        """The call a delta belongs to: by its `index`; a delta without one is whole."""
        index = item.get("index")
        call = None if index is None else self.calls_by_index.get(index)
        if call is None:
            call = _CallParts()
            if self.calls is None:
                self.calls = []
            self.calls.append(call)
            if index is not None:
                self.calls_by_index[index] = call
        return call

    def build(self) -> Choice:
        function_call = None
        if self.function_call is not None:
            joined = self.function_call.build()
            function_call = {"name": joined.name, "arguments": joined.arguments}
        return Choice(
            index=self.index,
            content="".join(self.content),
            finish_reason=self.finish_reason,
            reasoning=None if self.reasoning is None else "".join(self.reasoning),
            reasoning_field=self.reasoning_field,
            tool_calls=None if self.calls is None else [call.build() for call in self.calls],
            refusal=None if self.refusal is None else "".join(self.refusal),
            logprobs=self.logprobs,
            function_call=function_call,
        )


class AnswerBuilder:
    """Folds chunks, or one whole reply, into a `Completion` with every choice."""

    __slots__ = ("_zero", "choices", "created", "id", "model", "system_fingerprint", "usage")

    def __init__(self) -> None:
        self.choices: dict[int, _ChoiceParts] = {}
        self._zero: _ChoiceParts | None = None  # choices[0], once it appeared
        self.id: str | None = None
        self.created: int | None = None
        self.model: str | None = None
        self.system_fingerprint: str | None = None
        self.usage: dict[str, Any] | None = None

    def add(self, chunk: dict[str, Any]) -> str:
        """Take one parsed chunk; return the content it adds to choice 0 ("" when none)."""
        text = ""
        choices = chunk.get("choices")
        if choices and choices.__class__ is list:
            for choice in choices:
                if choice.__class__ is not dict:
                    continue
                index = choice.get("index")
                if not index:  # 0, or none given: choice 0, the common case
                    index = 0
                    parts = self._zero
                    if parts is None:
                        parts = self._zero = self.choices[0] = _ChoiceParts(0)
                elif index.__class__ is not int:
                    continue  # not a choice index (a list, a string, true): skipped
                else:
                    parts = self.choices.get(index)
                    if parts is None:
                        parts = self.choices[index] = _ChoiceParts(index)
                delta = choice.get("delta")
                if delta is None:
                    delta = choice.get("message")
                if delta.__class__ is dict:
                    content = delta.get("content")
                    if content and content.__class__ is str:
                        parts.content.append(content)
                        if index == 0:
                            text = content
                        if len(delta) > 1:
                            parts.add_rest(delta)
                    elif delta:
                        parts.add_rest(delta)
                logprobs = choice.get("logprobs")
                if logprobs and logprobs.__class__ is dict:
                    parts.add_logprobs(logprobs)
                reason = choice.get("finish_reason")
                if reason:
                    parts.finish_reason = str(reason)
        usage = chunk.get("usage")
        if usage and usage.__class__ is dict:
            self.usage = usage
        model = chunk.get("model")
        if model and model.__class__ is str:
            self.model = model
        if self.id is None:
            self._read_head(chunk)
        return text

    def _read_head(self, chunk: dict[str, Any]) -> None:
        """The completion's id, created and system_fingerprint (the same on every chunk)."""
        completion_id = chunk.get("id")
        if completion_id and isinstance(completion_id, str):
            self.id = completion_id
        created = chunk.get("created")
        if isinstance(created, int) and not isinstance(created, bool):
            self.created = created
        fingerprint = chunk.get("system_fingerprint")
        if fingerprint and isinstance(fingerprint, str):
            self.system_fingerprint = fingerprint

    @property
    def finish_reason(self) -> str | None:
        """Choice 0's finish_reason so far."""
        first = self.choices.get(0)
        return None if first is None else first.finish_reason

    def build(self, attempts: int = 1, request_id: str | None = None) -> Completion:
        """The completion so far."""
        choices = [self.choices[index].build() for index in sorted(self.choices)]
        first = choices[0] if choices and choices[0].index == 0 else None
        return Completion(
            content=first.content if first else "",
            finish_reason=first.finish_reason if first else None,
            model=self.model,
            usage=self.usage,
            attempts=attempts,
            id=self.id,
            created=self.created,
            system_fingerprint=self.system_fingerprint,
            request_id=request_id,
            choices=choices,
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

    def fold(self, raw: bytes) -> None:
        """`feed()` without returning texts or counting events: `complete()`'s hot path
        (strict; `test_answer.py` feeds both the same faults)."""
        add = self.builder.add
        for data in self._decoder.feed_data(raw):
            if data == DONE_BYTES:
                self.done = True
                return
            add(parse_chunk(data))

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
