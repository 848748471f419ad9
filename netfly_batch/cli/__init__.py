"""The `netfly-batch` command group: one module per command, exit codes in `process`.

Each command turns options into settings, calls the layer below, and turns errors into
one stderr line and an exit code. Heavy imports (aiohttp, the run) happen inside the
commands, so `--help` is quick.
"""

from __future__ import annotations

import click

from .export import export
from .merge import merge
from .report import report
from .run import run
from .serve import serve


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="netfly-batch")
def main() -> None:
    """Run large batches of chat-completion prompts against an OpenAI-compatible endpoint.

    \b
    Example:
      netfly-batch run prompts.jsonl -o out.jsonl --simulate
      netfly-batch run prompts.jsonl -o out.jsonl --base-url http://localhost:8080 \\
          --endpoint /v1/chat/completions -m my-model -c 16
    """


main.add_command(run)
main.add_command(serve)
main.add_command(merge)
main.add_command(export)
main.add_command(report)
