"""Chat-completion requests in, deterministic answers out (pure, no I/O)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from .structured import json_answer

REPLY_PREFIX = "Echo: "
REPLY_CHARS = 200
REASONING_PREFIX = "Thinking about: "
REASONING_CHARS = 40
PROMPT_KEY_CHARS = 16
SAMPLE_MARK = " #"  # choice i > 0 of n ends with " #<i + 1>"
MAX_CHOICES = 16

Message = Mapping[str, Any]


class BadRequestError(ValueError):
    """A request body the simulator refuses with HTTP 400."""


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """The parts of a chat-completions request body the simulator uses."""

    model: str
    messages: tuple[Message, ...]
    stream: bool
    max_tokens: int | None
    tools: tuple[str, ...] = ()  # names of the functions offered (a tool call answers)
    reasoning: bool = False  # `reasoning_effort` was set: the answer reasons first
    json: bool = False  # response_format json_object or json_schema: the answer is JSON
    schema: Any = None  # the json_schema's schema: the answer is valid against it
    n: int = 1  # choices to answer with


@dataclass(frozen=True, slots=True)
class SimulatedAnswer:
    """One answer, before it is written as a JSON object or as stream chunks."""

    id: str
    model: str
    created: int
    content: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    reasoning: str | None = None
    tool_call: tuple[str, str, str] | None = None  # (id, function name, JSON arguments)
    n: int = 1  # choices: choice i > 0 is choice 0 marked as sample i + 1

    @property
    def usage(self) -> dict[str, int]:
        """The OpenAI `usage` object (every choice's tokens)."""
        completion_tokens = self.completion_tokens * self.n + sum(
            count_tokens(self.content_of(i)) - count_tokens(self.content) for i in range(1, self.n)
        )
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": self.prompt_tokens + completion_tokens,
        }

    def content_of(self, index: int) -> str:
        """Choice `index`'s text: choice 0's, marked for a later sample of plain text."""
        if index == 0 or not self.content or self.content.lstrip().startswith(("{", "[")):
            return self.content
        return f"{self.content}{SAMPLE_MARK}{index + 1}"

    def tool_call_of(self, index: int) -> tuple[str, str, str] | None:
        """Choice `index`'s tool call: choice 0's, with its own id."""
        if self.tool_call is None or index == 0:
            return self.tool_call
        call_id, name, arguments = self.tool_call
        return f"{call_id}_{index}", name, arguments


def parse_chat_request(body: bytes, default_model: str) -> ChatRequest:
    """Read a request body; raise BadRequestError with a one-sentence reason."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequestError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequestError("request body must be a JSON object")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequestError("'messages' must be a non-empty list of message objects")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadRequestError(f"messages[{index}] must be an object")
        if not isinstance(message.get("content"), str | list | None):
            raise BadRequestError(f"messages[{index}].content must be a string or a list")
    model = data.get("model", default_model)
    if not isinstance(model, str) or not model:
        raise BadRequestError("'model' must be a non-empty string")
    return ChatRequest(
        model=model,
        messages=tuple(messages),
        stream=data.get("stream") is True,
        max_tokens=_max_tokens(data),
        tools=_tool_names(data),
        reasoning=data.get("reasoning_effort") is not None,
        n=_choices(data),
        **_json_format(data.get("response_format")),
    )


def _choices(data: Mapping[str, Any]) -> int:
    """`n`: how many choices to answer with (1 when absent)."""
    value = data.get("n", 1)
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CHOICES:
        raise BadRequestError(f"'n' must be an integer from 1 to {MAX_CHOICES}")
    return value


def _json_format(response_format: object) -> dict[str, Any]:
    """`json` and `schema` of a request's response_format."""
    if not isinstance(response_format, dict):
        return {}
    kind = response_format.get("type")
    if kind == "json_object":
        return {"json": True}
    if kind == "json_schema":
        inner = response_format.get("json_schema")
        schema = inner.get("schema") if isinstance(inner, dict) else None
        return {"json": True, "schema": schema}
    return {}


def _tool_names(data: Mapping[str, Any]) -> tuple[str, ...]:
    """The function names of `tools` (none when `tool_choice` is "none")."""
    tools = data.get("tools")
    if not tools or data.get("tool_choice") == "none":
        return ()
    if not isinstance(tools, list):
        raise BadRequestError("'tools' must be a list")
    names = []
    for index, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise BadRequestError(f"tools[{index}].function.name must be a string")
        names.append(function["name"])
    return tuple(names)


def _max_tokens(data: Mapping[str, Any]) -> int | None:
    """The `max_tokens` (or `max_completion_tokens`) limit, if any."""
    value = data.get("max_tokens", data.get("max_completion_tokens"))
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequestError("'max_tokens' must be a positive integer")
    return value


def message_text(content: object) -> str:
    """The text of a message content: a string, or the text parts of a list joined by newlines."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            part["text"]
            for part in content
            if isinstance(part, dict)
            and part.get("type") == "text"
            and isinstance(part.get("text"), str)
        ]
        return "\n".join(texts)
    return ""


def last_user_text(messages: Sequence[Message]) -> str:
    """The text of the last message whose role is "user" ("" when there is none)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message.get("content"))
    return ""


def reply_for(messages: Sequence[Message], model: str) -> str:
    """The full answer: "Echo: " and the first 200 characters of the last user message.

    The answer is the same for every `model`, so results compare across models.
    """
    return REPLY_PREFIX + last_user_text(messages)[:REPLY_CHARS]


def prompt_key(messages: Sequence[Message]) -> str:
    """A short stable hash of the messages, used to count attempts per prompt."""
    canonical = orjson.dumps(list(messages), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()[:PROMPT_KEY_CHARS]


def truncate_words(text: str, max_tokens: int | None) -> tuple[str, bool]:
    """Cut `text` to `max_tokens` whitespace-split words; say whether it was cut."""
    words = text.split()
    if max_tokens is None or len(words) <= max_tokens:
        return text, False
    return " ".join(words[:max_tokens]), True


def count_tokens(text: str) -> int:
    """The simulator's token count: whitespace-split words."""
    return len(text.split())


def simulate_answer(request: ChatRequest, *, completion_id: str, created: int) -> SimulatedAnswer:
    """The answer to `request`, cut by its `max_tokens`: with tools, a call of the first
    one with the user's text as `{"text": ...}`; with `reasoning_effort`, reasoning first."""
    prompt_tokens = sum(
        count_tokens(message_text(message.get("content"))) for message in request.messages
    )
    reasoning = None
    if request.reasoning:
        reasoning = REASONING_PREFIX + last_user_text(request.messages)[:REASONING_CHARS]
    if request.tools:
        arguments = orjson.dumps({"text": last_user_text(request.messages)[:REPLY_CHARS]})
        return SimulatedAnswer(
            id=completion_id,
            model=request.model,
            created=created,
            content="",
            finish_reason="tool_calls",
            prompt_tokens=prompt_tokens,
            completion_tokens=count_tokens(arguments.decode()),
            reasoning=reasoning,
            tool_call=(f"call_{completion_id[-12:]}", request.tools[0], arguments.decode()),
            n=request.n,
        )
    if request.json:
        content = json_answer(request.schema, last_user_text(request.messages)[:REPLY_CHARS])
        cut = False
    else:
        content, cut = truncate_words(
            reply_for(request.messages, request.model), request.max_tokens
        )
    return SimulatedAnswer(
        id=completion_id,
        model=request.model,
        created=created,
        content=content,
        finish_reason="length" if cut else "stop",
        prompt_tokens=prompt_tokens,
        completion_tokens=count_tokens(content) + count_tokens(reasoning or ""),
        reasoning=reasoning,
        n=request.n,
    )


def split_content(text: str, count: int) -> list[str]:
    """Split `text` into at most `count` pieces of nearly equal length (fewer if it is short)."""
    pieces = min(count, len(text))
    if pieces <= 0:
        return []
    size, extra = divmod(len(text), pieces)
    result: list[str] = []
    start = 0
    for index in range(pieces):
        end = start + size + (1 if index < extra else 0)
        result.append(text[start:end])
        start = end
    return result
