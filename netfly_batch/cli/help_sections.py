"""`--help` in sections: a command with many options lists them under a few headings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click


class SectionedCommand(click.Command):
    """A `click.Command` whose `--help` groups options under headings.

    `sections` pairs a heading with the parameter names (as the function receives them)
    it lists; a name may end in `*` to take every parameter with that prefix. Options
    that no section names come last, under "Other options".
    """

    def __init__(
        self, *args: Any, sections: Sequence[tuple[str, Sequence[str]]] = (), **kwargs: Any
    ):
        super().__init__(*args, **kwargs)
        self.sections = sections

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        records = {
            param.name: record
            for param in self.get_params(ctx)
            if param.name and (record := param.get_help_record(ctx)) is not None
        }
        for heading, names in self.sections:
            rows = [records.pop(name) for name in _matching(names, records)]
            if rows:
                with formatter.section(heading):
                    formatter.write_dl(rows)
        if records:
            with formatter.section("Other options"):
                formatter.write_dl(list(records.values()))


def _matching(patterns: Sequence[str], records: dict[str, Any]) -> list[str]:
    """The names of `records` that `patterns` name, in the patterns' order."""
    found: list[str] = []
    for pattern in patterns:
        if pattern.endswith("*"):
            found += [n for n in records if n.startswith(pattern[:-1]) and n not in found]
        elif pattern in records and pattern not in found:
            found.append(pattern)
    return found
