"""Sharding one batch across N workers: which shard an id belongs to, and which shard am I.

Pure: the environment comes in as a mapping. An id's shard is a stable hash of the id
(not its line number), so appending lines to INPUT never moves an id to another shard.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

SHARD_PLACEHOLDER = "{shard}"


class ShardError(ValueError):
    """A --shard value or scheduler environment that cannot name a shard."""


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard `index` of `count` (0 <= index < count)."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}-of-{self.count}"

    def owns(self, prompt_id: str) -> bool:
        """True when `prompt_id` is this shard's to send."""
        return shard_of(prompt_id, self.count) == self.index

    def output_path(self, template: str) -> str:
        """OUT with `{shard}` replaced by `I-of-N`; a template without it is refused."""
        if SHARD_PLACEHOLDER not in template:
            raise ShardError(
                f"with --shard, OUT must contain {SHARD_PLACEHOLDER} (e.g. out.{{shard}}.jsonl)"
                ", or every shard would fight over one file"
            )
        return template.replace(SHARD_PLACEHOLDER, str(self))


def shard_of(prompt_id: str, count: int) -> int:
    """The shard of an id: blake2b of its UTF-8 bytes, modulo `count`."""
    digest = hashlib.blake2b(prompt_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


def parse_shard(text: str, env: Mapping[str, str], shard_count: int | None = None) -> Shard:
    """`I/N`, or `auto` to read Slurm's or Kubernetes' variables from `env`."""
    if text.strip().lower() == "auto":
        return shard_from_environment(env, shard_count)
    index_text, slash, count_text = text.partition("/")
    if not slash:
        raise ShardError(f"--shard {text!r}: expected I/N (e.g. 0/4) or auto")
    try:
        index, count = int(index_text), int(count_text)
    except ValueError:
        raise ShardError(f"--shard {text!r}: I and N must be whole numbers") from None
    return _checked(index, count, f"--shard {text}")


def shard_from_environment(env: Mapping[str, str], shard_count: int | None = None) -> Shard:
    """Slurm job arrays first, then Kubernetes indexed Jobs."""
    if "SLURM_ARRAY_TASK_ID" in env:
        task = _whole(env, "SLURM_ARRAY_TASK_ID")
        first = _whole(env, "SLURM_ARRAY_TASK_MIN") if "SLURM_ARRAY_TASK_MIN" in env else 0
        if "SLURM_ARRAY_TASK_COUNT" in env:
            count = _whole(env, "SLURM_ARRAY_TASK_COUNT")
        elif "SLURM_ARRAY_TASK_MAX" in env:
            count = _whole(env, "SLURM_ARRAY_TASK_MAX") - first + 1
        else:
            raise ShardError("SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not")
        return _checked(task - first, count, "the Slurm array (use a contiguous --array=0-N)")
    if "JOB_COMPLETION_INDEX" in env:
        index = _whole(env, "JOB_COMPLETION_INDEX")
        if shard_count is None:
            raise ShardError(
                "JOB_COMPLETION_INDEX is set: give the number of shards with "
                "--shard-count or NETFLY_SHARD_COUNT (the Job's completions)"
            )
        return _checked(index, shard_count, "the Kubernetes indexed Job")
    raise ShardError(
        "--shard auto needs a Slurm job array (SLURM_ARRAY_TASK_ID) or a "
        "Kubernetes indexed Job (JOB_COMPLETION_INDEX) in the environment"
    )


def _whole(env: Mapping[str, str], name: str) -> int:
    try:
        return int(env[name])
    except ValueError:
        raise ShardError(f"{name}={env[name]!r} is not a whole number") from None


def _checked(index: int, count: int, source: str) -> Shard:
    if count < 1:
        raise ShardError(f"{source}: the number of shards must be at least 1, not {count}")
    if not 0 <= index < count:
        raise ShardError(f"{source}: shard {index} is outside 0..{count - 1}")
    return Shard(index, count)
