"""Run the netfly-batch benchmark suite: print a table, write a JSON results file.

    python benchmarks/run.py [--quick] [--out benchmarks/results/latest.json]

Each scenario starts `benchmarks/server.py` in its own process (pinned to the last CPU,
clients to the others, unless --no-pin) and runs the real `netfly-batch run` CLI and the
minimal client (`benchmarks/minimal_client.py`) as subprocesses, in alternation, on the
same generated input. Temporary inputs and outputs live in a temp folder that is removed
at the end. Exit 0 when every run did its work (targets may FAIL: see --fail-on-target),
1 when a run failed (wrong exit code, missing ok results, wrong request count).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import scenarios
from clients import reference_key, uvloop_available
from inputs import BenchmarkError
from measure import cpu_sets
from report import render, targets_of

SCENARIOS = (
    "throughput",
    "memory",
    "resume",
    "realistic",
    "startup",
    "progress",
    "shapes",
    "schema",
    "fleet",
)
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "latest.json"
# Full run / --quick defaults of the options left unset.
DEFAULTS: dict[str, tuple[Any, Any]] = {
    "prompts": (20_000, 300),
    "concurrency": ([64, 256], [64, 256]),
    "repeats": (3, 1),
    "memory_n": ([10_000, 1_000_000], [300, 3_000]),
    "resume_n": (1_000_000, 3_000),
    "realistic_n": (20_000, 300),
    "realistic_c": (256, 64),
    "startup_times": (10, 3),
    "shapes_n": (5_000, 200),
    "fleet_n": (4_000, 200),
    "fleet_capacity": (16, 8),
}


def int_list(text: str) -> list[int]:
    """`64,256` -> [64, 256]."""
    return [int(part) for part in text.split(",") if part.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; unset sizes take the full or --quick default."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes and 1 repeat (< 30 s): the smoke test's mode",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated subset of {','.join(SCENARIOS)}",
    )
    parser.add_argument("-n", "--prompts", type=int, help="prompts per throughput/progress run")
    parser.add_argument(
        "--concurrency", type=int_list, help="throughput concurrencies, e.g. 64,256"
    )
    parser.add_argument("--repeats", type=int, help="A/B repeats per comparison")
    parser.add_argument("--chunks", type=int, default=16, help="content chunks per answer (K)")
    parser.add_argument("--memory-n", type=int_list, help="input sizes of the memory scenario")
    parser.add_argument("--memory-c", type=int, default=256, help="memory scenario concurrency")
    parser.add_argument("--resume-n", type=int, help="ok results already in OUT for the resume")
    parser.add_argument("--realistic-n", type=int, help="prompts of the realistic scenario")
    parser.add_argument("--realistic-c", type=int, help="concurrency of the realistic scenario")
    parser.add_argument(
        "--latency-ms", type=float, default=100.0, help="realistic: delay before the first byte"
    )
    parser.add_argument(
        "--spacing-ms", type=float, default=5.0, help="realistic: delay between chunks"
    )
    parser.add_argument("--progress-c", type=int, default=64, help="progress scenario concurrency")
    parser.add_argument("--shapes-n", type=int, help="prompts per run of the shapes scenario")
    parser.add_argument(
        "--long-chunks", type=int, default=256, help="shapes: chunks of a long answer (K)"
    )
    parser.add_argument("--fleet-n", type=int, help="prompts per run of the fleet scenario")
    parser.add_argument(
        "--fleet-capacity", type=int, help="fleet: requests each server serves at once"
    )
    parser.add_argument(
        "--fleet-latency-ms", type=float, default=50.0, help="fleet: each answer's delay"
    )
    parser.add_argument("--startup-times", type=int, help="--help runs to take the median of")
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="do not pin the server and the clients to separate CPUs",
    )
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp folder")
    parser.add_argument("--fail-on-target", action="store_true", help="exit 2 when a target fails")
    args = parser.parse_args(argv)
    for name, (full, quick) in DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    return args


def run_scenarios(args: argparse.Namespace, ctx: scenarios.Context) -> dict[str, Any]:
    """Every chosen scenario, in a fixed order; keys as in the JSON."""
    done: dict[str, Any] = {}
    chosen = args.scenarios
    if "startup" in chosen:
        scenarios.note("startup")
        done["startup"] = scenarios.startup(ctx, args.startup_times)
    if "throughput" in chosen:
        for concurrency in args.concurrency:
            scenarios.note(f"throughput c={concurrency}")
            done[f"throughput_c{concurrency}"] = scenarios.throughput(
                ctx, args.prompts, concurrency
            )
    if "progress" in chosen:
        scenarios.note(f"progress c={args.progress_c}")
        done["progress"] = scenarios.progress(ctx, args.prompts, args.progress_c)
    if "shapes" in chosen:
        scenarios.note(f"shapes: long answers, tool calls, reasoning (c={args.progress_c})")
        done.update(scenarios.shapes(ctx, args.shapes_n, args.progress_c, args.long_chunks))
    if "schema" in chosen:
        scenarios.note(f"schema: --json-schema vs none (c={args.progress_c})")
        # as many prompts as the throughput runs: jsonschema's one-time import (0.2 s)
        # is spread as it is in a real batch, so the figure is the cost per request
        done["schema"] = scenarios.schema(ctx, args.prompts, args.progress_c)
    if "fleet" in chosen:
        scenarios.note(
            f"fleet: two endpoints vs one, each serving {args.fleet_capacity} at once, "
            f"{args.fleet_latency_ms:g} ms per answer"
        )
        done["fleet"] = scenarios.fleet(
            ctx, args.fleet_n, args.fleet_capacity, args.fleet_latency_ms
        )
    if "realistic" in chosen:
        scenarios.note(
            f"realistic: {args.latency_ms:g} ms to first byte, "
            f"{args.spacing_ms:g} ms between chunks"
        )
        done["realistic"] = scenarios.realistic(
            ctx, args.realistic_n, args.realistic_c, args.latency_ms, args.spacing_ms
        )
    if "memory" in chosen:
        scenarios.note(f"memory c={args.memory_c}: n={args.memory_n}")
        done["memory"] = scenarios.memory(ctx, args.memory_n, args.memory_c)
    if "resume" in chosen:
        scenarios.note(f"resume n={args.resume_n}")
        done["resume"] = scenarios.resume(ctx, args.resume_n, args.memory_c)
    return done


def netfly_source() -> dict[str, Any]:
    """Which netfly_batch the clients ran (PYTHONPATH may point at a snapshot), and its commit."""
    spec = importlib.util.find_spec("netfly_batch")
    folder = Path(spec.origin).parent if spec and spec.origin else None
    found: dict[str, Any] = {"path": str(folder), "commit": None, "dirty": None}
    if folder is not None:
        git = ["git", "-C", str(folder)]
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        )
        if head.returncode == 0:
            status = subprocess.run(
                [*git, "status", "--porcelain", "--", "."],
                capture_output=True,
                text=True,
                check=False,
            )
            found.update(commit=head.stdout.strip(), dirty=bool(status.stdout.strip()))
    return found


def meta_of(args: argparse.Namespace, started: float) -> dict[str, Any]:
    """What the figures were measured on."""
    import aiohttp

    return {
        "mode": "quick" if args.quick else "full",
        "repeats": args.repeats,
        "netfly_batch": netfly_source(),
        "cpus": os.cpu_count(),
        "pinned": not args.no_pin,
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "netfly_uses_uvloop": uvloop_available(),
        "reference": reference_key(),
        "argv": sys.argv[1:],
        "duration_s": round(time.monotonic() - started, 1),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def show_log_tail(path: Path, lines: int = 20) -> None:
    """The end of the processes' log, to explain a failed run."""
    if path.exists():
        tail = path.read_bytes().decode(errors="replace").splitlines()[-lines:]
        print("\n".join(["--- last lines of the processes' log ---", *tail]), file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run, print, write; the exit code says whether every run worked."""
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the server and a running client are stopped
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    started = time.monotonic()
    client_cpus, server_cpus = cpu_sets(not args.no_pin)
    tmp = Path(tempfile.mkdtemp(prefix="netfly-bench-"))
    ctx = scenarios.Context(tmp, args.repeats, args.chunks, client_cpus, server_cpus)
    try:
        done = run_scenarios(args, ctx)
    except BenchmarkError as error:
        show_log_tail(ctx.log)
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    finally:
        if args.keep_temp:
            print(f"temp folder kept: {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    meta = meta_of(args, started)
    targets = targets_of(done)
    results = {"meta": meta, "scenarios": done, "targets": targets}
    print(render(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    print(f"\nresults written to {args.out} ({meta['duration_s']} s)")
    failed = [t for t in targets if not t["pass"]]
    return 2 if args.fail_on_target and failed else 0


if __name__ == "__main__":
    sys.exit(main())
