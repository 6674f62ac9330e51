"""``infersight agent``: the methodology §7 loop, one logged, resumable step at a time.

KB lookup -> theory inputs (asks for the config when missing) -> global profile with the
estimate and measured vs theory -> focus set -> ncu (reads the given exports, else writes the
plan and the command to run) -> rules (+ narrator) -> report (JSON, Markdown, HTML) -> suggested
A/B commands -> write-back to the knowledge base.

Every step appends one JSON line to ``WORKDIR/agent_log.jsonl`` and the state to
``WORKDIR/agent_state.json``; rerunning with the same work directory skips the steps already
done (their artifacts are files in the work directory), so an interrupted or failed run resumes
where it stopped. Changing an input (say, adding ``--ncu`` exports after running the plan)
re-runs the first step that reads it (``STEP_INPUTS``) and every step after it. A step that
cannot run (no config, no ncu data, no LLM) is recorded as
``needs_input`` or ``skipped`` with the reason, and the loop goes on with what it has.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, Field

from infersight.advisor.profiling import PLAN_PLACEHOLDER
from infersight.analysis_report import AnalysisReport
from infersight.errors import InputError
from infersight.kb import MissingDependencyError
from infersight.model import Trace
from infersight.theory.scenario_check import ScenarioUnreadable

__all__ = ["AGENT_STATE_SCHEMA_VERSION", "STEPS", "AgentInputs", "AgentState", "StepRecord", "run_agent"]

# MAJOR.MINOR of agent_state.json: a new optional field bumps the minor, a breaking change the major.
AGENT_STATE_SCHEMA_VERSION = "1.0"
FOCUS_SCHEMA_VERSION = "1.0"  # focus.json: {"schema_version", "method", "items"}

STEPS = (
    "kb_lookup",
    "theory_inputs",
    "profile",
    "measured_vs_theory",
    "focus",
    "ncu",
    "rules",
    "narrate",
    "report",
    "ab_plan",
    "kb_record",
)
StepStatus = Literal["done", "skipped", "needs_input", "failed"]
_PROFILE_INPUTS = frozenset(
    {"traces", "model", "config", "gpu", "batch", "prompt", "context", "tp", "dtype", "window_nvtx"}
)
# The inputs each step reads: changing one re-runs that step and every step after it.
STEP_INPUTS: dict[str, frozenset[str]] = {
    "kb_lookup": frozenset({"model", "gpu", "dtype", "tp", "batch", "prompt", "context", "kb", "use_kb"}),
    "theory_inputs": frozenset({"model", "config", "batch", "prompt"}),
    "profile": _PROFILE_INPUTS,
    "measured_vs_theory": _PROFILE_INPUTS,
    "focus": _PROFILE_INPUTS,
    "ncu": frozenset({"ncu", "app_command"}),
    "rules": frozenset({"ncu"}),
    "narrate": frozenset({"llm_url", "llm_model"}),
    "report": frozenset(),
    "ab_plan": frozenset({"app_command"}),
    "kb_record": frozenset({"kb", "use_kb"}),
}
STATE_FILE = "agent_state.json"
LOG_FILE = "agent_log.jsonl"
# Every file the agent writes in its work directory; the CLI refuses a run where one of them is
# an input (a trace, config or ncu export kept in the work directory under the same name).
WORKDIR_FILES = (
    STATE_FILE,
    LOG_FILE,
    "kb_lookup.json",
    "report.json",
    "focus.json",
    "ncu.json",
    "ncu_plan.json",
    "findings.json",
    "narration.json",
    "report.md",
    "report.html",
    "ab_plan.json",
)


class AgentInputs(BaseModel):
    """Everything the loop was asked to do; a resumed run must have the same inputs."""

    traces: list[str]
    model: str | None = None
    config: str | None = None
    gpu: str | None = None
    batch: int | None = None
    prompt: int | None = None
    context: int | None = None
    tp: int = 1
    dtype: str | None = None
    ncu: list[str] = Field(default_factory=list)
    window_nvtx: str | None = None
    kb: str | None = None
    use_kb: bool = True
    llm_url: str | None = None
    llm_model: str | None = None
    app_command: str | None = Field(default=None, description="the inference command, for ncu and A/B lines")


class StepRecord(BaseModel):
    """The outcome of one step."""

    name: str
    status: StepStatus
    message: str
    started_at: str
    finished_at: str
    artifacts: list[str] = Field(default_factory=list)


class AgentState(BaseModel):
    """What ``agent_state.json`` holds."""

    schema_version: str = AGENT_STATE_SCHEMA_VERSION
    inputs: AgentInputs
    workdir: str
    steps: dict[str, StepRecord] = Field(default_factory=dict)


ProgressFn = Callable[[int, int, str], None]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class _Run:
    """One execution of the loop over a work directory (holds lazily loaded traces and the report)."""

    def __init__(self, inputs: AgentInputs, workdir: Path, state: AgentState) -> None:
        self.inputs = inputs
        self.workdir = workdir
        self.state = state
        self._traces: list[Trace] | None = None
        self._report: AnalysisReport | None = None

    # -------------------------------------------------------------- shared data
    def path(self, name: str) -> Path:
        return self.workdir / name

    def write_json(self, name: str, data: Any) -> str:
        self.path(name).write_bytes(
            orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
        )
        return name

    def traces(self) -> list[Trace]:
        if self._traces is None:
            from infersight import api

            self._traces = api.load([Path(t) for t in self.inputs.traces])
        return self._traces

    def report(self) -> AnalysisReport:
        if self._report is None:
            file = self.path("report.json")
            if not file.exists():
                raise InputError(file, "missing: the profile step has not produced the report yet")
            self._report = AnalysisReport.model_validate_json(file.read_bytes())
        return self._report

    def theory_request(self, *, assume_scenario: bool = False) -> Any:
        """The theory request of the inputs. Without --batch/--prompt the theory run reads the scenario
        from the trace; only when the trace cannot tell it (``assume_scenario``) does the workflow
        assume batch 1, prompt 512 and say so, so it continues where the CLI would stop."""
        from infersight import api

        i = self.inputs
        return api.theory_request(
            api.AnalyzeRequest.of(
                traces=[Path(t) for t in i.traces],
                model=i.model,
                config=Path(i.config) if i.config else None,
                gpu=i.gpu,
                dtype=i.dtype,
                batch=(i.batch or 1) if assume_scenario else i.batch,
                prompt=(i.prompt or 512) if assume_scenario else i.prompt,
                context=i.context,
                tp=i.tp,
            )
        )

    # -------------------------------------------------------------- steps
    def kb_lookup(self) -> tuple[StepStatus, str, list[str]]:
        if not self.inputs.use_kb:
            return "skipped", "knowledge base disabled (--no-kb)", []
        from infersight.kb.lookup import kb_lookup

        i = self.inputs
        fields = {
            "model": i.model,
            "gpu": i.gpu,
            "dtype": i.dtype,
            "tp": i.tp if i.tp > 1 else None,
            "batch": i.batch,
            "prompt_len": i.prompt,
            "context_len": i.context,
        }
        result = kb_lookup(kb=i.kb, overrides={k: v for k, v in fields.items() if v is not None})
        return "done", result.summary, [self.write_json("kb_lookup.json", result.model_dump(mode="json"))]

    def theory_inputs(self) -> tuple[StepStatus, str, list[str]]:
        i = self.inputs
        if i.model is None and i.config is None:
            return (
                "needs_input",
                "no model config: give --model NAME (a built-in model) or --config config.json, "
                "with --batch and "
                "--prompt, to compare the run with the roofline theory; continuing without theory",
                [],
            )
        missing = [name for name, value in (("--batch", i.batch), ("--prompt", i.prompt)) if value is None]
        note = f" ({', '.join(missing)} not given: read from the trace)" if missing else ""
        return "done", f"theory for {i.model or i.config}{note}", []

    def profile(self) -> tuple[StepStatus, str, list[str]]:
        from infersight import api
        from infersight.render.json_report import render_json

        assumed = ""
        try:
            report = api.report_from_traces(
                self.traces(), window_nvtx=self.inputs.window_nvtx, theory=self.theory_request()
            )
        except ScenarioUnreadable:
            report = api.report_from_traces(
                self.traces(),
                window_nvtx=self.inputs.window_nvtx,
                theory=self.theory_request(assume_scenario=True),
            )
            assumed = "; the trace does not tell the scenario: assumed batch 1, prompt 512 for theory"
        self._report = report
        self.path("report.json").write_text(render_json(report))
        total = report.profile.total
        return (
            "done",
            f"{len(report.profile.devices)} device(s), wall {total.wall_ns / 1e6:.3f} ms, "
            f"busy {total.utilization:.1%}, "
            f"{len(report.findings)} finding(s){assumed}",
            ["report.json"],
        )

    def measured_vs_theory(self) -> tuple[StepStatus, str, list[str]]:
        theory = self.report().theory
        if theory is None:
            return "skipped", "no theory (no model config)", []
        est = theory.estimate
        message = f"theory TTFT {est.ttft_s * 1e3:.3g} ms, TPOT {est.tpot_s * 1e3:.3g} ms on {est.gpu}"
        if theory.measured is not None:
            low = [r for r in theory.measured.rows if r.e_roof is not None and r.e_roof < 0.3]
            message += f"; {len(low)} of {len(theory.measured.rows)} (phase, category) rows below E_roof 0.3"
        return "done", message, []

    def focus(self) -> tuple[StepStatus, str, list[str]]:
        report = self.report()
        if report.theory is not None and report.theory.focus is not None:
            items = [item.model_dump(mode="json") for item in report.theory.focus.items]
            method = "TopK(time) ∪ {E_roof < τ_E}"
        else:
            items = [
                {
                    "kernel": k.name,
                    "category": k.category,
                    "total_ns": k.total_ns,
                    "share": k.share,
                    "reasons": ["top_time"],
                }
                for k in report.profile.kernels[:5]
            ]
            method = "Top-5 kernels by GPU time (no theory for E_roof)"
        names = ", ".join(str(item["kernel"])[:60] for item in items[:3])
        return (
            "done",
            f"{len(items)} focus kernel(s) by {method}: {names}",
            [
                self.write_json(
                    "focus.json", {"schema_version": FOCUS_SCHEMA_VERSION, "method": method, "items": items}
                )
            ],
        )

    def ncu(self) -> tuple[StepStatus, str, list[str]]:
        if self.inputs.ncu:
            from infersight import api

            # through the API, as `infersight ncu` and the MCP tool: the same reading, matching and
            # device check; the traces and the report (its window and theory) are this run's own
            request = api.NcuRequest.of(exports=[Path(p) for p in self.inputs.ncu], gpu=self.inputs.gpu)
            ncu_report = api.ncu(request, loaded=self.traces(), trace_report=self.report()).report
            warnings = ncu_report.device_warnings
            message = f"{len(ncu_report.kernels)} kernel(s) profiled, {len(ncu_report.findings)} finding(s)"
            data = ncu_report.model_dump(mode="json")
            return (
                "done",
                "; ".join([*(f"WARNING: {w}" for w in warnings), message]),
                [self.write_json("ncu.json", data)],
            )
        from infersight.api import kernel_names
        from infersight.ncu.plan import build_plan

        report = self.report()
        if not report.profile.kernels:
            return "skipped", "no GPU kernels: nothing to profile with ncu", []
        names = kernel_names(self.traces())
        app = self.inputs.app_command or PLAN_PLACEHOLDER
        plan = build_plan(report, names, app=app)
        plan_file = self.write_json("ncu_plan.json", plan.model_dump(mode="json"))
        run_line = shlex.join(["infersight", "profile", "--ncu", "--plan", str(self.path(plan_file))])
        if not self.inputs.app_command:  # the plan keeps the placeholder: the command goes after --
            run_line += f" -- {PLAN_PLACEHOLDER}"
        return "needs_input", f"no ncu data: run `{run_line}`, then rerun with --ncu the CSVs", [plan_file]

    def findings(self) -> list[Any]:
        found = list(self.report().findings)
        if self.path("ncu.json").exists():
            from infersight.ncu.results import NcuReport

            found += NcuReport.model_validate_json(self.path("ncu.json").read_bytes()).findings
        return found

    def rules(self) -> tuple[StepStatus, str, list[str]]:
        found = self.findings()
        by_severity = {s: sum(1 for f in found if f.severity == s) for s in ("critical", "warning", "info")}
        return (
            "done",
            f"{len(found)} finding(s): {by_severity}",
            [self.write_json("findings.json", [f.model_dump(mode="json") for f in found])],
        )

    def narrate(self) -> tuple[StepStatus, str, list[str]]:
        i = self.inputs
        if not i.llm_url:
            return "skipped", "no --llm-url: the rules' own text is the report", []
        if not i.llm_model:
            return "needs_input", "--llm-url given without --llm-model", []
        from infersight.advisor.narrator import narrate

        narration = narrate(self.findings(), url=i.llm_url, model=i.llm_model)
        data = {**narration.model_dump(mode="json"), "text": narration.text}
        return (
            "done",
            f"{len(narration.kept)} sentence(s) kept, {len(narration.dropped)} dropped (flagged)",
            [self.write_json("narration.json", data)],
        )

    def report_files(self) -> tuple[StepStatus, str, list[str]]:
        from infersight.api.html_data import html_extras
        from infersight.render.markdown import render_markdown

        report = self.report()
        markdown = render_markdown(report)
        narration_file = self.path("narration.json")
        if narration_file.exists():
            narration = orjson.loads(narration_file.read_bytes())
            markdown += (
                "\n## Narrative (LLM, checked against the evidence)\n\n"
                + (narration["text"] or "(empty)")
                + "\n"
            )
            for dropped in narration["dropped"]:
                markdown += f"\n- dropped: {dropped['text']} — {dropped['reason']}"
        self.path("report.md").write_text(markdown)
        artifacts = ["report.md"]
        try:
            from infersight.render.html import render_html

            extras = html_extras(self.traces(), window_nvtx=self.inputs.window_nvtx)
            if narration_file.exists():
                from infersight.advisor.narrator import Narration

                extras.narration = Narration.model_validate_json(narration_file.read_bytes())
            html = render_html(report, extras)
        except InputError as exc:  # jinja2 missing: the Markdown and JSON reports still stand
            return "done", f"report.md written; HTML skipped: {exc.one_line()}", artifacts
        self.path("report.html").write_text(html)
        return "done", "report.md and report.html written", [*artifacts, "report.html"]

    def ab_plan(self) -> tuple[StepStatus, str, list[str]]:
        from infersight.agent.recipes import serving_recipe

        app = self.inputs.app_command or PLAN_PLACEHOLDER
        env = str(self.path("report.json"))
        lines = []
        for finding in self.findings():
            entry: dict[str, Any] = {
                "finding": finding.id,
                "title": finding.title,
                "advice": finding.advice[:1],
            }
            recipe = serving_recipe(app, recommendation=finding.type, env_report=env)
            if recipe is not None:  # a server never exits: time the engine's benchmark client instead
                entry |= recipe.model_dump()
            else:
                entry["verify"] = shlex.join(
                    ["infersight", "verify", "--baseline", app, "--candidate", f"{app} <with the change>",
                     "--repeats", "5", "--warmup", "1", "--recommendation", finding.type, "--env", env]
                )  # fmt: skip
            entry["also"] = finding.verification
            lines.append(entry)
        return "done", f"{len(lines)} A/B command(s) suggested", [self.write_json("ab_plan.json", lines)]

    def kb_record(self) -> tuple[StepStatus, str, list[str]]:
        if not self.inputs.use_kb:
            return "skipped", "knowledge base disabled (--no-kb)", []
        from infersight.kb.store import KnowledgeBase, load_report_json

        i = self.inputs
        fields = {"model": i.model, "gpu": i.gpu, "dtype": i.dtype}
        with KnowledgeBase.open(i.kb) as store:
            result = store.record_report(
                load_report_json(self.path("report.json")), overrides={k: v for k, v in fields.items() if v}
            )
        state = "recorded" if result.created else "already stored"
        return "done", f"{state}: run #{result.run_id} version {result.version}", []


def _load_state(workdir: Path, inputs: AgentInputs, fresh: bool) -> AgentState:
    state_file = workdir / STATE_FILE
    if state_file.exists() and not fresh:
        try:
            state = AgentState.model_validate_json(state_file.read_bytes())
        except ValueError:
            raise InputError(state_file, "not an agent state file; use --fresh to start over") from None
        if state.inputs != inputs:
            before, after = state.inputs.model_dump(), inputs.model_dump()
            changed = {name for name in after if before.get(name) != after[name]}
            stale = [i for i, step in enumerate(STEPS) if STEP_INPUTS[step] & changed]
            first = min(stale) if stale else len(STEPS)
            state.steps = {name: rec for name, rec in state.steps.items() if STEPS.index(name) < first}
            state.inputs = inputs
        return state
    return AgentState(inputs=inputs, workdir=str(workdir))


def run_agent(
    inputs: AgentInputs, workdir: Path, *, fresh: bool = False, progress: ProgressFn | None = None
) -> AgentState:
    """Run (or resume) the loop; returns the final state. Never raises for a failed step."""
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(workdir, f"cannot create the work directory: {exc.strerror or exc}") from None
    for trace in inputs.traces:
        if not Path(trace).exists():
            raise InputError(trace, "no such file or directory")
    state = _load_state(workdir, inputs, fresh)
    run = _Run(inputs, workdir, state)
    actions: dict[str, Callable[[], tuple[StepStatus, str, list[str]]]] = {
        "kb_lookup": run.kb_lookup,
        "theory_inputs": run.theory_inputs,
        "profile": run.profile,
        "measured_vs_theory": run.measured_vs_theory,
        "focus": run.focus,
        "ncu": run.ncu,
        "rules": run.rules,
        "narrate": run.narrate,
        "report": run.report_files,
        "ab_plan": run.ab_plan,
        "kb_record": run.kb_record,
    }
    for index, name in enumerate(STEPS):
        previous = state.steps.get(name)
        if previous is not None and previous.status in ("done", "skipped", "needs_input"):
            if progress:
                progress(index + 1, len(STEPS), f"{name}: resumed ({previous.status})")
            continue
        if progress:
            progress(index, len(STEPS), f"{name}…")
        started = _now()
        try:
            status, message, artifacts = actions[name]()
        except MissingDependencyError as exc:
            status, message, artifacts = "skipped", exc.one_line(), []
        except InputError as exc:
            status, message, artifacts = "failed", exc.one_line(), []
        except ImportError as exc:
            status, message, artifacts = "skipped", f"optional dependency missing: {exc.name}", []
        record = StepRecord(
            name=name,
            status=status,
            message=message,
            started_at=started,
            finished_at=_now(),
            artifacts=artifacts,
        )
        state.steps[name] = record
        with (workdir / LOG_FILE).open("ab") as log:
            log.write(orjson.dumps(record.model_dump(mode="json")) + b"\n")
        (workdir / STATE_FILE).write_bytes(state.model_dump_json(indent=2).encode())
        if progress:
            progress(index + 1, len(STEPS), f"{name}: {status}")
        if status == "failed" and name == "profile":
            break  # nothing downstream can run without the profile
    return state
