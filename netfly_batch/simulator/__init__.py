"""The built-in simulated OpenAI-compatible endpoint, with seeded fault injection.

Modules: `chat` (requests -> deterministic answers), `faults` (the seeded fault plan),
`settings`, `responses` (SSE/JSON bodies, healthy or faulty), `app` (aiohttp.web routes and
stats), `server` (`running_simulator`, `serve_forever`), `options` (shared Click options).
"""

from netfly_batch.simulator.app import STATS_KEY, SimulatorStats, build_app, reply_for
from netfly_batch.simulator.faults import FaultKind, FaultPlan, FaultRates
from netfly_batch.simulator.options import simulator_options, simulator_settings_from_options
from netfly_batch.simulator.server import RunningSimulator, running_simulator, serve_forever
from netfly_batch.simulator.settings import SimulatorSettings

__all__ = [
    "STATS_KEY",
    "FaultKind",
    "FaultPlan",
    "FaultRates",
    "RunningSimulator",
    "SimulatorSettings",
    "SimulatorStats",
    "build_app",
    "reply_for",
    "running_simulator",
    "serve_forever",
    "simulator_options",
    "simulator_settings_from_options",
]
