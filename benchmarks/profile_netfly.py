"""Profile a client against the benchmark server with py-spy; print the hot spots.

    pip install py-spy   # not a project dependency
    python benchmarks/profile_netfly.py [-n 20000] [-c 64] [--client netfly|minimal_uvloop]

Writes py-spy's collapsed stacks (`<client>.collapsed` under --out, loadable in
speedscope or flamegraph.pl) and prints: CPU by library, the frames with the most self
time, and the netfly_batch functions with the most inclusive time, as shares and as
µs per request (samples / rate / n). Idle samples (the loop waiting in epoll) are left
out by py-spy, so the figures are of busy CPU time. Profiling the minimal client the
same way gives the floor to compare each line with.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

from clients import MINIMAL_ASYNCIO, MINIMAL_UVLOOP, NETFLY, Client
from inputs import write_prompts
from measure import cpu_sets, run_process, running_server

FRAME_LINE = re.compile(r":\d+\)$")
GROUPS = (
    "netfly_batch",
    "aiohttp",
    "tenacity",
    "asyncio",
    "uvloop",
    "multidict",
    "yarl",
    "tqdm",
    "click",
)


def read_stacks(path: Path) -> list[tuple[list[str], int]]:
    """Collapsed stacks: (frames root first, without line numbers; sample count)."""
    stacks = []
    for line in path.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        if frames:
            stacks.append(([FRAME_LINE.sub(")", f) for f in frames.split(";")], int(count)))
    return stacks


def group_of(frame: str) -> str:
    """The library a frame belongs to, from its file path."""
    return next((g for g in GROUPS if f"{g}/" in frame or f"{g}." in frame), "other")


def summarize(stacks: list[tuple[list[str], int]], top: int, us_per_sample: float) -> str:
    """Shares by library (of the leaf frame), top self frames, top netfly_batch inclusive."""
    total = sum(count for _, count in stacks) or 1
    by_group: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, count in stacks:
        by_group[group_of(frames[-1])] += count
        self_time[frames[-1]] += count
        for frame in set(frames):
            if "netfly_batch/" in frame:
                inclusive[frame] += count

    def row(name: str, samples: int) -> str:
        return f"  {100 * samples / total:5.1f}% {samples * us_per_sample:7.1f} µs/req  {name}"

    lines = [
        f"{total} busy samples = {total * us_per_sample:.0f} µs of CPU per request",
        "",
        "self time by library (leaf frame):",
    ]
    lines += [row(g, n) for g, n in by_group.most_common()]
    lines += ["", f"top {top} frames by self time:"]
    lines += [row(f, n) for f, n in self_time.most_common(top)]
    if inclusive:
        lines += ["", f"top {top} netfly_batch functions by inclusive time:"]
        lines += [row(f, n) for f, n in inclusive.most_common(top)]
    return "\n".join(lines)


def main() -> int:
    """Run the client under py-spy once and print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--prompts", type=int, default=20_000)
    parser.add_argument("-c", "--concurrency", type=int, default=64)
    parser.add_argument("--chunks", type=int, default=16)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--client", default=NETFLY, choices=[NETFLY, MINIMAL_ASYNCIO, MINIMAL_UVLOOP]
    )
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "netfly-profile")
    args = parser.parse_args()
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        print("py-spy is not installed: pip install py-spy", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    client_cpus, server_cpus = cpu_sets(True)
    input_path = write_prompts(args.out / "prompts.jsonl", args.prompts)
    collapsed = args.out / f"{args.client}.collapsed"
    with running_server(args.out / "server.log", chunks=args.chunks, cpus=server_cpus) as server:
        argv = Client(args.client, args.client).argv(
            input_path, args.out / "out.jsonl", server.url, args.concurrency
        )
        stats = run_process(
            [
                py_spy,
                "record",
                "--format",
                "raw",
                "--nonblocking",
                "--rate",
                str(args.rate),
                "-o",
                str(collapsed),
                "--",
                *argv,
            ],
            log_path=args.out / "py-spy.log",
            timeout_s=600,
            cpus=client_cpus,
        )
    if stats.exit_code != 0 or not collapsed.exists():
        print(f"py-spy failed; see {args.out / 'py-spy.log'}", file=sys.stderr)
        return 1
    print(
        f"{args.client} under py-spy: n={args.prompts} c={args.concurrency}, "
        f"{stats.wall_s:.2f} s wall\n"
    )
    print(summarize(read_stacks(collapsed), args.top, 1e6 / args.rate / args.prompts))
    print(f"\ncollapsed stacks: {collapsed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
