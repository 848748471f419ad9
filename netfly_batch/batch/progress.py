"""The tqdm progress bar on stderr, refreshed a few times a second (never per result)."""

from __future__ import annotations

import time
from typing import IO, Any

from .outcome import Counters


class ProgressBar:
    """A tqdm bar that refreshes at most a few times a second, never per result."""

    def __init__(self, total: int | None, enabled: bool, stream: IO[str]) -> None:
        self._bar: Any = None
        self._last_refresh = 0.0
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                file=stream,
                unit="prompt",
                dynamic_ncols=True,
                mininterval=0.5,
                smoothing=0.1,
                leave=True,
            )

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
