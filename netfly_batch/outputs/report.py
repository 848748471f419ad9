"""`netfly-batch report`: what a run did, in numbers (the terminal part of the report).

Reads one or many OUT files as `merge` does (the latest result per id wins: one small
entry per id, `read.select_latest`), then reads the kept lines once, in file order, into
fixed-size aggregates: counts, error groups, an attempts histogram, a latency histogram
(log-spaced bins: quantiles are accurate to a bin, about 2%), token sums, the five
slowest results and results per minute. No list of results is ever held.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..batch.inputs import input_lines
from ..batch.prompts import Prompt, read_prompts
from .read import select_latest

LATENCY_BINS_PER_DECADE = 100  # bin edges 10**(k/100) s: quantiles within about 2.3 %
LATENCY_MIN_S = 1e-3
SLOWEST = 5
TOKEN_FIELDS = (
    ("prompt", "prompt_tokens"),
    ("completion", "completion_tokens"),
    ("total", "total_tokens"),
)


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
    by_status: Counter[str] = field(default_factory=Counter)
    errors: dict[tuple[str, Any, Any], ErrorGroup] = field(default_factory=dict)
    attempts: Counter[int] = field(default_factory=Counter)
    latency_bins: Counter[int] = field(default_factory=Counter)
    latency_count: int = 0
    latency_max_s: float = 0.0
    slowest: list[tuple[float, str]] = field(default_factory=list)  # a min-heap of 5
    tokens: Counter[str] = field(default_factory=Counter)
    with_usage: int = 0
    models: Counter[str] = field(default_factory=Counter)
    per_minute: Counter[str] = field(default_factory=Counter)  # "YYYY-MM-DDTHH:MM" -> results
    first_at: str | None = None
    last_at: str | None = None
    left_to_do: int | None = None  # input ids with no result (with --input)

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    def latency_quantile(self, q: float) -> float | None:
        """The q-quantile of elapsed_s, as the upper edge of its histogram bin."""
        if not self.latency_count:
            return None
        rank = max(1, math.ceil(q * self.latency_count))
        seen = 0
        for index in sorted(self.latency_bins):
            seen += self.latency_bins[index]
            if seen >= rank:
                return min(_bin_upper(index), self.latency_max_s)
        return self.latency_max_s

    def as_dict(
        self, price_in: float | None = None, price_out: float | None = None
    ) -> dict[str, Any]:
        total = self.total
        groups = sorted(self.errors.items(), key=lambda item: -item[1].count)
        return {
            "results": total,
            "by_status": {
                s: {"count": n, "share": round(n / total, 4) if total else 0.0}
                for s, n in sorted(self.by_status.items())
            },
            "left_to_do": self.left_to_do,
            "unreadable_lines": self.unreadable_lines,
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
                "p50": self.latency_quantile(0.5),
                "p90": self.latency_quantile(0.9),
                "p99": self.latency_quantile(0.99),
                "max": self.latency_max_s or None,
                "method": f"histogram, {LATENCY_BINS_PER_DECADE} log bins a decade",
            },
            "slowest": [{"id": i, "elapsed_s": s} for s, i in sorted(self.slowest, reverse=True)],
            "tokens": dict(self.tokens),
            "tokens_per_result": {k: round(v / self.with_usage, 1) for k, v in self.tokens.items()}
            if self.with_usage
            else {},
            "cost_usd": self.cost(price_in, price_out),
            "first_finished_at": self.first_at,
            "last_finished_at": self.last_at,
            "per_minute": dict(sorted(self.per_minute.items())),
            "models": dict(self.models.most_common()),
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


def build_report(sources: list[Path], input_path: Path | None = None) -> RunReport:
    """Read `sources` (and `input_path`'s ids) into a `RunReport`."""
    selection = select_latest(sources)
    report = RunReport(files=len(sources), unreadable_lines=selection.unreadable_lines)
    for line in selection.kept_lines(answered_ids_only_once=True):
        _add(report, orjson.loads(line))
    if input_path is not None:
        with input_lines(str(input_path)) as lines:
            ids = {item.id for item in read_prompts(lines) if isinstance(item, Prompt)}
        report.left_to_do = sum(1 for i in ids if i not in selection.latest)
    return report


def _add(report: RunReport, row: dict[str, Any]) -> None:
    status = str(row.get("status"))
    report.by_status[status] += 1
    prompt_id = str(row.get("id"))
    if status == "error":
        error = row.get("error") or {}
        key = (str(error.get("type")), error.get("status"), error.get("code"))
        group = report.errors.get(key)
        if group is None:
            report.errors[key] = ErrorGroup(1, prompt_id, str(error.get("message", "")))
        else:
            group.count += 1
    if status != "invalid":
        attempts = row.get("attempts")
        if isinstance(attempts, int):
            report.attempts[attempts] += 1
        _add_latency(report, row.get("elapsed_s"), prompt_id)
    usage = row.get("usage")
    if isinstance(usage, dict):
        report.with_usage += 1
        for name, field_name in TOKEN_FIELDS:
            if isinstance(usage.get(field_name), int):
                report.tokens[name] += usage[field_name]
        details = usage.get("completion_tokens_details")
        if isinstance(details, dict) and isinstance(details.get("reasoning_tokens"), int):
            report.tokens["reasoning"] += details["reasoning_tokens"]
    model = row.get("model")
    if status == "ok" and isinstance(model, str):
        report.models[model] += 1
    stamp = row.get("finished_at")
    if isinstance(stamp, str) and len(stamp) >= 16:
        report.per_minute[stamp[:16]] += 1
        report.first_at = stamp if report.first_at is None else min(report.first_at, stamp)
        report.last_at = stamp if report.last_at is None else max(report.last_at, stamp)


def _add_latency(report: RunReport, elapsed: object, prompt_id: str) -> None:
    if not isinstance(elapsed, int | float) or isinstance(elapsed, bool) or elapsed < 0:
        return
    seconds = float(elapsed)
    report.latency_count += 1
    report.latency_max_s = max(report.latency_max_s, seconds)
    index = math.ceil(math.log10(max(seconds, LATENCY_MIN_S)) * LATENCY_BINS_PER_DECADE)
    report.latency_bins[index] += 1
    if len(report.slowest) < SLOWEST:
        heapq.heappush(report.slowest, (seconds, prompt_id))
    elif seconds > report.slowest[0][0]:
        heapq.heapreplace(report.slowest, (seconds, prompt_id))


def _bin_upper(index: int) -> float:
    return float(10 ** (index / LATENCY_BINS_PER_DECADE))
