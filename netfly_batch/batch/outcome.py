"""How a run ended: its counters, why it stopped early (if it did), and the summary."""

from __future__ import annotations

import signal
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ..results import Result

StopKind = Literal["max_runtime", "endpoint_down", "signal"]
INTERRUPTED = {signal.SIGINT: "interrupted (SIGINT)", signal.SIGTERM: "terminated (SIGTERM)"}


@dataclass(frozen=True, slots=True)
class Stop:
    """Why a run stopped before every prompt had its chance, in words and as a kind."""

    kind: StopKind
    message: str


@dataclass(slots=True)
class RunOutcome:
    """How a run ended: `stop` is None when it finished."""

    counters: Counters
    stop: Stop | None = None
    signal_number: int | None = None

    @property
    def message(self) -> str:
        """ "finished", or why the run stopped early."""
        return self.stop.message if self.stop else "finished"


@dataclass(slots=True)
class Counters:
    """What a run did; the summary line and the summary JSON are made from this."""

    ok: int = 0
    error: int = 0
    invalid: int = 0
    skipped_ok: int = 0  # already ok in OUT with the same request: not sent again
    redone_changed: int = 0  # ok in OUT, but the input line changed since: sent again
    not_in_input: int = 0  # ids in OUT that the input no longer has (kept)
    empty_ok: int = 0  # ok with no output at all (no content, reasoning, call): suspicious
    attempts: int = 0  # HTTP attempts made by this run (cancelled ones included)
    rate_limited: int = 0  # 429 answers seen by this run
    invalid_output_attempts: int = 0  # answers that were not the JSON or calls asked for
    invalid_output: int = 0  # results that ended so (every attempt's answer invalid)
    prompt_tokens: int = 0  # usage of the results this run wrote: what this run cost
    completion_tokens: int = 0
    total_tokens: int = 0
    torn_lines_set_aside: int = 0
    compacted_lines: int = 0
    concurrency_limit: int = 0
    endpoints: list[dict[str, Any]] | None = None  # a fleet's members: url, ok, errors, ...
    started: float = field(default_factory=time.monotonic)

    def count(self, result: Result) -> None:
        """Count one written result."""
        if result.status == "ok":
            self.ok += 1
            if not result.has_output:
                self.empty_ok += 1
            usage = result.usage
            if usage:
                self._add_usage(usage)
        elif result.status == "error":
            self.error += 1
            if result.error and result.error.get("type") == "invalid_output":
                self.invalid_output += 1
        else:
            self.invalid += 1

    def _add_usage(self, usage: dict[str, Any]) -> None:
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        total = usage.get("total_tokens")
        if prompt.__class__ is int:
            self.prompt_tokens += prompt
        if completion.__class__ is int:
            self.completion_tokens += completion
        if total.__class__ is int:
            self.total_tokens += total

    def summary(self, outcome: str) -> dict[str, Any]:
        """The summary as a JSON-able dict."""
        wall_s = time.monotonic() - self.started
        data = asdict(self)
        data.pop("started")
        if self.endpoints is None:  # one endpoint: the summary is as it always was
            data.pop("endpoints")
        sent = self.ok + self.error
        data.update(
            outcome=outcome,
            wall_s=round(wall_s, 3),
            requests_per_s=round(sent / wall_s, 2) if wall_s > 0 else 0.0,
        )
        return data


def summary_line(summary: dict[str, Any]) -> str:
    """One human line: counts per status, attempts, time, rate, and what needs a look."""
    parts = [f"{summary['ok']} ok", f"{summary['error']} error", f"{summary['invalid']} invalid"]
    if summary["skipped_ok"]:
        parts.append(f"{summary['skipped_ok']} already done")
    text = (
        f"netfly-batch: {', '.join(parts)}; {summary['attempts']} attempts in "
        f"{summary['wall_s']:.1f} s ({summary['requests_per_s']:.1f} requests/s)"
    )
    if summary["total_tokens"]:
        text += (f"; {summary['total_tokens']} tokens ({summary['prompt_tokens']} prompt, "
                 f"{summary['completion_tokens']} completion)")  # fmt: skip
    notes = []
    if summary["redone_changed"]:
        notes.append(f"{summary['redone_changed']} redone because their input changed")
    if summary["empty_ok"]:
        notes.append(f"{summary['empty_ok']} ok with empty content (check the server)")
    if summary["invalid_output_attempts"]:
        notes.append(
            f"{summary['invalid_output_attempts']} invalid answers (JSON, schema or tool call), "
            f"{summary['invalid_output']} results left invalid"
        )
    if summary["rate_limited"]:
        notes.append(f"{summary['rate_limited']} rate-limited (429) answers")
    if summary["not_in_input"]:
        notes.append(f"{summary['not_in_input']} ids in OUT are no longer in the input (kept)")
    if summary["torn_lines_set_aside"]:
        notes.append("a torn last line from a crash was set aside")
    if summary["outcome"] != "finished":
        notes.append(summary["outcome"])
    for endpoint in summary.get("endpoints") or ():
        notes.append(endpoint_note(endpoint))
    return text + ("; " + "; ".join(notes) if notes else "")


def endpoint_note(endpoint: dict[str, Any]) -> str:
    """One fleet member's counts, for the summary line."""
    text = (
        f"{endpoint['url']}: {endpoint['ok']} ok, {endpoint['errors']} errors, "
        f"{endpoint['attempts']} attempts"
    )
    if endpoint["rate_limited"]:
        text += f", {endpoint['rate_limited']} 429s"
    if endpoint["tripped"]:
        text += f", tripped {endpoint['tripped']}x" + (" (down)" if endpoint["down"] else "")
    return text
