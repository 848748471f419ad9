"""OUT as the resume ledger: lock, scan, torn tail, append, compaction.

OUT is append-only while a run goes on: one `os.write` per complete line, so a crash
leaves at most a torn last line, which the next run sets aside in `OUT.torn`. A
finished run compacts OUT to the latest result per id by writing a new file beside
it, fsync, and an atomic rename.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import orjson

from ..errors import OutputError, OutputLockedError
from ..results import LEADING_FIELDS

log = logging.getLogger(__name__)

FSYNC_INTERVAL_S = 1.0

# What OUT says of an input line's (id, request fingerprint): `LedgerState.check()`.
NEW = 0  # no result for the id
ANSWERED = 1  # an ok result for this very request: not sent again (the id is taken now)
KNOWN = 2  # a result for another request, or an error: sent (`claim()` takes the id)
REPEATED = 3  # an earlier line of this input took the id
write_fd = os.write  # the one call that writes results; a seam for disk-full tests


_KEY_BITS = (1 << 60) - 1  # ints below 2**60 take 32 bytes; larger ones take 48
# Fingerprints are kept to their first 56 bits (14 hex digits): with two flags they stay
# below 2**60, and parsing one makes no larger int on the way (both save memory).
_FINGERPRINT_SHIFT = 8
_NO_FINGERPRINT = (1 << 56) - 1  # a result without request_hash: matches no request
_MENTIONED = 1 << 57  # a broken line of this run's input names the id
_ERROR = 1 << 58  # the latest result of the id is an error
_CLAIMED = 1 << 59  # a line of this run's input has taken the id


def id_key(prompt_id: str) -> int:
    """The compact in-memory key of an id (this process's string hash; never stored)."""
    return hash(prompt_id) & _KEY_BITS


def fingerprint_key(fingerprint: str | int | None) -> int:
    """A request fingerprint (an int, or 16 hex digits as in `request_hash`), as kept."""
    if fingerprint.__class__ is int:  # masked: a foreign value may be negative or huge
        return (fingerprint >> _FINGERPRINT_SHIFT) & _NO_FINGERPRINT
    try:  # a str here; None (or any other JSON value) raises, and reads as no fingerprint
        return int(fingerprint[:14], 16) & _NO_FINGERPRINT  # type: ignore[index]
    except (TypeError, ValueError):
        return _NO_FINGERPRINT


@dataclass(slots=True)
class LedgerState:
    """What OUT already holds, per id (invalid results are not remembered: they are redone).

    `entries` maps `id_key(id)` to the latest ok/error result's fingerprint (56 bits)
    with an error flag, and a flag set once a line of this run's input has taken the id
    (so a second line with that id is a repeat, found without another lookup table) or
    once a broken line named it. All small ints: a million results fit in about a
    hundred MB.
    """

    entries: dict[int, int] = field(default_factory=dict)
    attempts: dict[int, int] = field(default_factory=dict)  # ids whose latest is an error
    dropped_lines: int = 0  # lines a compaction would remove (superseded, invalid, unreadable)
    torn_bytes: int = 0
    in_input: int = 0  # ids of `entries` that some line of this run's input names

    def check(self, prompt_id: str, fingerprint: int) -> int:
        """What OUT says of an input line, as NEW, ANSWERED, KNOWN or REPEATED.

        ANSWERED (an ok result for this very request) takes the id at once; a KNOWN id
        (another request, or an error) is taken by `claim()` once its line is valid.
        REPEATED: an earlier line of the input took the id.
        """
        key = hash(prompt_id) & _KEY_BITS  # id_key(), inlined: this runs once per line
        value = self.entries.get(key)
        if value is None:
            return NEW
        if value == fingerprint >> _FINGERPRINT_SHIFT:  # ok, this request, no flag yet
            self.entries[key] = value | _CLAIMED
            self.in_input += 1
            return ANSWERED
        if value & _CLAIMED:
            return REPEATED
        if (value & ~_MENTIONED) == fingerprint >> _FINGERPRINT_SHIFT:
            self.claim(prompt_id)
            return ANSWERED
        return KNOWN

    def claim(self, prompt_id: str) -> bool:
        """A valid line takes an id OUT knows; False if an earlier line took it."""
        key = id_key(prompt_id)
        value = self.entries[key]
        self.entries[key] = value | _CLAIMED
        if not value & (_CLAIMED | _MENTIONED):
            self.in_input += 1
        return not value & _CLAIMED

    def mention(self, prompt_id: str) -> None:
        """A broken line names this id: it is still in the input (no line takes it)."""
        key = id_key(prompt_id)
        value = self.entries.get(key)
        if value is not None and not value & (_CLAIMED | _MENTIONED):
            self.entries[key] = value | _MENTIONED
            self.in_input += 1

    def has(self, prompt_id: str) -> bool:
        """True when OUT has an ok or error result for this id."""
        return id_key(prompt_id) in self.entries

    def has_ok(self, prompt_id: str) -> bool:
        """True when OUT's latest result for this id is ok (perhaps for another request)."""
        value = self.entries.get(id_key(prompt_id))
        return value is not None and not value & _ERROR

    def attempts_before(self, prompt_id: str, fingerprint: int) -> int:
        """Attempts already spent on this very request in earlier runs."""
        key = id_key(prompt_id)
        value = self.entries.get(key)
        flags = _CLAIMED | _MENTIONED
        if value is None or value & ~flags != fingerprint_key(fingerprint) | _ERROR:
            return 0
        return self.attempts.get(key, 0)

    def __len__(self) -> int:
        """Ids with an ok or error result."""
        return len(self.entries)

    @property
    def not_in_input(self) -> int:
        """Ids with a result that no line of this run's input named (so far)."""
        return len(self.entries) - self.in_input


class Ledger:
    """The output file of one run, held under an exclusive lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")
        self.torn_path = path.with_name(path.name + ".torn")
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self.run_start_offset = 0
        self.appended = 0
        self._synced = 0

    def open(self, *, fresh: bool = False) -> LedgerState:
        """Lock OUT, set aside a torn tail, read what it holds, and open it for appends."""
        self._lock()
        self._remove_stale_temporaries()
        try:
            if fresh:
                with open(self.path, "wb"):
                    pass
            state = LedgerState()
            if self.path.exists():
                state.torn_bytes = self._set_aside_torn_tail()
                scan_into(self.path, state)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self.run_start_offset = os.fstat(self._fd).st_size
        except OSError as exc:
            self.close()
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
        return state

    def append(self, line: bytes) -> None:
        """Write one complete line in one call (so a crash can only tear the last line)."""
        assert self._fd is not None, "ledger is not open"
        view = memoryview(line)
        try:
            while view:
                written = write_fd(self._fd, view)
                view = view[written:]
        except OSError as exc:
            reason = "the disk is full" if exc.errno == errno.ENOSPC else exc.strerror
            raise OutputError(f"cannot write {self.path}: {reason}") from exc
        self.appended += 1

    def sync(self) -> None:
        """fsync OUT if lines were written since the last fsync (the run calls it every
        `FSYNC_INTERVAL_S`; `close()` and `compact()` sync too)."""
        if self._fd is not None and self._synced != self.appended:
            self._synced = self.appended
            os.fsync(self._fd)

    def compact(self) -> int:
        """Rewrite OUT with the latest result per id; return how many lines were dropped."""
        if self._fd is not None:
            os.fsync(self._fd)
        keep, dropped = latest_lines(self.path, self.run_start_offset)
        if not dropped:
            return 0
        temporary = self.path.with_name(f".{self.path.name}.compact-{os.getpid()}.tmp")
        try:
            with open(self.path, "rb") as source, open(temporary, "wb") as target:
                offset = 0
                for line in source:
                    if offset in keep:
                        target.write(line)
                    offset += len(line)
                target.flush()
                os.fsync(target.fileno())
            os.replace(temporary, self.path)
            _fsync_directory(self.path.parent)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise OutputError(f"cannot compact {self.path}: {exc.strerror or exc}") from exc
        if self._fd is not None:
            os.close(self._fd)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        return dropped

    def close(self) -> None:
        """fsync, close and unlock (the OS also unlocks if the process dies)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _lock(self) -> None:
        if not self.path.parent.is_dir():
            raise OutputError(f"the folder of {self.path} does not exist")
        if self.path.is_dir():
            raise OutputError(f"{self.path} is a folder, not a file")
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OutputError(f"cannot write beside {self.path}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise OutputLockedError(
                f"another netfly-batch run (pid {holder}) is writing {self.path}; "
                "wait for it to finish or stop it"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd

    def _remove_stale_temporaries(self) -> None:
        for stale in self.path.parent.glob(f".{self.path.name}.compact-*.tmp"):
            with contextlib.suppress(OSError):
                stale.unlink()

    def _set_aside_torn_tail(self) -> int:
        """Move an unterminated last line to OUT.torn and cut it from OUT."""
        with open(self.path, "rb+") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size == 0:
                return 0
            handle.seek(size - 1)
            if handle.read(1) == b"\n":
                return 0
            start = _last_newline_end(handle, size)
            handle.seek(start)
            torn = handle.read()
            with open(self.torn_path, "ab") as aside:
                aside.write(torn + b"\n")
            handle.truncate(start)
            handle.flush()
            os.fsync(handle.fileno())
        log.warning(
            "set aside a torn last line of %s (%d bytes) in %s",
            self.path,
            len(torn),
            self.torn_path,
        )
        return len(torn)


def own_line_start(values: dict[str, bytes]) -> re.Pattern[bytes]:
    """A pattern for how our own result lines start: `results.LEADING_FIELDS`, in their
    order, exactly as `Result.to_line` writes them, each value matched by `values[name]`."""
    fields = [b'"' + name.encode() + b'":' + values[name] for name in LEADING_FIELDS]
    return re.compile(rb"\{" + b",".join(fields))


# Our own lines are read by a regular expression over their start, the shorter one first
# (most lines are ok results with a request_hash). Groups are read by position (faster
# than by name); a test holds their order to the names.
_ID = rb'"(?P<id>[^"\\]*)"'  # an id that needs no JSON escape; others are parsed whole
_OWN_OK_LINE = own_line_start(
    {
        "id": _ID,
        "status": rb'"ok"',
        "attempts": rb"\d+",
        "request_hash": rb'"(?P<hash>[0-9a-f]{14})',
    }
)
_OWN_LINE = own_line_start(
    {
        "id": _ID,
        "status": rb'"(?P<status>ok|error)"',
        "attempts": rb"(?P<attempts>\d+)",
        "request_hash": rb'(?:"(?P<hash>[0-9a-f]{14})[0-9a-f]{2}"|null),',
    }
)


def scan_into(path: Path, state: LedgerState) -> None:
    """Read every complete line of OUT into `state`, the latest result of an id winning.

    Our own lines are read by their start alone (`results.LEADING_FIELDS` come first);
    any other line is parsed as JSON.
    """
    entries, attempts = state.entries, state.attempts
    own_ok_line, own_line = _OWN_OK_LINE.match, _OWN_LINE.match
    before, taken, unreadable = len(entries), 0, 0
    with open(path, "rb") as handle:
        for line in handle:
            try:
                match = own_ok_line(line)
                if match is not None:
                    prompt_id, fingerprint = match.groups()  # order: test_ledger checks
                    key = hash(prompt_id.decode()) & _KEY_BITS  # id_key(), inlined
                    value = int(fingerprint, 16)
                elif (match := own_line(line)) is not None:
                    prompt_id, status, count, fingerprint = match.groups()
                    key = hash(prompt_id.decode()) & _KEY_BITS  # id_key(), inlined
                    value = int(fingerprint, 16) if fingerprint else _NO_FINGERPRINT
                    if status == b"error":
                        value |= _ERROR
                        attempts[key] = int(count)
                else:
                    parsed = _parse_other_line(line)
                    if parsed is None:
                        unreadable += 1
                        continue
                    key, value, count = parsed
                    if value & _ERROR:
                        attempts[key] = count
            except UnicodeDecodeError:  # an id that is not UTF-8: as JSON would say
                unreadable += 1
                continue
            entries[key] = value
            taken += 1
    # Each line of an id seen before replaced that earlier line's entry.
    state.dropped_lines += unreadable + taken - (len(entries) - before)


def _parse_other_line(line: bytes) -> tuple[int, int, int] | None:
    """(id key, entry value, attempts) of an ok/error line in any key order; None for
    an invalid result or a line that is not one."""
    try:
        record = orjson.loads(line)
        key = id_key(str(record["id"]))
        status = record["status"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    if status not in ("ok", "error"):
        return None
    value = fingerprint_key(record.get("request_hash"))
    count = record.get("attempts")
    return (
        key,
        value | _ERROR if status == "error" else value,
        (count if count.__class__ is int else 0),
    )


def latest_lines(path: Path, keep_invalid_from: int) -> tuple[set[int], int]:
    """Offsets of the lines a compaction keeps, and how many it drops.

    Kept: the last ok/error line of each id, and the invalid results of this run (older
    invalid results were re-validated by this run, so they are superseded).
    """
    latest: dict[str, int] = {}
    keep: set[int] = set()
    total = 0
    offset = 0
    with open(path, "rb") as handle:
        for line in handle:
            total += 1
            try:
                record = orjson.loads(line)
                prompt_id, status = record["id"], record["status"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                prompt_id, status = None, None
            if status in ("ok", "error"):
                latest[str(prompt_id)] = offset
            elif status == "invalid" and offset >= keep_invalid_from:
                keep.add(offset)
            offset += len(line)
    keep.update(latest.values())
    return keep, total - len(keep)


def _last_newline_end(handle: IO[bytes], size: int) -> int:
    """Offset just past the last newline before `size` (0 if there is none)."""
    block = 65536
    end = size
    while end > 0:
        start = max(0, end - block)
        handle.seek(start)
        chunk = handle.read(end - start)
        index = chunk.rfind(b"\n")
        if index >= 0:
            return start + index + 1
        end = start
    return 0


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
