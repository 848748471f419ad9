"""Counters of a run, the tqdm bar on stderr, and the closing summary."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import IO, Any

from .results import Result


@dataclass(slots=True)
class Counters:
    """What a run did; the summary line and the summary JSON are made from this."""

    ok: int = 0
    error: int = 0
    invalid: int = 0
    skipped_ok: int = 0  # already ok in OUT with the same request: not sent again
    redone_changed: int = 0  # ok in OUT, but the input line changed since: sent again
    not_in_input: int = 0  # ids in OUT that the input no longer has (kept)
    empty_ok: int = 0  # ok with empty content: suspicious
    attempts: int = 0  # HTTP attempts made by this run (cancelled ones included)
    rate_limited: int = 0  # 429 answers seen by this run
    torn_lines_set_aside: int = 0
    compacted_lines: int = 0
    concurrency_limit: int = 0
    started: float = field(default_factory=time.monotonic)

    def count(self, result: Result) -> None:
        """Count one written result."""
        if result.status == "ok":
            self.ok += 1
            if not result.content:
                self.empty_ok += 1
        elif result.status == "error":
            self.error += 1
        else:
            self.invalid += 1

    def summary(self, outcome: str) -> dict[str, Any]:
        """The summary as a JSON-able dict."""
        wall_s = time.monotonic() - self.started
        data = asdict(self)
        data.pop("started")
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
    text = (f"netfly-batch: {', '.join(parts)}; {summary['attempts']} attempts in "
            f"{summary['wall_s']:.1f} s ({summary['requests_per_s']:.1f} requests/s)")
    notes = []
    if summary["redone_changed"]:
        notes.append(f"{summary['redone_changed']} redone because their input changed")
    if summary["empty_ok"]:
        notes.append(f"{summary['empty_ok']} ok with empty content (check the server)")
    if summary["rate_limited"]:
        notes.append(f"{summary['rate_limited']} rate-limited (429) answers")
    if summary["not_in_input"]:
        notes.append(f"{summary['not_in_input']} ids in OUT are no longer in the input (kept)")
    if summary["torn_lines_set_aside"]:
        notes.append("a torn last line from a crash was set aside")
    if summary["outcome"] != "finished":
        notes.append(summary["outcome"])
    return text + ("; " + "; ".join(notes) if notes else "")


class ProgressBar:
    """A tqdm bar that refreshes at most a few times a second, never per result."""

    def __init__(self, total: int | None, enabled: bool, stream: IO[str]) -> None:
        self._bar: Any = None
        self._last_refresh = 0.0
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, file=stream, unit="prompt", dynamic_ncols=True,
                             mininterval=0.5, smoothing=0.1, leave=True)

    def advance(self, counters: Counters) -> None:
        """Move the bar on by one result."""
        bar = self._bar
        if bar is None:
            return
        bar.n += 1
        now = time.monotonic()
        if now - self._last_refresh >= 0.5:
            self._last_refresh = now
            self._show(counters)

    def _show(self, counters: Counters) -> None:
        postfix = f"ok={counters.ok} err={counters.error} inv={counters.invalid}"
        if counters.rate_limited:
            postfix += f" 429s={counters.rate_limited}"
        if counters.concurrency_limit:
            postfix += f" limit={counters.concurrency_limit}"
        self._bar.set_postfix_str(postfix, refresh=False)
        self._bar.refresh()

    def close(self, counters: Counters) -> None:
        """Draw the last state and end the bar's line."""
        if self._bar is not None:
            self._show(counters)
            self._bar.close()
