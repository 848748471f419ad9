"""The batch layer: one `netfly-batch run`, from INPUT to OUT.

`run` (`BatchRun`: the lifecycle: signals, deadline, fsync, the pool), `inputs`,
`compressed` and `linesource` (INPUT: opened, decompressed, counted, reread, piped),
`prompts` and `templates` (lines -> prompts), `ledger` (OUT: lock, resume state,
appends, compaction), `plan` (prompt -> job), `pool` (jobs -> results, bounded),
`dry_run` (plan and count, send nothing), `shard`, `bloom`, `progress`, `outcome`
(counters, summary), `run_settings`. Imports the HTTP and wire layers and the core.
"""
