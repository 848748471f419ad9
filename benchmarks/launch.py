"""Start one command, wait for it, report what it cost: its pid, then a JSON line.

`python -I -S benchmarks/launch.py --log LOG [--cpus 0] -- COMMAND...`

`measure.py` measures every client through this small interpreter instead of forking it
from the runner, because Linux carries the parent's RSS high-water mark into the child's
`ru_maxrss` (exec keeps the old address space's peak): a child of the runner would report
the runner's own peak whenever that is larger than its own.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def main() -> None:
    """Spawn COMMAND (stdin from /dev/null, stdout and stderr to LOG), wait, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", required=True, help="file that gets the command's output")
    parser.add_argument("--cpus", default="", help="CPUs to pin the command to, e.g. 0,1")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if args.cpus:
        os.sched_setaffinity(0, {int(cpu) for cpu in args.cpus.split(",")})
    log = os.open(args.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    devnull = os.open(os.devnull, os.O_RDONLY)
    started = time.perf_counter()
    pid = os.posix_spawnp(
        command[0],
        command,
        os.environ,
        file_actions=[
            (os.POSIX_SPAWN_DUP2, devnull, 0),
            (os.POSIX_SPAWN_DUP2, log, 1),
            (os.POSIX_SPAWN_DUP2, log, 2),
        ],
    )
    print(pid, flush=True)
    _, status, usage = os.wait4(pid, 0)
    wall_s = time.perf_counter() - started
    print(
        json.dumps(
            {
                "wall_s": wall_s,
                "user_s": usage.ru_utime,
                "sys_s": usage.ru_stime,
                "maxrss_kb": usage.ru_maxrss,
                "exit_code": os.waitstatus_to_exitcode(status),
            }
        ),
        flush=True,
    )
    sys.exit(0)


if __name__ == "__main__":
    main()
