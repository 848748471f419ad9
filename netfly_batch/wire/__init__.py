"""The wire layer: the chat-completion protocol as pure code (no I/O, no aiohttp).

`sse` frames server-sent events, `chunks` parses one chunk and classifies in-band
errors, `assemble` adds chunks up to the answer, `answer` is that answer (`Completion`,
every choice) and its acceptance, `validation` (with `schema_fast`) checks answers
against the JSON, schema or tools asked for. Imports only the core.
"""
