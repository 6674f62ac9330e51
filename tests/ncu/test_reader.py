"""Reading ncu exports: hand-made raw pages, real details pages, malformed files, .ncu-rep."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest
from tests.conftest import shared_file

from infersight.errors import InputError
from infersight.ncu import reader
from infersight.ncu.metrics import resolve
from infersight.ncu.reader import parse_ncu_csv, read_ncu

DATA = Path(__file__).parent / "data"
RAW_HEADER = (
    '"ID","Process ID","Process Name","Host Name","Kernel Name","Context","Stream","Block Size","Grid Size",'
    '"Device","CC","gpu__time_duration.sum","dram__bytes_read.sum","lts__t_sector_hit_rate.pct"'
)
RAW_UNITS = '"","","","","","","","","","","","usecond","Kbyte","%"'


def _raw_row(launch: int, duration: str, read: str, l2: str) -> str:
    identity = f'"{launch}","1","p","h","k(int)","1","7","(256, 1, 1)","(8, 1, 1)","0","9.0"'
    return f'{identity},"{duration}","{read}","{l2}"'


def test_default_and_base_units_give_identical_values() -> None:
    default = read_ncu(DATA / "h100_raw_default_units.csv")
    base = read_ncu(DATA / "h100_raw_base_units.csv")
    assert default.layout == base.layout == "raw"
    assert len(default.launches) == len(base.launches) == 5
    for a, b in zip(default.launches, base.launches, strict=True):
        assert (a.kernel_name, a.grid, a.block) == (b.kernel_name, b.grid, b.block)
        ra, rb = resolve(a).values, resolve(b).values
        for name, value in ra.items():
            assert value == pytest.approx(rb[name]), name
    first = resolve(default.launches[0]).values
    assert first["duration_ns"] == pytest.approx(100_000.0)
    assert first["dram_bytes"] == pytest.approx(50e6)  # 40 Mbyte read + 10 Mbyte written
    assert first["dram_bandwidth"] == pytest.approx(500e9)
    assert first["fp32_fma"] == pytest.approx(2e6)  # "2.000000" Minst
    assert first["global_load_sectors_per_request"] == pytest.approx(4.0)  # Msector / Mrequest
    assert first["bank_conflicts_per_request"] == pytest.approx(200 / 15_000)  # Kinst requests
    assert first["sm_frequency"] == pytest.approx(1.98e9)
    assert default.launches[0].block == (384, 1, 1) and default.launches[0].grid == (132, 1, 1)


def _independent_details(path: Path) -> dict[tuple[str, str], tuple[str, str]]:
    with path.open(newline="") as handle:
        return {
            (r["Section Name"], r["Metric Name"]): (r["Metric Unit"], r["Metric Value"])
            for r in csv.DictReader(handle)
        }


def test_real_rtx5090_details_page_matches_the_cells() -> None:
    path = shared_file("ncu/dsocr_decode_flash_fwd_splitkv_rtx5090.details.csv")
    cells = _independent_details(path)
    export = read_ncu(path)
    assert export.layout == "details" and len(export.launches) == 1
    launch = export.launches[0]
    assert launch.grid == (1, 8, 10) and launch.block == (128, 1, 1) and launch.compute_capability == "12.0"
    values = resolve(launch).values
    unit, text = cells[("Command line profiler metrics", "dram__bytes_read.sum")]
    assert unit == "Mbyte" and values["dram_bytes"] == pytest.approx(float(text) * 1e6)  # + 0 byte written
    unit, text = cells[("Command line profiler metrics", "gpu__time_duration.sum")]
    assert unit == "us" and values["duration_ns"] == pytest.approx(float(text) * 1e3)
    assert values["l2_hit_rate_pct"] == pytest.approx(
        float(cells[("Memory Workload Analysis", "L2 Hit Rate")][1])
    )
    _, text = cells[("Memory Workload Analysis", "Memory Throughput")]  # Gbyte/s, not the SOL percentage
    assert values["dram_bandwidth"] == pytest.approx(float(text) * 1e9)
    assert values["memory_throughput_pct"] == pytest.approx(
        float(cells[("GPU Speed Of Light Throughput", "Memory Throughput")][1])
    )
    assert values["achieved_occupancy_pct"] == pytest.approx(
        float(cells[("Occupancy", "Achieved Occupancy")][1])
    )
    flop_hp = launch.values["flop_count_hp.sum"]
    assert flop_hp.value is None and "n/a" in (flop_hp.problem or "")
    assert [r.name for r in launch.rules] == [
        "SOLBottleneck", "SOLFPRoofline", "IssueSlotUtilization", "TheoreticalOccupancy"
    ]  # fmt: skip
    assert launch.rules[2].speedup_pct == pytest.approx(74.0)


def test_old_layout_derives_duration_from_cycles_and_clock() -> None:
    path = shared_file("ncu/gpt2_flashattn_ampere_oldlayout.csv")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    cycles = {
        r["ID"]: float(r["Metric Value"].replace(",", ""))
        for r in rows
        if r["Metric Name"] == "sm__cycles_elapsed.avg"
    }
    rate = {
        r["ID"]: float(r["Metric Value"].replace(",", ""))
        for r in rows
        if r["Metric Name"] == "sm__cycles_elapsed.avg.per_second"
    }
    export = read_ncu(path)
    assert len(export.launches) == 10
    for launch in export.launches:
        expected_ns = cycles[str(launch.id)] / rate[str(launch.id)] * 1e9
        assert resolve(launch).values["duration_ns"] == pytest.approx(expected_ns)
    assert export.launches[0].block == (256, 1, 1) and export.launches[0].grid == (
        864,
        1,
        1,
    )  # Launch Statistics


def test_ncu_rep_without_ncu_or_wheel_gives_the_export_command(monkeypatch: pytest.MonkeyPatch) -> None:
    path = shared_file("ncu/ex_gpu_6kernels.ncu-rep")
    monkeypatch.setattr(reader.shutil, "which", lambda _: None)
    monkeypatch.setitem(sys.modules, "ncu_report", None)  # import fails as if not installed
    with pytest.raises(InputError, match=r"ncu --import .*ex_gpu_6kernels.ncu-rep --csv --page raw"):
        read_ncu(path)


def test_ncu_rep_through_the_wheel() -> None:
    pytest.importorskip("ncu_report")
    export = read_ncu(shared_file("ncu/ex_gpu_6kernels.ncu-rep"))
    names = [launch.kernel_name.split("(")[0] for launch in export.launches]
    assert names == ["init_array", "init_array", "vector_add", "vector_add1", "vector_mul", "vector_dot"]
    assert export.launches[0].values["device__attribute_display_name"].value == "A100-PCIE-40GB"
    assert resolve(export.launches[0]).values["duration_ns"] == pytest.approx(4064.0)
    assert export.launches[0].compute_capability == "8.0"


def test_truncated_last_row_is_dropped_with_a_note() -> None:
    text = "\n".join(
        [RAW_HEADER, RAW_UNITS, _raw_row(0, "1.50", "2.00", "50.0"), '"1","1","p","h","k(int)","1"']
    )
    export = parse_ncu_csv(text, "t.csv")
    assert len(export.launches) == 1 and "truncated" in export.notes[0]


def test_short_row_in_the_middle_is_an_error() -> None:
    text = "\n".join([RAW_HEADER, RAW_UNITS, '"1","1","p"', _raw_row(0, "1.50", "2.00", "50.0")])
    with pytest.raises(InputError, match="line 3 has 3 cells"):
        parse_ncu_csv(text, "t.csv")


def test_missing_identity_column_is_an_error() -> None:
    text = "\n".join([RAW_HEADER.replace('"Kernel Name",', ""), RAW_UNITS.replace('"",', "", 1)])
    with pytest.raises(InputError, match="missing column 'Kernel Name'"):
        parse_ncu_csv(text, "t.csv")


def test_header_only_export_is_an_error() -> None:
    with pytest.raises(InputError, match="no profiled kernel launch"):
        parse_ncu_csv("\n".join([RAW_HEADER, RAW_UNITS]), "t.csv")


def test_raw_page_without_units_row_is_refused() -> None:
    with pytest.raises(InputError, match="units row"):
        parse_ncu_csv("\n".join([RAW_HEADER, _raw_row(0, "1.50", "2.00", "50.0")]), "t.csv")


def test_not_a_ncu_csv() -> None:
    with pytest.raises(InputError, match="no ncu CSV header"):
        parse_ncu_csv("a,b,c\n1,2,3\n", "t.csv")


def test_na_and_unknown_unit_become_missing_values_with_reasons() -> None:
    units = RAW_UNITS.replace('"Kbyte"', '"Xbyte"')
    export = parse_ncu_csv("\n".join([RAW_HEADER, units, _raw_row(0, "n/a", "2.00", "50.0")]), "t.csv")
    values = export.launches[0].values
    assert values["gpu__time_duration.sum"].value is None and "n/a" in (
        values["gpu__time_duration.sum"].problem or ""
    )
    assert values["dram__bytes_read.sum"].value is None and "unknown unit" in (
        values["dram__bytes_read.sum"].problem or ""
    )
    resolved = resolve(export.launches[0])
    assert resolved.values["duration_ns"] is None and "SpeedOfLight" in resolved.missing["duration_ns"]
    assert resolved.values["dram_bytes"] is None


def test_european_locale_numbers() -> None:
    text = "\n".join([RAW_HEADER, RAW_UNITS, _raw_row(0, "1.205,50", "27.595", "65,77")])
    values = parse_ncu_csv(text, "t.csv").launches[0].values
    assert values["gpu__time_duration.sum"].value == pytest.approx(1_205_500.0)
    assert values["dram__bytes_read.sum"].value == pytest.approx(27_595_000.0)  # Kbyte, thousands dot
    assert values["lts__t_sector_hit_rate.pct"].value == pytest.approx(65.77)


def test_mixed_number_conventions_are_an_error() -> None:
    text = "\n".join([RAW_HEADER, RAW_UNITS, _raw_row(0, "1.50", "2.00", "65,77")])
    with pytest.raises(InputError, match="both decimal conventions"):
        parse_ncu_csv(text, "t.csv")


def test_details_unit_mismatch_is_refused() -> None:
    header = '"ID","Kernel Name","Section Name","Metric Name","Metric Unit","Metric Value"'
    rows = [
        '"0","k","GPU Speed Of Light Throughput","Memory Throughput","Gbyte/second","458.30"',
        '"0","k","GPU Speed Of Light Throughput","Duration","msecond","1.5"',
    ]
    resolved = resolve(parse_ncu_csv("\n".join([header, *rows]), "t.csv").launches[0])
    assert resolved.values["memory_throughput_pct"] is None  # a bandwidth is never a percentage
    assert "does not fit" in resolved.missing["memory_throughput_pct"]
    assert resolved.values["duration_ns"] == pytest.approx(1.5e6)
