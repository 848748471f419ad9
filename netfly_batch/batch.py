"""One `netfly-batch run`: input -> ledger (what is left) -> pool -> OUT + summary."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import sys
from collections.abc import Awaitable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

import orjson

from .bloom import BloomFilter
from .chunks import Completion
from .errors import InputError, InputFileError, ModelNotSupportedError, OutputError, RequestError
from .flow import FlowControl, FlowSettings, estimate_tokens
from .ledger import FSYNC_INTERVAL_S, Ledger, LedgerState
from .linesource import WAIT, ThreadedLines, Wait
from .progress import Counters, ProgressBar
from .prompts import InvalidLine, MaybeRepeated, Prompt, PromptReader, SeenIds
from .results import Result
from .run_settings import RunSettings
from .runner import Job, run_pool
from .settings import ClientSettings, RetrySettings

if TYPE_CHECKING:  # imported when the first request is sent
    from .client import ChatClient

StopKind = Literal["max_runtime", "endpoint_down", "signal"]
INTERRUPTED = {signal.SIGINT: "interrupted (SIGINT)", signal.SIGTERM: "terminated (SIGTERM)"}


@dataclass(frozen=True, slots=True)
class Stop:
    """Why a run stopped before every prompt had its chance, in words and as a kind."""

    kind: StopKind
    message: str


@dataclass(slots=True)
class RunOutcome:
    """How a run ended: `stop` is None when it finished."""

    counters: Counters
    stop: Stop | None = None
    signal_number: int | None = None

    @property
    def message(self) -> str:
        """"finished", or why the run stopped early."""
        return self.stop.message if self.stop else "finished"


class BatchRun:
    """Wires one run together; `await BatchRun(...).run()` returns its outcome."""

    def __init__(self, settings: RunSettings, client_settings: ClientSettings,
                 retry: RetrySettings, stderr: IO[str]) -> None:
        self.settings = settings
        self.client_settings = client_settings
        self.retry = retry
        self.stderr = stderr
        self.counters = Counters(concurrency_limit=settings.concurrency)
        self.ledger = Ledger(Path(settings.output_path))
        self.stop: Stop | None = None
        self.signal_number: int | None = None
        self._superseding = 0
        self._pool: asyncio.Future[None] | None = None
        self._sync_handle: asyncio.TimerHandle | None = None
        self._total_lines: int | None = None
        self._rereadable = False  # a regular file: can be counted and read twice
        self._input_done = False  # every line of INPUT has been taken
        self._client: ChatClient | None = None
        self._piped: ThreadedLines | None = None  # INPUT when it is not a regular file
        self._bar = ProgressBar(None, enabled=False, stream=stderr)  # the real one in run()
        self.flow = FlowControl(
            FlowSettings(settings.concurrency, settings.rpm, settings.tpm, settings.adaptive,
                         settings.breaker_threshold),
            on_trip=self._on_trip,
        )

    async def run(self) -> RunOutcome:
        """Do the work that is left; never raises for a failed request."""
        check_paths(self.settings.input_path, self.settings.output_path)
        lines = open_input(self.settings.input_path)
        try:
            state = self.ledger.open(fresh=self.settings.fresh)
        except BaseException:
            if lines is not None and lines is not sys.stdin.buffer:
                lines.close()
            raise
        self.counters.torn_lines_set_aside = 1 if state.torn_bytes else 0
        loop = asyncio.get_running_loop()
        bar = self._bar
        try:
            for signum in INTERRUPTED:  # until OUT is closed: a second signal must find them
                loop.add_signal_handler(signum, self._on_signal, signum)
            # open_input() opened a regular file by its path: it can be counted and reread
            self._rereadable = lines is not None and lines is not sys.stdin.buffer
            if self._rereadable:
                self._total_lines = count_lines(Path(self.settings.input_path))
            else:  # a pipe: read by a thread, so that waiting for it never blocks the loop
                self._piped = self._reader_thread(lines, loop)
            bar = self._bar = ProgressBar(self._estimate_total(), self._progress_enabled(),
                                          self.stderr)
            try:
                source = self._piped or lines
                assert source is not None
                await self._run_pool(self._jobs(source, state))
            finally:
                if self._client is not None:
                    await self._client.close()
            if self.stop is None:
                self.counters.not_in_input = state.not_in_input
                if state.dropped_lines or self._superseding:
                    self.counters.compacted_lines = self.ledger.compact()
        finally:
            self._sync_flow_counters()
            bar.close(self.counters)
            self.ledger.close()
            if lines is not None and lines is not sys.stdin.buffer:
                lines.close()
            for signum in INTERRUPTED:
                loop.remove_signal_handler(signum)
        return RunOutcome(self.counters, self.stop, self.signal_number)

    def _reader_thread(self, lines: IO[bytes] | None, loop: asyncio.AbstractEventLoop
                       ) -> ThreadedLines | None:
        """The reader thread of standard input or a pipe named by INPUT (None: the thread
        opens it). None for a stream with no file descriptor (in memory, as in tests or
        when embedded), which is read directly."""
        if lines is None:
            return ThreadedLines(loop, path=self.settings.input_path)
        try:
            fd = lines.fileno()
        except (OSError, ValueError):
            return None
        return ThreadedLines(loop, fd=fd)

    def _complete(self, body: dict[str, Any], cost: int = 0) -> Awaitable[Completion]:
        """Send one request; the client (and aiohttp) is set up on the first one, so a
        rerun with nothing left to send never pays for it."""
        client = self._client
        if client is None:
            from .client import ChatClient

            client = self._client = ChatClient(self.client_settings, self.retry, gate=self.flow,
                                               endpoint=self.settings.endpoint)
        return client.complete(body, cost)

    async def _run_pool(self, jobs: Iterator[Job | Wait]) -> None:
        loop = asyncio.get_running_loop()
        pool = asyncio.ensure_future(run_pool(
            jobs, self._complete, self._record, self.settings.concurrency,
            should_stop=lambda: self.stop is not None,
            input_ready=None if self._piped is None else self._piped.ready,
        ))
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
            if self._piped is not None:
                self._piped.wake()  # workers waiting for input: stop now, not after the grace
            asyncio.get_running_loop().call_later(self.settings.stop_grace_s, pool.cancel)

    def _on_trip(self, error: RequestError) -> None:
        if self.stop is None:
            self.stop = Stop("endpoint_down", f"endpoint unreachable: {error.message}; "
                                              "nothing more was sent; rerun to resume")
            if self._pool is not None:
                self._pool.cancel()

    def _jobs(self, lines: Iterable[bytes | Wait], state: LedgerState) -> Iterator[Job | Wait]:
        """Valid prompts still to do; invalid lines are recorded on the way.

        Repeated ids are found with a Bloom filter (flat memory); each id it is unsure
        about is settled by a second pass over the input file, and sent then if new.
        """
        reader = PromptReader(request_defaults(self.settings), self._seen_ids(), state,
                              on_done=self._skip_done)
        suspects: dict[str, list[int]] = {}
        for item in reader.read(lines):
            if item is WAIT:
                yield WAIT
                continue
            if isinstance(item, MaybeRepeated):
                suspects.setdefault(item.id, []).append(item.line_no)
                continue
            job = self._job_for(item, state)  # type: ignore[arg-type]
            if job is not None:
                yield job
        if suspects:
            with open(self.settings.input_path, "rb") as again:
                for settled in reader.settle(again, suspects):
                    job = self._job_for(settled, state)
                    if job is not None:
                        yield job
        self._input_done = True

    def _seen_ids(self) -> SeenIds | None:
        """A Bloom filter for regular files; exact ids for stdin, pipes and FIFOs (they
        cannot be read twice)."""
        if not self._rereadable:
            return None
        return BloomFilter(self._total_lines or 0)

    def _skip_done(self, prompt_id: str) -> None:
        """A line whose very request OUT already answered (most lines of a rerun)."""
        shard = self.settings.shard
        if shard is None or shard.owns(prompt_id):
            self.counters.skipped_ok += 1
            self._bar.advance(self.counters)

    def _job_for(self, item: Prompt | InvalidLine, state: LedgerState) -> Job | None:
        """The job for one line, or None (invalid, or another shard's)."""
        shard = self.settings.shard
        if isinstance(item, InvalidLine):
            if not item.repeat:
                state.mention(item.id)  # still in the input, just broken now
            if shard is None or shard.index == 0:
                self._record_invalid(item)
            return None
        known = state.has(item.id)
        if shard is not None and not shard.owns(item.id):
            return None
        try:
            body = self._body(item)
        except InputError as error:  # reported by the id's own shard
            self._record_invalid(InvalidLine(item.id, item.line_no, error.reason,
                                             item.metadata))
            return None
        if known:
            self._superseding += 1
            if state.has_ok(item.id):
                self.counters.redone_changed += 1
        cost = estimate_tokens(body) if self.settings.tpm else 0
        return Job(item, body, f"{item.fingerprint:016x}",
                   state.attempts_before(item.id, item.fingerprint), cost)

    def _body(self, prompt: Prompt) -> dict[str, Any]:
        params = {**self.settings.params, **prompt.params}
        endpoint = self.settings.endpoint
        try:
            model = endpoint.resolve_model(params.pop("model", None) or self.settings.model)
        except ModelNotSupportedError as error:
            raise InputError(prompt.line_no, str(error)) from None
        body = endpoint.build_body(model, prompt.messages, params)
        body["stream"] = True
        return body

    def _sync_flow_counters(self) -> None:
        self.counters.attempts = self.flow.attempts
        self.counters.rate_limited = self.flow.rate_limited
        self.counters.concurrency_limit = self.flow.current_limit

    def _record_invalid(self, line: InvalidLine) -> None:
        error = {"type": "invalid_line", "message": f"line {line.line_no}: {line.reason}"}
        self._record(Result(line.id, "invalid", 0, None, error, line.line_no,
                            metadata=line.metadata))

    def _record(self, result: Result) -> None:
        self.ledger.append(result.to_line())
        self.counters.count(result)
        self._sync_flow_counters()
        self._bar.advance(self.counters)

    def _progress_enabled(self) -> bool:
        if self.settings.quiet:
            return False
        if self.settings.progress is not None:
            return self.settings.progress
        return self.stderr.isatty()

    def _estimate_total(self) -> int | None:
        total = self._total_lines
        shard = self.settings.shard
        return total if total is None or shard is None else -(-total // shard.count)


def request_defaults(settings: RunSettings) -> bytes:
    """What a run adds to every line's request, serialized for `request_fingerprint`."""
    endpoint = settings.endpoint
    defaults = {"model": settings.model or endpoint.default_model,
                "params": settings.params, "body": dict(endpoint.body_defaults)}
    return orjson.dumps(defaults, option=orjson.OPT_SORT_KEYS)


def open_input(path: str) -> IO[bytes] | None:
    """The input as a binary line iterator; "-" is standard input. None for a pipe or
    FIFO named by its path: opening one waits for its writer, so its reader thread does."""
    if path == "-":
        return sys.stdin.buffer
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        return open(path, "rb")
    except OSError as exc:
        raise InputFileError(f"cannot read {path}: {exc.strerror}") from exc


def check_paths(input_path: str, output_path: str) -> None:
    """Refuse OUT that is INPUT itself (it would be appended to while being read)."""
    if input_path == "-" or not os.path.exists(output_path):
        same = os.path.realpath(input_path) == os.path.realpath(output_path)
    else:
        try:
            same = os.path.samefile(input_path, output_path)
        except OSError:
            same = False
    if input_path != "-" and same:
        raise OutputError(f"OUT is the same file as INPUT ({output_path}); choose another OUT")


def count_lines(path: Path) -> int | None:
    """Lines of a regular file, counted in 1 MiB blocks (about a second per GB)."""
    try:
        size = path.stat().st_size
        count = 0
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                count += block.count(b"\n")
            if size and not _ends_with_newline(handle, size):
                count += 1
        return count
    except OSError:
        return None


def _ends_with_newline(handle: IO[bytes], size: int) -> bool:
    handle.seek(size - 1)
    return handle.read(1) == b"\n"
