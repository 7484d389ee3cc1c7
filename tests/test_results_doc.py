"""docs/results.md is generated from docs/data by benchmarks/results.py, never typed by hand (issue 8)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from results import render, without_provenance  # noqa: E402


def test_the_committed_results_document_is_what_the_committed_data_renders_to():
    committed = (ROOT / "docs" / "results.md").read_text()
    assert without_provenance(render()) == without_provenance(committed), \
        "docs/results.md is stale or was edited by hand: run python benchmarks/results.py"
