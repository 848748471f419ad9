"""One `netfly-batch run`: its lifecycle (signals, deadline, fsync, the pool).

Data flows one way: INPUT (`inputs.py`) -> prompts (`prompts.py`) -> jobs (`plan.py`,
with what OUT holds from `ledger.py`) -> the pool (`pool.py`) -> OUT and counters.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..errors import RequestError
from ..http.flow import FlowControl, FlowSettings
from ..results import Result
from ..settings import ClientSettings, RetrySettings
from ..wire.answer import AnswerCheck, Completion
from .inputs import InputFile, check_paths
from .ledger import FSYNC_INTERVAL_S, Ledger, LedgerState
from .linesource import Wait
from .outcome import INTERRUPTED, Counters, RunOutcome, Stop
from .plan import Job, Planner, request_defaults
from .pool import run_pool
from .progress import ProgressBar
from .prompts import InvalidLine, PromptReader
from .run_settings import RunSettings

if TYPE_CHECKING:  # imported when the first request is sent
    from ..http.client import ChatClient
    from ..http.fleet import Fleet


class BatchRun:
    """Wires one run together; `await BatchRun(...).run()` returns its outcome."""

    def __init__(
        self,
        settings: RunSettings,
        client_settings: ClientSettings,
        retry: RetrySettings,
        stderr: IO[str],
    ) -> None:
        self.settings = settings
        self.client_settings = client_settings
        self.retry = retry
        self.stderr = stderr
        self.counters = Counters(concurrency_limit=settings.pool_size)
        self.ledger = Ledger(Path(settings.output_path))
        self.input = InputFile(settings.input_path, settings.limit)
        self.stop: Stop | None = None
        self.signal_number: int | None = None
        self._planner: Planner | None = None
        self._pool: asyncio.Future[None] | None = None
        self._sync_handle: asyncio.TimerHandle | None = None
        self._input_done = False  # every line of INPUT has been taken
        self._client: ChatClient | None = None
        self._fleet: Fleet | None = None  # several endpoints: made in run()
        self._bar = ProgressBar(None, enabled=False, stream=stderr)  # the real one in run()
        self.flow = FlowControl(
            FlowSettings(
                settings.concurrency,
                settings.rpm,
                settings.tpm,
                settings.adaptive,
                settings.breaker_threshold,
            ),
            on_trip=self._on_trip,
        )
        self._flows = [self.flow]  # where the counters come from: the fleet's, if any

    async def run(self) -> RunOutcome:
        """Do the work that is left; never raises for a failed request."""
        check_paths(self.settings.input_path, self.settings.output_path)
        self.input.open()
        try:
            state = self.ledger.open(fresh=self.settings.fresh)
        except BaseException:
            self.input.close()
            raise
        self.counters.torn_lines_set_aside = 1 if state.torn_bytes else 0
        planner = self._planner = Planner(self.settings, state)
        loop = asyncio.get_running_loop()
        bar = self._bar
        try:
            for signum in INTERRUPTED:  # until OUT is closed: a second signal must find them
                loop.add_signal_handler(signum, self._on_signal, signum)
            lines = self.input.lines(loop)
            if self.settings.fleet:
                self._fleet = self._make_fleet()
                self._flows = [member.flow for member in self._fleet.members]
            bar = self._bar = ProgressBar(
                self._estimate_total(),
                self._progress_enabled(),
                self.stderr,
                fleet=self._fleet.members if self._fleet else None,
            )
            try:
                await self._run_pool(self._jobs(lines, state, planner))
            finally:
                if self._client is not None:
                    await self._client.close()
                if self._fleet is not None:
                    await self._fleet.close()
            if self.stop is None:
                # ids past a --limit are not "gone from the input": not counted
                self.counters.not_in_input = 0 if self.input.cut_short else state.not_in_input
                if state.dropped_lines or planner.superseding:
                    self.counters.compacted_lines = self.ledger.compact()
        finally:
            self._sync_counters()
            if self._fleet is not None:
                self.counters.endpoints = [member.stats() for member in self._fleet.members]
            bar.close(self.counters)
            self.ledger.close()
            self.input.close()
            for signum in INTERRUPTED:
                loop.remove_signal_handler(signum)
        return RunOutcome(self.counters, self.stop, self.signal_number)

    def _send(
        self,
        body: dict[str, Any],
        cost: int = 0,
        accept: AnswerCheck | None = None,
        reask: bool = False,
    ) -> Awaitable[Completion]:
        """Send one request; the client (and aiohttp) is set up on the first one, so a
        rerun with nothing left to send never pays for it."""
        if self._fleet is not None:
            return self._fleet.complete(body, cost, accept, reask)
        client = self._client
        if client is None:
            from ..http.client import ChatClient

            client = self._client = ChatClient(
                self.client_settings, self.retry, gate=self.flow, endpoint=self.settings.endpoint
            )
        return client.complete(body, cost, accept, reask)

    def _make_fleet(self) -> Fleet:
        from ..http.fleet import Fleet

        return Fleet(
            self.settings.fleet,
            self.client_settings,
            self.retry,
            self.flow.settings,
            probe_after_s=self.settings.probe_after_s,
            on_all_down=self._on_trip,
        )

    async def _run_pool(self, jobs: Iterator[Job | Wait]) -> None:
        loop = asyncio.get_running_loop()
        pool = asyncio.ensure_future(
            run_pool(
                jobs,
                self._send,
                self._record,
                self.settings.pool_size,
                should_stop=lambda: self.stop is not None,
                input_ready=self.input.ready,
            )
        )
        self._pool = pool
        deadline = None
        if self.settings.max_runtime_s is not None:
            deadline = loop.call_later(self.settings.max_runtime_s, self._on_deadline, pool)
        self._sync_handle = loop.call_later(FSYNC_INTERVAL_S, self._sync_output, loop)
        try:
            await pool
            if self.stop is not None and self.stop.kind == "max_runtime" and self._input_done:
                self.stop = None  # the deadline came, but nothing was left to start
        except asyncio.CancelledError:
            if self.stop is None:
                raise
        finally:
            if deadline is not None:
                deadline.cancel()
            if self._sync_handle is not None:
                self._sync_handle.cancel()

    def _sync_output(self, loop: asyncio.AbstractEventLoop) -> None:
        """fsync OUT at least once a second while results are being written."""
        self.ledger.sync()
        self._sync_handle = loop.call_later(FSYNC_INTERVAL_S, self._sync_output, loop)

    def _on_signal(self, signum: int) -> None:
        if self.signal_number is not None:  # a second signal: leave now; lines are whole
            os._exit(128 + signum)
        self.signal_number = signum
        self.stop = Stop("signal", INTERRUPTED[signal.Signals(signum)])
        if self._pool is not None:
            self._pool.cancel()

    def _on_deadline(self, pool: asyncio.Future[None]) -> None:
        if self.stop is None:
            self.stop = Stop("max_runtime", "stopped at --max-runtime")
            self.input.wake()  # workers waiting for input: stop now, not after the grace
            asyncio.get_running_loop().call_later(self.settings.stop_grace_s, pool.cancel)

    def _on_trip(self, error: RequestError) -> None:
        if self.stop is None:
            every = "every endpoint is" if self.settings.fleet else "endpoint"
            self.stop = Stop(
                "endpoint_down",
                f"{every} unreachable: {error.message}; nothing more was sent; rerun to resume",
            )
            if self._pool is not None:
                self._pool.cancel()

    def _jobs(
        self, lines: Iterable[bytes | Wait], state: LedgerState, planner: Planner
    ) -> Iterator[Job | Wait]:
        """The planner's jobs; then the input is done (a deadline now stops nothing)."""
        reader = PromptReader(
            request_defaults(self.settings),
            self.input.seen_ids(),
            state,
            on_done=self._skip_done,
            id_field=self.settings.id_field,
            template=self.settings.template,
        )
        yield from planner.jobs(reader, lines, self.input.reopen, self._record_invalid)
        self._input_done = True

    def _skip_done(self, prompt_id: str) -> None:
        """A line whose very request OUT already answered (most lines of a rerun)."""
        assert self._planner is not None
        if self._planner.owns(prompt_id):
            self.counters.skipped_ok += 1
            self._bar.advance(self.counters)

    def _sync_counters(self) -> None:
        counters = self.counters
        if self._planner is not None:
            counters.redone_changed = self._planner.redone_changed
        counters.attempts = counters.rate_limited = counters.invalid_output_attempts = 0
        counters.concurrency_limit = 0
        for flow in self._flows:  # one, or one per endpoint of a fleet
            counters.attempts += flow.attempts
            counters.rate_limited += flow.rate_limited
            counters.invalid_output_attempts += flow.invalid_output
            counters.concurrency_limit += flow.current_limit

    def _record_invalid(self, line: InvalidLine) -> None:
        error = {"type": "invalid_line", "message": f"line {line.line_no}: {line.reason}"}
        self._record(
            Result(line.id, "invalid", 0, None, error, line.line_no, metadata=line.metadata)
        )

    def _record(self, result: Result) -> None:
        self.ledger.append(result.to_line())
        self.counters.count(result)
        self._sync_counters()
        self._bar.advance(self.counters)

    def _progress_enabled(self) -> bool:
        if self.settings.quiet:
            return False
        if self.settings.progress is not None:
            return self.settings.progress
        return self.stderr.isatty()

    def _estimate_total(self) -> int | None:
        total = self.input.total_lines
        shard = self.settings.shard
        return total if total is None or shard is None else -(-total // shard.count)
