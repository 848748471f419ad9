"""`run`'s option values -> the frozen settings: durations, KEY=VALUE parameters, shards.

Only the command line's own concerns live here; the defaults live in `settings.py`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import click
import orjson

from ..batch.run_settings import RunSettings
from ..batch.shard import Shard, ShardError, parse_shard
from ..batch.templates import LineTemplate, TemplateError
from ..durations import parse_duration
from ..errors import ModelNotSupportedError
from ..http.endpoints import Endpoint, EndpointListError, endpoint_for, parse_base_urls
from ..settings import ClientSettings, RetrySettings
from ..wire.validation import OutputSpec, SchemaFileError, spec_from_document


# Click >= 8.3 makes ParamType generic; older releases do not (hence unused-ignore too).
class Duration(click.ParamType):  # type: ignore[type-arg, unused-ignore]
    """A duration such as `90`, `90s`, `55m`, `1h30m` (plain numbers are seconds)."""

    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, int | float):
            return float(value)
        seconds = parse_duration(str(value))
        if seconds is None:
            self.fail(f"{value!r} is not a duration (e.g. 90s, 55m, 1h30m)", param, ctx)
        return seconds


def parse_param(text: str) -> tuple[str, Any]:
    """`KEY=VALUE`; VALUE is read as JSON when it parses, else kept as a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise click.BadParameter(f"{text!r} is not KEY=VALUE", param_hint="--param")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = raw
    return key.strip(), value


def settings_from_options(
    options: dict[str, Any],
) -> tuple[RunSettings, ClientSettings, RetrySettings]:
    """The run, connection and retry settings of `run`'s options."""
    endpoints = endpoints_from_options(options)
    endpoint = endpoints[0]
    concurrency = options["concurrency"]
    if len(endpoints) == 1 and endpoint.in_flight_limit:  # one URL#c=N: that is -c
        concurrency = endpoint.in_flight_limit
    if options["model"]:
        try:
            endpoint.resolve_model(options["model"])
        except ModelNotSupportedError as error:
            raise click.BadParameter(str(error), param_hint="--model") from None
    params = dict(parse_param(p) for p in options["extra_params"])
    for name in ("temperature", "max_tokens", "top_p"):
        if options[name] is not None:
            params[name] = options[name]
    shard, output_path = shard_and_output(options)
    output = output_spec(options)
    run_settings = RunSettings(
        input_path=options["input_path"],
        output_path=output_path,
        endpoint=endpoint,
        shard=shard,
        model=options["model"],
        params=params,
        concurrency=concurrency,
        fresh=options["fresh"],
        max_runtime_s=options["max_runtime"],
        progress=options["progress"],
        quiet=options["quiet"],
        summary_json=options["summary_json"],
        rpm=options["rpm"],
        tpm=options["tpm"],
        adaptive=options["adaptive"],
        breaker_threshold=options["breaker_threshold"],
        output=output,
        reask=options["reask"],
        check_tool_calls=options["check_tool_calls"],
        id_field=options["id_field"],
        limit=options["limit"],
        template=line_template(options),
        fleet=tuple(endpoints) if len(endpoints) > 1 else (),
        probe_after_s=options["probe_after"],
    )
    client_settings = ClientSettings(  # where to connect is the endpoint's
        proxy=options["proxy"] or None,
        trust_env=options["trust_env"],
        connect_timeout_s=options["connect_timeout"],
        idle_timeout_s=options["idle_timeout"],
        total_timeout_s=options["total_timeout"],
        max_event_bytes=options["max_event_bytes"],
    )
    retry = RetrySettings(
        max_attempts=options["max_attempts"], initial_wait_s=options["retry_wait"]
    )
    return run_settings, client_settings, retry


def endpoints_from_options(options: dict[str, Any]) -> list[Endpoint]:
    """Every --base-url (URL#c=N sets one endpoint's in-flight limit), each with the
    shared --endpoint path, --api-key and --stream-usage."""
    try:
        entries = parse_base_urls(options["base_urls"])
    except EndpointListError as error:
        raise click.BadParameter(str(error), param_hint="--base-url") from None
    if not entries:
        raise click.BadParameter("no URL given", param_hint="--base-url")
    return [
        dataclasses.replace(
            endpoint_for(
                url,
                options["endpoint"],
                api_key=options["api_key"] or None,
                stream_usage=options["stream_usage"],
            ),
            in_flight_limit=limit,
        )
        for url, limit in entries
    ]


def output_spec(options: dict[str, Any]) -> OutputSpec | None:
    """What every answer must be: --json-schema FILE, --json, or nothing."""
    path = options["json_schema"]
    if path is not None and options["json_only"]:
        raise click.UsageError("--json-schema and --json exclude each other")
    if path is not None:
        try:
            with open(path, "rb") as handle:
                document = orjson.loads(handle.read())
            spec = spec_from_document(document, path)
        except OSError as error:
            raise click.BadParameter(f"cannot read {path}: {error.strerror}",
                                     param_hint="--json-schema") from None  # fmt: skip
        except orjson.JSONDecodeError as error:
            raise click.BadParameter(f"{path} is not JSON: {error}",
                                     param_hint="--json-schema") from None  # fmt: skip
        except SchemaFileError as error:
            raise click.BadParameter(str(error), param_hint="--json-schema") from None
    elif options["json_only"]:
        spec = OutputSpec()
    else:
        if options["no_response_format"]:
            raise click.UsageError("--no-response-format goes with --json-schema or --json")
        return None
    return dataclasses.replace(spec, send_format=not options["no_response_format"])


def line_template(options: dict[str, Any]) -> LineTemplate | None:
    """--template/--template-file with --system(-file), --param-fields, --keep-fields."""
    user = _text_or_file(options, "template")
    system = _text_or_file(options, "system")
    if user is None:
        for name in ("system", "param_fields", "keep_fields"):
            if options[name] is not None or options.get(f"{name}_file"):
                flag = "--" + name.replace("_", "-")
                raise click.UsageError(f"{flag} goes with --template or --template-file")
        return None
    try:
        return LineTemplate.from_text(user, system, _names(options["param_fields"]),
                                      _names(options["keep_fields"]))  # fmt: skip
    except TemplateError as error:
        raise click.BadParameter(str(error), param_hint="--template") from None


def _text_or_file(options: dict[str, Any], name: str) -> str | None:
    text, path = options[name], options[f"{name}_file"]
    flag = "--" + name
    if text is not None and path is not None:
        raise click.UsageError(f"{flag} and {flag}-file exclude each other")
    if path is None:
        return text  # type: ignore[no-any-return]  # a str or None from click
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().rstrip("\n")
    except (OSError, UnicodeDecodeError) as error:
        raise click.BadParameter(
            f"cannot read {path}: {error}", param_hint=f"{flag}-file"
        ) from None


def _names(text: str | None) -> list[str]:
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def shard_and_output(options: dict[str, Any]) -> tuple[Shard | None, str]:
    if options["shard"] is None:
        return None, options["output_path"]
    try:
        shard = parse_shard(options["shard"], os.environ, options["shard_count"])
        return shard, shard.output_path(options["output_path"])
    except ShardError as error:
        raise click.UsageError(str(error)) from None
