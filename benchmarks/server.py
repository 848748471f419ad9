"""A cheap OpenAI-compatible streaming server for benchmarks: raw asyncio, prebuilt bytes.

`python benchmarks/server.py --port 0 --chunks 16` prints its port on stdout, then
answers every `POST` with the same prebuilt SSE stream: K content chunks, a finish chunk
(`finish_reason: "stop"` and `usage`), then `data: [DONE]`, each event in its own HTTP
chunk (chunked transfer encoding, HTTP/1.1 keep-alive). `GET /stats` answers
`{"requests", "connections", "cpu_s"}`; on SIGTERM the same goes to `--stats-file`.

It parses only what it must (end of headers, Content-Length, the body) so that nearly
all the CPU of a benchmark is the client's. With `--latency-ms`/`--spacing-ms` the
pieces of an answer are sent by `loop.call_later` callbacks, never by a sleeping
coroutine per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field

CREATED = 1_700_000_000
HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)
LAST_CHUNK = b"0\r\n\r\n"
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
HEADERS_END = b"\r\n\r\n"
CONTENT_LENGTH = b"\r\ncontent-length:"
MAX_HEAD_BYTES = 65536


SHAPES = ("text", "tool_calls", "reasoning", "json")
JSON_FIELDS = 10  # the json shape: an object of this many string fields, about 1 KB


def json_answer() -> str:
    """The json shape's answer: 10 fields of about 90 characters each."""
    value = {f"field{i}": f"value {i} " + "lorem ipsum dolor sit amet " * 3 for i in range(10)}
    return json.dumps(value, separators=(",", ":"))


def split_text(text: str, pieces: int) -> list[str]:
    """`text` in `pieces` nearly equal parts."""
    size = -(-len(text) // pieces)
    return [text[i : i + size] for i in range(0, len(text), size)]


def deltas(chunks: int, shape: str = "text") -> list[dict[str, object]]:
    """The K deltas of one answer: text; one tool call whose arguments come in K pieces;
    or K/2 reasoning pieces (`reasoning_content`) then K/2 text pieces."""
    if shape == "tool_calls":
        head = {"index": 0, "id": "call_bench", "type": "function",
                "function": {"name": "bench_tool", "arguments": '{"tokens": "'}}  # fmt: skip
        pieces = [{"tool_calls": [{"index": 0, "function": {"arguments": f"tok{i} "}}]}
                  for i in range(1, chunks - 1)]  # fmt: skip
        tail = {"tool_calls": [{"index": 0, "function": {"arguments": '"}'}}]}
        return [{"role": "assistant", "content": None, "tool_calls": [head]}, *pieces, tail]
    if shape == "json":
        return [{"content": piece} for piece in split_text(json_answer(), chunks)]
    if shape == "reasoning":
        half = chunks // 2
        return [{"reasoning_content": f"think{i} "} for i in range(half)] + [
            {"content": f"tok{i} "} for i in range(chunks - half)
        ]
    return [
        {"role": "assistant", "content": "tok0 "} if i == 0 else {"content": f"tok{i} "}
        for i in range(chunks)
    ]


def sse_events(chunks: int, model: str = "bench-model", shape: str = "text") -> list[bytes]:
    """The SSE events of one answer: `chunks` deltas, the finish chunk, `[DONE]`."""

    def event(delta: dict[str, object], finish_reason: str | None, **extra: object) -> bytes:
        payload = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            **extra,
        }
        return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"

    events = [event(delta, None) for delta in deltas(chunks, shape)]
    usage = {"prompt_tokens": 12, "completion_tokens": chunks, "total_tokens": 12 + chunks}
    events.append(event({}, "tool_calls" if shape == "tool_calls" else "stop", usage=usage))
    events.append(b"data: [DONE]\n\n")
    return events


def http_chunk(data: bytes) -> bytes:
    """`data` as one chunk of a chunked body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def answer_pieces(chunks: int, shape: str = "text") -> list[bytes]:
    """What to write, in order: headers with the first event, one event each, the end."""
    pieces = [http_chunk(e) for e in sse_events(chunks, shape=shape)]
    pieces[0] = HEAD + pieces[0]
    pieces[-1] += LAST_CHUNK
    return pieces


def content_length(head: bytes) -> int:
    """The Content-Length of a request head (0 when absent)."""
    lower = head.lower()
    start = lower.find(CONTENT_LENGTH)
    if start < 0:
        return 0
    start += len(CONTENT_LENGTH)
    end = lower.find(b"\r\n", start)
    return int(lower[start:] if end < 0 else lower[start:end])


@dataclass(slots=True)
class ServerState:
    """What every connection shares: the prebuilt answer, the timings, the counters."""

    pieces: list[bytes]
    latency_s: float
    spacing_s: float
    capacity: int = 0  # most answers in progress at once (0: no limit); others queue
    whole: bytes = b""
    active: int = 0  # answers in progress
    queued: deque[BenchProtocol] = field(default_factory=deque)  # waiting for capacity
    requests: int = 0
    connections: int = 0
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.whole = b"".join(self.pieces)

    @property
    def delayed(self) -> bool:
        """True when an answer is spread over time."""
        return self.latency_s > 0 or self.spacing_s > 0

    def stats(self) -> dict[str, float]:
        """Counters and this process's own CPU time."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "requests": self.requests,
            "connections": self.connections,
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 4),
            "uptime_s": round(time.monotonic() - self.started, 3),
        }


class BenchProtocol(asyncio.Protocol):
    """One keep-alive connection: requests are answered in order, one at a time."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy = False  # an answer is being spread over time
        self.step = 0
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.state.connections += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self._serve_ready()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self._finished()
        self.transport = None

    def _serve_ready(self) -> None:
        """Answer every complete request in the buffer (stop while an answer is delayed)."""
        while not self.busy and self.transport is not None:
            end = self.buffer.find(HEADERS_END)
            if end < 0:
                if len(self.buffer) > MAX_HEAD_BYTES:
                    self.transport.close()
                return
            head = bytes(self.buffer[:end])
            total = end + len(HEADERS_END) + content_length(head)
            if len(self.buffer) < total:
                return
            del self.buffer[:total]
            self._answer(head)

    def _answer(self, head: bytes) -> None:
        assert self.transport is not None
        if head.startswith(b"POST "):
            self.state.requests += 1
            if self.state.delayed:
                self.busy = True
                self.step = 0
                state = self.state
                if state.capacity and state.active >= state.capacity:
                    state.queued.append(self)  # served when an answer ends
                else:
                    self._start()
            else:
                self.transport.write(self.state.whole)
        elif head.startswith(b"GET /stats "):
            body = json.dumps(self.state.stats()).encode()
            self.transport.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
            )
            self.transport.close()
        else:
            self.transport.write(NOT_FOUND)

    def _start(self) -> None:
        self.state.active += 1
        self.timer = asyncio.get_running_loop().call_later(self.state.latency_s, self._send_next)

    def _finished(self) -> None:
        """An answer ended: the next queued request may start."""
        state = self.state
        state.active -= 1
        while state.queued:
            waiting = state.queued.popleft()
            if waiting.transport is not None:
                waiting._start()
                return

    def _send_next(self) -> None:
        self.timer = None
        if self.transport is None or self.transport.is_closing():
            return
        pieces = self.state.pieces
        self.transport.write(pieces[self.step])
        self.step += 1
        if self.step < len(pieces):
            loop = asyncio.get_running_loop()
            self.timer = loop.call_later(self.state.spacing_s, self._send_next)
        else:
            self.busy = False
            self._finished()
            self._serve_ready()


async def serve(args: argparse.Namespace) -> None:
    """Listen, print the port, serve until SIGTERM/SIGINT, then write the stats file."""
    loop = asyncio.get_running_loop()
    state = ServerState(
        answer_pieces(args.chunks, args.shape),
        args.latency_ms / 1000,
        args.spacing_ms / 1000,
        capacity=args.capacity,
    )
    server = await loop.create_server(
        lambda: BenchProtocol(state), args.host, args.port, backlog=4096, reuse_address=True
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    server.close()
    if args.stats_file:
        with open(args.stats_file, "w") as handle:  # noqa: ASYNC230 - once, at shutdown
            json.dump(state.stats(), handle)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    parser.add_argument("--chunks", type=int, default=16, help="content chunks per answer (K)")
    parser.add_argument("--shape", choices=SHAPES, default="text", help="what the deltas carry")
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="delay before the first byte of an answer"
    )
    parser.add_argument("--spacing-ms", type=float, default=0.0, help="delay between chunks")
    parser.add_argument(
        "--capacity", type=int, default=0, help="most answers at once, others queue (0: any)"
    )
    parser.add_argument("--stats-file", default=None, help="write the stats here on exit")
    parser.add_argument("--no-uvloop", action="store_true", help="use asyncio's own loop")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the server on uvloop when it is installed."""
    args = parse_args(argv)
    loop_factory = None
    if not args.no_uvloop:
        try:
            import uvloop

            loop_factory = uvloop.new_event_loop
        except ImportError:
            pass
    print(f"bench server: loop={'uvloop' if loop_factory else 'asyncio'}", file=sys.stderr)
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(serve(args))


if __name__ == "__main__":
    main()
