"""The wire layer: the chat-completion protocol as pure code (no I/O, no aiohttp).

`sse` frames server-sent events, `chunks` parses one chunk and classifies in-band
errors, `answer` adds chunks up to a `Completion` and says when an answer is acceptable.
Imports only the core (`errors`, `settings`).
"""
