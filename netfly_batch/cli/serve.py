"""`netfly-batch serve`: the simulated endpoint, served until Ctrl-C."""

from __future__ import annotations

from typing import Any

import click

from ..simulator.options import simulator_options, simulator_settings_from_options
from ..simulator.settings import DEFAULT_HOST, DEFAULT_PORT
from .process import run_async, setup_logging


@click.command()
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=DEFAULT_PORT,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port).",
)
@simulator_options("")
def serve(host: str, port: int, **options: Any) -> None:
    """Serve the simulated OpenAI-compatible endpoint, with optional fault injection."""
    setup_logging()
    from ..simulator import serve_forever

    sim_settings = simulator_settings_from_options(options, "")
    run_async(serve_forever(sim_settings, host, port, lambda text: click.echo(text, err=True)))
