"""Chat-completion JSON (stream chunks or a whole reply) -> text deltas -> `Completion`.

Knows the OpenAI chat-completion shapes and nothing about HTTP. Only choice 0 is
joined. Content-less chunks (role-only, tool calls, usage-only) add nothing and break
nothing; an `{"error": ...}` object becomes a `StreamError` with the server's words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from .errors import StreamError, is_retryable_status, status_of_code

DONE = "[DONE]"

# Codes that servers put in an in-band error instead of a number, meaning "try again".
_RETRYABLE_CODES = frozenset(
    {"rate_limit_exceeded", "server_error", "overloaded", "service_unavailable", "timeout"}
)


@dataclass(slots=True)
class Completion:
    """One whole answer: the joined content and what the server said about it."""

    content: str
    finish_reason: str | None
    model: str | None = None
    usage: dict[str, Any] | None = None
    attempts: int = 1


def parse_chunk(data: str | bytes) -> dict[str, Any]:
    """Parse one event's data as a JSON object; raise `StreamError` for garbage or errors."""
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise StreamError(f"malformed chunk from the server: {_first_line(data)}") from None
    if not isinstance(parsed, dict):
        raise StreamError(f"chunk is not a JSON object: {_first_line(data)}")
    error = parsed.get("error")
    if error is not None:
        raise error_from_object(error)
    return parsed


def error_from_object(error: object) -> StreamError:
    """Turn an in-band `{"error": ...}` value into a typed, classified error."""
    if isinstance(error, dict):
        message = str(error.get("message") or error.get("type") or "unknown error")
        code = error.get("code")
    else:
        message, code = str(error), None
    status = status_of_code(code)
    if status is not None:
        retryable = is_retryable_status(status)
    elif code is None or code == "":
        retryable = True
    else:
        retryable = str(code) in _RETRYABLE_CODES
    code_text = None if code is None else str(code)
    suffix = f" (code {code_text})" if code_text else ""
    return StreamError(
        f"error inside the response: {message}{suffix}",
        retryable=retryable,
        code=code_text,
        status=status,
    )


class CompletionBuilder:
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
        return Completion("".join(self.parts), self.finish_reason, self.model, self.usage,
                          attempts)


def _first_line(data: str | bytes, limit: int = 120) -> str:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    line = text.strip().split("\n", 1)[0]
    return repr(line[:limit] + ("..." if len(line) > limit else ""))
