"""JSON answers for `response_format` requests: a value valid against the schema, and the
ways a model gets it wrong (for the `invalid_output` fault). Pure, no I/O."""

from __future__ import annotations

from typing import Any

import orjson

TEXT_CHARS = 40


def value_for(schema: object, text: str) -> Any:
    """A value valid against `schema` (objects, arrays, strings, numbers, enums, required
    fields, anyOf/oneOf), its strings taken from `text`."""
    if not isinstance(schema, dict):
        return text[:TEXT_CHARS]
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return value_for(schema[key][0], text)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties") or {}
        return {name: value_for(sub, text) for name, sub in properties.items()}
    if kind == "array":
        count = max(1, int(schema.get("minItems") or 1))
        return [value_for(schema.get("items"), text) for _ in range(count)]
    if kind in ("number", "integer"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        value = max(1, int(low) + 1) if isinstance(low, int | float) else 1
        maximum = schema.get("maximum")
        return min(value, int(maximum)) if isinstance(maximum, int | float) else value
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    minimum = int(schema.get("minLength") or 0)
    return (text[:TEXT_CHARS] or "x").ljust(minimum, "x")


def json_answer(schema: object | None, text: str) -> str:
    """The content of a JSON answer: a schema-valid value, or `{"answer": text}`."""
    value = {"answer": text} if schema is None else value_for(schema, text)
    return orjson.dumps(value).decode()


def invalid_variant(content: str, schema: object | None, attempt: int) -> str:
    """A wrong answer, one kind per attempt in turn: cut JSON, a required field missing,
    a field of the wrong type, or the JSON in a fence with chatter after it (cut JSON when
    the schema leaves no field to drop or mistype)."""
    kind = attempt % 4
    value = orjson.loads(content)
    required = schema.get("required") if isinstance(schema, dict) else None
    if kind == 1 and isinstance(value, dict) and isinstance(required, list) and required:
        value.pop(required[0], None)
        return orjson.dumps(value).decode()
    if kind == 2 and isinstance(value, dict) and value:
        name = next(iter(value))
        value[name] = 12.5 if isinstance(value[name], str) else "not the right type"
        return orjson.dumps(value).decode()
    if kind == 3:
        return f"```json\n{content}\n```\nHope this helps!"
    return content[: max(1, len(content) // 2)]
