"""The `Result` record and its one orjson line: every key always present."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from .errors import HTTPStatusError, RequestError, StreamError

Status = Literal["ok", "error", "invalid"]

# The keys every result line starts with, in this order. Resume reads our own lines by
# their start alone (`ledger.own_line_start`), so `to_line` writes these first; new
# fields go after them.
LEADING_FIELDS = ("id", "status", "attempts", "request_hash")


@dataclass(slots=True)
class Result:
    """One output line: what happened to one prompt."""

    id: str
    status: Status
    attempts: int
    content: str | None
    error: dict[str, Any] | None
    line: int
    model: str | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    elapsed_s: float = 0.0
    finished_at: str = ""
    metadata: Any = None
    request_hash: str | None = None
    # The rest of the answer (choice 0's, unless `choices`): null when it does not apply.
    reasoning: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    refusal: str | None = None
    logprobs: dict[str, Any] | None = None
    choices: list[dict[str, Any]] | None = None  # every choice, when there are several
    request_id: str | None = None  # the server's x-request-id of the answering attempt
    function_call: dict[str, Any] | None = None  # a legacy function_call of choice 0
    completion_id: str | None = None  # the chat.completion id, created, system_fingerprint
    created: int | None = None
    system_fingerprint: str | None = None
    parsed: Any = None  # choice 0's JSON value, when the answer was checked as JSON
    endpoint: str | None = None  # the base URL of the last attempt's server; None: not sent

    @property
    def has_output(self) -> bool:
        """Some choice has content, reasoning, a tool or function call, or a refusal."""
        if self.choices:
            return any(
                c.get("content")
                or c.get("reasoning")
                or c.get("tool_calls")
                or c.get("refusal")
                or c.get("function_call")
                for c in self.choices
            )
        return bool(
            self.content or self.reasoning or self.tool_calls or self.refusal or self.function_call
        )

    def to_line(self) -> bytes:
        """One complete JSONL line, newline included; `LEADING_FIELDS` first."""
        if not self.finished_at:
            self.finished_at = utc_now()
        return orjson.dumps(
            {
                "id": self.id,
                "status": self.status,
                "attempts": self.attempts,
                "request_hash": self.request_hash,
                "content": self.content,
                "error": self.error,
                "line": self.line,
                "model": self.model,
                "finish_reason": self.finish_reason,
                "usage": self.usage,
                "elapsed_s": self.elapsed_s,
                "finished_at": self.finished_at,
                "metadata": self.metadata,
                "reasoning": self.reasoning,
                "tool_calls": self.tool_calls,
                "refusal": self.refusal,
                "logprobs": self.logprobs,
                "choices": self.choices,
                "request_id": self.request_id,
                "function_call": self.function_call,
                "completion_id": self.completion_id,
                "created": self.created,
                "system_fingerprint": self.system_fingerprint,
                "parsed": self.parsed,
                "endpoint": self.endpoint,
            },
            option=orjson.OPT_APPEND_NEWLINE,
        )


def error_fields(error: BaseException) -> dict[str, Any]:
    """The `error` object of a result: type, message, and status/code when known."""
    if isinstance(error, RequestError):
        fields: dict[str, Any] = {"type": error.kind, "message": error.message}
        if isinstance(error, HTTPStatusError):
            fields["status"] = error.status
            if error.code is not None:
                fields["code"] = error.code
        elif isinstance(error, StreamError):
            if error.status is not None:
                fields["status"] = error.status
            if error.code is not None:
                fields["code"] = error.code
        return fields
    return {"type": "internal_error", "message": f"{type(error).__name__}: {error}"}


_second_cache: list[Any] = [-1, ""]  # the last whole second formatted, and its text


def utc_now() -> str:
    """Now in UTC, ISO 8601 with milliseconds and a Z."""
    now = time.time()
    second = int(now)
    if second != _second_cache[0]:
        _second_cache[:] = [second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))]
    return f"{_second_cache[1]}.{int((now - second) * 1000):03d}Z"
