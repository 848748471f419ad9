"""Durations written as text (`90`, `90s`, `20ms`, `6m0s`, `1h30m`, `2d`) -> seconds.

One grammar for the command line (`--max-runtime 55m`) and for servers' rate-limit
reset headers (OpenAI's `x-ratelimit-reset-requests: 6m0s`). Pure.
"""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)?", re.IGNORECASE)
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(text: str) -> float | None:
    """Seconds of a duration: numbers each followed by a unit (ms, s, m, h, d; none means
    seconds), any case, spaces ignored; None when `text` is anything else."""
    text = text.replace(" ", "").strip()
    total, position = 0.0, 0
    for match in _PART.finditer(text):
        if match.start() != position:
            break
        unit = match.group(2).lower() if match.group(2) else None
        total += float(match.group(1)) * _UNIT_S[unit]
        position = match.end()
    if not text or position != len(text):
        return None
    return total
