"""Chat-completion chunks: parsing, in-band errors, and folding into a Completion."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from netfly_batch.errors import StreamError
from netfly_batch.wire.answer import Completion
from netfly_batch.wire.assemble import AnswerBuilder
from netfly_batch.wire.chunks import error_from_object, parse_chunk

CAPTURES = Path(__file__).parent / "data" / "captures"
LLAMA_TEXT = (
    "1. Red: This is the most obvious colour, but it's also a bit of an "
    "oversimplification as there are"
)
LITELLM_TEXT = "Hello from the LiteLLM mock. This is a canned streamed answer."


def capture_data(name: str) -> list[str]:
    """The `data:` payloads of a captured stream (plain split: these captures use LF)."""
    body = (CAPTURES / name).read_bytes().decode()
    return [block.removeprefix("data: ") for block in body.split("\n\n") if block]


def fold(*chunks: dict) -> tuple[list[str], Completion]:
    """Add chunks to a fresh builder; return the texts added and the completion."""
    builder = AnswerBuilder()
    texts = [builder.add(chunk) for chunk in chunks]
    return texts, builder.build()


SHAPES = [
    ("content", {"choices": [{"index": 0, "delta": {"content": "Hi"}}]}, "Hi", None),
    ("role only", {"choices": [{"index": 0, "delta": {"role": "assistant"}}]}, "", None),
    (
        "role and content",
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]},
        "Hel",
        None,
    ),
    (
        "tool call",
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "f", "arguments": "{}"},
                            }
                        ]
                    },
                }
            ]
        },
        "",
        None,
    ),
    ("usage only", {"choices": [], "usage": {"total_tokens": 3}}, "", None),
    ("no choices key", {"id": "x"}, "", None),
    ("empty choices", {"choices": []}, "", None),
    ("null choices", {"choices": None}, "", None),
    ("null delta", {"choices": [{"index": 0, "delta": None}]}, "", None),
    ("null content", {"choices": [{"index": 0, "delta": {"content": None}}]}, "", None),
    (
        "empty delta with finish",
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        "",
        "stop",
    ),
    (
        "content and finish",
        {"choices": [{"index": 0, "delta": {"content": "end"}, "finish_reason": "length"}]},
        "end",
        "length",
    ),
    (
        "null finish",
        {"choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": None}]},
        "a",
        None,
    ),
    (
        "second choice is not choice 0",
        {"choices": [{"index": 1, "delta": {"content": "no"}}]},
        "",
        None,
    ),
    ("choice without index is choice 0", {"choices": [{"delta": {"content": "ok"}}]}, "ok", None),
    (
        "whole reply message",
        {
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "whole"},
                    "finish_reason": "stop",
                }
            ]
        },
        "whole",
        "stop",
    ),
    (
        "non-dict choice skipped",
        {"choices": ["junk", {"index": 0, "delta": {"content": "b"}}]},
        "b",
        None,
    ),
]


@pytest.mark.parametrize(
    ("chunk", "text", "finish"), [case[1:] for case in SHAPES], ids=[case[0] for case in SHAPES]
)
def test_chunk_shapes(chunk, text, finish):
    """Each chunk shape adds exactly its content (if any) and its finish_reason."""
    texts, completion = fold(parse_chunk(orjson.dumps(chunk)))
    assert texts == [text]
    assert completion.content == text
    assert completion.finish_reason == finish


def test_usage_and_model_are_captured():
    """The last usage object and model name seen are kept."""
    _, completion = fold(
        {"model": "m1", "choices": [{"index": 0, "delta": {"content": "a"}}]},
        {"model": "m2", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {"choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 1}},
    )
    assert (completion.content, completion.finish_reason, completion.model) == ("a", "stop", "m2")
    assert completion.usage == {"prompt_tokens": 2, "completion_tokens": 1}
    assert completion.attempts == 1


def test_build_carries_attempts():
    """build(attempts=n) records how many attempts the completion took."""
    builder = AnswerBuilder()
    builder.add({"choices": [{"index": 0, "delta": {"content": "x"}}]})
    assert builder.build(attempts=3).attempts == 3


@pytest.mark.parametrize(
    "data",
    ["[1, 2]", "42", '"text"', "null", "true"],
    ids=["array", "number", "string", "null", "bool"],
)
def test_non_object_json_is_a_stream_error(data):
    """Valid JSON that is not an object raises StreamError naming the chunk."""
    with pytest.raises(StreamError, match="not a JSON object") as caught:
        parse_chunk(data)
    assert data in str(caught.value)


@pytest.mark.parametrize(
    "data",
    ["{", '{"choices": [', "data: {}", "", "{'a': 1}", b"\xff{"],
    ids=["brace", "cut", "prefix", "empty", "python dict", "bad utf-8"],
)
def test_malformed_json_is_a_retryable_stream_error(data):
    """Unparseable data raises a retryable StreamError that quotes the chunk."""
    with pytest.raises(StreamError, match="malformed chunk") as caught:
        parse_chunk(data)
    assert caught.value.retryable is True


def test_malformed_chunk_quote_is_one_short_line():
    """The quoted chunk is its first line, cut at 120 characters."""
    with pytest.raises(StreamError) as caught:
        parse_chunk("{" + "x" * 500 + "\nsecond line")
    assert "second line" not in str(caught.value)
    assert str(caught.value).endswith("'{" + "x" * 119 + "...'")


ERRORS = [
    ("int 429", 429, True, 429),
    ("str 429", "429", True, 429),
    ("int 408", 408, True, 408),
    ("str 409", "409", True, 409),
    ("int 500", 500, True, 500),
    ("str 500", "500", True, 500),
    ("str 502", "502", True, 502),
    ("int 503", 503, True, 503),
    ("no code", None, True, None),
    ("empty code", "", True, None),
    ("str 400", "400", False, 400),
    ("int 400", 400, False, 400),
    ("int 401", 401, False, 401),
    ("int 403", 403, False, 403),
    ("str 404", "404", False, 404),
    ("content_filter", "content_filter", False, None),
    ("context_length_exceeded", "context_length_exceeded", False, None),
    ("invalid_request_error", "invalid_request_error", False, None),
    ("rate_limit_exceeded", "rate_limit_exceeded", True, None),
    ("server_error", "server_error", True, None),
    ("overloaded", "overloaded", True, None),
    ("bool code is not a status", True, False, None),
    ("out of range number", 42, False, None),
    ("non-ASCII digits", "²²²", False, None),
]


@pytest.mark.parametrize(
    ("code", "retryable", "status"), [case[1:] for case in ERRORS], ids=[case[0] for case in ERRORS]
)
def test_error_object_in_a_chunk(code, retryable, status):
    """An {"error": ...} chunk raises StreamError with the server's message, code, status."""
    error = {"message": "the upstream said no", "type": "some_type"}
    if code is not None:
        error["code"] = code
    with pytest.raises(StreamError) as caught:
        parse_chunk(orjson.dumps({"error": error}))
    assert caught.value.retryable is retryable
    assert caught.value.status == status
    assert caught.value.code == (None if code is None else str(code))
    assert "the upstream said no" in str(caught.value)
    if code not in (None, ""):
        assert f"(code {code})" in str(caught.value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("plain string", "plain string"),
        ({"type": "only_a_type"}, "only_a_type"),
        ({}, "unknown error"),
        ({"message": ""}, "unknown error"),
    ],
    ids=["string", "type only", "empty object", "empty message"],
)
def test_error_object_without_a_message(value, message):
    """An error value without a message still gives a readable, retryable StreamError."""
    error = error_from_object(value)
    assert str(error) == f"error inside the response: {message}"
    assert error.retryable is True


def test_null_error_is_not_an_error():
    """`"error": null` next to a normal chunk is not treated as an error."""
    chunk = parse_chunk('{"error": null, "choices": [{"index": 0, "delta": {"content": "a"}}]}')
    assert fold(chunk)[1].content == "a"


def test_llamacpp_stream_capture():
    """The llama.cpp stream folds into its text, finish_reason "length" and model."""
    data = capture_data("llamacpp-smollm2-stream.sse")
    assert data[-1] == "[DONE]"
    texts, completion = fold(*(parse_chunk(item) for item in data[:-1]))
    assert texts[0] == ""  # the role-only first chunk
    assert texts[-1] == ""  # the finish chunk has an empty delta
    assert len([text for text in texts if text]) == 24
    assert completion.content == LLAMA_TEXT
    assert completion.finish_reason == "length"
    assert completion.model == "smollm2-135m"
    assert completion.usage is None


def test_litellm_stream_capture():
    """The LiteLLM stream folds into its text, finish_reason "stop" and the usage chunk."""
    data = capture_data("litellm-mock-stream.sse")
    texts, completion = fold(*(parse_chunk(item) for item in data[:-1]))
    assert texts[0] == "Hel"  # role and first content in one delta
    assert texts[-2:] == ["", ""]  # the finish chunk and the usage chunk
    assert completion.content == LITELLM_TEXT
    assert completion.finish_reason == "stop"
    assert completion.model == "mock-gpt"
    assert completion.usage is not None
    assert completion.usage["completion_tokens"] == 15
    assert completion.usage["total_tokens"] == 23


def test_llamacpp_non_stream_capture():
    """A whole (non-stream) reply folds into the same text as the stream, with its usage."""
    reply = (CAPTURES / "llamacpp-smollm2-nonstream.json").read_bytes()
    texts, completion = fold(parse_chunk(reply))
    assert texts == [LLAMA_TEXT]
    assert (completion.content, completion.finish_reason, completion.model) == (
        LLAMA_TEXT,
        "length",
        "smollm2-135m",
    )
    assert completion.usage == {"prompt_tokens": 34, "completion_tokens": 24, "total_tokens": 58}
    assert completion.id == "chatcmpl-04e3bee7-5cfd-4e7f-930d-914a6e5fbdc6"
    assert completion.created == 1795636186


def test_a_choice_index_that_is_not_a_number_is_skipped():
    """A list, a string or true as index is no choice (never a crash, never choice 1)."""
    texts, completion = fold(
        {"choices": [{"index": [1], "delta": {"content": "x"}}]},
        {"choices": [{"index": True, "delta": {"content": "y"}}]},
        {"choices": [{"index": "2", "delta": {"content": "z"}}]},
        {"choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}]},
    )
    assert texts == ["", "", "", "ok"]
    assert [choice.index for choice in completion.choices] == [0]
