"""Smoke test of the benchmark suite: `benchmarks/run.py --quick` runs end to end.

It checks that every scenario ran and reported numbers, never how fast anything was.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

ROOT = Path(__file__).resolve().parent.parent
COMPARISONS = (
    "throughput_c64",
    "throughput_c256",
    "realistic",
    "progress",
    "long_k256",
    "tool_calls",
    "reasoning",
)
SCENARIO_KEYS = {*COMPARISONS, "schema", "memory", "resume", "startup", "fleet"}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The JSON of one quick run of the suite."""
    out = tmp_path_factory.mktemp("bench") / "results.json"
    process = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--out", str(out)],
        capture_output=True,
        timeout=180,
        cwd=ROOT,
        check=False,
    )
    assert process.returncode == 0, process.stderr.decode(errors="replace")[-3000:]
    assert b"PASS" in process.stdout or b"FAIL" in process.stdout
    parsed: dict[str, Any] = orjson.loads(out.read_bytes())
    return parsed


def is_number(value: object) -> bool:
    """A real int or float (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


@pytest.mark.slow
def test_every_scenario_is_reported(results: dict[str, Any]) -> None:
    """The JSON has a section for each scenario and a target list with verdicts."""
    assert set(results["scenarios"]) == SCENARIO_KEYS
    assert results["meta"]["mode"] == "quick"
    assert results["targets"]
    assert all(isinstance(t["pass"], bool) and is_number(t["measured"]) for t in results["targets"])


@pytest.mark.slow
@pytest.mark.parametrize("key", COMPARISONS)
def test_comparisons_have_figures_and_full_outputs(results: dict[str, Any], key: str) -> None:
    """netfly-batch and the minimal client each answered all n prompts, with numeric figures."""
    data = results["scenarios"][key]
    clients = {run["client"] for run in data["runs"]}
    assert "netfly" in clients
    assert clients & {"minimal_asyncio", "minimal_uvloop"}
    for run in data["runs"]:
        assert run["ok_lines"] == data["n"]
        assert run["requests_sent"] == data["n"]
        for name in ("wall_s", "requests_per_s", "cpu_us_per_request", "peak_rss_mb"):
            assert is_number(run[name]), (key, run["client"], name)
    ratio = data["ratios"][data["reference"]]
    assert is_number(ratio["throughput_median"])
    assert is_number(ratio["cpu_median"])


@pytest.mark.slow
def test_schema_compares_netfly_with_and_without_a_schema(results: dict[str, Any]) -> None:
    """The schema scenario ran netfly-batch with --json-schema against itself without."""
    data = results["scenarios"]["schema"]
    assert {run["client"] for run in data["runs"]} == {"netfly", "netfly_schema"}
    assert all(run["ok_lines"] == data["n"] for run in data["runs"])
    assert is_number(data["ratios"]["netfly_schema"]["cpu_median"])
    assert any(t["name"].startswith("--json-schema") for t in results["targets"])


@pytest.mark.slow
def test_memory_resume_and_startup_have_figures(results: dict[str, Any]) -> None:
    """Memory runs answered every prompt; the resume rerun sent no request; start-up timed."""
    memory = results["scenarios"]["memory"]
    for count, run in memory["runs"].items():
        assert run["ok_lines"] == int(count)
        assert is_number(run["peak_rss_mb"])
    assert is_number(memory["rss_growth"])
    resume = results["scenarios"]["resume"]
    assert resume["ok_lines"] == resume["n"]
    assert resume["requests_sent"] == 0
    assert is_number(resume["wall_s"])
    assert is_number(resume["peak_rss_mb"])
    assert is_number(results["scenarios"]["startup"]["netfly_help"]["median_s"])
