"""`netfly-batch merge`: the union of several OUT files, one line per id, written atomically.

The latest result per id wins and invalid results are kept once each (`read.py`):
memory holds one packed int per id, never the results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..batch.inputs import input_lines
from ..batch.prompts import line_ids
from .atomic import atomic_file
from .read import Selection, select_latest


@dataclass(slots=True)
class MergeReport:
    """What a merge found; `missing` are input ids with no result in any OUT."""

    written: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    unreadable_lines: int = 0
    missing: list[str] = field(default_factory=list)
    not_in_input: list[str] = field(default_factory=list)


def merge_outputs(
    sources: list[Path],
    target: Path,
    input_path: Path | None = None,
    id_field: str | None = None,
) -> MergeReport:
    """Merge `sources` into `target`; compare with `input_path`'s ids (read as a run with
    `--id-field id_field` reads them) when given."""
    selection = select_latest(sources)
    report = MergeReport(
        written=_write_atomically(selection, target),
        by_status=selection.by_status(),
        unreadable_lines=selection.unreadable_lines,
    )
    if input_path is not None:
        with input_lines(str(input_path)) as lines:
            input_ids = set(line_ids(lines, id_field))
        report.missing = sorted(selection.ids_without_result(input_ids))
        report.not_in_input = sorted(i for i in selection.latest if i not in input_ids)
    return report


def _write_atomically(selection: Selection, target: Path) -> int:
    written = 0
    with atomic_file(target, "merge") as out:
        for line in selection.kept_lines():
            out.write(line)
            written += 1
    return written
