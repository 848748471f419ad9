"""`netfly-batch merge`: several OUT files -> one, with a report on stderr."""

from __future__ import annotations

import sys

import click

from .process import (
    EXIT_MERGE_PARTIAL,
    EXIT_OK,
    EXIT_SOME_FAILED,
    exit_3_on_file_errors,
    prompts_file,
    result_files,
    status_counts,
)


@click.command()
@result_files
@click.option(
    "-o",
    "--output",
    "target",
    required=True,
    type=click.Path(dir_okay=False),
    metavar="MERGED",
    help="Where to write the merged results (atomically).",
)
@prompts_file("report its ids that no OUT answers (then exit 6).")
def merge(
    sources: tuple[str, ...], target: str, input_path: str | None, id_field: str | None
) -> None:
    """Merge result files (shard outputs or any runs): the latest result per id, one line each.

    \b
    Exit codes: 0 every result ok (and, with --input, every input id answered);
    1 some results are error/invalid; 3 a file cannot be read or written;
    6 --input names ids that no OUT answers (partial).

    \b
    Example:
      netfly-batch merge out.*-of-4.jsonl -o results.jsonl --input prompts.jsonl
    """
    from pathlib import Path

    from ..outputs.merge import merge_outputs

    with exit_3_on_file_errors():
        report = merge_outputs(
            [Path(s) for s in sources],
            Path(target),
            Path(input_path) if input_path else None,
            id_field,
        )
    counts = status_counts(report.by_status)
    click.echo(
        f"netfly-batch: merged {len(sources)} files into {target}: "
        f"{report.written} lines ({counts})",
        err=True,
    )
    if report.unreadable_lines:
        click.echo(f"netfly-batch: skipped {report.unreadable_lines} unreadable lines", err=True)
    if report.not_in_input:
        click.echo(
            f"netfly-batch: {len(report.not_in_input)} ids are in no input line: "
            f"{_some(report.not_in_input)}",
            err=True,
        )
    if report.missing:
        click.echo(
            f"netfly-batch: partial: {len(report.missing)} input ids have no result: "
            f"{_some(report.missing)}",
            err=True,
        )
        sys.exit(EXIT_MERGE_PARTIAL)
    failed = sum(n for status, n in report.by_status.items() if status != "ok")
    sys.exit(EXIT_SOME_FAILED if failed else EXIT_OK)


def _some(ids: list[str], shown: int = 5) -> str:
    more = f" (+{len(ids) - shown} more)" if len(ids) > shown else ""
    return ", ".join(ids[:shown]) + more
