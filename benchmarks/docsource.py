"""Where the documents' sources live, shared by benchmarks/results.py and its page modules: the measured data
(docs/data/), the prose beside each table (benchmarks/notes/, Markdown, one paragraph per line) and the rendered
detail pages (docs/notebook/)."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "docs" / "data"
NOTES = Path(__file__).resolve().parent / "notes"
NOTEBOOK = ROOT / "docs" / "notebook"


def note(name: str, *, optional: bool = False) -> str:
    """The prose file benchmarks/notes/<name>.md as the document prints it; "" for a missing optional one."""
    path = NOTES / f"{name}.md"
    if optional and not path.is_file():
        return ""
    return path.read_text().rstrip("\n")


def read_folder(folder: Path) -> dict[str, dict]:
    """Every result JSON of a docs/data folder, by file stem, in file-name order."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}
