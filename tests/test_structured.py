"""Structured output: answers checked as JSON (and against a schema), tool calls checked
against the tools offered, invalid answers retried (or re-asked), `parsed` in results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from click.testing import CliRunner

from netfly_batch.cli import main
from netfly_batch.errors import InvalidOutputError
from netfly_batch.http.client import ChatClient
from netfly_batch.http.endpoints import endpoint_for
from netfly_batch.settings import RetrySettings
from netfly_batch.wire.answer import Choice, Completion, ToolCall
from netfly_batch.wire.validation import (
    AnswerChecker,
    OutputSpec,
    SchemaFileError,
    parse_json_text,
    spec_from_document,
)

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
ITEMS = {
    "type": "object",
    "properties": {
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "price": {"type": "number"}},
                "required": ["name", "price"],
            },
        }
    },
    "required": ["items"],
}
WEATHER_TOOLS = [{
    "type": "function",
    "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
}, {"type": "function", "function": {"name": "now"}}]  # fmt: skip


def answer(*contents: str, calls: list[ToolCall] | None = None) -> Completion:
    choices = [Choice(i, text, "stop", tool_calls=calls) for i, text in enumerate(contents)]
    return Completion(contents[0], "stop", choices=choices)


@pytest.mark.parametrize(("text", "value"), [
    ('{"a": 1}', {"a": 1}), ("[1, 2]", [1, 2]), ('  "x"  ', "x"),
    ('```json\n{"a": 1}\n```', {"a": 1}), ('```\n{"a": 1}\n```\n', {"a": 1}),
], ids=["object", "array", "string", "json fence", "bare fence"])  # fmt: skip
def test_one_json_value_perhaps_in_one_fence(text, value):
    """One JSON value, alone or in a single markdown fence, is read as that value."""
    assert parse_json_text(text) == value


@pytest.mark.parametrize("text", [
    "", "Sure! {\"a\": 1}", '```json\n{"a": 1}\n```\nHope this helps!', '{"a": 1} {"b": 2}',
    '{"a": ', "```json\n{\"a\": 1}\n```\n```json\n{}\n```",
], ids=["empty", "chatter before", "chatter after the fence", "two values", "cut",
        "two fences"])  # fmt: skip
def test_anything_else_is_not_json(text):
    """Chatter, two values, a cut object or two fences are refused with a reason."""
    with pytest.raises(ValueError, match="JSON"):
        parse_json_text(text)


def test_a_schema_problem_is_named_with_its_json_path():
    """The first problem names its path, as users read it: $.items[2].price."""
    check = AnswerChecker(OutputSpec(ITEMS))
    bad = answer('{"items": [{"name": "a", "price": 1}, {"name": "b", "price": 2}, '
                 '{"name": "c", "price": "abc"}]}')  # fmt: skip
    with pytest.raises(InvalidOutputError) as caught:
        check(bad)
    assert caught.value.problem == "$.items[2].price: 'abc' is not of type 'number'"
    assert caught.value.answer is bad
    good = answer('```json\n{"items": [{"name": "a", "price": 1.5}]}\n```')
    check(good)
    assert good.parsed == {"items": [{"name": "a", "price": 1.5}]}


def test_every_choice_must_pass():
    """With n > 1 one bad choice fails the answer, and the problem names it."""
    check = AnswerChecker(OutputSpec())
    with pytest.raises(InvalidOutputError, match="choice 1: the answer is not one JSON"):
        check(answer('{"ok": 1}', "no json here", "[]"))
    fine = answer('{"ok": 1}', "[2]")
    check(fine)
    assert [choice.parsed for choice in fine.choices] == [{"ok": 1}, [2]]


@pytest.mark.parametrize(("call", "problem"), [
    (ToolCall("c", "get_weather", '{"city": "Paris"}'), None),
    (ToolCall("c", "now", ""), None),
    (ToolCall("c", "get_time", "{}"), "names no tool that was offered"),
    (ToolCall("c", "get_weather", '{"city": '), "arguments are not JSON"),
    (ToolCall("c", "get_weather", "[1]"), "arguments must be a JSON object"),
    (ToolCall("c", "get_weather", ""), "'city' is a required property"),
    (ToolCall("c", "get_weather", '{"city": 7}'), "$.city: 7 is not of type 'string'"),
], ids=["valid", "empty arguments are {}", "unknown name", "bad JSON", "not an object",
        "empty misses a required field", "wrong type"])  # fmt: skip
def test_tool_calls_are_checked_against_the_tools_offered(call, problem):
    """Each call names an offered tool; its arguments are an object valid for it."""
    check = AnswerChecker(None, WEATHER_TOOLS)
    completion = answer("", calls=[call])
    if problem is None:
        check(completion)
        return
    with pytest.raises(InvalidOutputError) as caught:
        check(completion)
    assert caught.value.problem.startswith(f"tool_calls[0] ({call.name!r}): ")
    assert problem in caught.value.problem


def test_schema_documents_plain_or_as_openai_wraps_them():
    """A schema file is a JSON Schema or {"name", "schema", "strict"}; a bad one is named."""
    assert spec_from_document(ITEMS) == OutputSpec(ITEMS)
    wrapped = spec_from_document({"name": "shop", "schema": ITEMS, "strict": False})
    assert (wrapped.name, wrapped.strict, wrapped.schema) == ("shop", False, ITEMS)
    assert wrapped.response_format() == {
        "type": "json_schema",
        "json_schema": {"name": "shop", "schema": ITEMS, "strict": False},
    }
    with pytest.raises(SchemaFileError, match=r"not a valid JSON Schema: \$.type"):
        spec_from_document({"type": "objekt"})
    with pytest.raises(SchemaFileError, match="must be a JSON object"):
        spec_from_document([1])


# --- over HTTP and through the command ---------------------------------------------------


def run(tmp_path: Path, lines: list[dict[str, Any]], *options: str) -> tuple[Any, list[dict]]:
    prompts = tmp_path / "in.jsonl"
    prompts.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(main, ["run", str(prompts), "-o", str(out), "--simulate",
                                       "--retry-wait", "0", *options])  # fmt: skip
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()] if out.exists() else []
    return result, rows


def test_sample_extraction_gives_parsed_values(tmp_path):
    """The README's sample: every answer valid against the schema, `parsed` filled."""
    result, rows = run(tmp_path, [orjson.loads(line) for line in
                                  (SAMPLES / "extract.jsonl").read_bytes().splitlines()],
                       "--json-schema", str(SAMPLES / "extract.schema.json"))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(rows) == 4
    for row in rows:
        assert set(row["parsed"]) == {"title", "year", "field", "keywords"}
        assert row["parsed"] == orjson.loads(row["content"])


def test_invalid_then_valid_takes_two_attempts(tmp_path):
    """A wrong first answer is retried at once; the result is ok after 2 attempts."""
    result, rows = run(tmp_path, [{"id": "a", "prompt": "shop list"}], "--json-schema",
                       str(SAMPLES / "extract.schema.json"), "--sim-fail-first", "1",
                       "--sim-fail-first-kind", "invalid_output")  # fmt: skip
    assert result.exit_code == 0, result.output
    (row,) = rows
    assert (row["status"], row["attempts"]) == ("ok", 2)
    assert row["parsed"]["field"] == "biology"
    assert "1 invalid answers" in result.output


def test_always_invalid_is_an_error_that_keeps_the_last_answer(tmp_path):
    """When attempts run out: error invalid_output, the problem named, content kept."""
    summary = tmp_path / "summary.json"
    result, rows = run(tmp_path, [{"id": "a", "prompt": "x"}], "--json-schema",
                       str(SAMPLES / "extract.schema.json"), "--sim-rate-invalid-output", "1",
                       "--max-attempts", "3", "--summary-json", str(summary))  # fmt: skip
    assert result.exit_code == 1, result.output
    (row,) = rows
    assert row["status"] == "error"
    assert row["attempts"] == 3
    assert row["error"]["type"] == "invalid_output"
    assert row["error"]["message"].startswith("invalid output: ")
    assert row["content"]  # the last answer, for a person to see
    assert row["parsed"] is None
    counts = orjson.loads(summary.read_bytes())
    assert (counts["invalid_output_attempts"], counts["invalid_output"]) == (3, 1)


def test_a_lines_own_response_format_is_checked_without_a_flag(tmp_path):
    """A line that asks for json_object gets its answer checked and parsed."""
    result, rows = run(tmp_path, [
        {"id": "j", "prompt": "hi", "response_format": {"type": "json_object"}},
        {"id": "t", "prompt": "hi"},
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    by_id = {row["id"]: row for row in rows}
    assert by_id["j"]["parsed"] == {"answer": "hi"}
    assert by_id["t"]["parsed"] is None
    assert by_id["t"]["content"] == "Echo: hi"


def test_a_bad_schema_file_is_a_usage_error(tmp_path):
    """Exit 2 before anything is sent, the schema problem named."""
    schema = tmp_path / "bad.json"
    schema.write_text('{"type": "objekt"}')
    result, rows = run(tmp_path, [{"id": "a", "prompt": "x"}], "--json-schema", str(schema))
    assert result.exit_code == 2
    assert "not a valid JSON Schema" in result.output
    assert rows == []


def test_a_changed_schema_redoes_ok_results_and_invalid_output_is_sent_again(tmp_path):
    """Resume: an invalid_output error is sent again; a changed schema redoes ok results."""
    schema = tmp_path / "schema.json"
    schema.write_text('{"type": "object", "properties": {"answer": {"type": "string"}}}')
    lines = [{"id": "a", "prompt": "x"}]
    _, rows = run(tmp_path, lines, "--json-schema", str(schema),
                      "--sim-rate-invalid-output", "1", "--max-attempts", "1")  # fmt: skip
    assert rows[0]["error"]["type"] == "invalid_output"
    again, rows = run(tmp_path, lines, "--json-schema", str(schema))
    assert again.exit_code == 0, again.output
    assert (rows[-1]["status"], rows[-1]["attempts"]) == ("ok", 2)
    hash_before = rows[-1]["request_hash"]
    unchanged, _ = run(tmp_path, lines, "--json-schema", str(schema))
    assert "1 already done" in unchanged.output
    schema.write_text('{"type": "object", "properties": {"answer": {"type": "number"}}}')
    changed, rows = run(tmp_path, lines, "--json-schema", str(schema))
    assert "1 redone because their input changed" in changed.output
    assert rows[-1]["request_hash"] != hash_before


async def test_reask_shows_the_model_its_answer_and_the_problem(serve):
    """With reask, the second attempt carries the failed answer and a user message."""
    answers = [b"not json", b'{"ok": true}']

    def replying(content: bytes):
        async def handler(request: web.Request) -> web.Response:
            body = {"choices": [{"index": 0, "message": {"content": content.decode()},
                                 "finish_reason": "stop"}]}  # fmt: skip
            return web.json_response(body)

        return handler

    server = await serve(*(replying(a) for a in answers), path="/v1/chat/completions")
    endpoint = endpoint_for(server.url)
    body = endpoint.build_body("m", [{"role": "user", "content": "give json"}], {})
    async with ChatClient(retry=RetrySettings(max_attempts=3), endpoint=endpoint) as client:
        completion = await client.complete(body, accept=AnswerChecker(OutputSpec()), reask=True)
    assert completion.parsed == {"ok": True}
    assert completion.attempts == 2
    first, second = (orjson.loads(sent) for sent in server.bodies)
    assert first["messages"] == [{"role": "user", "content": "give json"}]
    assert second["messages"][:2] == [{"role": "user", "content": "give json"},
                                      {"role": "assistant", "content": "not json"}]  # fmt: skip
    assert second["messages"][2]["role"] == "user"
    assert "not one JSON value" in second["messages"][2]["content"]


def test_requests_carry_the_response_format_unless_told_not_to(tmp_path):
    """--json-schema sends response_format json_schema; --no-response-format sends none."""
    from servers import app_thread, sse_answer

    seen: list[dict[str, Any]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(await request.json())
        return web.Response(body=sse_answer('{"answer": "x"}'), content_type="text/event-stream")

    schema = SAMPLES / "extract.schema.json"
    prompts = tmp_path / "in.jsonl"
    prompts.write_bytes(b'{"id": "a", "prompt": "x"}\n')
    with app_thread([web.post("/v1/chat/completions", handler)]) as url:
        for extra in ([], ["--no-response-format"]):
            out = tmp_path / f"out{len(extra)}.jsonl"
            CliRunner().invoke(main, ["run", str(prompts), "-o", str(out), "--base-url", url,
                                      "--json", "--max-attempts", "1", *extra])  # fmt: skip
        CliRunner().invoke(main, ["run", str(prompts), "-o", str(tmp_path / "s.jsonl"),
                                  "--base-url", url, "--json-schema", str(schema)])  # fmt: skip
    assert seen[0]["response_format"] == {"type": "json_object"}
    assert "response_format" not in seen[1]
    assert seen[2]["response_format"]["json_schema"]["name"] == "paper"
    assert seen[2]["response_format"]["json_schema"]["strict"] is True


SIM_SCHEMAS = [
    ITEMS,
    orjson.loads((SAMPLES / "extract.schema.json").read_bytes())["schema"],
    {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 5, "maximum": 9},
            "tag": {"enum": ["a", "b"]},
            "opt": {"type": ["null", "boolean"]},
            "any": {"anyOf": [{"type": "string", "minLength": 50}]},
        },
        "required": ["n", "tag"],
    },
]


@pytest.mark.parametrize("schema", SIM_SCHEMAS, ids=["items", "sample", "mixed"])
def test_the_simulator_answers_valid_json_and_each_wrong_variant_is_caught(schema):
    """The simulator's JSON answer validates; each invalid variant is refused."""
    from netfly_batch.simulator.structured import invalid_variant, json_answer

    content = json_answer(schema, "some user text")
    check = AnswerChecker(OutputSpec(schema))
    check(answer(content))
    for attempt in range(1, 5):
        with pytest.raises(InvalidOutputError):
            check(answer(invalid_variant(content, schema, attempt)))


def test_a_reask_after_a_bad_tool_call_answers_each_call_then_asks_again():
    """The re-ask shows the calls, a tool message per call (ids made up when missing),
    then the user's correction: a conversation OpenAI accepts."""
    from netfly_batch.wire.validation import reask_body

    check = AnswerChecker(None, WEATHER_TOOLS)
    bad = answer("", calls=[ToolCall(None, "get_weather", '{"city": 7}')])
    with pytest.raises(InvalidOutputError) as caught:
        check(bad)
    body = reask_body({"messages": [{"role": "user", "content": "weather?"}]}, caught.value)
    assistant, tool, user = body["messages"][1:]
    assert assistant["tool_calls"][0]["id"] == "call_0"
    assert tool == {"role": "tool", "tool_call_id": "call_0",
                    "content": f"Error: {caught.value.problem}"}  # fmt: skip
    assert user["role"] == "user"


def test_a_reask_shows_the_choice_that_failed():
    """With n > 1 the model is shown the failing choice, not choice 0."""
    from netfly_batch.wire.validation import reask_body

    with pytest.raises(InvalidOutputError) as caught:
        AnswerChecker(OutputSpec())(answer('{"a": 1}', "oops"))
    assert caught.value.choice == 1
    body = reask_body({"messages": []}, caught.value)
    assert body["messages"][0] == {"role": "assistant", "content": "oops"}


def test_a_refusal_is_not_retried_and_a_call_is_not_checked_as_json():
    """A refusal fails at once (asking again only burns tokens); text beside a tool call,
    or a legacy function_call, is not held to the JSON schema."""
    check = AnswerChecker(OutputSpec(ITEMS), WEATHER_TOOLS)
    refused = Completion("", "stop", choices=[Choice(0, "", "stop", refusal="I can't.")])
    with pytest.raises(InvalidOutputError, match="refused") as caught:
        check(refused)
    assert not caught.value.retryable
    check(answer("Let me check.", calls=[ToolCall("c", "get_weather", '{"city": "Oslo"}')]))
    legacy = Choice(0, "", "stop", function_call={"name": "f", "arguments": "{}"})
    check(Completion("", "stop", choices=[legacy]))
