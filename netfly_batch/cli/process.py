"""What a command does to its process: exit codes, error lines, logging, the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import Any, TypeVar

import click

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK = 0
EXIT_SOME_FAILED = 1  # some results are "error" or "invalid"
EXIT_USAGE = 2  # Click's own code for a bad command line
EXIT_CANNOT_START = 3  # INPUT unreadable, OUT not writable / in a missing folder / = INPUT
EXIT_LOCKED = 4  # another run is writing OUT
EXIT_ENDPOINT_DOWN = 5  # the breaker stopped the run: endpoint unreachable or refusing us
EXIT_MERGE_PARTIAL = 6  # merge --input: some input ids have no result in any OUT
EXIT_STOPPED_AT_MAX_RUNTIME = 75  # --max-runtime reached with work left (EX_TEMPFAIL)
EXIT_SIGINT = 130  # 128 + the signal's number, as shells report it
EXIT_SIGTERM = 143

GC_YOUNG_THRESHOLD = 20_000  # allocations between young-generation collections (default 700)


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop when it is installed (the `fast` extra), else on asyncio's loop.

    The objects made while starting up live as long as the process: `gc.freeze()` keeps
    the cycle collector from scanning them again and again, and a higher first
    threshold lets the many short-lived objects of each request die young and cheaply.
    """
    import gc

    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)
    loop_factory = None
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        pass
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(coroutine)


def setup_logging() -> None:
    logging.basicConfig(level=logging.WARNING, format="netfly-batch: %(levelname)s: %(message)s")


def fail(message: str) -> None:
    click.echo(f"netfly-batch: error: {message}", err=True)


# The OUT files of `merge`, `export` and `report`: shards, runs, merged or not.
result_files = click.argument(
    "sources", metavar="OUT...", nargs=-1, required=True, type=click.Path(dir_okay=False)
)


def prompts_file(purpose: str) -> Callable[[F], F]:
    """`--input IN` (the prompts file, for `purpose`) and `--id-field NAME`, as `merge` and
    `report` take them."""

    def add(command: F) -> F:
        command = click.option(
            "--id-field",
            default=None,
            metavar="NAME",
            help="With --input: each line's id is this key, as `run --id-field` read it.",
        )(command)
        return click.option(
            "--input",
            "input_path",
            type=click.Path(dir_okay=False),
            default=None,
            help=f"The prompts file: {purpose}",
        )(command)

    return add


@contextlib.contextmanager
def exit_3_on_file_errors() -> Iterator[None]:
    """A `NetflyError` (a file that cannot be read or written) is one line and exit 3."""
    from ..errors import NetflyError

    try:
        yield
    except NetflyError as error:
        fail(str(error))
        sys.exit(EXIT_CANNOT_START)


def status_counts(by_status: Mapping[str, int]) -> str:
    """`2 error, 40 ok`, or `nothing`."""
    return ", ".join(f"{n} {status}" for status, n in sorted(by_status.items())) or "nothing"
