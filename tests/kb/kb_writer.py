"""Child process for the knowledge-base durability tests (run as a script, not collected by pytest).

usage: kb_writer.py URL loop WRITER_ID COUNT    record COUNT runs, print each committed run id
       kb_writer.py URL hang WRITER_ID PAUSE_FILE record one run inside a transaction, then wait
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from sqlalchemy import insert

from infersight.kb import schema
from infersight.kb.store import KnowledgeBase

MEASUREMENTS_PER_RUN = 12


def fake_report(writer: int, index: int) -> dict[str, object]:
    """A minimal analyze report whose numbers encode (writer, index) so corruption is detectable."""
    categories = [
        {
            "category": f"cat{c}",
            "count": writer * 1000 + index,
            "total_ns": (writer * 1000 + index) * 10 + c,
            "share": 1.0 / MEASUREMENTS_PER_RUN,
        }
        for c in range(MEASUREMENTS_PER_RUN)
    ]
    return {
        "tool_version": "test",
        "profile": {
            "traces": [{"source": f"/x/w{writer}_{index}.json", "gpus": ["H100"]}],
            "devices": [{}],
            "total": {"wall_ns": writer * 1000 + index, "busy_ns": 1, "idle_ratio": 0.5},
            "categories": categories,
            "kernels": [],
        },
        "findings": [],
    }


def main() -> None:
    url, mode, writer = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = KnowledgeBase.open(url)
    if mode == "loop":
        for index in range(int(sys.argv[4])):
            result = store.record_report(fake_report(writer, index))
            print(result.run_id, flush=True)
        return
    pause_file = Path(sys.argv[4])
    with store.transaction() as conn:  # never commits: the parent SIGKILLs us while we wait
        run_id = conn.execute(
            insert(schema.runs).values(
                run_key="doomed",
                version=1,
                content_digest="x",
                created_at=schema.now_utc(),
                label="doomed",
                fingerprint_json="{}",
            )
        ).inserted_primary_key[0]
        conn.execute(
            insert(schema.measurements),
            [
                {"run_id": run_id, "kind": "category", "phase": "all", "operator": f"op{i}"}
                for i in range(100)
            ],
        )
        pause_file.write_text("in transaction")
        time.sleep(120)


if __name__ == "__main__":
    main()
