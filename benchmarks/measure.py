"""Measuring one client process (wall, CPU, peak RSS: `launch.py` waits for it) and the server."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from inputs import BenchmarkError

HERE = Path(__file__).resolve().parent
RSS_SAMPLE_S = 0.25
IMPORTS_DONE_S = 1.0  # a client that has run this long has imported its event loop


@dataclass(slots=True)
class ProcessStats:
    """What one finished child process cost."""

    wall_s: float
    user_s: float
    sys_s: float
    peak_rss_mb: float
    exit_code: int
    uvloop_loaded: bool | None = None  # None: not checked, or the run was too short to tell
    rss_samples_mb: list[tuple[float, float]] = field(default_factory=list)  # (t_s, rss)

    @property
    def cpu_s(self) -> float:
        """User plus system CPU seconds."""
        return self.user_s + self.sys_s

    def as_dict(self) -> dict[str, Any]:
        """JSON-able figures, rounded."""
        data = asdict(self)
        data["cpu_s"] = self.cpu_s
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in data.items()}


def cpu_sets(pin: bool) -> tuple[set[int] | None, set[int] | None]:
    """CPUs for (client, server): the server gets the last CPU, clients the others."""
    available = sorted(os.sched_getaffinity(0))
    if not pin or len(available) < 2:
        return None, None
    return set(available[:-1]), {available[-1]}


class Sampler(threading.Thread):
    """Reads a child's RSS from /proc while it runs, and whether it loaded uvloop."""

    def __init__(self, pid: int, check_uvloop: bool) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.check_uvloop = check_uvloop
        self.samples: list[tuple[float, float]] = []
        self.uvloop_loaded: bool | None = None
        self.done = threading.Event()
        self.started = time.perf_counter()

    def run(self) -> None:
        while not self.done.wait(RSS_SAMPLE_S if len(self.samples) > 20 else 0.05):
            try:
                status = Path(f"/proc/{self.pid}/status").read_text()
                if self.check_uvloop and not self.uvloop_loaded:
                    self._check_uvloop(Path(f"/proc/{self.pid}/maps").read_text())
            except OSError:
                return
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    rss_mb = int(line.split()[1]) / 1024
                    self.samples.append((round(time.perf_counter() - self.started, 2), rss_mb))

    def _check_uvloop(self, maps: str) -> None:
        """True once seen; False only once the imports are surely done; else None."""
        if "uvloop" in maps:
            self.uvloop_loaded = True
        elif time.perf_counter() - self.started > IMPORTS_DONE_S:
            self.uvloop_loaded = False


def run_process(
    argv: Sequence[str],
    *,
    log_path: Path,
    timeout_s: float,
    cpus: set[int] | None = None,
    check_uvloop: bool = False,
) -> ProcessStats:
    """Run `argv` to its end through `launch.py`; its stdout and stderr go to `log_path`."""
    launcher = [
        sys.executable,
        "-I",
        "-S",
        str(HERE / "launch.py"),
        "--log",
        str(log_path),
        "--cpus",
        ",".join(map(str, sorted(cpus or ()))),
        "--",
        *argv,
    ]
    process = subprocess.Popen(launcher, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert process.stdout is not None
    killed = threading.Event()
    pid = 0
    try:
        line = process.stdout.readline()
        if not line.strip().isdigit():
            raise BenchmarkError(f"could not start {' '.join(argv)}")
        pid = int(line)
        sampler = Sampler(pid, check_uvloop)
        sampler.start()

        def kill() -> None:
            killed.set()
            os.kill(pid, signal.SIGKILL)

        watchdog = threading.Timer(timeout_s, kill)
        watchdog.start()
        try:
            report = json.loads(process.stdout.readline())
        finally:
            watchdog.cancel()
            sampler.done.set()
        process.wait()
    except BaseException:  # interrupted, or the launcher failed: leave nothing running
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.kill()
        process.wait()
        raise
    finally:
        process.stdout.close()
    sampler.join()
    if killed.is_set():
        raise BenchmarkError(f"{argv[0]} ran past {timeout_s:g} s and was killed; see {log_path}")
    return ProcessStats(
        report["wall_s"],
        report["user_s"],
        report["sys_s"],
        report["maxrss_kb"] / 1024,
        report["exit_code"],
        sampler.uvloop_loaded,
        sampler.samples,
    )


def machine_busy_s() -> float:
    """CPU seconds all CPUs of the machine have been busy since boot (from /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def median(values: Sequence[float]) -> float:
    """The median (of at least one value)."""
    return float(statistics.median(values))


class BenchServer:
    """`benchmarks/server.py` in its own process; `stats()` reads its counters."""

    def __init__(
        self,
        log_path: Path,
        *,
        chunks: int,
        latency_ms: float = 0.0,
        spacing_ms: float = 0.0,
        cpus: set[int] | None = None,
        shape: str = "text",
        capacity: int = 0,
    ) -> None:
        self.argv = [
            sys.executable,
            str(HERE / "server.py"),
            "--port",
            "0",
            "--chunks",
            str(chunks),
            "--latency-ms",
            str(latency_ms),
            "--spacing-ms",
            str(spacing_ms),
            "--shape",
            shape,
            "--capacity",
            str(capacity),
        ]
        self.log_path = log_path
        self.cpus = cpus
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> BenchServer:
        """Start it and wait for its port."""
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.argv, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL
            )
        if self.cpus:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(self.process.pid, self.cpus)
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.isdigit():
            self.stop()
            raise BenchmarkError(f"the benchmark server did not start; see {self.log_path}")
        self.url = f"http://127.0.0.1:{int(line)}"
        return self

    def stats(self) -> dict[str, float]:
        """Requests served so far, connections accepted, the server's CPU seconds."""
        with urllib.request.urlopen(self.url + "/stats", timeout=10) as response:
            data: dict[str, float] = json.loads(response.read())
        return data

    def stop(self) -> None:
        """SIGTERM, then wait."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None


@contextlib.contextmanager
def running_server(log_path: Path, **options: Any) -> Iterator[BenchServer]:
    """A started `BenchServer`, stopped on the way out."""
    server = BenchServer(log_path, **options)
    try:
        yield server.start()
    finally:
        server.stop()
