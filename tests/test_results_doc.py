"""docs/results.md is generated from docs/data by benchmarks/results.py, never typed by hand (issue 8)."""

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from results import NOTEBOOK, pages, without_provenance  # noqa: E402


def test_the_committed_documents_are_what_the_committed_data_renders_to(capsys):
    generated = pages()
    # stored results never carry artifacts: rendering them is no place for the bench's advice to remake a baseline
    assert "warning" not in capsys.readouterr().err
    for path, text in generated.items():
        assert path.exists() and without_provenance(text) == without_provenance(path.read_text()), \
            f"{path} is stale or was edited by hand: run python benchmarks/results.py"
    assert set(NOTEBOOK.glob("*.md")) == set(generated) - {ROOT / "docs" / "results.md"}


def test_the_results_page_reads_in_a_minute_and_links_every_detail_page():
    page = (ROOT / "docs" / "results.md").read_text()
    lines = page.splitlines()
    assert len(lines) <= 270 and max(map(len, lines)) <= 600
    for detail in NOTEBOOK.glob("*.md"):
        assert f"(notebook/{detail.name})" in page
    assert "session" not in page.lower()


def test_every_section_has_its_note_and_every_note_is_read():
    """The prose lives in benchmarks/notes/: a section without its file would lose its heading, and a file no
    section reads would be edited to no effect."""
    from docsource import NOTES, note
    from results import BENCH_SECTIONS, SECTIONS

    read = {f"sections/{folder}" for folder in BENCH_SECTIONS + SECTIONS}
    read |= {"adsa", "adsa-brief", "ddranking-protocol-brief", "orders-brief", "recipes-brief", "unilevel-claims-brief",
             "compile-families", "compile-speed", "compile-unroll", "cost", "dc-momentum", "ddranking-protocol",
             "defaults", "defaults-brief", "experts", "in-short", "ltdd-longer", "faster-cells", "grid-cost",
             "kept-sets", "orders",
             "phase-cost", "phase-loss", "precision", "profile", "published", "recipes", "scaling", "stem",
             "speed-brief", "stem-brief", "together-speed", "tuning", "twostage", "unilevel-claims", "warm-start"}
    read |= {f"tuning/{p.parent.name}" for p in (ROOT / "docs" / "data").glob("tune-*/tuning.json")}
    on_disk = {str(p.relative_to(NOTES).with_suffix("")) for p in NOTES.rglob("*.md")}
    assert on_disk == read
    for folder in BENCH_SECTIONS + SECTIONS:
        assert note(f"sections/{folder}").startswith("## "), folder


def test_the_suite_coverage_line_lists_missing_cells_and_results_of_an_older_suite_file(tmp_path):
    from docsource import DATA
    from results import suite_coverage

    folder = tmp_path / "bench-fmnist-cpu"
    folder.mkdir()
    for name in ("dm_fashion-mnist_b100_ipc10_s0", "mtt_fashion-mnist_b10_ipc50_s0"):
        (folder / f"{name}.json").write_text((DATA / folder.name / f"{name}.json").read_text())
    line = suite_coverage(folder)
    counted = re.search(r": 2 of (\d+) in this section", line)
    assert counted and int(counted.group(1)) > 60  # every cell the suite file plans, whatever it adds later
    assert "`full_fashion-mnist_b10`" in line and "older" not in line
    # DM's siamese DSA default changed since: its cell is named as made under the earlier defaults, nothing else
    assert line.endswith("before they followed the official code (keys.changed_defaults, "
                         "protocol.recipe_later_settings): `dm_fashion-mnist_b100_ipc10_s0`.")
    stale = folder / "dm_fashion-mnist_b100_ipc10_s0.json"
    stale.write_text(stale.read_text().replace('"iterations=2000"', '"iterations=1000"'))
    assert "made under an older suite file: `dm_fashion-mnist_b100_ipc10_s0`" in suite_coverage(folder)
    lacking = folder / "mtt_fashion-mnist_b10_ipc50_s0.json"  # a cell finished before the suite added LeNet
    result = json.loads(lacking.read_text())
    del result["cross_arch"]["lenet"]
    lacking.write_text(json.dumps(result))
    assert suite_coverage(folder).endswith("; without cross-architecture lenet yet: `mtt_fashion-mnist_b10_ipc50_s0`.")
    # a result with no key (its command run by hand, as evaluate --full) is not called a cell of an older suite file
    (folder / "full_fashion-mnist_b10.json").write_text(json.dumps({"balanced_acc": {"mean": 0.9, "std": 0.0}}))
    line = suite_coverage(folder)
    assert "made by its command outside bench (no key to compare): `full_fashion-mnist_b10`;" in line
    assert "`full_fashion-mnist_b10`" not in line.split("older suite file")[1].split(";")[0]


def test_a_cell_made_under_fewer_of_todays_defaults_is_named_as_made_under_the_earlier_ones(tmp_path):
    """DC's cell under the official-code defaults of its time (DSA draw per batch, no inner momentum) keys those
    two; today's key adds the official cosine: the cell is one of the earlier defaults, not of an older suite file."""
    from docsource import DATA
    from results import suite_coverage

    folder = tmp_path / "bench-fmnist-defaults-cpu"
    folder.mkdir()
    name = "dc_fashion-mnist_b100_ipc10_s0"
    stored = (DATA / folder.name / f"{name}.json").read_text()
    assert json.loads(stored)["key"]["defaults"] == {"dsa_siamese": "batch", "net_momentum": 0.0}
    (folder / f"{name}.json").write_text(stored)
    line = suite_coverage(folder)
    assert line.endswith("before they followed the official code (keys.changed_defaults, "
                         f"protocol.recipe_later_settings): `{name}`.")
    assert "older suite file" not in line


def test_the_cross_architecture_table_shows_every_model_of_a_set_and_the_mean_change():
    from docsource import DATA
    from results import cross_arch_table

    table = cross_arch_table(DATA / "bench-fmnist-cpu")
    header = next(line for line in table.splitlines() if line.startswith("| method |"))
    assert "beta 100, IPC 10" in header and header.endswith("| mean change |")
    dm = json.loads((DATA / "bench-fmnist-cpu" / "dm_fashion-mnist_b100_ipc10_s0.json").read_text())["cross_arch"]
    row = next(line for line in table.splitlines() if line.startswith("| dm |"))
    assert row.split(" | ")[1] == " / ".join(f"{100 * v['mean']:.1f}" for v in dm.values())
    assert list(dm)[:1] == ["convnet"] and len(dm) == 3


def test_the_claims_by_order_table_reads_every_order_section(tmp_path, monkeypatch):
    import results as doc

    from test_report import _order_result

    monkeypatch.setattr(doc, "DATA", tmp_path)
    cells = {"bench-fmnist-official-cpu": [("ltdd", "natural", 0.75), ("random", "natural", 0.74)],
             "bench-fmnist-hardtail-cpu": [("ltdd", "hard-tail", 0.70), ("random", "hard-tail", 0.73),
                                           ("full", "hard-tail", 0.86)],
             "bench-fmnist-orders-cpu": [("random", "random:1", 0.71)]}
    for folder, rows in cells.items():
        (tmp_path / folder).mkdir()
        for label, order, acc in rows:
            (tmp_path / folder / f"{label}-{order}.json").write_text(json.dumps(_order_result(label, order, acc, 0.4)))
    table = doc.claims_by_order()
    assert "| natural | hard-tail | random:1 |" in table
    assert "| LTDD > Random | 1 of 2 | +1.0 | -3.0 | - |" in table
    assert "| full long-tailed set: balanced accuracy (%) | | - | 86.0 | - |" in table
    beta10 = {"hard-tail": [("ltdd", 0.78), ("random", 0.75), ("datm", 0.70), ("mtt", 0.72), ("full", 0.90),
                            ("dm", 0.77)],
              "natural": [("unilevel", 0.78), ("sre2l", 0.60)]}  # one claim readable: too few for a column
    for order, rows in beta10.items():
        for label, acc in rows:
            (tmp_path / "bench-fmnist-hardtail-cpu" / f"{label}-{order}-b10.json").write_text(json.dumps(
                {**_order_result(label, order, acc, 0.4), "imbalance_factor": 10}))
    table = doc.claims_by_order()
    assert "| natural | hard-tail | random:1 | hard-tail, beta 10 |\n" in table
    assert "| LTDD > Random | 2 of 3 | +1.0 | -3.0 | - | +3.0 |\n" in table
    assert "| DATM > MTT | 0 of 1 | - | - | - | -2.0 |" in table  # both rows made: no mark
    # DC and herding not made at beta 10: the margin reads DM alone, marked as a reading that may move
    assert "| trajectory matching (MTT, DATM, LTDD) > DM, DC, herding | 1 of 1 | - | - | - | +1.0* |" in table
    assert "| full long-tailed set: balanced accuracy (%) | | - | 86.0 | - | 90.0 |" in table
    monkeypatch.setattr(doc, "DATA", tmp_path / "nothing")
    assert doc.claims_by_order() == ""


def test_the_defaults_comparison_pairs_cells_by_name_and_names_the_defaults_in_each_key(tmp_path, monkeypatch):
    import results as doc

    from test_report import _order_result

    monkeypatch.setattr(doc, "DATA", tmp_path)
    before, after = (tmp_path / s for s in doc.DEFAULTS_SECTIONS)
    before.mkdir()
    after.mkdir()
    for folder, acc in ((before, 0.70), (after, 0.72)):
        (folder / "dm_x.json").write_text(json.dumps(_order_result("dm", "natural", acc, 0.5)))
    moved = {**_order_result("dm", "natural", 0.72, 0.5), "key": {"defaults": {"dsa_siamese": "batch"}}}
    (after / "dm_x.json").write_text(json.dumps(moved))
    (after / "new_x.json").write_text(json.dumps(_order_result("edc", "natural", 0.6, 0.4)))
    for folder in (before, after):
        (folder / "same_x.json").write_text(json.dumps(_order_result("random", "natural", 0.7, 0.5)))
    (after / "only_x.json").write_text(json.dumps({**moved, "label": "dm-other"}))  # no earlier cell of its name
    table = doc.defaults_comparison(detail=True)
    assert "| dm_x | 70.00 ± 0.00 | 72.00 ± 0.00 | +2.00 | 50.0 | 50.0 | +0.0 | dsa_siamese = batch |" in table
    assert "new_x" not in table and "same_x |" not in table  # rows for the cells whose defaults moved
    assert table.endswith("The same cell under both (no default of its method changed; made once): random.\n")
    assert "| only_x | - | 72.00 ± 0.00 | - | - | 50.0 | - | (made under today's defaults only) |" in table
    brief = doc.defaults_comparison(detail=False)  # the results page: the comparisons alone
    assert "| dm_x |" in brief and "only_x" not in brief


def test_the_grid_cost_projection_takes_only_faster_paths_and_counts_each_expert_buffer_once(tmp_path):
    """benchmarks/grid_cost.py: a part whose faster path was measured slower keeps its hours, a buffer shared by
    two cells is counted once and under its kind, the full set's evaluation is a part of its own."""
    from grid_cost import cell_costs, project

    cells = {
        "mtt_a": {"method": "mtt", "ipc": 10, "seconds_per_run": 100, "runs": 3, "distill": {"wall_time_s": 7200},
                  "key": {"experts": "standard-b100-x"}, "experts_seconds": 1800},
        "datm_a": {"method": "datm", "ipc": 10, "seconds_per_run": 100, "runs": 3, "distill": {"wall_time_s": 3600},
                   "key": {"experts": "standard-b100-x"}, "experts_seconds": 1800},
        "dm_a": {"method": "dm", "ipc": 50, "seconds_per_run": 200, "runs": 3, "distill": {"wall_time_s": 3600}},
        "full": {"method": "full", "training_set": "full", "seconds_per_run": 2400, "runs": 3},
        "ltdd_a": {"method": "ltdd", "ipc": 10, "key": {"experts": "decoupled-b100-y"}, "experts_seconds": 600},
    }
    for name, cell in cells.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(cell))
    parts = cell_costs(tmp_path)
    trajectory = "distillation: trajectory matching (mtt, datm, ltdd), IPC 10"
    assert parts["expert buffers: standard"] == 1800 and parts["expert buffers: decoupled"] == 600
    assert parts[trajectory] == 10800
    assert parts["evaluation: IPC 10 sets"] == 600 and parts["evaluation: IPC 50 sets"] == 600
    assert parts["evaluation: the full long-tailed set"] == 7200
    speedups = {trajectory: (0.5, "slower"), "distillation: dm": (2.0, "")}
    report = project(parts, speedups)
    rows = {r["part"]: r for r in report["rows"]}
    assert rows[trajectory]["projected_hours"] == 3.0
    assert rows["distillation: dm"]["projected_hours"] == 0.5
    total = 3 + 1 + 9000 / 3600 + 0.5
    assert report["total_hours"] == pytest.approx(total) and report["projected_hours"] == pytest.approx(total - 0.5)
    assert report["untouched_share"] == pytest.approx((total - 1) / total)


def test_the_grid_cost_takes_each_part_from_its_own_timing_and_bfloat16_only_where_timed_and_scored(tmp_path):
    """benchmarks/grid_cost.py: IPC-50 evaluation from the IPC-50 set's timing and each kind of expert buffer from
    its expert's, not from a proxy; bfloat16 compiled where it was timed beside float32 and precision_check's scores
    held, float32 compiled elsewhere; for the standard experts and the trajectory unroll only where
    faster_cells.py scored a set made so within float32's spread."""
    from grid_cost import measured_speedups

    def write(name, content):
        (tmp_path / name).write_text(json.dumps(content))

    write("cpu-families.json", {"families": {m: {"speedup": 1.1} for m in ("dc", "dm", "herding", "sre2l")}})
    write("cpu-unroll.json", {"unroll": {"speedup": 0.5}})
    for name in ("cpu-unroll-ops.json", "cpu-unroll-ops-ipc50.json"):
        write(name, {"unroll": {"ops_speedup": 1.5, "eager_s": 4.0, "ops_s": 4.0 / 1.5, "ops_bfloat16_s": 2.0}})
    write("cpu.json", {"rows": {"ipc10 (100 images)": {"speedup": 2.0, "bfloat16_speedup": 3.0},
                                "ipc50 (500 images)": {"speedup": 1.8},
                                "full beta 100 (14886 images)": {"speedup": 1.4, "bfloat16_speedup": 1.7}}})
    speedups = measured_speedups(tmp_path)
    assert speedups["evaluation: IPC 50 sets"][0] == 1.8
    assert speedups["expert buffers: standard"][0] == speedups["expert buffers: decoupled"][0] == 1.4
    write("cpu-experts.json", {"experts": {kind: {"speedup": {"float32 compiled": ratio, "bfloat16 compiled": 9.0}}
                                           for kind, ratio in (("standard", 1.6), ("decoupled", 1.3))}})
    precision = tmp_path / "precision.json"
    precision.write_text(json.dumps({"scores": [{"within_spread": True}]}))
    speedups = measured_speedups(tmp_path, precision)
    assert speedups["evaluation: IPC 10 sets"][0] == 3.0 and speedups["evaluation: the full long-tailed set"][0] == 1.7
    assert speedups["evaluation: IPC 50 sets"][0] == 1.8  # not timed in bfloat16: float32 compiled's
    assert speedups["expert buffers: standard"][0] == 1.6 and speedups["expert buffers: decoupled"][0] == 1.3
    precision.write_text(json.dumps({"scores": [{"within_spread": True}, {"within_spread": False}]}))
    assert measured_speedups(tmp_path, precision)["evaluation: IPC 10 sets"][0] == 2.0
    # whole trajectory cells scored on the faster paths: the ops' gain times the share a whole distillation kept
    trajectory = tmp_path / "mtt.json"
    unroll = "distillation: trajectory matching (mtt, datm, ltdd), IPC {}"

    def scored(compiled: bool, half: bool, experts: bool, bfloat16: Path | None) -> dict:
        trajectory.write_text(json.dumps({"method": "mtt", "ipc": 10, "rows": [
            {"variant": "float32 eager (the suite's cell)"},
            {"variant": "float32 compiled unroll", "within_spread": compiled, "distill_speedup": 1.2},
            {"variant": "bfloat16 unroll", "within_spread": half, "distill_speedup": 1.6},
            {"variant": "bfloat16 experts", "within_spread": experts, "distill_speedup": 1.0}]}))
        return measured_speedups(tmp_path, bfloat16, [trajectory])

    precision.write_text(json.dumps({"scores": [{"within_spread": True}]}))
    speedups = scored(True, True, True, None)  # the float32 projection: float32 paths only
    assert speedups[unroll.format(10)][0] == pytest.approx(1.2)  # ops 1.5 x the share 1.2 / 1.5 kept whole
    assert speedups["expert buffers: standard"][0] == 1.6
    speedups = scored(True, True, True, precision)  # with bfloat16: ops 2.0 x 1.6 / 2.0; standard experts 9.0
    assert speedups[unroll.format(50)][0] == pytest.approx(1.6) and speedups["expert buffers: standard"][0] == 9.0
    assert speedups["expert buffers: decoupled"][0] == 1.3  # never scored in bfloat16
    speedups = scored(True, False, False, precision)  # unscored paths are not taken
    assert speedups[unroll.format(50)][0] == pytest.approx(1.2) and speedups["expert buffers: standard"][0] == 1.6
    assert scored(False, False, False, precision)[unroll.format(10)][0] == 0.5  # nothing scored: no ops path
    # a second cell at IPC 50: that IPC takes its own whole distillation's gain, IPC 10 still the IPC-10 cell's
    scored(True, True, True, None)
    wide = tmp_path / "mtt-ipc50.json"
    wide.write_text(json.dumps({"method": "mtt", "ipc": 50, "rows": [
        {"variant": "float32 eager (the suite's cell)"},
        {"variant": "float32 compiled unroll", "within_spread": True, "distill_speedup": 1.4}]}))
    speedups = measured_speedups(tmp_path, None, [trajectory, wide])
    assert speedups[unroll.format(50)][0] == pytest.approx(1.4) and "at IPC 50" in speedups[unroll.format(50)][1]
    assert speedups[unroll.format(10)][0] == pytest.approx(1.2) and "at IPC 10" in speedups[unroll.format(10)][1]
    # the IPC-50 cell alone: IPC 10 takes the share kept at the nearest IPC, 50
    assert measured_speedups(tmp_path, None, [wide])[unroll.format(10)][0] == pytest.approx(1.4)
    # a DC cell made compiled: DC at its IPC takes what the whole cell gained, only where it scored within spread;
    # trajectory matching never reads it
    dc = tmp_path / "dc.json"
    for within, expected in ((True, 1.9), (False, 1.1)):
        dc.write_text(json.dumps({"method": "dc", "ipc": 10, "rows": [
            {"variant": "float32 eager (the suite's cell)"},
            {"variant": "float32 compiled", "within_spread": within, "distill_speedup": 1.9}]}))
        speedups = measured_speedups(tmp_path, None, [dc, wide])
        assert speedups["distillation: dc, IPC 10"][0] == expected
        assert speedups["distillation: dc, IPC 50"][0] == 1.1
        assert speedups[unroll.format(10)][0] == pytest.approx(1.4)  # from the IPC-50 trajectory cell, not DC's
    twin = tmp_path / "mtt-ipc50-again.json"
    twin.write_text(wide.read_text())
    with pytest.raises(SystemExit, match="two cells of mtt/datm/ltdd at IPC 50"):
        measured_speedups(tmp_path, None, [wide, twin])


def test_the_brief_grid_of_a_suite_over_several_orders_gives_the_mean_over_orders(tmp_path):
    from results import suite_grid

    def cell(label, order, acc):
        return {"dataset": "fashion-mnist", "imbalance_factor": 100, "ipc": 10, "label": label, "class_order": order,
                "method": label.split("-")[0], "balanced_acc": {"mean": acc, "std": 0.01}, "model": "convnet",
                "epochs": 300}

    for name, r in {"a1": cell("a", "random:1", 0.70), "a2": cell("a", "random:2", 0.80),
                    "b1": cell("b", "random:1", 0.75), "ablation": cell("b-no-x", "random:1", 0.60)}.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(r))
    grid = suite_grid(tmp_path)  # one setting: the methods across
    assert grid.startswith("| setting | a | b |\n|---|---|---|\n"
                           "| beta 100, IPC 10 | 75.00 ± 5.00 (2 orders) | 75.00 ± 1.00 (random:1 only) |\n")
    (tmp_path / "b50.json").write_text(json.dumps({**cell("b", "random:1", 0.5), "ipc": 50}))
    assert "| a | 75.00 ± 5.00 (2 orders) | - |" in suite_grid(tmp_path)  # two: a row a method
    # a preset or ablation is named under the grid, not given a row of the brief
    assert "| b-no-x |" not in grid and "ablations on the suite's page: b-no-x." in grid


def test_each_finding_is_given_in_brief_with_a_link_to_its_note_in_full():
    """The results page gives each finding's note in brief and links the findings page at that finding's heading,
    where the note stands in full beside the same table."""
    from docsource import note
    from results import anchor

    page = (ROOT / "docs" / "results.md").read_text()
    full = (NOTEBOOK / "findings.md").read_text()
    links = re.findall(r"\(notebook/findings\.md#([a-z0-9_-]+)\)", page)
    headings = {anchor(line): line for line in full.splitlines() if line.startswith("#")}
    assert len(links) >= 5 and set(links) <= set(headings)
    for name in ("adsa", "orders", "recipes", "ddranking-protocol", "unilevel-claims"):
        assert note(f"{name}-brief") in page and note(name) in full and note(name) not in page
        assert len(note(f"{name}-brief")) < len(note(name))
    # the tables a minute's read leaves out: ADSA at IPC 50, the recipes' and protocols' cells
    for row in ("| fashion-mnist | 100 | 50 | edc | labels adsa |", "| ltdistill recipe | sre2l recipe |",
                "| ltdistill: accuracy | random baseline |"):
        assert row in full and row not in page, row


def test_the_speed_summary_sets_each_workload_beside_its_timed_paths_only(tmp_path, monkeypatch):
    """benchmarks/speed_page.py's results-page table: a path not timed reads "-", a workload with no timing at all
    is left out, and each ratio is the one its file holds for that workload."""
    import speed_page

    monkeypatch.setattr(speed_page, "DATA", tmp_path)
    for folder, name, content in (
            ("compile-speed", "cpu", {"rows": {"ipc10 (100 images)": {"speedup": 2.2, "bfloat16_speedup": 2.9},
                                               "ipc50 (500 images)": {"speedup": 1.9},
                                               "full beta 100 (14886 images)": {"speedup": 1.4}}}),
            ("compile-speed", "cpu-experts", {"experts": {"standard": {"speedup": {
                "float32 compiled": 1.6, "bfloat16 compiled": 2.5}}}})):
        (tmp_path / folder).mkdir(exist_ok=True)
        (tmp_path / folder / f"{name}.json").write_text(json.dumps(content))
    rows = speed_page.speed_summary().splitlines()
    assert rows[2] == "| evaluation training, an IPC-10 set (5 runs at once) | 2.20x | 2.90x | - | - | - |"
    assert rows[3] == "| evaluation training, an IPC-50 set | 1.90x | - | - | - | - |"
    assert rows[4] == "| evaluation training, the whole beta-100 set | 1.40x | - | - | - | - |"
    assert rows[5] == "| an expert buffer's expert, standard (8 at once) | 1.60x | 2.50x | - | - | - |"
    assert rows[6] == ""  # DM, DC, the unroll, decoupled experts: untimed here, left out


def test_a_cell_made_again_on_its_faster_paths_is_scored_against_its_eager_twin_with_or_without_a_buffer(
        tmp_path, monkeypatch, capsys):
    """benchmarks/faster_cells.py: each variant's change against the eager cell, within the larger spread or not,
    and its distillation's speedup; a cell without an expert buffer (DC) has no buffer columns, and a variant given
    a buffer the eager cell lacks is refused. The speed page renders either form."""
    import faster_cells
    from speed_page import faster_cells_table

    timing = {"s_per_iteration": 20.0, "s_per_iteration_median": 19.0}
    (tmp_path / "cell.json").write_text(json.dumps({"method": "dc", "cell": "dc-x", "class_order": "random:2",
                                                    "ipc": 10, "imbalance_factor": 100, "device": "cpu",
                                                    "balanced_acc_runs": [0.81, 0.81, 0.81], "distill": timing}))
    for name, runs in (("near", [0.811, 0.809, 0.81]), ("far", [0.79, 0.79, 0.79])):
        (tmp_path / f"{name}.json").write_text(json.dumps({
            "balanced_acc_runs": runs, "distill": {"s_per_iteration": 12.5, "s_per_iteration_median": 10.0}}))
    out = tmp_path / "dc.json"

    def run(*variants: str) -> None:
        args = ["--baseline", str(tmp_path / "cell.json"), "--out", str(out)]
        for v in variants:
            args += ["--variant", *(part.replace("\0", " ") for part in v.split())]
        monkeypatch.setattr(sys, "argv", ["faster_cells.py", *args])
        faster_cells.main()

    run(f"{faster_cells.COMPILED.replace(' ', chr(0))} {tmp_path / 'near.json'}")
    report = json.loads(out.read_text())
    assert [r["variant"] for r in report["rows"]][1:] == ["float32 compiled"]
    row = report["rows"][1]
    assert row["within_spread"] and row["distill_speedup"] == pytest.approx(1.6)
    assert row["median_iteration_speedup"] == pytest.approx(1.9) and "buffer_seconds" not in row
    table = faster_cells_table(report)
    assert "buffer" not in table
    assert "| float32 compiled | 81.00 ± 0.08 | +0.00 | yes | 12.50 (10.00) | 1.60x / 1.90x |" in table
    run(f"float32\0compiled {tmp_path / 'far.json'}")
    assert not json.loads(out.read_text())["rows"][1]["within_spread"]
    with pytest.raises(SystemExit) as exit_:
        run(f"float32\0compiled {tmp_path / 'near.json'} {tmp_path}")  # a buffer, but the eager cell has none
    assert exit_.value.code == 2 and "its evaluation JSON only" in capsys.readouterr().err


def test_a_faster_path_timed_on_another_processor_than_its_eager_twin_is_flagged_and_not_projected(
        tmp_path, monkeypatch, capsys):
    """benchmarks/faster_cells.py and grid_cost.py: the twin and the cell ran on two hosts of one brand (a run's
    stretches name the processor, engine/loop.py): its speedup is shown as such and the projection does not take
    it; where either processor is unknown (a bare 'cpu') the row is kept as before."""
    import faster_cells
    from grid_cost import scored_cells
    from speed_page import faster_cells_table

    def timing(where):
        return {"s_per_iteration": 20.0, "s_per_iteration_median": 19.0, "iteration_devices": [[0, "cpu"], [3, where]]}

    (tmp_path / "cell.json").write_text(json.dumps({"method": "dc", "ipc": 10, "class_order": "random:2",
                                                    "imbalance_factor": 100, "device": "cpu",
                                                    "balanced_acc_runs": [0.81] * 3,
                                                    "distill": timing("cpu (AMD EPYC (family 26, model 2), AVX512)")}))
    out = tmp_path / "dc.json"
    for where, expected in (("cpu (AMD EPYC (family 25, model 17), AVX512)", False),
                            ("cpu (AMD EPYC (family 26, model 2), AVX512)", True), ("cpu", None)):
        (tmp_path / "twin.json").write_text(json.dumps({"balanced_acc_runs": [0.81] * 3, "distill": timing(where)}))
        monkeypatch.setattr(sys, "argv", ["faster_cells.py", "--baseline", str(tmp_path / "cell.json"), "--out",
                                          str(out), "--variant", faster_cells.COMPILED, str(tmp_path / "twin.json")])
        faster_cells.main()
        report = json.loads(out.read_text())
        assert report["rows"][1]["same_host"] is expected and report["rows"][1]["within_spread"]
        assert ("timed on another processor" in faster_cells_table(report)) is (expected is False)
        assert ("warning" in capsys.readouterr().out) is (expected is False)
        assert (faster_cells.COMPILED in scored_cells([out], ("dc",))[10][0]) is (expected is not False)


def test_the_longer_run_lists_each_kept_set_by_iteration_with_its_tail(tmp_path, monkeypatch):
    import results as doc

    monkeypatch.setattr(doc, "LONGER", tmp_path / "nothing.json")
    assert doc.longer_run() == ""
    snapshots = [{"iteration": it, "balanced_acc": {"mean": acc, "std": 0.001}, "few": few}
                 for it, acc, few in [(200, 0.80, 0.91), (0, 0.7735, 0.898), (100, 0.79, 0.905)]]
    monkeypatch.setattr(doc, "LONGER", tmp_path / "run.json")
    (tmp_path / "run.json").write_text(json.dumps({"snapshots": snapshots}))
    table = doc.longer_run()
    assert table.splitlines()[0] == "| kept set: iteration | 0 | 100 | 200 |"
    assert "| balanced (%) | 77.35 ± 0.10 | 79.00 ± 0.10 | 80.00 ± 0.10 |" in table
    assert "| tail: few (%) | 89.8 | 90.5 | 91.0 |" in table


def test_the_notes_quote_a_seed_group_s_spread_as_its_tables_do():
    """A note's "mean ± std over seeds" (or over the random class orders) is the tables' (over_seeds: the population
    std), never the sample std: the two differ by a fifth at 3 seeds, and a note quoting the other would disagree
    with the table beneath it."""
    from collections import defaultdict

    import numpy as np
    from docsource import DATA, NOTES, read_folder

    from ltdistill.report.tables import over_seeds, pooled_order

    notes = "".join(path.read_text() for path in NOTES.rglob("*.md"))
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for folder in sorted(p for p in DATA.iterdir() if p.is_dir()):
        for result in read_folder(folder).values():
            if isinstance(result, dict) and isinstance(result.get("key"), dict) and "balanced_acc" in result:
                # a cell but for its seed, the random class orders pooled as the brief tables pool them
                setting = {**{k: v for k, v in result["key"].items() if k != "seed"},
                           "class_order": pooled_order(result, per_seed=False)}
                groups[folder.name, json.dumps(setting, sort_keys=True)].append(result)
    quoted = 0
    for cells in (cells for cells in groups.values() if len(cells) > 1):
        balanced = [c["balanced_acc"]["mean"] for c in cells]
        scores = [(balanced, ""), ([(c.get("ddranking") or {}).get("ior") for c in cells], "+")]  # (values, sign)
        if all((c.get("calibrated") or {}).get("adsa") for c in cells):
            with_adsa = [c["calibrated"]["adsa"]["balanced_acc"]["mean"] for c in cells]
            scores += [(with_adsa, ""), ([a - b for a, b in zip(with_adsa, balanced, strict=True)], "+")]
        for values, sign in scores:
            if any(not isinstance(v, float) for v in values):
                continue
            a = 100 * np.array(values)
            population, sample = over_seeds(values, sign), f"{a.mean():{sign}.2f} ± {a.std(ddof=1):.2f}"
            quoted += population in notes
            assert population == sample or sample not in notes, \
                f"a note quotes {sample} (sample std) for {cells[0]['key']} over seeds; the tables give {population}"
    assert quoted > 10  # the notes do quote seed groups: the check reads them
