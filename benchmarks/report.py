"""Results -> the targets (measured vs target, PASS/FAIL) and the printed tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Check = Callable[[float], bool]
OTHER_LOAD_WARNING = 0.10  # share of a CPU used by other processes during a run
MIN_WARNING_WALL_S = 2.0  # shorter runs: the launcher's own start-up dominates "other"


def target(name: str, measured: float, goal: str, check: Check, unit: str = "") -> dict[str, Any]:
    """One target line."""
    return {
        "name": name,
        "measured": measured,
        "unit": unit,
        "target": goal,
        "pass": bool(check(measured)),
    }


def targets_of(scenarios: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target whose scenario ran."""
    found: list[dict[str, Any]] = []
    for key, data in scenarios.items():
        if key.startswith("throughput_c"):
            ratio = data["ratios"][data["reference"]]
            c = data["concurrency"]
            found.append(
                target(
                    f"throughput c={c} vs minimal",
                    ratio["throughput_median"],
                    ">= 1.0x",
                    lambda x: x >= 1.0,
                    "x",
                )
            )
            found.append(
                target(
                    f"CPU/request c={c} vs minimal",
                    ratio["cpu_median"],
                    "<= 1.0x",
                    lambda x: x <= 1.0,
                    "x",
                )
            )
    if "memory" in scenarios:
        data = scenarios["memory"]
        found.append(
            target(
                f"RSS n={data['n_large']} vs n={data['n_small']}",
                data["rss_growth"],
                "<= 1.10x",
                lambda x: x <= 1.10,
                "x",
            )
        )
        found.append(
            target(
                f"RSS n={data['n_large']} at c={data['concurrency']}",
                data["rss_large_mb"],
                "< 80 MB",
                lambda x: x < 80,
                " MB",
            )
        )
    if "resume" in scenarios:
        data = scenarios["resume"]
        found.append(
            target(
                f"resume over {data['n']} done: wall",
                data["wall_s"],
                "< 3 s",
                lambda x: x < 3,
                " s",
            )
        )
        found.append(
            target(
                f"resume over {data['n']} done: peak RSS",
                data["peak_rss_mb"],
                "< 150 MB",
                lambda x: x < 150,
                " MB",
            )
        )
        found.append(
            target(
                f"resume over {data['n']} done: requests sent",
                data["requests_sent"],
                "0",
                lambda x: x == 0,
            )
        )
    if "startup" in scenarios:
        found.append(
            target(
                "netfly-batch --help wall (median)",
                scenarios["startup"]["netfly_help"]["median_s"],
                "< 0.3 s",
                lambda x: x < 0.3,
                " s",
            )
        )
    for key, data in scenarios.items():
        if key.startswith("long_k"):
            ratio = data["ratios"][data["reference"]]
            found.append(
                target(
                    f"long answers K={data['chunks']}: throughput vs minimal",
                    ratio["throughput_median"],
                    ">= 1.4x",
                    lambda x: x >= 1.4,
                    "x",
                )
            )
            found.append(
                target(
                    f"long answers K={data['chunks']}: CPU vs minimal",
                    ratio["cpu_median"],
                    "<= 0.7x",
                    lambda x: x <= 0.7,
                    "x",
                )
            )
    if "schema" in scenarios:
        data = scenarios["schema"]
        cpu = data["ratios"]["netfly_schema"]["cpu_median"]  # plain / checked
        found.append(target("--json-schema: CPU per request vs without", round(1 / cpu, 3),
                            "<= 1.15x", lambda x: x <= 1.15, "x"))  # fmt: skip
    if "fleet" in scenarios:
        data = scenarios["fleet"]
        speedup = data["speedup_median"]
        found.append(target("fleet: 2 endpoints vs 1 (same capacity): throughput",
                            speedup, ">= 1.8x", lambda x: x >= 1.8, "x"))  # fmt: skip
    if "progress" in scenarios:
        data = scenarios["progress"]
        found.append(
            target(
                f"--progress c={data['concurrency']}: throughput vs minimal",
                data["ratios"][data["reference"]]["throughput_median"],
                ">= 1.0x",
                lambda x: x >= 1.0,
                "x",
            )
        )
    return found


def comparison_rows(key: str, data: dict[str, Any]) -> list[str]:
    """Rows of one A/B scenario: medians per client, netfly/minimal ratios on minimal rows."""
    rows = []
    title = f"{key} (n={data['n']}, c={data['concurrency']}, K={data['chunks']})"
    for client, label in data["clients"].items():
        m = data["medians"][client]
        ratio = data["ratios"].get(client)
        ratios = (
            f"{ratio['throughput_median']:>9.2f}x {ratio['cpu_median']:>8.2f}x"
            if ratio
            else f"{'':>10} {'':>9}"
        )
        loop = {True: "uvloop", False: "asyncio", None: "?"}[m["uvloop_loaded"]]
        rows.append(
            f"{title:44} {label:18} {loop:7} {m['wall_s']:7.2f} "
            f"{m['requests_per_s']:8.0f} {m['cpu_us_per_request']:10.0f} "
            f"{m['peak_rss_mb']:7.1f} {ratios}"
        )
        title = ""
    return rows


def render(results: dict[str, Any]) -> str:
    """The whole printed report."""
    scenarios = results["scenarios"]
    meta = results["meta"]
    lines = [
        f"netfly-batch benchmarks: {meta['mode']} mode, {meta['repeats']} repeat(s), "
        f"{meta['cpus']} CPUs, Python {meta['python']}; netfly-batch uses "
        f"{'uvloop' if meta['netfly_uses_uvloop'] else 'asyncio'}; targets compare with "
        f"{meta['reference']}; figures are medians over the repeats",
        "",
        f"{'scenario':44} {'client':18} {'loop':7} {'wall s':>7} {'req/s':>8} "
        f"{'CPU µs/req':>10} {'peak MB':>7} {'netfly/this':>10} {'CPU ratio':>9}",
    ]
    for key in ("throughput", "realistic", "progress", "long_k", "tool_calls", "reasoning",
                "schema"):  # fmt: skip
        for name, data in scenarios.items():
            if name.startswith(key):
                lines.extend(comparison_rows(name, data))
    for name, data in scenarios.items():
        if name.startswith(("long_k", "tool_calls", "reasoning")):
            per_chunk = ", ".join(
                f"{label} {data['medians'][client]['cpu_us_per_request'] / data['chunks']:.2f} µs"
                for client, label in data["clients"].items()
            )
            lines.append(f"{name}: client CPU per chunk: {per_chunk}")
    if "memory" in scenarios:
        data = scenarios["memory"]
        lines.append("")
        for count, run in data["runs"].items():
            lines.append(
                f"memory: netfly-batch c={data['concurrency']} n={count:>8}: "
                f"{run['wall_s']:7.1f} s, {run['requests_per_s']:6.0f} req/s, "
                f"peak RSS {run['peak_rss_mb']:6.1f} MB"
            )
    if "resume" in scenarios:
        data = scenarios["resume"]
        lines.append(
            f"resume: OUT of {data['n']} ok results ({data['out_mb']} MB): "
            f"{data['wall_s']:.2f} s, peak RSS {data['peak_rss_mb']:.1f} MB, "
            f"{data['requests_sent']} requests sent"
        )
        if data.get("report_wall_s") is not None:
            lines.append(
                f"report over the same OUT: {data['report_wall_s']:.2f} s, "
                f"peak RSS {data['report_peak_rss_mb']:.1f} MB"
            )
        if data.get("zst_wall_s") is not None:
            lines.append(
                f"resume with INPUT as .zst: {data['zst_wall_s']:.2f} s "
                f"({data['zst_vs_plain']:.2f}x the plain file)"
            )
    if "startup" in scenarios:
        data = scenarios["startup"]
        lines.append(
            f"startup (median of {data['times']}): netfly-batch --help "
            f"{data['netfly_help']['median_s'] * 1000:.0f} ms, run --help "
            f"{data['netfly_run_help']['median_s'] * 1000:.0f} ms, python -c pass "
            f"{data['python_baseline']['median_s'] * 1000:.0f} ms"
        )
    other = [
        run.get("other_cpu_s", 0.0) / run["wall_s"]
        for data in scenarios.values()
        for run in data.get("runs", [])
        if isinstance(run, dict) and run.get("wall_s", 0) >= MIN_WARNING_WALL_S
    ]
    if other and max(other) > OTHER_LOAD_WARNING:
        lines.append(
            f"warning: other processes used up to {max(other):.0%} of a CPU during "
            "some runs (other_cpu_s in the JSON); figures may be noisy"
        )
    lines += ["", f"{'target':48} {'measured':>12}  {'target':>9}  result"]
    for t in results["targets"]:
        measured = f"{t['measured']:.3g}{t['unit']}"
        lines.append(
            f"{t['name']:48} {measured:>12}  {t['target']:>9}  {'PASS' if t['pass'] else 'FAIL'}"
        )
    return "\n".join(lines)
