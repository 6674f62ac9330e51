#!/usr/bin/env python3
"""JSON parsers on one chunk of a Kineto trace, as the streaming reader parses it (``bench/README.md``).

Why: the reader parses every chunk (16 MiB of slimmed event text, one JSON array) and then pulls
a dozen fields out of every event. This times, on the same chunk, in one process, interleaved:
orjson (to dicts, what the reader uses), the standard library's json, msgspec (generic decode,
and decode into a typed Struct that names only the fields read, so the rest is skipped), and
pysimdjson (lazy parse; every event's fields read through its proxy objects). Parsers that are
not installed are skipped. Every parser's result is checked against orjson's on the fields read.

Usage: ``python bench/bench_json_parsers.py [--trace FILE] [--repeats 5]`` (default: the first
16 MiB chunk of the A100 trace of the shared data, built as the reader builds it).
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from infersight.ingest import kineto_stream, kineto_text

DEFAULT_TRACE = Path("/work/shared/data/kineto/hta_trace_diff_control_a100_rank3.json.gz")
FIELDS = ("ph", "cat", "name", "pid", "tid", "ts", "dur")


def chunk(trace: Path) -> bytes:
    """The first chunk of the trace's events, slimmed, as one JSON array (as the reader parses it)."""
    text = gzip.decompress(trace.read_bytes())[: kineto_stream.CHUNK_BYTES]
    layout = kineto_text.detect_layout(text)
    assert layout is not None
    start, cut = text.find(layout.event_start), text.rfind(layout.event_start)
    body = kineto_stream.chunk_text(text[start:cut], layout)
    assert body is not None
    return bytes(body)


def parsers() -> dict[str, Callable[[bytes], list[tuple[Any, ...]]]]:
    """Each parser, returning the fields the reader reads, per event."""
    import orjson

    def rows(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [tuple(e.get(f) for f in FIELDS) for e in events]

    found: dict[str, Callable[[bytes], list[tuple[Any, ...]]]] = {
        "orjson -> dicts": lambda b: rows(orjson.loads(b)),
        "json (stdlib) -> dicts": lambda b: rows(json.loads(b)),
    }
    try:
        import msgspec

        number = float | int | None
        ident = int | str | None
        text_or_none = str | None
        event = msgspec.defstruct(
            "Event",
            [
                ("ph", text_or_none, None),
                ("cat", text_or_none, None),
                ("name", text_or_none, None),
                ("pid", ident, None),
                ("tid", ident, None),
                ("ts", number, None),
                ("dur", number, None),
                ("args", msgspec.Raw, msgspec.Raw()),
            ],
        )
        typed = msgspec.json.Decoder(list[event])  # type: ignore[valid-type]
        generic = msgspec.json.Decoder()
        found["msgspec -> dicts"] = lambda b: rows(generic.decode(b))
        found["msgspec -> typed Struct (args raw)"] = lambda b: [
            (e.ph, e.cat, e.name, e.pid, e.tid, e.ts, e.dur) for e in typed.decode(b)
        ]
    except ImportError:
        pass
    try:
        import simdjson

        parser = simdjson.Parser()

        def simd(b: bytes) -> list[tuple[Any, ...]]:
            return [tuple(e.get(f) for f in FIELDS) for e in parser.parse(b)]

        found["pysimdjson (lazy proxies)"] = simd
    except ImportError:
        pass
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trace", type=Path, default=DEFAULT_TRACE)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    text = chunk(args.trace)
    candidates = parsers()
    expected = candidates["orjson -> dicts"](text)
    print(f"chunk: {len(text) / 2**20:.1f} MiB, {len(expected):,} events")
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(args.repeats):
        for name, parse in candidates.items():
            started = time.perf_counter()
            got = parse(text)
            times[name].append(time.perf_counter() - started)
            assert got == expected, name
    base = statistics.median(times["orjson -> dicts"])
    for name, runs in times.items():
        median = statistics.median(runs)
        print(f"  {name:<36} {median * 1000:8.1f} ms  ({median / base:.2f}x orjson)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
