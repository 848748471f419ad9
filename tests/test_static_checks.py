"""The package passes its linter, formatter and type checker (so CI catches what they find)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "netfly_batch", "tests", "benchmarks"],
        ["ruff", "format", "--check", "netfly_batch", "tests", "benchmarks"],
        ["mypy", "netfly_batch"],
    ],
    ids=["ruff", "ruff format", "mypy"],
)
def test_checker_finds_nothing(command: list[str], tmp_path: Path) -> None:
    extra = ["--cache-dir", str(tmp_path / "cache")] if command[0] == "mypy" else []
    done = subprocess.run(
        [sys.executable, "-m", *command, *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
