"""Compressed INPUT: gzip, bzip2 and xz (standard library) and zstd (`zstandard`), known
by their magic bytes whatever the file is called, read as their decompressed lines.

A truncated or corrupt file is an `InputFileError` naming it, raised where the bad
bytes are reached: results written before then stay in OUT, and the run stops with
exit 3 (the next run resumes).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib
from collections.abc import Iterator
from typing import IO, cast

from ..errors import InputFileError

MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
READ_BYTES = 1 << 20


def compression_of(path: str) -> str | None:
    """ "gzip", "bzip2", "xz" or "zstd" by the file's first bytes; None for plain text."""
    with open(path, "rb") as handle:
        start = handle.read(6)
    for magic, kind in MAGIC:
        if start.startswith(magic):
            return kind
    return None


def open_decompressed(path: str, kind: str | None) -> IO[bytes]:
    """The decompressed bytes of `path`, as a binary file to iterate by lines (the file
    itself when `kind` is None)."""
    if kind is None:
        return open(path, "rb")
    if kind == "gzip":
        return cast(IO[bytes], gzip.open(path, "rb"))
    if kind == "bzip2":
        return cast(IO[bytes], bz2.open(path, "rb"))
    if kind == "xz":
        return cast(IO[bytes], lzma.open(path, "rb"))
    try:
        import zstandard
    except ImportError:  # a dependency; named in case an environment lacks it
        raise InputFileError(f"cannot read {path}: zstd input needs the zstandard package "
                             "(pip install zstandard)") from None  # fmt: skip
    raw = open(path, "rb")  # noqa: SIM115  # closed by the reader (closefd)
    reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True,
                                                        closefd=True)  # fmt: skip
    return cast(IO[bytes], io.BufferedReader(reader, READ_BYTES))


def read_errors() -> tuple[type[Exception], ...]:
    """What decompressors raise for truncated or corrupt data."""
    errors: list[type[Exception]] = [EOFError, OSError, zlib.error, lzma.LZMAError]
    try:
        import zstandard

        errors.append(zstandard.ZstdError)
    except ImportError:
        pass
    return tuple(errors)


def checked_lines(handle: IO[bytes], path: str, kind: str) -> Iterator[bytes]:
    """The lines of a decompressing `handle`; a decompression error becomes a clear
    `InputFileError` naming the file."""
    try:
        yield from handle
    except read_errors() as error:
        raise corrupt(path, kind, error) from None


def corrupt(path: str, kind: str, error: BaseException) -> InputFileError:
    """The error for a truncated or corrupt compressed INPUT."""
    reason = str(error) or type(error).__name__
    return InputFileError(f"cannot read {path}: its {kind} data is truncated or corrupt "
                          f"({reason}); results written so far are kept")  # fmt: skip
