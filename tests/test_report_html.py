"""`netfly-batch report --html`: one self-contained page with charts, escaped, offline,
and checked in headless Chromium when it is installed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from html import escape
from html.parser import HTMLParser
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from netfly_batch.cli import main
from netfly_batch.outputs.report import build_report
from netfly_batch.outputs.report_html import render_page
from netfly_batch.results import Result

pytest.importorskip("matplotlib", reason="the `report` extra (matplotlib) is not installed")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHART_KEYS = ("over-time", "latency", "attempts", "errors", "tokens")
HOSTILE_ID = '<script>alert("id")</script>'
HOSTILE_MESSAGE = '<img src=x onerror="alert(1)"> see https://evil.example/x.js & more'


def ok(prompt_id: str, line: int, elapsed: float, at: str, attempts: int = 1) -> bytes:
    usage = {"prompt_tokens": 10 + line, "completion_tokens": 3 + line % 7,
             "total_tokens": 13 + line + line % 7}  # fmt: skip
    return Result(prompt_id, "ok", attempts, "x", None, line, model="m<1>", usage=usage,
                  elapsed_s=elapsed, finished_at=at, finish_reason="stop").to_line()  # fmt: skip


def failed(prompt_id: str, line: int, error: dict[str, object]) -> bytes:
    return Result(prompt_id, "error", 3, None, error, line, elapsed_s=2.5,
                  finished_at="2026-01-01T10:00:40.000Z").to_line()  # fmt: skip


def sample_out(tmp_path: Path) -> Path:
    """40 ok results over 40 s, three errors in two groups (one with a hostile id and
    message), one invalid line."""
    out = tmp_path / "out.jsonl"
    lines = [ok(f"p{i}", i, 0.1 + i / 100, f"2026-01-01T10:00:{i:02d}.000Z", 1 + i % 3)
             for i in range(40)]  # fmt: skip
    busy = {"type": "http_error", "status": 503, "code": "$busy<b>"}
    lines.append(failed(HOSTILE_ID, 41, {**busy, "message": HOSTILE_MESSAGE}))
    lines.append(failed("e2", 42, {**busy, "message": "again"}))
    lines.append(failed("e3", 43, {"type": "transport_error", "message": "dropped"}))
    lines.append(Result("7", "invalid", 0, None, {"type": "invalid_line", "message": "bad"}, 7,
                        finished_at="2026-01-01T10:00:39.000Z").to_line())  # fmt: skip
    out.write_bytes(b"".join(lines))
    return out


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> tuple[str, dict]:
    out = sample_out(tmp_path_factory.mktemp("html"))
    data = build_report([out]).as_dict(price_in=1.0, price_out=2.0)
    return render_page(data, [str(out)]), data


def test_the_page_holds_every_chart_as_inline_svg_and_the_error_table(page):
    """Five figures, each with one matplotlib SVG, and one table row per error group."""
    html, data = page
    for key in CHART_KEYS:
        figure = re.search(rf'<figure class="chart[^"]*" id="chart-{key}">(.*?)</figure>', html,
                           re.DOTALL)  # fmt: skip
        assert figure, key
        assert figure.group(1).count("<svg") == 1, key
        assert "<path" in figure.group(1), key
    table = re.search(r'<table id="error-groups">(.*?)</table>', html, re.DOTALL)
    assert table
    rows = re.findall(r"<tr><td", table.group(1))
    assert len(rows) == len(data["error_groups"]) == 2
    assert "per second" in html  # the time chart's bins fit 40 s at 1 s


def test_numbers_in_the_page_are_those_of_the_file(page):
    """Counts, shares, retries, latency, tokens and cost appear as the report computed them."""
    html, data = page
    assert data["results"] == 44
    for label, value in (("results", "44"), ("ok", "40"), ("error", "3"), ("invalid", "1")):
        assert f'<div class="label">{label}</div><div class="value">{value}</div>' in html
    assert "90.9% of results" in html  # 40 / 44
    assert f"{data['retried_share']:.1%}" in html
    p50 = data["latency_s"]["p50"]
    assert f'<div class="label">latency p50</div><div class="value">{p50 * 1000:.0f} ms' in html
    tokens = data["tokens"]
    assert tokens["prompt"] == sum(10 + i for i in range(40))
    assert f'<div class="value">{tokens["total"]:,}</div>' in html
    assert f"${data['cost_usd']:,.4f}" in html
    assert '<td class="num">2</td><td class="num">66.7%</td>' in html  # the 503 group
    assert "m&lt;1&gt; (40)" in html  # the model, escaped


class Tags(HTMLParser):
    """Every start tag of a page with its attributes, as a browser would see them."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_strings_from_the_data_are_escaped_and_nothing_is_fetched(page):
    """A hostile id, message or error code stays text; the only script is the page's own;
    no tag loads anything (no src, href, srcset or url() outside the page)."""
    html, _ = page
    assert HOSTILE_ID not in html
    assert escape(HOSTILE_ID) in html
    assert escape(HOSTILE_MESSAGE.split(" see")[0]) in html
    assert "$busy&lt;b&gt;" in html  # the code, in the table and in the chart's labels
    tags = Tags(html).tags
    names = [tag for tag, _ in tags]
    assert names.count("script") == 1
    assert not {"img", "b", "iframe", "link", "object", "embed", "base"} & set(names)
    for tag, attrs in tags:
        assert not [a for a in attrs if a.startswith("on")], tag
        for name in ("src", "href", "srcset", "action", "xlink:href"):
            assert (attrs.get(name) or "#").startswith("#"), (tag, name, attrs[name])
    assert "url(" not in html.replace("url(#", "")
    assert "@import" not in html
    assert "http://" not in html  # the SVG namespaces are dropped: HTML gives them
    assert html.count("https://") == 1  # the hostile message's text, escaped, not a link


def test_html_is_written_by_the_command_and_the_terminal_report_does_not_need_matplotlib(tmp_path):
    """--html writes the page; plain `report` and `--help` never import matplotlib."""
    out, target = sample_out(tmp_path), tmp_path / "report.html"
    result = CliRunner().invoke(main, ["report", str(out), "--html", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text().startswith("<!DOCTYPE html>")
    check = (
        "import sys; from click.testing import CliRunner; from netfly_batch.cli import main; "
        f"r = CliRunner().invoke(main, ['report', {str(out)!r}]); assert r.exit_code == 0; "
        "CliRunner().invoke(main, ['--help']); print(sorted(m for m in sys.modules "
        "if m.startswith('matplotlib')))"
    )
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).resolve().parents[1])  # fmt: skip
    assert done.stdout.strip() == "[]"


def test_html_without_matplotlib_exits_2_naming_the_extra(tmp_path, monkeypatch):
    """Without the `report` extra, --html is a usage error that says what to install,
    before any file is read."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    out, target = sample_out(tmp_path), tmp_path / "report.html"
    result = CliRunner().invoke(main, ["report", str(out), "--html", str(target)])
    assert result.exit_code == 2
    assert "pip install 'netfly-batch[report]'" in result.output
    assert "results" not in result.output  # nothing was reported
    assert not target.exists()
    assert CliRunner().invoke(main, ["report", str(out)]).exit_code == 0  # no --html: fine


def test_an_empty_report_still_draws_every_chart(tmp_path):
    """No results at all: five charts that say there is nothing to show, and no table."""
    out = tmp_path / "empty.jsonl"
    out.write_bytes(b"")
    html = render_page(build_report([out]).as_dict(), [str(out)])
    assert html.count('<figure class="chart') == 5
    assert "no errors" in html
    assert "No errors." in html


def test_odd_lines_never_crash_the_report_or_the_page(tmp_path):
    """Hand-edited or foreign lines: a superscript digit in a time, an error code that is
    an object, times with and without a zone, an absurd elapsed_s, a year-9999 clock and
    5000 attempts. The report and the page come out, at once."""
    rows = [
        {"id": "a", "status": "ok", "attempts": 1, "elapsed_s": 0.5,
         "finished_at": "2026-01-01T10:00:00.12\u00b2Z"},
        {"id": "b", "status": "error", "attempts": 2, "elapsed_s": 1.79e308,
         "error": {"type": "http_error", "status": [500], "code": {"x": 1}, "message": "m"},
         "finished_at": "2026-01-01T10:00:00"},
        {"id": "c", "status": "ok", "attempts": 5000, "elapsed_s": 1.0,
         "finished_at": "2026-01-01T10:00:05+00:00"},
        {"id": "d", "status": "ok", "attempts": 3, "elapsed_s": 1.0,
         "finished_at": "9999-12-31T23:59:59.000Z"},
    ]  # fmt: skip
    out = tmp_path / "odd.jsonl"
    out.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    html_path, json_path = tmp_path / "odd.html", tmp_path / "odd.json"
    result = CliRunner().invoke(main, ["report", str(out), "--html", str(html_path),
                                       "--json", str(json_path)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert html_path.read_text().count("<svg") >= 5
    data = orjson.loads(json_path.read_bytes())
    assert data["results"] == 4
    assert data["error_groups"][0]["code"] == '{"x":1}'
    assert len(html_path.read_bytes()) < 2_000_000  # no bar for each of 5000 attempt counts


def chromium(page_path: Path, profile: Path, width: int = 1280) -> tuple[str, str]:
    """(the DOM after scripts ran, Chromium's log with console messages)."""
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr",
               "--v=0", "--disable-dev-shm-usage", f"--window-size={width},900", "--dump-dom",
               page_path.resolve().as_uri()]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    return done.stdout, done.stderr


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
@pytest.mark.parametrize("width", [1280, 380], ids=["wide", "narrow"])
def test_chromium_renders_every_chart_without_console_errors(tmp_path, page, width):
    """Headless Chromium lays out all five charts, fits the window, and logs nothing."""
    html, _ = page
    page_path = tmp_path / "report.html"
    page_path.write_text(html)
    dom, log = chromium(page_path, tmp_path / "profile", width)
    assert 'data-charts-rendered="5"' in dom, log[-2000:]
    assert 'data-fits-width="true"' in dom
    assert ":CONSOLE" not in log, log


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_the_browser_check_sees_a_script_error(tmp_path):
    """The check above can fail: a page whose script throws shows in the log, uncounted."""
    page_path = tmp_path / "broken.html"
    page_path.write_text("<html><body><script>throw new Error('boom')</script></body></html>")
    dom, log = chromium(page_path, tmp_path / "profile")
    assert "data-charts-rendered" not in dom
    assert "Uncaught Error: boom" in log
    assert ":CONSOLE" in log  # the very mark the check above looks for


def test_the_report_json_is_what_the_page_shows(tmp_path):
    """--json and --html come from one set of numbers."""
    out = sample_out(tmp_path)
    json_path, html_path = tmp_path / "r.json", tmp_path / "r.html"
    result = CliRunner().invoke(main, ["report", str(out), "--json", str(json_path),
                                       "--html", str(html_path)])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = orjson.loads(json_path.read_bytes())
    assert render_page(data, [str(out)]) == html_path.read_text()
