"""Read Nsight Compute exports into per-launch metric tables.

Three inputs, one result (a list of :class:`NcuLaunch`, one per profiled kernel launch):

* ``ncu --csv --page raw`` — one row per launch, a header row of metric names and a units row;
* ``ncu --csv --page details`` (and the default ``--csv`` output) — one row per metric
  (``Section Name``, ``Metric Name``, ``Metric Unit``, ``Metric Value``) plus the rule rows
  (``Rule Name``, ``Rule Type``, ``Rule Description``, ``Estimated Speedup``); older ncu
  versions print a ``Kernel Time`` column and no ``Block Size``/``Grid Size``/``Device``/``CC``;
* ``.ncu-rep`` — through ``ncu --import FILE --csv --page raw --print-units base`` when ncu is on
  PATH, else through NVIDIA's optional ``ncu-report`` Python wheel, else a clear message with
  the exact export command.

Values are converted to base units (:mod:`infersight.ncu.units`); an "n/a" cell or one with a
unit we cannot convert is kept as a missing value with the reason, never as 0 — and so is a
number that cannot be a measurement: non-finite, negative, above ``MAX_METRIC_VALUE``, or a
metric whose name carries a dimension (bytes, duration, rate, %) with a blank unit cell. In a details
export a metric of the "Command line profiler metrics" section keeps its raw name
(``dram__bytes_read.sum``); any other row is keyed ``"<Section Name>: <Metric Name>"``
(``"Memory Workload Analysis: L2 Hit Rate"``) because labels repeat across sections.
"""

from __future__ import annotations

import csv
import io
import math
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from infersight.errors import InputError
from infersight.ncu.units import (
    NumberStyle,
    UnitError,
    detect_number_style,
    looks_numeric,
    parse_unit,
    to_base,
)
from infersight.safe_io import MAX_CSV_BYTES, check_regular_file, read_bounded_bytes

CLI_METRICS_SECTION = "Command line profiler metrics"
IDENTITY_COLUMNS = (
    "ID", "Process ID", "Process Name", "Host Name", "Kernel Name", "Kernel Time", "Context", "Stream",
    "Block Size", "Grid Size", "Device", "CC",
)  # fmt: skip
DETAILS_COLUMNS = ("Section Name", "Metric Name", "Metric Unit", "Metric Value")
RULE_COLUMNS = ("Rule Name", "Rule Type", "Rule Description", "Estimated Speedup Type", "Estimated Speedup")
IMPORT_TIMEOUT_S = 600
_DIMS = re.compile(r"^\(\s*(\d{1,10})\s*,\s*(\d{1,10})\s*,\s*(\d{1,10})\s*\)$")
MAX_LAUNCH_DIM = 2**31 - 1  # CUDA grid/block dimensions fit in 31 bits
MAX_DEVICE_ID = 2**31 - 1
# Above any real counter, time (ns), rate or clock (1e24 bytes is a yottabyte): a larger value is
# damage, and kept out so that products and quotients of counters stay finite.
MAX_METRIC_VALUE = 1e24
# Raw metric names that always carry a unit: a blank unit cell leaves their scale unknown.
_DIMENSIONED = re.compile(r"__bytes|_bytes\b|bytes_|time_duration|\.per_second|\.pct|_pct_|__throughput")


@dataclass
class MetricValue:
    """One metric of one launch: the value in base units (None when missing) and where it came from."""

    value: float | str | None
    unit: str
    raw_text: str
    raw_unit: str
    problem: str | None = None  # why value is None although the cell was not empty


@dataclass
class NcuRuleResult:
    """One of Nsight Compute's own rule results (details page only)."""

    section: str
    name: str
    type: str
    description: str
    speedup_type: str = ""
    speedup_pct: float | None = None


@dataclass
class NcuLaunch:
    """One profiled kernel launch."""

    id: int
    kernel_name: str
    source: str
    layout: str  # "raw", "details" or "ncu-report"
    process_id: str = ""
    device: int | None = None
    compute_capability: str | None = None
    block: tuple[int, int, int] | None = None
    grid: tuple[int, int, int] | None = None
    values: dict[str, MetricValue] = field(default_factory=dict)
    rules: list[NcuRuleResult] = field(default_factory=list)


@dataclass
class NcuExport:
    """Everything read from one file."""

    source: str
    layout: str
    launches: list[NcuLaunch]
    notes: list[str] = field(default_factory=list)


def read_ncu(path: str | Path) -> NcuExport:
    """Read a CSV export or a ``.ncu-rep`` report; raises :class:`InputError` for bad input.

    Only a regular file is read (a FIFO or a device would block or never end), a CSV at most
    ``MAX_CSV_BYTES``.
    """
    file = Path(path)
    if not file.exists() and not file.is_symlink():
        raise InputError(file, "no such file")
    check_regular_file(file, "ncu export")
    if file.suffix == ".ncu-rep":
        return _read_report(file)
    data = read_bounded_bytes(file, MAX_CSV_BYTES, "ncu export")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(file, "not a text file: expected an ncu CSV export or a .ncu-rep report") from None
    return parse_ncu_csv(text, str(file))


# ---------------------------------------------------------------- CSV


def _table_lines(text: str, source: str) -> list[str]:
    """The CSV lines, without ncu's ``==PROF==``/``==WARNING==`` chatter around the table."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if re.match(r'^\s*"?ID"?\s*,', line)), None)
    if start is None:
        raise InputError(
            source,
            'no ncu CSV header (a row starting with "ID"): expected `ncu --csv --page raw|details` output',
        )
    return [line for line in lines[start:] if not line.startswith("==") and line.strip()]


def parse_ncu_csv(text: str, source: str = "<csv>") -> NcuExport:
    """Parse the text of an ncu ``--csv`` export (raw or details page); it must hold a launch."""
    export = _parse_table(text, source)
    if not export.launches:
        raise InputError(source, "the export holds no profiled kernel launch (only the header)")
    return export


def _parse_table(text: str, source: str = "<csv>") -> NcuExport:
    """The export of one CSV text (may hold no launch)."""
    lines = _table_lines(text, source)
    try:
        rows = list(csv.reader(io.StringIO("\n".join(lines)), strict=True))
    except csv.Error as exc:
        raise InputError(source, f"malformed CSV: {exc}") from None
    header = [h.strip() for h in rows[0]]
    if len(set(header)) != len(header):
        duplicated = sorted({h for h in header if header.count(h) > 1})
        raise InputError(source, f"duplicate columns {duplicated}")
    for column in ("ID", "Kernel Name"):
        if column not in header:
            raise InputError(source, f"missing column {column!r}")
    if "Metric Name" in header or "Metric Value" in header:
        missing = [c for c in DETAILS_COLUMNS if c not in header]
        if missing:
            raise InputError(source, f"details-page export without column(s) {missing}")
        required = max(header.index(c) for c in (*DETAILS_COLUMNS, "ID", "Kernel Name")) + 1
        body, notes = _complete_rows(rows[1:], header, required, source)
        return NcuExport(source, "details", _details_launches(header, body, source), notes)
    body, notes = _complete_rows(rows[1:], header, len(header), source)
    return NcuExport(source, "raw", _raw_launches(header, body, source), notes)


def _complete_rows(
    rows: list[list[str]], header: list[str], required: int, source: str
) -> tuple[list[list[str]], list[str]]:
    """Rows padded to the header's width.

    ncu leaves out trailing empty cells (a details row without a rule ends after "Metric
    Value"), so a row may be shorter than the header as long as it holds the first ``required``
    columns. A *last* row shorter than that (a file cut off while written) is dropped with a
    note; such a row anywhere else, or a row longer than the header, means a corrupt file.
    """
    width = len(header)
    notes: list[str] = []
    out: list[list[str]] = []
    for index, row in enumerate(rows):
        line = index + 2
        if required <= len(row) <= width:
            out.append(row + [""] * (width - len(row)))
        elif len(row) < required and index == len(rows) - 1:
            notes.append(
                f"last row (line {line}) has {len(row)} of {width} cells: the file is truncated; row ignored"
            )
        elif len(row) < required:
            raise InputError(
                source,
                f"line {line} has {len(row)} cells but needs at least {required} "
                f"(up to {header[required - 1]!r})",
            )
        else:
            raise InputError(source, f"line {line} has {len(row)} cells, the header has {width}")
    return out, notes


def _dims(text: str) -> tuple[int, int, int] | None:
    """ "(x, y, z)" launch dimensions, each 1..2^31-1; None for anything else (not a crash)."""
    match = _DIMS.match(text.strip())
    if not match:
        return None
    dims = (int(match.group(1)), int(match.group(2)), int(match.group(3)))
    return dims if all(1 <= d <= MAX_LAUNCH_DIM for d in dims) else None


def _launch_id(text: str, source: str) -> int:
    try:
        return int(text.strip().replace(",", ""))
    except ValueError:
        raise InputError(source, f"launch ID {text!r} is not an integer") from None


def _new_launch(cells: dict[str, str], source: str, layout: str) -> NcuLaunch:
    device = cells.get("Device", "").strip()
    return NcuLaunch(
        id=_launch_id(cells["ID"], source),
        kernel_name=cells["Kernel Name"],
        source=source,
        layout=layout,
        process_id=cells.get("Process ID", ""),
        device=int(device)
        if device.isdigit() and len(device) <= 10 and int(device) <= MAX_DEVICE_ID
        else None,
        compute_capability=cells.get("CC") or None,
        block=_dims(cells.get("Block Size", "")),
        grid=_dims(cells.get("Grid Size", "")),
    )


def _metric(text: str, unit: str, style: NumberStyle, name: str = "") -> MetricValue:
    """A cell in base units; text that is not a number (names, "(128, 1, 1)") stays a string.

    A number that cannot be a measurement is kept as missing with the reason, never passed on:
    non-finite ("1e400" overflows to inf), negative (no counter, time, rate or percentage is), or
    a metric whose name says it has a dimension (bytes, a duration, a rate, a percentage) given
    with a blank unit cell — "4.74" with no unit may be 4.74 Mbyte, and reading it as 4.74 bytes
    would inflate the arithmetic intensity a millionfold.
    """
    stripped = text.strip()
    try:
        base = parse_unit(unit)
    except UnitError as exc:
        return MetricValue(None, unit, stripped, unit, problem=str(exc))
    if not looks_numeric(stripped) and stripped not in ("", "n/a", "N/A"):
        return MetricValue(stripped, base.base, stripped, unit)
    try:
        value, base_unit = to_base(stripped, unit, style)
    except UnitError as exc:
        return MetricValue(None, base.base, stripped, unit, problem=str(exc))
    problem = (
        "ncu reported n/a (metric not available for this kernel/GPU)" if stripped in ("n/a", "N/A") else None
    )
    if value is not None:
        problem = _implausible(value, unit, name)
        if problem is not None:
            value = None
    return MetricValue(value, base_unit, stripped, unit, problem=problem)


def _implausible(value: float, unit: str, name: str) -> str | None:
    """Why a parsed number cannot stand as a measurement, or None when it can."""
    if not math.isfinite(value):
        return "not a finite number"
    if value < 0:
        return f"negative ({value:g}): counters, times, rates and percentages are never negative"
    if value > MAX_METRIC_VALUE:
        return f"{value:g} exceeds {MAX_METRIC_VALUE:g}: no kernel counter reaches it"
    if not unit.strip() and _DIMENSIONED.search(name):
        return "blank unit cell for a metric with a unit (bytes, time, rate or %): its scale is unknown"
    return None


def _style(cells: list[str], source: str) -> NumberStyle:
    try:
        return detect_number_style(cells)
    except UnitError as exc:
        raise InputError(source, str(exc)) from None


def _raw_launches(header: list[str], body: list[list[str]], source: str) -> list[NcuLaunch]:
    id_col = header.index("ID")
    if not body or body[0][id_col].strip() != "":
        raise InputError(
            source, "raw-page export without its units row (the row after the header with an empty ID)"
        )
    units, data = body[0], body[1:]
    metric_cols = [i for i, name in enumerate(header) if name not in IDENTITY_COLUMNS]
    style = _style([row[i] for row in data for i in metric_cols], source)
    launches = []
    for row in data:
        cells = dict(zip(header, row, strict=True))
        launch = _new_launch(cells, source, "raw")
        launch.values = {header[i]: _metric(row[i], units[i], style, header[i]) for i in metric_cols}
        launches.append(launch)
    return launches


def _details_launches(header: list[str], body: list[list[str]], source: str) -> list[NcuLaunch]:
    value_col = header.index("Metric Value")
    style = _style([row[value_col] for row in body], source)
    launches: dict[int, NcuLaunch] = {}
    for row in body:
        cells = dict(zip(header, row, strict=True))
        launch_id = _launch_id(cells["ID"], source)
        launch = launches.get(launch_id)
        if launch is None:
            launch = launches[launch_id] = _new_launch(cells, source, "details")
        section, name = cells["Section Name"].strip(), cells["Metric Name"].strip()
        if name:
            key = name if section == CLI_METRICS_SECTION else f"{section}: {name}"
            launch.values[key] = _metric(cells["Metric Value"], cells["Metric Unit"], style, name)
        rule = cells.get("Rule Name", "").strip()
        if rule:
            speedup = cells.get("Estimated Speedup", "").strip()
            launch.rules.append(
                NcuRuleResult(
                    section=section,
                    name=rule,
                    type=cells.get("Rule Type", "").strip(),
                    description=" ".join(cells.get("Rule Description", "").split()),
                    speedup_type=cells.get("Estimated Speedup Type", "").strip(),
                    speedup_pct=_speedup(speedup, style),
                )
            )
    for launch in launches.values():  # old layouts carry launch dims only in Launch Statistics
        launch.block = launch.block or _dims_from_count(launch, "Launch Statistics: Block Size")
        launch.grid = launch.grid or _dims_from_count(launch, "Launch Statistics: Grid Size")
    return sorted(launches.values(), key=lambda launch: launch.id)


def _speedup(text: str, style: NumberStyle) -> float | None:
    try:
        value = to_base(text, "%", style)[0] if text else None
    except UnitError:
        return None
    return value if value is not None and math.isfinite(value) and value >= 0 else None


def _dims_from_count(launch: NcuLaunch, key: str) -> tuple[int, int, int] | None:
    """A 1-D (n, 1, 1) from a Launch Statistics total when the export has no Block/Grid Size column."""
    metric = launch.values.get(key)
    if metric is None or not isinstance(metric.value, float):
        return None
    if not (math.isfinite(metric.value) and 1 <= metric.value <= MAX_LAUNCH_DIM):
        return None  # not a launch size: no dims rather than a crash or a wrapped number
    return (round(metric.value), 1, 1)


# ---------------------------------------------------------------- .ncu-rep


def import_command(path: Path) -> str:
    """The exact command that turns a report into the CSV this reader wants."""
    return f"ncu --import {path} --csv --page raw --print-units base > {path.with_suffix('.csv').name}"


def _read_report(path: Path) -> NcuExport:
    ncu = shutil.which("ncu")
    if ncu is not None:
        return _import_with_ncu(ncu, path)
    try:
        import ncu_report  # optional extra (proprietary NVIDIA licence)
    except ImportError:
        raise InputError(
            path,
            "a binary Nsight Compute report needs `ncu` on PATH or the optional ncu-report wheel "
            f"(pip install 'infersight[ncu-rep]'); or export it yourself: {import_command(path)}",
        ) from None
    return _read_with_wheel(ncu_report, path)


def _import_with_ncu(ncu: str, path: Path) -> NcuExport:
    command = [ncu, "--import", str(path), "--csv", "--page", "raw", "--print-units", "base"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=IMPORT_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InputError(path, f"`{' '.join(command)}` failed: {exc}") from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise InputError(path, f"`ncu --import` failed: {detail[0] if detail else f'exit {done.returncode}'}")
    export = parse_ncu_csv(done.stdout, str(path))
    export.notes.append("read through `ncu --import --csv --page raw --print-units base`")
    return export


def _wheel_value(metric: object) -> MetricValue:
    unit = str(metric.unit() or "")  # type: ignore[attr-defined]
    value = metric.value()  # type: ignore[attr-defined]
    if value is None:
        return MetricValue(None, unit, "", unit, problem="no value in the report")
    if isinstance(value, str):
        return MetricValue(value, unit, value, unit)
    try:  # the wheel reports base units ("ns", "byte"); normalise their spelling like the CSV's
        base = parse_unit(unit)
    except UnitError as exc:
        return MetricValue(None, unit, str(value), unit, problem=str(exc))
    try:
        number = float(value) * base.scale
    except (TypeError, ValueError, OverflowError):
        return MetricValue(None, base.base, str(value)[:80], unit, problem="not a number")
    problem = _implausible(number, unit or base.base or "-", "")
    return MetricValue(None if problem else number, base.base, str(value), unit, problem=problem)


def _read_with_wheel(ncu_report: object, path: Path) -> NcuExport:
    try:
        context = ncu_report.load_report(str(path))  # type: ignore[attr-defined]
    except Exception as exc:  # the wheel raises its own types for unreadable reports
        raise InputError(path, f"ncu-report cannot read it: {exc}") from None
    demangled = ncu_report.IAction.NameBase_DEMANGLED  # type: ignore[attr-defined]
    launches: list[NcuLaunch] = []
    for range_index in range(context.num_ranges()):
        report_range = context.range_by_idx(range_index)
        for action_index in range(report_range.num_actions()):
            action = report_range.action_by_idx(action_index)
            values = {
                name: _wheel_value(action.metric_by_name(name))
                for name in action.metric_names()
                if not name.startswith("regex:")
            }
            launch = NcuLaunch(
                id=len(launches), kernel_name=action.name(demangled), source=str(path), layout="ncu-report"
            )
            launch.values = values
            launch.block = _wheel_dims(values, "launch__block_dim_")
            launch.grid = _wheel_dims(values, "launch__grid_dim_")
            device = values.get("launch__device_id")
            launch.device = int(device.value) if device and isinstance(device.value, float) else None
            major, minor = (
                values.get("device__attribute_compute_capability_major"),
                values.get("device__attribute_compute_capability_minor"),
            )
            if major and minor and major.value is not None and minor.value is not None:
                launch.compute_capability = f"{int(float(major.value))}.{int(float(minor.value))}"
            launches.append(launch)
    if not launches:
        raise InputError(path, "the report holds no profiled kernel")
    return NcuExport(str(path), "ncu-report", launches, ["read through the ncu-report Python wheel"])


def _wheel_dims(values: dict[str, MetricValue], prefix: str) -> tuple[int, int, int] | None:
    dims = [values.get(prefix + axis) for axis in "xyz"]
    if any(d is None or d.value is None or isinstance(d.value, str) for d in dims):
        return None
    return (int(dims[0].value), int(dims[1].value), int(dims[2].value))  # type: ignore[union-attr,arg-type]
