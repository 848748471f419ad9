"""A fast yes for the common JSON Schemas: checks compiled to plain Python.

jsonschema takes about 5 µs per keyword per answer: 60 µs for ten string fields, more
than the rest of a request's work. Extraction schemas mostly use a small, plain subset
(types, properties, required, additionalProperties, items, lengths, bounds, string
enums); `compile_fast` turns such a schema into one function that answers "valid" in a
few µs. It returns None for any schema outside that subset, and its "no" is never final:
jsonschema then decides and names the problem. So jsonschema stays the judge; this only
skips it for answers that are plainly valid. Pure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Check = Callable[[Any], bool]

# Keywords that only annotate: they never make a value invalid.
_ANNOTATIONS = frozenset({"title", "description", "default", "examples", "$comment"})
_KEYWORDS = frozenset({
    "type", "properties", "required", "additionalProperties", "items", "minItems",
    "maxItems", "minLength", "maxLength", "minimum", "maximum", "enum",
}) | _ANNOTATIONS  # fmt: skip


def _is_integer(value: Any) -> bool:
    kind = type(value)
    return kind is int or (kind is float and value.is_integer())


_TYPES: dict[str, Check] = {
    "string": lambda v: type(v) is str,
    "integer": _is_integer,
    "number": lambda v: type(v) is int or type(v) is float,
    "boolean": lambda v: type(v) is bool,
    "null": lambda v: v is None,
    "object": lambda v: type(v) is dict,
    "array": lambda v: type(v) is list,
}


def compile_fast(schema: object) -> Check | None:
    """A function that says True only for values valid against `schema`; None when the
    schema uses anything beyond the plain subset (then only jsonschema checks)."""
    if not isinstance(schema, dict) or not set(schema) <= _KEYWORDS:
        return None
    checks: list[Check] = []
    kind = schema.get("type")
    if kind is not None:
        kinds = [kind] if isinstance(kind, str) else kind
        if not isinstance(kinds, list) or not kinds or not all(k in _TYPES for k in kinds):
            return None
        tests = [_TYPES[k] for k in kinds]
        checks.append(tests[0] if len(tests) == 1 else lambda v: any(t(v) for t in tests))
    for part in (_object_checks, _array_checks, _string_checks, _number_checks):
        found = part(schema)
        if found is None:
            return None
        checks.extend(found)
    return lambda value: all(check(value) for check in checks)


def _object_checks(schema: dict[str, Any]) -> list[Check] | None:
    properties = schema.get("properties", {})
    required = schema.get("required", [])
    extra = schema.get("additionalProperties", True)
    if not isinstance(properties, dict) or not isinstance(required, list):
        return None
    if not isinstance(extra, bool) or not all(isinstance(name, str) for name in required):
        return None
    compiled: dict[str, Check] = {}
    for name, sub in properties.items():
        check = compile_fast(sub)
        if check is None:
            return None
        compiled[name] = check
    if not compiled and not required and extra:
        return []
    needed = tuple(required)
    known = frozenset(compiled)

    def check_object(value: Any) -> bool:
        if type(value) is not dict:
            return True  # these keywords apply to objects only
        for name in needed:
            if name not in value:
                return False
        if not extra and not known.issuperset(value):
            return False
        for name, item in value.items():
            check = compiled.get(name)
            if check is not None and not check(item):
                return False
        return True

    return [check_object]


def _array_checks(schema: dict[str, Any]) -> list[Check] | None:
    items = schema.get("items")
    low, high = schema.get("minItems", 0), schema.get("maxItems")
    if not _is_count(low) or (high is not None and not _is_count(high)):
        return None
    item_check = None if items is None else compile_fast(items)
    if items is not None and item_check is None:
        return None
    if item_check is None and low == 0 and high is None:
        return []

    def check_array(value: Any) -> bool:
        if type(value) is not list:
            return True
        if len(value) < low or (high is not None and len(value) > high):
            return False
        return item_check is None or all(item_check(item) for item in value)

    return [check_array]


def _string_checks(schema: dict[str, Any]) -> list[Check] | None:
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    if not _is_count(low) or (high is not None and not _is_count(high)):
        return None
    checks: list[Check] = []
    if low or high is not None:
        checks.append(lambda v: type(v) is not str or (
            len(v) >= low and (high is None or len(v) <= high)))  # fmt: skip
    if "enum" in schema:
        enum = schema["enum"]
        if not isinstance(enum, list) or not enum or not all(type(e) is str for e in enum):
            return None  # other enums compare JSON values: left to jsonschema
        allowed = frozenset(enum)
        checks.append(lambda v: type(v) is str and v in allowed)
    return checks


def _number_checks(schema: dict[str, Any]) -> list[Check] | None:
    low, high = schema.get("minimum"), schema.get("maximum")
    for bound in (low, high):
        if bound is not None and (type(bound) is bool or not isinstance(bound, int | float)):
            return None
    if low is None and high is None:
        return []

    def check_number(value: Any) -> bool:
        if type(value) is not int and type(value) is not float:
            return True  # bounds apply to numbers only (not booleans)
        return (low is None or value >= low) and (high is None or value <= high)

    return [check_number]


def _is_count(value: object) -> bool:
    return type(value) is int and value >= 0
