"""The official teacher recipes as evaluation options: SRe2L's relabel recipe (evaluate --recipe sre2l;
relabel_cifar.py) and EDC's student recipe (evaluate --recipe edc; direct_train.py)."""

import math
from dataclasses import replace

import pytest
import torch

from ltdistill import methods
from ltdistill.errors import BadInput
from ltdistill.evaluate import EvalConfig, evaluate_synthetic
from ltdistill.evaluate.protocol import train_config
from ltdistill.train import crop_flip, kl_relabel_loss, mixup, relabel_loss, set_epoch_lr


def test_kl_relabel_loss_is_the_t2_loss_over_t2_less_the_teacher_entropy():
    student, teacher = torch.randn(5, 4, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    t = 30.0
    p = torch.softmax(teacher / t, 1)
    entropy = -(p * p.log()).sum(1).mean()
    assert torch.allclose(kl_relabel_loss(student, teacher, t), relabel_loss(student, teacher, t) / t**2 - entropy)


def test_crop_flip_pads_with_the_fill_and_keeps_the_image_when_centred():
    x = torch.arange(2 * 2 * 6 * 6, dtype=torch.float32).view(2, 2, 6, 6)
    out = crop_flip(x, (-1.0, -2.0), torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    padded = {float(v) for v in out.flatten()} - {float(v) for v in x.flatten()}
    assert padded <= {-1.0, -2.0}
    centred = crop_flip(x, (0.0,), torch.Generator().manual_seed(0), pad=0)  # no room to move: only flips
    assert all(torch.equal(c, i) or torch.equal(c, i.flip(-1)) for c, i in zip(centred, x, strict=True))


def test_mixup_is_a_convex_mix_of_the_batch_with_a_permutation_of_itself():
    x = torch.eye(4).view(4, 1, 2, 2)
    mixed = mixup(x, 0.8, torch.Generator().manual_seed(1))
    assert torch.allclose(mixed.sum(dim=(1, 2, 3)), torch.ones(4))  # each row is lam * e_i + (1 - lam) * e_perm(i)
    assert torch.equal(mixup(x, 0.8, torch.Generator().manual_seed(1)), mixed)  # seeded


def test_the_cosine_schedule_is_torchs_cosine_annealing_per_epoch():
    from ltdistill.train import TrainConfig

    config = TrainConfig(epochs=10, lr=1e-3, optimizer="adamw", schedule="cosine")
    model = torch.nn.Linear(2, 2)
    ours = torch.optim.AdamW(model.parameters(), lr=1e-3)
    theirs = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(theirs, T_max=10)
    for epoch in range(10):
        set_epoch_lr(ours, config, epoch)
        assert math.isclose(ours.param_groups[0]["lr"], theirs.param_groups[0]["lr"], rel_tol=1e-9)
        theirs.step()
        scheduler.step()


def test_the_recipe_sets_the_official_settings_and_refuses_a_set_without_a_teacher(blob_data):
    config = EvalConfig(model_options=(("width", 4), ("depth", 2)), runs=1, epochs=1, recipe="sre2l")
    settings = train_config(config, blob_data, lr=0.01, temperature=4.0, teacher=True)
    assert (settings.optimizer, settings.lr, settings.weight_decay, settings.schedule, settings.batch_size,
            settings.mixup, settings.relabel, settings.temperature, settings.teacher_batch_stats) == \
        ("adamw", 1e-3, 0.01, "cosine", 128, 0.8, "kl", 30.0, True)
    black = tuple(-m / s for m, s in zip(blob_data.mean, blob_data.std, strict=True))
    assert settings.crop_fill == pytest.approx(black)
    random_set = methods.create("random").distill(blob_data, 2, progress=False)
    with pytest.raises(BadInput, match="relabels with a teacher"):
        evaluate_synthetic(random_set, blob_data, config, progress=False)


def test_a_relabeling_set_evaluates_under_either_recipe_and_says_which(blob_data):
    tiny = {"width": 4, "depth": 2, "epochs": 2, "iterations": 2}
    synthetic = methods.create("sre2l", **tiny).distill(blob_data, 2, progress=False)
    for recipe in ("ltdistill", "sre2l"):
        config = EvalConfig(model_options=(("width", 4), ("depth", 2)), runs=1, epochs=2, recipe=recipe)
        result = evaluate_synthetic(synthetic, blob_data, config, progress=False)
        assert result["recipe"] == recipe and f"recipe {recipe}" in result["label_regime"]
        assert 0 <= result["balanced_acc"]["mean"] <= 1
        assert result["lr"] == (1e-3 if recipe == "sre2l" else 0.01)  # the lr the runs trained with
    # DD-Ranking's protocol searches no lr grid under a recipe: the recipe's lr is the one every run takes
    config = EvalConfig(model_options=(("width", 4), ("depth", 2)), runs=1, epochs=2, recipe="sre2l",
                        ranking="ddranking")
    result = evaluate_synthetic(synthetic, blob_data, config, progress=False)
    assert result["lr_grid"] is None and result["lr"] == 1e-3


def test_the_edc_recipe_scores_the_parameter_ema_and_keys_its_runs_apart_from_earlier_ones(blob_data):
    from ltdistill.evaluate.protocol import recipe_later_settings

    config = EvalConfig(model_options=(("width", 4), ("depth", 2)), runs=1, epochs=1, recipe="edc")
    settings = train_config(config, blob_data, lr=0.01, temperature=1.0, teacher=True)
    assert (settings.ema_decay, settings.decay_matrices_only, settings.relabel, settings.batch_size) == \
        (0.99, True, "mse_gt", 10)
    assert recipe_later_settings("edc") == {"ema_decay": 0.99, "decay_matrices_only": True}
    assert recipe_later_settings("sre2l") == {} and recipe_later_settings("ltdistill") == {}


def test_a_run_with_a_parameter_ema_is_scored_on_the_average_and_resumes_to_the_unbroken_run(tmp_path):
    from conftest import Crash
    from ltdistill import models
    from ltdistill.evaluate.runstore import PartialRun
    from ltdistill.train import TrainConfig, train_model

    config = TrainConfig(epochs=4, lr=0.01, batch_size=8, optimizer="adamw", weight_decay=0.01, augment=False,
                         ema_decay=0.5, decay_matrices_only=True)
    x = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    y = torch.arange(16) % 2

    def net():
        torch.manual_seed(0)
        return models.create("convnet", channels=1, num_classes=2, im_size=(8, 8), width=4, depth=1)

    def run(config, checkpoint=None):
        return train_model(net(), x, y, config, generator=torch.Generator().manual_seed(1), checkpoint=checkpoint)

    unbroken, trained = run(config), run(replace(config, ema_decay=None))
    assert not all(torch.equal(a, b) for a, b in zip(unbroken.parameters(), trained.parameters(), strict=True))

    class DiesAfterTwo(PartialRun):
        def save(self, epochs_done, *args):
            self.every_s = 0.0
            super().save(epochs_done, *args)
            if epochs_done == 2:
                raise Crash

    path = tmp_path / "partial.pt"
    with pytest.raises(Crash):
        run(config, DiesAfterTwo(path))
    resumed = run(config, PartialRun(path))
    for a, b in zip(unbroken.parameters(), resumed.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_a_parameter_ema_leaves_a_parameter_the_loss_never_reaches_as_it_was():
    from torch import nn

    from ltdistill.train import TrainConfig, train_model

    class WithUnused(nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.unused = nn.Linear(4, 2), nn.Linear(4, 2)

        def forward(self, x):
            return self.used(x.flatten(1))

    torch.manual_seed(0)
    model = WithUnused()
    before = model.unused.weight.detach().clone()
    config = TrainConfig(epochs=2, lr=0.01, batch_size=4, optimizer="adamw", augment=False, ema_decay=0.9,
                         decay_matrices_only=True)
    train_model(model, torch.randn(8, 1, 2, 2), torch.arange(8) % 2, config, generator=torch.Generator().manual_seed(0))
    assert torch.equal(model.unused.weight, before)


def test_runs_kept_under_the_edc_recipe_before_its_ema_are_not_read_back_as_todays(blob_data, tmp_path, monkeypatch):
    from ltdistill.evaluate import protocol

    tiny = {"width": 4, "depth": 2, "epochs": 2, "iterations": 2}
    synthetic = methods.create("sre2l", **tiny).distill(blob_data, 2, progress=False)
    config = EvalConfig(model_options=(("width", 4), ("depth", 2)), runs=1, epochs=1, batch_size=8, recipe="edc")
    runs_dir = tmp_path / "runs"
    earlier = {**protocol.RECIPE_SETTINGS["edc"], "ema_decay": None, "decay_matrices_only": False}
    with monkeypatch.context() as patch:  # a run kept by the recipe as it was
        patch.setitem(protocol.RECIPE_SETTINGS, "edc", earlier)
        evaluate_synthetic(synthetic, blob_data, config, progress=False, runs_dir=runs_dir)
    assert evaluate_synthetic(synthetic, blob_data, config, progress=False, runs_dir=runs_dir)["runs_read_back"] == 0
    assert evaluate_synthetic(synthetic, blob_data, config, progress=False, runs_dir=runs_dir)["runs_read_back"] == 1
