"""The exception tree of netfly-batch.

```
NetflyError                    str(error) is one sentence a user can act on
├── InputError                 bad prompt line: line_no, reason (an "invalid" result)
├── ModelNotSupportedError     names the known models
├── InputFileError             INPUT missing or unreadable
├── OutputError                OUT not writable, in a missing folder, same as INPUT
│   └── OutputLockedError      another run holds OUT's lock
└── RequestError               one request failed; carries attempts
    ├── TransportError         connect/read failure, timeout, stream cut short
    ├── HTTPStatusError        status, retry_after_s, the server's message
    ├── StreamError            malformed chunk, error object inside the stream
    └── InvalidOutputError     an answer that is not the JSON (or tool call) asked for
```
`RequestError.retryable` says whether another attempt could succeed. No message
ever holds a secret: URLs are passed through `redact()` before they reach one.
"""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def redact(text: str) -> str:
    """Hide `user:password@` parts of any URL in `text`."""
    return _USERINFO.sub("***@", text)


class NetflyError(Exception):
    """Base of every error netfly-batch raises on purpose."""


class InputError(NetflyError):
    """A prompt line that cannot be sent."""

    def __init__(self, line_no: int, reason: str) -> None:
        super().__init__(f"line {line_no}: {reason}")
        self.line_no = line_no
        self.reason = reason


class ModelNotSupportedError(NetflyError, ValueError):
    """A model name the provider does not know."""

    def __init__(self, model: str, known: list[str]) -> None:
        super().__init__(f"model {model!r} is not supported; known models: {', '.join(known)}")
        self.model = model
        self.known = known


class OutputError(NetflyError):
    """OUT cannot be used: not writable, in a missing folder, or the same file as INPUT."""


class OutputLockedError(OutputError):
    """Another run holds the lock on OUT."""


class InputFileError(NetflyError):
    """INPUT cannot be read."""


class RequestError(NetflyError):
    """One request failed (after `attempts` HTTP attempts)."""

    kind = "request_error"

    def __init__(self, message: str, *, retryable: bool, attempts: int = 1) -> None:
        super().__init__(redact(message))
        self.retryable = retryable
        self.attempts = attempts
        self.endpoint: str | None = None  # the public base URL of the last attempt's server

    @property
    def message(self) -> str:
        """The one-sentence description."""
        return str(self.args[0]) if self.args else ""

    def hide(self, secret: str | None) -> None:
        """Blank out `secret` (e.g. an API key a server echoed back) from the message."""
        if secret and secret in self.message:
            self.args = (self.message.replace(secret, "***"),)
            server_message = getattr(self, "server_message", None)
            if isinstance(server_message, str):
                self.server_message = server_message.replace(secret, "***")


class TransportError(RequestError):
    """Connection refused or dropped, a timeout, or a stream cut short: always retryable."""

    kind = "transport_error"

    def __init__(self, message: str, *, attempts: int = 1, unreachable: bool = False) -> None:
        super().__init__(message, retryable=True, attempts=attempts)
        self.unreachable = unreachable


class HTTPStatusError(RequestError):
    """The server answered with a non-2xx status."""

    kind = "http_error"

    def __init__(
        self,
        status: int,
        message: str,
        *,
        retry_after_s: float | None = None,
        code: str | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(
            f"HTTP {status}: {message}", retryable=is_retryable_status(status), attempts=attempts
        )
        self.status = status
        self.server_message = message
        self.retry_after_s = retry_after_s
        self.code = code


class StreamError(RequestError):
    """The body could not be understood, or it carried an error object."""

    kind = "stream_error"

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = True,
        code: str | None = None,
        status: int | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message, retryable=retryable, attempts=attempts)
        self.code = code
        self.status = status


class InvalidOutputError(RequestError):
    """The answer came whole but is not what was asked for (JSON, a schema, a tool call):
    retried at once (the server is fine). `answer` is that answer (a `Completion`), so a
    person can see it when attempts run out; `problem` names the first fault."""

    kind = "invalid_output"

    def __init__(
        self,
        problem: str,
        answer: object = None,
        *,
        choice: int = 0,
        retryable: bool = True,
        attempts: int = 1,
    ) -> None:
        super().__init__(f"invalid output: {problem}", retryable=retryable, attempts=attempts)
        self.problem = problem
        self.answer = answer
        self.choice = choice  # the index of the choice that failed


def is_retryable_status(status: int) -> bool:
    """408, 409, 429 and 5xx may succeed on another attempt; other statuses will not."""
    return status in (408, 409, 429) or status >= 500


def status_of_code(code: object) -> int | None:
    """Read an in-band error `code` ("500", 429, "rate_limit_exceeded") as an HTTP status."""
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code if 100 <= code <= 599 else None
    if isinstance(code, str) and code.isascii() and code.isdigit() and len(code) == 3:
        return int(code)
    return None
