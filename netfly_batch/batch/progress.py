"""The tqdm progress bar on stderr, refreshed a few times a second (never per result)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .outcome import Counters

if TYPE_CHECKING:
    from ..http.fleet import Member


class ProgressBar:
    """A tqdm bar that refreshes at most a few times a second, never per result."""

    def __init__(
        self,
        total: int | None,
        enabled: bool,
        stream: IO[str],
        fleet: Sequence[Member] | None = None,
    ) -> None:
        """`fleet`: several endpoints, each shown with its requests in flight and limit."""
        self._bar: Any = None
        self._fleet = fleet
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
        if self._fleet:
            postfix += " " + " ".join(_load(member) for member in self._fleet)
        elif counters.concurrency_limit:
            postfix += f" limit={counters.concurrency_limit}"
        self._bar.set_postfix_str(postfix, refresh=False)
        self._bar.refresh()

    def close(self, counters: Counters) -> None:
        """Draw the last state and end the bar's line."""
        if self._bar is not None:
            self._show(counters)
            self._bar.close()


def _load(member: Member) -> str:
    """`host:port in-flight/limit`, `down` when tripped."""
    where = urlsplit(member.url).netloc or member.url
    return f"{where} {'down' if member.down else f'{member.in_flight}/{member.limit}'}"
