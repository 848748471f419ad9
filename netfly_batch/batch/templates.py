"""Dataset lines -> prompts: the user message of every line rendered from its own fields.

`{field}` names a top-level key, `{a.b}` a nested one, `{{` and `}}` are literal braces; a
value that is not a string is written as compact JSON. With a template a line is any
JSON object: only the fields named by `--param-fields` become request parameters, and
`--keep-fields` are copied into the result's `metadata`. The rendered messages are what
`request_hash` fingerprints, so editing the template redoes exactly the lines whose
messages change. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

_PART = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


class TemplateError(ValueError):
    """A template that cannot be used (an unbalanced brace, an empty field name)."""


@dataclass(frozen=True, slots=True)
class Text:
    """A template split into literal text and field paths, ready to render."""

    parts: tuple[str | tuple[str, ...], ...]

    @classmethod
    def parse(cls, template: str, what: str = "the template") -> Text:
        """Split `template`; raise `TemplateError` naming the problem."""
        parts: list[str | tuple[str, ...]] = []
        position = 0
        for match in _PART.finditer(template):
            if match.start() > position:
                parts.append(template[position : match.start()])
            token = match.group(0)
            if token in ("{{", "}}"):
                parts.append(token[0])
            elif match.group(1) is None:
                where = match.start() + 1
                raise TemplateError(
                    f"{what} has a lone {token!r} at character {where} (write {token * 2} "
                    "for a brace)"
                )
            else:
                name = match.group(1).strip()
                if not name or any(not piece for piece in name.split(".")):
                    raise TemplateError(f"{what} has an empty field name at character "
                                        f"{match.start() + 1}")  # fmt: skip
                parts.append(tuple(name.split(".")))
            position = match.end()
        if position < len(template):
            parts.append(template[position:])
        return cls(tuple(parts))

    def render(self, line: dict[str, Any]) -> str:
        """The text for one line; raises KeyError(field) for a field the line lacks."""
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value: Any = line
            for key in part:
                if not isinstance(value, dict) or key not in value:
                    raise KeyError(".".join(part))
                value = value[key]
            out.append(value if isinstance(value, str) else orjson.dumps(value).decode())
        return "".join(out)


@dataclass(frozen=True, slots=True)
class LineTemplate:
    """How a dataset line becomes a request: the user (and system) message and the
    fields kept as parameters or metadata."""

    user: Text
    system: Text | None = None
    param_fields: tuple[str, ...] = ()
    keep_fields: tuple[str, ...] = ()

    @classmethod
    def from_text(cls, user: str, system: str | None = None,
                  param_fields: Sequence[str] = (), keep_fields: Sequence[str] = ()
                  ) -> LineTemplate:  # fmt: skip
        """Parse the texts; raises `TemplateError`."""
        return cls(
            Text.parse(user),
            None if system is None else Text.parse(system, "the system message"),
            tuple(param_fields),
            tuple(keep_fields),
        )

    def apply(self, line: dict[str, Any], metadata: Any) -> tuple[dict[str, Any], Any] | str:
        """(request, metadata) for one line, or the reason it cannot be sent."""
        try:
            messages = [{"role": "user", "content": self.user.render(line)}]
            if self.system is not None:
                messages.insert(0, {"role": "system", "content": self.system.render(line)})
        except KeyError as missing:
            return f"the template names the field {missing.args[0]!r}, which this line lacks"
        request: dict[str, Any] = {"messages": messages}
        for name in self.param_fields:
            if name in line:
                request[name] = line[name]
        if self.keep_fields:
            kept = {name: line[name] for name in self.keep_fields if name in line}
            metadata = {**metadata, **kept} if isinstance(metadata, dict) else (
                kept if metadata is None else {"metadata": metadata, **kept})  # fmt: skip
        return request, metadata
