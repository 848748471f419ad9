"""The seeded fault plan: which fault, if any, each request gets (pure, no I/O).

Every request takes exactly one draw `u` from `random.Random(seed)`. The rates split [0, 1)
into segments in `FaultKind` order, then `fail_rate`, whose segment is shared evenly by the
retryable kinds; `u` past the last segment means no fault. The `fail_first` mode overrides
the draw for the first N requests of each prompt key.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, fields
from enum import StrEnum

RATE_SUM_TOLERANCE = 1e-9


class FaultKind(StrEnum):
    """What the simulator does wrong to one request."""

    RATE_429 = "rate_429"
    RATE_500 = "rate_500"
    RATE_502 = "rate_502"
    RATE_503 = "rate_503"
    RESET = "reset"
    DISCONNECT = "disconnect"
    STALL = "stall"
    MALFORMED = "malformed"
    INBAND_ERROR = "inband_error"
    TRUNCATED = "truncated"
    NO_DONE = "no_done"
    INVALID_OUTPUT = "invalid_output"  # a JSON answer that is not what was asked for

    @property
    def status(self) -> int | None:
        """The HTTP status this kind answers with, or None when it is not a status fault."""
        return STATUS_OF_KIND.get(self)


STATUS_OF_KIND: dict[FaultKind, int] = {
    FaultKind.RATE_429: 429,
    FaultKind.RATE_500: 500,
    FaultKind.RATE_502: 502,
    FaultKind.RATE_503: 503,
}

# The kinds `fail_rate` picks among: each may succeed on another attempt (stall is left out).
RETRYABLE_KINDS: tuple[FaultKind, ...] = (
    FaultKind.RATE_429,
    FaultKind.RATE_500,
    FaultKind.RATE_502,
    FaultKind.RATE_503,
    FaultKind.RESET,
    FaultKind.DISCONNECT,
)


def parse_fault_kind(name: str) -> FaultKind:
    """Read a kind name such as "rate_503", "503", "reset" or "inband-error"."""
    text = name.strip().lower().replace("-", "_")
    if text.isdigit():
        text = f"rate_{text}"
    try:
        return FaultKind(text)
    except ValueError:
        known = ", ".join(kind.value for kind in FaultKind)
        raise ValueError(f"unknown fault kind {name!r}; known kinds: {known}") from None


@dataclass(frozen=True, slots=True)
class FaultRates:
    """Share of requests (0..1) that get each fault kind; the shares add up to at most 1."""

    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_502: float = 0.0
    rate_503: float = 0.0
    reset: float = 0.0
    disconnect: float = 0.0
    stall: float = 0.0
    malformed: float = 0.0
    inband_error: float = 0.0
    truncated: float = 0.0
    no_done: float = 0.0
    invalid_output: float = 0.0
    fail_rate: float = 0.0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if not isinstance(value, int | float) or math.isnan(value) or not 0 <= value <= 1:
                raise ValueError(f"fault rate {item.name} must be between 0 and 1, not {value!r}")
        if self.total > 1 + RATE_SUM_TOLERANCE:
            parts = ", ".join(f"{name}={rate:g}" for name, rate in self.nonzero().items())
            raise ValueError(
                f"fault rates add up to {self.total:g} ({parts}); their sum must be at most 1"
            )

    def rate_of(self, kind: FaultKind) -> float:
        """The rate configured for one kind on its own (without its share of `fail_rate`)."""
        return float(getattr(self, kind.value))

    def nonzero(self) -> dict[str, float]:
        """The rates that are not zero, by field name."""
        values = {item.name: getattr(self, item.name) for item in fields(self)}
        return {name: rate for name, rate in values.items() if rate}

    @property
    def total(self) -> float:
        """The share of requests that get some fault."""
        return float(sum(getattr(self, item.name) for item in fields(self)))

    def expected_share(self, kind: FaultKind) -> float:
        """The long-run share of requests that get `kind`, including its part of `fail_rate`."""
        extra = self.fail_rate / len(RETRYABLE_KINDS) if kind in RETRYABLE_KINDS else 0.0
        return self.rate_of(kind) + extra


def pick_fault(draw: float, rates: FaultRates) -> FaultKind | None:
    """Map one uniform draw in [0, 1) to a fault kind, or None for a healthy answer."""
    edge = 0.0
    for kind in FaultKind:
        edge += rates.rate_of(kind)
        if draw < edge:
            return kind
    if rates.fail_rate and draw < edge + rates.fail_rate:
        index = int((draw - edge) / rates.fail_rate * len(RETRYABLE_KINDS))
        return RETRYABLE_KINDS[min(index, len(RETRYABLE_KINDS) - 1)]
    return None


class FaultPlan:
    """Seeded fault decisions: the same seed and request order give the same faults."""

    def __init__(
        self,
        rates: FaultRates,
        *,
        seed: int = 0,
        fail_first: int = 0,
        fail_first_kind: FaultKind = FaultKind.RATE_503,
    ) -> None:
        if fail_first < 0:
            raise ValueError(f"fail_first must be 0 or more, not {fail_first}")
        self.rates = rates
        self.fail_first = fail_first
        self.fail_first_kind = fail_first_kind
        self._random = random.Random(seed)
        self._attempts: Counter[str] = Counter()

    def draw(self) -> FaultKind | None:
        """Take the next draw and map it to a fault kind (or None)."""
        return pick_fault(self._random.random(), self.rates)

    def next_fault(self, prompt_key: str) -> FaultKind | None:
        """The fault for the next request of `prompt_key`; always takes one draw."""
        drawn = self.draw()
        self._attempts[prompt_key] += 1
        if self._attempts[prompt_key] <= self.fail_first:
            return self.fail_first_kind
        return drawn
