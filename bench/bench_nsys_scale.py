#!/usr/bin/env python3
"""How ``infersight analyze`` scales on Nsight Systems exports of 10k .. 10M kernels, checked by SQL.

Why: a real serving profile of a few minutes holds millions of kernels. The targets, on a 2-core
machine (GB = 10**9 bytes; time is the median of the repeats, memory the worst run's peak):
1M kernels in <= 10 s and <= 1 GB; 10M kernels in <= 8 GB; with NVTX (``--with-nvtx``, ~4.8
ranges per kernel) <= 1.5x the SQL time, and with every range named apart
(``--unique-nvtx-names``) <= 2x the SQL time in <= 1.5 GB. No real export that large is
available, so this builds one from a real one: the rows of
``h100x2_llm_train_nsys2026.sqlite`` (2x H100, 4,010 kernels) are replicated N times inside a
temporary copy of the database, each copy shifted in time by the source's span (plus 1 ms) and in
``correlationId`` by the source's id span -- for the kernels *and* the runtime/memcpy/memset/sync
rows that share those ids, so kernel <-> launch correlation stays exact. Everything is done in
SQL (``INSERT ... SELECT`` over a recursive copy counter), so building 1M kernels takes seconds.

For each size it runs ``python -m infersight analyze DB --json OUT`` in a subprocess (wall time,
peak RSS from ``os.wait4``, started by the fresh launcher of ``peak_rss.py``) and, side by side,
computes the same core metrics with plain SQL in ``sqlite3``: kernel count and total kernel time
per device, per-device busy time (union of kernel intervals, by a gaps-and-islands window
query), the device window (first kernel start -> last kernel end) and launch-API time (launch
calls whose kernels ran on the device, clipped to the window). It prints both figures, both
times, the ratio, and whether they agree.

The original database is only ever read (it is copied first). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from peak_rss import run_measured

DEFAULT_SOURCE = Path("/work/shared/data/nsys/h100x2_llm_train_nsys2026.sqlite")
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
GAP_BETWEEN_COPIES_NS = 1_000_000
KERNEL_TABLE = "CUPTI_ACTIVITY_KIND_KERNEL"
RUNTIME_TABLE = "CUPTI_ACTIVITY_KIND_RUNTIME"
# CUPTI tables whose rows carry start/end and (mostly) correlationId: replicated together so every
# kernel keeps its launch call and every copy/memset/sync keeps its API row.
REPLICATED_TABLES = (
    KERNEL_TABLE,
    RUNTIME_TABLE,
    "CUPTI_ACTIVITY_KIND_MEMCPY",
    "CUPTI_ACTIVITY_KIND_MEMSET",
    "CUPTI_ACTIVITY_KIND_SYNCHRONIZATION",
    "CUPTI_ACTIVITY_KIND_CUDA_EVENT",
    "CUPTI_ACTIVITY_KIND_OVERHEAD",
)
NVTX_TABLE = "NVTX_EVENTS"
# Kernel-launch API stems (SPEC section 3 eta_launch, plus the driver/cooperative variants that
# real exports use); nsys names carry version suffixes (cudaLaunchKernel_v7000), matched by GLOB.
LAUNCH_API_STEMS = (
    "cudaLaunchKernel",
    "cudaLaunchKernelExC",
    "cuLaunchKernel",
    "cuLaunchKernelEx",
    "cudaGraphLaunch",
    "cuGraphLaunch",
    "cudaLaunchCooperativeKernel",
)
TARGET_1M_SECONDS = 10.0
TARGET_1M_RSS_BYTES = 10**9
TARGET_10M_RSS_BYTES = 8 * 10**9
TARGET_NVTX_RATIO = 1.5
TARGET_UNIQUE_NAMES_RATIO = 2.0
TARGET_UNIQUE_NAMES_RSS_BYTES = 15 * 10**8


@dataclass
class DeviceFigures:
    """Core metrics of one device, from either implementation."""

    kernel_count: int
    kernel_time_ns: int
    busy_ns: int
    wall_ns: int
    launch_api_ns: int | None


@dataclass
class RunResult:
    """One measured run: per-device figures, wall seconds, peak RSS bytes (None when unknown)."""

    devices: dict[int, DeviceFigures]
    seconds: float
    peak_rss_bytes: int | None


# ---------------------------------------------------------------- building the scaled export


def table_columns(conn: sqlite3.Connection, table: str) -> list[str]:
    """Column names of a table ([] when the table does not exist: nsys creates tables lazily)."""
    return [row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')]


def time_and_id_spans(conn: sqlite3.Connection, tables: list[str]) -> tuple[int, int]:
    """(time shift per copy, correlationId shift per copy) covering every replicated table."""
    starts: list[int] = []
    ends: list[int] = []
    ids_min: list[int] = []
    ids_max: list[int] = []
    for table in tables:
        cols = table_columns(conn, table)
        if "start" in cols:
            lo, hi = conn.execute(f'SELECT MIN(start), MAX(COALESCE("end", start)) FROM "{table}"').fetchone()
            if lo is not None:
                starts.append(int(lo))
                ends.append(int(hi))
        if "correlationId" in cols:
            cmin, cmax = conn.execute(
                f'SELECT MIN(correlationId), MAX(correlationId) FROM "{table}"'
            ).fetchone()
            if cmin is not None:
                ids_min.append(int(cmin))
                ids_max.append(int(cmax))
    time_shift = max(ends) - min(starts) + GAP_BETWEEN_COPIES_NS
    id_shift = max(ids_max) - min(ids_min) + 1 if ids_min else 0
    return time_shift, id_shift


def replicate_table(
    conn: sqlite3.Connection,
    table: str,
    copies: int,
    time_shift: int,
    id_shift: int,
    text_id_shift: int | None = None,
) -> None:
    """Append ``copies - 1`` shifted copies of every row of ``table`` in one INSERT ... SELECT.

    ``text_id_shift`` (NVTX only): texts ending in ``op_id = N`` get ``N + copy * shift``, so every
    range of every copy has its own name, as ``torch.autograd.profiler.emit_nvtx`` writes them.
    """
    cols = table_columns(conn, table)
    shifted = {}
    if text_id_shift is not None and "text" in cols:
        marker = "op_id = "
        at = f"instr(o.\"text\", '{marker}')"
        shifted["text"] = (
            f'CASE WHEN {at} > 0 THEN substr(o."text", 1, {at} + {len(marker) - 1}) || '
            f'(CAST(substr(o."text", {at} + {len(marker)}) AS INTEGER) + c.i * {text_id_shift}) '
            f'ELSE o."text" END'
        )
    if "start" in cols:
        shifted["start"] = f"start + c.i * {time_shift}"
    if "end" in cols:
        shifted["end"] = f'"end" + c.i * {time_shift}'
    if "correlationId" in cols:
        shifted["correlationId"] = f"correlationId + c.i * {id_shift}"
    select = ", ".join(shifted.get(col, f'o."{col}"') for col in cols)
    col_list = ", ".join(f'"{col}"' for col in cols)
    conn.execute(f'CREATE TEMP TABLE orig AS SELECT * FROM "{table}"')
    conn.execute(
        f'INSERT INTO "{table}" ({col_list}) '
        f"WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {copies - 1}) "
        f"SELECT {select} FROM c CROSS JOIN orig AS o ORDER BY c.i"
    )
    conn.execute("DROP TABLE temp.orig")


def build_scaled_export(
    source: Path, destination: Path, target_kernels: int, with_nvtx: bool, unique_names: bool = False
) -> int:
    """Copy the source export and replicate its rows until it holds >= target kernels; returns the count.

    ``unique_names`` (with ``with_nvtx``): every NVTX copy gets its own ``op_id`` numbers.
    """
    shutil.copyfile(source, destination)
    conn = sqlite3.connect(destination)
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        base = conn.execute(f"SELECT COUNT(*) FROM {KERNEL_TABLE}").fetchone()[0]
        copies = max(1, math.ceil(target_kernels / base))
        tables = [t for t in REPLICATED_TABLES if table_columns(conn, t)]
        if with_nvtx and table_columns(conn, NVTX_TABLE):
            tables.append(NVTX_TABLE)
        time_shift, id_shift = time_and_id_spans(conn, tables)
        if copies > 1:
            text_shift = op_id_span(conn) if unique_names and NVTX_TABLE in tables else None
            for table in tables:
                replicate_table(
                    conn, table, copies, time_shift, id_shift, text_shift if table == NVTX_TABLE else None
                )
        conn.commit()
        return int(conn.execute(f"SELECT COUNT(*) FROM {KERNEL_TABLE}").fetchone()[0])
    finally:
        conn.close()


def op_id_span(conn: sqlite3.Connection) -> int:
    """1 + the largest ``op_id = N`` in the NVTX texts (the shift that keeps copies' names apart)."""
    row = conn.execute(
        f'SELECT MAX(CAST(substr("text", instr("text", \'op_id = \') + 8) AS INTEGER)) '
        f"FROM {NVTX_TABLE} WHERE instr(\"text\", 'op_id = ') > 0"
    ).fetchone()
    return int(row[0] or 0) + 1


# ---------------------------------------------------------------- the independent SQL figures

BUSY_SQL = f"""
WITH ordered AS (
  SELECT deviceId AS dev, start AS s, "end" AS e,
         MAX("end") OVER (PARTITION BY deviceId ORDER BY start, "end"
                          ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach
  FROM {KERNEL_TABLE}
),
islands AS (
  SELECT dev, s, e,
         SUM(CASE WHEN reach IS NULL OR s > reach THEN 1 ELSE 0 END)
           OVER (PARTITION BY dev ORDER BY s, e ROWS UNBOUNDED PRECEDING) AS island
  FROM ordered
)
SELECT dev, SUM(hi - lo)
FROM (SELECT dev, island, MIN(s) AS lo, MAX(e) AS hi FROM islands GROUP BY dev, island)
GROUP BY dev
"""

PER_DEVICE_SQL = f"""
SELECT deviceId, COUNT(*), SUM("end" - start), MIN(start), MAX("end") FROM {KERNEL_TABLE} GROUP BY deviceId
"""


def launch_name_filter() -> str:
    """WHERE clause over StringIds.value selecting the launch APIs, suffix-tolerant."""
    parts = [f"value = '{stem}' OR value GLOB '{stem}_v[0-9]*'" for stem in LAUNCH_API_STEMS]
    return " OR ".join(parts)


def launch_sql() -> str:
    """Launch-call time per device: calls whose (process, correlation) kernels ran there, clipped."""
    return f"""
WITH launch_names AS (SELECT id FROM StringIds WHERE {launch_name_filter()}),
windows AS (SELECT deviceId AS dev, MIN(start) AS ws, MAX("end") AS we FROM {KERNEL_TABLE} GROUP BY deviceId),
launch_dev AS (
  SELECT DISTINCT r.rowid AS rid, r.start AS s, r."end" AS e, k.deviceId AS dev
  FROM {RUNTIME_TABLE} AS r
  JOIN {KERNEL_TABLE} AS k
    ON k.correlationId = r.correlationId AND k.globalPid = (r.globalTid & ~16777215)
  WHERE r.nameId IN (SELECT id FROM launch_names)
)
SELECT l.dev, SUM(MAX(0, MIN(l.e, w.we) - MAX(l.s, w.ws)))
FROM launch_dev AS l JOIN windows AS w ON w.dev = l.dev
GROUP BY l.dev
"""


def sql_figures(db: Path) -> RunResult:
    """The core metrics per device by plain SQL, timed (independent of infersight's code)."""
    started = time.perf_counter()
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        per_device = {row[0]: row[1:] for row in conn.execute(PER_DEVICE_SQL)}
        busy = dict(conn.execute(BUSY_SQL).fetchall())
        launch = dict(conn.execute(launch_sql()).fetchall())
    finally:
        conn.close()
    devices = {
        int(dev): DeviceFigures(
            kernel_count=int(count),
            kernel_time_ns=int(total),
            busy_ns=int(busy[dev]),
            wall_ns=int(last - first),
            launch_api_ns=int(launch[dev]) if dev in launch else None,
        )
        for dev, (count, total, first, last) in per_device.items()
    }
    return RunResult(devices=devices, seconds=time.perf_counter() - started, peak_rss_bytes=None)


# ---------------------------------------------------------------- infersight in a subprocess


def infersight_figures(db: Path, json_out: Path) -> RunResult:
    """``infersight analyze DB --json OUT`` in a subprocess; figures read back from its JSON report."""
    command = [sys.executable, "-m", "infersight", "analyze", str(db), "--json", str(json_out)]
    measured = run_measured(command, sample_tree=False)  # one process: wait4's peak is the figure
    report = json.loads(json_out.read_text())
    devices = {
        int(d["device"]): DeviceFigures(
            kernel_count=int(d["kernel_count"]),
            kernel_time_ns=int(d["kernel_time_ns"]),
            busy_ns=int(d["busy_ns"]),
            wall_ns=int(d["wall_ns"]),
            launch_api_ns=d.get("launch_api_ns"),
        )
        for d in report["profile"]["devices"]
    }
    return RunResult(devices=devices, seconds=measured.seconds, peak_rss_bytes=measured.peak_rss_bytes)


# ---------------------------------------------------------------- reporting


def target_lines(
    kernels: int, args: argparse.Namespace, seconds: float, sql_seconds: float, worst_rss: int
) -> list[str]:
    """The targets that apply to this size and NVTX case, each with its figure and met/MISSED.

    Time is the median of the repeats; memory the worst run's peak (GB = 10**9 bytes).
    """
    lines: list[str] = []

    def check(label: str, figure: str, met: bool) -> None:
        lines.append(f"{label}: {figure}: {'met' if met else 'MISSED'}")

    ratio = seconds / sql_seconds
    mib = worst_rss / 2**20
    near_1m = 900_000 <= kernels <= 1_100_000
    if not args.with_nvtx and near_1m:
        check("1M kernels <= 10 s", f"{seconds:.2f} s", seconds <= TARGET_1M_SECONDS)
        check(
            "1M kernels <= 1 GB",
            f"{mib:.0f} MiB = {worst_rss / 1e9:.2f} GB",
            worst_rss <= TARGET_1M_RSS_BYTES,
        )
    if not args.with_nvtx and kernels >= 9_000_000:
        check("10M kernels <= 8 GB", f"{worst_rss / 1e9:.2f} GB", worst_rss <= TARGET_10M_RSS_BYTES)
    if args.with_nvtx and args.unique_nvtx_names:
        check("unique NVTX names <= 2x SQL", f"{ratio:.2f}x", ratio <= TARGET_UNIQUE_NAMES_RATIO)
        if near_1m:
            check(
                "unique NVTX names <= 1.5 GB",
                f"{mib:.0f} MiB = {worst_rss / 1e9:.2f} GB",
                worst_rss <= TARGET_UNIQUE_NAMES_RSS_BYTES,
            )
    elif args.with_nvtx:
        check("NVTX-dense <= 1.5x SQL", f"{ratio:.2f}x", ratio <= TARGET_NVTX_RATIO)
    return lines


def compare(ours: RunResult, sql: RunResult) -> list[str]:
    """Lines of 'metric device: infersight vs SQL  agree?' for every device."""
    lines = []
    for dev in sorted(set(ours.devices) | set(sql.devices)):
        a, b = ours.devices.get(dev), sql.devices.get(dev)
        if a is None or b is None:
            lines.append(f"  device {dev}: only in {'SQL' if a is None else 'infersight'}  DISAGREE")
            continue
        for field in ("kernel_count", "kernel_time_ns", "busy_ns", "wall_ns", "launch_api_ns"):
            va, vb = getattr(a, field), getattr(b, field)
            verdict = "agree" if va == vb else "DISAGREE"
            lines.append(f"  device {dev} {field:<15} infersight {fmt(va):>16}  sql {fmt(vb):>16}  {verdict}")
        idle_a = 1 - a.busy_ns / a.wall_ns if a.wall_ns else float("nan")
        idle_b = 1 - b.busy_ns / b.wall_ns if b.wall_ns else float("nan")
        lines.append(f"  device {dev} idle_ratio      infersight {idle_a:>16.4f}  sql {idle_b:>16.4f}")
    return lines


def fmt(value: int | None) -> str:
    """Thousands-separated integer, or 'n/a'."""
    return "n/a" if value is None else f"{value:,}"


def all_agree(ours: RunResult, sql: RunResult) -> bool:
    """True when every device's figures are identical in both implementations."""
    return ours.devices == sql.devices


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--source", type=Path, default=DEFAULT_SOURCE, help="real nsys SQLite export to replicate"
    )
    parser.add_argument(
        "--sizes",
        type=lambda s: [int(x) for x in s.split(",")],
        default=list(DEFAULT_SIZES),
        help="comma-separated target kernel counts (default 10000,100000,1000000)",
    )
    parser.add_argument(
        "--with-10m", action="store_true", help="also run 10,000,000 kernels (slow, ~GBs of disk)"
    )
    parser.add_argument("--with-nvtx", action="store_true", help="replicate NVTX_EVENTS too (4.8x more rows)")
    parser.add_argument(
        "--unique-nvtx-names",
        action="store_true",
        help="with --with-nvtx: give every replicated range its own op_id (emit_nvtx-style unique names)",
    )
    parser.add_argument("--repeats", type=int, default=1, help="runs per size; medians are printed")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the scaled exports in --tmp (for profiling); default deletes each after measuring",
    )
    parser.add_argument(
        "--tmp", type=Path, default=None, help="directory for the scaled exports (default: a temp dir)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Build each size, measure both implementations, print the table; exit 1 on disagreement.

    With ``--repeats N`` both implementations run N times per size and the medians are printed
    (the machine is shared: single timings are noisy); peak RSS is the median too.
    """
    args = parse_args(argv)
    sizes = [*args.sizes, *([10_000_000] if args.with_10m else [])]
    ok = True
    with tempfile.TemporaryDirectory(dir=args.tmp, prefix="infersight-nsys-scale-") as tmp:
        print(
            f"source: {args.source}  (NVTX replicated: {args.with_nvtx}, unique names: "
            f"{args.unique_nvtx_names}); machine: {os.cpu_count()} cores; repeats: {args.repeats}"
        )
        header = (
            f"{'kernels':>11} {'build s':>8} {'infersight s':>13} {'peak RSS MiB':>13} "
            f"{'SQL s':>7} {'ratio':>6}  agree"
        )
        rows = []
        for target in sizes:
            db = Path(tmp) / f"scaled_{target}.sqlite"
            started = time.perf_counter()
            kernels = build_scaled_export(args.source, db, target, args.with_nvtx, args.unique_nvtx_names)
            build_s = time.perf_counter() - started
            runs = []
            for _ in range(args.repeats):
                ours = infersight_figures(db, Path(tmp) / f"report_{target}.json")
                sql = sql_figures(db)
                runs.append((ours, sql))
                ok &= all_agree(ours, sql)
            ours, sql = runs[-1]
            agree = all(all_agree(a, b) for a, b in runs)
            seconds = statistics.median(a.seconds for a, _ in runs)
            sql_seconds = statistics.median(b.seconds for _, b in runs)
            rss = statistics.median(a.peak_rss_bytes or 0 for a, _ in runs)
            rss_mib = rss / 2**20
            worst_rss = max(a.peak_rss_bytes or 0 for a, _ in runs)
            rows.append(
                f"{kernels:>11,} {build_s:>8.1f} {seconds:>13.2f} {rss_mib:>13.0f} "
                f"{sql_seconds:>7.2f} {seconds / sql_seconds:>6.2f}  {'yes' if agree else 'NO'}"
            )
            print(f"\n{kernels:,} kernels ({db.stat().st_size / 2**20:.0f} MiB export):")
            print("\n".join(compare(ours, sql)))
            if args.repeats > 1:
                print("  infersight s per run: " + ", ".join(f"{a.seconds:.2f}" for a, _ in runs))
                print(
                    "  peak RSS MiB per run: "
                    + ", ".join(f"{(a.peak_rss_bytes or 0) / 2**20:.0f}" for a, _ in runs)
                )
            for line in target_lines(kernels, args, seconds, sql_seconds, worst_rss):
                print(f"  target {line}")
            if args.keep:
                kept = Path(args.tmp or ".") / db.name
                shutil.move(db, kept)
                print(f"  kept {kept}")
            else:
                db.unlink()
        print("\n" + header)
        print("\n".join(rows))
        print(
            "ratio = infersight CLI wall time (incl. interpreter start-up and report rendering)"
            " / SQL query time (medians of the repeats)"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
