#!/usr/bin/env python3
"""What the wall-time attribution costs next to the rest of ``analyze``, on exports of 10k..1M kernels.

Why: the attribution (docs/methodology.md §3.2) runs on every ``analyze``; it must stay a small
fraction of the profile it is part of, including on NVTX-dense exports (millions of ranges that
the host breakdown intersects with the idle time). The export is built as in
``bench_nsys_scale.py`` (the real 2x H100 export replicated in SQL). In one process, after one
load, it times ``build_global_profile`` (which includes the attribution) and the attribution's
own share of it (``trace_attribution`` given the windows and phase labels analyze already has),
and prints both and their ratio. The attribution's figures themselves are checked against plain
SQL in ``tests/analyses/test_attribution.py``.

Not part of the test suite: ``python bench/bench_attribution.py --kernels 100000 1000000 [--with-nvtx]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_nsys_scale import DEFAULT_SOURCE, build_scaled_export

from infersight import api
from infersight.analyses.attribution import trace_attribution
from infersight.analyses.phases import label_trace
from infersight.analyses.profile import build_global_profile
from infersight.analyses.window import analysis_windows


def timed(function, repeats: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    """Median wall time of ``repeats`` calls and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kernels", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--with-nvtx", action="store_true", help="replicate NVTX_EVENTS too")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"{'kernels':>10} {'profile s':>10} {'attribution s':>14} {'ratio':>7}  primary")
    with tempfile.TemporaryDirectory() as tmp:
        for target in args.kernels:
            db = Path(tmp) / f"scaled_{target}.sqlite"
            count = build_scaled_export(DEFAULT_SOURCE, db, target, args.with_nvtx)
            (trace,) = api.load([db])
            profile_s, profile = timed(lambda t=trace: build_global_profile([t]), args.repeats)
            windows = analysis_windows(trace)
            labels = label_trace(trace, windows)  # analyze labels once and shares it
            attribution_s, _ = timed(
                lambda t=trace, w=windows, lab=labels: trace_attribution(t, windows=w, labelled=lab),
                args.repeats,
            )
            verdict = profile.primary_bottleneck  # type: ignore[attr-defined]
            print(
                f"{count:>10,} {profile_s:>10.2f} {attribution_s:>14.2f} {attribution_s / profile_s:>7.2f}  "
                f"{verdict.bucket if verdict else '-'} {verdict.share if verdict else 0:.3f}"
            )
            db.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
