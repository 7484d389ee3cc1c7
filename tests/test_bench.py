"""`ltdistill bench`: suite files checked at the boundary, cells cached and skipped on rerun, DD-Ranking metrics."""

import dataclasses
import functools
import io
import json
import math
import os
import re
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from tqdm import tqdm

from ltdistill import bench, runtime, watch
from ltdistill.bench import ddranking, load_suite, plan, status, suite_plan
from ltdistill.bench import run_suite as bench_run_suite
from ltdistill.bench.ranking import unrelabeled_warning
from ltdistill.bench.suite import plan_suite
from ltdistill.cli import main
from ltdistill.errors import BadInput


def run_suite(*args, **options):
    """The bench without the report's figures, but where a test asks for them: a second of matplotlib a call."""
    return bench_run_suite(*args, **{"figures": False, **options})


TINY_SUITE = """
description = "test"
protocol = "cpu"
runs = 1
epochs = 2
eval_models = ["convnet"]
[data]
dataset = "digits"
imbalance = [10]
ipc = [2]
[[method]]
name = "random"
"""


def test_suite_files_are_checked(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("speed = 3\n" + TINY_SUITE)
    with pytest.raises(BadInput, match="unknown suite key"):
        load_suite(bad)
    bad.write_text(TINY_SUITE.replace('name = "random"', 'name = "mtt"\nexperts = "standard"'))
    with pytest.raises(BadInput, match="not defined under"):
        load_suite(bad)
    assert main(["bench", "--suite", "nosuch", "--out", str(tmp_path / "o")]) == 2
    for damage in (b"x = [", b"\xff\xfe"):  # not TOML; not UTF-8 (a UnicodeDecodeError's traceback before)
        bad.write_bytes(damage)
        with pytest.raises(BadInput, match="bad.toml: not a readable suite file"):
            load_suite(bad)
    bad.write_text(TINY_SUITE + '[[method]]\nname = "random"\nset = ["short_class=\'all\'"]\n')  # a name twice
    with pytest.raises(BadInput, match="twice"):
        plan(load_suite(bad), tmp_path / "o", [])


@pytest.mark.parametrize("change, match", [
    (("runs = 1", "runs = 0"), "runs must be an integer >= 1"),
    (("epochs = 2", "epochs = 1.5"), "epochs must be an integer >= 1"),
    (("ipc = [2]", "ipc = [0]"), r"\[data\] ipc must be an integer >= 1"),
    (("ipc = [2]", "ipc = []"), r"\[data\] ipc must be a non-empty list"),
    (("ipc = [2]", "ipc = [2, 117]"), r"\[data\] ipc 117 is more images per class than .* digits's .* \(116\)"),
    (("ipc = [2]", "ipc = [2, 112]\nholdout = 5"), r"ipc 112 is more .* \(111 after the holdout\)"),
    (("imbalance = [10]", "imbalance = [0.5]"), r"\[data\] imbalance must be"),
    (('dataset = "digits"', 'dataset = "fmnist"'), r"\[data\] unknown dataset 'fmnist' \(did you mean 'fashion-mnist'"),
    (('dataset = "digits"\n', ""), r"\[data\] dataset must name a dataset, got None"),
    (('dataset = "digits"', 'dataset = "digits"\nclass_order = "random:x"'), r"\[data\] unknown class order"),
    (('name = "random"', 'name = "random"\nset = ["iterations=3"]'), "'random'.*has no config key"),
    (('name = "random"', 'name = "random"\nset = ["short_class=\'some\'"]'), "'random'.*short_class"),
    (('name = "random"', 'name = "dm"\ngrid = {lr_img = [1.0, -1.0]}'), "'dm@lr_img=-1.0'.*lr_img"),
    (('name = "random"', 'name = "ltdd"\npreset = "configs/ltdd/fmnist-lt-b100-ipc10.toml"\nset = ["dam=1"]'),
     r"'ltdd' \(preset .*fmnist-lt-b100-ipc10.toml\).*dam"),
    (("[[method]]", "[experts.standard]\nnum = 0\nepochs = 2\n[[method]]"), r"\[experts.standard\] num must be"),
    (("[[method]]", "[experts.standard]\nnum = 2\n[[method]]"), r"\[experts.standard\] needs epochs"),
    (("[[method]]", "[experts.standard]\nnum = 2\nepochs = 2\ncls_epochs = 1\n[[method]]"),
     r"\[experts.standard\]: unknown key\(s\) \['cls_epochs'\]"),
    (("[[method]]", "[experts.decoupled]\nnum = 2\nepochs = 2\nzca = 0\n[[method]]"),
     r"\[experts.decoupled\] zca must be a number > 0"),
    (("[[method]]", "[experts.fancy]\nnum = 2\nepochs = 2\n[[method]]"), r"\[experts.fancy\]: the kinds are"),
])
def test_a_suite_whose_cells_could_not_run_is_refused_before_any_cell_runs(tmp_path, capsys, change, match):
    """Every setting a cell's commands would refuse (a count, a [data] list, a method's config from its preset, set
    and grid) is refused when the suite is read and planned: one line, exit 2, nothing written."""
    suite = tmp_path / "s.toml"
    text = TINY_SUITE.replace(*change)
    suite.write_text(text.replace("[data]", "[data]\nholdout = 2") if "grid" in text else text)
    assert main(["bench", "--suite", str(suite), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    assert re.search(match, capsys.readouterr().err) and not (tmp_path / "run").exists()


@pytest.mark.parametrize("plan_only", [True, False])
def test_an_out_that_is_not_a_directory_is_refused_in_one_line(tmp_path, capsys, plan_only):
    """A file or a dangling link at --out: --plan said "0 of 2 cells done in" it, and a run ended in mkdir's
    traceback."""
    suite = tmp_path / "s.toml"
    suite.write_text(TINY_SUITE)
    (tmp_path / "file").write_text("kept")
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    for out, why in (("file", "it exists and is not a directory"), ("dangling", "it is a link to .*gone")):
        args = ["bench", "--suite", str(suite), "--out", str(tmp_path / out), "--no-progress"]
        assert main(args + ["--plan"] * plan_only) == 2
        assert re.search(rf"--out .*{out}: {why}", capsys.readouterr().err)
    assert (tmp_path / "file").read_text() == "kept" and not (tmp_path / "gone").exists()


def test_a_damaged_result_or_evaluation_json_in_a_run_directory_is_one_line(tmp_path, capsys):
    """A result or a cell's evaluation JSON that is not a JSON object (a full disk, a hand edit): a JSONDecodeError
    or AttributeError traceback before, from --plan and from the run; moved aside, it is made again."""
    suite = tmp_path / "s.toml"
    suite.write_text(TINY_SUITE.replace("runs = 1", "runs = 1\nfull = false"))
    out = tmp_path / "run"
    run_suite(str(suite), out, progress=False)
    result = out / "results" / "random_digits_b10_ipc2_s0.json"
    kept = json.loads(result.read_text())
    fields = [{**kept, "key": -1}, {**kept, "host": [1]}, {**kept, "runs": None}, {**kept, "lt_test": {}},
              {**kept, "balanced_acc": {"mean": "x"}}, {**kept, "commands": [1]}]  # fields of another kind
    for damage in ("{trunc", "[1]", *map(json.dumps, fields)):
        result.write_text(damage)
        for plan_only in (True, False):
            argv = ["bench", "--suite", str(suite), "--out", str(out), "--no-progress", "--no-figures"]
            assert main(argv + ["--plan"] * plan_only) == 2
            err = capsys.readouterr().err
            assert "random_digits_b10_ipc2_s0.json is corrupt" in err and "move it aside" in err
            assert len(err.strip().splitlines()) == 1
    result.unlink()  # moved aside: collected again from the cell's evaluation, which is damaged in turn
    evaluation = next((out / "cells").glob("random-*/eval-model-convnet.json"))
    evaluation.write_text("{")
    assert main(["bench", "--suite", str(suite), "--out", str(out), "--no-progress", "--no-figures"]) == 2
    assert "eval-model-convnet.json is corrupt" in capsys.readouterr().err
    evaluation.unlink()
    run_suite(str(suite), out, progress=False)
    assert json.loads(result.read_text())["balanced_acc"] == kept["balanced_acc"]


def test_a_suite_runs_caches_its_cells_and_reports_ddranking(tmp_path):
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY_SUITE)
    out = tmp_path / "run"
    assert main(["bench", "--suite", str(suite), "--out", str(out), "--plan"]) == 0 and not out.exists()
    assert "random_digits_b10_ipc2_s0  to run" in suite_plan(str(suite), out)
    table = run_suite(str(suite), out, progress=False, figures=True)
    assert suite_plan(str(suite), out).endswith("2 of 2 cells done in " + str(out) + "\n")
    result_path = out / "results" / "random_digits_b10_ipc2_s0.json"
    result = json.loads(result_path.read_text())
    assert result["ddranking"]["ior"] == 0.0  # random against itself
    assert result["ddranking"]["hlr"] == pytest.approx(result["ddranking"]["acc_real_hard"]
                                                       - result["balanced_acc"]["mean"])
    assert "HLR" in table.read_text() and (out / "results" / "full_digits_b10.json").exists()
    index = (out / "report" / "index.md").read_text()  # the bench leaves its figures
    assert "per-class accuracy" in index and "random_digits_b10_ipc2_s0" in index
    commands = (out / "log.txt").read_text().count("\n$ ")
    run_suite(str(suite), out, progress=False)  # a rerun runs no command again
    assert (out / "log.txt").read_text().count("\n$ ") == commands
    assert json.loads(result_path.read_text())["balanced_acc"] == result["balanced_acc"]
    suite.write_text(TINY_SUITE + '[[method]]\nname = "herding"\n')  # a grown suite runs just its new cell
    run_suite(str(suite), out, progress=False)
    assert (out / "log.txt").read_text().count("\n$ ") > commands
    assert (out / "results" / "herding_digits_b10_ipc2_s0.json").exists()
    assert json.loads(result_path.read_text())["balanced_acc"] == result["balanced_acc"]
    suite.write_text(TINY_SUITE.replace("runs = 1", "runs = 2"))  # a finished cell's settings changed
    with pytest.raises(BadInput, match="finished cell .* was made with other settings .*runs differ"):
        run_suite(str(suite), out, progress=False)
    keyless = json.loads(result_path.read_text())
    del keyless["key"]  # a result from before results kept their key: refused with its own reason
    result_path.write_text(json.dumps(keyless))
    suite.write_text(TINY_SUITE)
    with pytest.raises(BadInput, match="finished cell .* records no settings key"):
        run_suite(str(suite), out, progress=False)


def test_plan_names_a_finished_cell_whose_dd_ranking_scores_a_stopped_run_left_unmade(tmp_path):
    """DD-Ranking's scores come in a closing pass after a run's cells: a run stopped between a cell's result and that
    pass leaves the cell finished but unscored. --plan says so (not plain "done"), and a rerun scores it."""
    suite, out = tmp_path / "tiny.toml", tmp_path / "run"
    suite.write_text(TINY_SUITE + '[[method]]\nname = "herding"\n')
    run_suite(str(suite), out, progress=False)
    result_path = out / "results" / "herding_digits_b10_ipc2_s0.json"
    scored = json.loads(result_path.read_text())
    assert scored["ddranking"]["ior"] is not None
    result_path.write_text(json.dumps({k: v for k, v in scored.items() if k != "ddranking"}))
    plan_text = suite_plan(str(suite), out)
    assert "herding_digits_b10_ipc2_s0  done; DD-Ranking scores left: a rerun makes them\n" in plan_text
    assert re.search(r"\nrandom_digits_b10_ipc2_s0 +done *\n", plan_text)  # the others as they were
    run_suite(str(suite), out, progress=False)
    assert json.loads(result_path.read_text())["ddranking"] == scored["ddranking"]
    assert re.search(r"\nherding_digits_b10_ipc2_s0 +done *\n", suite_plan(str(suite), out))
    # a relabeling cell's scores need its relabeled-random baseline first; without its Random cell here, none
    random = json.loads((out / "results" / "random_digits_b10_ipc2_s0.json").read_text())
    relabeled = {"label": "sre2l", "key": {**random["key"], "method": "sre2l"}, "label_regime": "relabel (teacher)"}
    assert status.ranking_left(relabeled, {"random": random}).endswith(", its relabeled-random baseline first")
    assert status.ranking_left(relabeled, {}) == ""


def test_a_cross_arch_model_added_later_is_evaluated_on_the_finished_cells_alone(tmp_path):
    suite, out = tmp_path / "tiny.toml", tmp_path / "run"
    suite.write_text(TINY_SUITE)
    run_suite(str(suite), out, progress=False, only=["random"])
    result_path = out / "results" / "random_digits_b10_ipc2_s0.json"
    before = json.loads(result_path.read_text())
    suite.write_text(TINY_SUITE.replace('eval_models = ["convnet"]', 'eval_models = ["convnet"]\ncross_arch = ["mlp"]'))
    assert "random_digits_b10_ipc2_s0  done; cross-arch mlp left\n" in suite_plan(str(suite), out)
    orphan = tmp_path / "copied"  # results copied without their cells: nothing to evaluate, nothing redone
    (orphan / "results").mkdir(parents=True)
    (orphan / "results" / result_path.name).write_text(result_path.read_text())
    assert "cross-arch mlp left (its artifact is not in this directory)" in suite_plan(str(suite), orphan)
    run_suite(str(suite), orphan, progress=False, only=["random"])
    assert not (orphan / "log.txt").exists() or "$ " not in (orphan / "log.txt").read_text()
    log_before = (out / "log.txt").read_text()
    run_suite(str(suite), out, progress=False, only=["random"])  # cross_arch is outside the key: not refused
    commands = [line for line in (out / "log.txt").read_text()[len(log_before):].splitlines() if line.startswith("$ ")]
    assert len(commands) == 1 and " evaluate " in commands[0] and "--model mlp" in commands[0]
    after = json.loads(result_path.read_text())
    assert list(after["cross_arch"]) == ["convnet", "mlp"] and after["balanced_acc"] == before["balanced_acc"]
    assert "random_digits_b10_ipc2_s0  done\n" in suite_plan(str(suite), out)
    assert "cross-arch lenet left" in suite_plan(str(suite), out, cross_arch=["lenet"])  # bench --cross-arch
    with pytest.raises(BadInput, match="unknown evaluation model"):
        run_suite(str(suite), out, progress=False, cross_arch=["nosuch"])
    assert main(["bench", "--suite", str(suite), "--out", str(out), "--cross-arch", "nosuch", "--plan"]) == 2


def test_ddranking_uses_the_full_set_and_the_random_cell_of_the_same_ipc():
    key = {"beta": 10, "ipc": 10, "seed": 0}
    results = {
        "full": {"label": "full", "key": {"beta": 10}, "balanced_acc": {"mean": 0.9}},
        "random": {"label": "random", "key": {**key, "method": "random"}, "balanced_acc": {"mean": 0.7},
                   "syn_hard": {"mean": 0.7}},
        "m": {"label": "m", "key": {**key, "method": "m"}, "balanced_acc": {"mean": 0.8}, "syn_hard": {"mean": 0.6}},
    }
    ddranking(results, {})
    dd = results["m"]["ddranking"]
    assert dd["hlr"] == pytest.approx(0.3) and dd["ior"] == pytest.approx(0.1)
    assert 0 < dd["lrs"] < 1


def test_ddranking_ranks_each_class_order_against_its_own_random_cell_and_full_set():
    """A suite over several class orders has a random cell and a full-set reference per order (and one beta each):
    a cell's IOR and HLR use those of its own order, never the first found."""
    results = {}
    for i, order in enumerate([None, "random:1", "hard-tail"]):  # None: the natural order, a key without the entry
        ordering = {} if order is None else {"class_order": order}
        key = {"dataset": "fashion-mnist", "beta": 100, "ipc": 10, "seed": 0, **ordering}
        results[f"full{i}"] = {"label": "full", "key": {"full": "fashion-mnist", "beta": 100, **ordering},
                               "balanced_acc": {"mean": 0.9 - i / 10}}
        results[f"random{i}"] = {"label": "random", "key": {**key, "method": "random"},
                                 "balanced_acc": {"mean": 0.7 - i / 10}, "syn_hard": {"mean": 0.7 - i / 10}}
        results[f"dm{i}"] = {"label": "dm", "key": {**key, "method": "dm"}, "balanced_acc": {"mean": 0.8 - i / 20},
                             "syn_hard": {"mean": 0.8 - i / 20}}
    ddranking(results, {})
    for i in range(3):
        assert results[f"random{i}"]["ddranking"]["ior"] == 0.0  # each random cell against itself
        dd = results[f"dm{i}"]["ddranking"]
        assert dd["ior"] == pytest.approx(0.1 + i / 20) and dd["hlr"] == pytest.approx(0.1 - i / 20)
    holdout = {"label": "dm", "key": {**results["dm0"]["key"], "holdout": 50}, "balanced_acc": {"mean": 0.8},
               "syn_hard": {"mean": 0.8}}
    results["dm-val"] = holdout
    ddranking(results, {})
    assert "ddranking" not in holdout  # scored on the validation split: no random cell or full set of that split


def test_ddranking_keeps_a_relabeled_random_baseline_it_cannot_remake():
    """Results copied into a fresh --out without their artifacts: the relabeling cell's stored baseline (the random
    set relabeled by its teacher) stays, instead of falling back to the hard-label random cell."""
    key = {"beta": 10, "ipc": 10, "seed": 0}
    relabeled = {"ior": 0.0, "acc_syn_any": 0.8, "acc_rdm_any": 0.8, "rdm_regime": "relabel (teacher, T=4)"}
    results = {
        "random": {"label": "random", "key": {**key, "method": "random"}, "balanced_acc": {"mean": 0.7},
                   "syn_hard": {"mean": 0.7}},
        "u": {"label": "u", "key": {**key, "method": "u"}, "balanced_acc": {"mean": 0.8}, "syn_hard": {"mean": 0.6},
              "label_regime": "relabel (teacher, T=4)", "ddranking": relabeled},
    }
    assert ddranking(results, {}) == []
    assert results["u"]["ddranking"]["acc_rdm_any"] == 0.8 and results["u"]["ddranking"]["ior"] == pytest.approx(0)
    assert ddranking(results, {"u": {"balanced_acc": {"mean": 0.75}, "label_regime": "relabel (teacher, T=4)"}}) == []
    assert results["u"]["ddranking"]["ior"] == pytest.approx(0.05)  # one made now replaces it
    del results["u"]["ddranking"]
    # ranked against the hard-label random set for want of its artifact: named, for the bench to say what to do
    assert ddranking(results, {}) == [("u", "random")]
    assert results["u"]["ddranking"]["rdm_regime"] == "hard" and results["u"]["ddranking"]["ior"] == pytest.approx(0.1)
    said = unrelabeled_warning("u", "random")
    assert said.startswith("warning: u relabels") and "remove results/random.json" in said


def test_ddranking_without_the_full_set_or_the_random_cell_gives_what_it_can():
    key = {"beta": 10, "ipc": 10, "seed": 0}
    m = {"label": "m", "key": {**key, "method": "m"}, "balanced_acc": {"mean": 0.8}, "syn_hard": {"mean": 0.6}}
    random = {"label": "random", "key": {**key, "method": "random"}, "balanced_acc": {"mean": 0.7},
              "syn_hard": {"mean": 0.7}}
    results = {"m": dict(m), "random": random}
    ddranking(results, {})
    assert results["m"]["ddranking"]["ior"] == pytest.approx(0.1)
    assert "hlr" not in results["m"]["ddranking"] and "lrs" not in results["m"]["ddranking"]
    results = {"m": dict(m), "full": {"label": "full", "key": {"beta": 10}, "balanced_acc": {"mean": 0.9}}}
    ddranking(results, {})
    assert results["m"]["ddranking"]["hlr"] == pytest.approx(0.3) and "ior" not in results["m"]["ddranking"]
    # made by a suite without DD-Ranking (no hard-label evaluation): not ranked against the hard-label random set,
    # but against the random set relabeled by its teacher once that is made, beside the full set: IOR only
    unranked = {k: v for k, v in m.items() if k != "syn_hard"}
    results = {"m": unranked, "random": random, "full": {"label": "full", "key": {"beta": 10},
                                                         "balanced_acc": {"mean": 0.9}}}
    ddranking(results, {})
    assert "ddranking" not in results["m"]
    ddranking(results, {"m": {"balanced_acc": {"mean": 0.75}, "label_regime": "relabel (teacher, T=4)"}})
    assert results["m"]["ddranking"]["ior"] == pytest.approx(0.05)
    assert "hlr" not in results["m"]["ddranking"] and "lrs" not in results["m"]["ddranking"]


def test_only_takes_shell_style_patterns_of_labels_and_cell_names(tmp_path):
    from ltdistill.bench.suite import select

    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY_SUITE.replace("ipc = [2]", "ipc = [2, 4]") + '[[method]]\nname = "herding"\n')
    cells = plan_suite(str(suite), tmp_path / "run", only=None, device="cpu", data_dir=None, cross_arch=None).cells
    names = {c.name for c in select(cells, ["*_ipc4_*"])}
    assert names == {"random_digits_b10_ipc4_s0", "herding_digits_b10_ipc4_s0"}
    assert {c.name for c in select(cells, ["herd*", "random_digits_b10_ipc2_s0"])} == {
        "herding_digits_b10_ipc2_s0", "herding_digits_b10_ipc4_s0", "random_digits_b10_ipc2_s0"}
    with pytest.raises(BadInput, match=r"no cell has label or name \['\*_ipc8_\*'\]"):
        select(cells, ["herding", "*_ipc8_*"])  # a pattern that matches nothing is named, not skipped


def test_only_runs_the_named_cells_and_the_table_gathers_every_finished_one(tmp_path):
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY_SUITE + '[[method]]\nname = "herding"\n')
    out = tmp_path / "run"
    with pytest.raises(BadInput, match="no cell has label or name"):
        run_suite(str(suite), out, progress=False, only=["nosuch"])
    run_suite(str(suite), out, progress=False, only=["herding_digits_b10_ipc2_s0"])  # a cell name
    assert not (out / "report").exists()  # figures=False: the table and results alone
    assert sorted(p.name for p in (out / "results").glob("*.json")) == ["herding_digits_b10_ipc2_s0.json"]
    assert "herding_digits_b10_ipc2_s0  done" in suite_plan(str(suite), out)
    assert "full_digits_b10  to run" in suite_plan(str(suite), out, only=["full"])
    table = run_suite(str(suite), out, progress=False, only=["random"])  # a label; the full set not named
    assert not (out / "results" / "full_digits_b10.json").exists()
    assert "| herding |" in table.read_text() and "| random |" in table.read_text()
    herding = json.loads((out / "results" / "herding_digits_b10_ipc2_s0.json").read_text())
    assert "ior" in herding["ddranking"] and "hlr" not in herding["ddranking"]  # the random cell came later
    run_suite(str(suite), out, progress=False, only=["full"])
    herding = json.loads((out / "results" / "herding_digits_b10_ipc2_s0.json").read_text())
    assert {"hlr", "ior", "lrs"} <= set(herding["ddranking"])


def test_a_piece_gathers_the_cells_another_piece_finished_while_it_ran(tmp_path, monkeypatch):
    """Pieces run side by side in one directory: the table of the piece that ends last holds every finished cell,
    and DD-Ranking ranks a cell another piece finished after this one started (against this piece's random)."""
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY_SUITE + '[[method]]\nname = "herding"\n')
    out = tmp_path / "run"
    run_suite(str(suite), out, progress=False, only=["herding"])
    herding_json = out / "results" / "herding_digits_b10_ipc2_s0.json"
    finished_elsewhere = herding_json.read_text()
    herding_json.unlink()  # not finished yet when the random piece starts ...
    real_run_cell = bench.run_cell

    def run_cell_while_the_other_piece_finishes(cell, log, nproc=1):
        herding_json.write_text(finished_elsewhere)  # ... but finished while it runs
        return real_run_cell(cell, log, nproc)

    monkeypatch.setattr(bench.run, "run_cell", run_cell_while_the_other_piece_finishes)  # where run_suite finds it
    table = run_suite(str(suite), out, progress=False, only=["random"]).read_text()
    assert "| herding |" in table and "| random |" in table
    assert "ior" in json.loads(herding_json.read_text())["ddranking"]


def test_a_cell_result_with_a_nan_is_written_as_json_every_parser_reads(tmp_path, monkeypatch):
    """A NaN in a cell's result (a run that diverged, a ratio of zero to zero) is stored as null, not as the bare
    NaN token that json.dumps writes and strict parsers (JavaScript's, jq's) refuse."""
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY_SUITE)
    real_run_cell = bench.run_cell

    def run_cell_with_a_nan(cell, log, nproc=1):
        return {**real_run_cell(cell, log, nproc), "lt_test_std": float("nan")}

    monkeypatch.setattr(bench.run, "run_cell", run_cell_with_a_nan)
    out = tmp_path / "run"
    run_suite(str(suite), out, progress=False, only=["random"])

    def refuse(token):
        raise ValueError(f"bare {token} in a result file")

    stored = json.loads((out / "results" / "random_digits_b10_ipc2_s0.json").read_text(), parse_constant=refuse)
    assert stored["lt_test_std"] is None and stored["balanced_acc"]


def test_every_shipped_suite_loads_and_plans(tmp_path):
    """Each suite under benchmarks/suites parses, names existing presets, and restricts cells as it says."""
    from ltdistill.bench import SUITE_DIRS

    suites = sorted({p for d in SUITE_DIRS if d.is_dir() for p in d.glob("*.toml")})
    assert {p.stem for p in suites} >= {"quick", "fmnist", "fmnist-balanced"}
    for path in suites:
        suite = load_suite(path)
        cells, experts = plan(suite, tmp_path / path.stem, [])
        assert cells and all(c.experts is None or c.experts in {e.directory for e in experts.values()} for c in cells)
    fmnist, _ = plan(load_suite(next(p for p in suites if p.stem == "fmnist")), tmp_path / "f", [])
    ablations = [c for c in fmnist if c.label.startswith(("ltdd-", "unilevel-"))]
    assert ablations and all(c.key["beta"] == 100 and c.key["ipc"] == 10 for c in ablations)
    dc_budget = {c.key["ipc"]: c.key["set"][0] for c in fmnist if c.label == "dc"}  # same image updates per IPC
    assert dc_budget == {10: "iterations=200", 50: "iterations=40"}
    assert {(c.key["beta"], c.key["ipc"]) for c in fmnist if c.label == "ltdd"} == {
        (b, k) for b in (10, 50, 100) for k in (10, 50)}
    for cell in (c for c in fmnist if c.label == "ltdd"):  # LTDD's preset is per beta: lambda_cls 0.2 at beta 10
        assert f"fmnist-lt-b{cell.key['beta']}-ipc{cell.key['ipc']}.toml" in " ".join(cell.distill)
        assert (cell.key["preset"]["method"]["lambda_cls"] == 0.2) == (cell.key["beta"] == 10)
    # the papers' CIFAR-10-LT scale: whitened buffers, the published presets, EDC where ADSA's paper reports it
    cifar, buffers = plan(load_suite(next(p for p in suites if p.stem == "cifar10-lt")), tmp_path / "c", [])
    assert len(buffers) == 4 and all("--zca 0.1" in " ".join(e.command) for e in buffers.values())
    assert {(c.key["beta"], c.key["ipc"]) for c in cifar if c.label == "edc"} == {(100, 10), (100, 50)}
    for cell in (c for c in cifar if c.label in ("mtt", "datm", "ltdd", "edc")):
        assert cell.key["preset"] and "--protocol paper" in " ".join(cell.distill)
    # the recovery family shares one model cache per suite; other methods get no such flag
    shared = {c.label: "model_cache=" in " ".join(c.distill) for c in fmnist}
    assert shared["unilevel"] and shared["sre2l"] and shared["unilevel-no-remedy"]
    assert not shared["dm"] and not shared["ltdd"]
    assert all(str(tmp_path / "f" / "models") in " ".join(c.distill) for c in fmnist if shared[c.label])


def test_a_relabeling_set_is_ranked_against_random_images_relabeled_by_its_own_teacher(tmp_path, capsys):
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY_SUITE + '[[method]]\nname = "sre2l"\nset = ["epochs=2", "iterations=3"]\n')
    out = tmp_path / "run"
    run_suite(str(suite), out, progress=False)
    sre2l = json.loads((out / "results" / "sre2l_digits_b10_ipc2_s0.json").read_text())
    relabeled = out / "cells" / sre2l["cell"] / "eval-random-relabeled.json"
    assert relabeled.exists()
    ranking = sre2l["ddranking"]
    assert ranking["rdm_regime"].startswith("relabel")
    assert ranking["acc_rdm_any"] == json.loads(relabeled.read_text())["balanced_acc"]["mean"]
    assert ranking["ior"] == pytest.approx(sre2l["balanced_acc"]["mean"] - ranking["acc_rdm_any"])
    assert json.loads(relabeled.read_text())["epochs"] == sre2l["epochs"] == 2  # trained as the set's own runs
    assert "warning" not in capsys.readouterr().err
    # results copied into a fresh --out without their artifacts: ranked against Random's own labels, and said so
    copied = tmp_path / "copied"
    shutil.copytree(out / "results", copied / "results")
    stored = copied / "results" / "sre2l_digits_b10_ipc2_s0.json"
    stored.write_text(json.dumps({k: v for k, v in sre2l.items() if k != "ddranking"}))
    run_suite(str(suite), copied, progress=False)
    assert json.loads(stored.read_text())["ddranking"]["rdm_regime"] == "hard"
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning")]
    assert said == [unrelabeled_warning("sre2l_digits_b10_ipc2_s0", "random_digits_b10_ipc2_s0")]


def test_a_method_entry_replaces_the_suites_extra_evaluations_for_its_cells_without_touching_their_keys(tmp_path):
    """`cross_arch`, `calibrations` and `recipes` in a [[method]] replace the suite's lists for its cells (extra seeds
    that need the main score only); the cells' keys stay those of the suite's lists, so finished cells are kept, and
    `--cross-arch` models still reach every cell."""
    from ltdistill.bench.suite import plan, with_cross_arch

    text = TINY_SUITE.replace('eval_models = ["convnet"]', 'eval_models = ["convnet"]\ncross_arch = ["mlp"]\n'
                              'calibrations = ["adsa"]\nrecipes = ["sre2l"]')
    suite_file = tmp_path / "s.toml"
    suite_file.write_text(text + '[[method]]\nname = "sre2l"\n')
    usual = {c.label: c for c in plan(load_suite(suite_file), tmp_path, [])[0]}
    assert {"model-mlp", "labels-adsa", "recipe-sre2l"} <= set(usual["sre2l"].evals)
    suite_file.write_text(text + '[[method]]\nname = "sre2l"\ncross_arch = []\nrecipes = []\n')
    suite = load_suite(suite_file)
    lean = {c.label: c for c in plan(suite, tmp_path, [])[0]}
    assert set(lean["sre2l"].evals) == {"model-convnet", "hard", "labels-adsa"}
    assert lean["sre2l"].key == usual["sre2l"].key and lean["random"].evals == usual["random"].evals
    added = {c.label: c for c in plan(with_cross_arch(suite, ["lenet"]), tmp_path, [])[0]}
    assert "model-lenet" in added["sre2l"].evals and "model-lenet" in added["random"].evals
    suite_file.write_text(text + '[[method]]\nname = "sre2l"\ncalibrations = ["adsa", "adsa-t1"]\n')
    both = {c.label: c for c in plan(load_suite(suite_file), tmp_path, [])[0]}["sre2l"]  # ADSA at both temperatures
    command = both.evals["labels-adsa-t1"]
    assert command[command.index("--labels") + 1] == "adsa-t1" and "labels-adsa" in both.evals
    assert both.key == usual["sre2l"].key
    suite_file.write_text(text + '[[method]]\nname = "sre2l"\nrecipes = ["nosuch"]\n')
    with pytest.raises(BadInput, match="method 'sre2l': recipes must be"):
        load_suite(suite_file)
    suite_file.write_text(text + '[[method]]\nname = "sre2l"\ncross_arch = "mlp"\n')
    with pytest.raises(BadInput, match="cross_arch must be a list"):
        load_suite(suite_file)


def test_cells_of_several_seeds_are_told_apart_and_summarized_across_seeds():
    from ltdistill.report.tables import bench_table

    def cell(label, seed, acc, few):
        return {"dataset": "digits", "imbalance_factor": 10, "ipc": 10, "label": label, "key": {"seed": seed},
                "balanced_acc": {"mean": acc, "std": 0.01}, "many": 0.9, "medium": 0.8, "few": few,
                "class_acc_std": 0.1, "lt_test": {"precision": 0.5, "recall": 0.5, "f1": 0.5}}

    one_seed = bench_table([cell("a", 0, 0.70, 0.5), cell("b", 0, 0.80, 0.6)])
    assert "(seed" not in one_seed and "Across suite seeds" not in one_seed
    text = bench_table([cell("a", 0, 0.70, 0.5), cell("a", 1, 0.74, 0.7), cell("b", 0, 0.80, 0.6)])
    assert "| a (seed 0) |" in text and "| a (seed 1) |" in text and "| b (seed 0) |" in text
    across = text.split("Across suite seeds")[1]
    assert "| digits | 10 | 10 | a | 2 | 72.00 ± 2.00 | 60.0 | 70.00 74.00 |" in across
    assert "| b |" not in across  # one seed: no spread to report
    # cells of several class orders (fmnist-orders) name their order; a table of one order does not
    orders = [{**cell("a", 0, 0.70, 0.5), "class_order": "random:2"}, {**cell("a", 0, 0.72, 0.5),
                                                                        "class_order": "random:1"}]
    text = bench_table(orders)
    assert text.index("| a (random:1 order) |") < text.index("| a (random:2 order) |")
    assert "order)" not in bench_table(orders[:1])


def test_jobs_run_cells_side_by_side_with_the_results_of_one_at_a_time(tmp_path):
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY_SUITE + '[[method]]\nname = "herding"\n')
    run_suite(str(suite), tmp_path / "one", progress=False, jobs=1)
    run_suite(str(suite), tmp_path / "two", progress=False, jobs=3)
    one, two = tmp_path / "one", tmp_path / "two"
    names = sorted(p.name for p in (one / "results").glob("*.json"))
    assert names == sorted(p.name for p in (two / "results").glob("*.json")) and len(names) == 3
    for name in names:
        a, b = (json.loads((d / "results" / name).read_text()) for d in (one, two))
        assert a["balanced_acc"] == b["balanced_acc"] and a.get("ddranking") == b.get("ddranking"), name
    commands = (one / "log.txt").read_text().count("$ ")
    assert (two / "log.txt").read_text().count("$ ") == commands  # every command listed in the suite's log
    cell_logs = list(two.glob("cells/*/log.txt"))
    assert len(cell_logs) == 3 and sum(p.read_text().count("$ ") for p in cell_logs) == commands
    with pytest.raises(BadInput, match="--jobs must be a whole number of at least 1 or 'auto'"):
        run_suite(str(suite), two, progress=False, jobs=0)


def test_command_slots_run_one_thread_a_command_on_a_cpu_and_check_their_values():
    from ltdistill.bench.run import command_slots

    cores = len(os.sched_getaffinity(0))
    assert command_slots("auto", "auto", "cpu") == (cores, 1)
    assert command_slots("auto", "auto", "cuda") == (1, None)
    assert command_slots(3, 2, "cpu") == (3, 2) and command_slots(2, "auto", "cuda:1") == (2, None)
    for jobs, threads in [(0, "auto"), ("many", "auto"), (True, "auto"), (1, 0), (1, 1.5)]:
        with pytest.raises(BadInput, match="must be a whole number of at least 1 or 'auto'"):
            command_slots(jobs, threads, "cpu")


@pytest.mark.parametrize("fresh", [False, True])
def test_each_command_runs_on_the_threads_the_bench_gives_it(tmp_path, monkeypatch, fresh):
    """2 threads, where the test's own process and what it starts run on 1: only the bench can have set the 2
    that every command records."""
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY_SUITE)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_suite(str(suite), tmp_path / "run", progress=False, jobs=1, threads=2, fresh_interpreters=fresh,
                  only=["random"])  # its distillation and evaluation; the full-set reference adds nothing here
    finally:
        torch.set_num_threads(before)
    results = [json.loads(p.read_text()) for p in (tmp_path / "run" / "results").glob("*.json")]
    assert len(results) == 1 and results[0]["host"]["threads"] == 2 and results[0]["distill"]["host"]["threads"] == 2


def test_commands_start_warm_from_one_server_with_the_results_of_fresh_interpreters(tmp_path, monkeypatch):
    from ltdistill.bench import warm

    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY_SUITE)
    served = []
    serve = warm.CommandServer.run
    monkeypatch.setattr(warm.CommandServer, "run", lambda self, cmd, output, threads=None: served.append(
        (cmd, threads)) or serve(self, cmd, output, threads))
    run_suite(str(suite), tmp_path / "warm", progress=False)
    monkeypatch.undo()
    assert warm.SERVER is None  # closed with the suite
    run_suite(str(suite), tmp_path / "fresh", progress=False, fresh_interpreters=True)
    assert len(served) == (tmp_path / "warm" / "log.txt").read_text().count("$ ") == 3  # distill, 2 evaluations
    assert {threads for _, threads in served} == {1}  # a CPU bench's default
    names = sorted(p.name for p in (tmp_path / "fresh" / "results").glob("*.json"))
    assert names == sorted(p.name for p in (tmp_path / "warm" / "results").glob("*.json")) and len(names) == 2
    for name in names:
        a, b = (json.loads((tmp_path / d / "results" / name).read_text()) for d in ("warm", "fresh"))
        assert (a["balanced_acc"], a["per_class_acc"], a.get("ddranking")) == (
            b["balanced_acc"], b["per_class_acc"], b.get("ddranking")), name


@pytest.mark.skipif(sys.platform != "linux", reason="the command server forks (bench/warm.py)")
def test_a_command_server_that_served_nothing_ends_at_once(tmp_path):
    """A suite with nothing left to run closes its server before the server's imports are done: killed then, not
    waited for (seconds of torch imports that no command would use)."""
    from ltdistill.bench import warm

    server = warm.CommandServer(str(tmp_path))
    server.close()
    assert server.process.returncode == -signal.SIGKILL


@pytest.mark.skipif(sys.platform != "linux", reason="the command server forks (bench/warm.py)")
def test_the_command_server_gives_each_command_its_output_and_exit_status(tmp_path):
    from ltdistill.bench import warm

    server = warm.CommandServer(str(tmp_path))
    try:
        with open(tmp_path / "log", "ab") as log:
            assert server.run([*bench.CLI, "models"], log.fileno()) == 0
            assert server.run([*bench.CLI, "distill", "--method", "nosuch", "--dataset", "digits", "--ipc", "1",
                               "--out", str(tmp_path / "set")], log.fileno()) == 2
            children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
            earlier = set(children.read_text().split())  # the finished ones, until the server reaps them
            status = []
            slow = threading.Thread(target=lambda: status.append(server.run(
                [*bench.CLI, "evaluate", "--full", "--dataset", "digits", "--imbalance", "10", "--epochs", "500",
                 "--no-progress"], log.fileno())))
            slow.start()
            deadline = time.time() + 60
            while not (new := set(children.read_text().split()) - earlier) and time.time() < deadline:
                time.sleep(0.05)
            os.kill(int(new.pop()), signal.SIGKILL)
            slow.join(60)
            assert status == [-1]  # died without an exit status
    finally:
        server.close()
    assert server.process.returncode == 0
    text = (tmp_path / "log").read_text()
    assert "convnet" in text and "unknown method 'nosuch'" in text and not (tmp_path / "set").exists()


def test_cells_wait_for_their_buffer_and_for_the_first_recovery_cell_of_their_data_and_seed(tmp_path):
    from ltdistill.bench import Cell, dependencies

    def cell(name, method, beta, experts=None, **key):
        return Cell(name, method, {"method": method, "beta": beta, "seed": 0, **key}, tmp_path / name, [],
                    experts=experts)

    standard, decoupled = tmp_path / "standard-1", tmp_path / "decoupled-1"
    cells = [cell("a", "unilevel", 10), cell("b", "dm", 10), cell("c", "sre2l", 10), cell("d", "unilevel", 50),
             cell("e", "edc", 10), cell("f", "mtt", 10, standard), cell("g", "ltdd", 10, decoupled),
             cell("h", "unilevel", 10, seed=1), cell("i", "sre2l", 10, seed=1), cell("j", "sre2l", 10, ipc=50),
             cell("k", "unilevel", 10, class_order="hard-tail")]
    assert dependencies(cells, {standard}) == {"a": (), "b": (), "c": ("a",), "d": (), "e": ("a",),
                                               "f": ("experts standard-1",), "g": (),  # g's buffer is trained
                                               "h": (), "i": ("h",), "j": ("a",), "k": ()}  # models: other seed, order


def test_tasks_start_when_what_they_wait_for_is_done_the_longest_path_first():
    from ltdistill.bench import Task, run_tasks

    events, lock = [], threading.Lock()

    def work(name, seconds=0.05):
        def run():
            with lock:
                events.append(("start", name))
            time.sleep(seconds)
            with lock:
                events.append(("end", name))
        return run

    # a's path is 10 + 30 s (c waits for it), b's 50 s, an unknown cost counts as longest: d, b, a, c one at a time
    tasks = [Task("a", work("a", 0.3), 10.0), Task("b", work("b"), 50.0), Task("c", work("c"), 30.0, ("a", "gone")),
             Task("d", work("d"))]
    run_tasks(tasks, jobs=1)
    assert [name for kind, name in events if kind == "start"] == ["d", "b", "a", "c"]
    events.clear()
    tasks[1] = Task("b", work("b"), 35.0)  # now a's path (40 s) is the longest known, and c's own 30 s under b's
    run_tasks(tasks, jobs=2)
    assert [name for kind, name in events if kind == "start"] == ["d", "a", "b", "c"]
    assert events.index(("end", "a")) < events.index(("start", "c"))  # c waits for a while the other core is free


def test_a_planned_run_plays_the_schedule_over_the_estimates():
    from ltdistill.bench.schedule import Task, simulated_seconds

    def idle():
        pass

    tasks = [Task("a", idle, 10.0), Task("b", idle, 50.0), Task("c", idle, 30.0, ("a",)), Task("d", idle)]
    assert simulated_seconds(tasks, jobs=1) == 90.0  # one after another; d, unknown, counts no time
    assert simulated_seconds(tasks, jobs=2) == 50.0  # b beside a then c (10 + 30 s)
    assert simulated_seconds(tasks[:3] + [Task("e", idle, 45.0, ("c",))], jobs=2) == 85.0  # the chain a-c-e


def test_tasks_start_side_by_side_only_while_their_estimated_memory_fits():
    """Two cells that each need 12 GB run one after the other in 20 GB, and side by side in 30 GB; a small task
    fills the room the large one leaves; a task larger than the memory given runs, alone. The plan plays the same."""
    from ltdistill.bench import Task, run_tasks
    from ltdistill.bench.schedule import simulated_seconds

    running, most, lock = set(), [], threading.Lock()

    def work(name):
        def run():
            with lock:
                running.add(name)
                most.append(set(running))
            time.sleep(0.1)
            with lock:
                running.discard(name)
        return run

    def tasks():
        return [Task("a", work("a"), 50.0, memory_mb=12000.0), Task("b", work("b"), 40.0, memory_mb=12000.0),
                Task("c", work("c"), 10.0, memory_mb=500.0)]

    run_tasks(tasks(), jobs=2, memory_mb=20000.0)
    assert {"a", "b"} not in most and {"a", "c"} in most  # c beside a, then b once a is done
    assert simulated_seconds(tasks(), jobs=2, memory_mb=20000.0) == 90.0  # a (c beside it), then b
    most.clear()
    run_tasks(tasks(), jobs=2, memory_mb=30000.0)
    assert {"a", "b"} in most
    assert simulated_seconds(tasks(), jobs=2, memory_mb=30000.0) == 50.0  # a beside b, then c
    most.clear()
    run_tasks(tasks(), jobs=2, memory_mb=8000.0)  # a and b each alone; c beside neither
    assert all(len(s) == 1 for s in most) and len(most) == 3
    assert simulated_seconds(tasks(), jobs=2, memory_mb=8000.0) == 100.0
    if Path("/proc/meminfo").exists():  # what `bench` gives them: the memory free now
        from ltdistill.runtime import available_memory_mb

        assert 0 < available_memory_mb() < math.inf


def test_a_failed_task_or_item_starts_nothing_new_and_its_error_is_raised():
    from ltdistill.bench import Task, in_parallel, run_tasks

    started, lock = [], threading.Lock()

    def work(item):
        with lock:
            started.append(item)
        if item == 0:
            raise BadInput("cell 0 failed")
        time.sleep(0.05)  # a running cell takes a while; the failure is seen before many more start

    with pytest.raises(BadInput, match="cell 0 failed"):
        in_parallel(work, list(range(50)), jobs=2)
    assert 0 in started and len(started) < 50
    started.clear()
    with pytest.raises(BadInput, match="cell 0 failed"):
        run_tasks([Task(str(i), functools.partial(work, i), 50.0 - i) for i in range(50)], jobs=2)
    assert 0 in started and len(started) < 50


def planned_trajectory_cell(tmp_path, stem: str = "official", iterations: int | None = None):
    """A one-cell MTT suite on digits and its cell as `ltdistill bench` plans it for a CPU run: (suite, out, cell);
    `iterations`: its --set iterations (else MTT's default)."""
    suite = tmp_path / "traj.toml"
    settings = f'\nset = ["iterations={iterations}"]' * (iterations is not None)
    suite.write_text(f'convnet_stem = "{stem}"\n'
                     + TINY_SUITE.replace('name = "random"', f'name = "mtt"\nexperts = "standard"{settings}')
                     + "[experts.standard]\nnum = 1\nepochs = 2\n")
    out = tmp_path / "run"
    cells, _ = bench.plan(load_suite(suite), out, bench.command_flags("cpu", None))
    return suite, out, cells[-1]


def write_checkpoint(cell, iteration: int, seconds: list | None = None, devices: list | None = None) -> None:
    """A checkpoint at `iteration`, with the loop's timings and stretches where given (engine/loop.py's fields)."""
    from safetensors.torch import save_file

    path = cell.artifact / ".checkpoint" / "state.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    timing = {} if seconds is None else {"seconds": json.dumps(seconds), "devices": json.dumps(devices)}
    save_file({"x": torch.zeros(1)}, str(path), metadata={"iteration": str(iteration), **timing})


def test_a_trajectory_cell_is_the_same_cell_whatever_the_device_or_the_spelling_of_out(tmp_path, monkeypatch):
    """Its key names its expert buffer by directory name, not by the command that trains it: a run begun on the CPU
    resumes on a GPU, or under another spelling of --out, from the same checkpoint."""
    suite, out, cell = planned_trajectory_cell(tmp_path)
    assert cell.key["experts"] == cell.experts.name and "--out" not in json.dumps(cell.key)
    write_checkpoint(cell, 7)
    monkeypatch.chdir(tmp_path)
    for where, device in [(out, "cpu"), (out, "cuda"), ("run/", "cuda"), ("./run", "cpu")]:
        assert re.search(r"mtt_digits_b10_ipc2_s0 +distilling \(checkpoint at iteration 7\)",
                         suite_plan(str(suite), where, device=device)), (where, device)


def test_a_resumed_distillation_is_estimated_from_the_iterations_its_checkpoint_does_not_hold(tmp_path):
    """A cell distilling from a checkpoint at iteration 150 of a stored cell's 200 has a quarter of that cell's
    distillation left, and all of its evaluation; past the stored count, none of its distillation; without a
    checkpoint, or with a stored cost that does not say how many iterations it ran, all of it. Its peak memory, the
    largest of its stored timings', is taken as needed until its set is made."""
    from ltdistill.bench import estimate

    _, _, cell = planned_trajectory_cell(tmp_path, iterations=200)
    assert cell.iterations == 200
    cost = estimate.CellCost(distill=800.0, evaluation=100.0, iterations=200)
    assert cost.left(cell) == 900.0
    write_checkpoint(cell, 150)
    assert cost.left(cell) == 300.0
    assert estimate.CellCost(distill=800.0, evaluation=100.0).left(cell) == 900.0
    write_checkpoint(cell, 250)
    assert cost.left(cell) == 100.0
    result = {"distill": {"s_per_iteration": 4.0, "iterations": 200}, "seconds_per_run": 50.0, "runs": 2}
    assert estimate.result_seconds(result)[0] == cost
    assert estimate.median_cost([cost, dataclasses.replace(cost, distill=400.0, iterations=100)]).iterations == 150
    # parts timed by torchrun's processes count as one process's: their wall time times the processes; one rank's
    # peak memory is not one process's
    split = {**result, "distill": {**result["distill"], "host": {"processes": 2}, "peak_rss_mb": 6000.0},
             "host": {"processes": 2}, "experts_seconds": 30.0, "experts_processes": 2}
    assert estimate.result_seconds(split) == (dataclasses.replace(cost, distill=1600.0, evaluation=200.0), 60.0)
    assert estimate.result_seconds({**result, "experts_seconds": 30.0})[1] == 30.0
    # its peak memory, the largest of the stored ones, counts until its set is made (schedule.run_tasks)
    result["distill"]["peak_rss_mb"] = 9000.0
    stored = estimate.median_cost([estimate.result_seconds(result)[0], dataclasses.replace(cost, peak_mb=12000.0)])
    assert stored.peak_mb == 12000.0 and stored.memory_left(cell) == 12000.0
    assert estimate.memory_estimate(cell, {("mtt", "digits", 10.0, 2, None): stored}) == 12000.0
    assert estimate.memory_estimate(cell, {("mtt", "digits", 10.0, 3, None): stored}) == 0.0
    cell.artifact.mkdir(parents=True, exist_ok=True)
    (cell.artifact / "meta.json").write_text("{}")
    assert stored.memory_left(cell) == 0.0


def test_a_resumed_distillation_counts_the_rest_at_the_pace_its_checkpoint_timed_on_this_device(tmp_path):
    """Where its checkpoint timed OWN_PACE_ITERATIONS or more iterations on the device it runs on, a distilling cell
    counts the iterations left of its own count at their mean (the newest OWN_PACE_WINDOW), whatever a stored cost
    made on another host says; iterations timed on another device, or too few here, leave the stored pace. Its own
    count is its command's (--set iterations), not the stored cell's."""
    from ltdistill.bench import estimate
    from ltdistill.engine.loop import checkpoint_seconds

    _, _, cell = planned_trajectory_cell(tmp_path, iterations=100)
    here, gpu = "cpu (AMD EPYC (family 25, model 17), AVX512)", "cuda (NVIDIA H200)"
    stored = estimate.CellCost(distill=800.0, evaluation=100.0, iterations=200)  # 4 s an iteration elsewhere
    assert stored.left(cell, here) == 4.0 * 100 + 100.0  # its own 100 iterations, not the stored 200
    # 10 iterations: 4 untimed (an older checkpoint's), 3 on a GPU, then 3 here
    write_checkpoint(cell, 10, [0.5, 0.5, 0.5, 10.0, 20.0, 30.0], [[0, None], [4, gpu], [7, here]])
    assert checkpoint_seconds(cell.artifact, here) == [10.0, 20.0, 30.0]
    assert checkpoint_seconds(cell.artifact, gpu) == [0.5, 0.5, 0.5]
    assert stored.left(cell, here) == 4.0 * 90 + 100.0  # 3 timed here: too few
    write_checkpoint(cell, 8, [0.5] * 3 + [10.0, 20.0, 30.0, 10.0, 20.0], [[0, gpu], [3, here]])
    assert stored.left(cell, here) == 18.0 * 92 + 100.0  # 5 here: their mean
    assert stored.left(cell, gpu) == 4.0 * 92 + 100.0 and stored.left(cell) == 4.0 * 92 + 100.0
    write_checkpoint(cell, 60, [1.0] * 10 + [3.0] * 50, [[0, here]])
    assert stored.left(cell, here) == 3.0 * 40 + 100.0  # the newest 50
    write_checkpoint(cell, 60, [3.0] * 58 + [400.0, 3.0], [[0, here]])  # one iteration stopped for minutes
    assert stored.left(cell, here) == 3.0 * 40 + 100.0
    assert estimate.estimate(cell, {("mtt", "digits", 10.0, 2, None): stored}, here) == 220.0
    write_checkpoint(cell, 150, [2.0] * 150, [[0, here]])
    assert stored.left(cell, here) == 100.0  # past its own count: its evaluation is left
    write_checkpoint(cell, 60, [3.0] * 60, [[0, here]])  # a stored cost that never said its iterations
    assert estimate.CellCost(distill=800.0, evaluation=100.0).left(cell, here) == 3.0 * 40 + 100.0
    assert estimate.CellCost(distill=800.0, evaluation=100.0).left(cell) == 900.0
    for seconds, devices in (({"a": 1}, [[0, here]]), ([2.0] * 10, [[0, here, 1]]), ([2.0] * 10, [["x", here]]),
                             ([2.0] * 10, 5)):  # timings this loop never writes: the stored pace
        write_checkpoint(cell, 10, seconds, devices)
        assert checkpoint_seconds(cell.artifact, here) == [] and stored.left(cell, here) == 4.0 * 90 + 100.0


def test_the_plan_says_where_a_resumed_distillation_is_counted_at_its_own_pace(tmp_path, monkeypatch):
    from ltdistill.bench import estimate
    from ltdistill.engine.loop import device_here

    suite, out, cell = planned_trajectory_cell(tmp_path, iterations=100)
    assert device_here("cpu") == f"cpu ({runtime.processor()})"
    if not torch.cuda.is_available():
        assert device_here("cuda") is None
    stored = {("mtt", "digits", 10.0, 2, None): estimate.CellCost(distill=800.0, evaluation=100.0, iterations=200)}
    monkeypatch.setattr(status, "stored_costs", lambda out, device: (stored, {}, (1.0, 0)))
    write_checkpoint(cell, 60, [3.0] * 60, [[0, device_here("cpu")]])
    row = next(line for line in suite_plan(str(suite), out).splitlines() if line.startswith(cell.name))
    assert re.search(r"distilling \(checkpoint at iteration 60\) +~3 min \(its iterations at the 3\.0 s each it has "
                     r"taken here\)$", row), row
    write_checkpoint(cell, 60, [3.0] * 60, [[0, "cuda (NVIDIA H200)"]])
    row = next(line for line in suite_plan(str(suite), out).splitlines() if line.startswith(cell.name))
    assert row.endswith("~4 min"), row  # 40 iterations at the stored 4 s, and 100 s of evaluation
    # a distillation that peaks over LARGE_PEAK_MB by its stored cost says so, until its set is made
    stored[("mtt", "digits", 10.0, 2, None)] = dataclasses.replace(stored[("mtt", "digits", 10.0, 2, None)],
                                                                   peak_mb=12288.0)
    row = next(line for line in suite_plan(str(suite), out).splitlines() if line.startswith(cell.name))
    assert row.endswith("~4 min; 12.0 GB at its peak"), row


def test_the_convnet_stem_is_in_every_key_and_command_and_pad1_keys_are_those_made_before_it(tmp_path):
    """Cells, expert buffers and the full-set reference of the official network never share a directory or a
    finished result with the pad1 network's; pad1 keys are exactly the keys stored before the stem existed."""
    _, out, official = planned_trajectory_cell(tmp_path)
    _, _, pad1 = planned_trajectory_cell(tmp_path, stem="pad1")
    assert official.key["stem"] == "official" and "stem" not in pad1.key
    assert official.directory != pad1.directory and official.experts != pad1.experts
    assert {k: v for k, v in official.key.items() if k not in ("stem", "experts")} == \
        {k: v for k, v in pad1.key.items() if k != "experts"}
    for cell, stem in ((official, "official"), (pad1, "pad1")):
        for command in (cell.distill, *cell.evals.values()):
            assert command[command.index("--convnet-stem") + 1] == stem
    (out / "results").mkdir(parents=True)
    bench.result_json(out, pad1.name).write_text(json.dumps({"key": pad1.key, "cell": pad1.directory.name}))
    with pytest.raises(BadInput, match="stem differ"):
        bench.check_finished_cells([official], out)


def test_a_presets_comments_never_change_its_cells_but_its_settings_do(tmp_path):
    """A cell's key holds its preset's parsed settings: rewording the preset's comments keeps its cells (directory and
    finished result), a changed value keys them apart, and a result stored, or a cell begun, when keys held the
    preset's text still counts as the same cell."""
    preset = tmp_path / "dm.toml"
    suite = tmp_path / "s.toml"
    suite.write_text(TINY_SUITE.replace('name = "random"', f'name = "dm"\npreset = "{preset}"'))
    out = tmp_path / "run"

    def planned(text):
        preset.write_text(text)
        return plan_suite(str(suite), out, only=["dm"], device="cpu", data_dir=None, cross_arch=None).selected[0]

    settings = '[method]\niterations = 3\n'
    cell = planned("# measured: 80.1\n" + settings)
    assert cell.key["preset"] == {"method": {"iterations": 3}}
    reworded = planned("# see docs/results.md\n" + settings + "# end\n")
    assert reworded.key == cell.key and reworded.directory == cell.directory
    assert planned(settings.replace("3", "4")).directory != cell.directory
    (out / "results").mkdir(parents=True)
    stored = {**cell.key, "preset": "# an older comment\n" + settings}  # as a key held the text before
    bench.result_json(out, cell.name).write_text(json.dumps({"key": stored}))
    bench.check_finished_cells([reworded], out)  # the same cell: nothing raised
    assert bench.status.cell_status(reworded, out).startswith("done")
    with pytest.raises(BadInput, match="preset differ"):
        bench.check_finished_cells([planned(settings.replace("3", "4"))], out)
    # a cell begun while keys held the preset's text resumes in the directory it was begun in
    text = "# measured: 80.1\n" + settings
    begun = bench.cell_directory(out, f"dm-{bench.digest({**cell.key, 'preset': text})}")
    begun.mkdir(parents=True)
    assert planned(text).directory == begun and planned(settings).directory == cell.directory


def test_a_suites_experts_may_whiten_their_data_and_the_sets_made_from_them_follow(tmp_path):
    """`zca` in an [experts] table (the papers' CIFAR buffers: ZCA at 0.1): the buffer is trained on whitened data
    under its own key, and the trajectory set distilled from it is whitened like it (its data record says so)."""
    suite, out, cell = planned_trajectory_cell(tmp_path, iterations=2)
    suite.write_text(suite.read_text().replace("num = 1\nepochs = 2\n", "num = 1\nepochs = 2\nzca = 0.1\n")
                     .replace("[data]", "full = false\n[data]")
                     .replace('"iterations=2"', '"iterations=2", "max_start_epoch=1", "expert_epochs=1", '
                              '"syn_steps=2"'))
    whitened = bench.plan(load_suite(suite), out, bench.command_flags("cpu", None))[0][-1]
    assert whitened.experts != cell.experts and whitened.directory != cell.directory
    run_suite(str(suite), out, progress=False)
    assert "--zca 0.1" in (out / "log.txt").read_text()
    assert json.loads((whitened.experts / "index.json").read_text())["zca_eps"] == 0.1
    assert json.loads((whitened.artifact / "meta.json").read_text())["zca_eps"] == 0.1


def test_plan_lists_an_expert_buffer_to_train_only_while_a_cell_still_needs_it(tmp_path):
    suite, out, cell = planned_trajectory_cell(tmp_path)
    buffer = f"experts {cell.experts.name}"
    assert re.search(rf"{buffer} +to train", suite_plan(str(suite), out))
    bench.result_json(out, cell.name).parent.mkdir(parents=True)
    bench.result_json(out, cell.name).write_text(json.dumps({"key": cell.key, "cell": cell.directory.name}))
    assert re.search(rf"{buffer} +not needed \(its cells are finished\)", suite_plan(str(suite), out))
    (cell.experts / "accuracy.json").parent.mkdir(parents=True)
    (cell.experts / "accuracy.json").write_text("{}")
    assert re.search(rf"{buffer} +done", suite_plan(str(suite), out))


def test_plan_says_which_buffer_and_cell_a_process_works_on_now(tmp_path):
    """Pieces side by side on one --out (or a run in another terminal): --plan tells the buffer and cells being made
    now from the locks their makers hold, probed without taking or creating them."""
    from ltdistill.bench.commands import distill_lock, lock_beside
    from ltdistill.safe_io import held

    suite, out, cell = planned_trajectory_cell(tmp_path)
    assert "now" not in suite_plan(str(suite), out)
    assert not held(distill_lock(cell.directory)) and not distill_lock(cell.directory).exists()
    with bench.exclusive(lock_beside(cell.experts)):
        assert re.search(rf"experts {cell.experts.name} +to train; training now", suite_plan(str(suite), out))
    for lock in (distill_lock(cell.directory), lock_beside(cell.eval_json(next(iter(cell.evals))))):
        with bench.exclusive(lock):
            text = suite_plan(str(suite), out)
            assert re.search(rf"{cell.name} +to run; running now", text) and "training now" not in text
    assert "now" not in suite_plan(str(suite), out)  # released: nothing runs
    link = tmp_path / "link.lock"
    link.symlink_to(distill_lock(cell.directory))
    assert not held(link)


def test_plan_names_the_models_a_recovery_run_has_kept_before_its_images(tmp_path):
    """SRe2L, uni-level and EDC train their observers and teachers first (an hour at IPC 50), kept in the run's
    checkpoint directory before any loop checkpoint exists: the plan says what a rerun will not train again."""
    suite, out, cell = planned_trajectory_cell(tmp_path)
    kept = cell.artifact / ".checkpoint"
    kept.mkdir(parents=True)
    assert re.search(rf"{cell.name} +started \(no checkpoint yet\)", suite_plan(str(suite), out))
    (kept / "observer-convnet.safetensors").write_bytes(b"")
    (kept / "observer-convnet_bn.0123abcd.partial.pt").write_bytes(b"")
    assert re.search(rf"{cell.name} +distilling \(trained: observer-convnet; part-trained: observer-convnet_bn\)",
                     suite_plan(str(suite), out))
    write_checkpoint(cell, 7)  # the images' loop has begun: its checkpoint says more
    assert re.search(rf"{cell.name} +distilling \(checkpoint at iteration 7\)", suite_plan(str(suite), out))


def test_the_suite_bar_shows_where_each_running_cell_stands(tmp_path):
    _, out, cell = planned_trajectory_cell(tmp_path)
    bar = tqdm(total=2, file=io.StringIO())
    running = bench.RunningCells(bar, out, every=0.05)
    running.started(cell)
    assert bar.postfix == "mtt_digits_b10_ipc2_s0: started (nothing on disk yet)"
    write_checkpoint(cell, 25)
    deadline = time.time() + 10
    while "iteration 25" not in (bar.postfix or "") and time.time() < deadline:  # the thread's refresh
        time.sleep(0.01)
    assert bar.postfix == "mtt_digits_b10_ipc2_s0: distilling (checkpoint at iteration 25)"
    running.finished(cell)
    assert not bar.postfix
    running.stopped.set()


def test_a_piece_waits_for_another_piece_working_in_the_same_cell(tmp_path):
    """Two bench pieces side by side on one --out: while one holds a cell's lock, the other runs nothing there;
    once it is released the waiting piece finds the work and goes on (here: it does the work itself)."""
    import threading

    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY_SUITE.replace("runs = 1", "runs = 1\nfull = false"))
    out = tmp_path / "run"
    cell = bench.plan(load_suite(suite), out, bench.command_flags("cpu", None))[0][0]
    cell.directory.mkdir(parents=True)
    waiting = threading.Thread(target=run_suite, args=(str(suite), out), kwargs={"progress": False}, daemon=True)
    with bench.exclusive(cell.directory / ".distill.lock"):  # the other piece, distilling this cell
        waiting.start()
        time.sleep(3)
        log = out / "log.txt"
        assert waiting.is_alive() and not cell.artifact.exists()
        assert not log.exists() or " distill " not in log.read_text()
    # the holder ended (or died: the kernel drops its lock either way)
    waiting.join(timeout=120)
    assert not waiting.is_alive() and (out / "results" / f"{cell.name}.json").exists()


def test_an_evaluation_stopped_between_runs_resumes_with_the_runs_it_kept(tmp_path):
    """The full-set reference trains for hours: the runs an interrupted bench finished stay beside the cell's
    evaluation JSON (evaluate --runs-dir); --plan counts them and the rerun trains only the rest."""
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY_SUITE.replace("runs = 1", "runs = 2"))
    out = tmp_path / "run"
    full = next(c for c in bench.plan(load_suite(suite), out, bench.command_flags("cpu", None))[0] if c.label == "full")
    kept = bench.runs_dir(full.eval_json("main"))
    # the interrupted piece: the same command, both runs finished, killed before its JSON was written
    assert main([*full.evals["main"][len(bench.CLI):], "--runs-dir", str(kept), "--no-progress"]) == 0
    assert len(list(kept.glob("run-*.json"))) == 2
    assert re.search(r"full_digits_b10 +evaluating \(main left; 2 runs kept\)", suite_plan(str(suite), out))
    (kept / "partial-seed2-0123.pt").write_bytes(b"")  # a third run stopped mid-way (evaluate/runstore.PartialRun)
    assert "(main left; 2 runs kept; 1 run in progress kept)" in suite_plan(str(suite), out)
    run_suite(str(suite), out, progress=False)
    result = json.loads((out / "results" / "full_digits_b10.json").read_text())
    assert result["runs_read_back"] == 2 and len(result["per_run"]) == 2 and not kept.exists()


def test_a_finished_trajectory_cell_gets_a_later_cross_arch_model_without_its_expert_buffer(tmp_path):
    """Adding a cross-arch model evaluates the finished cell's artifact; it must not train the expert buffer the cell
    was distilled from (minutes to hours), nor drop the buffer's cost stored with the cell."""
    suite, out, cell = planned_trajectory_cell(tmp_path)
    assert main(["distill", "--method", "random", "--dataset", "digits", "--imbalance", "10", "--ipc", "2",
                 "--out", str(cell.artifact), "--no-progress"]) == 0  # stands in for the MTT set: any artifact does
    (out / "results").mkdir(parents=True)
    stored = {"label": "mtt", "key": cell.key, "experts_seconds": 123.0, "cross_arch": {"convnet": {"mean": 0.5}}}
    (out / "results" / f"{cell.name}.json").write_text(json.dumps(stored))
    run_suite(str(suite), out, progress=False, cross_arch=["mlp"])
    assert not (cell.experts / "accuracy.json").exists() and "experts" not in (out / "log.txt").read_text()
    result = json.loads((out / "results" / f"{cell.name}.json").read_text())
    assert list(result["cross_arch"]) == ["convnet", "mlp"] and result["experts_seconds"] == 123.0
    assert result["experts_epochs"] == 1 * 2  # the buffer's size beside its time: one expert of 2 epochs
    # an evaluation made on another device (a lent GPU's, copied into the cell) is folded in as it was run
    mlp_json = cell.eval_json("model-mlp")
    mlp_json.write_text(json.dumps({**json.loads(mlp_json.read_text()), "device": "cuda"}))
    (out / "results" / f"{cell.name}.json").write_text(json.dumps(stored))
    log_before = (out / "log.txt").read_text()
    run_suite(str(suite), out, progress=False, cross_arch=["mlp"])
    assert "$ " not in (out / "log.txt").read_text()[len(log_before):]
    commands = json.loads((out / "results" / f"{cell.name}.json").read_text())["commands"]
    assert "--device cuda" in [c for c in commands if "--model mlp" in c][0]
    assert "--device cpu" in [c for c in commands if "--model convnet" in c][0]


def test_plan_estimates_what_is_left_from_the_stored_costs_of_the_same_cells(tmp_path, monkeypatch, capsys):
    """bench --plan: a cell to run is estimated from a finished result of the same cell (here one in the run
    directory: 100 s of distillation, 3 evaluations of 2 runs of 10 s), and the total says what is left."""
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY_SUITE)
    out = tmp_path / "run"
    (out / "results").mkdir(parents=True)
    (out / "results" / "other.json").write_text(json.dumps({
        "label": "random", "method": "random", "dataset": "digits", "imbalance_factor": 10.0, "ipc": 2,
        "device": "cpu", "distill": {"wall_time_s": 100.0}, "seconds_per_run": 10.0, "runs": 2,
        "commands": ["ltdistill distill x", "ltdistill evaluate a", "ltdistill evaluate b", "ltdistill evaluate c"]}))
    plan = suite_plan(str(suite), out)
    assert re.search(r"random_digits_b10_ipc2_s0 +to run +~2 min", plan), plan  # 100 + 3 x 2 x 10 s = 160 s
    # what the cell's directory holds is taken off: its set made (the 100 s), then its evaluation runs kept
    from ltdistill.bench.commands import runs_dir
    from ltdistill.bench.estimate import estimate, stored_costs

    cell = next(c for c in plan_suite(str(suite), out, only=None, device="cpu", data_dir=None, cross_arch=None).cells
                if c.name == "random_digits_b10_ipc2_s0")
    assert estimate(cell, stored_costs(out, "cpu")[0]) == 160.0
    cell.artifact.mkdir(parents=True)
    (cell.artifact / "meta.json").write_text("{}")  # hard labels only: no hard-label evaluation to run
    assert estimate(cell, stored_costs(out, "cpu")[0]) == 60.0
    for name in cell.evals:
        runs_dir(cell.eval_json(name)).mkdir()
        (runs_dir(cell.eval_json(name)) / "run-0.json").write_text("{}")
    assert estimate(cell, stored_costs(out, "cpu")[0]) == 0.0
    shutil.rmtree(cell.directory)
    assert re.search(r"what is left: ~\d+ min on one cpu thread", plan)  # the full reference: docs/data's quick suite
    assert "of wall time at --jobs 2" in suite_plan(str(suite), out, jobs=2)
    assert "wall time" not in suite_plan(str(suite), out, jobs=1)
    unmeasured = suite_plan(str(suite), tmp_path / "elsewhere", only=["random"], jobs=2)  # none of IPC 2 stored
    assert unmeasured.endswith("what is left has no stored cost of the same cells here (1 without an estimate)\n")
    planned = plan_suite(str(suite), out, only=None, device="cpu", data_dir=None, cross_arch=None)
    left = sum(s for s in status.plan_rows(planned, out, "cpu")[1] if s is not None)
    monkeypatch.setattr(watch, "LONG_RUN_S", 0.75 * left)  # over what one job has left, under its half at --jobs 2
    assert status.warn_if_long(planned, out, "cpu", 1)
    assert "warning: what is left of this suite takes ~" in capsys.readouterr().err
    assert status.warn_if_long(planned, out, "cpu", 1, nproc=2)  # the estimate stays one process's, and says so
    assert "one process a command: under --nproc 2 the commands that split" in capsys.readouterr().err
    assert not status.warn_if_long(planned, out, "cpu", 2) and not capsys.readouterr().err
    selected = plan_suite(str(suite), out, only=["random"], device="cpu", data_dir=None, cross_arch=None)
    monkeypatch.setattr(watch, "LONG_RUN_S", 0)
    assert status.warn_if_long(selected, out, "cpu", 1)  # --only: the warning speaks of those cells, not the suite
    assert "warning: what is left of the cells --only selects takes ~" in capsys.readouterr().err
    # a preset never made before is estimated from its method's cells, and its row names the stand-in
    x, y = "short_class='all'", "short_class='error'"  # two settings of random's config (both checked by plan)
    suite.write_text(TINY_SUITE + f'[[method]]\nname = "random"\nlabel = "random-other"\nset = ["{x}"]\n')
    plan = suite_plan(str(suite), out, only=["random-other"])  # with the overrides the stand-in's cost lacks
    assert re.search(rf"random-other_digits_b10_ipc2_s0 +to run +~2 min \(as random; not in it: {x}\)", plan), plan
    suite.write_text(TINY_SUITE.replace('name = "random"', f'name = "random"\nset = ["{y}"]')
                     + f'[[method]]\nname = "random"\nlabel = "random-other"\nset = ["{y}", "{x}"]\n')
    plan = suite_plan(str(suite), out, only=["random-other"])  # y is the method's own cell's too
    assert re.search(rf"random-other_digits_b10_ipc2_s0 +to run +~2 min \(as random; not in it: {x}\)", plan), plan
    assert "(as random)" not in suite_plan(str(suite), out, only=["random_digits_b10_ipc2_s0"])
    # under DD-Ranking's protocol: the same cell's cost under it, else under ltdistill's, named as the stand-in
    suite.write_text(TINY_SUITE.replace("[data]", 'ranking = "ddranking"\n[data]', 1))
    plan = suite_plan(str(suite), out, only=["random"])
    assert re.search(r"random_digits_b10_ipc2_s0 +to run +~2 min \(as random, ltdistill's ranking\)", plan), plan
    (out / "results" / "ranked.json").write_text(json.dumps({
        "label": "random", "method": "random", "dataset": "digits", "imbalance_factor": 10.0, "ipc": 2,
        "device": "cpu", "distill": {"wall_time_s": 100.0}, "seconds_per_run": 600.0, "runs": 2,
        "commands": ["ltdistill distill x", "ltdistill evaluate a"], "key": {"ranking": "ddranking"}}))
    plan = suite_plan(str(suite), out, only=["random"])
    assert re.search(r"random_digits_b10_ipc2_s0 +to run +~21 min\n", plan), plan  # 100 + 2 x 600 s: 21.7 min
    suite.write_text(TINY_SUITE)
    assert re.search(r"random_digits_b10_ipc2_s0 +to run +~2 min\n", suite_plan(str(suite), out, only=["random"]))
    # a cell made at another IPC only: the nearest IPC's cost scaled by the ratio (160 s at IPC 2: 320 s at IPC 4),
    # named; none where the label was never made in that setting at all
    suite.write_text(TINY_SUITE.replace("ipc = [2]", "ipc = [4, 3]"))
    plan = suite_plan(str(suite), out, only=["random"])
    assert re.search(r"random_digits_b10_ipc4_s0 +to run +~5 min \(as random at IPC 2, x2\)\n", plan), plan
    assert re.search(r"random_digits_b10_ipc3_s0 +to run +~4 min \(as random at IPC 2, x1.5\)\n", plan), plan
    suite.write_text(TINY_SUITE.replace("imbalance = [10]", "imbalance = [20]").replace("ipc = [2]", "ipc = [4]"))
    assert re.search(r"random_digits_b20_ipc4_s0 +to run +no estimate\n", suite_plan(str(suite), out, only=["random"]))
    # a cell made at another beta only: the same IPC's cost at the nearest beta (on a log scale), named, before any
    # IPC scaling
    suite.write_text(TINY_SUITE.replace("imbalance = [10]", "imbalance = [20]"))
    plan = suite_plan(str(suite), out, only=["random"])
    assert re.search(r"random_digits_b20_ipc2_s0 +to run +~2 min \(as random at beta 10\)\n", plan), plan
    (out / "results" / "steep.json").write_text(json.dumps({
        "label": "random", "method": "random", "dataset": "digits", "imbalance_factor": 100.0, "ipc": 2,
        "device": "cpu", "distill": {"wall_time_s": 100.0}, "seconds_per_run": 600.0, "runs": 2,
        "commands": ["ltdistill distill x", "ltdistill evaluate a"]}))
    suite.write_text(TINY_SUITE.replace("imbalance = [10]", "imbalance = [50]"))  # nearer 100 than 10
    plan = suite_plan(str(suite), out, only=["random"])
    assert re.search(r"random_digits_b50_ipc2_s0 +to run +~2\d min \(as random at beta 100\)\n", plan), plan


def test_stored_costs_made_elsewhere_follow_the_pace_of_the_cells_timed_on_this_processor(tmp_path, monkeypatch):
    """docs/data's costs were made on other processors: where the run directory holds finished cells that are also
    stored there, every stored cost is scaled by the median ratio of their costs (here 2 and 3: x2.5), a cell
    finished here costs what it took here, and the plan says by how much and on how many cells; with none timed on
    this processor nothing is scaled. A result stored in docs/data as timed on this processor counts for the pace
    (also in a fresh run directory) and is not scaled by it; a copy of the run directory's is not a second timing."""
    from ltdistill.bench import estimate

    def result(ipc, distill, seconds_per_run, processor=None):
        return json.dumps({"label": "random", "method": "random", "dataset": "digits", "imbalance_factor": 10.0,
                           "ipc": ipc, "device": "cpu", "distill": {"wall_time_s": distill},
                           "seconds_per_run": seconds_per_run, "runs": 2, "experts_seconds": 10.0 * ipc,
                           "key": {"experts": f"standard-b10-{ipc}"}, "host": {"cpu_generation": processor},
                           "commands": ["ltdistill distill x", "ltdistill evaluate a"]})

    data = tmp_path / "data"
    (data / "bench-x").mkdir(parents=True)
    for ipc, distill, per_run in ((2, 100.0, 30.0), (3, 40.0, 10.0), (4, 40.0, 30.0)):  # 160, 60 and 100 s
        (data / "bench-x" / f"{ipc}.json").write_text(result(ipc, distill, per_run))
    monkeypatch.setattr(estimate, "DATA", data)
    monkeypatch.setattr(estimate, "cpu_generation", lambda text: "family 9, model 9")  # this processor
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY_SUITE.replace("ipc = [2]", "ipc = [2, 3, 4]"))
    out = tmp_path / "run"
    (out / "results").mkdir(parents=True)
    cells = {c.key["ipc"]: c for c in plan_suite(str(suite), out, only=["random"], device="cpu", data_dir=None,
                                                  cross_arch=None).selected}
    costs, _, pace = estimate.stored_costs(out, "cpu")
    assert pace == (1.0, 0) and estimate.estimate(cells[3], costs) == 60.0
    assert "made elsewhere" not in suite_plan(str(suite), out, only=["random"])
    here2, here4 = result(2, 200.0, 60.0, "family 9, model 9"), result(4, 120.0, 90.0, "family 9, model 9")
    (out / "results" / "here2.json").write_text(here2)  # 320 s: twice as long here
    (out / "results" / "here4.json").write_text(here4)  # 300 s: three times
    costs, _, pace = estimate.stored_costs(out, "cpu")
    assert pace == (2.5, 2)
    assert estimate.estimate(cells[2], costs) == 320.0 and estimate.estimate(cells[4], costs) == 300.0
    assert estimate.estimate(cells[3], costs) == 150.0
    buffers = sorted((b.name, b.seconds) for b in estimate.stored_costs(out, "cpu")[1][("digits", "standard")])
    assert buffers == [("standard-b10-2", 20.0), ("standard-b10-2", 50.0), ("standard-b10-3", 75.0),
                       ("standard-b10-4", 40.0), ("standard-b10-4", 100.0)]  # stored ones x2.5, those made here not
    assert "(those made elsewhere x2.50: the pace of the 2 cells timed on this processor against the same cells " \
        "timed on others)" in suite_plan(str(suite), out, only=["random"])
    # the results made here copied into docs/data, and a cell timed on this processor stored there (120 s against
    # 60: twice as long): a copy is not a second timing, the pace stands on every cell timed on this processor, in
    # the run directory or in docs/data, against the other processors' timings alone (2, 3 and 2), also for a fresh
    # run directory, and what was timed on this processor is taken as it is
    (data / "bench-x" / "here2.json").write_text(here2)
    (data / "bench-x" / "here4.json").write_text(here4)
    (data / "bench-x" / "3-here.json").write_text(result(3, 90.0, 15.0, "family 9, model 9"))
    costs, buffers, pace = estimate.stored_costs(out, "cpu")
    assert pace == (2.0, 3)
    assert estimate.estimate(cells[3], costs) == 120.0  # the median of 60 x 2 and 120
    assert sorted(b.seconds for b in buffers[("digits", "standard")] if b.name == "standard-b10-3") == [30.0, 60.0]
    (tmp_path / "fresh" / "results").mkdir(parents=True)
    assert estimate.stored_costs(tmp_path / "fresh", "cpu")[2] == (2.0, 3)
    # two timings here, one of them also copied into docs/data: the median of 320 and 160 against 160
    cost = estimate.CellCost
    here_only = [cost(320.0, 0.0, "family 9, model 9"), cost(160.0, 0.0, "family 9, model 9")]
    assert estimate.pace({"c": here_only}, {"c": [here_only[0], cost(160.0, 0.0)]}, {"family 9, model 9"}) == (1.5, 1)


def test_a_buffer_is_estimated_from_its_own_stored_time_else_from_buffers_alike_scaled_by_their_images(tmp_path,
                                                                                                      monkeypatch):
    """An expert buffer's estimate: the stored time of the same buffer; else the buffers of its dataset and kind
    (of its stem where there are some), scaled by the images each trains on (a beta-10 buffer trains on more) and by
    their sizes (experts x epochs); a buffer that resumes costs only the epochs it does not hold yet."""
    from ltdistill.bench import estimate
    from ltdistill.bench.estimate import buffer_estimate, stored_costs
    from ltdistill.data.longtail import class_counts

    suite = tmp_path / "s.toml"
    suite.write_text(TINY_SUITE.replace('name = "random"', 'name = "ltdd"\nexperts = "decoupled"')
                     + '[experts.decoupled]\nnum = 1\nepochs = 2\n')
    planned = plan_suite(str(suite), tmp_path / "run", only=None, device="cpu", data_dir=None, cross_arch=None)
    cells, experts = planned.cells, next(iter(planned.experts.values()))
    buffer = experts.directory
    assert experts.epochs == 1 * (2 + 5)  # one expert, 2 epochs and the classifier expert's default 5
    stem = next(c.key.get("stem") for c in cells if c.experts == buffer)
    b100 = class_counts(170, 10, 100)
    monkeypatch.setattr(estimate, "DATA", tmp_path / "no-docs")  # the run directory's results alone
    (tmp_path / "run" / "results").mkdir(parents=True)

    def store(name: str, buffer_name: str, seconds: float, stem: str | None = stem, counts: list = b100,
              epochs: int | None = None) -> None:
        key = {"experts": buffer_name, "stem": stem}
        (tmp_path / "run" / "results" / f"{name}.json").write_text(json.dumps({
            "label": "ltdd", "dataset": "digits", "imbalance_factor": 100, "ipc": 2, "device": "cpu",
            "train_counts": counts, "experts_seconds": seconds, "key": key, "experts_epochs": epochs}))

    def estimate_now() -> float | None:
        return buffer_estimate(experts, cells, stored_costs(tmp_path / "run", "cpu")[1])

    assert estimate_now() is None
    store("a", "decoupled-b100-0000000000", 100.0)  # made before results kept the size: taken as the same size
    assert estimate_now() == pytest.approx(100.0 * sum(class_counts(170, 10, 10)) / sum(b100))
    store("a", "decoupled-b100-0000000000", 100.0, epochs=14)  # twice this buffer's size: half its time
    assert estimate_now() == pytest.approx(50.0 * sum(class_counts(170, 10, 10)) / sum(b100))
    store("b", "decoupled-b100-1111111111", 900.0, stem="other")  # another stem: not alike while one of its is
    assert estimate_now() == pytest.approx(50.0 * sum(class_counts(170, 10, 10)) / sum(b100))
    store("c", buffer.name, 40.0, counts=[])  # the same buffer, timed (its images need not be known)
    assert estimate_now() == 40.0
    buffer.mkdir(parents=True)  # half made: what is left is the epochs of the trajectories not on disk yet
    (buffer / "index.json").write_text(json.dumps({"config": {"num_experts": 4, "epochs": 2, "cls_epochs": 1,
                                                              "decoupled": True}}))
    for made in ("rep_000", "cls_000", "rep_001"):
        (buffer / f"{made}.safetensors").write_bytes(b"")
    assert estimate_now() == pytest.approx(40.0 * (1 - 5 / 12))


def test_a_default_changed_to_the_official_one_keys_its_cells_and_buffers_apart_from_those_made_before(tmp_path,
                                                                                                       monkeypatch):
    """DM's siamese DSA, DC's inner momentum and cosine, SRe2L's recovery jitter and flip, and the decoupled buffer's
    sampler and MaxNorm now default to the official code's: their
    cells and buffers get the new defaults in their keys (a cell finished under the earlier defaults is refused, not
    reused), while methods and buffers whose defaults did not change keep the keys they had."""
    suite = tmp_path / "s.toml"
    suite.write_text(TINY_SUITE.replace('name = "random"', 'name = "random"\n[[method]]\nname = "dm"\n'
                                        '[[method]]\nname = "dc"\n[[method]]\nname = "sre2l"\n'
                                        '[[method]]\nname = "ltdd"\nexperts = "decoupled"\n[[method]]\nname = "mtt"\n'
                                        'experts = "standard"') +
                     '[experts.standard]\nnum = 1\nepochs = 2\n[experts.decoupled]\nnum = 1\nepochs = 2\n')
    out = tmp_path / "run"
    cells = {c.label: c for c in plan_suite(str(suite), out, only=None, device="cpu", data_dir=None,
                                              cross_arch=None).cells}
    assert cells["dm"].key["defaults"] == {"dsa_siamese": "batch"}
    assert cells["dc"].key["defaults"] == {"dsa_siamese": "batch", "net_momentum": 0.0,
                                           "cosine_denominator": "norms_plus_eps"}
    assert cells["sre2l"].key["defaults"] == {"flip": False, "jitter_range": "nonnegative"}
    assert "defaults" not in cells["random"].key and "defaults" not in cells["mtt"].key
    assert "decoupled" in cells["ltdd"].experts.name and "standard" in cells["mtt"].experts.name
    # the buffers' directories are hashes of their keys: the decoupled one moves, the standard one stays
    monkeypatch.setattr(bench.suite, "changed_defaults", lambda config_class: {})
    before = {c.label: c for c in plan_suite(str(suite), out, only=None, device="cpu", data_dir=None,
                                               cross_arch=None).cells}
    assert before["mtt"].experts == cells["mtt"].experts and before["mtt"].directory == cells["mtt"].directory
    assert before["ltdd"].experts != cells["ltdd"].experts and before["ltdd"].directory != cells["ltdd"].directory
    assert before["dm"].directory != cells["dm"].directory and before["random"].key == cells["random"].key
    (out / "results").mkdir(parents=True)
    bench.result_json(out, before["dm"].name).write_text(json.dumps({"key": before["dm"].key}))
    with pytest.raises(BadInput, match="defaults differ: made under the earlier default of dsa_siamese "
                                       r"\(today's: dsa_siamese='batch', the official code's\)"):
        bench.check_finished_cells([cells["dm"]], out)
    # --plan says so too, rather than counting the cell as done
    assert bench.status.cell_status(cells["dm"], out) == ("made with other settings (defaults differ): a run refuses "
                                                          "this --out")
    assert bench.status.cell_status(before["dm"], out).startswith("done")


def test_a_recipe_that_took_up_official_settings_keys_its_cells_apart_from_those_evaluated_before(tmp_path,
                                                                                                  monkeypatch):
    """EDC's recipe now scores the parameter EMA and spares biases and norms the weight decay: its cells name both
    in their defaults; a recipe that took up nothing (SRe2L's) keeps its keys."""
    suite = tmp_path / "s.toml"
    suite.write_text(TINY_SUITE.replace('name = "random"', 'name = "random"\n[[method]]\nname = "edc"\n'
                                        'recipe = "edc"\n[[method]]\nname = "sre2l"\nrecipe = "sre2l"'))
    out = tmp_path / "run"
    cells = {c.label: c for c in plan_suite(str(suite), out, only=None, device="cpu", data_dir=None,
                                              cross_arch=None).cells}
    assert cells["edc"].key["defaults"] == {"recipe.ema_decay": 0.99, "recipe.decay_matrices_only": True}
    assert not any(k.startswith("recipe.") for k in cells["sre2l"].key.get("defaults", {}))
    monkeypatch.setattr(bench.suite, "recipe_later_settings", lambda recipe: {})
    before = {c.label: c for c in plan_suite(str(suite), out, only=None, device="cpu", data_dir=None,
                                               cross_arch=None).cells}
    assert before["edc"].directory != cells["edc"].directory and before["sre2l"].key == cells["sre2l"].key
    (out / "results").mkdir(parents=True)
    bench.result_json(out, before["edc"].name).write_text(json.dumps({"key": before["edc"].key}))
    with pytest.raises(BadInput, match=r"made under the earlier default of recipe.decay_matrices_only, "
                                       r"recipe.ema_decay \(today's: recipe.decay_matrices_only=True, "
                                       r"recipe.ema_decay=0.99"):
        bench.check_finished_cells([cells["edc"]], out)


def test_a_suite_ranked_as_ddranking_evaluates_every_cell_under_it_and_keys_its_cells_apart(tmp_path):
    suite = tmp_path / "s.toml"
    suite.write_text(TINY_SUITE.replace('description = "test"', 'description = "test"\nranking = "ddranking"'))
    cells = plan_suite(str(suite), tmp_path / "run", only=None, device="cpu", data_dir=None, cross_arch=None).cells
    plain = tmp_path / "plain.toml"
    plain.write_text(TINY_SUITE)
    before = plan_suite(str(plain), tmp_path / "run", only=None, device="cpu", data_dir=None, cross_arch=None).cells
    for cell, old in zip(cells, before, strict=True):
        assert cell.key == {**old.key, "ranking": "ddranking"} and cell.directory != old.directory
        for command in cell.evals.values():
            assert command[command.index("--ranking") + 1] == "ddranking"
        assert all("--ranking" not in command for command in old.evals.values())
    suite.write_text(TINY_SUITE.replace('description = "test"', 'description = "test"\nranking = "best"'))
    with pytest.raises(BadInput, match="ranking must be one of"):
        load_suite(suite)


def test_a_method_entry_names_the_recipe_its_teacher_trains_with(tmp_path):
    suite = tmp_path / "recipe.toml"
    suite.write_text(TINY_SUITE + '[[method]]\nname = "edc"\nrecipe = "edc"\n')
    cells, _ = plan(load_suite(suite), tmp_path / "o", [])
    edc, random = (next(c for c in cells if c.label == label) for label in ("edc", "random"))
    assert edc.evals["model-convnet"][-2:] == ["--recipe", "edc"]
    assert "--recipe" not in edc.evals["hard"] and "--recipe" not in random.evals["model-convnet"]
    assert edc.key["recipe"] == "edc" and "recipe" not in random.key  # keys of cells without one stay as they were
    suite.write_text(TINY_SUITE + '[[method]]\nname = "edc"\nrecipe = "fast"\n')
    with pytest.raises(BadInput, match="recipe must be one of"):
        load_suite(suite)


def test_a_calibration_or_recipe_added_to_a_suite_evaluates_its_finished_soft_label_cells_alone(tmp_path):
    suite = tmp_path / "calibrated.toml"
    body = TINY_SUITE.replace('eval_models = ["convnet"]', 'eval_models = ["convnet"]\nddranking = false\nfull = false')
    sre2l = '[[method]]\nname = "sre2l"\nset = ["epochs=1", "iterations=2", "width=4", "depth=1"]\n'
    suite.write_text(body + sre2l)
    out = tmp_path / "run"
    run_suite(str(suite), out, progress=False)
    commands = (out / "log.txt").read_text().count("\n$ ")
    suite.write_text(body.replace("full = false", 'full = false\ncalibrations = ["adsa"]\nrecipes = ["sre2l"]')
                     + sre2l)
    table = run_suite(str(suite), out, progress=False).read_text()
    log = (out / "log.txt").read_text()
    added = log.split("\n$ ")[-2:]
    assert log.count("\n$ ") == commands + 2 and "--labels adsa" in added[0] and "--recipe sre2l" in added[1]
    results = {p.stem.split("_")[0]: json.loads(p.read_text()) for p in (out / "results").glob("*.json")}
    assert "calibrated" not in results["random"]  # hard labels: nothing to calibrate, the cell is not revisited
    assert results["sre2l"]["calibrated"]["adsa"]["calibration"]["method"] == "adsa"
    assert results["sre2l"]["recipes"]["sre2l"]["label_regime"].endswith("recipe sre2l)")
    assert "Evaluated again" in table and "| sre2l | labels adsa |" in table and "| sre2l | recipe sre2l |" in table
    run_suite(str(suite), out, progress=False)
    assert (out / "log.txt").read_text().count("\n$ ") == commands + 2  # nothing left to do


def test_a_relabeling_cell_under_another_recipe_is_ranked_against_the_random_set_relabeled_under_that_recipe(
        tmp_path):
    """DD-Ranking's IOR of an evaluation under a suite recipe: the random cell's images relabeled by the same
    teacher under the same recipe, not under the set's own."""
    suite = tmp_path / "recipes.toml"
    suite.write_text(TINY_SUITE.replace('eval_models = ["convnet"]', 'eval_models = ["convnet"]\nfull = false\n'
                                        'recipes = ["sre2l"]')
                     + '[[method]]\nname = "sre2l"\nset = ["epochs=1", "iterations=2", "width=4", "depth=1"]\n')
    out = tmp_path / "run"
    run_suite(str(suite), out, progress=False)
    sre2l = json.loads(next((out / "results").glob("sre2l_*.json")).read_text())
    cell = next((out / "cells").glob("sre2l-*"))
    usual, other = (json.loads((cell / f"eval-random-relabeled{s}.json").read_text()) for s in ("", "-recipe-sre2l"))
    assert other["recipe"] == "sre2l" and usual["recipe"] == "ltdistill"
    ranked = sre2l["recipes"]["sre2l"]["ddranking"]
    assert ranked["acc_rdm_any"] == other["balanced_acc"]["mean"]
    assert ranked["ior"] == pytest.approx(sre2l["recipes"]["sre2l"]["balanced_acc"]["mean"] - ranked["acc_rdm_any"])
    assert sre2l["ddranking"]["acc_rdm_any"] == usual["balanced_acc"]["mean"]
    stale = cell / "eval-random-relabeled.json"  # a baseline made under another recipe than the set's is made again
    stale.write_text(json.dumps({**usual, "recipe": "edc"}))
    run_suite(str(suite), out, progress=False)
    assert json.loads(stale.read_text())["recipe"] == "ltdistill"


def test_a_method_entry_with_its_own_seeds_adds_seeds_to_the_settings_it_names(tmp_path):
    suite = tmp_path / "seeds.toml"
    suite.write_text(TINY_SUITE.replace("ipc = [2]", "ipc = [2, 3]")
                     + '[[method]]\nname = "random"\nseeds = [1, 2]\nipc = [2]\n')
    cells, _ = plan(load_suite(suite), tmp_path / "o", [])
    sets = [c for c in cells if c.label != "full"]
    assert [c.name for c in sets] == ["random_digits_b10_ipc2_s0", "random_digits_b10_ipc2_s1",
                                      "random_digits_b10_ipc2_s2", "random_digits_b10_ipc3_s0"]
    assert len({c.directory for c in sets}) == 4
    for bad in ("[]", "[-1]", '["1"]', "[true]", "3", "[4294967296]"):
        suite.write_text(TINY_SUITE + f'[[method]]\nname = "herding"\nseeds = {bad}\n')
        with pytest.raises(BadInput, match=r"seeds must be a non-empty list, each item an integer in \[0, 4294967295"):
            load_suite(suite)


HOLDOUT_SUITE = TINY_SUITE.replace("ipc = [2]", "ipc = [2]\nholdout = 20").replace("runs = 1", "runs = 1\nfull = false")
HOLDOUT_SUITE += """
[[method]]
name = "herding"
set = ["width=8"]
grid = {epochs = [1, 2]}
"""


def test_a_method_grid_is_tuned_on_the_holdout_and_never_reads_the_test_set(tmp_path):
    suite, out = tmp_path / "tune.toml", tmp_path / "run"
    suite.write_text(HOLDOUT_SUITE)
    run_suite(str(suite), out, progress=False)
    summary = json.loads((out / "tuning.json").read_text())
    (group,) = summary["groups"].values()
    assert summary["holdout"] == 20 and set(group["points"]) == {"epochs=1", "epochs=2"} and group["pending"] == []
    assert group["best"] == max(group["points"], key=lambda k: group["points"][k]["val_balanced_acc"])
    assert list(summary["references"]) == ["random_digits_b10_ipc2_s0"]  # the grid-less cells, on the same holdout
    for point in ("epochs=1", "epochs=2"):
        result = json.loads((out / "results" / f"herding@{point}_digits_b10_ipc2_s0.json").read_text())
        assert result["split"] == "val" and result["holdout"] == 20
        distill, evaluate = result["commands"]
        assert f"--set width=8 --set {point}" in distill and "--holdout 20" in distill
        assert "--split val" in evaluate and "ddranking" not in result  # its baselines would read the test set
    log = (out / "log.txt").read_text()
    evaluations = [line for line in log.splitlines() if line.startswith("$ ") and " evaluate " in line]
    assert len(evaluations) == 3 and all("--split val" in line for line in evaluations)  # nothing reads the test set
    run_suite(str(suite), out, progress=False)  # a rerun runs nothing again
    assert (out / "log.txt").read_text() == log
    for text, message in ((HOLDOUT_SUITE.replace("holdout = 20", "holdout = 0"), "a tuning needs .*holdout"),
                          ("ddranking = true\n" + HOLDOUT_SUITE, "would read the test set"),
                          (HOLDOUT_SUITE.replace("[1, 2]", "[]"), "grid must be a table of non-empty lists"),
                          (HOLDOUT_SUITE.replace("[1, 2]", "[{a = 1}]"), "non-empty lists of values"),
                          (HOLDOUT_SUITE.replace("holdout = 20", "holdout = -1"), "holdout must be an integer"),
                          (HOLDOUT_SUITE.replace("holdout = 20", "hold = 20"), r"unknown \[data\] key")):
        suite.write_text(text)
        with pytest.raises(BadInput, match=message):
            load_suite(suite)


ANATOMY_SUITE = TINY_SUITE.replace('runs = 1', 'runs = 1\nfull = false\nddranking = false\n'
                                   'anatomy = [{before = "dm-start", after = "dm"}]').replace(
    '[[method]]\nname = "random"\n', """[[method]]
name = "dm"
label = "dm-start"
set = ["iterations=0", "width=8"]

[[method]]
name = "dm"
set = ["iterations=3", "width=8", "lr_img=10.0"]
""")


def test_an_anatomy_pair_evaluates_each_part_of_what_the_iterations_changed(tmp_path):
    from ltdistill.synthetic import SyntheticSet

    suite, out = tmp_path / "anatomy.toml", tmp_path / "run"
    suite.write_text(ANATOMY_SUITE)
    run_suite(str(suite), out, progress=False)
    where = out / "anatomy" / "dm_digits_b10_ipc2_s0"
    names = {"before", "after", "after-images+before-labels", "before-images+after-labels", "after-lr=before"}
    assert {p.stem for p in where.glob("*.json")} == names
    cells = {c.label: c for c in plan(load_suite(suite), out, [])[0]}
    before, after = (SyntheticSet.load(cells[k].artifact) for k in ("dm-start", "dm"))
    assert not torch.equal(before.images, after.images)  # the iterations moved the pixels
    hybrid = SyntheticSet.load(where / "sets" / "after-images+before-labels")
    assert torch.equal(hybrid.images, after.images) and torch.equal(hybrid.labels, before.labels)
    hybrid = SyntheticSet.load(where / "sets" / "before-images+after-labels")
    assert torch.equal(hybrid.images, before.images) and torch.equal(hybrid.labels, after.labels)
    at_lr = json.loads((where / "after-lr=before.json").read_text())
    assert at_lr["commands"][0].endswith("--lr 0.01") and " evaluate " in at_lr["commands"][0]
    assert json.loads((where / "after.json").read_text())["balanced_acc"] == json.loads(
        (out / "results" / "dm_digits_b10_ipc2_s0.json").read_text())["balanced_acc"]
    log = (out / "log.txt").read_text()
    run_suite(str(suite), out, progress=False)  # cached: nothing runs again
    assert (out / "log.txt").read_text() == log
    suite.write_text(ANATOMY_SUITE.replace('before = "dm-start"', 'before = "nosuch"'))
    with pytest.raises(BadInput, match="anatomy entries"):
        load_suite(suite)


def test_a_shipped_suite_plans_the_same_cells_from_any_folder(tmp_path, monkeypatch):
    """The suites' presets are paths from the repository root: from another folder they are found under it, and
    the cells (their keys hold the presets' text) are the ones planned from the root."""
    def planned(where: Path) -> dict:
        monkeypatch.chdir(where)
        return {c.name: c for c in plan_suite("quick", tmp_path / "out", only=None, device="cpu", data_dir=None,
                                               cross_arch=None).cells}

    root = Path(__file__).resolve().parents[1]
    here, elsewhere = planned(root), planned(tmp_path)
    assert {n: c.key for n, c in elsewhere.items()} == {n: c.key for n, c in here.items()}
    configs = [c.distill[c.distill.index("--config") + 1] for c in elsewhere.values() if "--config" in c.distill]
    assert configs and all(Path(p).is_absolute() and Path(p).is_file() for p in configs)
    assert all(not Path(c.distill[c.distill.index("--config") + 1]).is_absolute()  # from the root: as written
               for c in here.values() if "--config" in c.distill)


def test_bench_compile_and_precision_reach_every_command_that_takes_them_and_key_their_cells_apart(tmp_path):
    """`compile` (bench --compile): experts and evaluations get --compile, a method with its own loops
    `--set compile=true`; `precision`: every evaluation, the relabeled baseline's too, but not the experts. Both sit
    in the keys of cells, buffers and references where taken, so nothing is shared with the plain run, whose keys
    stay as they were."""
    from ltdistill.bench.ranking import relabeled_baselines
    from ltdistill.bench.suite import plan_suite

    suite = tmp_path / "s.toml"
    suite.write_text(TINY_SUITE + '[[method]]\nname = "mtt"\nexperts = "standard"\n[[method]]\nname = "sre2l"\n'
                     "[experts.standard]\nnum = 1\nepochs = 2\n")
    plain = plan_suite(str(suite), tmp_path / "o", only=None, device="cpu", data_dir=None, cross_arch=None)
    fast = plan_suite(str(suite), tmp_path / "o", only=None, device="cpu", data_dir=None, cross_arch=None,
                      overrides={"compile": True, "precision": "bfloat16", "convnet_stem": None})
    for cell in fast.cells:
        for command in cell.evals.values():
            assert "--compile" in command and command[command.index("--precision") + 1] == "bfloat16"
        assert cell.key["compile"] is True and cell.key["precision"] == "bfloat16"
    by_label = {c.label: c for c in fast.cells}
    assert "compile=true" in by_label["mtt"].distill and "compile=true" in by_label["sre2l"].distill
    assert "compile=true" not in by_label["random"].distill  # no loop of its own
    experts = next(iter(fast.experts.values()))
    assert "--compile" in experts.command and "--precision" not in experts.command
    assert experts.directory != next(iter(plain.experts.values())).directory
    for before, after in zip(plain.cells, fast.cells, strict=True):
        assert "compile" not in before.key and "precision" not in before.key
        assert before.directory != after.directory
        assert not any("--compile" in command or "--precision" in command for command in before.evals.values())
    random, sre2l = by_label["random"], by_label["sre2l"]
    for cell in (random, sre2l):
        (cell.artifact / "meta.json").parent.mkdir(parents=True)
        (cell.artifact / "meta.json").write_text("{}")
    results = {c.name: {"key": c.key, "cell": c.directory.name} for c in (random, sre2l)}
    results[sre2l.name]["label_regime"] = "relabel"
    (_, _, command, _), = relabeled_baselines(sre2l.name, results[sre2l.name], results, tmp_path / "o", [],
                                              fast.suite)
    assert "--compile" in command and command[command.index("--precision") + 1] == "bfloat16"
    with pytest.raises(BadInput, match="precision must be one of"):
        plan_suite(str(suite), tmp_path / "o", only=None, device="cpu", data_dir=None, cross_arch=None,
                   overrides={"precision": "float16"})
