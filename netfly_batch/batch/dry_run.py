"""`run --dry-run`: what a real run would do, read from INPUT and OUT, with nothing sent
and nothing written (no OUT, no lock).

It plans every line as a run would (`Planner`, the same resume state from OUT, the
same shard, limit, template and checks) and counts instead of sending.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..http.endpoints import public_url
from ..http.flow import estimate_input_tokens, output_limit
from .inputs import InputFile, check_paths
from .ledger import LedgerState, scan_into
from .linesource import WAIT
from .plan import Job, Planner, request_defaults
from .prompts import InvalidLine, PromptReader
from .run_settings import RunSettings

SHOWN_LINES = 5  # line numbers shown per group of invalid lines


@dataclass(slots=True)
class DryRunReport:
    """What a run would do; `as_dict()` is the --summary-json."""

    new: int = 0
    redone_changed: int = 0  # ok in OUT, but the request changed
    error_retried: int = 0  # an error in OUT: sent again
    skipped_ok: int = 0
    invalid: int = 0
    invalid_groups: dict[str, list[int]] = field(default_factory=dict)  # reason -> line numbers
    input_tokens: int = 0  # characters of the messages / 4
    max_output_tokens: int | None = 0  # the sum of max_tokens; None: some request sets none
    first_body: dict[str, Any] | None = None
    endpoint: str = ""

    @property
    def to_send(self) -> int:
        return self.new + self.redone_changed + self.error_retried

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": True,
            "to_send": self.to_send,
            "new": self.new,
            "redone_changed": self.redone_changed,
            "error_retried": self.error_retried,
            "skipped_ok": self.skipped_ok,
            "invalid": self.invalid,
            "invalid_groups": {
                reason: {"count": len(lines), "first_lines": lines[:SHOWN_LINES]}
                for reason, lines in self.invalid_groups.items()
            },
            "input_tokens": self.input_tokens,
            "max_output_tokens": self.max_output_tokens,
            "endpoint": self.endpoint,
            "first_body": self.first_body,
        }


async def dry_run(settings: RunSettings) -> DryRunReport:
    """Plan every line of INPUT against OUT (read only) and count."""
    check_paths(settings.input_path, settings.output_path)
    report = DryRunReport(endpoint=", ".join(public_url(e.url) for e in settings.endpoints))
    state = LedgerState()
    # Blocking reads are fine here: nothing else runs on the loop during a dry run.
    if Path(settings.output_path).exists():  # noqa: ASYNC240
        scan_into(Path(settings.output_path), state)
    source = InputFile(settings.input_path, settings.limit)
    source.open()
    planner = Planner(settings, state)
    owns = planner.owns

    def skipped(prompt_id: str) -> None:
        if owns(prompt_id):
            report.skipped_ok += 1

    sent = 0
    max_tokens: int | None = 0
    try:
        lines = source.lines(asyncio.get_running_loop())
        reader = PromptReader(request_defaults(settings), source.seen_ids(), state,
                              on_done=skipped, id_field=settings.id_field,
                              template=settings.template)  # fmt: skip
        for job in planner.jobs(reader, lines, source.reopen, lambda line: _invalid(report, line)):
            if job is WAIT:
                ready = source.ready
                if ready is not None:
                    await ready()
                continue
            assert isinstance(job, Job)
            sent += 1
            report.first_body = report.first_body or job.body
            report.input_tokens += estimate_input_tokens(job.body)
            limit = output_limit(job.body)
            max_tokens = None if limit is None or max_tokens is None else max_tokens + limit
    finally:
        source.close()
    # The planner counted the jobs whose id OUT had (and which of those were ok).
    report.redone_changed = planner.redone_changed
    report.error_retried = planner.superseding - planner.redone_changed
    report.new = sent - planner.superseding
    report.max_output_tokens = max_tokens if sent else 0
    return report


def _invalid(report: DryRunReport, line: InvalidLine) -> None:
    report.invalid += 1
    # One group per kind of fault: quoted values and numbers (not UTF-8's) left out.
    reason = re.sub(r"(?<![\w-])\d+", "N", re.sub(r"'[^']*'", "'…'", line.reason))
    report.invalid_groups.setdefault(reason, []).append(line.line_no)
