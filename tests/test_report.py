"""`netfly-batch report`: counts, error groups, attempts, latency, tokens, cost and time,
read from OUT files as merge reads them, with fixed-size aggregates."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
from click.testing import CliRunner

from netfly_batch.cli import main
from netfly_batch.outputs.report import build_report
from netfly_batch.outputs.report_text import chart
from netfly_batch.outputs.tallies import MAX_TIME_BINS, TimeBins, Timeline
from netfly_batch.results import Result


def ok(prompt_id: str, line: int, elapsed: float, attempts: int = 1,
       at: str = "2026-01-01T10:00:00.000Z", reasoning: int = 0) -> bytes:  # fmt: skip
    usage = {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14,
             "completion_tokens_details": {"reasoning_tokens": reasoning}}  # fmt: skip
    return Result(prompt_id, "ok", attempts, "x", None, line, model="m", finish_reason="stop",
                  usage=usage, elapsed_s=elapsed, finished_at=at,
                  request_hash="0" * 16).to_line()  # fmt: skip


def failed(prompt_id: str, line: int, status: int | None, message: str) -> bytes:
    error = {"type": "http_error" if status else "transport_error", "message": message}
    if status:
        error["status"] = status
    return Result(prompt_id, "error", 5, None, error, line, elapsed_s=1.0,
                  finished_at="2026-01-01T10:01:30.000Z").to_line()  # fmt: skip


def test_numbers_of_a_run(tmp_path):
    """Statuses with shares, errors largest group first, attempts, tokens, cost, minutes."""
    out = tmp_path / "out.jsonl"
    out.write_bytes(
        ok("a", 1, 0.5, attempts=2, reasoning=3)
        + ok("b", 2, 1.5, at="2026-01-01T10:02:10.000Z")
        + failed("c", 3, 503, "busy") + failed("d", 4, 503, "busy again")
        + failed("e", 5, None, "connection dropped")
        + Result("f", "invalid", 0, None, {"type": "invalid_line", "message": "m"}, 6,
                 finished_at="2026-01-01T10:01:00.000Z").to_line()
        + b"not a result\n"
    )  # fmt: skip
    data = build_report([out]).as_dict(price_in=1.0, price_out=2.0)
    assert data["results"] == 6
    assert data["by_status"]["ok"] == {"count": 2, "share": round(2 / 6, 4)}
    assert data["unreadable_lines"] == 1
    first, second = data["error_groups"]
    assert (first["type"], first["status"], first["count"], first["example_id"]) == (
        "http_error", 503, 2, "c")  # fmt: skip
    assert (second["type"], second["count"]) == ("transport_error", 1)
    assert data["attempts"] == {"1": 1, "2": 1, "5": 3}
    assert data["retried_share"] == 0.8
    assert data["tokens"] == {"prompt": 20, "completion": 8, "total": 28, "reasoning": 3}
    assert data["tokens_per_result"]["prompt"] == 10.0
    assert data["cost_usd"] == round((20 * 1.0 + 8 * 2.0) / 1e6, 6)
    assert data["per_minute"] == {"2026-01-01T10:00": 1, "2026-01-01T10:01": 4,
                                  "2026-01-01T10:02": 1}  # fmt: skip
    assert data["models"] == {"m": 2}
    assert data["slowest"][0] == {"id": "b", "elapsed_s": 1.5}


def test_latency_quantiles_come_within_a_bin_of_the_exact_ones(tmp_path):
    """The histogram's p50/p90/p99 are within 2.5 % of the exact quantiles."""
    rng = random.Random(7)
    values = [rng.lognormvariate(-1, 1) for _ in range(5000)]
    out = tmp_path / "out.jsonl"
    out.write_bytes(b"".join(ok(f"p{i}", i, round(v, 4)) for i, v in enumerate(values)))
    report = build_report([out])
    ordered = sorted(round(v, 4) for v in values)
    for q in (0.5, 0.9, 0.99):
        exact = ordered[int(q * len(ordered)) - 1]
        assert abs(report.latency.quantile(q) / exact - 1) < 0.025, q
    assert report.latency.max == ordered[-1]
    assert [s for s, _ in sorted(report.slowest, reverse=True)] == ordered[::-1][:5]


def test_the_latest_result_per_id_counts_and_work_left_is_shown(tmp_path):
    """Across shards an id's latest result counts once; --input shows ids still to do."""
    first, second = tmp_path / "out.0.jsonl", tmp_path / "out.1.jsonl"
    first.write_bytes(failed("a", 1, 500, "x"))
    second.write_bytes(ok("a", 1, 0.1, at="2026-01-01T11:00:00.000Z") + ok("b", 2, 0.1))
    prompts = tmp_path / "in.jsonl"
    prompts.write_bytes(b"".join(orjson.dumps({"id": i, "prompt": "p"}) + b"\n"
                                 for i in ("a", "b", "c", "d")))  # fmt: skip
    summary = tmp_path / "report.json"
    result = CliRunner().invoke(main, ["report", str(first), str(second), "--input",
                                       str(prompts), "--json", str(summary)])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = orjson.loads(summary.read_bytes())
    assert data["by_status"] == {"ok": {"count": 2, "share": 1.0}}
    assert data["left_to_do"] == 2
    assert "to do            2" in result.output
    assert "\x1b[" not in result.output  # plain text when not a terminal


def test_an_unreadable_file_exits_3(tmp_path):
    """A file that cannot be read is named, exit 3."""
    result = CliRunner().invoke(main, ["report", str(tmp_path / "missing.jsonl")])
    assert result.exit_code == 3
    assert "cannot read" in result.output


def test_chart_groups_minutes_into_bars():
    """One bar per minute up to the width; more minutes are grouped, the peak named."""
    assert chart([1, 2, 4]) == "▂▄█  (peak 4 a minute)"
    long = chart([1] * 120, width=60)
    assert long.startswith("█" * 60)
    assert long.endswith("(peak 2 a 2 minutes)")
    assert chart([]) == ""


def test_a_million_result_report_stays_small(tmp_path: Path):
    """Aggregates are fixed-size: a large OUT adds bins and counters, never rows."""
    out = tmp_path / "out.jsonl"
    out.write_bytes(b"".join(ok(f"p{i}", i, 0.01 * (i % 300 + 1)) for i in range(20000)))
    report = build_report([out])
    assert report.total == 20000
    assert len(report.latency.bins) <= 300
    assert len(report.slowest) == 5


def test_the_run_summary_counts_the_tokens_of_its_results(tmp_path):
    """run's --summary-json and summary line carry the tokens of the results it wrote."""
    prompts = tmp_path / "in.jsonl"
    prompts.write_bytes(b"".join(orjson.dumps({"id": f"p{i}", "prompt": f"say {i} words"})
                                 + b"\n" for i in range(5)))  # fmt: skip
    out, summary = tmp_path / "out.jsonl", tmp_path / "summary.json"
    result = CliRunner().invoke(main, ["run", str(prompts), "-o", str(out), "--simulate",
                                       "--summary-json", str(summary)])  # fmt: skip
    assert result.exit_code == 0, result.output
    usages = [orjson.loads(line)["usage"] for line in out.read_bytes().splitlines()]
    data = orjson.loads(summary.read_bytes())
    for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
        assert data[name] == sum(usage[name] for usage in usages) > 0
    assert f"{data['total_tokens']} tokens ({data['prompt_tokens']} prompt" in result.output


def test_time_bins_widen_to_stay_bounded_and_keep_every_result():
    """Results over a day fall into at most MAX_TIME_BINS bins of a round width, none lost."""
    bins = TimeBins()
    for second in range(0, 86_400, 7):
        bins.add(1_767_261_600 + second, "ok" if second % 3 else "error")
    data = bins.as_dict()
    assert data["bin_s"] == 600  # 1 s, 5 s, ... widened until a day fits in 240 bins
    assert len(data["starts"]) == len(data["by_status"]["ok"]) <= MAX_TIME_BINS
    assert data["starts"][0] == "2026-01-01T10:00:00Z"
    total = sum(data["by_status"]["ok"]) + sum(data["by_status"]["error"])
    assert total == len(range(0, 86_400, 7))
    assert len(bins.counts) <= MAX_TIME_BINS


def test_over_time_and_token_histograms_in_the_json(tmp_path):
    """The charts' numbers: results per time bin by status, tokens per result in bins."""
    out = tmp_path / "out.jsonl"
    out.write_bytes(
        ok("a", 1, 0.5, at="2026-01-01T10:00:00.500Z")
        + ok("b", 2, 0.5, at="2026-01-01T10:00:02.000Z")
        + failed("c", 3, 503, "busy")  # 10:01:30
    )
    data = build_report([out]).as_dict()
    over_time = data["over_time"]
    assert over_time["bin_s"] == 1
    assert over_time["starts"][0] == "2026-01-01T10:00:00Z"
    assert len(over_time["starts"]) == 91
    assert sum(over_time["by_status"]["ok"]) == 2
    assert over_time["by_status"]["ok"][2] == 1
    assert over_time["by_status"]["error"][-1] == 1
    prompt = data["tokens_histogram"]["prompt"]
    assert prompt == [[10.0, 2]]  # both results had 10 prompt tokens: the bin ending at 10
    [[edge, count]] = data["tokens_histogram"]["completion"]
    assert count == 2
    assert 4 <= edge < 4 * 10 ** (1 / 20)
    assert sum(count for _, count in data["latency_s"]["histogram"]) == 3


def test_a_timeline_counts_every_result_in_any_order_and_form():
    """Results of one second are counted together; order and time forms do not matter."""
    timeline = Timeline()
    day = "2026-01-01T"
    stamps = [f"{day}10:00:00.100Z", f"{day}10:00:00.900Z", f"{day}10:00:03.000Z",
              f"{day}10:00:00.500Z", f"{day}11:00:01+01:00", f"{day}10:01:00.000Z"]  # fmt: skip
    for number, stamp in enumerate(stamps):
        timeline.add(stamp, "ok" if number % 2 else "error")
    timeline.close()
    data = timeline.bins.as_dict()
    assert data["bin_s"] == 1
    assert [data["by_status"]["ok"][i] + data["by_status"]["error"][i] for i in (0, 1, 3)] == [
        3, 1, 1]  # fmt: skip
    assert sum(data["by_status"]["ok"]) + sum(data["by_status"]["error"]) == 6
    # 11:00:01+01:00 is 10:00:01 UTC: minutes, first and last go by time, not by text
    assert timeline.per_minute == {"2026-01-01T10:00": 5, "2026-01-01T10:01": 1}
    assert (timeline.first_at, timeline.last_at) == (stamps[0], stamps[5])


def test_a_finished_at_that_is_no_time_counts_in_no_minute():
    """Garbage in finished_at: counted as a result elsewhere, never as a minute or an end."""
    timeline = Timeline()
    for number in range(100):
        timeline.add(f"garbage-{number:04d}-not-a-time", "ok")
    timeline.add("2026-01-01T10:00:00.000Z", "ok")
    timeline.close()
    assert timeline.per_minute == {"2026-01-01T10:00": 1}
    assert timeline.first_at == timeline.last_at == "2026-01-01T10:00:00.000Z"


def test_results_are_counted_per_endpoint(tmp_path):
    """A fleet's OUT: ok and error results and mean latency for each server that answered;
    lines never sent (endpoint null) count for none."""

    def at(prompt_id: str, status: str, endpoint: str | None, elapsed: float) -> bytes:
        error = None if status == "ok" else {"type": "http_error", "message": "m", "status": 500}
        return Result(prompt_id, status, 1, "x" if status == "ok" else None, error, 1,
                      elapsed_s=elapsed, endpoint=endpoint).to_line()  # fmt: skip

    out = tmp_path / "out.jsonl"
    out.write_bytes(
        at("a", "ok", "http://gpu0:8000", 1.0) + at("b", "ok", "http://gpu0:8000", 2.0)
        + at("c", "error", "http://gpu0:8000", 3.0) + at("d", "ok", "http://gpu1:8000", 0.5)
        + at("e", "invalid", None, 0.0)
    )  # fmt: skip
    data = build_report([out]).as_dict()
    assert data["endpoints"] == {
        "http://gpu0:8000": {"ok": 2, "error": 1, "mean_elapsed_s": 2.0},
        "http://gpu1:8000": {"ok": 1, "error": 0, "mean_elapsed_s": 0.5},
    }
    text = CliRunner().invoke(main, ["report", str(out)]).output
    assert "http://gpu0:8000: 2 ok, 1 error, mean 2.00 s" in text


def test_many_error_groups_and_control_characters_in_the_terminal(tmp_path):
    """Unique codes make many groups: the terminal lists 20 and says how many more; a
    server's escape sequences and a line that is no result are shown safely, and named."""
    out = tmp_path / "out.jsonl"
    rows = [
        Result(f"e{i}", "error", 1, None,
               {"type": "http_error", "status": 400, "code": f"c{i}",
                "message": "bad \x1b[31mred\x1b[0m"}, i).to_line()
        for i in range(30)
    ]  # fmt: skip
    out.write_bytes(b"".join(rows) + b"{torn")
    text = CliRunner().invoke(main, ["report", str(out)]).output
    assert "... and 10 more groups" in text
    assert "\x1b[31m" not in text
    assert "bad ?[31mred?[0m" in text
    assert f"1 lines are not results (skipped): {out}:31" in text


def test_the_minute_chart_shows_quiet_minutes_as_gaps():
    """A pause in a run shows in the chart: minutes without results count 0."""
    from netfly_batch.outputs.report_text import minute_counts

    counts = minute_counts({"2026-01-01T10:00": 5, "2026-01-01T10:03": 2})
    assert counts == [5, 0, 0, 2]
    assert chart(counts).startswith("█  ")
