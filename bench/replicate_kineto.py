#!/usr/bin/env python3
"""Write a big Kineto trace: N time-shifted copies of a real one, for the streaming-ingest benches.

Why: the shared data holds real traces of up to ~35 MB of JSON; the bounded-memory reader must be
measured on 10^6-10^7 events. Each copy ``k`` of every event is shifted in time by ``k`` times
(the source's span + 1 ms) and its ids (``args.correlation``, ``args["External id"]``, flow
``id``) by ``k`` times the source's largest id + 1, so kernels keep their launch calls and the
copies never overlap. The header (``deviceProperties``, ``distributedInfo``, ...) is written once.
Output: gzip (level 1) of ``json.dump``'s layout (``, `` and ``: `` separators), the layout a trace
re-saved from Python has. Only the source is read; the output goes where ``--out`` says.

Usage: ``python bench/replicate_kineto.py --copies 20 --out /tmp/x20.json.gz [--trace FILE]``
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path
from typing import Any

DEFAULT_TRACE = Path("/work/shared/data/kineto/hta_trace_diff_control_a100_rank3.json.gz")
ID_ARGS = ("correlation", "External id")


def _span_us(events: list[dict[str, Any]]) -> float:
    """Last end minus first start of the timed events, in µs."""
    starts = [e["ts"] for e in events if isinstance(e.get("ts"), int | float)]
    ends = [e["ts"] + e.get("dur", 0) for e in events if isinstance(e.get("ts"), int | float)]
    return float(max(ends) - min(starts))


def _max_id(events: list[dict[str, Any]]) -> int:
    """The largest correlation / external / flow id of the source."""
    ids = [0]
    for event in events:
        args = event.get("args")
        if isinstance(args, dict):
            ids.extend(v for k in ID_ARGS if type(v := args.get(k)) is int)
        if type(event.get("id")) is int:
            ids.append(event["id"])
    return max(ids)


def _shifted(event: dict[str, Any], dt: float, did: int) -> dict[str, Any]:
    """One event of copy k: ``ts`` + dt, ids + did (metadata events unchanged)."""
    if event.get("ph") == "M":
        return event
    out = dict(event)
    if isinstance(out.get("ts"), int | float):
        out["ts"] = round(out["ts"] + dt, 3)
    if type(out.get("id")) is int:
        out["id"] = out["id"] + did
    args = out.get("args")
    if isinstance(args, dict) and any(type(args.get(k)) is int for k in ID_ARGS):
        out["args"] = {k: (v + did if k in ID_ARGS and type(v) is int else v) for k, v in args.items()}
    return out


def replicate(trace: Path, copies: int, out: Path) -> int:
    """Write ``copies`` shifted copies of ``trace`` to ``out`` (gzip); returns the event count."""
    with gzip.open(trace, "rb") as fh:
        document = json.load(fh)
    events = document.pop("traceEvents")
    dt, did = _span_us(events) + 1000.0, _max_id(events) + 1
    header = json.dumps(document)[:-1]
    count = 0
    with gzip.open(out, "wt", compresslevel=1) as fh:
        fh.write(header + (", " if document else "") + '"traceEvents": [')
        for k in range(copies):
            copy = events if k == 0 else [_shifted(e, k * dt, k * did) for e in events if e.get("ph") != "M"]
            fh.write((", " if k else "") + json.dumps(copy)[1:-1])
            count += len(copy)
        fh.write("]}")
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trace", type=Path, default=DEFAULT_TRACE)
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    count = replicate(args.trace, args.copies, args.out)
    print(f"{args.out}: {count:,} events, {args.out.stat().st_size / 2**20:.1f} MiB gzip")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
