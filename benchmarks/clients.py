"""The clients under test, as command lines: netfly-batch's real CLI and the minimal floor."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
NETFLY = "netfly"
MINIMAL_ASYNCIO = "minimal_asyncio"
MINIMAL_UVLOOP = "minimal_uvloop"
NETFLY_SCHEMA = "netfly_schema"  # netfly-batch checking answers against a schema


def uvloop_available() -> bool:
    """True when uvloop is installed (netfly-batch then runs on it)."""
    return importlib.util.find_spec("uvloop") is not None


def netfly_command() -> list[str]:
    """The installed `netfly-batch` script beside this Python (not a pyenv shim)."""
    beside = Path(sys.executable).parent / "netfly-batch"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("netfly-batch")
    return [found] if found else [sys.executable, "-m", "netfly_batch"]


@dataclass(frozen=True, slots=True)
class Client:
    """One client: `key` in the JSON, `label` in the table."""

    key: str
    label: str
    netfly_args: tuple[str, ...] | None = None  # netfly-batch with these extra options

    @property
    def is_netfly(self) -> bool:
        """True for netfly-batch itself."""
        return self.key == NETFLY

    def argv(
        self,
        input_path: Path,
        output_path: Path,
        base_url: str,
        concurrency: int,
        *,
        progress: bool = False,
    ) -> list[str]:
        """The command line of one run (netfly-batch: `--fresh` and `-q` or `--progress`)."""
        if self.is_netfly or self.netfly_args is not None:
            return [
                *netfly_command(),
                "run",
                str(input_path),
                "-o",
                str(output_path),
                "--base-url",
                base_url,
                "-c",
                str(concurrency),
                "--fresh",
                "--progress" if progress else "-q",
                *(self.netfly_args or ()),
            ]
        argv = [
            sys.executable,
            str(HERE / "minimal_client.py"),
            str(input_path),
            "-o",
            str(output_path),
            "--base-url",
            base_url,
            "-c",
            str(concurrency),
        ]
        return [*argv, "--uvloop"] if self.key == MINIMAL_UVLOOP else argv


def all_clients() -> list[Client]:
    """netfly-batch, the minimal client on asyncio's loop, and on uvloop when installed."""
    clients = [Client(NETFLY, "netfly-batch"), Client(MINIMAL_ASYNCIO, "minimal (asyncio)")]
    if uvloop_available():
        clients.append(Client(MINIMAL_UVLOOP, "minimal (uvloop)"))
    return clients


def reference_key() -> str:
    """The minimal client the targets compare with: the one on netfly-batch's own loop."""
    return MINIMAL_UVLOOP if uvloop_available() else MINIMAL_ASYNCIO
