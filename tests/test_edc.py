"""EDC end to end on a tiny set, its ensemble teacher, its student recipe and the augmentations it brings."""

import json

import pytest
import torch

from ltdistill import methods
from ltdistill.data.augment import resized_crop_flip
from ltdistill.evaluate.protocol import EvalConfig, evaluate_synthetic
from ltdistill.synthetic import SyntheticSet
from ltdistill.train import TrainConfig, paste_box, train_model

TINY = {"width": 4, "depth": 1, "epochs": 1, "iterations": 3, "batch_size": 4}


def test_edc_distills_with_every_observer_and_evaluates_under_its_recipe_and_adsa(blob_data, tmp_path):
    synthetic = methods.create("edc", **TINY).distill(blob_data, 2, seed=1, progress=False)
    assert synthetic.meta["teacher"]["model"] == "ensemble"
    assert [m["model"] for m in synthetic.meta["teacher"]["members"]] == ["convnet_bn", "convnet"]
    assert len(synthetic.meta["recovery_loss"]) == 3 * 2  # 8 images in batches of 4, 3 steps each
    assert synthetic.meta["models_accuracy"].keys() == {"observer convnet_bn", "observer convnet"}
    synthetic.save(tmp_path / "set")
    loaded = SyntheticSet.load(tmp_path / "set")
    config = EvalConfig(runs=1, epochs=2, model_options=(("width", 4),), recipe="edc")
    result = evaluate_synthetic(loaded, blob_data, config, progress=False)
    assert "recipe edc" in result["label_regime"] and 0 <= result["balanced_acc"]["mean"] <= 1
    calibrated = evaluate_synthetic(loaded, blob_data, EvalConfig(runs=1, epochs=2, model_options=(("width", 4),),
                                                                  recipe="edc", labels="adsa"), progress=False)
    assert calibrated["label_calibration"]["method"] == "adsa"


def test_an_observer_with_no_layer_to_match_is_said_to_match_nothing(blob_data, capsys):
    """EDC matches BatchNorm and Conv inputs: an MLP observer still labels, but its recovery steps are CE only."""
    methods.create("edc", **{**TINY, "observers": ("mlp", "convnet")}).distill(blob_data, 1, progress=False)
    err = capsys.readouterr().err
    assert "edc observer 'mlp' has no BatchNorm2d or Conv2d layer" in err and "'convnet' has no" not in err


def test_the_ensemble_teacher_answers_the_mean_of_its_members_logits(blob_data):
    from ltdistill.models.ensemble import from_meta

    members = [{"model": "convnet", "options": {"width": 4, "depth": 1}}, {"model": "mlp", "options": {}}]
    teacher = from_meta(members, channels=1, num_classes=4, im_size=blob_data.im_size).eval()
    x = blob_data.train_x[:5]
    torch.testing.assert_close(teacher(x), (teacher.members[0](x) + teacher.members[1](x)) / 2)
    from ltdistill.errors import BadInput

    with pytest.raises(BadInput, match="members"):
        from_meta([{"name": "convnet"}], channels=1, num_classes=4, im_size=blob_data.im_size)


def test_the_mse_gt_loss_needs_each_images_class():
    teacher = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    student = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    config = TrainConfig(epochs=1, relabel="mse_gt", augment=False)
    with pytest.raises(ValueError, match="class"):
        train_model(student, torch.randn(3, 1, 2, 2), torch.randn(3, 2), config, generator=torch.Generator(),
                    teacher=teacher)
    train_model(student, torch.randn(3, 1, 2, 2), torch.randn(3, 2), config, generator=torch.Generator(),
                teacher=teacher, classes=torch.tensor([0, 1, 0]))


def test_cutmix_pastes_one_box_from_the_permuted_batch_and_resized_crops_keep_the_size():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float).reshape(2, 1, 4, 4)
    mixed = paste_box(x, torch.tensor([1, 0]), (1, 0, 3, 2))
    assert torch.equal(mixed[0, :, 1:3, 0:2], x[1, :, 1:3, 0:2]) and torch.equal(mixed[0, :, 0], x[0, :, 0])
    g = torch.Generator().manual_seed(0)
    images = torch.randn(6, 1, 12, 12)
    assert resized_crop_flip(images, g).shape == images.shape
    shared = resized_crop_flip(torch.stack([images[0]] * 3), g, shared=True)  # one box: equal images stay equal
    assert torch.equal(shared[0], shared[2])
    own = resized_crop_flip(torch.stack([images[0]] * 3), g)
    assert not torch.equal(own[0], own[1]) or not torch.equal(own[1], own[2])


def test_evaluate_takes_the_recipe_an_edc_set_names_unless_told_otherwise(blob_data, tmp_path, monkeypatch):
    from ltdistill.cli import main

    common = ["distill", "--method", "edc", "--dataset", "digits", "--imbalance", "10", "--ipc", "2", "--set",
              "epochs=1", "--set", "iterations=2", "--set", "width=4", "--set", "depth=1", "--no-progress"]
    assert main([*common, "--out", str(tmp_path / "set")]) == 0
    assert json.loads((tmp_path / "set" / "meta.json").read_text())["recipe"] == "edc"
    for i, (extra, recipe) in enumerate((([], "edc"), (["--recipe", "ltdistill"], "ltdistill"),
                                          (["--labels", "hard"], "ltdistill"))):
        out = tmp_path / f"eval-{i}.json"
        assert main(["evaluate", str(tmp_path / "set"), "--runs", "1", "--epochs", "1", "--no-progress", "--json",
                     str(out), *extra]) == 0
        assert json.loads(out.read_text())["eval_config"]["recipe"] == recipe
