"""JSONL prompt lines -> `Prompt` | `InvalidLine` (pure; keeps line numbers).

Accepted shapes: `{"id", "prompt", "system"?}`, `{"id", "messages"}` and the OpenAI
Batch API line `{"custom_id", "method", "url", "body": {...}}`. Other keys (or keys of
`body`) are request parameters that override the command-line defaults for that line.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

_BOM = b"\xef\xbb\xbf"
# Keys of a prompt line that are not request parameters.
_LINE_KEYS = frozenset({"id", "custom_id", "prompt", "system", "messages", "metadata",
                        "method", "url", "body"})
_ROLES = frozenset({"system", "user", "assistant", "tool", "developer", "function"})


@dataclass(frozen=True, slots=True)
class Prompt:
    """One sendable prompt line."""

    id: str
    line_no: int
    messages: list[dict[str, Any]]
    params: dict[str, Any]
    metadata: Any = None


@dataclass(frozen=True, slots=True)
class InvalidLine:
    """A line that cannot be sent, and why."""

    id: str
    line_no: int
    reason: str
    metadata: Any = None


@dataclass(frozen=True, slots=True)
class MaybeRepeated:
    """A prompt whose id may have been used on an earlier line (a compact filter said so).

    The caller settles it with `settle_repeats()`, a second pass over the input.
    """

    prompt: Prompt


class SeenIds(Protocol):
    """Remembers ids: `add()` says False when the id was (or may have been) seen before."""

    def add(self, prompt_id: str) -> bool: ...


class ExactIds:
    """Every id in a set: exact, and memory grows with the input."""

    def __init__(self) -> None:
        self._ids: set[str] = set()

    def add(self, prompt_id: str) -> bool:
        """True when the id is new."""
        if prompt_id in self._ids:
            return False
        self._ids.add(prompt_id)
        return True


def read_prompts(
    lines: Iterable[bytes], seen: SeenIds | None = None
) -> Iterator[Prompt | InvalidLine | MaybeRepeated]:
    """Parse lines lazily; blank lines are skipped, ids must be unique within the file.

    With the default exact `seen`, a repeated id is reported as an `InvalidLine`; with a
    probabilistic one (a Bloom filter), an id it may have seen comes as `MaybeRepeated`.
    """
    exact = seen is None or isinstance(seen, ExactIds)
    seen = seen or ExactIds()
    for line_no, raw in enumerate(lines, start=1):
        if line_no == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM):]
        if not raw.strip():
            continue
        item = parse_line(raw, line_no)
        if isinstance(item, Prompt) and not seen.add(item.id):
            yield repeated_id(item) if exact else MaybeRepeated(item)
            continue
        yield item


def repeated_id(prompt: Prompt) -> InvalidLine:
    """The report for a line that reuses an earlier line's id."""
    return InvalidLine(prompt.id, prompt.line_no,
                       f"id {prompt.id!r} was already used on an earlier line", prompt.metadata)


def settle_repeats(lines: Iterable[bytes], suspects: dict[str, list[int]]
                   ) -> Iterator[Prompt | InvalidLine]:
    """Second pass: for each suspect id the first line wins; its later lines are repeats.

    `suspects` maps an id to the line numbers that came as `MaybeRepeated`. Yields the
    suspect lines again, as a `Prompt` (its id's first line after all) or an
    `InvalidLine` (a real repeat). Lines past the last suspect are not read.
    """
    wanted = {line_no for numbers in suspects.values() for line_no in numbers}
    last = max(wanted, default=0)
    first_line: dict[str, int] = {}
    for line_no, raw in enumerate(lines, start=1):
        if line_no > last:
            break
        if line_no == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM):]
        if not raw.strip():
            continue
        item = parse_line(raw, line_no)
        if not isinstance(item, Prompt) or item.id not in suspects:
            continue
        first = first_line.setdefault(item.id, line_no)
        if line_no in wanted:
            yield item if first == line_no else repeated_id(item)


def parse_line(raw: bytes, line_no: int) -> Prompt | InvalidLine:
    """Parse one non-blank line."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            return InvalidLine(str(line_no), line_no, f"not valid UTF-8 (byte {bad.start + 1})")
        return InvalidLine(str(line_no), line_no,
                           f"invalid JSON ({exc.msg} at character {exc.pos + 1})")
    if not isinstance(obj, dict):
        return InvalidLine(str(line_no), line_no,
                           f"expected a JSON object, got {_json_type(obj)}")
    metadata = obj.get("metadata")
    try:
        prompt_id = _read_id(obj, line_no)
    except ValueError as exc:
        return InvalidLine(str(line_no), line_no, str(exc), metadata)
    try:
        messages, params = _read_request(obj)
    except ValueError as exc:
        return InvalidLine(prompt_id, line_no, str(exc), metadata)
    return Prompt(prompt_id, line_no, messages, params, metadata)


def _read_id(obj: dict[str, Any], line_no: int) -> str:
    value = obj.get("id", obj.get("custom_id"))
    if value is None:
        return str(line_no)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"id must be a string or an integer, got {_json_type(value)}")
    text = str(value)
    if not text:
        raise ValueError("id must not be empty")
    return text


def _read_request(obj: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    if "body" in obj:
        body = obj["body"]
        if not isinstance(body, dict):
            raise ValueError(f"body must be an object, got {_json_type(body)}")
        source = body
    else:
        source = obj
    params = {k: v for k, v in source.items() if k not in _LINE_KEYS}
    if "messages" in source:
        messages = _check_messages(source["messages"])
    elif "prompt" in source:
        prompt = source["prompt"]
        if not isinstance(prompt, str):
            raise ValueError(f"prompt must be a string, got {_json_type(prompt)}")
        messages = [{"role": "user", "content": prompt}]
        system = source.get("system")
        if system is not None:
            if not isinstance(system, str):
                raise ValueError(f"system must be a string, got {_json_type(system)}")
            messages.insert(0, {"role": "system", "content": system})
    else:
        raise ValueError('needs "prompt" or "messages"')
    _check_params(params)
    return messages, params


def _check_messages(messages: object) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages must be a non-empty list")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ValueError(f"messages[{index}] must be an object")
        role = message.get("role")
        if role not in _ROLES:
            raise ValueError(f"messages[{index}].role must be one of "
                             f"{', '.join(sorted(_ROLES))}, got {role!r}")
        content = message.get("content")
        if not (content is None or isinstance(content, str | list)):
            raise ValueError(f"messages[{index}].content must be a string or a list")
    return messages


_NUMBER_PARAMS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")
_INT_PARAMS = ("max_tokens", "max_completion_tokens", "seed", "n")


def _check_params(params: dict[str, Any]) -> None:
    if not params:
        return
    for name in _NUMBER_PARAMS:
        if name in params and (isinstance(params[name], bool)
                               or not isinstance(params[name], int | float)):
            raise ValueError(f"{name} must be a number, got {_json_type(params[name])}")
    for name in _INT_PARAMS:
        if name in params and (isinstance(params[name], bool)
                               or not isinstance(params[name], int)):
            raise ValueError(f"{name} must be an integer, got {_json_type(params[name])}")
    if "model" in params and not isinstance(params["model"], str):
        raise ValueError(f"model must be a string, got {_json_type(params['model'])}")
    stop = params.get("stop")
    if stop is not None and not isinstance(stop, str | list):
        raise ValueError("stop must be a string or a list of strings")


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
