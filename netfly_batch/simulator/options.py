"""Click options shared by `serve` (no prefix) and `run --simulate` (prefix "sim-")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, TypeVar

import click

from . import settings as defaults
from .faults import FaultKind, FaultRates, parse_fault_kind
from .settings import SimulatorSettings

F = TypeVar("F", bound=Callable[..., Any])

RATE = click.FloatRange(0.0, 1.0)
SECONDS = click.FloatRange(min=0.0)
SHORT_KIND_NAMES = [kind.value.removeprefix("rate_") for kind in FaultKind]
FAULT_KIND_NAMES = SHORT_KIND_NAMES + [kind.value for kind in FaultKind if kind.status]


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """One simulator option: its name without prefix, settings field, type, default, help."""

    name: str
    field: str
    type: Any
    default: Any
    help: str
    metavar: str | None = None


def _rate_spec(field: str, name: str, what: str) -> OptionSpec:
    """The option for one fault kind's rate."""
    return OptionSpec(name, field, RATE, 0.0, f"Share of requests that get {what}.", "RATE")


def _seconds_spec(name: str, default: float, help: str) -> OptionSpec:
    """The option for one duration setting; its field is its name with underscores."""
    return OptionSpec(name, name.replace("-", "_"), SECONDS, default, help, "SECONDS")


RATE_SPECS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "fail-rate",
        "fail_rate",
        RATE,
        0.0,
        "Share of requests failing with a retryable fault, picked evenly among "
        "429/500/502/503/reset/disconnect.",
        "RATE",
    ),
    _rate_spec("rate_429", "rate-429", "HTTP 429 with a Retry-After header"),
    _rate_spec("rate_500", "rate-500", "HTTP 500"),
    _rate_spec("rate_502", "rate-502", "HTTP 502"),
    _rate_spec("rate_503", "rate-503", "HTTP 503"),
    _rate_spec("reset", "rate-reset", "a connection closed before the response headers"),
    _rate_spec("disconnect", "rate-disconnect", "a stream cut off after about half the content"),
    _rate_spec("stall", "rate-stall", "a stream that stops sending for the stall time"),
    _rate_spec("malformed", "rate-malformed", "one content chunk replaced by invalid JSON"),
    _rate_spec("inband_error", "rate-inband-error", "an error event inside the stream"),
    _rate_spec("truncated", "rate-truncated", "[DONE] after half the content, no finish_reason"),
    _rate_spec("no_done", "rate-no-done", "a stream ending with neither finish_reason nor [DONE]"),
    _rate_spec(
        "invalid_output",
        "rate-invalid-output",
        "a JSON answer that is wrong (cut, a required field missing, a wrong type, or fenced "
        "with chatter; for response_format requests)",
    ),
)

SETTING_SPECS: tuple[OptionSpec, ...] = (
    OptionSpec(
        name="seed",
        field="seed",
        type=int,
        default=defaults.DEFAULT_SEED,
        help="Seed of the fault plan: the same seed gives the same faults.",
        metavar="INT",
    ),
    OptionSpec(
        name="fail-first",
        field="fail_first",
        type=click.IntRange(min=0),
        default=defaults.DEFAULT_FAIL_FIRST,
        help="Fail the first N requests of each prompt, then answer it.",
        metavar="N",
    ),
    OptionSpec(
        name="fail-first-kind",
        field="fail_first_kind",
        type=click.Choice(FAULT_KIND_NAMES),
        default=defaults.DEFAULT_FAIL_FIRST_KIND.value.removeprefix("rate_"),
        help=f"The fault of the first N requests of each prompt: {', '.join(SHORT_KIND_NAMES)}.",
        metavar="KIND",
    ),
    OptionSpec(
        name="chunk-count",
        field="chunk_count",
        type=click.IntRange(min=1),
        default=defaults.DEFAULT_CHUNK_COUNT,
        help="Content chunks per streamed answer (fewer for short answers).",
        metavar="N",
    ),
    _seconds_spec(
        "first-byte-delay-s",
        defaults.DEFAULT_FIRST_BYTE_DELAY_S,
        "Seconds before the response headers (after them when pings are on).",
    ),
    _seconds_spec(
        "chunk-delay-s", defaults.DEFAULT_CHUNK_DELAY_S, "Seconds between stream chunks."
    ),
    _seconds_spec(
        "ping-interval-s",
        defaults.DEFAULT_PING_INTERVAL_S,
        "Send headers at once, then ': ping' every SECONDS of the first-byte delay (0: off).",
    ),
    _seconds_spec(
        "retry-after-s",
        defaults.DEFAULT_RETRY_AFTER_S,
        "Retry-After header value of simulated 429 answers.",
    ),
    _seconds_spec(
        "stall-s",
        defaults.DEFAULT_STALL_S,
        "Seconds a stalled stream hangs before its connection is cut.",
    ),
    OptionSpec(
        name="inband-error-code",
        field="inband_error_code",
        type=str,
        default=defaults.DEFAULT_INBAND_ERROR_CODE,
        help='The code of simulated in-stream error events ("400": not retryable).',
        metavar="CODE",
    ),
)

ALL_SPECS = RATE_SPECS + SETTING_SPECS


def option_key(prefix: str, spec: OptionSpec) -> str:
    """The Click keyword argument of `spec` under `prefix` ("sim-" -> "sim_fail_rate")."""
    return (prefix + spec.name).replace("-", "_")


def simulator_options(prefix: str = "") -> Callable[[F], F]:
    """Decorate a Click command with the simulator options, named `--<prefix><name>`."""

    def decorate(command: F) -> F:
        for spec in reversed(ALL_SPECS):
            command = click.option(
                f"--{prefix}{spec.name}",
                option_key(prefix, spec),
                type=spec.type,
                default=spec.default,
                show_default=True,
                metavar=spec.metavar,
                help=spec.help,
            )(command)
        return command

    return decorate


def simulator_settings_from_options(kwargs: dict[str, Any], prefix: str = "") -> SimulatorSettings:
    """Pop the simulator options out of a Click kwargs dict and build SimulatorSettings."""
    values = {spec.field: kwargs.pop(option_key(prefix, spec)) for spec in ALL_SPECS}
    rate_fields = {item.name for item in fields(FaultRates)}
    try:
        rates = FaultRates(**{name: values.pop(name) for name in rate_fields})
        values["fail_first_kind"] = parse_fault_kind(values["fail_first_kind"])
        return SimulatorSettings(faults=rates, **values)
    except ValueError as exc:
        raise click.UsageError(f"simulator options: {exc}") from None
