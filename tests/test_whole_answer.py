"""The whole answer over real HTTP: each shape a server streams (tool calls split or
interleaved, whole calls, legacy function_call, reasoning under either name, n choices,
logprobs, refusal, usage) is joined into what the same reply says without streaming."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from aiohttp import web
from openai.types.chat import ChatCompletion

from netfly_batch.errors import TransportError
from netfly_batch.http.client import ChatClient
from netfly_batch.http.endpoints import endpoint_for
from netfly_batch.settings import ClientSettings, RetrySettings

HEAD = {"id": "chatcmpl-42", "created": 1700000000, "model": "m-1", "system_fingerprint": "fp_9"}
USAGE = {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16}


def chunk(*choices: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {**HEAD, "object": "chat.completion.chunk", "choices": list(choices), **top}


def delta(index: int = 0, finish: str | None = None, logprobs: Any = None, **fields: Any):
    return {"index": index, "delta": fields, "logprobs": logprobs, "finish_reason": finish}


def call(
    index: int | None,
    call_id: str | None = None,
    name: str | None = None,
    arguments: str | None = None,
) -> dict[str, Any]:
    item: dict[str, Any] = {"function": {}}
    if index is not None:
        item["index"] = index
    if call_id:
        item.update(id=call_id, type="function")
    if name is not None:
        item["function"]["name"] = name
    if arguments is not None:
        item["function"]["arguments"] = arguments
    return item


def whole(*choices: dict[str, Any]) -> dict[str, Any]:
    """The non-streamed reply: every choice's message as a server would send it."""
    return {**HEAD, "object": "chat.completion", "choices": list(choices), "usage": USAGE}


def message_choice(index: int = 0, finish: str = "stop", logprobs: Any = None, **message: Any):
    full = {"role": "assistant", "content": None, "refusal": None, **message}
    return {"index": index, "message": full, "logprobs": logprobs, "finish_reason": finish}


PARIS = '{"city": "Paris"}'
TOKENS = [
    {"token": t, "logprob": -0.5, "bytes": list(t.encode()), "top_logprobs": []}
    for t in ("Hel", "lo")
]

# name -> (streamed chunks, the same reply without streaming)
SHAPES: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = {
    "split arguments": (
        [
            chunk(delta(role="assistant", content=None)),
            chunk(delta(tool_calls=[call(0, "call_1", "get_weather", "")])),
            chunk(delta(tool_calls=[call(0, arguments='{"city"')])),
            chunk(delta(tool_calls=[call(0, arguments=': "Par')])),
            chunk(delta(tool_calls=[call(0, arguments='is"}')])),
            chunk(delta(finish="tool_calls")),
        ],
        whole(
            message_choice(
                finish="tool_calls",
                tool_calls=[
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": PARIS},
                    }
                ],
            )
        ),
    ),
    "two interleaved calls": (
        [
            chunk(delta(tool_calls=[call(0, "call_a", "get_", "")])),
            chunk(delta(tool_calls=[call(1, "call_b", "get_time", '{"tz"')])),
            chunk(delta(tool_calls=[call(0, name="weather", arguments='{"city"')])),
            chunk(delta(tool_calls=[call(1, arguments=': "UTC"}')])),
            chunk(delta(tool_calls=[call(0, arguments=': "Paris"}')])),
            chunk(delta(finish="tool_calls")),
        ],
        whole(
            message_choice(
                finish="tool_calls",
                tool_calls=[
                    {
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": PARIS},
                    },
                    {
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": '{"tz": "UTC"}'},
                    },
                ],
            )
        ),
    ),
    "whole calls without index": (
        [
            chunk(delta(tool_calls=[call(None, "c1", "f", '{"a": 1}')])),
            chunk(delta(tool_calls=[call(None, "c2", "g", '{"b": 2}')])),
            chunk(delta(finish="tool_calls")),
        ],
        whole(
            message_choice(
                finish="tool_calls",
                tool_calls=[
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"a": 1}'},
                    },
                    {
                        "id": "c2",
                        "type": "function",
                        "function": {"name": "g", "arguments": '{"b": 2}'},
                    },
                ],
            )
        ),
    ),
    "legacy function_call": (
        [
            chunk(delta(function_call={"name": "lookup", "arguments": ""})),
            chunk(delta(function_call={"arguments": '{"q": '})),
            chunk(delta(function_call={"arguments": '"x"}'})),
            chunk(delta(finish="function_call")),
        ],
        whole(
            message_choice(
                finish="function_call", function_call={"name": "lookup", "arguments": '{"q": "x"}'}
            )
        ),
    ),
    "reasoning_content": (
        [
            chunk(delta(role="assistant", reasoning_content="Think")),
            chunk(delta(reasoning_content="ing.")),
            chunk(delta(content="Yes")),
            chunk(delta(finish="stop")),
        ],
        whole(message_choice(content="Yes", reasoning_content="Thinking.")),
    ),
    "reasoning": (
        [
            chunk(delta(reasoning="Hmm")),
            chunk(delta(reasoning=", ok")),
            chunk(delta(content="No")),
            chunk(delta(finish="stop")),
        ],
        whole(message_choice(content="No", reasoning="Hmm, ok")),
    ),
    "n=3 interleaved": (
        [
            chunk(delta(0, content="A"), delta(1, content="B")),
            chunk(delta(2, content="C")),
            chunk(delta(1, content="b", finish="length"), delta(0, content="a")),
            chunk(delta(2, content="c", finish="stop"), delta(0, finish="stop")),
        ],
        whole(
            message_choice(0, content="Aa"),
            message_choice(1, "length", content="Bb"),
            message_choice(2, content="Cc"),
        ),
    ),
    "logprobs": (
        [
            chunk(delta(content="Hel", logprobs={"content": TOKENS[:1], "refusal": None})),
            chunk(delta(content="lo", logprobs={"content": TOKENS[1:], "refusal": None})),
            chunk(delta(finish="stop")),
        ],
        whole(message_choice(content="Hello", logprobs={"content": TOKENS})),
    ),
    "refusal": (
        [
            chunk(delta(role="assistant", content=None, refusal="I can")),
            chunk(delta(refusal="not help.")),
            chunk(delta(finish="stop")),
        ],
        whole(message_choice(refusal="I cannot help.")),
    ),
}


def sse(chunks: list[dict[str, Any]], usage: bool) -> bytes:
    body = b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks)
    if usage:
        body += b"data: " + orjson.dumps(chunk(usage=USAGE)) + b"\n\n"
    return body + b"data: [DONE]\n\n"


@pytest.fixture
async def shape_server(aiohttp_server):
    """Serves SHAPES: POST /stream/NAME streams it (usage only when asked), /whole/NAME
    answers with the same reply as one JSON object."""
    requests: list[dict[str, Any]] = []

    async def stream(request: web.Request) -> web.Response:
        body = await request.json()
        requests.append(body)
        asked = (body.get("stream_options") or {}).get("include_usage") is True
        chunks = SHAPES[request.match_info["name"]][0]
        return web.Response(
            body=sse(chunks, asked),
            content_type="text/event-stream",
            headers={"x-request-id": "req-" + request.match_info["name"]},
        )

    async def reply(request: web.Request) -> web.Response:
        return web.json_response(
            SHAPES[request.match_info["name"]][1],
            headers={"x-request-id": "req-" + request.match_info["name"]},
        )

    app = web.Application()
    app.router.add_post("/stream/{name}", stream)
    app.router.add_post("/whole/{name}", reply)
    server = await aiohttp_server(app)
    server.requests = requests
    return server


async def answer(server, path: str, stream_usage: bool = True):
    endpoint = endpoint_for(str(server.make_url("/")), path, stream_usage=stream_usage)
    body = endpoint.build_body("m-1", [{"role": "user", "content": "hi"}], {})
    async with ChatClient(
        ClientSettings(), RetrySettings(max_attempts=1), endpoint=endpoint
    ) as client:
        return await client.complete(body)


def without_nulls(value: Any) -> Any:
    """The reply with null fields dropped (servers leave out what we write as null)."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


@pytest.mark.parametrize("name", list(SHAPES))
async def test_streamed_answer_equals_the_same_reply_without_streaming(shape_server, name):
    """Field by field, the joined stream is the non-streamed reply, and both read alike."""
    streamed = await answer(shape_server, f"/stream/{name}")
    reply = await answer(shape_server, f"/whole/{name}")
    expected = without_nulls(copy.deepcopy(SHAPES[name][1]))
    assert without_nulls(streamed.to_chat_completion()) == expected
    assert without_nulls(reply.to_chat_completion()) == expected
    assert streamed.request_id == reply.request_id == f"req-{name}"
    ChatCompletion.model_validate(streamed.to_chat_completion())


async def test_choice_zero_fields_of_a_tool_call_answer(shape_server):
    """A streamed tool call is the answer: choice 0's calls, finish tool_calls, not empty."""
    completion = await answer(shape_server, "/stream/split arguments")
    assert completion.content == ""
    assert completion.finish_reason == "tool_calls"
    assert completion.tool_calls is not None
    assert [call.to_dict() for call in completion.tool_calls] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": PARIS},
        }
    ]
    assert not completion.is_empty


async def test_usage_comes_only_when_asked(shape_server):
    """The request asks for usage in the stream (and gets it) unless told not to."""
    asked = await answer(shape_server, "/stream/reasoning")
    not_asked = await answer(shape_server, "/stream/reasoning", stream_usage=False)
    assert asked.usage == USAGE
    assert not_asked.usage is None
    assert shape_server.requests[0]["stream_options"] == {"include_usage": True}
    assert "stream_options" not in shape_server.requests[1]


async def test_one_cut_choice_of_several_is_a_truncated_stream(aiohttp_server):
    """n=3 with choice 1 never finished: the attempt fails as a cut stream, retryably."""
    chunks = [
        chunk(delta(0, content="A"), delta(1, content="B"), delta(2, content="C")),
        chunk(delta(0, finish="stop"), delta(2, finish="stop")),
    ]

    async def cut(request: web.Request) -> web.Response:
        return web.Response(body=sse(chunks, False), content_type="text/event-stream")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", cut)
    server = await aiohttp_server(app)
    with pytest.raises(TransportError, match="choice 1") as caught:
        await answer(server, "/v1/chat/completions")
    assert caught.value.retryable


TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
async def test_the_simulator_calls_tools_and_reasons_when_asked(stream):
    """The simulator answers `tools` with a streamed call, `reasoning_effort` with reasoning."""
    from netfly_batch.simulator import SimulatorSettings, running_simulator

    async with running_simulator(SimulatorSettings()) as simulator:
        endpoint = endpoint_for(simulator.url)
        messages = [{"role": "user", "content": "Weather in Paris?"}]
        tools_body = {**endpoint.build_body("m", messages, {"tools": TOOLS}), "stream": stream}
        think_body = {
            **endpoint.build_body("m", messages, {"reasoning_effort": "low"}),
            "stream": stream,
        }
        async with ChatClient(endpoint=endpoint) as client:
            called = await client.complete(tools_body)
            thought = await client.complete(think_body)
    assert called.finish_reason == "tool_calls"
    assert called.tool_calls is not None
    (tool_call,) = called.tool_calls
    assert tool_call.name == "get_weather"
    assert orjson.loads(tool_call.arguments) == {"text": "Weather in Paris?"}
    assert called.request_id is not None
    assert thought.reasoning == "Thinking about: Weather in Paris?"
    assert thought.content == "Echo: Weather in Paris?"
    ChatCompletion.model_validate(called.to_chat_completion())


def test_run_simulate_writes_tool_calls_and_reasoning(tmp_path):
    """`run --simulate` shows a tool call as the answer (not as an empty one) and reasoning."""
    from click.testing import CliRunner

    from netfly_batch.cli import main

    prompts = tmp_path / "in.jsonl"
    prompts.write_bytes(
        orjson.dumps({"id": "w", "prompt": "Weather?", "tools": TOOLS})
        + b"\n"
        + orjson.dumps({"id": "r", "prompt": "Why?", "reasoning_effort": "low"})
        + b"\n"
    )
    out = tmp_path / "out.jsonl"
    summary = tmp_path / "summary.json"
    result = CliRunner().invoke(
        main, ["run", str(prompts), "-o", str(out), "--simulate", "--summary-json", str(summary)]
    )
    assert result.exit_code == 0, result.output
    rows = {row["id"]: row for row in map(orjson.loads, out.read_bytes().splitlines())}
    assert rows["w"]["content"] == ""
    assert rows["w"]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert rows["w"]["finish_reason"] == "tool_calls"
    assert rows["r"]["reasoning"] == "Thinking about: Why?"
    assert rows["r"]["request_id"].startswith("req-")
    assert orjson.loads(summary.read_bytes())["empty_ok"] == 0


def test_run_asks_for_stream_usage_unless_no_stream_usage(tmp_path):
    """`run` sends stream_options.include_usage to a server; --no-stream-usage leaves it out."""
    from click.testing import CliRunner
    from servers import app_thread, sse_answer

    from netfly_batch.cli import main

    seen: list[dict[str, Any]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(await request.json())
        return web.Response(body=sse_answer("hi"), content_type="text/event-stream")

    prompts = tmp_path / "in.jsonl"
    prompts.write_bytes(b'{"id": "a", "prompt": "x"}\n')
    with app_thread([web.post("/v1/chat/completions", handler)]) as url:
        for number, extra in enumerate(([], ["--no-stream-usage"])):
            result = CliRunner().invoke(main, ["run", str(prompts), "-o",
                                               str(tmp_path / f"out{number}.jsonl"),
                                               "--base-url", url, *extra])  # fmt: skip
            assert result.exit_code == 0, result.output
    assert seen[0]["stream_options"] == {"include_usage": True}
    assert "stream_options" not in seen[1]


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
async def test_the_simulator_answers_n_choices_interleaved(stream):
    """`n: 3` gives three choices, streamed in turn, each finished, usage for all of them;
    the streamed and the whole answer agree."""
    from netfly_batch.simulator import SimulatorSettings, running_simulator

    async with running_simulator(SimulatorSettings(chunk_count=4)) as simulator:
        endpoint = endpoint_for(simulator.url)
        messages = [{"role": "user", "content": "Name a colour"}]
        body = {**endpoint.build_body("m", messages, {"n": 3}), "stream": stream}
        async with ChatClient(endpoint=endpoint) as client:
            answer = await client.complete(body)
            refused = await _status_of(client, {**body, "n": 0})
    assert [choice.content for choice in answer.choices] == [
        "Echo: Name a colour",
        "Echo: Name a colour #2",
        "Echo: Name a colour #3",
    ]
    assert [choice.finish_reason for choice in answer.choices] == ["stop"] * 3
    assert answer.usage == {"prompt_tokens": 3, "completion_tokens": 14, "total_tokens": 17}
    assert refused == 400
    ChatCompletion.model_validate(answer.to_chat_completion())


async def _status_of(client: ChatClient, body: dict[str, Any]) -> int | None:
    from netfly_batch.errors import HTTPStatusError

    try:
        await client.complete(body)
    except HTTPStatusError as error:
        return error.status
    return None


def test_the_simulator_interleaves_the_choices_of_a_stream():
    """Choice 1's deltas come between choice 0's, as OpenAI streams n > 1; usage comes
    last in a chunk without choices."""
    from netfly_batch.simulator.chat import SimulatedAnswer
    from netfly_batch.simulator.responses import stream_events

    answer = SimulatedAnswer("id", "m", 0, "one two three four", "stop", 1, 4, n=2)
    events, _ = stream_events(answer, None, 2, "x")
    chunks = [orjson.loads(e.removeprefix(b"data: ")) for e in events if b"[DONE]" not in e]
    indexes = [c["choices"][0]["index"] for c in chunks if c["choices"]]
    assert indexes[:6] == [0, 1, 0, 1, 0, 1]  # roles, then the content pieces in turn
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 9
