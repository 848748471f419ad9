"""Prompt lines and what OUT holds -> the jobs a run sends (no I/O of its own).

For each line: is it this shard's, what did earlier results say of it, what body does
the endpoint get, what does it cost against a token budget. Invalid lines come back to
be recorded; lines OUT already answered never get here (`PromptReader` hands them to
`on_done`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import orjson

from ..errors import InputError, ModelNotSupportedError
from ..http.flow import estimate_tokens
from ..wire.answer import AnswerCheck
from ..wire.validation import AnswerChecker, SchemaFileError, spec_of_response_format
from .ledger import LedgerState
from .linesource import WAIT, Wait
from .prompts import InvalidLine, MaybeRepeated, Prompt, PromptReader
from .run_settings import RunSettings

MAX_CHECKERS = 256  # distinct schema/tool sets whose checkers are kept


@dataclass(slots=True)
class Job:
    """A prompt ready to send: its body, its fingerprint, attempts spent before."""

    prompt: Prompt
    body: dict[str, Any]
    request_hash: str
    attempts_before: int = 0
    cost: int = 0  # estimated tokens, for a --tpm budget
    check: AnswerCheck | None = None  # what its answers must be (JSON, a schema, tool calls)
    reask: bool = False  # after an invalid answer, show the model its mistake


class Planner:
    """Turns each prompt line into a `Job`, an `InvalidLine` to record, or nothing."""

    def __init__(self, settings: RunSettings, state: LedgerState) -> None:
        self.settings = settings
        self.state = state
        self.superseding = 0  # jobs whose id OUT already has a result for
        self.redone_changed = 0  # of those, ok results whose request has changed
        self._checkers: dict[bytes, AnswerChecker | None] = {}  # built once per schema/tools
        output = settings.output  # the run's own spec: its checker and format built once
        self._run_checker = None if output is None else AnswerChecker(output)
        self._response_format = (
            output.response_format() if output is not None and output.send_format else None
        )

    def owns(self, prompt_id: str) -> bool:
        """True when this run's shard (if any) sends the id."""
        shard = self.settings.shard
        return shard is None or shard.owns(prompt_id)

    def plan(self, item: Prompt | InvalidLine) -> Job | InvalidLine | None:
        """The job for one line; an `InvalidLine` to record; None (another shard's)."""
        shard, state = self.settings.shard, self.state
        if isinstance(item, InvalidLine):
            if not item.repeat:
                state.mention(item.id)  # still in the input, just broken now
            return item if shard is None or shard.index == 0 else None
        known = state.has(item.id)
        if shard is not None and not shard.owns(item.id):
            return None
        try:
            body = self.body(item)
            check = self.checker(body)
            if self._response_format is not None and "response_format" not in body:
                body["response_format"] = self._response_format  # shared: bodies are read
        except InputError as error:  # reported by the id's own shard
            return InvalidLine(item.id, item.line_no, error.reason, item.metadata)
        except SchemaFileError as error:  # the line's own schema or tool parameters
            return InvalidLine(item.id, item.line_no, str(error), item.metadata)
        if known:
            self.superseding += 1
            if state.has_ok(item.id):
                self.redone_changed += 1
        cost = estimate_tokens(body) if self.settings.tpm else 0
        return Job(
            item,
            body,
            f"{item.fingerprint:016x}",
            state.attempts_before(item.id, item.fingerprint),
            cost,
            check,
            self.settings.reask and check is not None,
        )

    def body(self, prompt: Prompt) -> dict[str, Any]:
        """The request body of a prompt: run defaults, then the line's own parameters."""
        params = {**self.settings.params, **prompt.params}
        endpoint = self.settings.endpoint
        model = params.pop("model", None) or self.settings.model
        try:
            body = endpoint.request_body(model, prompt.messages, params)
        except ModelNotSupportedError as error:
            raise InputError(prompt.line_no, str(error)) from None
        body["stream"] = True
        return body

    def checker(self, body: dict[str, Any]) -> AnswerChecker | None:
        """What the answers to `body` must be: the line's own `response_format`, else the
        run's spec; its tools' calls (unless --no-check-tool-calls). None: nothing."""
        own_format = "response_format" in body
        tools = body.get("tools") if self.settings.check_tool_calls else None
        if not own_format and not tools:
            return self._run_checker  # the common case: no dict built, no key computed
        spec = spec_of_response_format(body["response_format"]) if own_format else (
            self.settings.output)  # fmt: skip
        if spec is None and not tools:
            return None
        key = orjson.dumps([None if spec is None else spec.fingerprint(), tools],
                           option=orjson.OPT_SORT_KEYS)  # fmt: skip
        checker = self._checkers.get(key)
        if checker is None:
            if len(self._checkers) >= MAX_CHECKERS:
                self._checkers.clear()
            checker = self._checkers[key] = AnswerChecker(spec, tools)
        return checker

    def jobs(
        self,
        reader: PromptReader,
        lines: Iterable[bytes | Wait],
        reopen: Callable[[], AbstractContextManager[Iterable[bytes]]],
        record_invalid: Callable[[InvalidLine], None],
    ) -> Iterator[Job | Wait]:
        """Every job of `lines`, in order; `WAIT` passed on; invalid lines recorded.

        Lines whose id the reader's Bloom filter may have seen come back once the input
        is read, settled by a second pass over `reopen()`, and are sent then if new.
        """
        suspects: dict[str, list[int]] = {}
        for item in reader.read(lines):
            if item is WAIT:
                yield WAIT
                continue
            if isinstance(item, MaybeRepeated):
                suspects.setdefault(item.id, []).append(item.line_no)
                continue
            planned = self.plan(item)  # type: ignore[arg-type]  # a Prompt or InvalidLine
            if isinstance(planned, Job):
                yield planned
            elif planned is not None:
                record_invalid(planned)
        if suspects:
            with reopen() as again:
                for settled in reader.settle(again, suspects):
                    planned = self.plan(settled)
                    if isinstance(planned, Job):
                        yield planned
                    elif planned is not None:
                        record_invalid(planned)


def request_defaults(settings: RunSettings) -> bytes:
    """What a run adds to every line's request, serialized for `request_fingerprint`."""
    endpoint = settings.endpoint
    defaults: dict[str, Any] = {
        "model": settings.model or endpoint.default_model,
        "params": settings.params,
        "body": dict(endpoint.body_defaults),
    }
    if settings.output is not None:  # absent otherwise, so older request_hashes hold
        defaults["output"] = {**settings.output.fingerprint(), "sent": settings.output.send_format}
    return orjson.dumps(defaults, option=orjson.OPT_SORT_KEYS)
