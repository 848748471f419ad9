"""INPUT from a pipe whose producer is slow: the run never waits on it with streams,
signals or deadlines held up."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from servers import read_results, simulator_thread

from netfly_batch.batch.linesource import WAIT, ThreadedLines, Wait
from netfly_batch.errors import InputFileError
from netfly_batch.simulator import SimulatorSettings


def line(number: int) -> bytes:
    return orjson.dumps({"id": f"p{number}", "prompt": f"prompt {number}"}) + b"\n"


def spawn_reading_stdin(out: Path, url: str, *extra: str) -> subprocess.Popen[bytes]:
    """`netfly-batch run -` fed by the test; its stderr goes to OUT.stderr."""
    with open(out.with_suffix(".stderr"), "wb") as stderr:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "netfly_batch",
                "run",
                "-",
                "-o",
                str(out),
                "--base-url",
                url,
                "-c",
                "4",
                "-q",
                *extra,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


def wait_for(condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def results_in(out: Path) -> int:
    return out.read_bytes().count(b"\n") if out.exists() else 0


def test_a_prompt_is_answered_while_the_producer_is_silent(tmp_path: Path) -> None:
    """The producer wrote two lines and went quiet (pipe still open): both are answered
    and written at once, not when the next line or the end comes."""
    out = tmp_path / "out.jsonl"
    with simulator_thread(SimulatorSettings(chunk_count=3, chunk_delay_s=0.02)) as sim:
        process = spawn_reading_stdin(out, sim.url)
        assert process.stdin is not None
        process.stdin.write(line(0) + line(1))
        process.stdin.flush()
        wait_for(lambda: results_in(out) == 2)
        process.stdin.write(line(2))
        process.stdin.close()
        assert process.wait(timeout=15) == 0
    assert sorted(r["id"] for r in read_results(out)) == ["p0", "p1", "p2"]


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_a_run_that_waits_for_its_producer(
    tmp_path: Path, signum: int, code: int
) -> None:
    out = tmp_path / "out.jsonl"
    with simulator_thread(SimulatorSettings(chunk_count=2)) as sim:
        process = spawn_reading_stdin(out, sim.url)
        assert process.stdin is not None
        process.stdin.write(line(0))
        process.stdin.flush()
        wait_for(lambda: results_in(out) == 1)
        process.send_signal(signum)
        assert process.wait(timeout=10) == code  # the pipe is still open and silent
        process.stdin.close()
    assert [r["status"] for r in read_results(out)] == ["ok"]


def test_max_runtime_stops_a_run_that_waits_for_its_producer_at_once(tmp_path: Path) -> None:
    """No grace period is spent waiting for a line that may never come."""
    out = tmp_path / "out.jsonl"
    with simulator_thread(SimulatorSettings(chunk_count=2)) as sim:
        process = spawn_reading_stdin(out, sim.url, "--max-runtime", "1s")
        assert process.stdin is not None
        process.stdin.write(line(0))
        process.stdin.flush()
        started = time.monotonic()
        assert process.wait(timeout=20) == 75
        assert time.monotonic() - started < 10  # not the 30 s grace
        process.stdin.close()
    assert [r["status"] for r in read_results(out)] == ["ok"]


async def next_line(lines: ThreadedLines) -> bytes | None:
    """The next line as a reader of the pool gets it: waiting whenever it says WAIT."""
    import asyncio

    while (item := next(lines, None)) is WAIT:
        await asyncio.wait_for(lines.ready(), 5)
    return item  # type: ignore[return-value]


async def test_threaded_lines_say_wait_until_a_line_comes_and_end_with_the_pipe() -> None:
    import asyncio
    import os

    read_end, write_end = os.pipe()
    source = os.fdopen(read_end, "rb")
    lines = ThreadedLines(asyncio.get_running_loop(), fd=source.fileno())
    assert next(lines) is WAIT
    os.write(write_end, b"one\ntwo\n")
    assert [await next_line(lines), await next_line(lines)] == [b"one\n", b"two\n"]
    assert next(lines) is WAIT
    os.close(write_end)
    assert await next_line(lines) is None
    source.close()


async def test_threaded_lines_raise_a_read_error_in_the_reader(tmp_path: Path) -> None:
    import asyncio

    failing = ThreadedLines(asyncio.get_running_loop(), path=str(tmp_path))  # a folder: EISDIR
    with pytest.raises(InputFileError, match=r"cannot read .*: Is a directory"):
        await next_line(failing)


async def test_a_line_that_comes_wakes_one_waiting_worker_not_all(monkeypatch) -> None:
    """With 200 workers idle on a slow input, each new line costs a few `next()` calls."""
    import asyncio

    from netfly_batch.batch import pool as pool_module

    arrived: asyncio.Queue[int] = asyncio.Queue()
    ready = asyncio.Event()
    calls = 0

    def jobs() -> Iterator[int | Wait]:
        nonlocal calls
        while True:
            calls += 1
            if arrived.empty():
                ready.clear()
                yield WAIT
                continue
            number = arrived.get_nowait()
            if number < 0:
                return
            yield number

    async def sent(job: int, send: object) -> int:
        return job

    monkeypatch.setattr(pool_module, "send_job", sent)
    done: list[int] = []
    pool = asyncio.ensure_future(
        pool_module.run_pool(
            jobs(),
            send=None,
            record=done.append,
            concurrency=200,  # type: ignore[arg-type]
            input_ready=ready.wait,
        )
    )
    await asyncio.sleep(0.05)
    calls_when_idle = calls
    for number in [*range(20), -1]:
        arrived.put_nowait(number)
        ready.set()
        await asyncio.sleep(0.01)
    await asyncio.wait_for(pool, 5)
    assert sorted(done) == list(range(20))
    assert (calls - calls_when_idle) / 21 < 10  # without turns: about 200 a line


async def test_a_long_line_over_many_reads_comes_whole(tmp_path: Path) -> None:
    import asyncio
    import os
    import threading

    read_end, write_end = os.pipe()
    long_line = b'{"id": "big", "prompt": "' + b"x" * (3 << 20) + b'"}\n'

    def write() -> None:
        for start in range(0, len(long_line), 50_000):  # many small writes
            os.write(write_end, long_line[start : start + 50_000])
        os.write(write_end, b"tail without newline")
        os.close(write_end)

    writer = threading.Thread(target=write)
    writer.start()
    lines = ThreadedLines(asyncio.get_running_loop(), fd=read_end)
    assert await next_line(lines) == long_line
    assert await next_line(lines) == b"tail without newline"
    assert await next_line(lines) is None
    writer.join(5)
    os.close(read_end)


def test_a_fifo_without_a_writer_yet_does_not_hold_up_max_runtime(tmp_path: Path) -> None:
    """Opening a FIFO waits for its writer: the reader thread does it, not the loop."""
    import os

    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    out = tmp_path / "out.jsonl"
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "netfly_batch",
            "run",
            str(fifo),
            "-o",
            str(out),
            "--simulate",
            "--max-runtime",
            "1s",
            "-q",
        ],
        capture_output=True,
        timeout=30,
    )
    assert done.returncode == 75, done.stderr
    assert time.monotonic() - started < 15


def test_standard_input_left_non_blocking_is_still_read_whole(tmp_path: Path) -> None:
    """Some parents hand over a non-blocking pipe: lines that come later still count."""
    import os

    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    out = tmp_path / "out.jsonl"
    with simulator_thread(SimulatorSettings(chunk_count=2)) as sim:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "netfly_batch",
                "run",
                "-",
                "-o",
                str(out),
                "--base-url",
                sim.url,
                "-q",
            ],
            stdin=read_end,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(read_end)
        time.sleep(0.5)
        os.write(write_end, line(0) + line(1))
        os.close(write_end)
        assert process.wait(timeout=15) == 0
    assert sorted(r["id"] for r in read_results(out)) == ["p0", "p1"]
