"""Test support (not a conftest, so it never shadows another ``conftest`` module): hand-built Kineto
traces with known step times, and a local OpenAI-compatible test server."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

STEP_GAP_US = 3000  # > 1 ms: the density method ends a step here


def write_step_trace(
    path: Path,
    kernel_us: Sequence[float],
    kernels_per_step: int = 20,
    gap_us: float = 10,
    gpu: str | None = None,
) -> list[float]:
    """A Kineto trace of len(kernel_us) steps; step i has kernels of kernel_us[i]. Returns step seconds.

    ``gpu``: the device name written in ``deviceProperties`` (as PyTorch's profiler does)."""
    events = []
    ts = 1000.0
    correlation = 1
    steps = []
    for duration in kernel_us:
        start = ts
        for _ in range(kernels_per_step):
            events.append(
                {
                    "ph": "X",
                    "cat": "kernel",
                    "name": "ampere_sgemm_128x64_nn",
                    "pid": 0,
                    "tid": 7,
                    "ts": ts,
                    "dur": duration,
                    "args": {"device": 0, "stream": 7, "correlation": correlation},
                }
            )
            correlation += 1
            ts += duration + gap_us
        end = ts - gap_us
        steps.append((end - start) / 1e6)
        ts = end + STEP_GAP_US
    header: dict[str, Any] = {"schemaVersion": 1}
    if gpu is not None:
        header["deviceProperties"] = [{"id": 0, "name": gpu}]
    path.write_text(json.dumps({**header, "traceEvents": events}))
    return steps


class FakeOpenAI(BaseHTTPRequestHandler):
    """A /chat/completions endpoint on loopback; ``reply(body)`` makes the assistant's text."""

    requests: ClassVar[list[dict[str, Any]]] = []
    reply: ClassVar[Callable[[dict[str, Any]], str]] = staticmethod(lambda _body: "")

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(
            {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
        )
        content = type(self).reply(body)
        payload = {"model": "fake-1", "choices": [{"message": {"role": "assistant", "content": content}}]}
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        return


@contextmanager
def fake_openai_server() -> Iterator[str]:
    """Base URL (``.../v1``) of a FakeOpenAI server running in a thread while the block runs."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
