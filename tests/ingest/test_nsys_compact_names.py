"""NVTX names read compact (emit_nvtx form + numbers) mean exactly what the full names mean.

``analyze`` reads an nsys export's range names as forms and numbers (no string per distinct
name); every other command reads full names. Checked on every shared export and on a copy with
registered (textId) names, a name both inline and registered, and names past the length cut: the
same names row by row, the same notes, and the same analysis report.
"""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from tests.conftest import NSYS_DIR, shared_file, shared_report, shared_traces

from infersight import api
from infersight.errors import InputError
from infersight.ingest.checks import MAX_NAME_CHARS
from infersight.ingest.nsys_sqlite import read_nsys_sqlite
from infersight.model.emit_nvtx import join_one
from infersight.model.trace import RANGE_FORM_COLUMN, RANGE_NUMBER_COLUMNS, Trace

EXPORTS = sorted(p.name for p in NSYS_DIR.glob("*.sqlite")) if NSYS_DIR.exists() else []
H100 = "nsys/h100x2_llm_train_nsys2026.sqlite"


def _full_names(trace: Trace) -> list[str]:
    """Each range's full name, joined back from a compact table."""
    r = trace.ranges
    forms = r[RANGE_FORM_COLUMN].astype(str).tolist()
    numbers = [r[key].tolist() for key in RANGE_NUMBER_COLUMNS]
    return [join_one(form, list(row)) for form, *row in zip(forms, *numbers, strict=True)]


def _assert_same_ranges(full: Trace, compact: Trace) -> None:
    assert compact.notes == full.notes
    if full.ranges.empty:
        assert compact.ranges.empty
        return
    assert "name" not in compact.ranges.columns  # code that reads `name` fails, never gets forms
    assert _full_names(compact) == full.ranges["name"].astype(str).tolist()
    for column in full.ranges.columns.drop("name"):
        assert compact.ranges[column].astype(str).tolist() == full.ranges[column].astype(str).tolist(), column


def _report_json(path: Path, *, compact: bool) -> str:
    traces = api.load([path], executor="local", compact_ranges=compact)
    return api.report_from_traces(traces).model_dump_json()


@pytest.mark.parametrize("name", EXPORTS)
def test_compact_names_are_the_full_names_on_every_shared_export(name: str) -> None:
    path = shared_file(f"nsys/{name}")
    try:
        full = read_nsys_sqlite(path)
    except Exception as exc:  # an export the reader refuses refuses both ways, with the same error
        with pytest.raises(type(exc), match=str(exc)[:40].replace("(", r"\(").replace(")", r"\)")):
            read_nsys_sqlite(path, compact_ranges=True)
        return
    _assert_same_ranges(full, read_nsys_sqlite(path, compact_ranges=True))


@pytest.mark.parametrize("name", [n for n in EXPORTS if "no_kernel" not in n])
def test_analysis_of_compact_names_is_the_analysis_of_full_names(name: str) -> None:
    relative = f"nsys/{name}"
    try:
        expected = shared_report(relative).model_dump_json()  # computed once per run, full names
    except InputError as exc:
        pytest.skip(f"not analysable: {exc}")
    compact = shared_traces(relative, compact_ranges=True)
    assert "name" not in compact[0].ranges.columns or compact[0].ranges.empty
    assert api.report_from_traces(compact).model_dump_json() == expected


@pytest.fixture(scope="module")
def edited_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The H100 export with registered emit_nvtx names, one name both inline and registered,
    and three names longer than the length cut that differ only in their op_id."""
    path = tmp_path_factory.mktemp("compact") / "edited.sqlite"
    shutil.copyfile(shared_file(H100), path)
    with closing(sqlite3.connect(path)) as conn:
        rows = [r[0] for r in conn.execute("SELECT rowid FROM NVTX_EVENTS WHERE eventType = 59 LIMIT 40")]
        new_id = conn.execute("SELECT MAX(id) + 1 FROM StringIds").fetchone()[0]
        conn.execute(
            "INSERT INTO StringIds (id, value) VALUES (?, 'aten::special, seq = 3, op_id = 77')", (new_id,)
        )
        conn.execute(
            "INSERT INTO StringIds (id, value) VALUES (?, 'aten::other, op_id = 0078')", (new_id + 1,)
        )
        for row in rows[:5]:
            conn.execute("UPDATE NVTX_EVENTS SET text = NULL, textId = ? WHERE rowid = ?", (new_id, row))
        conn.execute("UPDATE NVTX_EVENTS SET text = NULL, textId = ? WHERE rowid = ?", (new_id + 1, rows[5]))
        conn.execute(
            "UPDATE NVTX_EVENTS SET text = 'aten::special, seq = 3, op_id = 77' WHERE rowid IN (?, ?)",
            rows[6:8],
        )
        for offset, row in enumerate(rows[10:13]):
            conn.execute(
                f"UPDATE NVTX_EVENTS SET text = printf('%.{MAX_NAME_CHARS - 5}c', 'x') || ', op_id = ' || ?, "
                '"end" = "end" + 10000000000 WHERE rowid = ?',  # the longest ranges: shown first
                (1000 + offset, row),
            )
        conn.commit()
    return path


def test_registered_and_long_names_mean_the_same_compact(edited_export: Path) -> None:
    full = read_nsys_sqlite(edited_export)
    compact = read_nsys_sqlite(edited_export, compact_ranges=True)
    assert any("3 name(s) longer than" in note for note in full.notes)
    special = full.ranges["name"].astype(str) == "aten::special, seq = 3, op_id = 77"
    assert int(special.sum()) == 7  # five registered + two inline rows: one name
    _assert_same_ranges(_unshortened(full, edited_export), compact)


def _unshortened(full: Trace, path: Path) -> Trace:
    """``full`` with the names the export holds (its reader shortened the long ones)."""
    with closing(sqlite3.connect(path)) as conn:
        long = [
            r[0] for r in conn.execute(f"SELECT text FROM NVTX_EVENTS WHERE length(text) > {MAX_NAME_CHARS}")
        ]
    from infersight.ingest.checks import short_name

    restore = {short_name(name): name for name in long}
    names = full.ranges["name"].astype(str).map(lambda name: restore.get(name, name))
    full.ranges["name"] = names.astype("category")
    return full


def test_edited_export_shows_the_same_names_in_its_range_summary(edited_export: Path) -> None:
    """The same range summary, the long names shortened as the full read shortens them."""
    from infersight.analyses.ranges import range_summary

    expected = range_summary([read_nsys_sqlite(edited_export)], max_names=20)
    assert sum("chars #" in row.name for row in expected[:3]) == 3
    assert range_summary([read_nsys_sqlite(edited_export, compact_ranges=True)], max_names=20) == expected


def test_edited_export_reports_the_same(edited_export: Path) -> None:
    assert _report_json(edited_export, compact=True) == _report_json(edited_export, compact=False)


def test_range_summary_of_several_traces_mixes_compact_and_full_tables() -> None:
    """Names of several traces are united across compact and full tables alike."""
    from infersight.analyses.ranges import range_summary

    paths = [shared_file(H100), shared_file("nsys/saxpy_mpi_a100_nvtx_oldschema.sqlite")]
    full = [read_nsys_sqlite(p) for p in paths]
    compact = [read_nsys_sqlite(p, compact_ranges=True) for p in paths]
    expected = range_summary(full, max_names=50)
    assert range_summary(compact, max_names=50) == expected
    assert range_summary([compact[0], full[1]], max_names=50) == expected
    assert range_summary([full[0], compact[1]], max_names=200) == range_summary(full, max_names=200)


def test_form_coder_gives_the_same_columns_for_repeating_and_unique_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Repeating texts are split once per distinct text, unique ones as they come: same result."""
    import numpy as np

    from infersight.ingest import nsys_sqlite
    from infersight.model.emit_nvtx import split_names

    monkeypatch.setattr(nsys_sqlite, "_SPLIT_CHUNK", 64)  # several chunks from a few hundred texts
    repeating = [f"aten::op{i % 5}, seq = {i % 3}, op_id = {i % 5}" for i in range(300)]  # 15 names
    unique = [f"aten::op{i % 7}, op_id = {i}" for i in range(200)]
    for texts in (repeating, unique, repeating[:10] + unique, repeating + unique + repeating):
        coder = nsys_sqlite._FormCoder()
        form_codes, *numbers = coder(texts)
        reference = split_names(texts)
        forms = list(coder.code)
        assert [forms[c] for c in form_codes.tolist()] == reference.forms
        for got, expected in zip(numbers, reference.numbers, strict=True):
            assert np.array_equal(got, expected)
    coder = nsys_sqlite._FormCoder()
    coder(repeating)
    assert coder.known is not None  # repeating texts: remembered
    coder(unique)
    assert coder.known is None  # a chunk of mostly new texts: it stopped remembering them
