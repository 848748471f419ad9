"""The floor: the streaming batch client an engineer would write in an afternoon.

`python benchmarks/minimal_client.py IN -o OUT --base-url URL -c N [--uvloop]`

One aiohttp session, an `asyncio.Semaphore(concurrency)`, a task per prompt (created
once the semaphore lets it in, so memory stays bounded), `async for line in
resp.content` over the SSE body, one orjson line per result. No retries, no resume.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import IO, Any

import aiohttp
import orjson

HEADERS = {"content-type": "application/json", "accept": "text/event-stream"}


async def complete(
    session: aiohttp.ClientSession,
    url: str,
    model: str,
    line: bytes,
    out: IO[bytes],
    semaphore: asyncio.Semaphore,
) -> None:
    """Send one prompt line, join the streamed deltas, write one result line."""
    item = orjson.loads(line)
    body = {
        "model": model,
        "messages": [{"role": "user", "content": item["prompt"]}],
        "stream": True,
    }
    parts: list[str] = []
    finish_reason = usage = None
    try:
        async with session.post(url, data=orjson.dumps(body), headers=HEADERS) as resp:
            resp.raise_for_status()
            async for raw in resp.content:
                if not raw.startswith(b"data: "):
                    continue
                data = raw[6:].strip()
                if data == b"[DONE]":
                    continue
                chunk = orjson.loads(data)
                usage = chunk.get("usage") or usage
                for choice in chunk.get("choices") or ():
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        parts.append(content)
                    finish_reason = choice.get("finish_reason") or finish_reason
        result: dict[str, Any] = {
            "id": item["id"],
            "status": "ok",
            "content": "".join(parts),
            "finish_reason": finish_reason,
            "usage": usage,
        }
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        result = {"id": item["id"], "status": "error", "error": repr(exc)}
    finally:
        semaphore.release()
    out.write(orjson.dumps(result, option=orjson.OPT_APPEND_NEWLINE))


async def run(lines: IO[bytes], out: IO[bytes], url: str, model: str, concurrency: int) -> None:
    """Every non-blank line of `lines`, at most `concurrency` at a time."""
    semaphore = asyncio.Semaphore(concurrency)
    tasks: set[asyncio.Task[None]] = set()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        for line in lines:
            if not line.strip():
                continue
            await semaphore.acquire()
            task = asyncio.create_task(complete(session, url, model, line, out, semaphore))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)


def main() -> None:
    """Parse the command line and run on asyncio's loop (or uvloop with --uvloop)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input")
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("-m", "--model", default="gpt-3.5-turbo")
    parser.add_argument("-c", "--concurrency", type=int, default=8)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    args = parser.parse_args()
    url = args.base_url.rstrip("/") + "/v1/chat/completions"
    loop_factory = None
    if args.uvloop:
        import uvloop

        loop_factory = uvloop.new_event_loop
    with (
        open(args.input, "rb") as lines,
        open(args.output, "wb") as out,
        asyncio.Runner(loop_factory=loop_factory) as runner,
    ):
        runner.run(run(lines, out, url, args.model, args.concurrency))


if __name__ == "__main__":
    main()
