"""The bounded pool: jobs in, results out; at most `concurrency` requests in flight."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol

from ..errors import InvalidOutputError, RequestError
from ..results import Result, Status, error_fields
from ..wire.answer import AnswerCheck, Completion
from .linesource import WAIT, Wait
from .plan import Job

log = logging.getLogger(__name__)


class SendRequest(Protocol):
    """Sends one request body, returns its whole answer (e.g. `ChatClient.complete`)."""

    def __call__(
        self,
        body: dict[str, Any],
        cost: int = 0,
        accept: AnswerCheck | None = None,
        reask: bool = False,
    ) -> Awaitable[Completion]: ...


async def run_pool(
    jobs: Iterator[Job | Wait],
    send: SendRequest,
    record: Callable[[Result], None],
    concurrency: int,
    should_stop: Callable[[], bool] = lambda: False,
    input_ready: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Send every job with at most `concurrency` in flight; `record` each result at once.

    Jobs are pulled lazily from one shared iterator (`next()` never awaits, so workers
    never collide), so a million-line input never becomes a million tasks. A `WAIT`
    from it means the input has nothing yet: the worker awaits `input_ready()`.
    """

    waiting_turn = asyncio.Lock()  # one worker waits for input, the rest wait for it

    async def worker() -> None:
        while not should_stop():
            job = next(jobs, None)
            if job is None:
                return
            if job is WAIT:  # the input's next line has not come yet
                assert input_ready is not None, "WAIT from jobs without input_ready"
                async with waiting_turn:  # so a new line wakes one worker, not all
                    await input_ready()
                continue
            record(await send_job(job, send))  # type: ignore[arg-type]  # not WAIT: a Job

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(max(1, concurrency)):
                group.create_task(worker())
    except BaseExceptionGroup as group:  # e.g. OUT could not be written: say why, once
        raise group.exceptions[0] from None


async def send_job(job: Job, send: SendRequest) -> Result:
    """One prompt to one result line; never raises (but for cancellation)."""
    prompt = job.prompt
    started = time.monotonic()
    try:
        completion = await send(job.body, job.cost, job.check, job.reask)
    except RequestError as error:
        result = _result(
            job, "error", job.attempts_before + error.attempts, started, error=error_fields(error)
        )
        result.endpoint = error.endpoint
        if isinstance(error, InvalidOutputError) and isinstance(error.answer, Completion):
            add_answer(result, error.answer)  # the last answer, for a person to see
        return result
    except Exception as error:  # a bug must cost one result, never the run
        log.exception("unexpected error on prompt %s", prompt.id)
        return _result(job, "error", job.attempts_before + 1, started, error=error_fields(error))
    return _result(
        job, "ok", job.attempts_before + completion.attempts, started, completion=completion
    )


def _result(
    job: Job,
    status: Status,
    attempts: int,
    started: float,
    *,
    completion: Completion | None = None,
    error: dict[str, Any] | None = None,
) -> Result:
    prompt = job.prompt
    result = Result(
        id=prompt.id,
        status=status,
        attempts=attempts,
        content=None,
        error=error,
        line=prompt.line_no,
        model=job.body.get("model"),
        elapsed_s=round(time.monotonic() - started, 3),
        metadata=prompt.metadata,
        request_hash=job.request_hash,
    )
    if completion is not None:
        add_answer(result, completion)
    return result


def add_answer(result: Result, completion: Completion) -> None:
    """Copy the answer into the result: choice 0's parts, every choice when several."""
    first = completion.first
    result.content = completion.content
    result.finish_reason = completion.finish_reason
    if completion.model:
        result.model = completion.model
    result.usage = completion.usage
    result.reasoning = first.reasoning
    result.tool_calls = [call.to_dict() for call in first.tool_calls] if first.tool_calls else None
    result.refusal = first.refusal
    result.logprobs = first.logprobs
    result.function_call = first.function_call
    if len(completion.choices) > 1:
        result.choices = [choice.to_result() for choice in completion.choices]
    result.request_id = completion.request_id
    result.completion_id = completion.id
    result.created = completion.created
    result.system_fingerprint = completion.system_fingerprint
    result.parsed = first.parsed
    result.endpoint = completion.endpoint
