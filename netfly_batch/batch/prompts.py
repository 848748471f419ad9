"""JSONL prompt lines -> `Prompt` | `InvalidLine` (pure; keeps line numbers).

Accepted shapes: `{"id", "prompt", "system"?}`, `{"id", "messages"}` and the OpenAI
Batch API line `{"custom_id", "method", "url", "body": {...}}`. Other keys (or keys of
`body`) are request parameters that override the command-line defaults for that line.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from hashlib import blake2b
from typing import Any, Protocol

import orjson

from .ledger import ANSWERED, KNOWN, NEW, REPEATED
from .linesource import WAIT, Wait
from .templates import LineTemplate

_BOM = b"\xef\xbb\xbf"
# Keys of a prompt line that are not request parameters.
_LINE_KEYS = frozenset(
    {"id", "custom_id", "prompt", "system", "messages", "metadata", "method", "url", "body"}
)
_NOT_REQUEST = frozenset({"id", "custom_id", "metadata"})
_ROLES = frozenset({"system", "user", "assistant", "tool", "developer", "function"})


@dataclass(slots=True)
class Prompt:
    """One sendable prompt line; `fingerprint` is its `request_fingerprint` as an int."""

    id: str
    line_no: int
    messages: list[dict[str, Any]]
    params: dict[str, Any]
    metadata: Any = None
    fingerprint: int = 0


@dataclass(frozen=True, slots=True)
class InvalidLine:
    """A line that cannot be sent, and why."""

    id: str
    line_no: int
    reason: str
    metadata: Any = None
    repeat: bool = False  # the line reuses an earlier line's id


@dataclass(frozen=True, slots=True)
class MaybeRepeated:
    """A line whose id may have been used on an earlier line (a compact filter said so).

    The caller settles it with `PromptReader.settle()`, a second pass over the input.
    """

    id: str
    line_no: int


Item = Prompt | InvalidLine | MaybeRepeated


class SeenIds(Protocol):
    """Remembers ids: `add()` says False when the id was (or may have been) seen before."""

    def add(self, prompt_id: str) -> bool: ...


class KnownIds(Protocol):
    """The ids that earlier results hold (e.g. `ledger.LedgerState`), exactly.

    `check()` says NEW (no result), ANSWERED (an ok result for this very request: the id
    is taken now), KNOWN (a result for another request, or an error) or REPEATED (an
    earlier line took the id). `claim()` takes a KNOWN id for a valid line.
    """

    def check(self, prompt_id: str, fingerprint: int) -> int: ...

    def claim(self, prompt_id: str) -> bool: ...


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


def request_fingerprint(obj: dict[str, Any], defaults: bytes = b"") -> str:
    """A short, stable hash of what a line asks, as 16 hex digits.

    Every key of the line but `id`, `custom_id` and `metadata` (key order and spacing do
    not matter), plus `defaults`: the run's request defaults, already serialized.
    """
    request = {key: value for key, value in obj.items() if key not in _NOT_REQUEST}
    return f"{_fingerprint(request, defaults):016x}"


_BLAKE2B_8 = blake2b(digest_size=8)  # copied for each line: cheaper than a new one


def _fingerprint(request: dict[str, Any], defaults: bytes) -> int:
    """blake2b (8 bytes) of the request's sorted-key JSON followed by `defaults`."""
    digest = _BLAKE2B_8.copy()
    digest.update(orjson.dumps(request, option=orjson.OPT_SORT_KEYS))
    digest.update(defaults)
    return int.from_bytes(digest.digest(), "big")


class PromptReader:
    """Reads prompt lines lazily: parses, validates, fingerprints, finds repeated ids.

    `known` holds the ids of earlier results: a line whose request was already answered
    is not validated nor yielded but handed to `on_done(id)`, so resuming stays cheap,
    and repeats of those ids are found exactly. Other ids go to `seen` (exact by
    default; a Bloom filter makes repeats come back as `MaybeRepeated`, to `settle()`).
    """

    def __init__(
        self,
        defaults: bytes = b"",
        seen: SeenIds | None = None,
        known: KnownIds | None = None,
        on_done: Callable[[str], None] = lambda prompt_id: None,
        id_field: str | None = None,
        template: LineTemplate | None = None,
    ) -> None:
        """`id_field` names the key each line's id comes from (default: `id`, then
        `custom_id`, then the line number); `template` turns each line into its request."""
        self.id_field = id_field
        load: Callable[[bytes, int], Any] = (
            _load if id_field is None else functools.partial(_load_by_field, id_field=id_field)
        )
        if template is not None:
            load = functools.partial(_load_templated, load=load, template=template)
        self._load = load
        self.defaults = defaults
        self.exact = seen is None or isinstance(seen, ExactIds)
        self.seen = seen or ExactIds()
        self.known = known
        self.on_done = on_done

    def read(self, lines: Iterable[bytes | Wait]) -> Iterator[Item | Wait]:
        """One item per non-blank line, in order; `WAIT` passed on as it comes (a pipe's
        next line has not arrived yet)."""
        known, seen, defaults, on_done = self.known, self.seen, self.defaults, self.on_done
        check = _nothing_known if known is None else known.check
        load = self._load
        line_no = 0
        for raw in lines:
            if raw is WAIT:
                yield WAIT
                continue
            line_no += 1
            parsed = load(raw, line_no)  # type: ignore[arg-type]  # not WAIT: bytes
            if parsed.__class__ is not tuple:
                if parsed is not None:  # None: a blank line
                    yield parsed  # not a tuple: an InvalidLine
                continue
            request, prompt_id, metadata = parsed
            fingerprint = _fingerprint(request, defaults)
            status = check(prompt_id, fingerprint)
            if status == ANSWERED:
                on_done(prompt_id)
                continue
            item: Item = _validate(request, prompt_id, line_no, fingerprint, metadata)
            if item.__class__ is Prompt:  # a broken line uses no id: its fault is reported
                if status == REPEATED:
                    item = repeated_id(prompt_id, line_no, metadata)
                elif status == KNOWN:
                    known.claim(prompt_id)  # type: ignore[union-attr]  # KNOWN: known is set
                elif not seen.add(prompt_id):
                    item = self._repeat(prompt_id, line_no, metadata)
            yield item

    def settle(
        self, lines: Iterable[bytes], suspects: dict[str, list[int]]
    ) -> Iterator[Prompt | InvalidLine]:
        """Second pass: for each suspect id the first line wins; its later lines are repeats.

        `suspects` maps an id to the line numbers that came as `MaybeRepeated` (ids that
        `known` does not hold: only those go to `seen`). Yields those lines again,
        settled. Lines past the last suspect are not read.
        """
        wanted = {line_no for numbers in suspects.values() for line_no in numbers}
        last = max(wanted, default=0)
        first_line: dict[str, int] = {}
        for line_no, raw in enumerate(lines, start=1):
            if line_no > last:
                break
            if line_no not in wanted and _quick_id(raw, line_no, self.id_field) not in suspects:
                continue  # most lines: only their id matters, and it is no suspect
            parsed = self._load(raw, line_no)
            if not isinstance(parsed, tuple) or parsed[1] not in suspects:
                continue
            request, prompt_id, metadata = parsed
            if line_no not in wanted and prompt_id in first_line:
                continue
            item = _validate(
                request, prompt_id, line_no, _fingerprint(request, self.defaults), metadata
            )
            if isinstance(item, InvalidLine):  # a broken line uses no id, as in read()
                if line_no in wanted:
                    yield item
                continue
            first = first_line.setdefault(prompt_id, line_no)
            if line_no in wanted:
                yield item if first == line_no else repeated_id(prompt_id, line_no, metadata)

    def _repeat(self, prompt_id: str, line_no: int, metadata: Any) -> InvalidLine | MaybeRepeated:
        if self.exact:
            return repeated_id(prompt_id, line_no, metadata)
        return MaybeRepeated(prompt_id, line_no)


def read_prompts(lines: Iterable[bytes], seen: SeenIds | None = None) -> Iterator[Item | Wait]:
    """Parse lines lazily with no run defaults and no resume (see `PromptReader`)."""
    return PromptReader(seen=seen).read(lines)


def line_ids(lines: Iterable[bytes], id_field: str | None = None) -> Iterator[str]:
    """The id a run gives each non-blank line, valid or not (a dataset line that only a
    template makes a prompt has its id too): what `merge --input` and `report --input`
    hold OUT against."""
    for line_no, raw in enumerate(lines, start=1):
        prompt_id = _quick_id(raw, line_no, id_field)  # a valid line's id, as the run's
        if prompt_id is not None:
            yield prompt_id
        elif raw.strip():  # an invalid line: its report carries the line number
            yield str(line_no)


def settle_repeats(
    lines: Iterable[bytes], suspects: dict[str, list[int]]
) -> Iterator[Prompt | InvalidLine]:
    """`PromptReader().settle()` with no run defaults and no resume."""
    return PromptReader().settle(lines, suspects)


def repeated_id(prompt_id: str, line_no: int, metadata: Any = None) -> InvalidLine:
    """The report for a line that reuses an earlier line's id."""
    return InvalidLine(
        prompt_id,
        line_no,
        f"id {prompt_id!r} was already used on an earlier line",
        metadata,
        repeat=True,
    )


def _quick_id(raw: bytes, line_no: int, id_field: str | None = None) -> str | None:
    """The id of a line, or None if it has none that a valid line could have."""
    try:
        obj = orjson.loads(raw[len(_BOM) :] if line_no == 1 and raw.startswith(_BOM) else raw)
        if not isinstance(obj, dict):
            return None
        if id_field is not None:
            value = obj.get(id_field)
            return None if value is None else _read_id(value, None, line_no)
        return _read_id(obj.get("id"), obj.get("custom_id"), line_no)
    except (orjson.JSONDecodeError, ValueError):
        return None


def _nothing_known(prompt_id: str, fingerprint: int) -> int:
    return NEW


def _load(
    raw: bytes, line_no: int, bom_allowed: bool = True, id_key: str | None = None
) -> tuple[dict[str, Any], Any, Any] | InvalidLine | None:
    """The line's request part (the object less id and metadata), id and metadata; None
    for a blank line. One UTF-8 BOM before the first line is ignored. With `id_key`,
    the id is the raw value of that key (`_load_by_field` reads it)."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if not raw.strip():
            return None
        if bom_allowed and line_no == 1 and raw.startswith(_BOM):
            return _load(raw[len(_BOM) :], line_no, bom_allowed=False, id_key=id_key)
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            return InvalidLine(str(line_no), line_no, f"not valid UTF-8 (byte {bad.start + 1})")
        return InvalidLine(
            str(line_no), line_no, f"invalid JSON ({exc.msg} at character {exc.pos + 1})"
        )
    if not isinstance(obj, dict):
        return InvalidLine(str(line_no), line_no, f"expected a JSON object, got {_json_type(obj)}")
    metadata = obj.pop("metadata", None)
    if id_key is not None:
        return obj, obj.pop(id_key, None), metadata
    prompt_id = obj.pop("id", None)
    custom_id = obj.pop("custom_id", None)
    if prompt_id.__class__ is not str or not prompt_id:  # the common case is a string id
        try:
            prompt_id = _read_id(prompt_id, custom_id, line_no)
        except ValueError as exc:
            return InvalidLine(str(line_no), line_no, str(exc), metadata)
    return obj, prompt_id, metadata


def _load_by_field(
    raw: bytes, line_no: int, id_field: str
) -> tuple[dict[str, Any], str, Any] | InvalidLine | None:
    """`_load` for --id-field: the id is the value of `id_field` (a string or an
    integer), which is then no part of the request; a line without it is invalid."""
    loaded = _load(raw, line_no, id_key=id_field)
    if loaded.__class__ is not tuple:
        return loaded  # None or an InvalidLine
    request, value, metadata = loaded
    if value is None:
        return InvalidLine(str(line_no), line_no, f"no {id_field!r} field (the --id-field)",
                           metadata)  # fmt: skip
    try:
        return request, _read_id(value, None, line_no), metadata
    except ValueError as exc:
        return InvalidLine(str(line_no), line_no, f"{id_field}: {exc}", metadata)


def _load_templated(
    raw: bytes, line_no: int, load: Callable[[bytes, int], Any], template: LineTemplate
) -> tuple[dict[str, Any], str, Any] | InvalidLine | None:
    """`load`, then the line's request rendered by `template` (a line lacking a field the
    template names is invalid)."""
    loaded = load(raw, line_no)
    if loaded.__class__ is not tuple:
        return loaded  # type: ignore[no-any-return]  # None or an InvalidLine
    line, prompt_id, metadata = loaded
    shaped = template.apply(line, metadata)
    if isinstance(shaped, str):
        return InvalidLine(prompt_id, line_no, shaped, metadata)
    request, metadata = shaped
    return request, prompt_id, metadata


def _validate(
    request: dict[str, Any], prompt_id: str, line_no: int, fingerprint: int, metadata: Any
) -> Prompt | InvalidLine:
    try:
        messages, params = _read_request(request)
    except ValueError as exc:
        return InvalidLine(prompt_id, line_no, str(exc), metadata)
    return Prompt(prompt_id, line_no, messages, params, metadata, fingerprint)


def _read_id(value: object, custom_id: object, line_no: int) -> str:
    """The line's id: `id`, else `custom_id`, else the line number."""
    if value.__class__ is str and value:  # the common case, checked first
        return value
    if value is None:
        value = custom_id
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
            raise ValueError(
                f"messages[{index}].role must be one of {', '.join(sorted(_ROLES))}, got {role!r}"
            )
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
        if name in params and (
            isinstance(params[name], bool) or not isinstance(params[name], int | float)
        ):
            raise ValueError(f"{name} must be a number, got {_json_type(params[name])}")
    for name in _INT_PARAMS:
        if name in params and (isinstance(params[name], bool) or not isinstance(params[name], int)):
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
