"""`netfly-batch report`: what a run did, in numbers (for the terminal, JSON and HTML).

Reads one or many OUT files as `merge` does (the latest result per id wins: one packed
int per id, `read.select_latest`), then reads the kept lines once, in file order, into
fixed-size aggregates: counts, error groups, an attempts histogram, log-spaced histograms
of latency (quantiles are accurate to a bin, about 2%) and of tokens per result, token
sums, the five slowest results, results per minute and per time bin by status. No list
of results is ever held.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..batch.inputs import input_lines
from ..batch.prompts import line_ids
from .read import select_latest
from .tallies import LogHistogram, Timeline

LATENCY_BINS_PER_DECADE = 100  # bin edges 10**(k/100) s: quantiles within about 2.3 %
LATENCY_MIN_S = 1e-3
TOKEN_BINS_PER_DECADE = 20
SLOWEST = 5
MAX_ELAPSED_S = 1e7  # a larger elapsed_s (115 days) is no latency: left out


@dataclass(slots=True)
class ErrorGroup:
    """Errors of one (type, HTTP status, code): how many, and one example."""

    count: int
    example_id: str
    example_message: str


@dataclass(slots=True)
class RunReport:
    """The numbers of a report; `as_dict()` is its JSON."""

    files: int = 0
    unreadable_lines: int = 0
    unreadable_examples: list[str] = field(default_factory=list)  # file:line of the first few
    by_status: Counter[str] = field(default_factory=Counter)
    errors: dict[tuple[str, Any, Any], ErrorGroup] = field(default_factory=dict)
    attempts: Counter[int] = field(default_factory=Counter)
    latency: LogHistogram = field(
        default_factory=lambda: LogHistogram(LATENCY_BINS_PER_DECADE, LATENCY_MIN_S)
    )
    slowest: list[tuple[float, str]] = field(default_factory=list)  # a min-heap of 5
    tokens: Counter[str] = field(default_factory=Counter)
    with_usage: int = 0
    prompt_tokens: LogHistogram = field(
        default_factory=lambda: LogHistogram(TOKEN_BINS_PER_DECADE, 1)
    )
    completion_tokens: LogHistogram = field(
        default_factory=lambda: LogHistogram(TOKEN_BINS_PER_DECADE, 1)
    )
    models: Counter[str] = field(default_factory=Counter)
    # per server (the `endpoint` field): [ok, error, seconds summed]
    endpoints: dict[str, list[float]] = field(default_factory=dict)
    timeline: Timeline = field(default_factory=Timeline)
    left_to_do: int | None = None  # input ids with no result (with --input)

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    def as_dict(
        self, price_in: float | None = None, price_out: float | None = None
    ) -> dict[str, Any]:
        total = self.total
        groups = sorted(self.errors.items(), key=lambda item: -item[1].count)
        latency = self.latency
        return {
            "results": total,
            "by_status": {
                s: {"count": n, "share": round(n / total, 4) if total else 0.0}
                for s, n in sorted(self.by_status.items())
            },
            "left_to_do": self.left_to_do,
            "unreadable_lines": self.unreadable_lines,
            "unreadable_examples": self.unreadable_examples,
            "error_groups": [
                {
                    "type": t,
                    "status": s,
                    "code": c,
                    "count": g.count,
                    "example_id": g.example_id,
                    "example_message": g.example_message,
                }
                for (t, s, c), g in groups
            ],
            "attempts": {str(k): v for k, v in sorted(self.attempts.items())},
            "retried_share": round(
                sum(v for k, v in self.attempts.items() if k > 1)
                / max(1, sum(self.attempts.values())),
                4,
            ),
            "latency_s": {
                "p50": latency.quantile(0.5),
                "p90": latency.quantile(0.9),
                "p99": latency.quantile(0.99),
                "max": latency.max or None,
                "method": f"histogram, {LATENCY_BINS_PER_DECADE} log bins a decade",
                "histogram": latency.as_pairs(),
            },
            "slowest": [{"id": i, "elapsed_s": s} for s, i in sorted(self.slowest, reverse=True)],
            "tokens": dict(self.tokens),
            "tokens_per_result": {k: round(v / self.with_usage, 1) for k, v in self.tokens.items()}
            if self.with_usage
            else {},
            "tokens_histogram": {
                "prompt": self.prompt_tokens.as_pairs(),
                "completion": self.completion_tokens.as_pairs(),
                "method": f"{TOKEN_BINS_PER_DECADE} log bins a decade",
            },
            "cost_usd": self.cost(price_in, price_out),
            "first_finished_at": self.timeline.first_at,
            "last_finished_at": self.timeline.last_at,
            "per_minute": self.timeline.per_minute,
            "over_time": self.timeline.bins.as_dict(),
            "models": dict(self.models.most_common()),
            "endpoints": {
                url: {
                    "ok": int(ok),
                    "error": int(error),
                    "mean_elapsed_s": round(seconds / (ok + error), 3) if ok + error else None,
                }
                for url, (ok, error, seconds) in sorted(
                    self.endpoints.items(), key=lambda item: -(item[1][0] + item[1][1])
                )
            },
        }

    def cost(self, price_in: float | None, price_out: float | None) -> float | None:
        """USD for the tokens at prices per million (None without prices)."""
        if price_in is None and price_out is None:
            return None
        return round(
            (self.tokens["prompt"] * (price_in or 0) + self.tokens["completion"] * (price_out or 0))
            / 1e6,
            6,
        )


def build_report(
    sources: list[Path], input_path: Path | None = None, id_field: str | None = None
) -> RunReport:
    """Read `sources` (and `input_path`'s ids, as `--id-field id_field` reads them) into a
    `RunReport`."""
    selection = select_latest(sources)
    report = RunReport(
        files=len(sources),
        unreadable_lines=selection.unreadable_lines,
        unreadable_examples=selection.unreadable_examples,
    )
    for line in selection.kept_lines(answered_ids_only_once=True):
        _add(report, orjson.loads(line))
    report.timeline.close()
    if input_path is not None:
        with input_lines(str(input_path)) as lines:  # a set as large as the work left
            report.left_to_do = len(selection.ids_without_result(line_ids(lines, id_field)))
    return report


def _add(report: RunReport, row: dict[str, Any]) -> None:
    """Count one result: inlined and branch-light, as it runs once per kept result."""
    status = row.get("status")
    if type(status) is not str:
        status = str(status)
    report.by_status[status] += 1
    prompt_id = row.get("id")
    if type(prompt_id) is not str:
        prompt_id = str(prompt_id)
    if status == "error":
        _add_error(report, row.get("error"), prompt_id)
    if status != "invalid":
        attempts = row.get("attempts")
        if type(attempts) is int:
            report.attempts[attempts] += 1
        elapsed = row.get("elapsed_s")
        if type(elapsed) is float or type(elapsed) is int:
            _add_latency(report, elapsed, prompt_id)
    usage = row.get("usage")
    if type(usage) is dict:
        _add_usage(report, usage)
    model = row.get("model")
    if status == "ok" and type(model) is str:
        report.models[model] += 1
    endpoint = row.get("endpoint")
    if type(endpoint) is str and status != "invalid":
        _add_endpoint(report, endpoint, status, row.get("elapsed_s"))
    stamp = row.get("finished_at")
    if type(stamp) is str and len(stamp) >= 16:
        report.timeline.add(stamp, status)


def _add_endpoint(report: RunReport, endpoint: str, status: str, elapsed: object) -> None:
    counts = report.endpoints.get(endpoint)
    if counts is None:
        counts = report.endpoints[endpoint] = [0, 0, 0.0]
    counts[0 if status == "ok" else 1] += 1
    if type(elapsed) is float or type(elapsed) is int:
        counts[2] += elapsed


def _add_error(report: RunReport, error: object, prompt_id: str) -> None:
    if not isinstance(error, dict):
        error = {}
    key = (str(error.get("type")), _scalar(error.get("status")), _scalar(error.get("code")))
    group = report.errors.get(key)
    if group is None:
        report.errors[key] = ErrorGroup(1, prompt_id, str(error.get("message", "")))
    else:
        group.count += 1


def _add_latency(report: RunReport, elapsed: float, prompt_id: str) -> None:
    if not 0 <= elapsed <= MAX_ELAPSED_S:  # not a time a request took (NaN included)
        return
    seconds = float(elapsed)
    report.latency.add(seconds)
    slowest = report.slowest
    if len(slowest) < SLOWEST:
        heapq.heappush(slowest, (seconds, prompt_id))
    elif seconds > slowest[0][0]:
        heapq.heapreplace(slowest, (seconds, prompt_id))


def _add_usage(report: RunReport, usage: dict[str, Any]) -> None:
    report.with_usage += 1
    tokens = report.tokens
    value = usage.get("prompt_tokens")
    if type(value) is int:
        tokens["prompt"] += value
        report.prompt_tokens.add(value)
    value = usage.get("completion_tokens")
    if type(value) is int:
        tokens["completion"] += value
        report.completion_tokens.add(value)
    value = usage.get("total_tokens")
    if type(value) is int:
        tokens["total"] += value
    details = usage.get("completion_tokens_details")
    if type(details) is dict:
        value = details.get("reasoning_tokens")
        if type(value) is int:
            tokens["reasoning"] += value


def _scalar(value: object) -> object:
    """`value` if it can be part of a group's key, else its JSON text (a list, an object)."""
    return orjson.dumps(value).decode() if isinstance(value, dict | list) else value
