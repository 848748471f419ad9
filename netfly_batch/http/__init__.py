"""The HTTP layer: endpoints, the aiohttp client, time limits, retries, flow control.

`endpoints` (the `Endpoint` value and its presets), `client` (`ChatClient`), `response`
(one response read into an answer, or into an error), `deadlines` (one clock per client),
`retry` (what to retry, how long to wait), `flow` (rate limits, adaptive concurrency,
the breaker). Imports the wire layer and the core, never a layer above.
"""
