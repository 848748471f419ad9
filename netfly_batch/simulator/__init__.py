"""The built-in simulated OpenAI-compatible endpoint, with seeded fault injection.

Modules: `chat` (requests -> deterministic answers), `faults` (the seeded fault plan),
`settings`, `responses` (SSE/JSON bodies, healthy or faulty), `app` (aiohttp.web routes and
stats), `server` (`running_simulator`, `serve_forever`), `options` (shared Click options).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "STATS_KEY": "app",
    "SimulatorStats": "app",
    "build_app": "app",
    "reply_for": "app",
    "FaultKind": "faults",
    "FaultPlan": "faults",
    "FaultRates": "faults",
    "simulator_options": "options",
    "simulator_settings_from_options": "options",
    "RunningSimulator": "server",
    "running_simulator": "server",
    "serve_forever": "server",
    "SimulatorSettings": "settings",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import on first use: the CLI's options must not pull in aiohttp."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'netfly_batch.simulator' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"netfly_batch.simulator.{module}"), name)
    globals()[name] = value
    return value
