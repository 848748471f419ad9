"""Fixed-size tallies a report fills in one pass: log-spaced histograms and a timeline
(results per minute and per time bin by status). However many results are added, each
holds at most a few hundred numbers.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .read import stamp_us

# Time bin widths (s), each a multiple of the one before, so bins merge whole when widened.
TIME_BIN_WIDTHS_S = (1, 5, 10, 30, 60, 300, 600, 1800, 3600, 7200, 21600, 43200, 86400)
MAX_TIME_BINS = 240

MAX_VALUE = 1e12  # larger values (a hand-edited line) are counted as this one


@dataclass(slots=True)
class LogHistogram:
    """Counts in log-spaced bins: bin k holds the values in (10**((k-1)/per_decade),
    10**(k/per_decade)]; values up to `floor` count in floor's bin. A few hundred bins
    cover any range met in practice, however many values are added. The edges of
    `decades` decades above the floor are kept, so most values find their bin by bisection."""

    per_decade: int
    floor: float
    decades: int = 9
    bins: Counter[int] = field(default_factory=Counter)
    count: int = 0
    max: float = 0.0
    first: int = field(init=False)  # the floor's bin
    edges: list[float] = field(init=False, repr=False)  # upper edges from the floor's bin

    def __post_init__(self) -> None:
        self.first = round(math.log10(self.floor) * self.per_decade)
        last = self.first + self.decades * self.per_decade
        self.edges = [self.upper(k) for k in range(self.first, last + 1)]

    def add(self, value: float) -> None:
        if value != value:  # NaN: no place on any scale
            return
        value = min(value, MAX_VALUE)
        self.count += 1
        if value > self.max:
            self.max = value
        position = bisect_left(self.edges, value)
        if position == len(self.edges):  # beyond the kept edges
            position = math.ceil(math.log10(value) * self.per_decade) - self.first
        self.bins[self.first + position] += 1

    def upper(self, index: int) -> float:
        """The upper edge of bin `index`."""
        return float(10 ** (index / self.per_decade))

    def quantile(self, q: float) -> float | None:
        """The q-quantile, as the upper edge of its bin (at most the largest value)."""
        if not self.count:
            return None
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        for index in sorted(self.bins):
            seen += self.bins[index]
            if seen >= rank:
                return min(self.upper(index), self.max)
        return self.max

    def as_pairs(self) -> list[list[float]]:
        """[upper edge, count] of every bin that holds a value, smallest first."""
        return [[round(self.upper(k), 6), self.bins[k]] for k in sorted(self.bins)]


@dataclass(slots=True)
class TimeBins:
    """Results per status in time bins of `width_s` (aligned on multiples of it since
    1970); the width grows along TIME_BIN_WIDTHS_S (then doubles) whenever the span
    would need more than MAX_TIME_BINS bins."""

    width_s: int = TIME_BIN_WIDTHS_S[0]
    counts: dict[int, Counter[str]] = field(default_factory=dict)  # bin number -> statuses
    first: int = 0
    last: int = -1

    def add(self, second: int, status: str, count: int = 1) -> None:
        number = second // self.width_s
        counts = self.counts.get(number)
        if counts is None:
            if not self.counts:
                self.first = self.last = number
            self.first, self.last = min(self.first, number), max(self.last, number)
            while self.last - self.first >= MAX_TIME_BINS:
                self._widen()
            number = second // self.width_s
            counts = self.counts.setdefault(number, Counter())
        counts[status] += count

    def _widen(self) -> None:
        wider = next((w for w in TIME_BIN_WIDTHS_S if w > self.width_s), self.width_s * 2)
        merged: dict[int, Counter[str]] = {}
        for number, counts in self.counts.items():
            merged.setdefault(number * self.width_s // wider, Counter()).update(counts)
        self.first = self.first * self.width_s // wider
        self.last = self.last * self.width_s // wider
        self.counts, self.width_s = merged, wider

    def as_dict(self) -> dict[str, Any]:
        """Every bin from the first to the last (empty ones too): start times and counts."""
        if not self.counts:
            return {"bin_s": self.width_s, "starts": [], "by_status": {}}
        numbers = range(self.first, self.last + 1)
        statuses = sorted({status for counts in self.counts.values() for status in counts})
        empty: Counter[str] = Counter()
        return {
            "bin_s": self.width_s,
            "starts": [_iso(number * self.width_s) for number in numbers],
            "by_status": {
                status: [self.counts.get(number, empty)[status] for number in numbers]
                for status in statuses
            },
        }


@dataclass(slots=True)
class Timeline:
    """When results finished: the first and last `finished_at` (as times, whatever their
    zone), results per minute (UTC) and per time bin by status; a `finished_at` that is no
    time counts for none of them. Results of one second (in our own `finished_at` form)
    are counted together and added once the second changes, so a second's time is parsed
    once, not once per result; `close()` adds the last one."""

    per_minute_counts: Counter[int] = field(default_factory=Counter)  # minute since 1970
    bins: TimeBins = field(default_factory=TimeBins)
    first_at: str | None = None
    last_at: str | None = None
    _first_us: int = 0
    _last_us: int = 0
    _second: str = ""  # the second being counted, its time, first and last stamp, counts
    _second_us: int = 0
    _low: str = ""
    _high: str = ""
    _second_counts: Counter[str] = field(default_factory=Counter)

    def add(self, stamp: str, status: str) -> None:
        """Count a result that finished at `stamp` (an ISO 8601 time)."""
        second = stamp[:19] if len(stamp) == 24 and stamp[23] == "Z" else stamp
        if second != self._second:
            self.close()
            self._second, self._second_us = second, stamp_us(stamp)
            self._low = self._high = stamp
        elif stamp < self._low:  # one second, one form: text order is time order
            self._low = stamp
        elif stamp > self._high:
            self._high = stamp
        self._second_counts[status] += 1

    def close(self) -> None:
        """Add the second being counted."""
        counts = self._second_counts
        at = self._second_us
        if not counts or not at:
            counts.clear()
            return
        if self.first_at is None or at < self._first_us:
            self.first_at, self._first_us = self._low, at
        if self.last_at is None or at >= self._last_us:
            self.last_at, self._last_us = self._high, at
        self.per_minute_counts[at // 60_000_000] += counts.total()
        second = at // 1_000_000
        for status, count in counts.items():
            self.bins.add(second, status, count)
        counts.clear()

    @property
    def per_minute(self) -> dict[str, int]:
        """Results per minute ("YYYY-MM-DDTHH:MM", UTC), in time order."""
        return {_iso(minute * 60)[:16]: n for minute, n in sorted(self.per_minute_counts.items())}


def _iso(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
