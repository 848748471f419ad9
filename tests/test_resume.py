"""Resume, crash safety and cron: rerunning the same command does only the work left."""

from __future__ import annotations

import fcntl
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from servers import read_results, simulator_thread, write_jsonl

from netfly_batch.batch import ledger as ledger_module
from netfly_batch.cli import main
from netfly_batch.simulator import SimulatorSettings
from netfly_batch.simulator.faults import FaultKind, FaultRates


def run_cli(*args: str) -> Any:
    """The real command, in-process."""
    return CliRunner().invoke(main, ["run", *args], catch_exceptions=False)


def prompts(tmp_path: Path, count: int, name: str = "in.jsonl") -> Path:
    return write_jsonl(
        tmp_path / name, [{"id": f"p{i}", "prompt": f"prompt {i}"} for i in range(count)]
    )


def spawn(*args: str, capture: bool = False) -> subprocess.Popen[bytes]:
    """The real command as a child process (for signals); stderr piped if `capture`."""
    return subprocess.Popen(
        [sys.executable, "-m", "netfly_batch", "run", *args, "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE if capture else subprocess.DEVNULL,
    )


def assert_complete(out: Path, count: int) -> list[dict[str, Any]]:
    """OUT holds exactly one ok line per prompt, with the simulator's content."""
    rows = read_results(out)
    assert sorted(r["id"] for r in rows) == sorted(f"p{i}" for i in range(count))
    for row in rows:
        assert row["status"] == "ok", row
        assert row["content"] == f"Echo: prompt {row['id'][1:]}"
    return rows


def test_rerun_skips_ok_and_redoes_errors(tmp_path: Path) -> None:
    """A rerun sends only the prompts that are missing or failed, and attempts accumulate."""
    source = prompts(tmp_path, 6)
    out = tmp_path / "out.jsonl"
    settings = SimulatorSettings(fail_first=3, fail_first_kind=FaultKind.RATE_503)
    with simulator_thread(settings) as sim:
        first = run_cli(
            str(source),
            "-o",
            str(out),
            "--base-url",
            sim.url,
            "--max-attempts",
            "2",
            "--retry-wait",
            "0",
        )
        assert first.exit_code == 1
        assert {r["status"] for r in read_results(out)} == {"error"}
        assert sim.stats.requests == 12
        second = run_cli(
            str(source),
            "-o",
            str(out),
            "--base-url",
            sim.url,
            "--max-attempts",
            "2",
            "--retry-wait",
            "0",
        )
        assert second.exit_code == 0, second.output
        assert sim.stats.requests == 24
        third = run_cli(str(source), "-o", str(out), "--base-url", sim.url)
        assert third.exit_code == 0
        assert sim.stats.requests == 24  # nothing left to do: nothing sent
    rows = assert_complete(out, 6)
    assert [r["attempts"] for r in rows] == [4] * 6  # 3 failures + 1 success, over two runs
    assert "6 already done" in third.stderr


def test_changed_line_is_redone_and_counted(tmp_path: Path) -> None:
    """An ok result whose input line changed since is requested again, never kept stale."""
    out = tmp_path / "out.jsonl"
    with simulator_thread() as sim:
        run_cli(str(prompts(tmp_path, 3)), "-o", str(out), "--base-url", sim.url)
        changed = write_jsonl(
            tmp_path / "in.jsonl",
            [
                {"id": "p0", "prompt": "prompt 0"},
                {"id": "p1", "prompt": "prompt 1 (edited)"},
                {"id": "p2", "prompt": "prompt 2", "temperature": 0.9},
            ],
        )
        summary = tmp_path / "s.json"
        result = run_cli(
            str(changed), "-o", str(out), "--base-url", sim.url, "--summary-json", str(summary)
        )
        assert sim.stats.requests == 5
    assert result.exit_code == 0
    assert orjson.loads(summary.read_bytes())["redone_changed"] == 2
    rows = {r["id"]: r for r in read_results(out)}
    assert len(read_results(out)) == 3  # compacted: one line per id
    assert rows["p1"]["content"] == "Echo: prompt 1 (edited)"


def test_fresh_starts_over(tmp_path: Path) -> None:
    """--fresh replaces OUT and sends everything again."""
    source = prompts(tmp_path, 3)
    out = tmp_path / "out.jsonl"
    with simulator_thread() as sim:
        run_cli(str(source), "-o", str(out), "--base-url", sim.url)
        result = run_cli(str(source), "-o", str(out), "--base-url", sim.url, "--fresh")
        assert sim.stats.requests == 6
    assert result.exit_code == 0
    assert_complete(out, 3)


def test_torn_last_line_is_set_aside(tmp_path: Path) -> None:
    """A half-written last line is moved to OUT.torn, never parsed, never appended to."""
    source = prompts(tmp_path, 4)
    out = tmp_path / "out.jsonl"
    with simulator_thread() as sim:
        run_cli(str(source), "-o", str(out), "--base-url", sim.url)
        lines = out.read_bytes().splitlines(keepends=True)
        kept = [line for line in lines if b'"p3"' not in line]
        torn = next(line for line in lines if b'"p3"' in line)[:40]
        out.write_bytes(b"".join(kept) + torn)
        result = run_cli(str(source), "-o", str(out), "--base-url", sim.url)
        assert sim.stats.requests == 5
    assert result.exit_code == 0, result.output
    assert_complete(out, 4)
    assert (tmp_path / "out.jsonl.torn").read_bytes() == torn + b"\n"
    assert "torn" in result.stderr


def test_compaction_keeps_latest_per_id_and_duplicate_reports(tmp_path: Path) -> None:
    """After a finished rerun OUT has one line per id, plus the invalid line of a repeated id."""
    source = write_jsonl(
        tmp_path / "in.jsonl",
        [
            {"id": "a", "prompt": "prompt a"},
            {"id": "b", "prompt": "prompt b"},
            {"id": "a", "prompt": "repeated id"},
            b"garbage",
        ],
    )
    out = tmp_path / "out.jsonl"
    with simulator_thread(SimulatorSettings(fail_first=1)) as sim:
        run_cli(str(source), "-o", str(out), "--base-url", sim.url, "--max-attempts", "1")
        assert len(read_results(out)) == 4
        run_cli(str(source), "-o", str(out), "--base-url", sim.url)
    rows = read_results(out)
    assert len(rows) == 4
    assert Counter((r["id"], r["status"]) for r in rows) == Counter(
        {("a", "ok"): 1, ("b", "ok"): 1, ("a", "invalid"): 1, ("4", "invalid"): 1}
    )
    assert next(r for r in rows if r["id"] == "a" and r["status"] == "ok")["attempts"] == 2


def test_crash_before_rename_leaves_a_valid_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If compaction dies before its rename, OUT is the old valid file and a rerun completes."""
    source = prompts(tmp_path, 3)
    out = tmp_path / "out.jsonl"
    with simulator_thread(SimulatorSettings(fail_first=1)) as sim:
        run_cli(str(source), "-o", str(out), "--base-url", sim.url, "--max-attempts", "1")

        def crash(*_: object) -> None:
            raise OSError(5, "simulated crash")

        monkeypatch.setattr(ledger_module.os, "replace", crash)
        crashed = run_cli(str(source), "-o", str(out), "--base-url", sim.url)
        assert crashed.exit_code == 3
        assert "cannot compact" in crashed.stderr
        rows = read_results(out)  # every line parses: nothing torn
        assert len(rows) == 6
        assert {r["id"] for r in rows if r["status"] == "ok"} == {"p0", "p1", "p2"}
        assert not list(tmp_path.glob(".out.jsonl.compact-*"))
        monkeypatch.undo()
        again = run_cli(str(source), "-o", str(out), "--base-url", sim.url)
        assert sim.stats.requests == 6
    assert again.exit_code == 0
    assert len(assert_complete(out, 3)) == 3


def test_ids_no_longer_in_input_are_kept(tmp_path: Path) -> None:
    """Results for ids the input dropped stay in OUT and are counted in the summary."""
    out = tmp_path / "out.jsonl"
    with simulator_thread() as sim:
        run_cli(str(prompts(tmp_path, 3)), "-o", str(out), "--base-url", sim.url)
        fewer = write_jsonl(tmp_path / "in.jsonl", [{"id": "p0", "prompt": "prompt 0"}])
        result = run_cli(str(fewer), "-o", str(out), "--base-url", sim.url)
    assert result.exit_code == 0
    assert "2 ids in OUT are no longer in the input (kept)" in result.stderr
    assert len(read_results(out)) == 3


def test_second_run_on_same_out_is_refused(tmp_path: Path) -> None:
    """While another process holds OUT's lock, a run exits 4 at once and writes nothing."""
    source = prompts(tmp_path, 2)
    out = tmp_path / "out.jsonl"
    lock = os.open(tmp_path / "out.jsonl.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        result = CliRunner().invoke(main, ["run", str(source), "-o", str(out), "--simulate"])
    finally:
        os.close(lock)
    assert result.exit_code == 4
    assert "another netfly-batch run" in result.output
    assert not out.exists() or out.read_bytes() == b""


def test_lock_of_a_killed_run_does_not_block(tmp_path: Path) -> None:
    """A run killed with SIGKILL leaves no lock that stops the next run."""
    source = prompts(tmp_path, 3)
    out = tmp_path / "out.jsonl"
    with simulator_thread(SimulatorSettings(stall_s=60, faults=FaultRates(stall=1.0))) as sim:
        process = spawn(str(source), "-o", str(out), "--base-url", sim.url)
        _wait_for(lambda: sim.stats.requests >= 1)
        process.kill()
        process.wait(10)
    with simulator_thread() as sim:
        result = run_cli(str(source), "-o", str(out), "--base-url", sim.url)
    assert result.exit_code == 0, result.output
    assert_complete(out, 3)


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
def test_signal_stops_cleanly_and_rerun_finishes(tmp_path: Path, signum: int, code: int) -> None:
    """A signal mid-run: in-flight work cancelled, summary printed, exit 130/143, rerun done."""
    source = prompts(tmp_path, 12)
    out = tmp_path / "out.jsonl"
    with simulator_thread(SimulatorSettings(chunk_count=4, chunk_delay_s=0.1)) as sim:
        process = spawn(str(source), "-o", str(out), "--base-url", sim.url, "-c", "2", capture=True)
        _wait_for(lambda: out.exists() and out.read_bytes().count(b"\n") >= 2)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=20)
        assert process.returncode == code, stderr
        assert b"interrupted" in stderr or b"terminated" in stderr
        partial = read_results(out)
        assert 2 <= len(partial) < 12
        assert all(r["status"] == "ok" for r in partial)
        result = run_cli(str(source), "-o", str(out), "--base-url", sim.url)
        assert result.exit_code == 0
    assert_complete(out, 12)


def test_max_runtime_stops_starting_work(tmp_path: Path) -> None:
    """--max-runtime ends the run with exit 75 and the rest is done by the next run."""
    source = prompts(tmp_path, 20)
    out = tmp_path / "out.jsonl"
    with simulator_thread(SimulatorSettings(chunk_count=2, chunk_delay_s=0.1)) as sim:
        result = run_cli(
            str(source), "-o", str(out), "--base-url", sim.url, "-c", "2", "--max-runtime", "0.5s"
        )
        assert result.exit_code == 75, result.output
        assert len(read_results(out)) >= 1
        assert len(read_results(out)) < 20
        finish = run_cli(str(source), "-o", str(out), "--base-url", sim.url, "-c", "8")
    assert finish.exit_code == 0
    assert_complete(out, 20)


def test_sigkill_at_random_moments_loses_and_repeats_nothing(tmp_path: Path) -> None:
    """Killed again and again, reruns end with one ok line per id; no ok id is asked again."""
    count = 60
    kills = 0
    source = prompts(tmp_path, count)
    out = tmp_path / "out.jsonl"
    chooser = random.Random(7)
    with simulator_thread(SimulatorSettings(chunk_count=3, chunk_delay_s=0.02)) as sim:
        for _ in range(20):
            done_before = (
                {r["id"] for r in read_results(out) if r["status"] == "ok"}
                if out.exists()
                else set()
            )
            asked_before = Counter(sim.stats.requests_by_content)
            process = spawn(str(source), "-o", str(out), "--base-url", sim.url, "-c", "4")
            try:
                code = process.wait(timeout=chooser.uniform(0.3, 1.2))
            except subprocess.TimeoutExpired:
                kills += 1
                process.kill()
                process.wait(10)
                code = None
            asked_now = Counter(sim.stats.requests_by_content) - asked_before
            again = {f"p{text.split()[-1]}" for text in asked_now} & done_before
            assert not again, f"requested again after ok: {again}"
            data = out.read_bytes() if out.exists() else b""
            if data:
                for line in data.splitlines()[:-1]:
                    orjson.loads(line)  # only the last line may be torn
            if code == 0:
                break
        else:
            pytest.fail("the batch never finished")
    assert kills >= 2
    assert_complete(out, count)


def _wait_for(condition: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting")
        time.sleep(0.02)


def test_disk_full_stops_with_a_clear_error_and_no_torn_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC while writing: exit 3 naming the full disk; what was written stays readable."""
    source = prompts(tmp_path, 10)
    out = tmp_path / "out.jsonl"
    real_write = ledger_module.write_fd
    calls = {"n": 0}

    def fill_up(fd: int, data: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 4:  # half of the fourth line reaches the disk, then it is full
            return real_write(fd, bytes(data[: len(data) // 2]))
        if calls["n"] > 4:
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(ledger_module, "write_fd", fill_up)
    with simulator_thread() as sim:
        result = run_cli(str(source), "-o", str(out), "--base-url", sim.url, "-c", "1")
        assert result.exit_code == 3
        assert "the disk is full" in result.stderr
        assert "Traceback" not in result.output
        monkeypatch.undo()
        again = run_cli(str(source), "-o", str(out), "--base-url", sim.url)
    assert again.exit_code == 0
    assert_complete(out, 10)
    assert (tmp_path / "out.jsonl.torn").exists()


def test_out_that_cannot_be_written_is_refused(tmp_path: Path) -> None:
    """OUT where nothing can be created: exit 3 with one clear line."""
    source = prompts(tmp_path, 1)
    result = CliRunner().invoke(
        main, ["run", str(source), "-o", "/proc/netfly-out.jsonl", "--simulate"]
    )
    assert result.exit_code == 3
    assert "cannot write" in result.output
    assert "Traceback" not in result.output


def test_fingerprint_ignores_metadata_and_key_order_but_not_defaults(tmp_path: Path) -> None:
    """Adding metadata or reordering keys redoes nothing; a new --temperature redoes all."""
    out = tmp_path / "out.jsonl"
    with simulator_thread() as sim:
        run_cli(str(prompts(tmp_path, 3)), "-o", str(out), "--base-url", sim.url)
        reworded = write_jsonl(
            tmp_path / "in.jsonl",
            [{"prompt": f"prompt {i}", "metadata": {"row": i}, "id": f"p{i}"} for i in range(3)],
        )
        same = run_cli(str(reworded), "-o", str(out), "--base-url", sim.url)
        assert sim.stats.requests == 3
        warmer = run_cli(
            str(reworded), "-o", str(out), "--base-url", sim.url, "--temperature", "0.9"
        )
        assert sim.stats.requests == 6
    assert "3 already done" in same.stderr
    assert "3 redone because their input changed" in warmer.stderr
    rows = assert_complete(out, 3)
    assert sorted(r["metadata"]["row"] for r in rows) == [0, 1, 2]


def test_deadline_with_nothing_left_to_start_is_a_finished_run(tmp_path: Path) -> None:
    """--max-runtime passing while the last requests finish: exit 0, not 75."""
    source = prompts(tmp_path, 4)
    out = tmp_path / "out.jsonl"
    with simulator_thread(SimulatorSettings(first_byte_delay_s=1.0)) as sim:
        result = run_cli(
            str(source), "-o", str(out), "--base-url", sim.url, "-c", "8", "--max-runtime", "0.3s"
        )
    assert result.exit_code == 0, result.output
    assert_complete(out, 4)


def test_a_line_that_broke_is_not_counted_as_gone(tmp_path: Path) -> None:
    """An id whose line is now invalid is still in the input: not 'no longer in the input'."""
    out = tmp_path / "out.jsonl"
    summary = tmp_path / "s.json"
    with simulator_thread() as sim:
        run_cli(str(prompts(tmp_path, 2)), "-o", str(out), "--base-url", sim.url)
        broken = write_jsonl(
            tmp_path / "in.jsonl", [{"id": "p0", "prompt": 7}, {"id": "p1", "prompt": "prompt 1"}]
        )
        result = run_cli(
            str(broken), "-o", str(out), "--base-url", sim.url, "--summary-json", str(summary)
        )
    assert result.exit_code == 1
    assert orjson.loads(summary.read_bytes())["not_in_input"] == 0


def test_a_fifo_input_is_read_once_and_fully(tmp_path: Path) -> None:
    """A named pipe (as from `<(zcat ...)`) cannot be read twice: every prompt still goes."""
    import threading

    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    rows = [orjson.dumps({"id": f"p{i}", "prompt": f"prompt {i}"}) + b"\n" for i in range(20)]
    rows.append(rows[3])  # a repeated id, found without a second pass

    def feed() -> None:
        with open(fifo, "wb") as pipe:
            pipe.write(b"".join(rows))

    writer = threading.Thread(target=feed)
    writer.start()
    out = tmp_path / "out.jsonl"
    with simulator_thread() as sim:
        result = run_cli(str(fifo), "-o", str(out), "--base-url", sim.url)
    writer.join(10)
    assert result.exit_code == 1
    results = read_results(out)
    assert sum(r["status"] == "ok" for r in results) == 20
    assert [r["line"] for r in results if r["status"] == "invalid"] == [21]


def test_a_second_ctrl_c_leaves_at_once_without_tearing_a_line(tmp_path: Path) -> None:
    """Two SIGINTs: the process exits 130 at once; every line in OUT is whole; rerun finishes."""
    source = prompts(tmp_path, 12)
    out = tmp_path / "out.jsonl"
    with simulator_thread(SimulatorSettings(chunk_count=4, chunk_delay_s=0.1)) as sim:
        process = spawn(str(source), "-o", str(out), "--base-url", sim.url, "-c", "2")
        _wait_for(lambda: out.exists() and out.read_bytes().count(b"\n") >= 2)
        process.send_signal(signal.SIGINT)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 130
        data = out.read_bytes()
        assert data.endswith(b"\n")
        assert all(r["status"] == "ok" for r in read_results(out))
        result = run_cli(str(source), "-o", str(out), "--base-url", sim.url)
    assert result.exit_code == 0
    assert_complete(out, 12)


def test_a_rerun_with_nothing_to_send_never_sets_up_the_http_client(tmp_path: Path) -> None:
    """The client (and aiohttp itself) comes with the first request; a finished batch
    reruns without either, and still counts every prompt as done."""
    source = prompts(tmp_path, 5)
    out = tmp_path / "out.jsonl"
    with simulator_thread(SimulatorSettings()) as sim:
        assert run_cli(str(source), "-o", str(out), "--base-url", sim.url).exit_code == 0
    probe = (
        "import sys\n"
        "from netfly_batch.cli import main\n"
        "try:\n"
        f"    main(['run', {str(source)!r}, '-o', {str(out)!r},"
        " '--base-url', 'http://127.0.0.1:9'])\n"
        "except SystemExit as done:\n"
        "    print('exit', done.code, 'aiohttp' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["exit", "0", "False"], done.stdout + done.stderr
    assert "5 already done" in done.stderr
