"""The batch layer: one `netfly-batch run`, from INPUT to OUT.

`run` (`BatchRun`: the lifecycle: signals, deadline, fsync, the pool), `inputs` and
`linesource` (INPUT: opened, counted, reread, piped), `prompts` (lines -> prompts),
`ledger` (OUT: lock, resume state, appends, compaction), `plan` (prompt -> job), `pool`
(jobs -> results, bounded), `shard`, `bloom`, `progress`, `outcome` (counters, summary),
`run_settings`. Imports the HTTP and wire layers and the core.
"""
