"""`netfly-batch report`: what a run did, in numbers, in the terminal (and as JSON)."""

from __future__ import annotations

import sys

import click

from .process import (
    EXIT_CANNOT_START,
    EXIT_OK,
    EXIT_USAGE,
    GC_YOUNG_THRESHOLD,
    exit_3_on_file_errors,
    fail,
    prompts_file,
    result_files,
)


@click.command()
@result_files
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE",
    help="Also write the numbers as JSON to FILE.",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE",
    help="Also write one self-contained HTML page with charts to FILE (needs the `report` "
    "extra: pip install 'netfly-batch[report]').",
)
@prompts_file("count its ids with no result yet (work left).")
@click.option(
    "--price-in",
    type=click.FloatRange(0),
    default=None,
    metavar="USD",
    help="USD per million prompt tokens (to show the cost).",
)
@click.option(
    "--price-out",
    type=click.FloatRange(0),
    default=None,
    metavar="USD",
    help="USD per million completion tokens.",
)
def report(
    sources: tuple[str, ...],
    json_path: str | None,
    html_path: str | None,
    input_path: str | None,
    id_field: str | None,
    price_in: float | None,
    price_out: float | None,
) -> None:
    """Report on result files (one run, shards, merged or not): counts, errors by kind,
    attempts, latency, tokens and cost, time.

    \b
    Exit codes: 0 reported; 2 --html without matplotlib; 3 a file cannot be read or
    written.

    \b
    Example:
      netfly-batch report out.jsonl --input prompts.jsonl --price-in 0.15 --price-out 0.6
      netfly-batch report out.*-of-8.jsonl --html report.html
    """
    import gc
    from pathlib import Path

    import orjson

    from ..outputs.report import build_report
    from ..outputs.report_text import render

    if html_path:
        from ..outputs.report_html import missing_extra

        problem = missing_extra()
        if problem:
            fail(problem)
            sys.exit(EXIT_USAGE)
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)  # a parsed line per result: collect less often
    with exit_3_on_file_errors():
        built = build_report(
            [Path(s) for s in sources], Path(input_path) if input_path else None, id_field
        )
    data = built.as_dict(price_in, price_out)
    click.echo(render(data, colour=sys.stdout.isatty()))
    if json_path:
        _write(json_path, orjson.dumps(data, option=orjson.OPT_INDENT_2))
    if html_path:
        from ..outputs.report_html import render_page

        _write(html_path, render_page(data, list(sources)).encode())
    sys.exit(EXIT_OK)


def _write(path: str, content: bytes) -> None:
    from pathlib import Path

    try:
        Path(path).write_bytes(content)
    except OSError as error:
        fail(f"cannot write {path}: {error.strerror}")
        sys.exit(EXIT_CANNOT_START)
