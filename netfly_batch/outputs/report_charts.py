"""The report's charts as SVG text, drawn by matplotlib (the `report` extra) from the
numbers of `RunReport.as_dict()`: results over time by status, latency, attempts, errors
by kind and tokens per result.

matplotlib is imported here only, and this module only when a page is asked for, so
`netfly-batch --help` and the terminal report never pay for it. Figures are drawn on an
Agg canvas (never a window) and saved as SVG with text kept as text (escaped by
matplotlib; `$` is not read as math) and ids salted per chart, so several SVGs share one
page without clashing.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from matplotlib.axes import Axes

T = TypeVar("T")

STATUS_COLOURS = {"ok": "#2f9e60", "error": "#d9434b", "invalid": "#e3a21a"}
OTHER_COLOUR = "#8c96a3"
ACCENT = "#3f6fb5"
SECOND = "#9a5bc4"
FIGSIZE_IN = (6.4, 3.0)
WIDE_FIGSIZE_IN = (12.8, 3.0)  # results over time: the whole width of the page
LATENCY_DISPLAY_BINS_PER_DECADE = 20  # the report's 100 bins a decade, five to a bar
MAX_ERROR_BARS = 8
MAX_ATTEMPT_BARS = 16  # more distinct attempt counts: the largest ones share the last bar
STYLE: dict[str, Any] = {
    "date.epoch": "1970-01-01T00:00:00",  # x of the time chart: days since then
    "svg.fonttype": "none",  # text stays text: small, sharp, searchable
    "text.parse_math": False,  # a `$` in an error code is a dollar sign
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#9aa3ad",
    "axes.labelcolor": "#3b4452",
    "xtick.color": "#3b4452",
    "ytick.color": "#3b4452",
    "axes.grid": True,
    "grid.color": "#e6e9ee",
    "grid.linewidth": 0.8,
    "axes.axisbelow": True,
    "legend.frameon": False,
}
_SVG_PROLOGUE = re.compile(r"^.*?(?=<svg\b)", re.DOTALL)
_SVG_ROOT_ATTRIBUTES = re.compile(r'\s(?:xmlns(?::\w+)?|width|height)="[^"]*"')


def charts(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(key, caption, svg) of every chart, in page order; the first one is wide."""
    over_time = data["over_time"]
    width = _duration(over_time["bin_s"])
    over_time_caption = f"Results over time, by status (per {width})"
    return [
        ("over-time", over_time_caption, _svg(data, _over_time, WIDE_FIGSIZE_IN)),
        ("latency", "Latency (elapsed_s), log scale", _svg(data, _latency)),
        ("attempts", "Attempts per result", _svg(data, _attempts)),
        ("errors", "Errors by kind", _svg(data, _errors)),
        ("tokens", "Tokens per result, log scale", _svg(data, _tokens)),
    ]


def _svg(
    data: dict[str, Any],
    draw: Callable[[Axes, dict[str, Any]], None],
    size_in: tuple[float, float] = FIGSIZE_IN,
) -> str:
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rc: Any = {**STYLE, "svg.hashsalt": f"netfly-{draw.__name__}"}  # its keys are Literals
    with matplotlib.rc_context(rc):
        figure = Figure(figsize=size_in, layout="constrained")
        FigureCanvasAgg(figure)
        draw(figure.add_subplot(), data)
        out = io.StringIO()
        metadata = {"Date": None, "Creator": None, "Format": None, "Type": None}
        figure.savefig(out, format="svg", metadata=metadata)
    svg = _SVG_PROLOGUE.sub("", out.getvalue(), count=1)
    head, _, body = svg.partition(">")
    return _SVG_ROOT_ATTRIBUTES.sub("", head) + ' role="img">' + body


def _nothing(axes: Axes, text: str) -> None:
    axes.set_axis_off()
    axes.text(0.5, 0.5, text, ha="center", va="center", color="#6b7583", fontsize=11,
              transform=axes.transAxes)  # fmt: skip


def _over_time(axes: Axes, data: dict[str, Any]) -> None:
    import matplotlib.dates as mdates

    over_time = data["over_time"]
    if not over_time["starts"]:
        _nothing(axes, "no finished_at times")
        return
    # matplotlib's dates end at year 9999: bins past 9000 (a wrong clock) are left out
    shown = [i for i, s in enumerate(over_time["starts"]) if s < "9000"]
    starts = [datetime.fromisoformat(over_time["starts"][i]).timestamp() / 86_400 for i in shown]
    width_days = over_time["bin_s"] / 86_400
    bottom = [0] * len(starts)
    for status, all_counts in status_order(over_time["by_status"]):
        counts = [all_counts[i] for i in shown]
        axes.bar(starts, counts, width=width_days, bottom=bottom, align="edge", label=status,
                 color=STATUS_COLOURS.get(status, OTHER_COLOUR), linewidth=0)  # fmt: skip
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    # matplotlib.dates has no annotations on these two
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)  # type: ignore[no-untyped-call]
    formatter = mdates.ConciseDateFormatter(locator)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(formatter)
    axes.set_ylabel("results")
    axes.set_xlabel("finished_at (UTC)")
    axes.legend(loc="upper left", ncols=3, fontsize=8)
    axes.margins(x=0.01)


def status_order(by_status: dict[str, T]) -> list[tuple[str, T]]:
    """The items of a dict by status: ok, error, invalid, then any other status."""
    known = [s for s in STATUS_COLOURS if s in by_status]
    return [(s, by_status[s]) for s in known + sorted(set(by_status) - set(known))]


def _latency(axes: Axes, data: dict[str, Any]) -> None:
    latency = data["latency_s"]
    pairs = latency["histogram"]
    if not pairs:
        _nothing(axes, "no elapsed_s")
        return
    edges, counts = _log_bars(pairs, LATENCY_DISPLAY_BINS_PER_DECADE)
    axes.stairs(counts, edges, fill=True, color=ACCENT, alpha=0.85)
    _log_x(axes, _seconds)
    for name, style in (("p50", "-"), ("p90", "--"), ("p99", ":")):
        value = latency[name]
        axes.axvline(value, color="#1d2530", linestyle=style, linewidth=1,
                     label=f"{name} {_seconds(value)}")  # fmt: skip
    axes.legend(loc="upper right", fontsize=8)
    axes.set_xlabel("seconds from the first attempt to the result")
    axes.set_ylabel("results")


def _log_bars(pairs: list[list[float]], per_decade: int) -> tuple[list[float], list[int]]:
    """Regroup [upper edge, count] pairs of a fine log histogram into `per_decade` bars a
    decade: (edges, counts), every bar from the first to the last, empty ones included."""
    grouped: dict[int, int] = {}
    for upper, count in pairs:
        index = math.ceil(round(math.log10(upper) * per_decade, 6))
        grouped[index] = grouped.get(index, 0) + int(count)
    first, last = min(grouped), max(grouped)
    edges = [10 ** ((k - 1) / per_decade) for k in range(first, last + 2)]
    return edges, [grouped.get(k, 0) for k in range(first, last + 1)]


def _attempts(axes: Axes, data: dict[str, Any]) -> None:
    attempts = {int(k): v for k, v in data["attempts"].items()}
    if not attempts:
        _nothing(axes, "no attempts recorded")
        return
    values = list(range(min(attempts), max(attempts) + 1))
    if len(values) > MAX_ATTEMPT_BARS:  # a few huge counts: only those seen, the tail as one
        values = sorted(attempts)
    labels = [str(x) for x in values[: MAX_ATTEMPT_BARS - 1]]
    counts = [attempts.get(x, 0) for x in values[: MAX_ATTEMPT_BARS - 1]]
    if len(values) >= MAX_ATTEMPT_BARS:
        labels.append(f"{values[MAX_ATTEMPT_BARS - 1]}+")
        counts.append(sum(attempts[x] for x in values[MAX_ATTEMPT_BARS - 1 :] if x in attempts))
    colours = [STATUS_COLOURS["ok"] if label == "1" else STATUS_COLOURS["invalid"]
               for label in labels]  # fmt: skip
    xs = list(range(len(labels)))
    bars = axes.bar(xs, counts, color=colours, width=0.7)
    axes.bar_label(bars, labels=[f"{c:,}" if c else "" for c in counts], fontsize=8, padding=2)
    axes.set_xticks(xs, labels)
    axes.set_xlabel("attempts (HTTP requests) a result cost")
    axes.set_ylabel("results")
    axes.margins(y=0.15)


def _errors(axes: Axes, data: dict[str, Any]) -> None:
    groups = data["error_groups"]
    if not groups:
        _nothing(axes, "no errors")
        return
    shown = groups[:MAX_ERROR_BARS]
    labels = [error_kind(group) for group in shown]
    counts = [group["count"] for group in shown]
    rest = sum(group["count"] for group in groups[MAX_ERROR_BARS:])
    if rest:
        labels.append(f"{len(groups) - MAX_ERROR_BARS} other kinds")
        counts.append(rest)
    labels = [label if len(label) <= 40 else label[:39] + "…" for label in labels]
    positions = list(range(len(labels)))[::-1]
    bars = axes.barh(positions, counts, color=STATUS_COLOURS["error"], height=0.6)
    axes.bar_label(bars, labels=[f"{c:,}" for c in counts], fontsize=8, padding=3)
    axes.set_yticks(positions, labels)
    axes.set_xlabel("results")
    axes.grid(axis="y", visible=False)
    axes.margins(x=0.12)


def error_kind(group: dict[str, Any]) -> str:
    """`http_error 503 rate_limited`: the type, HTTP status and code that are set."""
    parts = (group["type"], group["status"], group["code"])
    return " ".join(str(part) for part in parts if part is not None)


def _tokens(axes: Axes, data: dict[str, Any]) -> None:
    histogram = data["tokens_histogram"]
    drawn = False
    for name, colour in (("prompt", ACCENT), ("completion", SECOND)):
        pairs = histogram[name]
        if pairs:
            edges, counts = _log_bars(pairs, 10)
            axes.stairs(counts, edges, fill=True, alpha=0.55, color=colour, label=name)
            drawn = True
    if not drawn:
        _nothing(axes, "no usage reported")
        return
    _log_x(axes, _count)
    axes.set_xlabel("tokens in one result (usage)")
    axes.set_ylabel("results")
    axes.legend(loc="upper right", fontsize=8)


def _log_x(axes: Axes, label: Callable[[float], str]) -> None:
    """A log x axis labelled at 1, 2 and 5 of each decade by `label` (matplotlib's own
    labels are math, which the page does not parse)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axes.set_xscale("log")
    axes.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: label(value)))
    axes.xaxis.set_minor_formatter(NullFormatter())


def _count(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1e6:g}M"
    return f"{value / 1e3:g}k" if value >= 1000 else f"{value:g}"


def _seconds(value: float) -> str:
    if value < 1:
        return f"{value * 1000:.3g} ms"
    return f"{value:.3g} s"


def _duration(seconds: int) -> str:
    """`second`, `5 s`, `minute`, `30 min`, `hour`, `6 h`, `day`, `2 days`."""
    for name, short, size in (("day", "days", 86_400), ("hour", "h", 3600), ("minute", "min", 60)):
        if seconds >= size and seconds % size == 0:
            return name if seconds == size else f"{seconds // size} {short}"
    return "second" if seconds == 1 else f"{seconds} s"
