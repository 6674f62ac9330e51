"""The versioned JSON report: the pydantic model serialised as is, plus its JSON Schema.

The report *is* :class:`~infersight.analysis_report.AnalysisReport`, so the JSON and the Python
API can never disagree; consumers check ``schema_version`` (see docs/report-schema.md).

Every other ``--json`` output is a pydantic model too; :data:`JSON_OUTPUTS` names the model of each
command's output and :func:`output_json_schemas` renders their JSON Schemas, the files committed
under ``docs/schemas/`` (``python scripts/gen_schemas.py`` rewrites them; a test compares).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from infersight.analysis_report import AnalysisReport

__all__ = [
    "JSON_OUTPUTS",
    "load_report",
    "output_json_schema",
    "output_json_schemas",
    "render_json",
    "report_json_schema",
    "write_json_schemas",
]

# command (file stem under docs/schemas/) -> "module:Model" of what its --json writes
JSON_OUTPUTS: dict[str, str] = {
    "analyze": "infersight.analysis_report:AnalysisReport",
    "export": "infersight.render.trace_export:TraceExport",
    "host": "infersight.host.results:HostReport",
    "diff": "infersight.host.results:DiffReport",
    "overlap": "infersight.overlap.results:OverlapReport",
    "ranks": "infersight.overlap.results:OverlapReport",
    "roofline": "infersight.theory.report:TheoryReport",
    "roofline-ops": "infersight.theory.ops:OpsPrediction",
    "layers": "infersight.layers.results:LayerReport",
    "ncu": "infersight.ncu.results:NcuReport",
    "ncu-plan": "infersight.ncu.plan:NcuPlan",
    "kb-lookup": "infersight.kb.lookup:LookupResult",
    "kb-history": "infersight.kb.store:AbHistory",
    "verify": "infersight.advisor.verify_flow:VerifyOutcome",
    "narrate": "infersight.advisor.narrator:Narration",
    "agent-state": "infersight.agent.workflow:AgentState",
}
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def render_json(report: AnalysisReport) -> str:
    """The report as indented JSON text (UTF-8 safe, ends with a newline)."""
    return report.model_dump_json(indent=2) + "\n"


def report_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12, as pydantic emits it) of the report."""
    schema: dict[str, Any] = AnalysisReport.model_json_schema()
    return schema


def load_report(text: str | bytes) -> AnalysisReport:
    """Parse and validate a JSON report (raises pydantic.ValidationError when it does not match)."""
    return AnalysisReport.model_validate_json(text)


def _model(command: str) -> type[BaseModel]:
    module, name = JSON_OUTPUTS[command].split(":")
    model: type[BaseModel] = getattr(importlib.import_module(module), name)
    return model


def output_json_schema(command: str) -> dict[str, Any]:
    """JSON Schema of what ``infersight COMMAND --json`` writes (serialisation mode, field aliases)."""
    schema: dict[str, Any] = _model(command).model_json_schema(by_alias=True, mode="serialization")
    return {"$schema": SCHEMA_DIALECT, "$id": f"infersight/{command}.schema.json", **schema}


def output_json_schemas() -> dict[str, str]:
    """File name -> text of every output's schema: sorted keys, indent 2, trailing newline (deterministic)."""
    return {f"{name}.schema.json": _schema_text(output_json_schema(name)) for name in sorted(JSON_OUTPUTS)}


def _schema_text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_json_schemas(folder: Path) -> list[Path]:
    """Write every schema into ``folder`` (created if needed) and return the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in output_json_schemas().items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
