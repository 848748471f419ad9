"""Checking an answer against what was asked: JSON (valid against a schema when one is
given) and tool calls that name an offered tool with arguments valid for it.

`OutputSpec` is what every answer of a run must be (`--json-schema`, `--json`, or a
line's own `response_format`); `AnswerChecker` checks one request's answers, built once
per schema and tool set (jsonschema validators are compiled once, not per answer). A
failed check raises `InvalidOutputError` naming the first problem with its JSON path; a
passed one sets each choice's `parsed`. `reask_body` is the request that shows the
model its mistake. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from ..errors import InvalidOutputError
from .answer import Choice, Completion
from .schema_fast import compile_fast

# One markdown fence around the whole answer: ```json ... ``` (the language is optional).
_FENCE = re.compile(r"\A\s*```[A-Za-z]*[ \t]*\r?\n(.*?)\r?\n?```\s*\Z", re.DOTALL)
DEFAULT_NAME = "output"


class SchemaFileError(ValueError):
    """A --json-schema file that is not a usable JSON Schema; the message says why."""


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """JSON every answer must be: any value (`schema` None) or one valid against `schema`."""

    schema: Mapping[str, Any] | None = None
    name: str = DEFAULT_NAME
    strict: bool = True
    send_format: bool = True  # False: check only, send no response_format

    def response_format(self) -> dict[str, Any]:
        """The request's `response_format` for this spec."""
        if self.schema is None:
            return {"type": "json_object"}
        return {
            "type": "json_schema",
            "json_schema": {"name": self.name, "schema": self.schema, "strict": self.strict},
        }

    def fingerprint(self) -> dict[str, Any]:
        """What enters `request_hash`: a changed schema redoes the answers it checked."""
        return {"schema": self.schema, "name": self.name, "strict": self.strict}


def spec_from_document(document: object, source: str = "the schema") -> OutputSpec:
    """A spec from a JSON Schema, or from `{"name", "schema", "strict"}` as in OpenAI's
    `response_format.json_schema`; raises `SchemaFileError` naming the problem."""
    if not isinstance(document, dict):
        raise SchemaFileError(f"{source} must be a JSON object (a JSON Schema)")
    name, strict, schema = DEFAULT_NAME, True, document
    if isinstance(document.get("schema"), dict) and "name" in document:
        name, schema = str(document["name"]), document["schema"]
        strict = document.get("strict") is not False
    compile_schema(schema, source)
    return OutputSpec(schema, name, strict)


def spec_of_response_format(response_format: object) -> OutputSpec | None:
    """The spec a request's own `response_format` asks for (None for text or none)."""
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        return OutputSpec()
    if kind == "json_schema":
        inner = response_format.get("json_schema")
        if isinstance(inner, dict) and isinstance(inner.get("schema"), dict):
            return OutputSpec(inner["schema"], str(inner.get("name") or DEFAULT_NAME),
                              inner.get("strict") is not False)  # fmt: skip
        return OutputSpec()
    return None


def compile_schema(schema: object, source: str = "the schema") -> Any:
    """A jsonschema validator for `schema` (of the draft it names; 2020-12 by default)."""
    from jsonschema import exceptions, validators

    if not isinstance(schema, dict):
        raise SchemaFileError(f"{source} must be a JSON object (a JSON Schema)")
    cls = validators.validator_for(schema, default=validators.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except exceptions.SchemaError as error:
        raise SchemaFileError(
            f"{source} is not a valid JSON Schema: {_where(error)}{error.message}"
        ) from None
    return cls(schema)


def parse_json_text(text: str) -> Any:
    """The one JSON value of `text` (a single surrounding markdown fence is accepted);
    raises ValueError saying what is wrong."""
    fenced = _FENCE.match(text)
    body = fenced.group(1) if fenced else text
    if not body.strip():
        raise ValueError("the answer is empty, not JSON")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ValueError(f"the answer is not one JSON value ({error.msg} at character "
                         f"{error.pos + 1})") from None  # fmt: skip


class AnswerChecker:
    """Checks the answers to one kind of request: its JSON spec and its tools."""

    def __init__(self, spec: OutputSpec | None, tools: object = None) -> None:
        self.spec = spec
        schema = None if spec is None else spec.schema
        self._schema = None if schema is None else SchemaCheck(dict(schema))
        self._tools = _tool_validators(tools)

    def __call__(self, completion: Completion) -> None:
        """Set each choice's `parsed`; raise `InvalidOutputError` at the first problem."""
        many = len(completion.choices) > 1
        for choice in completion.choices:
            problem = self._problem(choice)
            if problem is not None:
                where = f"choice {choice.index}: " if many else ""
                refused = choice.refusal is not None and not choice.content
                raise InvalidOutputError(where + problem, completion, choice=choice.index,
                                         retryable=not refused)  # fmt: skip

    def _problem(self, choice: Choice) -> str | None:
        if self._tools is not None and choice.tool_calls:
            for number, call in enumerate(choice.tool_calls):
                problem = self._tool_problem(call.name, call.arguments)
                if problem is not None:
                    return f"tool_calls[{number}] ({call.name!r}): {problem}"
        if self.spec is None or choice.tool_calls or choice.function_call:
            return None  # a call is the answer: its content, if any, is not the JSON asked
        if choice.refusal is not None and not choice.content:
            return f"the model refused: {choice.refusal}"
        try:
            choice.parsed = parse_json_text(choice.content)
        except ValueError as error:
            return str(error)
        return None if self._schema is None else self._schema.problem(choice.parsed)

    def _tool_problem(self, name: str, arguments: str) -> str | None:
        assert self._tools is not None
        if name not in self._tools:
            offered = ", ".join(sorted(self._tools)) or "none"
            return f"names no tool that was offered (offered: {offered})"
        try:
            value = orjson.loads(arguments) if arguments.strip() else {}
        except orjson.JSONDecodeError as error:
            return f"arguments are not JSON ({error.msg} at character {error.pos + 1})"
        if not isinstance(value, dict):
            return "arguments must be a JSON object"
        check = self._tools[name]
        return None if check is None else check.problem(value)


def reask_body(body: Mapping[str, Any], error: InvalidOutputError) -> dict[str, Any]:
    """The request again, with the failed answer as an assistant message and a user
    message naming the problem (the model sees its mistake)."""
    failed = _failed_choice(error)
    said: list[dict[str, Any]] = []
    if failed is not None and failed.tool_calls:
        calls = [{**call.to_dict(), "id": call.id or f"call_{n}"}
                 for n, call in enumerate(failed.tool_calls)]  # fmt: skip
        said.append({"role": "assistant", "content": failed.content or None, "tool_calls": calls})
        said += [{"role": "tool", "tool_call_id": call["id"], "content": f"Error: {error.problem}"}
                 for call in calls]  # fmt: skip
    else:
        content = failed.content if failed is not None else ""
        said.append({"role": "assistant", "content": content or "(an empty answer)"})
    correction = {
        "role": "user",
        "content": f"Your answer was not valid: {error.problem}. Answer again, correctly.",
    }
    return {**body, "messages": [*body.get("messages", []), *said, correction]}


def _failed_choice(error: InvalidOutputError) -> Choice | None:
    """The choice whose answer failed (the model is shown that one)."""
    if not isinstance(error.answer, Completion):
        return None
    for choice in error.answer.choices:
        if choice.index == error.choice:
            return choice
    return error.answer.first


class SchemaCheck:
    """One schema, compiled once: a fast yes for plainly valid values (`schema_fast`),
    else jsonschema decides and names the first problem."""

    def __init__(self, schema: dict[str, Any], source: str = "the schema") -> None:
        self._validator = compile_schema(schema, source)
        self._fast = compile_fast(schema)

    def problem(self, value: Any) -> str | None:
        """None when `value` is valid, else its first problem with its JSON path."""
        if self._fast is not None and self._fast(value):
            return None
        return _first_error(self._validator, value)


def _tool_validators(tools: object) -> dict[str, SchemaCheck | None] | None:
    """name -> check of its parameters (None: any object), for the offered tools."""
    if not isinstance(tools, list) or not tools:
        return None
    found: dict[str, SchemaCheck | None] = {}
    for tool in tools:
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            continue
        parameters = function.get("parameters")
        found[function["name"]] = (
            SchemaCheck(parameters, f"the parameters of tool {function['name']!r}")
            if isinstance(parameters, dict) and parameters else None
        )  # fmt: skip
    return found


def _first_error(validator: Any, value: Any) -> str | None:
    from jsonschema.exceptions import best_match

    error = best_match(validator.iter_errors(value))
    return None if error is None else f"{_where(error)}{error.message}"


def _where(error: Any) -> str:
    path = getattr(error, "json_path", "$")
    return f"{path}: "
