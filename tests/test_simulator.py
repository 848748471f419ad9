"""Tests of the simulated OpenAI-compatible endpoint: answers, stream shape, faults, stats."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import click
import orjson
import pytest
from click.testing import CliRunner

from netfly_batch.simulator import (
    STATS_KEY,
    FaultKind,
    FaultPlan,
    FaultRates,
    SimulatorSettings,
    build_app,
    reply_for,
    running_simulator,
    serve_forever,
    simulator_options,
    simulator_settings_from_options,
)
from netfly_batch.simulator.chat import split_content
from netfly_batch.simulator.faults import RETRYABLE_KINDS, parse_fault_kind, pick_fault

CHAT = "/v1/chat/completions"
SEED_CHAT = "/api/openai/v1/chat/completions"
TIMEOUT = aiohttp.ClientTimeout(total=5)
LONG_TEXT = "the quick brown fox jumps over the lazy dog " * 3


def body_for(
    text: str, *, stream: bool = True, model: str = "gpt-4", **extra: Any
) -> dict[str, Any]:
    """A chat-completions request body with one user message."""
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]
    return {"model": model, "messages": messages, "stream": stream, **extra}


def events_of(raw: bytes) -> list[str]:
    """The SSE events of a whole body, each as its text without the trailing blank line."""
    return [event for event in raw.decode().split("\n\n") if event]


def data_of(events: list[str]) -> list[str]:
    """The payloads of the `data: ` events."""
    return [event.removeprefix("data: ") for event in events if event.startswith("data: ")]


def chunks_of(events: list[str]) -> list[dict[str, Any]]:
    """The parsed JSON chunks (skipping [DONE]; invalid JSON raises)."""
    return [orjson.loads(data) for data in data_of(events) if data != "[DONE]"]


def joined_content(chunks: list[dict[str, Any]]) -> str:
    """The content deltas of `chunks` joined."""
    return "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in chunks)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session whose every request gives up after a few seconds."""
    async with aiohttp.ClientSession(timeout=TIMEOUT) as client_session:
        yield client_session


async def post_raw(session: aiohttp.ClientSession, url: str, body: Any) -> tuple[int, bytes]:
    """POST `body` as JSON; return the status and the whole response body."""
    async with session.post(url, json=body) as response:
        return response.status, await response.read()


async def read_into(response: aiohttp.ClientResponse, received: bytearray) -> None:
    """Read the body piece by piece into `received`, so a failing read keeps what came first."""
    async for piece in response.content.iter_any():
        received.extend(piece)


# --- the pure fault plan -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("draw", "expected"),
    [
        (0.0, FaultKind.RATE_429),
        (0.099, FaultKind.RATE_429),
        (0.1, FaultKind.RESET),
        (0.299, FaultKind.RESET),
        (0.3001, FaultKind.NO_DONE),
        (0.3999, FaultKind.NO_DONE),
        (0.4, RETRYABLE_KINDS[0]),
        (0.4 + 0.6 * 5.5 / 6 * 0.5, RETRYABLE_KINDS[5]),
        (0.7, None),
        (0.9999, None),
    ],
    ids=[
        "429-low",
        "429-high",
        "reset-low",
        "reset-high",
        "no-done-low",
        "no-done-high",
        "fail-rate-first",
        "fail-rate-last",
        "none-low",
        "none-high",
    ],
)
def test_pick_fault_partitions_the_unit_interval(draw, expected):
    """Rates take consecutive segments in FaultKind order, then fail_rate; the rest is healthy."""
    rates = FaultRates(rate_429=0.1, reset=0.2, no_done=0.1, fail_rate=0.3)
    assert pick_fault(draw, rates) == expected


RATE_TABLES = [
    FaultRates(
        rate_429=0.05,
        rate_503=0.02,
        disconnect=0.1,
        stall=0.03,
        malformed=0.04,
        inband_error=0.06,
        truncated=0.07,
        no_done=0.08,
        fail_rate=0.24,
    ),
    FaultRates(rate_500=0.2, rate_502=0.1, reset=0.15, fail_rate=0.5),
]


@pytest.mark.parametrize("rates", RATE_TABLES, ids=["all-kinds", "mostly-fail-rate"])
def test_each_fault_occurs_at_its_rate(rates):
    """Over many seeded draws, each kind's share is within 1 point of its configured share."""
    draws = 20_000
    plan = FaultPlan(rates, seed=7)
    counts = Counter(plan.next_fault(f"prompt-{index}") for index in range(draws))
    for kind in FaultKind:
        assert counts[kind] / draws == pytest.approx(rates.expected_share(kind), abs=0.01), kind
    assert counts[None] / draws == pytest.approx(1 - rates.total, abs=0.01)


def test_fail_rate_spreads_over_retryable_kinds_only():
    """fail_rate alone gives only the six retryable kinds, about equally often."""
    plan = FaultPlan(FaultRates(fail_rate=1.0), seed=3)
    counts = Counter(plan.draw() for _ in range(6_000))
    assert set(counts) == set(RETRYABLE_KINDS)
    assert all(800 < counts[kind] < 1200 for kind in RETRYABLE_KINDS), counts


def test_same_seed_gives_same_fault_sequence():
    """Two plans with one seed agree draw for draw; another seed disagrees somewhere."""
    rates = FaultRates(fail_rate=0.5, truncated=0.1)

    def sequence(seed: int) -> list[FaultKind | None]:
        plan = FaultPlan(rates, seed=seed)
        return [plan.next_fault("p") for _ in range(200)]

    assert sequence(11) == sequence(11)
    assert sequence(11) != sequence(12)
    assert sum(kind is not None for kind in sequence(11)) > 50


def test_fail_first_fails_each_prompt_exactly_n_times():
    """fail_first=2 fails the first two requests of every prompt key, then never again."""
    plan = FaultPlan(FaultRates(), fail_first=2, fail_first_kind=FaultKind.RESET)
    got = [(key, plan.next_fault(key)) for key in ["a", "b", "a", "a", "b", "c", "a", "b"]]
    reset = FaultKind.RESET
    assert got == [
        ("a", reset),
        ("b", reset),
        ("a", reset),
        ("a", None),
        ("b", reset),
        ("c", reset),
        ("a", None),
        ("b", None),
    ]


@pytest.mark.parametrize(
    "rates",
    [{"rate_429": 0.6, "fail_rate": 0.5}, {"stall": 0.5, "reset": 0.3, "no_done": 0.3}],
    ids=["429+fail", "three-kinds"],
)
def test_rates_adding_up_past_one_are_rejected(rates):
    """A sum above 1 raises ValueError naming the sum and the rates."""
    with pytest.raises(ValueError, match=r"add up to 1\.1.*at most 1"):
        FaultRates(**rates)


@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan")], ids=["negative", "above-1", "nan"])
def test_a_rate_outside_zero_one_is_rejected(value):
    """Each rate must lie in [0, 1]."""
    with pytest.raises(ValueError, match="between 0 and 1"):
        FaultRates(rate_502=value)


def test_rates_adding_up_to_exactly_one_are_accepted():
    """Ten rates of 0.1 (a float sum slightly off 1) are accepted and always fault."""
    names = [
        "rate_429",
        "rate_500",
        "rate_502",
        "rate_503",
        "reset",
        "disconnect",
        "stall",
        "malformed",
        "inband_error",
        "truncated",
    ]
    rates = FaultRates(**dict.fromkeys(names, 0.1))
    plan = FaultPlan(rates, seed=1)
    assert all(plan.draw() is not None for _ in range(1000))


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("503", FaultKind.RATE_503),
        ("rate_429", FaultKind.RATE_429),
        ("inband-error", FaultKind.INBAND_ERROR),
        ("RESET", FaultKind.RESET),
    ],
    ids=["number", "full", "dashes", "upper"],
)
def test_parse_fault_kind(name, kind):
    """Kind names are read in their short and long spellings."""
    assert parse_fault_kind(name) is kind


def test_parse_fault_kind_rejects_unknown_names():
    """An unknown name lists the known kinds."""
    with pytest.raises(ValueError, match="known kinds: rate_429"):
        parse_fault_kind("404")


# --- answers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "count", "expected"),
    [
        ("abcdefghij", 3, ["abcd", "efg", "hij"]),
        ("ab", 8, ["a", "b"]),
        ("", 4, []),
        ("abcd", 1, ["abcd"]),
    ],
    ids=["uneven", "short", "empty", "one"],
)
def test_split_content(text, count, expected):
    """Content splits into nearly equal pieces, fewer when it is short."""
    assert split_content(text, count) == expected


def test_reply_for_reads_the_last_user_message_in_both_content_shapes():
    """String and list-of-parts contents give the same kind of echo, cut to 200 characters."""
    parts = [
        {"type": "text", "text": "one"},
        {"type": "image_url", "image_url": {}},
        {"type": "text", "text": "two"},
    ]
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "x"},
        {"role": "user", "content": parts},
    ]
    assert reply_for(messages, "gpt-4") == "Echo: one\ntwo"
    assert reply_for([{"role": "user", "content": "y" * 500}], "m") == "Echo: " + "y" * 200
    assert reply_for([{"role": "user", "content": " spaced "}], "m") == "Echo:  spaced "
    assert reply_for([{"role": "system", "content": "no user"}], "m") == "Echo: "


async def test_streamed_and_plain_answers_are_the_same_and_deterministic(session):
    """Two streams and one JSON answer carry reply_for(...) exactly, on both paths."""
    body = body_for(LONG_TEXT, model="any-model-name")
    expected = reply_for(body["messages"], "any-model-name")
    async with running_simulator() as sim:
        contents = []
        for path in (CHAT, SEED_CHAT):
            status, raw = await post_raw(session, sim.url + path, body)
            assert status == 200
            chunks = chunks_of(events_of(raw))
            assert {chunk["model"] for chunk in chunks} == {"any-model-name"}
            contents.append(joined_content(chunks))
        status, raw = await post_raw(session, sim.url + CHAT, {**body, "stream": False})
        answer = orjson.loads(raw)
    assert status == 200
    assert contents == [expected, expected]
    assert answer["object"] == "chat.completion"
    assert answer["model"] == "any-model-name"
    assert answer["choices"][0]["message"] == {"role": "assistant", "content": expected}
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert answer["usage"]["completion_tokens"] == len(expected.split())


async def test_stream_shape(session):
    """Role chunk first, chunk_count content chunks, a finish chunk with usage, [DONE] last."""
    body = body_for(LONG_TEXT)
    async with (
        running_simulator(SimulatorSettings(chunk_count=5)) as sim,
        session.post(sim.url + CHAT, json=body) as response,
    ):
        assert response.headers["Content-Type"].startswith("text/event-stream")
        raw = await response.read()
    data = data_of(events_of(raw))
    assert raw.endswith(b"data: [DONE]\n\n")
    assert data[-1] == "[DONE]"
    chunks = [orjson.loads(item) for item in data[:-1]]
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    assert len(chunks) == 1 + 5 + 1
    finish = chunks[-1]
    assert finish["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}
    prompt_tokens = len(body["messages"][0]["content"].split()) + len(LONG_TEXT.split())
    completion_tokens = len(reply_for(body["messages"], "gpt-4").split())
    assert finish["usage"] == {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    assert all(chunk["choices"][0]["finish_reason"] is None for chunk in chunks[:-1])


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
async def test_max_tokens_cuts_words_and_says_length(session, stream):
    """max_tokens=3 keeps the first three words and finish_reason becomes "length"."""
    body = body_for("alpha beta gamma delta", stream=stream, max_tokens=3)
    async with running_simulator() as sim:
        status, raw = await post_raw(session, sim.url + CHAT, body)
    assert status == 200
    if stream:
        chunks = chunks_of(events_of(raw))
        content, finish = joined_content(chunks), chunks[-1]["choices"][0]["finish_reason"]
    else:
        choice = orjson.loads(raw)["choices"][0]
        content, finish = choice["message"]["content"], choice["finish_reason"]
    assert (content, finish) == ("Echo: alpha beta", "length")


async def test_models_are_listed(aiohttp_client):
    """GET /v1/models returns the OpenAI list shape."""
    client = await aiohttp_client(build_app())
    response = await client.get("/v1/models", timeout=TIMEOUT)
    assert response.status == 200
    assert await response.json() == {
        "object": "list",
        "data": [
            {"id": "gpt-3.5-turbo", "object": "model", "owned_by": "netfly-simulator"},
            {"id": "gpt-4", "object": "model", "owned_by": "netfly-simulator"},
        ],
    }


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        b'{"model": "gpt-4"}',
        b'{"messages": "hi"}',
        b'{"messages": []}',
        b'{"messages": [{"role": "user", "content": 5}]}',
        b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}',
    ],
    ids=[
        "not-json",
        "array",
        "no-messages",
        "messages-string",
        "messages-empty",
        "content-number",
        "max-tokens-zero",
    ],
)
async def test_bad_bodies_get_400_with_an_openai_error(aiohttp_client, raw):
    """Bodies without a usable messages list are refused with invalid_request_error."""
    client = await aiohttp_client(build_app())
    response = await client.post(CHAT, data=raw, timeout=TIMEOUT)
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] is None
    assert error["message"]
    assert client.app[STATS_KEY].bad_requests == 1
    assert client.app[STATS_KEY].requests == 0


# --- faults over HTTP -------------------------------------------------------------------


def only(kind: FaultKind, **settings: Any) -> SimulatorSettings:
    """Settings where every request gets `kind`."""
    return SimulatorSettings(faults=FaultRates(**{kind.value: 1.0}), **settings)


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        (FaultKind.RATE_429, 429),
        (FaultKind.RATE_500, 500),
        (FaultKind.RATE_502, 502),
        (FaultKind.RATE_503, 503),
    ],
    ids=["429", "500", "502", "503"],
)
async def test_status_faults(session, kind, status):
    """Status faults answer with their status and an OpenAI error body."""
    async with running_simulator(only(kind)) as sim:
        async with session.post(sim.url + CHAT, json=body_for("hi")) as response:
            error = orjson.loads(await response.read())["error"]
            headers = response.headers
        assert sim.stats.faults == Counter({kind: 1})
    assert response.status == status
    assert error["message"]
    if status == 429:
        assert error["type"] == error["code"] == "rate_limit_exceeded"
        assert headers["Retry-After"] == "1"
    else:
        assert "Retry-After" not in headers


@pytest.mark.parametrize(("seconds", "header"), [(0.0, "0"), (0.01, "0.01"), (2.5, "2.5")])
async def test_retry_after_is_written_as_given(session, seconds, header):
    """retry_after_s 0, 0.01 and 2.5 appear in the header as written."""
    async with (
        running_simulator(only(FaultKind.RATE_429, retry_after_s=seconds)) as sim,
        session.post(sim.url + CHAT, json=body_for("hi")) as response,
    ):
        assert response.status == 429
        assert response.headers["Retry-After"] == header


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
async def test_reset_closes_before_any_response(session, stream):
    """A reset gives the client a disconnect error instead of a status."""
    async with running_simulator(only(FaultKind.RESET)) as sim:
        with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
            await post_raw(session, sim.url + CHAT, body_for("hi", stream=stream))
        assert sim.stats.faults[FaultKind.RESET] == 1


async def test_disconnect_cuts_the_stream_midway(session):
    """A disconnect sends the role and about half the content, then the read fails."""
    received = bytearray()
    async with (
        running_simulator(only(FaultKind.DISCONNECT, chunk_count=8)) as sim,
        session.post(sim.url + CHAT, json=body_for(LONG_TEXT)) as response,
    ):
        assert response.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await read_into(response, received)
    chunks = chunks_of(events_of(bytes(received)))
    assert b"[DONE]" not in received
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    assert len(chunks) == 1 + 4
    assert all(chunk["choices"][0]["finish_reason"] is None for chunk in chunks)


async def test_disconnect_cuts_a_json_answer(session):
    """A non-streamed answer is cut short of its Content-Length."""
    async with running_simulator(only(FaultKind.DISCONNECT)) as sim:
        with pytest.raises(aiohttp.ClientPayloadError):
            await post_raw(session, sim.url + CHAT, body_for("hi", stream=False))


async def test_stall_hangs_until_the_client_gives_up(session):
    """A stall sends some chunks then nothing: a short read timeout fires, the server lets go."""
    received = bytearray()
    async with running_simulator(only(FaultKind.STALL)) as sim:
        short = aiohttp.ClientTimeout(total=5, sock_read=0.3)
        started = time.monotonic()
        async with session.post(sim.url + CHAT, json=body_for(LONG_TEXT), timeout=short) as resp:
            with pytest.raises(asyncio.TimeoutError):
                await read_into(resp, received)
        assert 0.25 < time.monotonic() - started < 2
        for _ in range(40):  # the server notices the client left within its poll interval
            if sim.stats.in_flight == 0:
                break
            await asyncio.sleep(0.05)
        assert sim.stats.in_flight == 0
    assert len(chunks_of(events_of(bytes(received)))) == 1 + 4
    assert b"[DONE]" not in received


async def test_stall_ends_with_a_cut_after_stall_s(session):
    """With a short stall_s the stalled stream is cut, not finished."""
    async with running_simulator(only(FaultKind.STALL, stall_s=0.1)) as sim:
        with pytest.raises(aiohttp.ClientPayloadError):
            await post_raw(session, sim.url + CHAT, body_for(LONG_TEXT))


async def test_shutdown_does_not_wait_for_a_stalled_stream(session):
    """Leaving running_simulator while a client still waits on a stall is quick."""
    async with running_simulator(only(FaultKind.STALL)) as sim:
        response = await session.post(sim.url + CHAT, json=body_for("hi"))
        await response.content.readline()
        assert sim.stats.in_flight == 1
        started = time.monotonic()
    assert time.monotonic() - started < 0.4
    assert sim.stats.in_flight == 0
    response.close()


async def test_malformed_replaces_one_chunk_with_invalid_json(session):
    """Exactly one data event is invalid JSON; finish chunk and [DONE] still follow."""
    async with running_simulator(only(FaultKind.MALFORMED, chunk_count=6)) as sim:
        status, raw = await post_raw(session, sim.url + CHAT, body_for(LONG_TEXT))
    assert status == 200
    data = data_of(events_of(raw))
    invalid = []
    for item in data[:-1]:
        try:
            orjson.loads(item)
        except orjson.JSONDecodeError:
            invalid.append(item)
    assert invalid == ['{"choices": [{"delta": {"content": "x"']
    assert data[-1] == "[DONE]"
    assert orjson.loads(data[-2])["choices"][0]["finish_reason"] == "stop"
    assert len(data) == 1 + 6 + 2


@pytest.mark.parametrize("code", ["500", "400"])
async def test_inband_error_event_ends_the_stream_cleanly(session, code):
    """An error object arrives after some content; the body ends cleanly without [DONE]."""
    settings = only(FaultKind.INBAND_ERROR, inband_error_code=code)
    async with running_simulator(settings) as sim:
        status, raw = await post_raw(session, sim.url + CHAT, body_for(LONG_TEXT))
    assert status == 200
    chunks = chunks_of(events_of(raw))
    assert chunks[-1] == {
        "error": {"message": "simulated upstream failure", "type": None, "code": code}
    }
    assert joined_content(chunks[:-1])
    assert b"[DONE]" not in raw


async def test_truncated_has_done_but_no_finish_reason(session):
    """A truncated stream ends with [DONE] after half the content and no finish_reason."""
    async with running_simulator(only(FaultKind.TRUNCATED, chunk_count=8)) as sim:
        status, raw = await post_raw(session, sim.url + CHAT, body_for(LONG_TEXT))
    assert status == 200
    data = data_of(events_of(raw))
    assert data[-1] == "[DONE]"
    chunks = chunks_of(events_of(raw))
    assert len(chunks) == 1 + 4
    assert all(chunk["choices"][0]["finish_reason"] is None for chunk in chunks)
    assert "usage" not in raw.decode()


async def test_no_done_has_content_but_neither_finish_nor_done(session):
    """A no_done stream carries the whole content and ends cleanly with no finish, no [DONE]."""
    body = body_for(LONG_TEXT)
    async with running_simulator(only(FaultKind.NO_DONE)) as sim:
        status, raw = await post_raw(session, sim.url + CHAT, body)
    assert status == 200
    chunks = chunks_of(events_of(raw))
    assert joined_content(chunks) == reply_for(body["messages"], "gpt-4")
    assert all(chunk["choices"][0]["finish_reason"] is None for chunk in chunks)
    assert b"[DONE]" not in raw


@pytest.mark.parametrize(
    ("kind", "failed_status"),
    [(FaultKind.RATE_503, 503), (FaultKind.RATE_429, 429)],
    ids=["503", "429"],
)
async def test_fail_first_fails_exactly_n_attempts_per_prompt(session, kind, failed_status):
    """fail_first=2: each prompt gets two failures, then its answer, then answers only."""
    settings = SimulatorSettings(fail_first=2, fail_first_kind=kind)
    prompts = ["one", "two", "three"]
    async with running_simulator(settings) as sim:
        statuses: dict[str, list[int]] = {prompt: [] for prompt in prompts}
        for _ in range(4):
            for prompt in prompts:
                status, _raw = await post_raw(session, sim.url + CHAT, body_for(prompt))
                statuses[prompt].append(status)
        stats = sim.stats
    assert statuses == {prompt: [failed_status] * 2 + [200] * 2 for prompt in prompts}
    assert stats.faults == Counter({kind: 6})
    assert sorted(stats.attempts_by_key.values()) == [4, 4, 4]
    assert stats.requests_by_content == Counter(dict.fromkeys(prompts, 4))
    assert stats.answered == 6


async def test_same_seed_gives_same_faults_over_http(session):
    """Two simulators with one seed fail the same sequence of requests the same way."""
    settings = SimulatorSettings(seed=5, faults=FaultRates(rate_500=0.3, rate_502=0.3))

    async def statuses() -> list[int]:
        async with running_simulator(settings) as sim:
            return [
                (await post_raw(session, sim.url + CHAT, body_for(f"p{index}")))[0]
                for index in range(20)
            ]

    first = await statuses()
    assert first == await statuses()
    assert {500, 502, 200} <= set(first)


# --- delays, pings, stats -------------------------------------------------------------------


async def test_pings_come_during_the_first_byte_delay(session):
    """With pings on, headers come at once, then ': ping' comments, then the normal stream."""
    settings = SimulatorSettings(first_byte_delay_s=0.35, ping_interval_s=0.1)
    async with running_simulator(settings) as sim:
        started = time.monotonic()
        async with session.post(sim.url + CHAT, json=body_for("hi")) as response:
            headers_after_s = time.monotonic() - started
            raw = await response.read()
        total_s = time.monotonic() - started
    events = events_of(raw)
    pings = [event for event in events if event == ": ping"]
    assert headers_after_s < 0.2 < 0.3 < total_s
    assert 2 <= len(pings) <= 3
    assert events[: len(pings)] == pings
    assert data_of(events)[-1] == "[DONE]"


async def test_first_byte_delay_without_pings_delays_the_headers(session):
    """Without pings the headers themselves wait for first_byte_delay_s."""
    async with running_simulator(SimulatorSettings(first_byte_delay_s=0.2)) as sim:
        started = time.monotonic()
        async with session.post(sim.url + CHAT, json=body_for("hi")) as response:
            headers_after_s = time.monotonic() - started
            raw = await response.read()
    assert headers_after_s >= 0.2
    assert b": ping" not in raw


async def test_stats_count_concurrency(session):
    """Five slow concurrent streams show max_in_flight 5, then in_flight 0."""
    async with running_simulator(SimulatorSettings(chunk_delay_s=0.03)) as sim:
        results = await asyncio.gather(
            *(post_raw(session, sim.url + CHAT, body_for(f"p{index}")) for index in range(5))
        )
        stats = sim.stats
    assert [status for status, _raw in results] == [200] * 5
    assert (stats.requests, stats.answered, stats.max_in_flight, stats.in_flight) == (5, 5, 5, 0)


# --- options and serve ---------------------------------------------------------------------


def settings_command(prefix: str, captured: list[SimulatorSettings]) -> click.Command:
    """A Click command with the simulator options that captures its settings."""

    @click.command()
    @click.option("--other", default="x")
    @simulator_options(prefix)
    def command(**kwargs: Any) -> None:
        captured.append(simulator_settings_from_options(kwargs, prefix))
        assert kwargs == {"other": "x"}

    return command


def test_options_with_prefix_build_settings():
    """The sim- options reach SimulatorSettings, and only the other options stay in kwargs."""
    captured: list[SimulatorSettings] = []
    args = [
        "--sim-fail-rate",
        "0.1",
        "--sim-rate-429",
        "0.2",
        "--sim-rate-inband-error",
        "0.05",
        "--sim-fail-first",
        "2",
        "--sim-fail-first-kind",
        "429",
        "--sim-retry-after-s",
        "0.01",
        "--sim-chunk-count",
        "3",
        "--sim-seed",
        "9",
        "--sim-stall-s",
        "1",
    ]
    result = CliRunner().invoke(settings_command("sim-", captured), args)
    assert result.exit_code == 0, result.output
    assert captured == [
        SimulatorSettings(
            seed=9,
            faults=FaultRates(fail_rate=0.1, rate_429=0.2, inband_error=0.05),
            fail_first=2,
            fail_first_kind=FaultKind.RATE_429,
            chunk_count=3,
            retry_after_s=0.01,
            stall_s=1.0,
        )
    ]


def test_option_defaults_give_default_settings():
    """No options given: the default SimulatorSettings."""
    captured: list[SimulatorSettings] = []
    result = CliRunner().invoke(settings_command("", captured), [])
    assert result.exit_code == 0, result.output
    assert captured == [SimulatorSettings()]


def test_options_reject_rates_adding_up_past_one():
    """Rates above 1 in total are a usage error (exit 2) naming the sum."""
    result = CliRunner().invoke(
        settings_command("", []), ["--fail-rate", "0.7", "--rate-reset", "0.4"]
    )
    assert result.exit_code == 2
    assert "add up to 1.1" in result.output


def test_options_help_shows_defaults():
    """--help lists the unprefixed options with their defaults."""
    result = CliRunner().invoke(settings_command("", []), ["--help"])
    assert result.exit_code == 0
    for text in [
        "--fail-rate RATE",
        "--rate-429 RATE",
        "--rate-no-done RATE",
        "--fail-first-kind KIND",
        "[default: 503]",
        "--stall-s SECONDS",
        "[default: 3600.0;",
    ]:
        assert text in " ".join(result.output.split()), text


async def test_serve_forever_stops_on_sigterm_and_prints_a_summary(session):
    """serve_forever announces its URL, serves, and on SIGTERM echoes a summary and returns."""
    lines: list[str] = []
    settings = SimulatorSettings(faults=FaultRates(rate_503=1.0))
    task = asyncio.create_task(serve_forever(settings, "127.0.0.1", 0, lines.append))
    for _ in range(100):
        if lines:
            break
        await asyncio.sleep(0.02)
    assert lines[0].startswith("netfly-batch simulator listening on http://127.0.0.1:")
    url = lines[0].split(" ")[4]
    status, _raw = await post_raw(session, url + CHAT, body_for("hi"))
    assert status == 503
    os.kill(os.getpid(), signal.SIGTERM)
    stats = await asyncio.wait_for(task, timeout=3)
    assert stats.requests == 1
    assert len(lines) == 2
    assert "served 1 requests" in lines[1]
    assert "rate_503=1" in lines[1]
