"""Files written whole or not at all: beside the target, fsynced, renamed over it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ..errors import OutputError


@contextlib.contextmanager
def atomic_file(target: Path, role: str) -> Iterator[IO[bytes]]:
    """A file to write that replaces `target` only once the block ends without an error
    (`role` names the temporary: `.OUT.<role>-<pid>.tmp`); an OS error is `OutputError`."""
    temporary = target.with_name(f".{target.name}.{role}-{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink()
