"""A report's numbers (`RunReport.as_dict()`) as text for a terminal: aligned, with colour
when asked, and a compact chart of results per minute. Pure."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import click

BARS = " ▁▂▃▄▅▆▇█"
CHART_WIDTH = 60
STATUS_COLOURS = {"ok": "green", "error": "red", "invalid": "yellow"}
MAX_FILLED_MINUTES = 60 * 24 * 92  # a chart over more than a quarter skips empty minutes
MAX_GROUPS_SHOWN = 20  # error groups listed; --json has every one
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def render(data: dict[str, Any], colour: bool = False) -> str:
    """The whole report."""

    def head(text: str) -> str:
        return click.style(text, bold=True) if colour else text

    def tint(text: str, status: str) -> str:
        hue = STATUS_COLOURS.get(status)
        return click.style(text, fg=hue) if colour and hue else text

    lines = [head(f"{data['results']} results")]
    for status, item in data["by_status"].items():
        lines.append("  " + tint(f"{status:8} {item['count']:>9}  {item['share']:6.1%}", status))
    if data["left_to_do"] is not None:
        lines.append(f"  {'to do':8} {data['left_to_do']:>9}  (input ids with no result)")
    if data["unreadable_lines"]:
        lines.append(f"  {data['unreadable_lines']} lines are not results (skipped): "
                     + ", ".join(data["unreadable_examples"])
                     + (", ..." if data["unreadable_lines"] > len(data["unreadable_examples"])
                        else ""))  # fmt: skip
    if data["error_groups"]:
        lines += ["", head("errors, largest group first")]
        groups = data["error_groups"]
        for group in groups[:MAX_GROUPS_SHOWN]:
            kind = " ".join(
                str(part)
                for part in (group["type"], group["status"], group["code"])
                if part is not None
            )
            lines.append(
                f"  {group['count']:>9}  {_plain(kind)}: e.g. {_plain(group['example_id'])}: "
                f"{_short(group['example_message'])}"
            )
        if len(groups) > MAX_GROUPS_SHOWN:
            lines.append(f"  ... and {len(groups) - MAX_GROUPS_SHOWN} more groups (--json has all)")
    if data["attempts"]:
        spread = ", ".join(f"{k}: {v}" for k, v in data["attempts"].items())
        lines += ["", head("attempts"), f"  {spread}  ({data['retried_share']:.1%} needed a retry)"]
    latency = data["latency_s"]
    if latency["p50"] is not None:
        lines += [
            "",
            head("latency (elapsed_s)"),
            "  "
            + "  ".join(
                f"{name} {seconds_text(latency[name])}" for name in ("p50", "p90", "p99", "max")
            ),
            "  slowest: "
            + ", ".join(
                f"{_plain(s['id'])} ({seconds_text(s['elapsed_s'])})" for s in data["slowest"]
            ),
        ]
    if data["tokens"]:
        tokens = data["tokens"]
        per = data["tokens_per_result"]
        lines += ["", head("tokens")]
        for name in ("prompt", "completion", "reasoning", "total"):
            if name in tokens:
                lines.append(f"  {name:10} {tokens[name]:>12,}  {per.get(name, 0):>9,.1f} a result")
        if data["cost_usd"] is not None:
            lines.append(f"  cost       {data['cost_usd']:>12,.4f} USD")
    if data["first_finished_at"]:
        lines += [
            "",
            head("time"),
            f"  {data['first_finished_at']} .. {data['last_finished_at']}",
            f"  results a minute: {chart(minute_counts(data['per_minute']))}",
            "  models: " + _models(data["models"]),
        ]
    if data["endpoints"]:
        lines += ["", head("endpoints")]
        lines += [f"  {endpoint_text(url, item)}" for url, item in data["endpoints"].items()]
    return "\n".join(lines)


def chart(counts: list[int], width: int = CHART_WIDTH) -> str:
    """A one-line bar chart of `counts` (grouped to at most `width` bars), with its peak."""
    if not counts:
        return ""
    size = -(-len(counts) // width)
    groups = [sum(counts[i : i + size]) for i in range(0, len(counts), size)]
    peak = max(groups) or 1
    bars = "".join(BARS[round(value / peak * (len(BARS) - 1))] for value in groups)
    per = "minute" if size == 1 else f"{size} minutes"
    return f"{bars}  (peak {peak} a {per})"


def minute_counts(per_minute: dict[str, int]) -> list[int]:
    """Results of each minute from the first to the last, the empty ones as 0 (kept
    sparse when that span is longer than `MAX_FILLED_MINUTES`)."""
    try:
        minutes = {_minute(stamp): count for stamp, count in per_minute.items()}
    except ValueError:
        return list(per_minute.values())
    if not minutes or max(minutes) - min(minutes) > MAX_FILLED_MINUTES:
        return list(per_minute.values())
    return [minutes.get(m, 0) for m in range(min(minutes), max(minutes) + 1)]


def _minute(stamp: str) -> int:
    """ "YYYY-MM-DDTHH:MM" (UTC) as minutes since 1970."""
    moment = datetime.fromisoformat(stamp).replace(tzinfo=UTC)
    return int(moment.timestamp()) // 60


def endpoint_text(url: str, item: dict[str, Any]) -> str:
    """`url: 120 ok, 2 error, mean 1.20 s`."""
    return (
        f"{_plain(url)}: {item['ok']:,} ok, {item['error']:,} error, "
        f"mean {seconds_text(item['mean_elapsed_s'])}"
    )


def _models(models: dict[str, int]) -> str:
    return ", ".join(f"{_plain(model)} ({count})" for model, count in models.items())


def seconds_text(value: float | None) -> str:
    """`340 ms`, `2.41 s`, or `-` for none."""
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _plain(text: object) -> str:
    """`text` with control characters (a server's escape sequences) shown as `?`."""
    return _CONTROL.sub("?", str(text))


def _short(text: str, limit: int = 100) -> str:
    text = _plain(" ".join(str(text).split()))
    return text if len(text) <= limit else text[: limit - 3] + "..."
