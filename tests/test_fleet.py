"""One batch over a fleet of servers: routing by load, failover, per-endpoint breaker."""

from __future__ import annotations

import asyncio
import io
import socket
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from click.testing import CliRunner
from servers import LoopThread, read_results, sse_answer, write_jsonl

from netfly_batch.batch.progress import ProgressBar
from netfly_batch.batch.run_settings import RunSettings
from netfly_batch.cli import main
from netfly_batch.errors import HTTPStatusError, TransportError
from netfly_batch.http.endpoints import (
    Endpoint,
    EndpointListError,
    parse_base_urls,
    public_url,
)
from netfly_batch.http.fleet import Fleet
from netfly_batch.http.flow import FlowSettings
from netfly_batch.settings import ClientSettings, RetrySettings


class Replica:
    """A chat server in its own thread: answers after `delay`; it can die after
    `die_after` requests (its in-flight ones cut, then connections refused) and come back
    `revive_after` seconds later on the same port; `storm` answers every request 429."""

    def __init__(
        self,
        name: str,
        delay: float,
        *,
        die_after: int | None = None,
        revive_after: float | None = None,
        storm: bool = False,
    ) -> None:
        self.name = name
        self.delay = delay
        self.die_after = die_after
        self.revive_after = revive_after
        self.storm = storm
        self.storm_headers = {"Retry-After": "1"}
        self.requests = 0
        self.answered = 0
        self.answered_after_revival = 0
        self.active = 0
        self.peak = 0
        self.dead = False
        self.revived = False
        self.port = 0
        self._thread = LoopThread()
        self._runner: web.AppRunner | None = None
        self.url = self._thread.call(self._start())

    async def _start(self) -> str:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.05)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            if self.die_after is not None and self.requests > self.die_after and not self.dead:
                self.dead = True
                asyncio.get_running_loop().create_task(self._die())
            if self.dead and not self.revived:
                await asyncio.sleep(5)  # cut short by the shutdown
            if self.storm:
                return web.json_response(
                    {"error": {"message": "slow down"}}, status=429, headers=self.storm_headers
                )
            await asyncio.sleep(self.delay)
            self.answered += 1
            self.answered_after_revival += self.revived
            return web.Response(body=sse_answer(self.name), content_type="text/event-stream")
        finally:
            self.active -= 1

    async def _die(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()  # the port is closed, open connections dropped
        if self.revive_after is not None:
            await asyncio.sleep(self.revive_after)
            self.revived = True
            await self._start()

    def close(self) -> None:
        if self._runner is not None:
            self._thread.call(self._runner.cleanup())
        self._thread.close()


@pytest.fixture
def replicas() -> Any:
    started: list[Replica] = []

    def start(*args: Any, **kwargs: Any) -> Replica:
        replica = Replica(*args, **kwargs)
        started.append(replica)
        return replica

    yield start
    for replica in started:
        replica.close()


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(main, ["run", *args], catch_exceptions=False)


def prompts(tmp_path: Path, count: int) -> Path:
    rows = [{"id": f"p{i}", "prompt": f"prompt {i}"} for i in range(count)]
    return write_jsonl(tmp_path / "in.jsonl", rows)


FAST_RETRIES = ("--retry-wait", "0.05", "--max-attempts", "6")


def test_fleet_balances_by_speed_and_routes_around_a_dying_replica(
    tmp_path: Path, replicas: Any
) -> None:
    fast = replicas("fast", 0.02)
    slow = replicas("slow", 0.06)
    flaky = replicas("flaky", 0.02, die_after=3, revive_after=0.3)
    out, summary_path = tmp_path / "out.jsonl", tmp_path / "summary.json"
    count = 240
    result = run_cli(
        str(prompts(tmp_path, count)), "-o", str(out), "-c", "2",
        "--base-url", fast.url, "--base-url", slow.url, "--base-url", flaky.url,
        "--breaker-threshold", "3", "--probe-after", "0.2",
        "--summary-json", str(summary_path), *FAST_RETRIES,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = read_results(out)
    ids = Counter(row["id"] for row in rows)
    assert set(ids) == {f"p{i}" for i in range(count)}
    assert max(ids.values()) == 1  # nothing written twice
    assert all(row["status"] == "ok" for row in rows)
    by_endpoint = Counter(row["endpoint"] for row in rows)
    # Each result names the replica that answered it, as the replica itself counted.
    assert by_endpoint[fast.url] == fast.answered
    assert by_endpoint[slow.url] == slow.answered
    assert by_endpoint[flaky.url] == flaky.answered
    assert fast.answered > 2 * slow.answered  # three times as fast: served most
    assert flaky.dead
    assert flaky.revived
    assert flaky.answered_after_revival > 0  # probed again, and used once back
    # The request that killed it was in flight there: retried elsewhere, never lost.
    assert any(row["attempts"] > 1 and row["endpoint"] != flaky.url for row in rows)
    summary = orjson.loads(summary_path.read_bytes())
    stats = {entry["url"]: entry for entry in summary["endpoints"]}
    assert stats[flaky.url]["tripped"] >= 1
    assert not stats[flaky.url]["down"]
    assert stats[fast.url]["ok"] == fast.answered
    assert stats[fast.url]["errors"] == 0
    assert sum(entry["attempts"] for entry in stats.values()) == summary["attempts"]
    assert sum(entry["ok"] for entry in stats.values()) == count


@pytest.mark.parametrize(
    ("retry_after", "adaptive"),
    [(True, False), (False, False), (True, True)],
    ids=["retry-after", "no-header", "adaptive"],
)
def test_a_429_storm_on_one_replica_leaves_the_others_at_full_speed(
    tmp_path: Path, replicas: Any, retry_after: bool, adaptive: bool
) -> None:
    storm = replicas("storm", 0.0, storm=True)
    if not retry_after:
        storm.storm_headers = {}
    first, second = replicas("first", 0.05), replicas("second", 0.05)
    out, summary_path = tmp_path / "out.jsonl", tmp_path / "summary.json"
    count = 60
    started = time.monotonic()
    result = run_cli(
        str(prompts(tmp_path, count)), "-o", str(out), "-c", "3",
        "--base-url", f"{storm.url},{first.url} {second.url}",
        "--summary-json", str(summary_path), "--retry-wait", "1",
        *(["--adaptive"] if adaptive else []),
    )  # fmt: skip
    wall = time.monotonic() - started
    assert result.exit_code == 0, result.output
    rows = read_results(out)
    assert sorted(row["id"] for row in rows) == sorted(f"p{i}" for i in range(count))
    assert all(row["status"] == "ok" and row["attempts"] <= 2 for row in rows)
    assert first.peak == 3
    assert second.peak == 3
    assert storm.requests <= 9  # it rests after each 429: a few tries, not one per prompt
    # 60 prompts at 6 in flight, 50 ms each: 0.5 s; no prompt waited out the storm's rest.
    assert wall < 3.0
    summary = orjson.loads(summary_path.read_bytes())
    if adaptive:  # only the storm's own limit was halved: 1 + 3 + 3 in force at the end
        assert summary["concurrency_limit"] == 7
    stats = {e["url"]: e for e in summary["endpoints"]}
    assert stats[storm.url]["rate_limited"] == storm.requests
    assert stats[storm.url]["ok"] == 0
    assert stats[first.url]["ok"] + stats[second.url]["ok"] == count


def test_every_endpoint_down_stops_with_exit_5_and_no_lines(tmp_path: Path) -> None:
    ports = []
    for _ in range(2):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    out, summary_path = tmp_path / "out.jsonl", tmp_path / "summary.json"
    result = run_cli(
        str(prompts(tmp_path, 50)), "-o", str(out), "-c", "2",
        "--base-url", f"http://127.0.0.1:{ports[0]}", "--base-url", f"http://127.0.0.1:{ports[1]}",
        "--breaker-threshold", "2", "--summary-json", str(summary_path), *FAST_RETRIES,
    )  # fmt: skip
    assert result.exit_code == 5, result.output
    assert "every endpoint is unreachable" in result.output
    assert read_results(out) == []  # prompts not answered keep no result line
    endpoints = orjson.loads(summary_path.read_bytes())["endpoints"]
    assert [e["down"] for e in endpoints] == [True, True]


def test_one_endpoint_records_it_and_keeps_the_summary_as_it_was(
    tmp_path: Path, replicas: Any
) -> None:
    server = replicas("one", 0.0)
    out, summary_path = tmp_path / "out.jsonl", tmp_path / "summary.json"
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "prompt": "x"}, {"id": "b"}])
    result = run_cli(
        str(source), "-o", str(out), "--base-url", server.url + "/?api-version=1,2",
        "--summary-json", str(summary_path),
    )  # fmt: skip
    assert result.exit_code == 1  # the invalid line
    rows = {row["id"]: row for row in read_results(out)}
    assert rows["a"]["status"] == "ok"  # the path went before the query string
    assert rows["a"]["endpoint"] == server.url + "/"  # no query string
    assert rows["b"]["endpoint"] is None  # never sent
    assert "endpoints" not in orjson.loads(summary_path.read_bytes())


def test_an_error_result_names_the_endpoint_of_its_last_attempt(
    tmp_path: Path, replicas: Any
) -> None:
    storm = replicas("storm", 0.0, storm=True)
    out = tmp_path / "out.jsonl"
    result = run_cli(
        str(prompts(tmp_path, 1)), "-o", str(out), "--base-url", storm.url,
        "--max-attempts", "1",
    )  # fmt: skip
    assert result.exit_code == 1
    [row] = read_results(out)
    assert row["status"] == "error"
    assert row["endpoint"] == storm.url


# Units: parsing the list, the members' own limits, routing.


def test_base_urls_split_on_commas_and_spaces_with_per_endpoint_limits() -> None:
    assert parse_base_urls(["http://a:1, http://b:2#c=16", "https://c/ http://d"]) == [
        ("http://a:1", None),
        ("http://b:2", 16),
        ("https://c", None),
        ("http://d", None),
    ]


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        (["http://a#c=0"], "only c=N"),
        (["http://a#x=3"], "only c=N"),
        (["ftp://a"], "must start with http"),
        (["http://a", "http://a/"], "given twice"),
        (["http://user:pw@a#c=x"], "only c=N"),
        (["http://user:pw@127.0.0.1:99999"], "port"),
        (["http://user:pw#rest@host"], "port"),
    ],
)
def test_bad_base_url_lists_are_named(values: list[str], problem: str) -> None:
    with pytest.raises(EndpointListError, match=problem) as caught:
        parse_base_urls(values)
    assert "pw" not in str(caught.value)  # a password is never echoed


def test_a_comma_inside_a_query_string_does_not_split_the_list() -> None:
    assert parse_base_urls(["http://a/?v=1,2,http://b"]) == [
        ("http://a/?v=1,2", None),
        ("http://b", None),
    ]


def test_the_path_goes_before_the_base_urls_query_string() -> None:
    endpoint = Endpoint("https://x.example/openai/?api-version=2024-06-01")
    assert endpoint.url == "https://x.example/openai/v1/chat/completions?api-version=2024-06-01"
    assert endpoint.public_url == "https://x.example/openai/"


def test_public_url_drops_credentials_query_and_fragment() -> None:
    assert (
        public_url("https://user:secret@h.example:8443/v1?key=k#x") == "https://h.example:8443/v1"
    )
    assert public_url("http://[::1]:8000") == "http://[::1]:8000"
    assert public_url("http://u:pw@h:99999/v1") == "http://h/v1"  # never raises


def test_bad_fleet_option_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["run", str(prompts(tmp_path, 1)), "-o", str(tmp_path / "o"), "--base-url",
         "http://a#c=0"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "only c=N" in result.output


def test_environment_variable_holds_several_urls(tmp_path: Path, replicas: Any) -> None:
    one, two = replicas("one", 0.0), replicas("two", 0.0)
    out, summary_path = tmp_path / "out.jsonl", tmp_path / "summary.json"
    result = CliRunner(env={"NETFLY_BASE_URL": f"{one.url}#c=3, {two.url}"}).invoke(
        main,
        ["run", str(prompts(tmp_path, 20)), "-o", str(out), "-c", "1",
         "--summary-json", str(summary_path)],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = orjson.loads(summary_path.read_bytes())
    assert [(e["url"], e["limit"]) for e in summary["endpoints"]] == [(one.url, 3), (two.url, 1)]
    assert f"{one.url}: {one.answered} ok, 0 errors" in result.output  # the summary line
    assert summary["concurrency_limit"] == 4
    assert one.answered + two.answered == 20


def fleet(*limits: int | None, **flow: Any) -> Fleet:
    endpoints = [
        Endpoint(f"http://127.0.0.1:{9000 + i}", in_flight_limit=limit)
        for i, limit in enumerate(limits)
    ]
    return Fleet(
        endpoints,
        ClientSettings(),
        RetrySettings(),
        FlowSettings(concurrency=4, **flow),
        probe_after_s=30,
    )


async def test_members_have_their_own_limits_and_rate_buckets() -> None:
    group = fleet(None, 16, rpm=60)
    try:
        assert [m.limit for m in group.members] == [4, 16]
        assert group.concurrency == 20
        flows = [m.flow for m in group.members]
        assert flows[0] is not flows[1]
        assert all(flow.settings.rpm == 60 for flow in flows)
        # A 429 with Retry-After rests only the member that got it.
        group._learn(group.members[0], False, HTTPStatusError(429, "slow", retry_after_s=5))
        assert group.members[0].flow.paused_until > time.monotonic() + 4
        assert group.members[1].flow.paused_until == 0
        assert group._choose(()) == (group.members[1], False)
    finally:
        await group.close()


async def test_routing_picks_the_least_loaded_relative_to_its_limit() -> None:
    group = fleet(2, 8)
    try:
        small, big = group.members
        small.flow.in_flight, big.flow.in_flight = 1, 3  # 50% against 37.5%
        assert group._choose(()) == (big, False)
        big.flow.in_flight = 5  # 62.5%
        assert group._choose(()) == (small, False)
        assert group._choose((small,)) == (big, False)  # a retry avoids where it failed
        small.flow.in_flight = 2  # full
        big.flow.in_flight = 8  # full
        assert group._choose(()) is None
    finally:
        await group.close()


async def test_a_tripped_member_gets_one_probe_after_the_cooldown() -> None:
    now = [100.0]
    group = fleet(None, None, breaker_threshold=1)
    group._clock = lambda: now[0]
    for member in group.members:
        member.flow._clock = group._clock
    try:
        dead, alive = group.members
        refused = TransportError("refused", unreachable=True)
        dead.flow.leave(0.0, refused, None)  # trips it (threshold 1)
        assert dead.down
        assert dead.trips == 1
        assert group._choose(()) == (alive, False)
        now[0] += 31
        assert group._choose((alive,)) == (alive, False)  # retries never probe
        assert group._choose(()) == (dead, True)  # a first attempt is the probe
        assert group._choose(()) == (alive, False)  # one probe at a time
        group._learn(dead, False, None)  # an older attempt's answer decides nothing
        assert dead.down
        group._learn(dead, True, refused)  # the probe was refused: another cooldown
        assert dead.down
        assert not dead.probing
        assert group._choose(()) == (alive, False)
        now[0] += 31
        assert group._choose(()) == (dead, True)
        group._learn(dead, True, None)  # it answered
        assert not dead.down
        assert dead.flow.tripped_by is None
    finally:
        await group.close()


async def test_a_cancelled_probe_frees_the_probe_and_the_slot() -> None:
    group = fleet(None, None, breaker_threshold=1)
    try:
        dead, alive = group.members
        dead.flow.leave(0.0, TransportError("refused", unreachable=True), None)
        alive.flow.in_flight = alive.limit  # full, and no probe due: the attempt waits
        waiting = asyncio.ensure_future(group._acquire(()))
        await asyncio.sleep(0)
        dead.probe_at = 0.0  # the probe is due...
        group._dispatch()
        assert dead.probing  # ...and handed to the waiting attempt...
        waiting.cancel()  # ...which is cancelled before it starts
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert not dead.probing
        assert dead.reserved == 0
        assert group._choose(()) == (dead, True)  # due again
    finally:
        await group.close()


async def test_only_retries_waiting_arm_no_timer_for_a_due_probe() -> None:
    group = fleet(None, None, breaker_threshold=1)
    try:
        dead, alive = group.members
        dead.flow.leave(0.0, TransportError("refused", unreachable=True), None)
        dead.probe_at = 0.0
        alive.flow.in_flight = alive.limit
        retry = asyncio.ensure_future(group._acquire((alive,)))
        await asyncio.sleep(0.01)
        assert not retry.done()
        assert group._timer is None  # no spinning: only a first attempt may probe
        alive.flow.in_flight -= 1
        group._dispatch()
        assert await retry == (alive, False)
    finally:
        await group.close()


async def test_a_waiting_retry_does_not_hold_up_a_new_prompt() -> None:
    group = fleet(1, 2)
    try:
        busy, idle = group.members
        busy.flow.in_flight = 1  # full, with a long answer
        retry = asyncio.ensure_future(group._acquire((idle,)))  # failed on `idle`
        await asyncio.sleep(0)
        assert not retry.done()
        assert await asyncio.wait_for(group._acquire(()), 1) == (idle, False)
        retry.cancel()
    finally:
        await group.close()


async def test_a_retry_goes_to_an_untried_endpoint_before_backing_off() -> None:
    group = fleet(None, None, None)
    try:
        first, second, third = group.members
        third.flow.in_flight = third.limit  # full
        failed = HTTPStatusError(500, "boom")
        # After failing on the first and the second, the retry waits for the third...
        assert group._avoid([first, second]) == (first, second)
        assert group._choose(group._avoid([first, second])) is None
        assert group._wait_before(2, failed, [first, second]) == 0.0
        # ...and once all three were tried, it backs off and avoids only the last.
        assert group._avoid([first, second, third]) == (third,)
        assert group._wait_before(3, failed, [first, second, third]) >= 4.0
    finally:
        await group.close()


async def test_a_retry_waits_only_when_every_endpoint_up_was_tried() -> None:
    group = fleet(None, None, None)
    try:
        first, second, third = group.members
        refused = TransportError("refused", unreachable=True)
        assert group._wait_before(1, refused, [first]) == 0.0  # on to a fresh endpoint
        third.down = True
        assert group._wait_before(2, refused, [first, second]) >= 2.0  # backoff, as usual
        # A Retry-After rests the endpoint that sent it; the request itself backs off.
        throttled = HTTPStatusError(429, "slow", retry_after_s=100)
        assert group._wait_before(2, throttled, [first, second]) < 100
    finally:
        await group.close()


def test_progress_bar_shows_each_endpoint_in_flight_and_limit() -> None:
    async def show() -> str:
        group = fleet(2, None)
        group.members[0].flow.in_flight = 1
        group.members[1].down = True
        stream = io.StringIO()
        bar = ProgressBar(10, True, stream, fleet=group.members)
        from netfly_batch.batch.outcome import Counters

        bar.close(Counters())
        await group.close()
        return stream.getvalue()

    text = asyncio.run(show())
    assert "127.0.0.1:9000 1/2" in text
    assert "127.0.0.1:9001 down" in text


def test_run_settings_pool_is_the_sum_of_limits() -> None:
    endpoints = (Endpoint("http://a", in_flight_limit=3), Endpoint("http://b"))
    settings = RunSettings("in", "out", endpoint=endpoints[0], fleet=endpoints, concurrency=5)
    assert settings.pool_size == 8
    assert settings.endpoints == endpoints
    assert RunSettings("in", "out", concurrency=5).pool_size == 5


def test_a_fleet_run_stopped_at_max_runtime_resumes_without_loss_or_repeats(
    tmp_path: Path, replicas: Any
) -> None:
    one, two = replicas("one", 0.1), replicas("two", 0.1)
    out, source = tmp_path / "out.jsonl", prompts(tmp_path, 40)
    common = (str(source), "-o", str(out), "-c", "2", "--base-url", f"{one.url},{two.url}")
    first = run_cli(*common, "--max-runtime", "0.35")
    assert first.exit_code == 75, first.output
    done_first = [row["id"] for row in read_results(out)]
    assert 0 < len(done_first) < 40
    second = run_cli(*common)
    assert second.exit_code == 0, second.output
    ids = Counter(row["id"] for row in read_results(out))
    assert set(ids) == {f"p{i}" for i in range(40)}
    assert max(ids.values()) == 1
    assert one.answered + two.answered == 40  # nothing was sent twice


def test_every_shard_worker_uses_every_endpoint(tmp_path: Path, replicas: Any) -> None:
    one, two = replicas("one", 0.01), replicas("two", 0.01)
    source = prompts(tmp_path, 40)
    for shard in ("0/2", "1/2"):
        result = run_cli(
            str(source), "-o", str(tmp_path / "out-{shard}.jsonl"), "--shard", shard,
            "-c", "2", "--base-url", one.url, "--base-url", two.url,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert one.answered > 0
        assert two.answered > 0
        one.answered = two.answered = 0


def test_a_dry_run_names_every_endpoint(tmp_path: Path) -> None:
    result = run_cli(
        str(prompts(tmp_path, 2)), "-o", str(tmp_path / "out.jsonl"), "--dry-run",
        "--base-url", "http://a:1,http://user:secret@b:2",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "http://a:1/v1/chat/completions, http://b:2/v1/chat/completions" in result.output
    assert "secret" not in result.output


async def test_rate_limits_are_per_endpoint() -> None:
    """--rpm is a bucket per endpoint: one endpoint's spent budget holds up only its own."""
    group = fleet(None, None, rpm=60)  # one request a second each, none saved up
    try:
        first, second = group.members
        started = await first.flow.enter(0)
        first.flow.leave(started, None, None)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(first.flow.enter(0), 0.2)  # its budget is spent...
        await asyncio.wait_for(second.flow.enter(0), 0.2)  # ...the other's is not
    finally:
        await group.close()
