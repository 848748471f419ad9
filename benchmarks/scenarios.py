"""The scenarios: each runs clients against a fresh server and returns JSON-able figures."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from clients import NETFLY, NETFLY_SCHEMA, Client, all_clients, netfly_command, reference_key
from inputs import BenchmarkError, check_ok, write_done_output, write_prompts
from measure import (
    BenchServer,
    ProcessStats,
    machine_busy_s,
    median,
    run_process,
    running_server,
)

MAX_RSS_POINTS = 40


@dataclass(frozen=True, slots=True)
class Context:
    """What every scenario shares."""

    tmp: Path
    repeats: int
    chunks: int
    client_cpus: set[int] | None
    server_cpus: set[int] | None

    @property
    def log(self) -> Path:
        """Where the stdout/stderr of every process goes."""
        return self.tmp / "processes.log"

    def timeout_s(self, count: int) -> float:
        """How long one client run over `count` prompts may take before it is killed."""
        return 60 + count / 1000

    def prompts(self, count: int) -> Path:
        """An input of `count` prompts (written once, then reused)."""
        path = self.tmp / f"prompts-{count}.jsonl"
        return path if path.exists() else write_prompts(path, count)


def note(text: str) -> None:
    """One line of progress on stderr (the table goes to stdout at the end)."""
    print(text, file=sys.stderr, flush=True)


def run_client(
    ctx: Context,
    client: Client,
    server: BenchServer,
    input_path: Path,
    count: int,
    concurrency: int,
    label: str,
    *,
    progress: bool = False,
) -> dict[str, Any]:
    """One measured run of `client` over `count` prompts; every prompt must come back ok."""
    output = ctx.tmp / f"out-{client.key}.jsonl"
    before = server.stats()
    busy_before = machine_busy_s()
    stats = run_process(
        client.argv(input_path, output, server.url, concurrency, progress=progress),
        log_path=ctx.log,
        timeout_s=ctx.timeout_s(count),
        cpus=ctx.client_cpus,
        check_uvloop=True,
    )
    busy_s = machine_busy_s() - busy_before
    after = server.stats()
    if stats.exit_code != 0:
        raise BenchmarkError(f"{label} {client.label}: exit code {stats.exit_code}; see {ctx.log}")
    ok_lines = check_ok(output, count, f"{label} {client.label}")
    requests = int(after["requests"] - before["requests"])
    if requests != count:
        raise BenchmarkError(
            f"{label} {client.label}: the server saw {requests} requests for {count} prompts"
        )
    output.unlink()
    figures = figures_of(stats, count)
    server_cpu_s = after["cpu_s"] - before["cpu_s"]
    figures.update(
        client=client.key,
        ok_lines=ok_lines,
        requests_sent=requests,
        server_cpu_s=round(server_cpu_s, 3),
        other_cpu_s=round(max(0.0, busy_s - stats.cpu_s - server_cpu_s), 3),
    )
    note(
        f"  {label} {client.label:18} {figures['wall_s']:7.2f} s "
        f"{figures['requests_per_s']:8.0f} req/s {figures['cpu_us_per_request']:6.0f} µs/req "
        f"{figures['peak_rss_mb']:6.1f} MB  (server {server_cpu_s:.2f} s, "
        f"other {figures['other_cpu_s']:.2f} s CPU)"
    )
    return figures


def figures_of(stats: ProcessStats, count: int) -> dict[str, Any]:
    """Per-run figures: wall, rate, CPU per request, peak RSS."""
    return {
        "wall_s": round(stats.wall_s, 3),
        "requests_per_s": round(count / stats.wall_s, 1),
        "cpu_s": round(stats.cpu_s, 3),
        "user_s": round(stats.user_s, 3),
        "sys_s": round(stats.sys_s, 3),
        "cpu_us_per_request": round(stats.cpu_s * 1e6 / max(count, 1), 1),
        "peak_rss_mb": round(stats.peak_rss_mb, 1),
        "uvloop_loaded": stats.uvloop_loaded,
    }


def compare(
    ctx: Context,
    label: str,
    clients: Sequence[Client],
    count: int,
    concurrency: int,
    *,
    latency_ms: float = 0.0,
    spacing_ms: float = 0.0,
    progress: bool = False,
    chunks: int | None = None,
    shape: str = "text",
) -> dict[str, Any]:
    """Clients in alternation (A B C, A B C, ...) on one input and one server."""
    input_path = ctx.prompts(count)
    runs: list[dict[str, Any]] = []
    chunks = chunks or ctx.chunks
    with running_server(
        ctx.log,
        chunks=chunks,
        latency_ms=latency_ms,
        spacing_ms=spacing_ms,
        cpus=ctx.server_cpus,
        shape=shape,
    ) as server:
        for repeat in range(ctx.repeats):
            for client in clients:
                run = run_client(
                    ctx,
                    client,
                    server,
                    input_path,
                    count,
                    concurrency,
                    f"{label} #{repeat + 1}",
                    progress=progress and client.is_netfly,
                )
                runs.append({"repeat": repeat + 1, **run})
    return {
        "n": count,
        "concurrency": concurrency,
        "chunks": chunks,
        "shape": shape,
        "latency_ms": latency_ms,
        "spacing_ms": spacing_ms,
        "netfly_progress": progress,
        "repeats": ctx.repeats,
        "clients": {c.key: c.label for c in clients},
        "runs": runs,
        "medians": medians_of(runs, clients),
        "ratios": ratios_of(runs, clients),
        "reference": reference_key(),
    }


def medians_of(runs: list[dict[str, Any]], clients: Sequence[Client]) -> dict[str, Any]:
    """Per client: the median of each figure over the repeats."""
    names = ("wall_s", "requests_per_s", "cpu_us_per_request", "peak_rss_mb", "server_cpu_s")
    result: dict[str, Any] = {}
    for client in clients:
        mine = [r for r in runs if r["client"] == client.key]
        result[client.key] = {n: round(median([r[n] for r in mine]), 3) for n in names}
        result[client.key]["ok_lines"] = min(r["ok_lines"] for r in mine)
        result[client.key]["uvloop_loaded"] = mine[0]["uvloop_loaded"]
    return result


def ratios_of(runs: list[dict[str, Any]], clients: Sequence[Client]) -> dict[str, Any]:
    """netfly / minimal within each repeat (throughput and CPU), and their medians."""
    result: dict[str, Any] = {}
    by_repeat = {(r["repeat"], r["client"]): r for r in runs}
    repeats = sorted({r["repeat"] for r in runs})
    for client in clients:
        if client.is_netfly:
            continue
        throughput = [
            by_repeat[i, NETFLY]["requests_per_s"] / by_repeat[i, client.key]["requests_per_s"]
            for i in repeats
        ]
        cpu = [
            by_repeat[i, NETFLY]["cpu_us_per_request"]
            / by_repeat[i, client.key]["cpu_us_per_request"]
            for i in repeats
        ]
        result[client.key] = {
            "throughput": [round(x, 3) for x in throughput],
            "cpu": [round(x, 3) for x in cpu],
            "throughput_median": round(median(throughput), 3),
            "cpu_median": round(median(cpu), 3),
        }
    return result


def throughput(ctx: Context, count: int, concurrency: int) -> dict[str, Any]:
    """Scenario 1: the fast server, every client, at one concurrency."""
    return compare(ctx, f"throughput c={concurrency}", all_clients(), count, concurrency)


def shapes(ctx: Context, count: int, concurrency: int, long_chunks: int) -> dict[str, Any]:
    """Scenario 7: what joining the whole answer costs: long text answers (K=long_chunks),
    streamed tool calls and reasoning streams (K=ctx.chunks), against the minimal client
    (which joins only `content`)."""
    clients = [c for c in all_clients() if c.is_netfly or c.key == reference_key()]
    found = {
        f"long_k{long_chunks}": compare(
            ctx, f"long answers K={long_chunks}", clients, count, concurrency, chunks=long_chunks
        )
    }
    for shape in ("tool_calls", "reasoning"):
        found[shape] = compare(ctx, f"{shape} K={ctx.chunks}", clients, count, concurrency,
                               shape=shape)  # fmt: skip
    return found


def schema(ctx: Context, count: int, concurrency: int) -> dict[str, Any]:
    """Scenario 8: what checking answers against a JSON Schema costs: netfly-batch with
    `--json-schema` (10 required string fields, 1 KB answers) against itself without."""
    from server import JSON_FIELDS

    path = ctx.tmp / "schema.json"
    fields = {f"field{i}": {"type": "string", "minLength": 1} for i in range(JSON_FIELDS)}
    path.write_bytes(orjson.dumps({"type": "object", "properties": fields,
                                   "required": list(fields)}))  # fmt: skip
    checked = Client(NETFLY_SCHEMA, "netfly --json-schema", ("--json-schema", str(path)))
    plain = next(c for c in all_clients() if c.is_netfly)
    return compare(ctx, "schema", [plain, checked], count, concurrency, shape="json")


def progress(ctx: Context, count: int, concurrency: int) -> dict[str, Any]:
    """Scenario 6: netfly-batch with `--progress` (bar on, to a file) against the floor."""
    clients = [c for c in all_clients() if c.is_netfly or c.key == reference_key()]
    return compare(ctx, f"progress c={concurrency}", clients, count, concurrency, progress=True)


def realistic(
    ctx: Context, count: int, concurrency: int, latency_ms: float, spacing_ms: float
) -> dict[str, Any]:
    """Scenario 4: a server that thinks before the first byte and streams slowly."""
    return compare(
        ctx,
        "realistic",
        all_clients(),
        count,
        concurrency,
        latency_ms=latency_ms,
        spacing_ms=spacing_ms,
    )


def memory(ctx: Context, counts: Sequence[int], concurrency: int) -> dict[str, Any]:
    """Scenario 2: netfly-batch's peak RSS over a small and a huge input (fast server)."""
    netfly = Client(NETFLY, "netfly-batch")
    result: dict[str, Any] = {"concurrency": concurrency, "chunks": ctx.chunks, "runs": {}}
    with running_server(ctx.log, chunks=ctx.chunks, cpus=ctx.server_cpus) as server:
        for count in counts:
            note(f"  memory: writing {count} prompts")
            input_path = ctx.prompts(count)
            output = ctx.tmp / f"out-{NETFLY}.jsonl"
            stats = run_process(
                netfly.argv(input_path, output, server.url, concurrency),
                log_path=ctx.log,
                timeout_s=ctx.timeout_s(count),
                cpus=ctx.client_cpus,
            )
            if stats.exit_code != 0:
                raise BenchmarkError(f"memory n={count}: exit code {stats.exit_code}")
            figures = figures_of(stats, count)
            figures["ok_lines"] = check_ok(output, count, f"memory n={count}")
            figures["rss_samples_mb"] = thin(stats.rss_samples_mb)
            output.unlink()
            if count != counts[-1]:
                input_path.unlink()
            note(
                f"  memory n={count}: {figures['wall_s']:.1f} s, "
                f"peak RSS {figures['peak_rss_mb']:.1f} MB"
            )
            result["runs"][str(count)] = figures
    small, large = (result["runs"][str(n)] for n in (min(counts), max(counts)))
    result.update(
        n_small=min(counts),
        n_large=max(counts),
        rss_small_mb=small["peak_rss_mb"],
        rss_large_mb=large["peak_rss_mb"],
        rss_growth=round(large["peak_rss_mb"] / small["peak_rss_mb"], 3),
        wall_large_s=large["wall_s"],
    )
    return result


def thin(samples: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """At most `MAX_RSS_POINTS` evenly spaced samples, the last one kept."""
    step = max(1, len(samples) // MAX_RSS_POINTS)
    kept = samples[::step]
    if samples and kept[-1] != samples[-1]:
        kept.append(samples[-1])
    return [(t, round(rss, 1)) for t, rss in kept]


def resume(ctx: Context, count: int, concurrency: int) -> dict[str, Any]:
    """Scenario 3: rerun over an OUT already holding `count` up-to-date ok results, with
    INPUT plain and then compressed with zstd (what decompressing costs)."""
    input_path = ctx.prompts(count)
    output = ctx.tmp / "out-resume.jsonl"
    note(f"  resume: writing an OUT of {count} ok results")
    write_done_output(output, count, ctx.chunks)
    size_mb = output.stat().st_size / 2**20
    compressed = write_zstd_copy(input_path)
    with running_server(ctx.log, chunks=ctx.chunks, cpus=ctx.server_cpus) as server:
        runs = reruns(ctx, server, input_path, output, count, concurrency, "resume")
        zst_runs = reruns(ctx, server, compressed, output, count, concurrency, "resume .zst")
    ok_lines = check_ok(output, count, "resume (OUT after the reruns)")
    report = run_process([*netfly_command(), "report", str(output)], log_path=ctx.log,
                         timeout_s=ctx.timeout_s(count), cpus=ctx.client_cpus)  # fmt: skip
    if report.exit_code != 0:
        raise BenchmarkError(f"report: exit code {report.exit_code}; see {ctx.log}")
    note(f"  report over {count} results: {report.wall_s:.2f} s, "
         f"peak RSS {report.peak_rss_mb:.1f} MB")  # fmt: skip
    wall_s = median([r["wall_s"] for r in runs])
    zst_wall_s = median([r["wall_s"] for r in zst_runs])
    return {
        "n": count,
        "out_mb": round(size_mb, 1),
        "runs": runs,
        "zst_runs": zst_runs,
        "ok_lines": ok_lines,
        "wall_s": round(wall_s, 3),
        "zst_wall_s": round(zst_wall_s, 3),
        "zst_vs_plain": round(zst_wall_s / wall_s, 3) if wall_s else None,
        "report_wall_s": round(report.wall_s, 3),
        "report_peak_rss_mb": report.peak_rss_mb,
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "requests_sent": max(r["requests_sent"] for r in [*runs, *zst_runs]),
    }


def write_zstd_copy(path: Path) -> Path:
    """`path` compressed with zstd beside it (written once)."""
    import zstandard

    target = path.with_name(path.name + ".zst")
    if not target.exists():
        with open(path, "rb") as source, open(target, "wb") as out:
            zstandard.ZstdCompressor().copy_stream(source, out)
    return target


def reruns(
    ctx: Context,
    server: BenchServer,
    input_path: Path,
    output: Path,
    count: int,
    concurrency: int,
    label: str,
) -> list[dict[str, Any]]:
    """`ctx.repeats` reruns of netfly-batch over a done OUT; each must send nothing new."""
    argv = [
        *netfly_command(),
        "run",
        str(input_path),
        "-o",
        str(output),
        "--base-url",
        server.url,
        "-c",
        str(concurrency),
        "-q",
    ]
    runs = []
    for repeat in range(ctx.repeats):
        before = server.stats()
        stats = run_process(
            argv, log_path=ctx.log, timeout_s=ctx.timeout_s(count), cpus=ctx.client_cpus
        )
        requests = int(server.stats()["requests"] - before["requests"])
        if stats.exit_code != 0:
            raise BenchmarkError(f"{label}: exit code {stats.exit_code}; see {ctx.log}")
        figures = figures_of(stats, count)
        figures.update(repeat=repeat + 1, requests_sent=requests)
        runs.append(figures)
        note(
            f"  {label} #{repeat + 1}: {stats.wall_s:.2f} s, {requests} requests, "
            f"peak RSS {stats.peak_rss_mb:.1f} MB"
        )
    return runs


def startup(ctx: Context, times: int) -> dict[str, Any]:
    """Scenario 5: wall time of `netfly-batch --help` (and of a bare interpreter)."""
    commands = {
        "netfly_help": [*netfly_command(), "--help"],
        "netfly_run_help": [*netfly_command(), "run", "--help"],
        "python_baseline": [sys.executable, "-c", "pass"],
    }
    result: dict[str, Any] = {"times": times}
    for name, argv in commands.items():
        walls = []
        for _ in range(times):
            stats = run_process(
                argv, log_path=ctx.tmp / "help.log", timeout_s=30, cpus=ctx.client_cpus
            )
            if stats.exit_code != 0:
                raise BenchmarkError(f"startup: {' '.join(argv)} exited {stats.exit_code}")
            walls.append(stats.wall_s)
        result[name] = {
            "median_s": round(median(walls), 4),
            "min_s": round(min(walls), 4),
            "max_s": round(max(walls), 4),
        }
        note(f"  startup {name}: median {median(walls) * 1000:.0f} ms")
    return result


def fleet(ctx: Context, count: int, capacity: int, latency_ms: float) -> dict[str, Any]:
    """Scenario 9: one batch over two endpoints that each serve at most `capacity`
    requests at once (`latency_ms` each), against the same batch on one of them; -c is
    twice the capacity, so the servers, not the client, set the pace."""
    input_path = ctx.prompts(count)
    concurrency = 2 * capacity
    netfly = Client(NETFLY, "netfly-batch")
    options = {"chunks": ctx.chunks, "latency_ms": latency_ms, "capacity": capacity}
    runs: list[dict[str, Any]] = []
    with (
        running_server(ctx.log, cpus=ctx.server_cpus, **options) as first,
        running_server(ctx.log, cpus=ctx.server_cpus, **options) as second,
    ):
        setups = {"one": [first], "two": [first, second]}
        for repeat in range(ctx.repeats):
            for name, servers in setups.items():
                base_url = ",".join(server.url for server in servers)
                output = ctx.tmp / "out-fleet.jsonl"
                before = sum(server.stats()["requests"] for server in servers)
                stats = run_process(
                    netfly.argv(input_path, output, base_url, concurrency),
                    log_path=ctx.log,
                    timeout_s=ctx.timeout_s(count),
                    cpus=ctx.client_cpus,
                )
                sent = int(sum(server.stats()["requests"] for server in servers) - before)
                if stats.exit_code != 0 or sent != count:
                    raise BenchmarkError(
                        f"fleet {name}: exit code {stats.exit_code}, {sent} requests for "
                        f"{count} prompts; see {ctx.log}"
                    )
                check_ok(output, count, f"fleet {name}")
                output.unlink()
                figures = figures_of(stats, count)
                figures.update(repeat=repeat + 1, endpoints=name)
                runs.append(figures)
                note(
                    f"  fleet #{repeat + 1} {name:3} endpoint(s): {figures['wall_s']:6.2f} s "
                    f"{figures['requests_per_s']:7.0f} req/s "
                    f"{figures['cpu_us_per_request']:5.0f} µs/req"
                )
    by = {(r["repeat"], r["endpoints"]): r for r in runs}
    repeats = range(1, ctx.repeats + 1)
    speedup = [by[i, "two"]["requests_per_s"] / by[i, "one"]["requests_per_s"] for i in repeats]
    cpu = [by[i, "two"]["cpu_us_per_request"] / by[i, "one"]["cpu_us_per_request"]
           for i in repeats]  # fmt: skip
    return {
        "n": count,
        "capacity": capacity,
        "concurrency": concurrency,
        "latency_ms": latency_ms,
        "runs": runs,
        "ideal_one_per_s": round(capacity / (latency_ms / 1000), 1),
        "speedup": [round(x, 3) for x in speedup],
        "speedup_median": round(median(speedup), 3),
        "cpu_two_vs_one_median": round(median(cpu), 3),
    }
