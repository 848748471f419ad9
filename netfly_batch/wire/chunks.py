"""One chat-completion chunk (or whole reply) as JSON: parsed, or its error classified.

Knows the OpenAI chunk's outer shape and nothing about HTTP: garbage becomes a
`StreamError`, and so does an in-band `{"error": ...}` object, with the server's words
and whether trying again can help. What a chunk adds to the answer is `answer.py`'s.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import StreamError, is_retryable_status, status_of_code

DONE = "[DONE]"

# Codes that servers put in an in-band error instead of a number, meaning "try again".
_RETRYABLE_CODES = frozenset(
    {"rate_limit_exceeded", "server_error", "overloaded", "service_unavailable", "timeout"}
)


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


def _first_line(data: str | bytes, limit: int = 120) -> str:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    line = text.strip().split("\n", 1)[0]
    return repr(line[:limit] + ("..." if len(line) > limit else ""))
