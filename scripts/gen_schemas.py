"""Regenerate docs/schemas/<command>.schema.json from the result models.

Run after changing a result model (and bump that output's schema_version: a new optional field
bumps the minor, a breaking change the major); tests/render/test_json_schemas.py fails until the
committed files match the models.

    python scripts/gen_schemas.py
"""

from __future__ import annotations

from pathlib import Path

from infersight.render.json_report import write_json_schemas

SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "docs" / "schemas"


def main() -> None:
    for path in write_json_schemas(SCHEMAS_DIR):
        print(path.relative_to(SCHEMAS_DIR.parent.parent))


if __name__ == "__main__":
    main()
