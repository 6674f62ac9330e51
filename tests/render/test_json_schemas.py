"""docs/schemas/ is generated from the result models: regenerated in memory, it must match the files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from infersight.render.json_report import JSON_OUTPUTS, output_json_schema, output_json_schemas

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "docs" / "schemas"
MAJOR_MINOR = re.compile(r"^\d+\.\d+$")


def test_committed_schemas_match_the_models() -> None:
    expected = output_json_schemas()
    committed = {p.name: p.read_text(encoding="utf-8") for p in SCHEMAS_DIR.glob("*.schema.json")}
    assert sorted(committed) == sorted(expected), "run: python scripts/gen_schemas.py"
    stale = [name for name, text in expected.items() if committed[name] != text]
    assert not stale, f"stale schemas {stale}: run python scripts/gen_schemas.py (and bump schema_version)"


def test_generation_is_deterministic() -> None:
    first = output_json_schemas()
    assert first == output_json_schemas()
    for text in first.values():
        assert text.endswith("}\n") and not text.endswith("\n\n")
        assert json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n" == text


@pytest.mark.parametrize("command", sorted(JSON_OUTPUTS))
def test_every_output_has_a_major_minor_schema_version(command: str) -> None:
    schema = output_json_schema(command)
    version = schema["properties"]["schema_version"]
    assert version["type"] == "string"
    if command != "export":  # the export document sets it when written (EXPORT_SCHEMA_VERSION)
        assert MAJOR_MINOR.match(version["default"]), (command, version)
    assert schema["$id"] == f"infersight/{command}.schema.json"
