"""benchmarks/tune.py: a grid tuned on the validation holdout, resumable, the winner by validation accuracy."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from tune import grid_points, point_name  # noqa: E402


def test_grid_is_the_product_of_the_axes_and_bad_axes_are_refused():
    points = grid_points(["a=1,2", "b=x,y,z"])
    assert len(points) == 6 and points[0] == {"a": "1", "b": "x"} and points[-1] == {"a": "2", "b": "z"}
    assert point_name(points[0]) == "a=1,b=x" and point_name({}) == "preset"
    with pytest.raises(SystemExit, match="key=v1"):
        grid_points(["a"])


def test_tuning_a_herding_preset_on_digits_reads_only_the_holdout_at_the_asked_beta(tmp_path):
    preset = tmp_path / "herding.toml"
    preset.write_text('[run]\nmethod = "herding"\ndataset = "digits"\nimbalance = 10\nipc = 2\n')
    out = tmp_path / "tune"
    cmd = [sys.executable, str(BENCHMARKS / "tune.py"), "--preset", str(preset), "--holdout", "20", "--runs", "1",
           "--eval-epochs", "3", "--imbalance", "5", "--grid", "epochs=1,2", "--set", "width=8", "--out", str(out),
           "--ltdistill", f"{sys.executable} -m ltdistill.cli"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    summary = json.loads((out / "tuning.json").read_text())
    assert set(summary["points"]) == {"epochs=1", "epochs=2"} and summary["best"] in summary["points"]
    assert summary["imbalance"] == 5  # --imbalance overrides the preset's beta 10
    best = summary["points"][summary["best"]]["val_balanced_acc"]
    assert best == max(p["val_balanced_acc"] for p in summary["points"].values())
    for name in summary["points"]:
        cell = json.loads((out / "json" / f"{name}.json").read_text())
        assert cell["split"] == "val" and cell["holdout"] == 20 and "--split val" in cell["commands"][-1]
        assert cell["imbalance_factor"] == 5
        assert f"--set width=8 --set {name}" in cell["commands"][0]  # fixed settings, then the point
        assert json.loads((out / "artifacts" / name / "meta.json").read_text())["config"]["width"] == 8
    log = (out / "log.txt").read_text()
    first = log.count("$ ")
    subprocess.run(cmd, check=True, capture_output=True, text=True)  # a rerun recomputes nothing
    assert (out / "log.txt").read_text().count("$ ") == first


def test_a_beta_below_one_is_refused_before_anything_runs(tmp_path):
    preset = tmp_path / "herding.toml"
    preset.write_text('[run]\nmethod = "herding"\ndataset = "digits"\nipc = 2\n')
    base = [sys.executable, str(BENCHMARKS / "tune.py"), "--preset", str(preset), "--holdout", "20",
            "--out", str(tmp_path / "tune")]
    for extra, message in ([], "tuning needs beta"), (["--imbalance", "0.01"], "imbalance *rate* 0.01 is beta 100"):
        done = subprocess.run(base + extra, capture_output=True, text=True)
        assert done.returncode != 0 and message in done.stderr
    assert not (tmp_path / "tune" / "log.txt").exists()
