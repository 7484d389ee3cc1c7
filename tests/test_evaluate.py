from dataclasses import replace

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from ltdistill.evaluate import EvalConfig, evaluate_full, evaluate_synthetic
from ltdistill.evaluate.metrics import aggregate, per_class_accuracy, run_metrics, shot_groups
from ltdistill.synthetic import SyntheticSet
from ltdistill.train import TrainConfig, TrainingDiverged, soft_cross_entropy, train_model


def test_per_class_accuracy_and_shot_groups():
    acc = per_class_accuracy(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0]), 3)
    assert acc.tolist() == [0.5, 1.0, 0.0]
    assert shot_groups([100, 50, 40, 30, 20, 10, 9, 8, 7, 6]) == {"many": [0, 1, 2, 3], "medium": [4, 5, 6],
                                                                   "few": [7, 8, 9]}
    counts = [500] * 30 + [50] * 40 + [5] * 30
    groups = shot_groups(counts)
    assert len(groups["many"]) == 30 and len(groups["medium"]) == 40 and len(groups["few"]) == 30


def test_lt_metrics_expose_a_head_only_predictor():
    # LTDD supplement Table 6: predicting class 0 everywhere gives high LT accuracy but poor F1
    lt_true = np.repeat(np.arange(10), [1000, 555, 308, 170, 94, 52, 29, 16, 9, 5])
    lt_pred = np.zeros_like(lt_true)
    m = run_metrics(np.arange(10), np.zeros(10, int), lt_true, lt_pred, [100] * 10)
    assert abs(m["lt_test"]["acc"] - 1000 / len(lt_true)) < 1e-9
    assert abs(m["lt_test"]["f1"] - f1_score(lt_true, lt_pred, average="macro")) < 1e-9
    assert m["lt_test"]["f1"] < 0.1 and m["balanced_acc"] == pytest.approx(0.1)
    agg = aggregate([m, m])
    assert agg["balanced_acc"]["std"] == 0 and len(agg["per_class_acc"]) == 10


def test_soft_cross_entropy_equals_hard_ce_for_one_hot_like_logits():
    logits = torch.randn(5, 4)
    target = torch.tensor([0, 1, 2, 3, 0])
    sharp = torch.nn.functional.one_hot(target, 4).float() * 100
    hard = torch.nn.functional.cross_entropy(logits, target)
    assert torch.allclose(soft_cross_entropy(logits, sharp), hard, atol=1e-4)


def test_training_reduces_loss_and_beats_chance(blob_data):
    from ltdistill import models

    model = models.create("convnet", channels=1, num_classes=4, im_size=(8, 8), width=8, depth=2)
    loss0 = torch.nn.functional.cross_entropy(model(blob_data.train_x), blob_data.train_y).item()
    train_model(model, blob_data.train_x, blob_data.train_y, TrainConfig(epochs=15, batch_size=32),
                generator=torch.Generator().manual_seed(0))
    model.eval()
    loss1 = torch.nn.functional.cross_entropy(model(blob_data.train_x), blob_data.train_y).item()
    assert loss1 < loss0


def test_evaluate_synthetic_reports_every_key(blob_data):
    index = torch.cat([blob_data.indices_of(c)[:3] for c in range(4)])
    synthetic = SyntheticSet(blob_data.train_x[index], blob_data.train_y[index], meta={"method": "random", "ipc": 3})
    config = EvalConfig(model_options=(("width", 8), ("depth", 2)), runs=2, epochs=40)
    result = evaluate_synthetic(synthetic, blob_data, config, progress=False)
    for key in ("balanced_acc", "per_class_acc", "class_acc_std", "many", "medium", "few", "lt_test", "runs",
                "model", "epochs"):
        assert key in result
    assert set(result["lt_test"]) == {"acc", "precision", "recall", "f1"}
    assert result["balanced_acc"]["mean"] > 0.5  # well above chance (0.25) on the easy blobs
    assert result["diverged_runs"] == 0 and not any("diverged_at_epoch" in r for r in result["per_run"])
    full = evaluate_full(blob_data, EvalConfig(model_options=(("width", 8), ("depth", 2)), runs=1, epochs=30,
                                            batch_size=32),
                         progress=False)
    assert full["training_set"] == "full-longtail" and full["balanced_acc"]["mean"] > 0.5


def test_evaluate_synthetic_refuses_a_set_made_from_other_data_before_any_training(blob_data, monkeypatch):
    """The API's one boundary (synthetic.check_fits), which the CLI's loader shares: a set evaluated on data of
    another shape, class count, class order or imbalance would be scored with the wrong shot groups and prior."""
    from conftest import blob_raw
    from ltdistill.data.longtail import build_longtail
    from ltdistill.errors import BadInput
    from ltdistill.evaluate import protocol

    monkeypatch.setattr(protocol, "evaluate_training_set", lambda *a, **k: pytest.fail("trained before checking"))
    index = torch.cat([blob_data.indices_of(c)[:2] for c in range(4)])
    made = SyntheticSet(blob_data.train_x[index], blob_data.train_y[index], meta={"method": "random", "ipc": 2,
                                                                                   **blob_data.describe()})
    config = EvalConfig(runs=1, epochs=1)
    reordered = build_longtail(blob_raw(), imbalance_factor=5, seed=0, class_order="3,2,1,0")
    for data, match in [(reordered, "distilled with class_order 'natural', the data given has '3,2,1,0'"),
                        (build_longtail(blob_raw(), imbalance_factor=2, seed=0), "imbalance_factor 5.0, the data "
                         "given has 2.0"),
                        (build_longtail(blob_raw(size=6), imbalance_factor=5, seed=0), r"images \(1, 8, 8\) do not"),
                        (build_longtail(blob_raw(num_classes=3), imbalance_factor=5, seed=0), "labels outside"),
                        ("blobs", "an LTDataset is needed")]:
        with pytest.raises(BadInput, match=match):
            evaluate_synthetic(made, data, config, progress=False)
    with pytest.raises(BadInput, match="a SyntheticSet is needed"):
        evaluate_synthetic(None, blob_data, config, progress=False)
    hand_made = SyntheticSet(made.images, made.labels, meta={"method": "random", "ipc": 2})  # records no data
    for synthetic, data in [(made, blob_data), (hand_made, reordered)]:
        with pytest.raises(pytest.fail.Exception, match="trained before checking"):  # passed the check
            evaluate_synthetic(synthetic, data, config, progress=False)


def test_a_diverging_run_stops_and_is_reported_not_scored_silently(blob_data, capsys):
    """A loss gone to inf/NaN leaves NaN weights, whose logits send every image to class 0: the run looks like a
    model that learned one class. The evaluation stops it at that epoch and says so in the result and on stderr."""
    from ltdistill import models

    model = models.create("mlp", channels=1, num_classes=4, im_size=(8, 8))
    with pytest.raises(TrainingDiverged) as caught:
        train_model(model, blob_data.train_x, blob_data.train_y, TrainConfig(epochs=50, lr=1e12, batch_size=32),
                    generator=torch.Generator().manual_seed(0))
    assert 1 <= caught.value.epoch < 50
    index = torch.cat([blob_data.indices_of(c)[:3] for c in range(4)])
    synthetic = SyntheticSet(blob_data.train_x[index], blob_data.train_y[index], meta={"method": "random", "ipc": 3})
    result = evaluate_synthetic(synthetic, blob_data, EvalConfig(model="mlp", runs=2, epochs=50, lr=1e12),
                                progress=False)
    assert result["diverged_runs"] == 2 and all(1 <= r["diverged_at_epoch"] < 50 for r in result["per_run"])
    assert "diverged" in capsys.readouterr().err


def test_class_balanced_sampling_draws_classes_equally():
    from ltdistill.train import batch_order

    labels = torch.tensor([0] * 90 + [1] * 10)
    order = batch_order(labels, True, torch.Generator().manual_seed(0))
    share = (labels[order] == 1).float().mean()
    assert 0.35 < share < 0.65


def test_runs_dir_resumes_an_evaluation_at_the_run_it_stopped_in(blob_data, tmp_path, monkeypatch):
    from conftest import Crash, crash_after
    from ltdistill.evaluate import protocol

    config = EvalConfig(model_options=(("width", 8), ("depth", 2)), runs=3, epochs=4, batch_size=32)
    whole = evaluate_full(blob_data, config, progress=False)
    runs_dir, train_and_score = tmp_path / "runs", protocol.train_and_score
    monkeypatch.setattr(protocol, "train_and_score", crash_after(2, train_and_score))
    with pytest.raises(Crash):  # killed in the third run: the first two are on disk
        evaluate_full(blob_data, config, progress=False, runs_dir=runs_dir)
    assert len(list(runs_dir.glob("run-*.json"))) == 2
    monkeypatch.setattr(protocol, "train_and_score", crash_after(1, train_and_score))  # a second training crashes
    resumed = evaluate_full(blob_data, config, progress=False, runs_dir=runs_dir)  # trains only the third
    assert resumed["runs_read_back"] == 2 and len(list(runs_dir.glob("run-*.json"))) == 3
    assert resumed["per_run"] == whole["per_run"]  # the seed fixes each run: same numbers as one sitting


def test_runs_dir_resumes_a_run_at_its_last_saved_epoch_and_ends_where_an_unbroken_run_ends(blob_data, tmp_path,
                                                                                           monkeypatch):
    from conftest import Crash
    from ltdistill.evaluate.runstore import PartialRun

    config = EvalConfig(model_options=(("width", 8), ("depth", 2)), runs=1, epochs=6, batch_size=32)
    whole = evaluate_full(blob_data, config, progress=False)
    runs_dir, saves = tmp_path / "runs", []
    real_save = PartialRun.save

    def save_every_epoch_and_die_after_the_fourth(self, epochs_done, *args):
        self.every_s = 0.0
        real_save(self, epochs_done, *args)
        saves.append(epochs_done)
        if saves == [1, 2, 3, 4]:  # killed after the lr decay at epoch 3: the optimizer's lr is state too
            raise Crash

    monkeypatch.setattr(PartialRun, "save", save_every_epoch_and_die_after_the_fourth)
    with pytest.raises(Crash):
        evaluate_full(blob_data, config, progress=False, runs_dir=runs_dir)
    partial = list(runs_dir.glob("partial-*.pt"))
    assert len(partial) == 1 and not list(runs_dir.glob("run-*.json"))
    resumed = evaluate_full(blob_data, config, progress=False, runs_dir=runs_dir)
    assert saves[4:] == [5, 6]  # trained the last two epochs only
    assert resumed["per_run"] == whole["per_run"]
    assert list(runs_dir.glob("run-*.json")) and not list(runs_dir.glob("partial-*.pt"))  # kept: the partial goes
    monkeypatch.setattr(PartialRun, "save", lambda self, epochs_done, *args: saves.append(epochs_done))
    saves.clear()
    for path in runs_dir.glob("run-*.json"):
        path.unlink()
    partial[0].write_bytes(b"not a checkpoint")  # a damaged partial run: trained from epoch 0, not trusted
    assert evaluate_full(blob_data, config, progress=False, runs_dir=runs_dir)["per_run"] == whole["per_run"]
    assert saves == [1, 2, 3, 4, 5, 6]


def test_runs_dir_never_reuses_a_run_of_another_evaluation(blob_data, tmp_path):
    config = EvalConfig(model_options=(("width", 8), ("depth", 2)), runs=2, epochs=3, batch_size=32)
    runs_dir = tmp_path / "runs"
    first = evaluate_full(blob_data, config, progress=False, runs_dir=runs_dir)
    assert first["runs_read_back"] == 0
    more = evaluate_full(blob_data, replace(config, runs=3), progress=False, runs_dir=runs_dir)
    assert more["runs_read_back"] == 2 and more["per_run"][:2] == first["per_run"]  # more runs reuse the first
    other = evaluate_full(blob_data, replace(config, epochs=4), progress=False, runs_dir=runs_dir)
    assert other["runs_read_back"] == 0 and len(list(runs_dir.glob("run-*.json"))) == 5
    index = torch.cat([blob_data.indices_of(c)[:3] for c in range(4)])
    synthetic = SyntheticSet(blob_data.train_x[index], blob_data.train_y[index], meta={"method": "random", "ipc": 3})
    assert evaluate_synthetic(synthetic, blob_data, config, progress=False, runs_dir=runs_dir)["runs_read_back"] == 0
    for i, path in enumerate(runs_dir.glob("run-*.json")):  # a damaged file is trained again and replaced, not trusted
        path.write_bytes(b"{not json" if i % 2 else b"\xff\xfe{")  # (bytes that are not UTF-8: a traceback before)
    assert evaluate_full(blob_data, config, progress=False, runs_dir=runs_dir)["runs_read_back"] == 0
    assert evaluate_full(blob_data, config, progress=False, runs_dir=runs_dir)["runs_read_back"] == 2


def test_the_ddranking_ranking_keeps_the_best_scored_epoch_and_lr_and_trains_hard_labels_unaugmented(monkeypatch,
                                                                                                    blob_data):
    """evaluate --ranking ddranking (DD-Ranking soft_label.py): the test set scored every 20 epochs, the best kept;
    without a given lr every lr of the grid trained and the best kept; hard labels trained without augmentation;
    a random set drawn anew for every run. Training is replaced by a script of scores to see what is selected."""
    from ltdistill.evaluate import protocol
    from ltdistill.evaluate.runstore import tensor_digest
    from ltdistill.methods import create

    data = blob_data
    calls = []

    def fake_train(model, images, targets, settings, *, on_epoch=None, **kw):
        calls.append((settings.lr, settings.augment, tensor_digest(images)))
        for epoch in range(1, settings.epochs + 1):
            model.score = 0.1 * settings.lr + (0.5 if epoch == 40 else epoch / 1000)  # epoch 40 is the best
            if on_epoch is not None:
                on_epoch(epoch, 0.0)
        model.score = 0.0  # the last epoch scores worst: the ltdistill ranking would report it

    monkeypatch.setattr(protocol, "train_model", fake_train)
    monkeypatch.setattr(protocol, "predict", lambda model, x: torch.zeros(len(x), dtype=torch.long))
    monkeypatch.setattr(protocol, "run_metrics", lambda *a: scored(current["model"].score))
    current = {}
    real_create = protocol.models.create

    def create_model(*a, **kw):
        current["model"] = real_create(*a, **kw)
        return current["model"]

    monkeypatch.setattr(protocol.models, "create", create_model)
    random_set = create("random").distill(data, 2, seed=5, progress=False)
    config = protocol.EvalConfig(model="mlp", runs=2, epochs=50, ranking="ddranking")
    result = protocol.evaluate_synthetic(random_set, data, config, progress=False)
    assert result["lr_per_run"] == [0.1, 0.1] and tuple(result["lr_grid"]) == protocol.DDRANKING_LR_GRID
    assert result["balanced_acc_runs"] == pytest.approx([0.51, 0.51])  # epoch 40 at lr 0.1, not epoch 50
    assert len(calls) == 10 and not any(augment for _, augment, _ in calls)  # 5 lrs x 2 runs, hard labels
    assert calls[0][2] != calls[5][2] and result["redrawn"]  # run 2 trains on another random draw
    # the Random sets of other seeds (a suite's seeds) draw other images for their runs; seed 0's first run draws
    # the set itself, as before
    seed5_draws = {calls[0][2], calls[5][2]}
    calls.clear()
    zero = create("random").distill(data, 2, seed=0, progress=False)
    protocol.evaluate_synthetic(zero, data, config, progress=False)
    assert calls[0][2] == tensor_digest(zero.images) and not seed5_draws & {calls[0][2], calls[5][2]}
    calls.clear()
    plain = protocol.evaluate_synthetic(random_set, data, protocol.EvalConfig(model="mlp", runs=1, epochs=50),
                                        progress=False)
    assert plain["balanced_acc"]["mean"] == 0.0 and len(calls) == 1 and calls[0][1]  # last epoch, lr 0.01, DSA


def scored(score: float) -> dict:
    return {"balanced_acc": score, "per_class_acc": [score] * 4, "class_acc_std": 0.0, "many": score,
            "medium": None, "few": score, "lt_test": {"acc": score, "precision": score, "recall": score, "f1": score}}
