"""`netfly-batch export`: OUT files -> the OpenAI Batch output file, plain JSONL, or CSV.

The latest result per id is written once (`read.select_latest`), in input order
(`--sort line`), by id, or as the files have them. An OpenAI Batch line carries the
`chat.completion` the server would have sent without streaming (rebuilt with
`Completion.to_chat_completion`, the one place that shape is written).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import time
from calendar import timegm
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from ..errors import OutputError
from ..wire.answer import Choice, Completion, ToolCall
from .atomic import atomic_file
from .read import LineReader, Order, select_latest

Format = Literal["openai-batch", "jsonl", "csv"]
Sort = Order  # the order of lines written: input line, id, or as in the files
FORMATS: tuple[Format, ...] = ("openai-batch", "jsonl", "csv")
SORTS: tuple[Sort, ...] = ("line", "id", "none")
CSV_COLUMNS = (
    "id", "status", "attempts", "content", "reasoning", "tool_calls", "finish_reason",
    "prompt_tokens", "completion_tokens", "total_tokens", "error_type", "error_message",
    "model", "line", "elapsed_s", "finished_at", "endpoint",
)  # fmt: skip


@dataclass(slots=True)
class ExportReport:
    """What an export wrote."""

    written: int = 0
    errors_written: int = 0  # lines sent to --errors
    by_status: dict[str, int] = field(default_factory=dict)
    unreadable_lines: int = 0


def export_results(
    sources: list[Path],
    target: Path,
    fmt: Format = "openai-batch",
    sort: Sort = "line",
    errors_target: Path | None = None,
) -> ExportReport:
    """Write the latest result of each id of `sources` to `target` (atomically)."""
    if errors_target is not None and errors_target.resolve() == target.resolve():
        raise OutputError(f"--errors names the output file itself ({target}); choose another")
    selection = select_latest(sources)
    report = ExportReport(
        by_status=selection.by_status(), unreadable_lines=selection.unreadable_lines
    )
    places = selection.places(sort, answered_ids_only_once=True)
    with (
        LineReader(selection) as reader,
        atomic_file(target, "export") as out,
        atomic_file(errors_target, "export-errors")
        if errors_target is not None
        else contextlib.nullcontext() as errors_out,
    ):
        write = _writer(fmt, out)
        write_error = None if errors_out is None else _writer(fmt, errors_out)
        for place in places:
            record = orjson.loads(reader.line_at(place))
            if write_error is not None and _status_code(record) != 200:
                write_error(record)
                report.errors_written += 1
            else:
                write(record)
                report.written += 1
    return report


def _writer(fmt: Format, handle: IO[bytes]) -> Callable[[dict[str, Any]], None]:
    """A function that writes one result record to `handle` in `fmt`."""
    if fmt == "csv":
        return _csv_writer(handle)
    convert = batch_line if fmt == "openai-batch" else None

    def write(record: dict[str, Any]) -> None:
        line = record if convert is None else convert(record)
        handle.write(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))

    return write


def _csv_writer(handle: IO[bytes]) -> Callable[[dict[str, Any]], None]:
    text = _TextOut(handle)
    writer = csv.writer(text)
    writer.writerow(CSV_COLUMNS)

    def write(record: dict[str, Any]) -> None:
        writer.writerow(csv_row(record))

    return write


class _TextOut:
    """A text `write()` over a binary file, for the csv module (UTF-8)."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle

    def write(self, text: str) -> int:
        return self._handle.write(text.encode())


def batch_request_id(prompt_id: str) -> str:
    """`batch_req_` and 32 hex digits, stable for the id."""
    return "batch_req_" + hashlib.blake2b(prompt_id.encode(), digest_size=16).hexdigest()


def batch_line(record: dict[str, Any]) -> dict[str, Any]:
    """One result as a line of the OpenAI Batch output (or error) file."""
    prompt_id = str(record["id"])
    line: dict[str, Any] = {"id": batch_request_id(prompt_id), "custom_id": prompt_id}
    status_code = _status_code(record)
    error = record.get("error") or {}
    if record.get("status") == "ok":
        body: dict[str, Any] | None = completion_of(record).to_chat_completion()
    elif status_code is not None:
        body = {
            "error": {
                "message": error.get("message"),
                "type": error.get("type"),
                "code": error.get("code"),
            }
        }
    else:
        body = None
    if body is None:
        line["response"] = None
        line["error"] = {
            "code": error.get("type") or record.get("status"),
            "message": error.get("message"),
        }
    else:
        line["response"] = {
            "status_code": status_code,
            "request_id": record.get("request_id"),
            "body": body,
        }
        line["error"] = None
    return line


def completion_of(record: dict[str, Any]) -> Completion:
    """The answer a result line holds, as a `Completion` (for `to_chat_completion`)."""
    items = record.get("choices") or [_first_choice(record)]
    return Completion(
        content=record.get("content") or "",
        finish_reason=record.get("finish_reason"),
        model=record.get("model") or "",
        usage=record.get("usage"),
        attempts=record.get("attempts") or 1,
        id=record.get("completion_id") or "chatcmpl-" + batch_request_id(str(record["id"]))[10:],
        created=record.get("created") or _epoch(record.get("finished_at")),
        system_fingerprint=record.get("system_fingerprint"),
        request_id=record.get("request_id"),
        choices=[_choice(item) for item in items],
    )


def _first_choice(record: dict[str, Any]) -> dict[str, Any]:
    return {key: record.get(key) for key in (
        "content", "reasoning", "tool_calls", "refusal", "finish_reason", "logprobs",
        "function_call")} | {"index": 0}  # fmt: skip


def _choice(item: dict[str, Any]) -> Choice:
    calls = item.get("tool_calls")
    return Choice(
        index=item.get("index") or 0,
        content=item.get("content") or "",
        finish_reason=item.get("finish_reason"),
        reasoning=item.get("reasoning"),
        tool_calls=[_tool_call(call) for call in calls] if calls else None,
        refusal=item.get("refusal"),
        logprobs=item.get("logprobs"),
        function_call=item.get("function_call"),
    )


def _tool_call(call: dict[str, Any]) -> ToolCall:
    function = call.get("function") or {}
    return ToolCall(
        call.get("id"),
        function.get("name") or "",
        function.get("arguments") or "",
        call.get("type") or "function",
    )


def csv_row(record: dict[str, Any]) -> list[Any]:
    """One result as a CSV row of `CSV_COLUMNS`."""
    usage = record.get("usage") or {}
    error = record.get("error") or {}
    calls = record.get("tool_calls")
    return [
        record.get("id"), record.get("status"), record.get("attempts"),
        record.get("content"), record.get("reasoning"),
        orjson.dumps(calls).decode() if calls else "", record.get("finish_reason"),
        usage.get("prompt_tokens"), usage.get("completion_tokens"), usage.get("total_tokens"),
        error.get("type"), error.get("message"), record.get("model"), record.get("line"),
        record.get("elapsed_s"), record.get("finished_at"), record.get("endpoint"),
    ]  # fmt: skip


def _status_code(record: dict[str, Any]) -> int | None:
    """200 for an ok result; an error's HTTP status; None when there was none."""
    if record.get("status") == "ok":
        return 200
    status = (record.get("error") or {}).get("status")
    return status if isinstance(status, int) else None


def _epoch(stamp: object) -> int:
    """Seconds since the epoch of a `finished_at` stamp (0 when there is none)."""
    if not isinstance(stamp, str) or len(stamp) < 19:
        return 0
    try:
        return timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return 0
