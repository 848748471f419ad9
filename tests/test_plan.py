"""The planner: prompt lines and what OUT holds -> jobs, invalid lines, or nothing."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest

from netfly_batch.batch.ledger import LedgerState, scan_into
from netfly_batch.batch.plan import Job, Planner, request_defaults
from netfly_batch.batch.prompts import InvalidLine, Prompt, PromptReader
from netfly_batch.batch.run_settings import RunSettings
from netfly_batch.batch.shard import Shard, shard_of
from netfly_batch.http.endpoints import FREENETFLY, Endpoint
from netfly_batch.results import Result

OTHER = Endpoint("http://127.0.0.1:9")


def settings(**overrides) -> RunSettings:
    return RunSettings(
        input_path="in.jsonl", output_path="out.jsonl", **{"endpoint": OTHER, **overrides}
    )


def prompt(prompt_id: str = "a", line_no: int = 1, fingerprint: int = 0x1234, **params):
    return Prompt(
        prompt_id,
        line_no,
        [{"role": "user", "content": "hi there"}],
        params,
        fingerprint=fingerprint,
    )


def state_of(tmp_path: Path, *results: Result) -> LedgerState:
    out = tmp_path / "out.jsonl"
    out.write_bytes(b"".join(result.to_line() for result in results))
    state = LedgerState()
    scan_into(out, state)
    return state


def test_a_new_prompt_becomes_a_job_with_the_endpoint_body():
    """A prompt OUT knows nothing of is sent: the body has the run's and line's parameters."""
    planner = Planner(settings(model="m1", params={"temperature": 0.1}), LedgerState())
    job = planner.plan(prompt(seed=7))
    assert isinstance(job, Job)
    assert job.body["model"] == "m1"
    assert job.body["temperature"] == 0.1
    assert job.body["seed"] == 7
    assert job.body["stream"] is True
    assert job.request_hash == f"{0x1234:016x}"
    assert (job.attempts_before, job.cost) == (0, 0)
    assert (planner.superseding, planner.redone_changed) == (0, 0)


def test_tpm_gives_the_job_a_token_cost():
    """With a token budget each job carries its estimated tokens."""
    job = Planner(settings(tpm=1000.0, params={"max_tokens": 50}), LedgerState()).plan(prompt())
    assert isinstance(job, Job)
    assert job.cost >= 50


def test_an_unknown_model_on_freenetfly_is_an_invalid_line():
    """The FreeNetfly preset refuses a model it does not list: the line is invalid."""
    planned = Planner(settings(endpoint=FREENETFLY), LedgerState()).plan(prompt(model="x"))
    assert isinstance(planned, InvalidLine)
    assert "gpt-4" in planned.reason


def test_an_error_result_for_this_request_carries_its_attempts(tmp_path):
    """A request that failed before is sent again, counting the attempts already spent."""
    error = Result("a", "error", 3, None, {"type": "transport"}, 1, request_hash=f"{0x1234:016x}")
    planner = Planner(settings(), state_of(tmp_path, error))
    job = planner.plan(prompt())
    assert isinstance(job, Job)
    assert job.attempts_before == 3
    assert (planner.superseding, planner.redone_changed) == (1, 0)


def test_a_changed_request_of_an_ok_result_is_redone(tmp_path):
    """An ok result for another request of the same id: sent again, counted as redone."""
    ok = Result("a", "ok", 1, "old", None, 1, request_hash=f"{0x9999:016x}")
    planner = Planner(settings(), state_of(tmp_path, ok))
    job = planner.plan(prompt())
    assert isinstance(job, Job)
    assert job.attempts_before == 0
    assert (planner.superseding, planner.redone_changed) == (1, 1)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_shards_send_their_own_ids_and_shard_zero_reports_invalid_lines(index):
    """Each shard plans only its ids; broken lines are reported by shard 0 alone."""
    planner = Planner(settings(shard=Shard(index, 3)), LedgerState())
    ids = [f"id{n}" for n in range(30)]
    planned = [planner.plan(prompt(i)) for i in ids]
    assert [p.prompt.id for p in planned if isinstance(p, Job)] == [
        i for i in ids if shard_of(i, 3) == index
    ]
    broken = planner.plan(InvalidLine("7", 7, "invalid JSON"))
    assert (broken is not None) == (index == 0)


def test_jobs_settle_suspected_repeats_by_a_second_pass():
    """Ids the filter is unsure of are settled by rereading: the first line is sent."""

    class AlwaysSeen:
        def add(self, prompt_id: str) -> bool:
            return prompt_id == "first"  # every other id "may have been seen"

    lines = [orjson.dumps({"id": i, "prompt": "p"}) + b"\n" for i in ("first", "x", "x")]
    lines.append(b"not json\n")
    planner = Planner(settings(), LedgerState())
    reader = PromptReader(request_defaults(planner.settings), AlwaysSeen(), LedgerState())
    invalid: list[InvalidLine] = []
    jobs = list(planner.jobs(reader, lines, lambda: io.BytesIO(b"".join(lines)), invalid.append))
    assert [(job.prompt.id, job.prompt.line_no) for job in jobs] == [("first", 1), ("x", 2)]
    assert sorted(line.line_no for line in invalid) == [3, 4]
    assert any(line.repeat and line.line_no == 3 for line in invalid)


def test_request_defaults_are_stable_for_resume():
    """The run defaults' bytes (part of every request_hash) stay those of older OUT files."""
    assert request_defaults(settings()) == (
        b'{"body":{"frequency_penalty":0,"presence_penalty":0,"temperature":0.5,"top_p":1},'
        b'"model":"gpt-3.5-turbo","params":{}}'
    )
