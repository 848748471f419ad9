"""`netfly-batch export`: OUT files -> an OpenAI Batch output file, JSONL or CSV."""

from __future__ import annotations

import sys

import click

from .process import EXIT_OK, exit_3_on_file_errors, result_files, status_counts

FORMATS = ("openai-batch", "jsonl", "csv")  # as outputs.export.FORMATS (imported lazily)
SORTS = ("line", "id", "none")


@click.command()
@result_files
@click.option(
    "-o",
    "--output",
    "target",
    required=True,
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Where to write the export (atomically).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="openai-batch",
    show_default=True,
    help="openai-batch: the OpenAI Batch API's output file (body: the chat.completion); "
    "jsonl: the result lines; csv: one row per result, for a spreadsheet.",
)
@click.option(
    "--errors",
    "errors_target",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE",
    help="Write every result that is not a 200 answer here instead (as OpenAI splits its "
    "output and error files).",
)
@click.option(
    "--sort",
    type=click.Choice(SORTS),
    default="line",
    show_default=True,
    help="line: input order; id: by id; none: as the files have them (completion order).",
)
def export(
    sources: tuple[str, ...], target: str, fmt: str, errors_target: str | None, sort: str
) -> None:
    """Export result files (one run, shards, or merged): the latest result per id, once.

    \b
    Exit codes: 0 written; 2 usage error; 3 a file cannot be read or written.

    \b
    Example:
      netfly-batch export out.jsonl -o batch_output.jsonl --errors batch_errors.jsonl
      netfly-batch export out.*-of-4.jsonl -o results.csv --format csv
    """
    from pathlib import Path

    from ..outputs.export import export_results

    with exit_3_on_file_errors():
        report = export_results(
            [Path(s) for s in sources],
            Path(target),
            fmt,  # type: ignore[arg-type]  # click.Choice of FORMATS
            sort,  # type: ignore[arg-type]  # click.Choice of SORTS
            Path(errors_target) if errors_target else None,
        )
    counts = status_counts(report.by_status)
    errors = f"; {report.errors_written} to {errors_target}" if errors_target else ""
    click.echo(
        f"netfly-batch: exported {report.written} results to {target} as {fmt}{errors} ({counts})",
        err=True,
    )
    if report.unreadable_lines:
        click.echo(f"netfly-batch: skipped {report.unreadable_lines} unreadable lines", err=True)
    sys.exit(EXIT_OK)
