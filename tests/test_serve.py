"""`netfly-batch serve`: the simulator as a standalone server process."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.request


def test_serve_prints_its_url_answers_and_summarises_on_sigterm() -> None:
    """serve listens on loopback, answers a chat request, and prints a summary when stopped."""
    process = subprocess.Popen(
        [sys.executable, "-m", "netfly_batch", "serve", "--port", "0", "--rate-500", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        url = match.group(1)
        request = urllib.request.Request(
            url + "/v1/chat/completions",
            data=json.dumps(
                {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
            ).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            reply = json.load(response)
        assert reply["choices"][0]["message"]["content"] == "Echo: hi"
        with urllib.request.urlopen(url + "/v1/models", timeout=10) as response:
            assert "gpt-4" in {m["id"] for m in json.load(response)["data"]}
        process.send_signal(signal.SIGTERM)
        rest = process.stderr.read()
        assert process.wait(10) == 0
        assert "served 1" in rest, rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
