"""Lines of a pipe, FIFO or terminal, read by a thread so the event loop never waits on them.

A regular file is read directly: its lines are there. A pipe's next line may take any
time to come, and a blocking read in the event loop would freeze the streams in flight
and the signal handlers with it (Ctrl-C would wait for the producer). `ThreadedLines`
yields each line that has arrived, or `WAIT` when none has: the caller then awaits
`ready()` and asks again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import select
import threading
from collections.abc import Iterator
from typing import Final

from ..errors import InputFileError


class Wait:
    """The type of `WAIT`: no line has arrived yet."""

    def __repr__(self) -> str:
        return "WAIT"


WAIT: Final = Wait()
_END: Final = object()
READ_BYTES = 1 << 16
BUFFERED_READS = 64  # read ahead at most this many reads' lines (4 MiB)


class ThreadedLines(Iterator["bytes | Wait"]):
    """An iterator over a pipe's lines that never blocks: `WAIT` when none is ready."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, *, fd: int | None = None, path: str | None = None
    ) -> None:
        """Start a thread reading file descriptor `fd` (left open), or the file at `path`
        (opened and closed by the thread: opening a FIFO waits for its writer).

        The thread reads the descriptor itself, not a Python file object: a daemon
        thread blocked inside a buffered file's read would abort the interpreter at exit.
        """
        self._loop = loop
        self._reads: queue.Queue[object] = queue.Queue(BUFFERED_READS)  # lists of lines
        self._pending: Iterator[bytes] = iter(())  # lines of the read being handed out
        self._ready = asyncio.Event()
        self._lock = threading.Lock()
        self._waiting = False  # the reader found nothing and waits for `_ready`
        self._ended = False
        thread = threading.Thread(
            target=self._pump, args=(fd, path), name="netfly-input", daemon=True
        )  # it may sit in a read until the process ends
        thread.start()

    def __next__(self) -> bytes | Wait:
        line = next(self._pending, None)
        if line is not None:
            return line
        if self._ended:
            raise StopIteration
        try:
            item = self._reads.get_nowait()
        except queue.Empty:
            with self._lock:  # checked again under the lock, so no wake-up is lost
                if self._reads.empty():
                    self._waiting = True
                    self._ready.clear()
                    return WAIT
            item = self._reads.get_nowait()
        if item is _END:
            self._ended = True
            raise StopIteration
        if isinstance(item, BaseException):
            self._ended = True
            raise item
        self._pending = iter(item)  # type: ignore[call-overload]  # a list of lines
        return next(self._pending)

    async def ready(self) -> None:
        """Return once a line (or the end) may have arrived, or `wake()` was called."""
        await self._ready.wait()

    def wake(self) -> None:
        """Let every waiting caller go on (e.g. the run is stopping)."""
        self._ready.set()

    def _pump(self, fd: int | None, path: str | None) -> None:
        item: object = _END
        name = path or "standard input"
        opened: int | None = None
        try:
            if fd is None:
                fd = opened = os.open(path or "", os.O_RDONLY)
            self._read_lines(fd)
        except OSError as error:  # raised in the reader's place, as a clear message
            item = InputFileError(f"cannot read {name}: {error.strerror or error}")
        except BaseException as error:
            item = error
        finally:
            if opened is not None:
                with contextlib.suppress(OSError):
                    os.close(opened)
        self._put(item)

    def _read_lines(self, fd: int) -> None:
        """Hand over each read's complete lines; a long line's parts wait in a list (so
        a line of many reads is joined once, not copied again with each read)."""
        parts: list[bytes] = []
        while True:
            try:
                chunk = os.read(fd, READ_BYTES)
            except BlockingIOError:  # a descriptor left non-blocking by whoever made it
                select.select([fd], [], [])
                continue
            if not chunk:
                break
            if b"\n" not in chunk:
                parts.append(chunk)
                continue
            lines = chunk.split(b"\n")
            if parts:
                parts.append(lines[0])
                lines[0] = b"".join(parts)
                parts = []
            last = lines.pop()
            if last:
                parts.append(last)
            self._put([line + b"\n" for line in lines])
        if parts:
            self._put([b"".join(parts)])

    def _put(self, item: object) -> None:
        self._reads.put(item)  # waits while the reader is BUFFERED_READS behind
        with self._lock:
            if not self._waiting:
                return
            self._waiting = False
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            self._loop.call_soon_threadsafe(self._ready.set)
