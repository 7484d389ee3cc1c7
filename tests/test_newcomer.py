"""What a new user meets first: usage errors that name the mistyped flag, spreads shown only where there is one."""

import pytest

from ltdistill.cli import main


@pytest.mark.parametrize("argv, expected", [
    (["distill", "--method", "random", "--dataset", "digits", "--ipc", "2", "--ouput", "x"],
     "ltdistill distill: error: unknown option --ouput; did you mean --out?"),
    (["evaluate", "--ful", "--dataset", "digits"],
     "ltdistill evaluate: error: unknown option --ful; did you mean --full?"),
    (["distill", "--meth", "random"], "did you mean --method?"),  # no abbreviations: --meth is not --method
    (["bench", "--suite", "quick", "--out", "x", "--jbos", "2"], "did you mean --jobs?"),
])
def test_a_mistyped_flag_is_named_with_the_closest_known_one(argv, expected, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1 and "required" not in err
    assert list(tmp_path.iterdir()) == []


def test_one_evaluation_run_prints_no_spread_and_tables_show_none(capsys):
    from ltdistill.cli import print_summary
    from ltdistill.report.tables import accuracy

    result = {"balanced_acc": {"mean": 0.5, "std": 0.0}, "lt_test": {"acc": 0.5, "precision": 0.5, "recall": 0.5,
                                                                      "f1": 0.5},
              "training_set": "x", "model": "convnet", "model_options": {}, "epochs": 1, "runs": 1, "lr": 0.01,
              "many": 0.5, "medium": None, "few": 0.5, "class_acc_std": 0.0, "per_class_acc": [0.5, 0.5]}
    print_summary(result, ["a", "b"])
    assert "balanced accuracy  50.00 (one run: no spread)" in capsys.readouterr().out
    assert accuracy(result) == "50.00" and accuracy({**result, "runs": 3}) == "50.00 ± 0.00"


def test_a_dataset_typed_another_way_is_answered_with_its_name_and_nothing_is_made(capsys, tmp_path):
    assert main(["distill", "--method", "random", "--dataset", "fmnist", "--imbalance", "10", "--ipc", "1",
                 "--out", str(tmp_path / "set")]) == 2
    assert "unknown dataset 'fmnist' (did you mean 'fashion-mnist'?)" in capsys.readouterr().err
    assert not (tmp_path / "set").exists()


def test_a_refusal_found_while_distilling_leaves_no_output_directory(capsys, tmp_path):
    assert main(["distill", "--method", "mtt", "--dataset", "digits", "--imbalance", "10", "--ipc", "1",
                 "--experts", str(tmp_path / "none"), "--out", str(tmp_path / "set"), "--no-progress"]) == 2
    assert "is not an expert buffer" in capsys.readouterr().err and not (tmp_path / "set").exists()


@pytest.mark.parametrize("argv", [
    ["evaluate", "{tmp}/no-set", "--json", "{tmp}/new/deeper/out.json", "--runs-dir", "{tmp}/runs/a"],
    ["datasets", "--rank-classes", "no-such-dataset", "--json", "{tmp}/new/deeper/card.json"],
])
def test_a_refused_command_removes_the_folders_it_made_for_its_outputs_and_nothing_else(argv, capsys, tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "kept.txt").write_text("a user's file")
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["kept.txt", "runs"]
