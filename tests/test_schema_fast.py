"""The fast schema check agrees with jsonschema on the subset it compiles, value by value,
and compiles nothing it does not understand."""

from __future__ import annotations

import itertools

import pytest
from jsonschema import Draft202012Validator

from netfly_batch.wire.schema_fast import compile_fast

SCHEMAS = {
    "extraction": {
        "type": "object",
        "properties": {
            "title": {"type": "string", "minLength": 1, "maxLength": 5},
            "year": {"type": "integer", "minimum": 1900, "maximum": 2100},
            "score": {"type": "number", "minimum": 0, "description": "0..1"},
            "field": {"type": "string", "enum": ["bio", "cs"]},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
            "note": {"type": ["string", "null"]},
            "ok": {"type": "boolean"},
        },
        "required": ["title", "year", "field"],
        "additionalProperties": False,
    },
    "untyped": {"properties": {"a": {"minimum": 1}}, "required": ["a"]},
    "array of objects": {"type": "array", "items": {"type": "object", "required": ["x"]}},
}

VALUES = [
    None, True, False, 0, 1, 1.0, 1.5, -3, 1899, 1900, 2000, 2000.0, 2101, "", "a", "abcdef",
    "ñandú", "bio", "cs", "x", [], ["a"], ["a", "b", "c"], [1], {}, {"x": 1}, [{"x": 1}, {}],
]  # fmt: skip


def objects() -> list[dict]:
    base = {"title": "abc", "year": 2000, "field": "bio"}
    variants = [dict(base)]
    for key, value in itertools.product(
        ["title", "year", "score", "field", "tags", "note", "ok", "extra", "a"], VALUES
    ):
        variants.append({**base, key: value})
    for key in base:
        variants.append({k: v for k, v in base.items() if k != key})
    return variants


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_fast_check_says_exactly_what_jsonschema_says(name):
    """On its subset the fast check is exact: never a yes jsonschema would refuse."""
    schema = SCHEMAS[name]
    fast = compile_fast(schema)
    assert fast is not None
    reference = Draft202012Validator(schema)
    for value in [*VALUES, *objects()]:
        assert fast(value) == reference.is_valid(value), (name, value)


@pytest.mark.parametrize("schema", [
    {"type": "object", "properties": {"a": {"anyOf": [{"type": "string"}]}}},
    {"$ref": "#/$defs/x"},
    {"type": "integer", "exclusiveMinimum": 1},
    {"enum": [1, True]},
    {"type": "string", "pattern": "^a"},
    {"type": "object", "additionalProperties": {"type": "string"}},
    {"type": "strin"},
], ids=["anyOf", "$ref", "exclusiveMinimum", "non-string enum", "pattern",
        "schema additionalProperties", "unknown type"])  # fmt: skip
def test_anything_beyond_the_subset_is_left_to_jsonschema(schema):
    """A keyword it does not know, or a form it does not handle, compiles to None."""
    assert compile_fast(schema) is None
