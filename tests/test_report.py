import json

import numpy as np
import pytest
import torch
from PIL import Image

from ltdistill.cli import main
from ltdistill.evaluate.metrics import aggregate, run_metrics
from ltdistill.synthetic import SyntheticSet


def test_report_writes_index_grid_bars_and_loss_curve(tmp_path, capsys):
    meta = {"method": "mtt", "dataset": "digits", "imbalance_factor": 10.0, "ipc": 2, "mean": [0.3], "std": [0.4],
            "loss_history": [1.0, 0.8, None, 0.5]}
    SyntheticSet(torch.randn(6, 1, 16, 16), torch.arange(6) % 3, meta=meta).save(tmp_path / "art")
    result = aggregate([run_metrics([0, 1, 2], [0, 1, 1], [0, 0, 1, 2], [0, 0, 1, 1], [10, 4, 2])])
    result.update(dataset="digits", imbalance_factor=10, method="mtt", ipc=2, model="convnet",
                  model_options={"width": 32, "stem": "official"})
    (tmp_path / "mtt.json").write_text(json.dumps(result))
    assert main(["report", str(tmp_path)]) == 0
    index = (tmp_path / "report" / "index.md").read_text()
    assert "| digits | 10 | mtt | convnet | 2 |" in index
    for name in ("art-images.png", "art-loss.png", "per-class-digits-b10-ipc2.png"):
        assert f"({name})" in index
        with Image.open(tmp_path / "report" / name) as img:
            assert img.size[0] > 100 and img.size[1] > 100


def test_the_report_of_one_artifact_names_its_images_after_it(tmp_path, capsys):
    SyntheticSet(torch.randn(6, 1, 16, 16), torch.arange(6) % 3, meta={"method": "dm"}).save(tmp_path / "art")
    assert main(["report", str(tmp_path / "art"), "--out", str(tmp_path / "r")]) == 0
    assert "(art-images.png)" in (tmp_path / "r" / "index.md").read_text()
    assert (tmp_path / "r" / "art-images.png").is_file()


def test_report_of_an_empty_directory_is_bad_input(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "holds no SyntheticSet" in capsys.readouterr().err


def test_a_report_that_meets_a_corrupt_set_or_a_planted_link_writes_nothing(tmp_path, capsys):
    """A bad file among good ones is refused in one line before the report's folder is made."""
    SyntheticSet(torch.randn(6, 1, 16, 16), torch.arange(6) % 3, meta={"method": "dm"}).save(tmp_path / "a")
    SyntheticSet(torch.randn(6, 1, 16, 16), torch.arange(6) % 3, meta={"method": "dm"}).save(tmp_path / "b")
    for damage in (b'{"method": 3', b"\xff\xfe{"):  # not JSON; not UTF-8 (a UnicodeDecodeError's traceback before)
        (tmp_path / "b" / "meta.json").write_bytes(damage)
        assert main(["report", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
        assert "corrupt SyntheticSet" in capsys.readouterr().err and not (tmp_path / "r").exists()
    # a link planted at the index: refused before any figure is drawn, as its message says
    (tmp_path / "b" / "meta.json").write_text('{"method": "dm"}')
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "index.md").symlink_to(tmp_path / "elsewhere.md")
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "nothing was written" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["index.md"]
    assert not (tmp_path / "elsewhere.md").exists()


@pytest.mark.parametrize("zca", [None, 0.1])
def test_image_grid_handles_normalized_and_whitened_sets(tmp_path, zca):
    from ltdistill.report.plots import image_grid

    s = SyntheticSet(torch.randn(4, 3, 8, 8), torch.randn(4, 2), meta={"mean": [0.5] * 3, "std": [0.2] * 3,
                                                                      "zca_eps": zca, "classes": [0, 0, 1, 1]})
    path = image_grid(s, tmp_path / "g.png", per_class=2)
    assert path.exists()


def test_the_grid_puts_each_class_in_its_row_in_order():
    from ltdistill.report.plots import tiled

    gray = torch.rand(5, 14, 14, 1).numpy()
    canvas = tiled(gray, torch.tensor([1, 0, 1, 0, 1]), per_class=2)  # pad 1: tiles every 15 pixels
    assert canvas.shape == (2 * 15 + 1, 2 * 15 + 1, 3)
    for (row, column), index in {(0, 0): 1, (0, 1): 3, (1, 0): 0, (1, 1): 2}.items():  # index 4: past per_class
        tile = canvas[1 + 15 * row:15 * (row + 1), 1 + 15 * column:15 * (column + 1)]
        assert np.array_equal(tile, np.repeat(gray[index], 3, axis=-1))
    assert (canvas[0] == 1).all() and (canvas[:, 15] == 1).all()  # white between the tiles


def test_iteration_timing_shows_the_per_iteration_cost_and_its_drift():
    from ltdistill.evaluate.protocol import iteration_timing
    from ltdistill.report.tables import _seconds_per_iteration

    timing = iteration_timing([None, None, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0])  # two resumed-from-old iterations
    assert timing["timed_iterations"] == 8 and timing["s_per_iteration_median"] == 1.5
    assert timing["s_per_iteration_by_quarter"] == [1.0, 1.0, 2.0, 3.0]
    assert iteration_timing(None) == {} and iteration_timing([None]) == {}
    assert _seconds_per_iteration(timing) == "1.50"
    assert _seconds_per_iteration({"s_per_iteration": 4.0}) == "4.00*"  # untimed artifact: wall / iterations
    assert _seconds_per_iteration({"s_per_iteration": None}) == "-"


def test_a_set_made_on_two_devices_is_timed_on_the_finishing_one_and_says_where_the_rest_ran():
    from ltdistill.evaluate.protocol import distill_timing
    from ltdistill.report.tables import earlier_devices

    meta = {"loss_history": [1.0] * 8, "iteration_seconds": [20.0] * 6 + [300.0, 340.0], "wall_time_s": 650.0,
            "resumed_from": 6, "iteration_devices": [[0, "cuda (NVIDIA H200)"], [6, "cpu"]]}
    timing = distill_timing(meta)
    assert timing["s_per_iteration_median"] == 320.0 and timing["timed_iterations"] == 2  # the CPU's two alone
    assert timing["s_per_iteration"] == 325.0 and timing["iteration_devices"] == meta["iteration_devices"]
    assert earlier_devices(timing) == "; it. 0-5 on cuda (NVIDIA H200)"
    one = distill_timing({**meta, "iteration_devices": [[0, "cpu"]]})
    assert one["s_per_iteration_median"] == 20.0 and earlier_devices(one) == ""
    older = distill_timing({k: v for k, v in meta.items() if k != "iteration_devices"})  # made before it was recorded
    assert older["timed_iterations"] == 8 and older["iteration_devices"] is None and earlier_devices(older) == ""
    assert earlier_devices({"iteration_devices": [[0, None], [30, "cpu"]]}) == "; it. 0-29 on an unrecorded device"


def test_wall_seconds_per_iteration_counts_only_the_iterations_after_a_resume():
    from ltdistill.evaluate.protocol import wall_seconds_per_iteration

    assert wall_seconds_per_iteration(300.0, 300, 0) == 1.0
    assert wall_seconds_per_iteration(50.0, 300, 275) == 2.0  # wall_time_s covers iterations 275-300 only
    assert wall_seconds_per_iteration(10.0, None, 0) is None and wall_seconds_per_iteration(10.0, 25, 25) is None
    assert wall_seconds_per_iteration(None, None, 0) is None  # a set made without a loop (random, herding)


def test_resumed_from_is_read_or_inferred_from_untimed_leading_iterations():
    from ltdistill.evaluate.protocol import resumed_from

    assert resumed_from({"resumed_from": 25, "iteration_seconds": [None] * 10 + [1.0]}) == 25
    assert resumed_from({"iteration_seconds": [None, None, 1.0, 2.0]}) == 2  # before the loop recorded it
    assert resumed_from({"loss_history": [1.0]}) == 0


def test_row_names_show_result_changing_overrides_only():
    from ltdistill.report.tables import variant

    r = {"method": "unilevel", "commands": ["ltdistill distill --method unilevel --set epochs=50 --set "
                                            "\"model_cache='runs/m'\" --set checkpoint_every=5 --out x"]}
    assert variant(r) == "unilevel (epochs=50)"
    assert variant({"method": "dm", "commands": ["ltdistill distill --method dm --set model_cache=x"]}) == "dm"


def test_file_row_name_drops_what_the_columns_already_say():
    from ltdistill.report.tables import file_row_name

    assert file_row_name("fashion-mnist-b100-ltdd-tuned-ipc10") == "ltdd-tuned"
    assert file_row_name("fashion-mnist-b10-random-relabeled-by-unilevel-no-remedy-ipc50") == \
        "random-relabeled-by-unilevel-no-remedy"
    assert file_row_name("after-lr=before") == "after-lr=before"  # no dataset-beta prefix, no IPC suffix


def test_report_draws_one_per_class_chart_per_setting_with_the_full_set_in_each(tmp_path):
    from ltdistill.report.build import settings

    base = aggregate([run_metrics([0, 1, 2], [0, 1, 1], [0, 0, 1, 2], [0, 0, 1, 1], [10, 4, 2])])
    cells = {"random-2": {"ipc": 2, "label": "random"}, "random-5": {"ipc": 5, "label": "random"},
             "dm-2": {"ipc": 2, "label": "dm"}, "full": {"ipc": None, "label": "full"},
             "other-beta": {"ipc": 2, "label": "random", "imbalance_factor": 50}}
    paths = []
    for stem, extra in cells.items():
        path = tmp_path / f"{stem}.json"
        path.write_text(json.dumps({**base, "dataset": "digits", "imbalance_factor": 10, **extra}))
        paths.append(path)
    groups = settings(paths)
    assert {k: sorted(g) for k, g in groups.items()} == {
        "digits-b10-ipc2": ["dm", "full", "random"], "digits-b10-ipc5": ["full", "random"],
        "digits-b50-ipc2": ["random"]}


def test_report_of_a_bench_directory_names_images_by_cell_with_class_names(tmp_path):
    meta = {"method": "dm", "dataset": "digits", "imbalance_factor": 10.0, "ipc": 2, "mean": [0.3], "std": [0.4]}
    SyntheticSet(torch.randn(6, 1, 16, 16), torch.arange(6) % 3, meta=meta).save(tmp_path / "cells" / "dm-1a2b" /
                                                                                  "artifact")
    result = aggregate([run_metrics([0, 1, 2], [0, 1, 1], [0, 0, 1, 2], [0, 0, 1, 1], [10, 4, 2])])
    result.update(dataset="digits", imbalance_factor=10, method="dm", ipc=2, label="dm", cell="dm-1a2b",
                  class_names=["zero", "one", "two"])
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "dm_digits_b10_ipc2_s0.json").write_text(json.dumps(result))
    (tmp_path / "suite.json").write_text("{}")
    assert main(["report", str(tmp_path)]) == 0
    index = (tmp_path / "report" / "index.md").read_text()
    assert "## dm_digits_b10_ipc2_s0" in index and "(dm_digits_b10_ipc2_s0-images.png)" in index


def test_per_class_bars_name_each_class_with_its_training_count_and_curves_are_smoothed(tmp_path, monkeypatch):
    import matplotlib.axes

    from ltdistill.report.plots import per_class_bars

    seen = {}
    original = matplotlib.axes.Axes.set_xticklabels

    def keep(self, labels, *args, **kwargs):
        seen["labels"] = list(labels)
        return original(self, labels, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "set_xticklabels", keep)
    result = {"per_class_acc": [0.9, 0.5], "train_counts": [100, 10]}
    per_class_bars({"dm": result}, tmp_path / "bars.png", class_names=["head", "tail"])
    assert seen["labels"] == ["head (n=100)", "tail (n=10)"] and (tmp_path / "bars.png").stat().st_size > 0


def test_report_of_a_folder_of_benches_gives_each_cell_once_named_by_method_and_eval_model(tmp_path, capsys):
    """`report runs/` over a bench directory (cells' own eval-*.json beside results/) and a loose evaluation: one
    row per cell, rows and bars named by method/variant and evaluation model, the old network named as such."""
    def result(method: str, model: str, **extra) -> dict:
        r = aggregate([run_metrics([0, 1, 2], [0, 1, 1], [0, 0, 1, 2], [0, 0, 1, 1], [10, 4, 2])])
        r.update(dataset="digits", imbalance_factor=10, method=method, ipc=2, model=model, model_options={}, **extra)
        return r

    bench = tmp_path / "runs" / "quick"
    (bench / "results").mkdir(parents=True)
    (bench / "suite.json").write_text("{}")
    (bench / "results" / "dm_digits_b10_ipc2_s0.json").write_text(json.dumps(result("dm", "convnet", label="dm")))
    cell = bench / "cells" / "dm-0123456789"
    cell.mkdir(parents=True)
    for model in ("convnet", "mlp"):  # a cell's working files: the results/ row says the same
        (cell / f"eval-model-{model}.json").write_text(json.dumps(result("dm", model)))
    (tmp_path / "runs" / "mine.json").write_text(json.dumps(result("herding", "mlp")))
    assert main(["report", str(tmp_path / "runs")]) == 0
    index = (tmp_path / "runs" / "report" / "index.md").read_text()
    rows = [line for line in index.splitlines() if line.startswith("| digits")]
    assert len(rows) == 2, rows
    assert any("| dm | convnet (pad1) |" in r for r in rows) and any("| herding | mlp |" in r for r in rows)

    from ltdistill.report.build import settings

    bars = settings([bench / "results" / "dm_digits_b10_ipc2_s0.json", tmp_path / "runs" / "mine.json"])
    assert set(bars["digits-b10-ipc2"]) == {"dm @ convnet (pad1)", "herding @ mlp"}
    # several paths, or one file, go to --out
    assert main(["report", str(tmp_path / "runs" / "mine.json")]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "runs" / "mine.json"), str(bench), "--out", str(tmp_path / "two")]) == 0
    assert len([line for line in (tmp_path / "two" / "index.md").read_text().splitlines()
                if line.startswith("| digits")]) == 2


def _order_result(label: str, order: str, acc: float, few: float, seed: int = 0) -> dict:
    return {"label": label, "method": label, "class_order": order, "dataset": "fashion-mnist",
            "imbalance_factor": 100, "ipc": None if label == "full" else 10, "few": few,
            "balanced_acc": {"mean": acc, "std": 0.0}, "key": {"seed": seed}}


def test_the_orders_table_gives_each_method_per_order_its_spread_and_pairwise_wins():
    from ltdistill.report.tables import orders_table

    accs = {"dm": (0.80, 0.78, 0.76), "random": (0.74, 0.79, 0.70), "full": (0.88, 0.86, 0.84)}
    results = [_order_result(label, f"random:{k + 1}", a, 0.5) for label, row in accs.items()
               for k, a in enumerate(row)]
    results.append(_order_result("dm", "random:1", 0.10, 0.1, seed=1))  # another suite seed: not an order's cell
    table = orders_table(results)
    assert "| random:1 | random:2 | random:3 | mean ± std over orders |" in table
    assert "| dm | 80.00 | 78.00 | 76.00 | 78.00 ± 1.63 (3) | 50.0 |" in table
    wins = table[table.index("Wins"):]
    dm_row = next(line for line in wins.splitlines() if line.startswith("| dm |"))
    assert dm_row == "| dm | 0/3 |  | 2/3 |"  # columns full, dm, random: dm beats random in orders 1 and 3
    assert table.count("| full | 88.00 | 86.00 | 84.00 |") == 1  # the full set joins the IPC-10 table
    assert orders_table([r for r in results if r["class_order"] == "random:1"]) == ""  # one order: no table


def test_the_recipe_table_sets_each_recipe_beside_the_random_set_relabeled_under_it():
    from ltdistill.report.tables import recipe_table

    def acc(mean: float) -> dict:
        return {"mean": mean, "std": 0.01}

    relabeled = "relabel (teacher on every augmented batch)"
    cell = {"dataset": "fashion-mnist", "imbalance_factor": 100, "ipc": 10, "label": "sre2l", "runs": 3,
            "balanced_acc": acc(0.63), "few": 0.7, "eval_config": {"recipe": "ltdistill"},
            "ddranking": {"acc_rdm_any": 0.77, "ior": -0.14, "rdm_regime": relabeled},
            "models_accuracy": {"teacher (as evaluated)": {"balanced_acc": 0.847}},
            "recipes": {"sre2l": {"balanced_acc": acc(0.71), "few": 0.78,
                                  "ddranking": {"acc_rdm_any": 0.72, "ior": -0.01, "rdm_regime": relabeled}}}}
    table = recipe_table([cell, {**cell, "recipes": {}}, {**cell, "eval_config": {"recipe": "edc"}}])
    rows = [line for line in table.splitlines() if line.startswith("| fashion-mnist")]
    assert rows == ["| fashion-mnist | 100 | 10 | sre2l | 63.00 ± 1.00 (70.0) | 71.00 ± 1.00 (78.0) | +8.00 | "
                    "77.0 / 72.0 | -14.0 / -1.0 | 84.7 |"]
    assert recipe_table([{**cell, "recipes": {}}]) == ""

    def seeded(seed: int, usual: float, other: float) -> dict:
        return {**cell, "key": {"seed": seed}, "balanced_acc": acc(usual),
                "recipes": {"sre2l": {**cell["recipes"]["sre2l"], "balanced_acc": acc(other)}}}

    three = recipe_table([seeded(0, 0.60, 0.70), seeded(1, 0.62, 0.71), seeded(2, 0.64, 0.72)]).splitlines()
    assert [row.split(" | ")[3] for row in three[2:]] == ["sre2l", "sre2l (seed 1)", "sre2l (seed 2)",
                                                         "sre2l: 3 seeds"]
    assert three[-1] == ("| fashion-mnist | 100 | 10 | sre2l: 3 seeds | 62.00 ± 1.63 | 71.00 ± 0.82 | +9.00 ± 0.82 | "
                         "77.00 ± 0.00 / 72.00 ± 0.00 | -14.00 ± 0.00 / -1.00 ± 0.00 | 84.70 ± 0.00 |")
    brief = recipe_table([seeded(0, 0.60, 0.70), seeded(1, 0.62, 0.71), seeded(2, 0.64, 0.72)], per_seed=False)
    assert [row.split(" | ")[3] for row in brief.splitlines()[2:]] == ["sre2l: 3 seeds"]  # its seeds stand apart
    one_hard_tail = [seeded(0, 0.6, 0.7), {**seeded(1, 0.6, 0.7), "class_order": "hard-tail"}]
    assert "seeds" not in recipe_table(one_hard_tail)  # one seed per order: no summary


def test_a_calibrated_cell_of_another_class_order_or_seed_is_named_apart_from_the_natural_one():
    from ltdistill.report.tables import variant_table

    acc = {"mean": 0.8, "std": 0.01}
    calibrated = {"adsa": {"balanced_acc": {"mean": 0.7, "std": 0.0}, "few": 0.6, "calibration": {"tau": 1.0}}}
    cell = {"dataset": "fashion-mnist", "imbalance_factor": 100, "ipc": 10, "label": "unilevel", "few": 0.5,
            "balanced_acc": acc, "calibrated": calibrated, "key": {"seed": 0}}
    rows = variant_table([cell, {**cell, "class_order": "hard-tail"}, {**cell, "key": {"seed": 2}}]).splitlines()[2:]
    assert [row.split(" | ")[3] for row in rows] == ["unilevel", "unilevel (seed 2)", "unilevel: 2 seeds",
                                                     "unilevel (hard-tail order)"]  # the natural order's seeds 0, 2


def test_calibrated_cells_over_seeds_give_the_mean_and_spread_of_each_seeds_mean():
    from ltdistill.report.tables import variant_table

    def seeded(seed, before, after, tau):
        return {"dataset": "fashion-mnist", "imbalance_factor": 10, "ipc": 10, "label": "edc", "few": 0.9,
                "balanced_acc": {"mean": before, "std": 0.01}, "key": {"seed": seed},
                "calibrated": {"adsa": {"balanced_acc": {"mean": after, "std": 0.0}, "few": 0.94,
                                        "calibration": {"tau": tau}}}}

    cells = [seeded(0, 0.87, 0.88, 0.35), seeded(1, 0.86, 0.86, 0.0), seeded(2, 0.88, 0.87, 0.5),
             {**seeded(1, 0.5, 0.6, 1.0), "class_order": "hard-tail"}]
    rows = variant_table(cells, per_seed=False).splitlines()[2:]
    assert [row.split(" | ")[3] for row in rows] == ["edc: 3 seeds"]  # the hard-tail seed 1 alone: no row
    assert rows[0] == ("| fashion-mnist | 10 | 10 | edc: 3 seeds | labels adsa | 87.00 ± 0.82 | 87.00 ± 0.82 | "
                       "+0.00 ± 0.82 | 90.00 ± 0.00 / 94.00 ± 0.00 | 0.35 / 0.00 / 0.50 |")


def test_a_brief_table_gives_the_cells_of_random_class_orders_one_row_over_the_orders():
    from ltdistill.report.tables import protocol_table, variant_table

    def cell(order, before, after):
        return {"dataset": "fashion-mnist", "imbalance_factor": 100, "ipc": 10, "label": "unilevel", "few": 0.5,
                "balanced_acc": {"mean": before, "std": 0.01}, "key": {"seed": 0}, "class_order": order,
                "ddranking": {"acc_rdm_any": 0.7, "ior": before - 0.7},
                "calibrated": {"adsa": {"balanced_acc": {"mean": after, "std": 0.0}, "few": 0.6,
                                        "calibration": {"tau": 1.0}}}}

    cells = [cell("random:1", 0.70, 0.72), cell("random:2", 0.74, 0.74), cell("random:3", 0.78, 0.76),
             cell("hard-tail", 0.60, 0.50)]
    brief = [row.split(" | ")[3:6] for row in variant_table(cells, per_seed=False).splitlines()[2:]]
    assert brief == [["unilevel: 3 random orders", "labels adsa", "74.00 ± 3.27"],
                     ["unilevel (hard-tail order)", "labels adsa", "60.00 ± 1.00"]]
    full = [row.split(" | ")[3] for row in variant_table(cells).splitlines()[2:]]
    assert full == [f"unilevel (random:{i} order)" for i in (1, 2, 3)] + ["unilevel (hard-tail order)"]
    # each order's cell beside the same order's cell under the other protocol, then the row over the orders
    ranked = [{**c, "balanced_acc": {"mean": c["balanced_acc"]["mean"] + 0.01, "std": 0.0}} for c in cells[:3]]
    rows = protocol_table(cells, ranked, per_seed=False).splitlines()[2:]
    assert rows == ["| fashion-mnist | 100 | 10 | unilevel: 3 random orders | 74.00 ± 3.27 | 70.00 ± 0.00 | "
                    "+4.00 ± 3.27 | 75.00 ± 3.27 | 70.00 ± 0.00 | +4.00 ± 3.27 |"]


def test_the_protocol_table_sets_each_cell_beside_the_same_cell_under_the_other_protocol():
    from ltdistill.report.tables import protocol_table

    def cell(label, seed, acc, baseline=None, ior=None):
        dd = {} if baseline is None else {"acc_rdm_any": baseline, "ior": ior}
        return {"label": label, "dataset": "fashion-mnist", "imbalance_factor": 100.0, "ipc": 10, "runs": 3,
                "key": {"seed": seed}, "balanced_acc": {"mean": acc, "std": 0.01}, "ddranking": dd}

    usual = [cell("sre2l", 0, 0.6335, 0.768, -0.134), cell("sre2l", 1, 0.5, 0.7, -0.2)]
    table = protocol_table(usual, [cell("sre2l", 0, 0.70, 0.75, -0.05), cell("random", 0, 0.73)])
    rows = table.splitlines()[2:]
    assert rows[0] == ("| fashion-mnist | 100 | 10 | sre2l | 63.35 ± 1.00 | 76.8 | -13.4 | 70.00 ± 1.00 | 75.0 | "
                       "-5.0 |")  # seed 0 beside seed 0, not seed 1
    assert rows[1] == "| fashion-mnist | 100 | 10 | random | - | - | - | 73.00 ± 1.00 | - | - |"
    # brief: each protocol's mean ± std over the seeds' means alone ("-" where a seed lacks one)
    ranked = [cell("sre2l", 0, 0.70, 0.75, -0.05), cell("sre2l", 1, 0.60, 0.72, -0.12)]
    rows = protocol_table(usual, ranked, per_seed=False).splitlines()[2:]
    assert len(rows) == 1
    assert rows[0] == ("| fashion-mnist | 100 | 10 | sre2l: 2 seeds | 56.67 ± 6.67 | 73.40 ± 3.40 | -16.70 ± 3.30 | "
                       "65.00 ± 5.00 | 73.50 ± 1.50 | -8.50 ± 3.50 |")
    assert "| sre2l: 3 seeds | - | - | - |" in protocol_table(usual, [*ranked, cell("sre2l", 2, 0.6)], per_seed=False)


def test_the_protocol_table_pairs_a_cell_with_the_same_set_not_one_made_under_other_method_defaults():
    from ltdistill.report.tables import protocol_table

    def cell(acc, defaults=None):
        key = {"seed": 0, **({"defaults": defaults} if defaults else {})}
        return {"label": "sre2l", "dataset": "fashion-mnist", "imbalance_factor": 100.0, "ipc": 10, "runs": 3,
                "key": key, "balanced_acc": {"mean": acc, "std": 0.01}}

    today = cell(0.6763, {"jitter_range": "nonnegative", "flip": False})
    ranked = [cell(0.70)]  # scored under DD-Ranking's protocol before the recovery draws changed
    row = protocol_table([today, cell(0.6335)], ranked).splitlines()[2]
    assert row.split(" | ")[4] == "63.35 ± 1.00"  # the set made under the same defaults, not today's
    assert protocol_table([today], ranked).splitlines()[2].split(" | ")[4] == "-"
    same = [cell(0.70, {"flip": False, "jitter_range": "nonnegative"})]  # the same defaults in another order
    assert protocol_table([today], same).splitlines()[2].split(" | ")[4] == "67.63 ± 1.00"


def test_a_preset_beside_its_method_pairs_cells_seed_by_seed_and_gives_the_paired_change():
    from ltdistill.report.tables import preset_pair_table

    def cell(label, seed, acc, order="natural"):
        return {"dataset": "fashion-mnist", "imbalance_factor": 100, "ipc": 10, "label": label, "few": 0.9,
                "balanced_acc": {"mean": acc, "std": 0.0}, "key": {"seed": seed}, "class_order": order}

    cells = [cell("dc-net-momentum", 0, 0.80), cell("dc", 0, 0.81), cell("dc-net-momentum", 1, 0.79),
             cell("dc", 1, 0.81), cell("dc", 2, 0.90),  # seed 2 without the preset: left out
             cell("dm", 0, 0.70), cell("dc-net-momentum", 0, 0.50, "hard-tail")]  # no dc cell of that order
    rows = preset_pair_table(cells, "dc-net-momentum", "dc").splitlines()
    assert rows[0] == "| dataset | beta | IPC | seeds | dc-net-momentum | dc | change | per seed |"
    assert rows[2:] == ["| fashion-mnist | 100 | 10 | 2 | 79.50 ± 0.50 (90.00 ± 0.00) | 81.00 ± 0.00 (90.00 ± 0.00) | "
                        "+1.50 ± 0.50 | +1.00 +2.00 |"]
    assert preset_pair_table(cells[:1] + cells[5:], "dc-net-momentum", "dc") == ""


def test_calibrated_cells_made_under_earlier_defaults_never_pool_with_those_made_under_todays():
    from ltdistill.report.tables import variant_table

    def seeded(seed, before, after, defaults):
        return {"dataset": "fashion-mnist", "imbalance_factor": 100, "ipc": 10, "label": "edc", "few": 0.5,
                "class_order": "hard-tail", "balanced_acc": {"mean": before, "std": 0.01},
                "key": {"seed": seed, **({"defaults": defaults} if defaults else {})},
                "calibrated": {"adsa": {"balanced_acc": {"mean": after, "std": 0.0}, "few": 0.7,
                                        "calibration": {"tau": 1.0}}}}

    today = {"recipe.ema_decay": 0.99, "recipe.decay_matrices_only": True}
    cells = [seeded(0, 0.80, 0.82, None), seeded(1, 0.81, 0.84, today), seeded(2, 0.79, 0.82, today)]
    brief = [row.split(" | ")[3:8] for row in variant_table(cells, per_seed=False).splitlines()[2:]]
    assert brief == [["edc, earlier defaults (hard-tail order)", "labels adsa", "80.00 ± 1.00", "82.00 ± 0.00",
                      "+2.00"],
                     ["edc (hard-tail order): 2 seeds", "labels adsa", "80.00 ± 1.00", "83.00 ± 1.00",
                      "+3.00 ± 0.00"]]
    full = [row.split(" | ")[3] for row in variant_table(cells).splitlines()[2:]]
    assert full == ["edc, earlier defaults (hard-tail order)", "edc (seed 1) (hard-tail order)",
                    "edc (seed 2) (hard-tail order)", "edc (hard-tail order): 2 seeds"]
    one_change = {"recipe.ema_decay": 0.99}  # a key naming some of the later defaults: its own rows, counted
    rows = variant_table([*cells, seeded(3, 0.7, 0.7, one_change)]).splitlines()[2:]
    assert [row.split(" | ")[3] for row in rows][-1] == "edc, earlier defaults (1 of 2) (seed 3) (hard-tail order)"
    # made under one set of defaults, the rows read as before
    assert "earlier" not in variant_table(cells[1:]) and "2 seeds" in variant_table(cells[1:])
