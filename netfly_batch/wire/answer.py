"""The whole answer: `Completion` with every choice, its tool calls, reasoning, refusal and
logprobs, and when it is acceptable (`require_finish`).

Built by `assemble.AnswerBuilder` from stream chunks or one whole reply; turned back
into the `chat.completion` object a server would have sent without streaming by
`to_chat_completion()`. Pure values, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import TransportError


@dataclass(slots=True)
class ToolCall:
    """One tool call, joined: `arguments` is the JSON text the model wrote (unchecked)."""

    id: str | None
    name: str
    arguments: str
    type: str = "function"

    def to_dict(self) -> dict[str, Any]:
        """As in a non-streamed message: `{"id", "type", "function": {"name", "arguments"}}`."""
        return {
            "id": self.id,
            "type": self.type,
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(slots=True)
class Choice:
    """One choice of an answer (`n` > 1 gives several), every part joined."""

    index: int
    content: str = ""
    finish_reason: str | None = None
    reasoning: str | None = None
    # The key the server used for reasoning: "reasoning_content" (DeepSeek, llama.cpp,
    # older vLLM) or "reasoning" (newer vLLM, OpenRouter, Ollama).
    reasoning_field: str | None = None
    tool_calls: list[ToolCall] | None = None
    refusal: str | None = None
    logprobs: dict[str, Any] | None = None  # {"content": [...], "refusal": [...]}
    function_call: dict[str, str] | None = None  # legacy: {"name", "arguments"}
    parsed: Any = None  # the content's JSON value, once checked as JSON (validation.py)

    @property
    def is_empty(self) -> bool:
        """No content, reasoning, tool call, function call or refusal at all."""
        return not (
            self.content or self.reasoning or self.tool_calls or self.function_call or self.refusal
        )

    def to_result(self) -> dict[str, Any]:
        """The choice as a result line's `choices` item."""
        return {
            "index": self.index,
            "content": self.content,
            "reasoning": self.reasoning,
            "tool_calls": _calls(self.tool_calls),
            "refusal": self.refusal,
            "finish_reason": self.finish_reason,
            "logprobs": self.logprobs,
            "function_call": self.function_call,
            "parsed": self.parsed,
        }

    def to_message_choice(self) -> dict[str, Any]:
        """The choice as in a `chat.completion`: `{"index", "message", "logprobs",
        "finish_reason"}`; content is null when the answer is only calls or a refusal."""
        message: dict[str, Any] = {
            "role": "assistant",
            "content": self.content if self.content or not self._has_other_output() else None,
        }
        if self.reasoning is not None:
            message[self.reasoning_field or "reasoning_content"] = self.reasoning
        if self.tool_calls:
            message["tool_calls"] = _calls(self.tool_calls)
        if self.function_call is not None:
            message["function_call"] = self.function_call
        message["refusal"] = self.refusal
        return {
            "index": self.index,
            "message": message,
            "logprobs": self.logprobs,
            "finish_reason": self.finish_reason,
        }

    def _has_other_output(self) -> bool:
        return bool(self.tool_calls or self.function_call or self.refusal)


@dataclass(slots=True)
class Completion:
    """One whole answer. `content` and `finish_reason` are choice 0's (the common case);
    `choices` holds every choice in index order, choice 0 included."""

    content: str
    finish_reason: str | None
    model: str | None = None
    usage: dict[str, Any] | None = None
    attempts: int = 1
    id: str | None = None
    created: int | None = None
    system_fingerprint: str | None = None
    request_id: str | None = None  # the x-request-id header of the attempt that answered
    endpoint: str | None = None  # the public base URL of the server that answered
    choices: list[Choice] = field(default_factory=list)

    @property
    def first(self) -> Choice:
        """Choice 0 (an empty one when the answer has none)."""
        return self.choices[0] if self.choices else Choice(0, self.content, self.finish_reason)

    @property
    def reasoning(self) -> str | None:
        """Choice 0's reasoning text."""
        return self.first.reasoning

    @property
    def tool_calls(self) -> list[ToolCall] | None:
        """Choice 0's tool calls."""
        return self.first.tool_calls

    @property
    def refusal(self) -> str | None:
        """Choice 0's refusal."""
        return self.first.refusal

    @property
    def logprobs(self) -> dict[str, Any] | None:
        """Choice 0's logprobs (`{"content": [...]}`), when the server sent any."""
        return self.first.logprobs

    @property
    def parsed(self) -> Any:
        """Choice 0's JSON value, when the answer was checked as JSON."""
        return self.first.parsed

    @property
    def is_empty(self) -> bool:
        """No choice has any output: no content, reasoning, call or refusal."""
        return all(choice.is_empty for choice in self.choices or [self.first])

    def to_chat_completion(self) -> dict[str, Any]:
        """The `chat.completion` object the server would have returned without streaming."""
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": self.system_fingerprint,
            "choices": [choice.to_message_choice() for choice in self.choices or [self.first]],
            "usage": self.usage,
        }


AnswerCheck = Callable[[Completion], None]


def require_finish(completion: Completion) -> None:
    """Accept an answer only when every choice that appeared carried a finish_reason
    (a choice without one was cut short: the whole answer is a truncated stream)."""
    choices = completion.choices
    if not choices and completion.finish_reason:
        return
    cut = [choice.index for choice in choices if not choice.finish_reason]
    if not choices or len(cut) == len(choices):
        raise TransportError(
            "the stream ended without a finish_reason (cut short by the server); "
            "its partial text was discarded"
        )
    if cut:
        raise TransportError(
            f"the stream ended before choice {cut[0]} had a finish_reason (cut short by the "
            "server); the partial answer was discarded"
        )


def _calls(calls: list[ToolCall] | None) -> list[dict[str, Any]] | None:
    return [call.to_dict() for call in calls] if calls else None
