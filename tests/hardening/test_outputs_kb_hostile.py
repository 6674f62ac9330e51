"""Hostile outputs, knowledge bases, thresholds files, reports read back, escape sequences, exit codes.

Every case is built here, into ``tmp_path``, from the real files under ``../shared/data`` (a real
trace, config, ncu export, or a report ``analyze`` made from a real trace) and run through the CLI.
The contract (issue 20): misuse and bad input end with exit code 2 and one stderr line naming the
file and what is wrong, never a traceback and never "internal error"; no input is ever written
(hash before/after); no control character of an input string reaches the terminal, Markdown or
HTML output.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.conftest import REPO_ROOT, shared_file

from infersight.cli import run

KINETO = "kineto/hta_alexnet_a100.json.gz"  # 79 kernels, user annotations: fast to analyse
KINETO_RANKS = "kineto/hta_sampled_128ranks"
NSYS = "nsys/tensorrt_conv_rtx3090.sqlite"  # 36 kernels, NVTX, runtime API
CONFIG = "configs/qwen3-8b.config.json"
NCU = "ncu/gpt2_flashattn_ampere_oldlayout.csv"
EVIL = "\x1b]0;pwned\x07\x1b[2J\x9b31m\r"  # OSC title + bell, clear screen, C1 CSI, carriage return
THEORY = ["--gpu", "H100-SXM", "--batch", "1", "--prompt", "16"]


# ---------------------------------------------------------------- helpers


def _digest(path: Path) -> str:
    if path.is_dir():
        return "|".join(f"{p.name}:{_digest(p)}" for p in sorted(path.iterdir()))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _copy(tmp: Path, relative: str, name: str | None = None) -> Path:
    out = tmp / (name or Path(relative).name)
    shutil.copyfile(shared_file(relative), out)
    return out


def _one_error(code: int, err: str, *fragments: str) -> str:
    """Exit 2 and exactly one ``infersight: error:`` line holding every fragment."""
    lines = err.strip().splitlines()
    assert code == 2, (code, err)
    assert len(lines) == 1, lines
    assert lines[0].startswith("infersight: error: "), lines[0]
    for fragment in fragments:
        assert fragment.lower() in lines[0].lower(), (fragment, lines[0])
    return lines[0]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert "internal error" not in captured.err
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def report_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ``analyze --json`` report of the real Kineto trace (made once for the module)."""
    out = tmp_path_factory.mktemp("report") / "report.json"
    assert run(["analyze", str(shared_file(KINETO)), "--json", str(out)]) == 0
    return out


def _report_copy(tmp: Path, report_json: Path, edit: Callable[[dict], None] | None = None) -> Path:
    document = json.loads(report_json.read_text())
    if edit is not None:
        edit(document)
    out = tmp / "report.json"
    out.write_text(json.dumps(document))
    return out


def _fifo(tmp: Path, name: str = "pipe") -> Path:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    path = tmp / name
    os.mkfifo(path)
    return path


# ---------------------------------------------------------------- 1. inputs are never written


def _symlink(tmp: Path, name: str, target: Path) -> Path:
    link = tmp / name
    link.symlink_to(target)
    return link


def _hardlink(tmp: Path, name: str, target: Path) -> Path:
    link = tmp / name
    os.link(target, link)
    return link


def _case_analyze_config_as_json(tmp: Path) -> tuple[list[str], Path]:
    trace, config = _copy(tmp, KINETO), _copy(tmp, CONFIG)
    return ["analyze", str(trace), "--config", str(config), *THEORY, "--json", str(config)], config


def _case_analyze_md_symlink_to_trace(tmp: Path) -> tuple[list[str], Path]:
    trace = _copy(tmp, KINETO)
    return ["analyze", str(trace), "--md", str(_symlink(tmp, "out.md", trace))], trace


def _case_analyze_json_hardlink_to_trace(tmp: Path) -> tuple[list[str], Path]:
    trace = _copy(tmp, NSYS)
    return ["analyze", str(trace), "--json", str(_hardlink(tmp, "out.json", trace))], trace


def _case_analyze_json_into_rank_folder(tmp: Path) -> tuple[list[str], Path]:
    folder = tmp / "ranks"
    folder.mkdir()
    for name in ("rank-0.json.gz", "rank-1.json.gz"):
        shutil.copyfile(shared_file(f"{KINETO_RANKS}/{name}"), folder / name)
    return ["analyze", str(folder), "--json", str(folder / "rank-1.json.gz")], folder


def _case_export_onto_trace(tmp: Path) -> tuple[list[str], Path]:
    trace = _copy(tmp, KINETO)
    return ["export", str(trace), "-o", str(_symlink(tmp, "model.json", trace))], trace


def _case_host_json_is_thresholds(tmp: Path) -> tuple[list[str], Path]:
    trace, thresholds = _copy(tmp, NSYS), tmp / "t.toml"
    thresholds.write_text("[metric.M1]\nthreshold = 0.2\n")
    return ["host", str(trace), "--thresholds", str(thresholds), "--json", str(thresholds)], thresholds


def _case_diff_json_is_target(tmp: Path) -> tuple[list[str], Path]:
    base, target = _copy(tmp, NSYS, "a.sqlite"), _copy(tmp, NSYS, "b.sqlite")
    return ["diff", str(base), str(target), "--json", str(_hardlink(tmp, "d.json", target))], target


def _case_overlap_json_is_trace(tmp: Path) -> tuple[list[str], Path]:
    trace = _copy(tmp, KINETO)
    return ["overlap", str(trace), "--json", str(trace)], trace


def _case_roofline_json_is_config(tmp: Path) -> tuple[list[str], Path]:
    config = _copy(tmp, CONFIG)
    return ["roofline", "--config", str(config), *THEORY, "--json", str(config)], config


def _case_report_html_is_from_report(tmp: Path) -> tuple[list[str], Path]:
    report = tmp / "r.json"
    assert run(["analyze", str(shared_file(KINETO)), "--json", str(report)]) == 0
    return ["report", "--from-report", str(report), "-o", str(_symlink(tmp, "r.html", report))], report


def _case_report_html_is_config(tmp: Path) -> tuple[list[str], Path]:
    trace, config = _copy(tmp, KINETO), _copy(tmp, CONFIG)
    return ["report", str(trace), "--config", str(config), *THEORY, "-o", str(config)], config


def _case_ncu_json_is_export(tmp: Path) -> tuple[list[str], Path]:
    export = _copy(tmp, NCU)
    return ["ncu", str(export), "--json", str(export)], export


def _case_ncu_plot_is_trace(tmp: Path) -> tuple[list[str], Path]:
    export, trace = _copy(tmp, NCU), _copy(tmp, KINETO)
    return ["ncu", str(export), "--trace", str(trace), "--plot", str(_symlink(tmp, "p.svg", trace))], trace


def _case_kb_lookup_json_is_report(tmp: Path) -> tuple[list[str], Path]:
    report = tmp / "r.json"
    assert run(["analyze", str(shared_file(KINETO)), "--json", str(report)]) == 0
    return [
        "kb",
        "lookup",
        "--report",
        str(report),
        "--kb",
        str(tmp / "kb.sqlite"),
        "--json",
        str(report),
    ], report


def _case_kb_lookup_json_is_kb(tmp: Path) -> tuple[list[str], Path]:
    report, kb = tmp / "r.json", tmp / "kb.sqlite"
    assert run(["analyze", str(shared_file(KINETO)), "--json", str(report)]) == 0
    assert run(["kb", "record", str(report), "--kb", str(kb)]) == 0
    return ["kb", "lookup", "--gpu", "A100", "--kb", str(kb), "--json", str(kb)], kb


def _case_verify_json_is_trace(tmp: Path) -> tuple[list[str], Path]:
    a, b = _copy(tmp, KINETO, "a.json.gz"), _copy(tmp, KINETO, "b.json.gz")
    return ["verify", "--baseline", str(a), "--candidate", str(b), "--no-kb", "--json", str(b)], b


def _case_agent_workdir_file_is_trace(tmp: Path) -> tuple[list[str], Path]:
    workdir = tmp / "work"
    workdir.mkdir()
    trace = _copy(workdir, KINETO, "report.json")  # the agent writes report.json in its workdir
    return ["agent", "--trace", str(trace), "--workdir", str(workdir), "--no-kb"], trace


OUTPUT_CASES: dict[str, Callable[[Path], tuple[list[str], Path]]] = {
    name.removeprefix("_case_"): fn for name, fn in globals().items() if name.startswith("_case_")
}


def test_every_output_option_is_covered() -> None:
    assert len(OUTPUT_CASES) >= 16


@pytest.mark.parametrize("name", sorted(OUTPUT_CASES))
def test_output_never_overwrites_an_input(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, protected = OUTPUT_CASES[name](tmp_path)
    capsys.readouterr()
    before = _digest(protected)
    code, _out, err = _run(argv, capsys)
    _one_error(code, err, "refusing to overwrite")
    assert _digest(protected) == before, "an input was written"


def test_distinct_outputs_are_still_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace, config = _copy(tmp_path, KINETO), _copy(tmp_path, CONFIG)
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    code, _out, err = _run(
        [
            "analyze",
            str(trace),
            "--config",
            str(config),
            *THEORY,
            "--json",
            str(out_json),
            "--md",
            str(out_md),
        ],
        capsys,
    )
    assert code == 0, err
    assert json.loads(out_json.read_text())["theory"] is not None and out_md.stat().st_size > 0


# ---------------------------------------------------------------- 2. knowledge base


def _nsys_kb(tmp: Path) -> Path:
    return _copy(tmp, NSYS, "report.sqlite")


def _text_kb(tmp: Path) -> Path:
    path = tmp / "notes.txt"
    path.write_text("my notes\n")
    return path


def _trace_kb(tmp: Path) -> Path:
    return _copy(tmp, KINETO)


def _dir_kb(tmp: Path) -> Path:
    path = tmp / "kbdir"
    path.mkdir()
    return path


KB_TARGETS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "nsys_export": (_nsys_kb, "not an infersight knowledge base"),
    "text_file": (_text_kb, "not an infersight knowledge base"),
    "kineto_trace": (_trace_kb, "not an infersight knowledge base"),
    "fifo": (_fifo, "named pipe"),
    "directory": (_dir_kb, "directory"),
}


@pytest.mark.parametrize("command", ["record", "lookup", "history"])
@pytest.mark.parametrize("target", sorted(KB_TARGETS))
def test_kb_refuses_a_file_that_is_not_a_knowledge_base(
    target: str, command: str, tmp_path: Path, report_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build, expected = KB_TARGETS[target]
    kb = build(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    digest = None if kb.is_dir() or kb.is_fifo() else _digest(kb)
    argv = {
        "record": ["kb", "record", str(report_json)],
        "lookup": ["kb", "lookup", "--gpu", "A100"],
        "history": ["kb", "history"],
    }[command]
    code, _out, err = _run([*argv, "--kb", str(kb)], capsys)
    _one_error(code, err, kb.name, expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "a -wal/-shm/-journal file appeared"
    if digest is not None:
        assert _digest(kb) == digest, "the file was modified"


def test_kb_empty_file_or_new_path_is_created(
    tmp_path: Path, report_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    for kb in (empty, tmp_path / "new" / "kb.sqlite"):
        code, out, err = _run(["kb", "record", str(report_json), "--kb", str(kb)], capsys)
        assert code == 0, err
        assert "recorded" in out
        code, out, err = _run(["kb", "lookup", "--report", str(report_json), "--kb", str(kb)], capsys)
        assert code == 0 and "Similar runs" in out, err


def _set_total(key: str, value: object) -> Callable[[dict], None]:
    def edit(document: dict) -> None:
        document["profile"]["total"][key] = value

    return edit


def _set_kernel(key: str, value: object) -> Callable[[dict], None]:
    def edit(document: dict) -> None:
        document["profile"]["kernels"][0][key] = value

    return edit


def _categories_not_objects(document: dict) -> None:
    document["profile"]["categories"] = [1, 2]


def _findings_not_a_list(document: dict) -> None:
    document["findings"] = {"id": "x"}


BAD_RECORDS: dict[str, tuple[Callable[[dict], None], str]] = {
    "wall_ns_2_pow_70": (_set_total("wall_ns", 2**70), "profile.total.wall_ns"),
    "wall_ns_negative": (_set_total("wall_ns", -5), "profile.total.wall_ns"),
    "wall_ns_fraction": (_set_total("wall_ns", 1.5), "profile.total.wall_ns"),
    "idle_ratio_text": (_set_total("idle_ratio", "high"), "profile.total.idle_ratio"),
    "kernel_total_ns_text": (_set_kernel("total_ns", "12"), "profile.kernels[0].total_ns"),
    "kernel_count_int64_overflow": (_set_kernel("count", 2**64), "profile.kernels[0].count"),
    "kernel_name_missing": (_set_kernel("name", None), "profile.kernels[0].operator"),
    "categories_not_objects": (_categories_not_objects, "profile.categories[0]"),
    "findings_not_a_list": (_findings_not_a_list, "findings"),
}


@pytest.mark.parametrize("name", sorted(BAD_RECORDS))
def test_kb_record_refuses_a_value_it_cannot_store(
    name: str, tmp_path: Path, report_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit, field = BAD_RECORDS[name]
    bad = _report_copy(tmp_path, report_json, edit)
    good = tmp_path / "good.json"
    shutil.copyfile(report_json, good)
    kb = tmp_path / "kb.sqlite"
    before = _digest(bad)
    code, out, err = _run(["kb", "record", str(good), str(bad), "--kb", str(kb)], capsys)
    _one_error(code, err, bad.name, field)
    assert out == "", "the good report was stored before the bad one was refused"
    assert _digest(bad) == before
    code, out, err = _run(["kb", "lookup", "--report", str(good), "--kb", str(kb)], capsys)
    assert code == 0 and "no stored run" in out, (out, err)


def _truncated(tmp: Path, report_json: Path) -> Path:
    out = tmp / "truncated.json"
    out.write_bytes(report_json.read_bytes()[:5000])
    return out


def _not_a_report(tmp: Path, report_json: Path) -> Path:
    out = tmp / "list.json"
    out.write_text(json.dumps([json.loads(report_json.read_text())]))
    return out


def _dev_zero(tmp: Path, report_json: Path) -> Path:
    return Path("/dev/zero")


def _fifo_report(tmp: Path, report_json: Path) -> Path:
    return _fifo(tmp, "report.json")


BAD_REPORT_FILES: dict[str, tuple[Callable[[Path, Path], Path], str]] = {
    "truncated_json": (_truncated, "JSON"),
    "wrong_schema": (_not_a_report, "report"),
    "dev_zero": (_dev_zero, "device"),
    "fifo": (_fifo_report, "named pipe"),
}


@pytest.mark.parametrize("name", sorted(BAD_REPORT_FILES))
def test_reports_read_back_are_checked(
    name: str, tmp_path: Path, report_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if name == "dev_zero" and not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    build, expected = BAD_REPORT_FILES[name]
    bad = build(tmp_path, report_json)
    marker = tmp_path / "ran"
    runs = {
        "kb record": ["kb", "record", str(bad), "--kb", str(tmp_path / "kb.sqlite")],
        "kb lookup --report": ["kb", "lookup", "--report", str(bad), "--kb", str(tmp_path / "kb.sqlite")],
        "report --from-report": ["report", "--from-report", str(bad), "-o", str(tmp_path / "r.html")],
        "verify --env": [
            "verify", "--baseline", f"touch {marker}", "--candidate", "true", "--repeats", "1",
            "--warmup", "0", "--no-kb", "--env", str(bad),
        ],
        "narrate": ["narrate", str(bad), "--llm-url", "http://127.0.0.1:9", "--llm-model", "m"],
    }  # fmt: skip
    for label, argv in runs.items():
        code, _out, err = _run(argv, capsys)
        assert code == 2, (label, err)
        _one_error(code, err, bad.name, expected)
    assert not marker.exists(), "verify ran the commands before checking --env"


def test_kb_lookup_and_history_skip_corrupt_rows_with_a_note(
    tmp_path: Path, report_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from infersight.kb.fingerprint import Fingerprint
    from infersight.kb.store import AbRecord, KnowledgeBase

    kb = tmp_path / "kb.sqlite"
    code, _out, err = _run(["kb", "record", str(report_json), "--kb", str(kb)], capsys)
    assert code == 0, err
    numbers = dict.fromkeys(
        ("baseline_median_s", "baseline_std_s", "candidate_median_s", "candidate_std_s", "baseline_cv"), 0.1
    )
    numbers |= dict.fromkeys(("candidate_cv", "gain", "gain_ci_low", "gain_ci_high"), 0.1)
    with KnowledgeBase.open(str(kb)) as store:
        for _ in range(2):
            store.record_ab(
                AbRecord(
                    recommendation_type="gpu_idle", fingerprint=Fingerprint(gpu="A100"), mode="traces",
                    baseline="a", candidate="b", repeats=3, warmup=0, verdict="improved",
                    samples={"baseline": [1.0], "candidate": [0.9]}, **numbers,
                )
            )  # fmt: skip
    conn = sqlite3.connect(kb)  # rows an older infersight (or a hand edit) could have left behind
    try:
        columns = "run_key, version, content_digest, created_at, label, fingerprint_json, wall_ns"
        copy = f"INSERT INTO runs ({columns}) SELECT run_key || ?, 1, 'x', created_at, ?, fingerprint_json, ?"
        conn.execute(copy + " FROM runs WHERE id = 1", ("big", "huge wall", float(2**70)))
        conn.execute(copy + " FROM runs WHERE id = 1", ("txt", "text wall", "abc"))
        conn.execute(
            f"INSERT INTO runs ({columns}) SELECT run_key || 'fp', 1, 'x', created_at, 'bad fp', '{{no', 1 "
            "FROM runs WHERE id = 1"
        )
        conn.execute("UPDATE ab_results SET samples_json = '{broken' WHERE id = 1")
        conn.commit()
    finally:
        conn.close()
    out_json = tmp_path / "lookup.json"
    code, out, err = _run(
        ["kb", "lookup", "--report", str(report_json), "--kb", str(kb), "--json", str(out_json)], capsys
    )
    assert code == 0, err
    assert "hta_alexnet_a100.json.gz" in out, "the good run is still found"
    notes = [line for line in err.splitlines() if "left out" in line]
    assert len(notes) == 3, err
    assert len(json.loads(out_json.read_text())["skipped"]) == 3
    code, out, err = _run(["kb", "history", "--kb", str(kb)], capsys)
    assert code == 0, err
    assert "A/B results" in out and len([line for line in err.splitlines() if "left out" in line]) == 1


def test_damaged_knowledge_base_is_one_line(
    tmp_path: Path, report_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kb = tmp_path / "kb.sqlite"
    assert _run(["kb", "record", str(report_json), "--kb", str(kb)], capsys)[0] == 0
    for suffix in ("-wal", "-shm"):
        Path(f"{kb}{suffix}").unlink(missing_ok=True)
    data = bytearray(kb.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    for i in range(page, min(3 * page, len(data))):  # the pages after the schema page
        data[i] ^= 0xFF
    kb.write_bytes(bytes(data))
    for argv in (["kb", "lookup", "--gpu", "A100"], ["kb", "record", str(report_json)], ["kb", "history"]):
        code, _out, err = _run([*argv, "--kb", str(kb)], capsys)
        _one_error(code, err, "knowledge base")


# ---------------------------------------------------------------- 3. thresholds files

THRESHOLDS: dict[str, tuple[bytes, str]] = {
    "bad_regex": (b'[iterations]\nstep_pattern = "("\n', "iterations.step_pattern"),
    "nan": (b"[metric.M1]\nthreshold = nan\n", "metric.M1.threshold"),
    "inf": (b"[metric.M1]\nthreshold = inf\n", "metric.M1.threshold"),
    "phase_minus_inf": (b"[phase.generation.M4]\nthreshold = -inf\n", "phase.generation.M4.threshold"),
    "threshold_text": (b'[metric.M2]\nthreshold = "high"\n', "metric.M2.threshold"),
    "comparison": (b'[metric.M2]\ncomparison = ">="\n', "metric.M2.comparison"),
    "negative_ns": (b"[iterations]\ndedup_window_ns = -5\n", "iterations.dedup_window_ns"),
    "zero_factor": (b"[iterations]\nwarmup_factor = 0\n", "iterations.warmup_factor"),
    "pattern_int": (b"[host_prep]\npattern = 3\n", "host_prep.pattern"),
    "causes_not_list": (b"[drilldown]\nbucket_causes = 3\n", "drilldown.bucket_causes"),
    "edges_descending": (b"[drilldown]\nbucket_edges_ns = [5, 1]\n", "drilldown.bucket_edges_ns"),
    "section_not_table": (b"metric = 3\n", "metric"),
    "misspelt_key": (b"[iterations]\nstep_patern = 'x'\n", "iterations.step_patern"),
    "latin1": ('[metric.M1]\nname = "GPU idle \u00e9"\n'.encode("latin-1"), "UTF-8"),
    "not_toml": (b"[metric.M1\nthreshold = 1\n", "TOML"),
}


@pytest.mark.parametrize("name", sorted(THRESHOLDS))
def test_thresholds_file_errors_name_the_key(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, key = THRESHOLDS[name]
    path = tmp_path / "thresholds.toml"
    path.write_bytes(content)
    trace = _copy(tmp_path, NSYS)
    for argv in (["host", str(trace)], ["diff", str(trace), str(trace)]):
        code, _out, err = _run([*argv, "--thresholds", str(path)], capsys)
        _one_error(code, err, path.name, key)
    assert path.read_bytes() == content


@pytest.mark.parametrize("special", ["dev_zero", "fifo"])
def test_thresholds_file_must_be_a_regular_file(
    special: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if special == "dev_zero" and not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    path = Path("/dev/zero") if special == "dev_zero" else _fifo(tmp_path)
    code, _out, err = _run(["host", str(shared_file(NSYS)), "--thresholds", str(path)], capsys)
    _one_error(code, err, path.name, "device" if special == "dev_zero" else "named pipe")


# ---------------------------------------------------------------- 5. escape sequences never reach the output


def _evil_kineto(tmp: Path) -> Path:
    with gzip.open(shared_file(KINETO), "rb") as fh:
        document = json.loads(fh.read())
    events = document["traceEvents"]
    kernels = [e for e in events if e.get("cat") == "kernel" and e.get("ph") == "X"]
    annotations = [e for e in events if e.get("cat") in ("user_annotation", "gpu_user_annotation")]
    assert kernels and annotations
    for event in (*kernels[:20], *annotations):
        event["name"] = EVIL + event["name"]
    out = tmp / "evil.json"
    out.write_text(json.dumps(document))
    return out


def _evil_nsys(tmp: Path) -> Path:
    out = _copy(tmp, NSYS, "evil.sqlite")
    conn = sqlite3.connect(out)
    try:
        conn.execute(
            "UPDATE StringIds SET value = ? || value WHERE id IN (SELECT demangledName FROM "
            "CUPTI_ACTIVITY_KIND_KERNEL UNION SELECT shortName FROM CUPTI_ACTIVITY_KIND_KERNEL "
            "UNION SELECT textId FROM NVTX_EVENTS WHERE textId IS NOT NULL)",
            (EVIL,),
        )
        conn.execute("UPDATE NVTX_EVENTS SET text = ? || text WHERE text IS NOT NULL", (EVIL,))
        conn.commit()
    finally:
        conn.close()
    return out


def _assert_clean(text: str, where: str, *, shown: bool = True) -> None:
    for char in ("\x1b", "\x07", "\x9b", "\r"):
        assert char not in text, f"{char!r} reached {where}"
    if shown:  # the hostile name is still shown, made harmless
        assert "pwned" in text, f"the hostile name is not shown at all in {where}"


@pytest.mark.parametrize("build", [_evil_kineto, _evil_nsys], ids=["kineto", "nsys"])
def test_control_characters_never_reach_terminal_markdown_or_html(
    build: Callable[[Path], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = build(tmp_path)
    md, html, js = tmp_path / "r.md", tmp_path / "r.html", tmp_path / "r.json"
    code, out, err = _run(["analyze", str(trace), "--md", str(md), "--json", str(js)], capsys)
    assert code == 0, err
    _assert_clean(out, "analyze (terminal)")
    _assert_clean(md.read_text(), "analyze --md")
    names = [k["full_name"] for k in json.loads(js.read_text())["profile"]["kernels"]]
    assert any(EVIL in name for name in names), "JSON must keep the exact strings"
    code, out, err = _run(["host", str(trace)], capsys)
    assert code == 0, err
    _assert_clean(out, "host", shown=False)
    code, out, err = _run(["report", str(trace), "-o", str(html), "--no-layers"], capsys)
    assert code == 0, err
    _assert_clean(html.read_text(), "report (HTML)")


def test_error_line_is_sanitised(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hostile = tmp_path / f"trace{EVIL}.json"
    code, _out, err = _run(["analyze", str(hostile)], capsys)
    line = _one_error(code, err)
    assert "\x1b" not in line and "\x07" not in line


# ---------------------------------------------------------------- 6. exit codes and one line


CLI_ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
# The full device and the closed pipe are checked in this process (the CLI's guarded standard
# output: one line, or a quiet end) and, slow, in a child process: the interpreter's own final
# flush of what could not be written must not add a second error there.


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_stdout_on_a_full_device_is_one_line_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    with open("/dev/full", "w") as full, contextlib.redirect_stdout(full):
        code = run(["analyze", str(shared_file(KINETO))])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    _one_error(code, err, "cannot write output: No space left on device")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_stdout_on_a_full_device_is_one_line() -> None:
    with open("/dev/full", "wb") as full:
        done = subprocess.run(
            [sys.executable, "-m", "infersight", "analyze", str(shared_file(KINETO))],
            env=CLI_ENV, stdout=full, stderr=subprocess.PIPE, timeout=300, check=False,
        )  # fmt: skip
    err = done.stderr.decode()
    assert "Traceback" not in err
    _one_error(done.returncode, err, "cannot write output: No space left on device")


def test_json_to_a_full_device_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    code, _out, err = _run(["analyze", str(shared_file(KINETO)), "--json", "/dev/full"], capsys)
    _one_error(code, err, "/dev/full", "No space left on device")


def test_closed_pipe_ends_quietly_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    reader, writer = os.pipe()
    os.close(reader)  # the reader goes away before the report is printed (`| head -0`)
    with os.fdopen(writer, "w") as pipe, contextlib.redirect_stdout(pipe):
        code = run(["analyze", str(shared_file(KINETO))])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.err.strip() == "", captured.err


@pytest.mark.slow
def test_closed_pipe_ends_quietly() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "infersight", "analyze", str(shared_file(KINETO))],
        env=CLI_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader goes away before the report is printed (`| head -0`)
    err = process.stderr.read().decode()
    assert process.wait(timeout=300) == 0, err
    assert err.strip() == "", err


def test_verify_failing_command_prints_only_its_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = _run(
        [
            "verify",
            "--baseline",
            "false",
            "--candidate",
            "true",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--no-kb",
        ],
        capsys,
    )
    _one_error(code, err, "command exited 1")


def test_kb_record_refuses_an_override_beyond_int64(
    tmp_path: Path, report_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kb = tmp_path / "kb.sqlite"
    code, _out, err = _run(["kb", "record", str(report_json), "--kb", str(kb), "--tp", str(2**64)], capsys)
    # the CLI's numeric-option guard refuses it first (the KB's own record check backs it up)
    _one_error(code, err, "--tp", "larger than")
    assert not kb.exists() or kb.stat().st_size == 0 or "fingerprint" not in err


def test_ncu_plan_comment_cannot_start_a_shell_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with gzip.open(shared_file(KINETO), "rb") as fh:
        document = json.loads(fh.read())
    kernels = [e for e in document["traceEvents"] if e.get("cat") == "kernel" and e.get("ph") == "X"]
    for event in kernels:  # every kernel, so the focus set (top by time) holds the hostile name
        event["name"] = event["name"] + "\ntouch /tmp/pwned #" + EVIL
    trace = tmp_path / "trace.json"
    trace.write_text(json.dumps(document))
    code, out, err = _run(["ncu-plan", str(trace)], capsys)
    assert code == 0, err
    for line in out.splitlines():  # a comment, a quoted ncu command, or blank: nothing else runs
        assert line.startswith(("#", "ncu ")) or not line.strip(), line
    _assert_clean(out, "ncu-plan", shown=False)


def test_layers_json_and_text_on_stdout_carry_no_control_character(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = _evil_kineto(tmp_path)
    base = ["layers", str(trace), "--num-layers", "5", "--anchor-kernel", "relu"]
    code, out, err = _run([*base, "--format", "json"], capsys)
    assert code == 0, err
    _assert_clean(out, "layers --format json")
    parsed = json.dumps(json.loads(out), ensure_ascii=False)
    assert "\x9b31m" in parsed, "the JSON strings are still exact once parsed (C1 escaped, not lost)"
    code, out, err = _run([*base, "--format", "text"], capsys)
    assert code == 0, err
    _assert_clean(out, "layers (terminal)", shown=False)


def test_agent_workdir_inside_the_trace_folder_is_not_an_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No false refusal: a trace folder is read one level deep, so a work directory nested in it
    (with the report.json of a previous run) holds no input; the rerun resumes."""
    folder = tmp_path / "traces"
    folder.mkdir()
    _copy(folder, KINETO)
    argv = ["agent", "--trace", str(folder), "--workdir", str(folder / "agent"), "--no-kb"]
    for _ in range(2):
        code, _out, err = _run(argv, capsys)
        assert code == 0, err
    assert (folder / "agent" / "report.json").is_file()
