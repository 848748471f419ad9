"""`RunSettings`: one `netfly-batch run`, as the command line made it (defaults: settings.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..http.endpoints import FREENETFLY, Endpoint
from ..settings import BREAKER_THRESHOLD, CONCURRENCY, PROBE_AFTER_S, STOP_GRACE_S
from ..wire.validation import OutputSpec
from .shard import Shard
from .templates import LineTemplate


@dataclass(frozen=True, slots=True)
class RunSettings:
    """What to read, where to write, which endpoint, how hard to push."""

    input_path: str  # "-" is standard input
    output_path: str
    endpoint: Endpoint = FREENETFLY
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)  # request defaults for every line
    concurrency: int = CONCURRENCY
    fresh: bool = False
    max_runtime_s: float | None = None
    progress: bool | None = None  # None: only when stderr is a terminal
    quiet: bool = False
    summary_json: str | None = None
    stop_grace_s: float = STOP_GRACE_S
    rpm: float | None = None  # requests per minute
    tpm: float | None = None  # estimated tokens per minute
    adaptive: bool = False  # AIMD in-flight limit, like TCP congestion control
    breaker_threshold: int = BREAKER_THRESHOLD  # consecutive refused attempts that stop a run
    shard: Shard | None = None  # send only this shard's ids (invalid lines: shard 0 reports)
    output: OutputSpec | None = None  # --json-schema / --json: what every answer must be
    reask: bool = False  # --reask: a retry after an invalid answer shows the model its mistake
    check_tool_calls: bool = True  # calls must name an offered tool, with valid arguments
    id_field: str | None = None  # --id-field: the key each line's id comes from
    limit: int | None = None  # --limit: only the first N prompts (non-blank lines)
    template: LineTemplate | None = None  # --template: dataset lines -> prompts
    # Several --base-url: every endpoint of the fleet (the first is also `endpoint`,
    # which builds the request bodies); empty: `endpoint` alone, as a plain client.
    fleet: tuple[Endpoint, ...] = ()
    probe_after_s: float = PROBE_AFTER_S  # --probe-after: a tripped endpoint's cooldown

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        """Every endpoint the run sends to."""
        return self.fleet or (self.endpoint,)

    @property
    def pool_size(self) -> int:
        """The most requests in flight at once: -c, or the fleet's limits summed."""
        if not self.fleet:
            return self.concurrency
        return sum(e.in_flight_limit or self.concurrency for e in self.fleet)
