"""distill --keep-every K and evaluate --snapshots: the reference code's evaluate-every-K, best-of protocol, beside
ltdistill's final-set number."""

import json

import pytest
import torch

from ltdistill import methods
from ltdistill.cli import main
from ltdistill.errors import BadInput
from ltdistill.synthetic import SyntheticSet


def test_an_optimized_set_keeps_a_snapshot_every_k_iterations_and_iteration_0(blob_data, tmp_path):
    dm = methods.create("dm", width=4, depth=2, iterations=5, checkpoint_every=2)
    final = dm.distill(blob_data, 2, progress=False, workdir=tmp_path, keep_every=2)
    kept = sorted(p.name for p in (tmp_path / "snapshots").iterdir())
    assert kept == ["iteration_000000", "iteration_000002", "iteration_000004"]
    first = SyntheticSet.load(tmp_path / "snapshots" / "iteration_000000")
    assert first.meta["snapshot_iteration"] == 0 and first.meta["dataset"] == blob_data.name
    initial = methods.create("dm", width=4, depth=2, iterations=0).distill(blob_data, 2, progress=False)
    assert torch.equal(first.images, initial.images)  # iteration 0 is the initial set
    assert not torch.equal(first.images, final.images)
    with pytest.raises(BadInput, match="keep_every must be an integer >= 1"):
        dm.distill(blob_data, 2, progress=False, keep_every=0)


def test_a_run_resumed_after_a_crash_keeps_the_snapshots_an_unbroken_run_keeps(blob_data, tmp_path, monkeypatch):
    import ltdistill.families.randomnet as randomnet
    from conftest import Crash, crash_after

    config = {"width": 4, "depth": 2, "iterations": 6, "checkpoint_every": 2}
    methods.create("dm", **config).distill(blob_data, 2, seed=1, progress=False, workdir=tmp_path / "once",
                                           keep_every=2)
    monkeypatch.setattr(randomnet.Context, "network", crash_after(3, randomnet.Context.network))
    with pytest.raises(Crash):  # after iteration 3: checkpoint and snapshots up to 2 are on disk
        methods.create("dm", **config).distill(blob_data, 2, seed=1, progress=False, workdir=tmp_path / "twice",
                                               keep_every=2)
    monkeypatch.undo()
    methods.create("dm", **config).distill(blob_data, 2, seed=1, progress=False, workdir=tmp_path / "twice",
                                           keep_every=2)
    for name in ("iteration_000000", "iteration_000002", "iteration_000004", "iteration_000006"):
        once, twice = (SyntheticSet.load(tmp_path / run / "snapshots" / name) for run in ("once", "twice"))
        assert torch.equal(once.images, twice.images), name


def test_evaluate_snapshots_reports_the_best_kept_set_beside_the_final_one(tmp_path, capsys, monkeypatch):
    art = tmp_path / "dm"
    assert main(["distill", "--method", "dm", "--dataset", "digits", "--imbalance", "10", "--ipc", "1", "--set",
                 "iterations=4", "--set", "width=4", "--keep-every", "2", "--out", str(art), "--no-progress"]) == 0
    assert main(["evaluate", str(art), "--runs", "1", "--epochs", "2", "--width", "4", "--snapshots", "--json",
                 str(tmp_path / "e.json"), "--no-progress"]) == 0
    result = json.loads((tmp_path / "e.json").read_text())
    assert [r["iteration"] for r in result["snapshots"]] == [0, 2, 4]
    best = result["best_of_snapshots"]
    assert best["candidates"] == 4 and "optimistic" in best["note"]
    every = [r["balanced_acc"]["mean"] for r in result["snapshots"]] + [result["balanced_acc"]["mean"]]
    assert best["balanced_acc"] == max(every)
    assert "best of 4 kept sets" in capsys.readouterr().out
    capsys.readouterr()
    started = []
    import ltdistill.evaluate as evaluation

    monkeypatch.setattr(evaluation, "evaluate_synthetic", lambda *a, **k: started.append(1))
    assert main(["evaluate", str(tmp_path / "dm" / "snapshots" / "iteration_000000"), "--runs", "1", "--epochs", "1",
                 "--snapshots", "--no-progress"]) == 2  # a snapshot keeps none of its own
    assert "keeps no snapshots" in capsys.readouterr().err and not started  # said before the final set trains


def test_the_snapshots_of_a_run_on_whitened_experts_record_the_whitening_and_are_evaluated(tmp_path, capsys):
    """A trajectory run whitens the data as its experts saw it after the run's meta is taken: its snapshots
    recorded no whitening, so evaluate --snapshots refused them as made from other data."""
    experts, art = tmp_path / "experts", tmp_path / "mtt"
    data = ["--dataset", "digits", "--imbalance", "10", "--no-progress"]
    assert main(["experts", *data, "--num", "1", "--epochs", "3", "--zca", "0.1", "--width", "4",
                 "--out", str(experts)]) == 0
    assert main(["distill", "--method", "mtt", *data, "--ipc", "1", "--experts", str(experts), "--iterations", "2",
                 "--set", "syn_steps=2", "--set", "max_start_epoch=1", "--set", "expert_epochs=2", "--keep-every", "1",
                 "--out", str(art)]) == 0
    assert json.loads((art / "snapshots" / "iteration_000001" / "meta.json").read_text())["zca_eps"] == 0.1
    capsys.readouterr()
    assert main(["evaluate", str(art), "--runs", "1", "--epochs", "1", "--width", "4", "--snapshots",
                 "--no-progress"]) == 0, capsys.readouterr().err
    assert "best of 4 kept sets" in capsys.readouterr().out
