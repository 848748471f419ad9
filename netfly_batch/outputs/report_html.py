"""A report's numbers (`RunReport.as_dict()`) as one self-contained HTML page: summary
cards, the charts of `report_charts` inlined as SVG, the error groups and the slowest
results. No network: no script, style, font or image is fetched. Every string that
comes from the data (ids, messages, models, file names) is escaped here; chart text is
escaped by matplotlib.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any

from .report_charts import STATUS_COLOURS, charts, error_kind, status_order
from .report_text import endpoint_text, seconds_text

INSTALL_HINT = "pip install 'netfly-batch[report]'"
MAX_MESSAGE_CHARS = 300
MAX_TABLE_GROUPS = 50  # error groups in the page's table; --json has every one


def missing_extra() -> str | None:
    """Why a page cannot be made (matplotlib is not installed), or None."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return f"--html needs matplotlib, which is not installed: {INSTALL_HINT}"
    return None


def render_page(data: dict[str, Any], sources: list[str]) -> str:
    """The whole page."""
    title = "netfly-batch report: " + (sources[0] if len(sources) == 1 else f"{len(sources)} files")
    figures = "\n".join(
        f'<figure class="chart{" wide" if n == 0 else ""}" id="chart-{key}">'
        f"<figcaption>{escape(caption)}</figcaption>{svg}</figure>"
        for n, (key, caption, svg) in enumerate(charts(data))
    )
    return PAGE.format(
        title=escape(title),
        sources=", ".join(f"<code>{escape(s)}</code>" for s in sources),
        span=_span(data),
        share_bar=_share_bar(data),
        cards="\n".join(_cards(data)),
        charts=figures,
        errors=_error_table(data),
        slowest=_slowest_table(data),
        notes=_notes(data),
        style=STYLE,
        script=SCRIPT,
    )


def _cards(data: dict[str, Any]) -> list[str]:
    total = data["results"]
    cards = [_card("results", f"{total:,}", "", "total")]
    for status, item in status_order(data["by_status"]):
        cards.append(_card(status, f"{item['count']:,}", f"{item['share']:.1%} of results",
                           "status", STATUS_COLOURS.get(status)))  # fmt: skip
    if data["left_to_do"] is not None:
        cards.append(_card("to do", f"{data['left_to_do']:,}", "input ids with no result"))
    if data["attempts"]:
        spread = sum(int(k) * v for k, v in data["attempts"].items())
        cards.append(_card("needed a retry", f"{data['retried_share']:.1%}",
                           f"{spread:,} attempts in all"))  # fmt: skip
    latency = data["latency_s"]
    if latency["p50"] is not None:
        detail = " · ".join(f"{q} {seconds_text(latency[q])}" for q in ("p90", "p99", "max"))
        cards.append(_card("latency p50", seconds_text(latency["p50"]), detail))
    tokens, per = data["tokens"], data["tokens_per_result"]
    if tokens:
        parts = [f"{tokens[n]:,} {n}" for n in ("prompt", "completion", "reasoning") if n in tokens]
        cards.append(_card("tokens", f"{tokens.get('total', 0):,}", " · ".join(parts)))
        per_parts = [f"{per[n]:,.1f} {n}" for n in ("prompt", "completion") if n in per]
        cards.append(_card("tokens a result", f"{per.get('total', 0):,.1f}", " · ".join(per_parts)))
    if data["cost_usd"] is not None:
        cards.append(_card("cost", f"${data['cost_usd']:,.4f}", "at the prices given"))
    rate = _rate(data)
    if rate:
        cards.append(_card("throughput", rate[0], rate[1]))
    if data["models"]:
        models = ", ".join(f"{m} ({n:,})" for m, n in data["models"].items())
        cards.append(_card("models", str(len(data["models"])), models))
    if data["endpoints"]:
        names = " · ".join(endpoint_text(url, item) for url, item in data["endpoints"].items())
        cards.append(_card("endpoints", str(len(data["endpoints"])), names))
    return cards


def _card(label: str, value: str, detail: str, kind: str = "", colour: str | None = None) -> str:
    style = f' style="--tint: {colour}"' if colour else ""
    return (
        f'<div class="card {kind}"{style}><div class="label">{escape(label)}</div>'
        f'<div class="value">{escape(value)}</div><div class="detail">{escape(detail)}</div></div>'
    )


def _share_bar(data: dict[str, Any]) -> str:
    parts = []
    for status, item in status_order(data["by_status"]):
        colour = STATUS_COLOURS.get(status, "#8c96a3")
        tip = escape(f"{status}: {item['count']:,} ({item['share']:.1%})")
        parts.append(
            f'<span style="flex-grow: {item["count"]}; background: {colour}" title="{tip}"></span>'
        )
    return f'<div class="share-bar" aria-hidden="true">{"".join(parts)}</div>' if parts else ""


def _span(data: dict[str, Any]) -> str:
    first, last = data["first_finished_at"], data["last_finished_at"]
    if not first:
        return ""
    return f"finished {escape(first)} → {escape(last)}"


def _rate(data: dict[str, Any]) -> tuple[str, str] | None:
    try:
        first, last = (_utc(data[key]) for key in ("first_finished_at", "last_finished_at"))
    except (TypeError, ValueError):
        return None
    seconds = (last - first).total_seconds()
    if seconds <= 0:
        return None
    per_minute = data["results"] / seconds * 60
    return f"{per_minute:,.0f}/min", f"over {seconds_text(seconds)} (first to last result)"


def _error_table(data: dict[str, Any]) -> str:
    groups = data["error_groups"]
    if not groups:
        return '<p class="empty">No errors.</p>'
    errors = sum(group["count"] for group in groups) or 1
    more = len(groups) - MAX_TABLE_GROUPS
    groups = groups[:MAX_TABLE_GROUPS]
    rows = "\n".join(
        f'<tr><td class="num">{g["count"]:,}</td><td class="num">{g["count"] / errors:.1%}</td>'
        f"<td><code>{escape(error_kind(g))}</code></td><td><code>{escape(g['example_id'])}</code>"
        f'</td><td class="message">{escape(_short(g["example_message"]))}</td></tr>'
        for g in groups
    )
    return (
        '<div class="table-wrap"><table id="error-groups"><thead><tr><th class="num">results'
        '</th><th class="num">share</th><th>kind (type, HTTP status, code)</th><th>example id'
        f"</th><th>example message</th></tr></thead><tbody>\n{rows}\n</tbody></table></div>"
        + (f'<p class="empty">... and {more:,} more groups (--json has every one).</p>'
           if more > 0 else "")
    )  # fmt: skip


def _slowest_table(data: dict[str, Any]) -> str:
    if not data["slowest"]:
        return ""
    rows = "".join(
        f"<tr><td><code>{escape(s['id'])}</code></td>"
        f'<td class="num">{escape(seconds_text(s["elapsed_s"]))}</td></tr>'
        for s in data["slowest"]
    )
    return (
        '<section><h2>Slowest results</h2><div class="table-wrap"><table id="slowest">'
        '<thead><tr><th>id</th><th class="num">elapsed</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></div></section>"
    )


def _notes(data: dict[str, Any]) -> str:
    notes = [
        "The latest result per id across the files (by finished_at). Latency quantiles come "
        f"from a fixed {escape(data['latency_s']['method'])}: each is within about 2.3% of the "
        "exact value.",
    ]
    if data["unreadable_lines"]:
        named = escape(", ".join(data["unreadable_examples"]))
        notes.append(f"{data['unreadable_lines']:,} lines were not results and were skipped "
                     f"({named}{', ...' if data['unreadable_lines'] > 3 else ''}).")  # fmt: skip
    return " ".join(notes)


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"


STYLE = """
:root { --ink: #1d2530; --muted: #5f6b7a; --line: #e3e7ed; --panel: #ffffff;
  --page: #f4f6f9; --tint: #3f6fb5; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--page); color: var(--ink);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 20px 40px; }
header h1 { font-size: 22px; margin: 0 0 4px; }
header p { margin: 0; color: var(--muted); font-size: 13px; overflow-wrap: anywhere; }
h2 { font-size: 16px; margin: 28px 0 10px; }
code { font: 12.5px/1.3 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.share-bar { display: flex; height: 10px; border-radius: 5px; overflow: hidden;
  margin: 16px 0 14px; background: var(--line); }
.share-bar span { min-width: 3px; }
.cards { display: grid; gap: 12px;
  grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 10px;
  padding: 12px 14px; border-top: 4px solid var(--tint); min-width: 0; }
.card.total { --tint: var(--ink); }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase;
  letter-spacing: .04em; }
.card .value { font-size: 26px; font-weight: 650; font-variant-numeric: tabular-nums;
  margin: 2px 0; overflow-wrap: anywhere; }
.card .detail { color: var(--muted); font-size: 12.5px; overflow-wrap: anywhere; }
.charts { display: grid; gap: 14px;
  grid-template-columns: repeat(auto-fit, minmax(min(100%, 520px), 1fr)); }
figure.chart { margin: 0; background: var(--panel); border: 1px solid var(--line);
  border-radius: 10px; padding: 12px 12px 6px; min-width: 0; overflow-x: auto; }
figure.chart figcaption { font-weight: 600; font-size: 14px; margin: 0 0 4px 4px; }
figure.chart svg { display: block; width: 100%; height: auto; min-width: 440px; }
figure.chart.wide { grid-column: 1 / -1; }
figure.chart.wide svg { min-width: 760px; }  /* narrower, its text is too small: scroll */
.table-wrap { overflow-x: auto; background: var(--panel); border: 1px solid var(--line);
  border-radius: 10px; }
table { border-collapse: collapse; width: 100%; font-size: 13.5px; }
th, td { text-align: left; padding: 8px 12px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 12px; text-transform: uppercase;
  letter-spacing: .03em; background: #fafbfc; }
tr:last-child td { border-bottom: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.message { overflow-wrap: anywhere; min-width: 16em; }
.empty { color: var(--muted); }
footer { margin-top: 28px; color: var(--muted); font-size: 12.5px; }
@media (max-width: 600px) {
  main { padding: 16px 12px 28px; }
  .cards { grid-template-columns: repeat(auto-fill, minmax(140px, 1fr)); gap: 8px; }
  .card .value { font-size: 21px; }
}
"""

# Marks on <html> how many charts the browser laid out and whether the page fits the
# window's width (checks for tests; nothing shown changes).
SCRIPT = """
(() => {
  let drawn = 0;
  for (const svg of document.querySelectorAll("figure.chart svg")) {
    const box = svg.getBoundingClientRect();
    if (box.width > 0 && box.height > 0 && svg.querySelector("path, text")) drawn += 1;
  }
  const root = document.documentElement;
  root.dataset.chartsRendered = String(drawn);
  root.dataset.fitsWidth = String(root.scrollWidth <= window.innerWidth);
})();
"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<main>
<header>
<h1>{title}</h1>
<p>{sources}</p>
<p>{span}</p>
</header>
{share_bar}
<section class="cards">
{cards}
</section>
<h2>Charts</h2>
<section class="charts">
{charts}
</section>
<section>
<h2>Errors by kind</h2>
{errors}
</section>
{slowest}
<footer>{notes}</footer>
</main>
<script>{script}</script>
</body>
</html>
"""


def _utc(stamp: str) -> datetime:
    """An ISO 8601 time; one without a zone is taken as UTC (as `run` writes them)."""
    moment = datetime.fromisoformat(stamp)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
