"""`netfly-batch run`: options -> settings -> `BatchRun`; its outcome -> an exit code."""

from __future__ import annotations

import dataclasses
import sys
from typing import TYPE_CHECKING, Any

import click
import orjson

from .. import settings
from ..errors import NetflyError, OutputLockedError
from ..simulator.options import simulator_options, simulator_settings_from_options
from .help_sections import SectionedCommand
from .process import (
    EXIT_CANNOT_START,
    EXIT_ENDPOINT_DOWN,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_SIGINT,
    EXIT_SOME_FAILED,
    EXIT_STOPPED_AT_MAX_RUNTIME,
    fail,
    run_async,
    setup_logging,
)
from .run_options import Duration, settings_from_options

if TYPE_CHECKING:
    from ..batch.outcome import RunOutcome
    from ..batch.run import BatchRun
    from ..batch.run_settings import RunSettings


RUN_HELP_SECTIONS = (
    ("Output and resume", ("output_path", "fresh", "max_runtime", "shard", "shard_count",
                           "progress", "quiet", "summary_json")),
    ("Where to send", ("base_urls", "endpoint", "api_key", "proxy", "trust_env", "simulate")),
    ("What to send", ("model", "temperature", "max_tokens", "top_p", "extra_params",
                      "stream_usage")),
    ("From a dataset", ("template", "template_file", "system", "system_file", "param_fields",
                        "keep_fields", "id_field", "limit", "dry_run")),
    ("Checked answers", ("json_schema", "json_only", "no_response_format", "reask",
                         "check_tool_calls")),
    ("How hard to push", ("concurrency", "rpm", "tpm", "adaptive", "breaker_threshold",
                          "probe_after")),
    ("Retries and timeouts", ("max_attempts", "retry_wait", "connect_timeout", "idle_timeout",
                              "total_timeout", "max_event_bytes")),
    ("The built-in simulator (--simulate starts it)", ("sim_*",)),
)  # fmt: skip


@click.command(cls=SectionedCommand, sections=RUN_HELP_SECTIONS)
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "-o",
    "--output",
    "output_path",
    required=True,
    metavar="OUT",
    type=click.Path(dir_okay=False),
    help="Results JSONL; if it exists the run resumes (only unfinished prompts are sent).",
)
@click.option(
    "--base-url",
    "base_urls",
    envvar="NETFLY_BASE_URL",
    multiple=True,
    default=[settings.FREENETFLY_URL],
    show_default=True,
    metavar="URL[#c=N]",
    help="Server to talk to (any OpenAI-compatible server). Repeat it (or list URLs "
    "split by commas or spaces) to spread the batch over a fleet: each endpoint gets "
    "-c requests in flight, or N with URL#c=N.",
)
@click.option(
    "--endpoint",
    envvar="NETFLY_ENDPOINT",
    default=None,
    help="Chat-completions path [default: the FreeNetfly path with the default "
    "--base-url, else /v1/chat/completions].",
)
@click.option(
    "--api-key",
    envvar="NETFLY_API_KEY",
    default=None,
    help="Bearer token (or env NETFLY_API_KEY); never printed or written.",
)
@click.option(
    "-m",
    "--model",
    envvar="NETFLY_MODEL",
    default=None,
    help=f"Model for lines that name none [default: {settings.DEFAULT_MODEL}].",
)
@click.option(
    "-c",
    "--concurrency",
    envvar="NETFLY_CONCURRENCY",
    default=settings.CONCURRENCY,
    show_default=True,
    type=click.IntRange(1, 10000),
    help="Most requests in flight at once.",
)
@click.option(
    "--rpm",
    envvar="NETFLY_RPM",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="Most requests per minute (attempts count), spread evenly.",
)
@click.option(
    "--tpm",
    envvar="NETFLY_TPM",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="Most tokens per minute, estimated as prompt characters / 4 + max_tokens.",
)
@click.option(
    "--adaptive/--no-adaptive",
    envvar="NETFLY_ADAPTIVE",
    default=False,
    show_default=True,
    help="Halve the in-flight limit on 429s, grow it back on successes (<= -c).",
)
@click.option(
    "--breaker-threshold",
    default=settings.BREAKER_THRESHOLD,
    show_default=True,
    type=click.IntRange(0),
    help="Stop the run after this many refused attempts in a row "
    "(connection refused, DNS, TLS, 401, 403); 0: never.",
)
@click.option(
    "--probe-after",
    type=Duration(),
    default=settings.PROBE_AFTER_S,
    show_default=True,
    help="With several --base-url, how long an endpoint that the breaker took out rests "
    "before one request probes it again.",
)
@click.option(
    "--max-attempts",
    envvar="NETFLY_MAX_ATTEMPTS",
    default=settings.MAX_ATTEMPTS,
    show_default=True,
    type=click.IntRange(1, 100),
    help="HTTP attempts per prompt (first one included) before it is an error.",
)
@click.option(
    "--retry-wait",
    default=settings.INITIAL_WAIT_S,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds before the 2nd attempt; doubles after.",
)
@click.option(
    "--connect-timeout",
    default=settings.CONNECT_TIMEOUT_S,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    help="Seconds to open a connection.",
)
@click.option(
    "--idle-timeout",
    default=settings.IDLE_TIMEOUT_S,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    help="Seconds without a byte (headers or chunks) before an attempt fails.",
)
@click.option(
    "--timeout",
    "total_timeout",
    default=settings.TOTAL_TIMEOUT_S,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    help="Seconds one attempt may take in all.",
)
@click.option(
    "--stream-usage/--no-stream-usage",
    default=True,
    show_default=True,
    help="Ask servers other than FreeNetfly for usage in the stream "
    "(stream_options.include_usage); off for a server that refuses the field.",
)
@click.option(
    "--max-event-bytes",
    default=settings.MAX_EVENT_BYTES,
    show_default=True,
    type=click.IntRange(1024),
    help="Largest streamed event accepted.",
)
@click.option(
    "--proxy",
    envvar="NETFLY_PROXY",
    default=None,
    help="HTTP proxy URL, e.g. http://user:pass@host:3128 (never printed).",
)
@click.option(
    "--trust-env/--no-trust-env",
    default=False,
    show_default=True,
    help="Use HTTP(S)_PROXY / NO_PROXY from the environment.",
)
@click.option(
    "--temperature",
    type=float,
    default=None,
    help="Request default [default: 0.5, the FreeNetfly default].",
)
@click.option("--max-tokens", type=click.IntRange(1), default=None, help="Request default.")
@click.option("--top-p", type=float, default=None, help="Request default [default: 1].")
@click.option(
    "--param",
    "extra_params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Any other request default; VALUE is JSON or a string. Repeatable.",
)
@click.option(
    "--json-schema",
    "json_schema",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE",
    help="Every answer must be JSON valid against this JSON Schema (or an OpenAI "
    '{"name", "schema", "strict"} object); sent as response_format json_schema.',
)
@click.option(
    "--json",
    "json_only",
    is_flag=True,
    help="Every answer must be one JSON value; sent as response_format json_object.",
)
@click.option(
    "--no-response-format",
    is_flag=True,
    help="Check answers as --json-schema/--json say, but send no response_format "
    "(for servers that reject it; the prompt must ask for JSON).",
)
@click.option(
    "--reask",
    is_flag=True,
    help="After an invalid answer, the next attempt shows the model its answer and the problem.",
)
@click.option(
    "--check-tool-calls/--no-check-tool-calls",
    default=True,
    show_default=True,
    help="Tool calls must name an offered tool, with arguments valid for its parameters.",
)
@click.option(
    "--template",
    default=None,
    metavar="TEXT",
    help="Build each line's user message from its own fields: {field}, {a.b}; {{ and }} "
    "are braces. A line is then any JSON object.",
)
@click.option(
    "--template-file", type=click.Path(dir_okay=False), default=None, metavar="FILE",
    help="--template, read from FILE.",
)  # fmt: skip
@click.option(
    "--system", default=None, metavar="TEXT",
    help="With a template: a system message (fields allowed too).",
)  # fmt: skip
@click.option(
    "--system-file", type=click.Path(dir_okay=False), default=None, metavar="FILE",
    help="--system, read from FILE.",
)  # fmt: skip
@click.option(
    "--param-fields", default=None, metavar="A,B",
    help="With a template: fields of the line sent as request parameters (model, ...).",
)  # fmt: skip
@click.option(
    "--keep-fields", default=None, metavar="A,B",
    help="With a template: fields of the line copied into the result's metadata.",
)  # fmt: skip
@click.option(
    "--id-field",
    default=None,
    metavar="NAME",
    help="Take each line's id from this key (e.g. uid) instead of id/custom_id; a line "
    "without it, or repeating one, is invalid.",
)
@click.option(
    "--limit",
    type=click.IntRange(1),
    default=None,
    metavar="N",
    help="Only the first N prompts of INPUT (invalid lines counted); rerun with a larger N "
    "to go on.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Read INPUT and OUT, send and write nothing, and print what a run would do "
    "(counts, invalid lines, tokens, the first request body). Exit 1 if lines are invalid.",
)
@click.option("--fresh", is_flag=True, help="Start over: replace OUT instead of resuming from it.")
@click.option(
    "--max-runtime",
    type=Duration(),
    default=None,
    envvar="NETFLY_MAX_RUNTIME",
    help="Stop starting new prompts after this long (e.g. 55m) and exit 75.",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar on stderr [default: only when stderr is a terminal].",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary line.")
@click.option(
    "--summary-json",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write the summary as JSON to this file.",
)
@click.option(
    "--shard",
    envvar="NETFLY_SHARD",
    default=None,
    metavar="I/N|auto",
    help="Send only shard I of N (by a stable hash of the id); auto reads Slurm "
    "or Kubernetes variables. OUT must contain {shard}.",
)
@click.option(
    "--shard-count",
    envvar="NETFLY_SHARD_COUNT",
    type=click.IntRange(1),
    default=None,
    help="N for --shard auto in a Kubernetes indexed Job.",
)
@click.option(
    "--simulate",
    is_flag=True,
    help="Run against the built-in simulated endpoint (offline rehearsal).",
)
@simulator_options("sim-")
def run(**options: Any) -> None:
    """Send every prompt of INPUT (JSONL; - for stdin) and write one result line each to OUT.

    \b
    Rerun the same command to resume: prompts already ok are skipped.
    Exit codes: 0 all ok; 1 some error/invalid results; 2 usage error; 3 could not
    start or write (INPUT/OUT); 4 OUT locked by another run; 5 endpoint unreachable
    (the breaker stopped the run); 75 stopped at --max-runtime; 130 SIGINT; 143 SIGTERM.

    \b
    Example:
      netfly-batch run samples/prompts.jsonl -o out.jsonl --simulate
    """
    setup_logging()
    try:
        code = run_async(_run(options))
    except KeyboardInterrupt:  # Ctrl-C before the run took over signals, or after: OUT is whole
        code = EXIT_SIGINT
    sys.exit(code)


async def _run(options: dict[str, Any]) -> int:
    from ..batch.run import BatchRun

    sim_settings = simulator_settings_from_options(options, "sim-")
    run_settings, client_settings, retry = settings_from_options(options)
    if options["dry_run"]:
        return await _dry_run(run_settings)
    stderr = sys.stderr
    endpoint = run_settings.endpoint
    if not options["simulate"] and not run_settings.quiet and not endpoint.working:
        click.echo(
            f"netfly-batch: note: the default endpoint {endpoint.base_url} is "
            "known to be down; use --base-url URL for your server, or --simulate to "
            "rehearse offline",
            err=True,
        )
    if options["simulate"]:
        from ..http.endpoints import endpoint_for
        from ..simulator import running_simulator

        async with running_simulator(sim_settings) as simulator:
            run_settings = dataclasses.replace(
                run_settings,
                fleet=(),
                endpoint=endpoint_for(
                    simulator.url,
                    api_key=endpoint.api_key,
                    stream_usage=options["stream_usage"],
                ),
            )
            if not run_settings.quiet:
                click.echo(f"netfly-batch: simulated endpoint at {simulator.url}", err=True)
            return await _run_batch(
                BatchRun(run_settings, client_settings, retry, stderr), run_settings
            )
    return await _run_batch(BatchRun(run_settings, client_settings, retry, stderr), run_settings)


async def _dry_run(run_settings: RunSettings) -> int:
    """Print what a run would do; send and write nothing (but --summary-json)."""
    from ..batch.dry_run import dry_run

    try:
        report = await dry_run(run_settings)
    except NetflyError as error:
        fail(str(error))
        return EXIT_CANNOT_START
    click.echo(dry_run_text(report.as_dict()))
    if run_settings.summary_json:
        _write_summary(run_settings.summary_json, report.as_dict())
    return EXIT_SOME_FAILED if report.invalid else EXIT_OK


def dry_run_text(data: dict[str, Any]) -> str:
    """The dry run's report for a person."""
    lines = [
        f"dry run: {data['to_send']} prompts would be sent to {data['endpoint']} "
        f"({data['new']} new, {data['redone_changed']} redone because changed, "
        f"{data['error_retried']} errors retried); {data['skipped_ok']} already ok; "
        f"{data['invalid']} invalid lines",
        f"estimated input tokens: {data['input_tokens']} (characters / 4); largest "
        "possible output: "
        + (f"{data['max_output_tokens']} tokens (max_tokens summed)"
           if data["max_output_tokens"] is not None else "unbounded (max_tokens not set)"),
    ]  # fmt: skip
    for reason, group in data["invalid_groups"].items():
        shown = ", ".join(map(str, group["first_lines"]))
        more = ", ..." if group["count"] > len(group["first_lines"]) else ""
        lines.append(f"invalid ({group['count']}): {reason} (lines {shown}{more})")
    if data["first_body"] is not None:
        body = orjson.dumps(data["first_body"], option=orjson.OPT_INDENT_2).decode()
        lines.append(f"first request body:\n{body}")
    return "\n".join(lines)


async def _run_batch(batch: BatchRun, run_settings: RunSettings) -> int:
    from ..batch.outcome import summary_line

    try:
        outcome = await batch.run()
    except OutputLockedError as error:
        fail(str(error))
        return EXIT_LOCKED
    except NetflyError as error:
        fail(str(error))
        return EXIT_CANNOT_START
    summary = outcome.counters.summary(outcome.message)
    code = _exit_code(outcome, summary)
    summary["exit_code"] = code
    if not run_settings.quiet or code not in (EXIT_OK, EXIT_SOME_FAILED):
        click.echo(summary_line(summary), err=True)
    if run_settings.summary_json:
        _write_summary(run_settings.summary_json, summary)
    return code


def _write_summary(path: str, summary: dict[str, Any]) -> None:
    try:
        with open(path, "wb") as handle:
            handle.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    except OSError as error:
        fail(f"cannot write the summary to {path}: {error.strerror}")


def _exit_code(outcome: RunOutcome, summary: dict[str, Any]) -> int:
    if outcome.stop is None:
        return EXIT_SOME_FAILED if summary["error"] or summary["invalid"] else EXIT_OK
    if outcome.stop.kind == "signal":
        return 128 + int(outcome.signal_number or 0)
    return {"endpoint_down": EXIT_ENDPOINT_DOWN, "max_runtime": EXIT_STOPPED_AT_MAX_RUNTIME}[
        outcome.stop.kind
    ]
