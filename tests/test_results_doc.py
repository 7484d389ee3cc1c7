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


def test_the_suite_coverage_line_lists_missing_cells_and_results_of_an_older_suite_file(tmp_path):
    from results import DATA, suite_coverage

    folder = tmp_path / "bench-fmnist-cpu"
    folder.mkdir()
    for name in ("dm_fashion-mnist_b100_ipc10_s0", "mtt_fashion-mnist_b10_ipc50_s0"):
        (folder / f"{name}.json").write_text((DATA / folder.name / f"{name}.json").read_text())
    line = suite_coverage(folder)
    assert "2 of 66 in this section" in line and "`full_fashion-mnist_b10`" in line and "older" not in line
    stale = folder / "dm_fashion-mnist_b100_ipc10_s0.json"
    stale.write_text(stale.read_text().replace('"iterations=2000"', '"iterations=1000"'))
    assert "made under an older suite file: `dm_fashion-mnist_b100_ipc10_s0`." in suite_coverage(folder)
