"""A/B comparability: different GPUs are refused (or marked), identical re-runs add no evidence,
GPU names match through the spec table, and ``kb history`` shows paths that can be told apart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.agent._support import write_step_trace
from tests.conftest import shared_file

from infersight.cli import run
from infersight.kb.confidence import distinct_evidence, recommendation_confidence
from infersight.kb.fingerprint import Fingerprint, environment_differences, gpu_match
from infersight.kb.store import KnowledgeBase

BASE_US = [100, 100, 101, 99, 100, 100]
CAND_US = [80, 80, 81, 79, 80, 80]


def test_verify_across_gpus_on_real_traces_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    v100 = shared_file("kineto/hta_ns_resolution_v100_rank0.pt.trace.json.gz")
    a100 = shared_file("kineto/hta_alexnet_a100.json.gz")
    code = run(["verify", "--baseline", str(v100), "--candidate", str(a100), "--no-kb"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "different environments (gpu: Tesla V100-SXM2-32GB vs NVIDIA A100-PG509-200" in err
    assert "--allow-env-change" in err


def test_allow_env_change_marks_and_never_stores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, cand = tmp_path / "v100.json", tmp_path / "a100.json"
    write_step_trace(base, BASE_US, gpu="Tesla V100-SXM2-16GB")
    write_step_trace(cand, CAND_US, gpu="NVIDIA A100-SXM4-40GB")
    kb, out = tmp_path / "kb.sqlite", tmp_path / "v.json"
    argv = ["verify", "--baseline", str(base), "--candidate", str(cand), "--kb", str(kb), "--json", str(out)]
    assert run(argv) == 2
    capsys.readouterr()
    assert run([*argv, "--allow-env-change"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("WARNING: NOT COMPARABLE") and "gpu: Tesla V100-SXM2-16GB" in printed
    data = json.loads(out.read_text())
    assert data["schema_version"] == "1.1" and data["result"]["comparable"] is False
    assert data["result"]["environment_differences"] == ["gpu: Tesla V100-SXM2-16GB vs NVIDIA A100-SXM4-40GB"]
    assert data["result"]["reason"].startswith("NOT COMPARABLE") and data["stored_ab_id"] is None
    with KnowledgeBase.open(str(kb)) as store:
        assert store.count("ab_results") == 0


def test_same_gpu_different_board_names_are_comparable(tmp_path: Path) -> None:
    base, cand = tmp_path / "a.json", tmp_path / "b.json"
    write_step_trace(base, BASE_US, gpu="NVIDIA A100-PG509-200")
    write_step_trace(cand, CAND_US, gpu="NVIDIA A100-SXM4-40GB")
    assert run(["verify", "--baseline", str(base), "--candidate", str(cand), "--no-kb"]) == 0


def test_identical_verify_rerun_leaves_confidence_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, cand = tmp_path / "base.json", tmp_path / "cand.json"
    write_step_trace(base, BASE_US, gpu="NVIDIA H100 80GB HBM3")
    write_step_trace(cand, CAND_US, gpu="NVIDIA H100 80GB HBM3")
    kb, out = tmp_path / "kb.sqlite", tmp_path / "v.json"
    argv = ["verify", "--baseline", str(base), "--candidate", str(cand), "--kb", str(kb)]
    argv += ["--recommendation", "cuda_graphs", "--json", str(out)]
    assert run(argv) == 0
    first = json.loads(out.read_text())
    assert run(argv) == 0
    second = json.loads(out.read_text())
    assert "not stored again: identical to A/B result" in second["kb_note"]
    assert second["confidence"]["score"] == first["confidence"]["score"]
    assert second["confidence"]["history_count"] == 1
    assert first["fingerprint"]["gpu"] == "NVIDIA H100 80GB HBM3"  # the traces say which GPU
    with KnowledgeBase.open(str(kb)) as store:
        assert store.count("ab_results") == 1


def test_versions_of_one_ab_count_once(tmp_path: Path) -> None:
    """Re-running the same command A/B stores version 2 (new samples), but it is not new evidence."""
    with KnowledgeBase.open(str(tmp_path / "kb.sqlite")) as store:
        from infersight.kb.store import AbRecord

        fingerprint = Fingerprint(gpu="H100", gpu_count=1)
        for samples in ([1.0, 1.01, 0.99], [1.0, 1.02, 0.98]):
            store.record_ab(
                AbRecord(
                    recommendation_type="cuda_graphs",
                    fingerprint=fingerprint,
                    mode="command",
                    baseline="python serve.py",
                    candidate="python serve.py --graphs",
                    repeats=3,
                    warmup=0,
                    baseline_median_s=1.0,
                    baseline_std_s=0.01,
                    candidate_median_s=0.8,
                    candidate_std_s=0.01,
                    baseline_cv=0.01,
                    candidate_cv=0.01,
                    gain=0.2,
                    gain_ci_low=0.18,
                    gain_ci_high=0.22,
                    verdict="improved",
                    samples={"baseline": samples, "candidate": [0.8, 0.8, 0.8]},
                )
            )
        history = store.ab_history("cuda_graphs")
    assert [ab.version for ab in history] == [1, 2]
    assert [ab.version for ab in distinct_evidence(history)] == [2]
    once = recommendation_confidence(fingerprint, history[:1], sample_cv=0.0)
    twice = recommendation_confidence(fingerprint, history, sample_cv=0.0)
    assert twice.score == once.score and twice.history_count == 1


def test_gpu_names_match_through_the_spec_table() -> None:
    assert gpu_match("A100", "NVIDIA A100-PG509-200") == 1.0
    assert gpu_match("H100", "NVIDIA H100 80GB HBM3") == 1.0
    assert gpu_match("NVIDIA A100-SXM4-40GB", "NVIDIA A100-SXM4-80GB") == 0.9
    assert gpu_match("Tesla V100-SXM2-16GB", "Tesla V100-SXM2-32GB") == 1.0  # same rates and bandwidth
    assert gpu_match("V100", "A100") == 0.0
    differences = environment_differences(
        Fingerprint(gpu="V100", gpu_count=1), Fingerprint(gpu="A100", gpu_count=8)
    )
    assert differences == ["gpu: V100 vs A100", "gpu_count: 1 vs 8"]


def test_kb_lookup_gpu_a100_finds_the_pg509_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report, kb, out = tmp_path / "r.json", tmp_path / "kb.sqlite", tmp_path / "lookup.json"
    assert run(["analyze", str(shared_file("kineto/hta_alexnet_a100.json.gz")), "--json", str(report)]) == 0
    assert run(["kb", "record", str(report), "--kb", str(kb)]) == 0
    assert run(["kb", "lookup", "--gpu", "A100", "--kb", str(kb), "--json", str(out)]) == 0
    lookup = json.loads(out.read_text())
    assert lookup["schema_version"] == "1.1"
    match = lookup["matches"][0]
    assert match["fingerprint"]["gpu"] == "NVIDIA A100-PG509-200"
    assert match["similarity"]["env"] == 1.0 and match["similarity"]["score"] > 0.0


def test_kb_history_shows_the_part_of_each_path_that_differs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "a_rather_long_folder_name_of_the_team" / "llm_serving_runs_december"
    folder.mkdir(parents=True)
    base, cand = folder / "baseline_eager_run.json", folder / "candidate_graphs_run.json"
    write_step_trace(base, BASE_US)
    write_step_trace(cand, CAND_US)
    kb = str(tmp_path / "kb.sqlite")
    assert run(["verify", "--baseline", str(base), "--candidate", str(cand), "--kb", kb]) == 0
    monkeypatch.setenv("COLUMNS", "150")  # too narrow for two full paths side by side
    capsys.readouterr()
    assert run(["kb", "history", "--kb", kb]) == 0
    out = capsys.readouterr().out
    assert "…/baseline_eager_run.json" in out and "…/candidate_graphs_run.json" in out
    history_json = tmp_path / "history.json"
    assert run(["kb", "history", "--kb", kb, "--json", str(history_json)]) == 0
    history = json.loads(history_json.read_text())
    assert history["schema_version"] == "1.0" and history["recommendation_type"] is None
    assert [(r["baseline"], r["candidate"], r["version"]) for r in history["results"]] == [
        (str(base), str(cand), 1)
    ]
    assert run(["kb", "history", "--kb", kb, "--json", kb]) == 2  # never over the knowledge base


def test_distinguishing_parts() -> None:
    from infersight.render.kb import distinguishing_parts

    assert distinguishing_parts("/d/x/a.json", "/d/x/b.json") == ("…/a.json", "…/b.json")
    assert distinguishing_parts("python a.py", "python b.py") == ("python a.py", "python b.py")
    assert distinguishing_parts("/d/a.json", "/e/a.json") == ("/d/a.json", "/e/a.json")
