"""SimulatorSettings: the simulator's stream shape and fault plan, with named defaults."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..settings import FREENETFLY_MODELS
from .faults import FaultKind, FaultRates

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000  # `netfly-batch serve`
DEFAULT_SEED = 0
DEFAULT_CHUNK_COUNT = 8
DEFAULT_FIRST_BYTE_DELAY_S = 0.0
DEFAULT_CHUNK_DELAY_S = 0.0
DEFAULT_PING_INTERVAL_S = 0.0
DEFAULT_RETRY_AFTER_S = 1.0
DEFAULT_STALL_S = 3600.0
DEFAULT_INBAND_ERROR_CODE = "500"
DEFAULT_FAIL_FIRST = 0
DEFAULT_FAIL_FIRST_KIND = FaultKind.RATE_503
DEFAULT_MODELS = FREENETFLY_MODELS

_SECONDS_FIELDS = (
    "first_byte_delay_s",
    "chunk_delay_s",
    "ping_interval_s",
    "retry_after_s",
    "stall_s",
)


@dataclass(frozen=True, slots=True)
class SimulatorSettings:
    """How the simulated endpoint answers: stream shape, delays and injected faults."""

    seed: int = DEFAULT_SEED
    faults: FaultRates = field(default_factory=FaultRates)
    fail_first: int = DEFAULT_FAIL_FIRST
    fail_first_kind: FaultKind = DEFAULT_FAIL_FIRST_KIND
    chunk_count: int = DEFAULT_CHUNK_COUNT
    first_byte_delay_s: float = DEFAULT_FIRST_BYTE_DELAY_S
    chunk_delay_s: float = DEFAULT_CHUNK_DELAY_S
    ping_interval_s: float = DEFAULT_PING_INTERVAL_S
    retry_after_s: float = DEFAULT_RETRY_AFTER_S
    stall_s: float = DEFAULT_STALL_S
    inband_error_code: str = DEFAULT_INBAND_ERROR_CODE
    models: tuple[str, ...] = DEFAULT_MODELS

    def __post_init__(self) -> None:
        if self.chunk_count < 1:
            raise ValueError(f"chunk_count must be at least 1, not {self.chunk_count}")
        if self.fail_first < 0:
            raise ValueError(f"fail_first must be 0 or more, not {self.fail_first}")
        for name in _SECONDS_FIELDS:
            value = getattr(self, name)
            if math.isnan(value) or value < 0:
                raise ValueError(f"{name} must be 0 or more seconds, not {value!r}")
        if not self.models:
            raise ValueError("models must name at least one model")


def format_retry_after(seconds: float) -> str:
    """Write a Retry-After value as given: 1.0 -> "1", 0.01 -> "0.01"."""
    if float(seconds).is_integer():
        return str(int(seconds))
    return repr(float(seconds))
