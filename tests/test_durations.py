"""One duration grammar for the command line and for rate-limit reset headers."""

from __future__ import annotations

import pytest

from netfly_batch.durations import parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("0.5s", 0.5),
        ("1h2m3s", 3723.0),
        ("7", 7.0),
        ("90", 90.0),
        ("55m", 3300.0),
        ("1h30m", 5400.0),
        ("2d", 172800.0),
        ("1H 30M", 5400.0),
        (" 15s ", 15.0),
        ("", None),
        ("soon", None),
        ("5x", None),
        ("m5", None),
        ("1h-30m", None),
        ("-5", None),
    ],
    ids=[
        "s",
        "m-s",
        "ms",
        "fraction",
        "h-m-s",
        "bare",
        "bare cli",
        "minutes",
        "h-m",
        "days",
        "upper and spaces",
        "padded",
        "empty",
        "word",
        "unit",
        "unit first",
        "minus",
        "negative",
    ],
)
def test_parse_duration(text: str, seconds: float | None) -> None:
    """Reset headers and --max-runtime values read as seconds; anything else as None."""
    assert parse_duration(text) == seconds
