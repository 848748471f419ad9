"""INPUT as lines: opening, counting, rereading, and the reader thread of a pipe.

A regular file is read directly, counted for the progress bar, and read again for the
second pass that settles ids a Bloom filter was unsure about. Standard input, pipes and
FIFOs cannot be counted nor read twice: a thread reads them (`linesource.py`) and their
ids are checked exactly. A compressed file (gzip, bzip2, xz, zstd: `compressed.py`) is a
regular file read as its decompressed lines: counted, read twice and resumed alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import IO

from ..errors import InputFileError, OutputError
from .bloom import BloomFilter
from .compressed import (
    checked_lines,
    compression_of,
    open_decompressed,
    read_errors,
)
from .linesource import WAIT, ThreadedLines, Wait
from .prompts import SeenIds


class InputFile:
    """INPUT of one run (`-` is standard input): `open()` it, then `lines(loop)`."""

    def __init__(self, path: str, limit: int | None = None) -> None:
        """`limit`: read only the first `limit` prompts (non-blank lines, invalid ones
        counted), as --limit asks."""
        self.path = path
        self.limit = limit
        self.cut_short = False  # the limit stopped the reading before INPUT's end
        self.total_lines: int | None = None  # known for a regular file, once `lines()` ran
        self._handle: IO[bytes] | None = None
        self._piped: ThreadedLines | None = None
        self.compression: str | None = None  # "gzip", "bzip2", "xz", "zstd", or None

    def open(self) -> None:
        """Open INPUT now, so that an unreadable file is reported before anything else."""
        self._handle = open_input(self.path)
        if self.rereadable:
            try:
                self.compression = compression_of(self.path)
            except OSError as exc:
                self.close()
                raise InputFileError(f"cannot read {self.path}: {exc.strerror}") from exc
            if self.compression is not None:
                self.close()
                self._handle = open_decompressed(self.path, self.compression)

    @property
    def rereadable(self) -> bool:
        """A regular file opened by its path: it can be counted and read twice."""
        return self._handle is not None and self._handle is not sys.stdin.buffer

    def lines(self, loop: asyncio.AbstractEventLoop) -> Iterable[bytes | Wait]:
        """INPUT's lines (the first `limit` prompts); from a pipe, `WAIT` whenever the next
        one has not come yet."""
        lines = self._all_lines(loop)
        if self.limit is None:
            return lines
        if self.total_lines is not None:
            self.total_lines = min(self.total_lines, self.limit)
        return self._first_prompts(lines, self.limit)

    def _first_prompts(self, lines: Iterable[bytes | Wait], limit: int) -> Iterator[bytes | Wait]:
        """The lines up to the `limit`-th prompt; then stop (without waiting for more)."""
        taken = 0
        for raw in lines:
            yield raw
            if raw is not WAIT and raw.strip():  # type: ignore[union-attr]  # bytes
                taken += 1
                if taken == limit:
                    self.cut_short = True  # (perhaps INPUT had no more: it is not read)
                    return

    def _all_lines(self, loop: asyncio.AbstractEventLoop) -> Iterable[bytes | Wait]:
        if self.rereadable:
            assert self._handle is not None
            self.total_lines = count_lines(self.path, self.compression)
            if self.compression is None:
                return self._handle
            return checked_lines(self._handle, self.path, self.compression)
        self._piped = self._reader_thread(loop)
        source = self._piped or self._handle
        assert source is not None
        return source

    @property
    def ready(self) -> Callable[[], Awaitable[None]] | None:
        """For a pipe: await it after a `WAIT` (a line, or the end, may have come)."""
        return None if self._piped is None else self._piped.ready

    def wake(self) -> None:
        """Let workers waiting for a pipe's next line go on (the run is stopping)."""
        if self._piped is not None:
            self._piped.wake()

    def seen_ids(self) -> SeenIds | None:
        """A Bloom filter for a regular file (2 bytes a line; repeats it is unsure of are
        settled by a second pass); None (exact ids) for what cannot be read twice."""
        return BloomFilter(self.total_lines or 0) if self.rereadable else None

    def reopen(self) -> AbstractContextManager[Iterable[bytes]]:
        """INPUT's lines from its start again, for the second pass (regular files only)."""
        return input_lines(self.path)

    def close(self) -> None:
        """Close INPUT (never standard input itself)."""
        if self._handle is not None and self._handle is not sys.stdin.buffer:
            self._handle.close()

    def _reader_thread(self, loop: asyncio.AbstractEventLoop) -> ThreadedLines | None:
        """The reader thread of standard input or a pipe named by INPUT (None: the thread
        opens it). None for a stream with no file descriptor (in memory, as in tests or
        when embedded), which is read directly."""
        if self._handle is None:
            return ThreadedLines(loop, path=self.path)
        try:
            fd = self._handle.fileno()
        except (OSError, ValueError):
            return None
        return ThreadedLines(loop, fd=fd)


@contextlib.contextmanager
def input_lines(path: str) -> Iterator[Iterable[bytes]]:
    """The lines of a prompts file named by its path, decompressed if it is compressed
    (the second pass, `merge --input`, `report --input`); unreadable: `InputFileError`."""
    try:
        kind = compression_of(path)
    except OSError as exc:
        raise InputFileError(f"cannot read {path}: {exc.strerror}") from exc
    with open_decompressed(path, kind) as handle:
        yield handle if kind is None else checked_lines(handle, path, kind)


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


def count_lines(path: str, compression: str | None = None) -> int | None:
    """Lines of a regular file (decompressed, if it is), counted in 1 MiB blocks (about a
    second per GB); None when it cannot be read to its end (reading it then says why)."""
    count, last = 0, b"\n"
    unreadable: tuple[type[Exception], ...] = (*read_errors(), InputFileError)
    try:
        with open_decompressed(path, compression) as handle:
            while block := handle.read(1 << 20):
                count += block.count(b"\n")
                last = block[-1:]
    except unreadable:
        return None
    return count + (last != b"\n")
