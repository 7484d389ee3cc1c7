"""K models trained together (together.py) are the K sequential runs of train_model, to float rounding."""

import pytest
import torch
from torch.func import stack_module_state

from ltdistill import models
from ltdistill.together import chosen, groupable, grouped_forward, train_together, unsupported
from ltdistill.train import TrainConfig, TrainingDiverged, train_model


def _nets(k: int, model: str = "convnet") -> list[torch.nn.Module]:
    nets = []
    for seed in range(k):
        torch.manual_seed(seed)
        nets.append(models.create(model, channels=1, num_classes=3, im_size=(8, 8), width=8, depth=2))
    return nets


def _data(soft: bool = False):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(15, 1, 8, 8, generator=g)
    y = torch.randn(15, 3, generator=g) if soft else torch.arange(3).repeat_interleave(5)
    return x, y


@pytest.mark.parametrize("config", [
    TrainConfig(epochs=4, batch_size=4),  # DSA, lr step at half
    TrainConfig(epochs=3, batch_size=6, class_balanced=True, augmentation="crop_flip", temperature=2.0),
    TrainConfig(epochs=3, batch_size=5, optimizer="adamw", schedule="cosine", lr=1e-3, weight_decay=0.01),
], ids=["dsa-sgd", "balanced-cropflip", "adamw-cosine"])
@pytest.mark.parametrize("stacking", ["grouped", "vmap"])
def test_models_trained_together_equal_the_sequential_runs(config, stacking):
    x, y = _data(soft=config.temperature != 1.0)
    alone, together = _nets(3), _nets(3)
    for k, net in enumerate(alone):
        train_model(net, x, y, config, generator=torch.Generator().manual_seed(100 + k))
    diverged = train_together(together, x, y, config, generators=[torch.Generator().manual_seed(100 + k)
                                                                   for k in range(3)], stacking=stacking)
    assert diverged == [None, None, None]
    for a, b in zip(alone, together, strict=True):
        torch.testing.assert_close(b.eval()(x), a.eval()(x), atol=1e-4, rtol=1e-4)
        if config.optimizer == "sgd":  # (Adam turns the noise-level gradient of a conv bias before a norm into
            for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):  # full steps: no effect)
                torch.testing.assert_close(q, p, atol=2e-5, rtol=1e-4, msg=name)
    # the runs differ from each other: each model drew its own order and augmentation
    assert not torch.allclose(together[0].classifier.weight, together[1].classifier.weight)


def test_a_diverging_model_is_frozen_where_its_run_stops_and_the_others_go_on():
    x, y = _data()
    config = TrainConfig(epochs=3, batch_size=5, lr=1e6)
    alone = _nets(1)[0]
    with pytest.raises(TrainingDiverged) as stopped:
        train_model(alone, x, y, config, generator=torch.Generator().manual_seed(0))
    nets = _nets(2)
    diverged = train_together(nets, x, y, config, generators=[torch.Generator().manual_seed(k) for k in range(2)])
    assert diverged[0] == stopped.value.epoch
    sane = _nets(2)
    assert train_together(sane, x, y, TrainConfig(epochs=2, batch_size=5),
                          generators=[torch.Generator().manual_seed(k) for k in range(2)]) == [None, None]


def test_weights_made_non_finite_by_the_last_step_count_as_diverged_in_the_last_epoch():
    x, y = _data()
    config = TrainConfig(epochs=1, batch_size=15, lr=10.0, weight_decay=1e38)  # the step, not the loss, overflows
    with pytest.raises(TrainingDiverged) as stopped:
        train_model(_nets(1)[0], x, y, config, generator=torch.Generator().manual_seed(0))
    assert train_together(_nets(2), x, y, config, generators=[torch.Generator().manual_seed(k) for k in range(2)]) \
        == [stopped.value.epoch] * 2


def test_what_cannot_train_together_says_why_and_auto_means_a_cuda_device():
    assert unsupported(_nets(1, "convnet_bn")[0], TrainConfig(epochs=1)) == "its BatchNorm keeps running statistics"
    assert unsupported(_nets(1)[0], TrainConfig(epochs=1, gsam_rho=0.01)) == "GSAM is not batched"
    assert unsupported(_nets(1)[0], TrainConfig(epochs=1)) is None
    with pytest.raises(ValueError, match="BatchNorm"):
        train_together(_nets(2, "convnet_bn"), *_data(), TrainConfig(epochs=1),
                       generators=[torch.Generator(), torch.Generator()])
    assert chosen("auto", "cuda:0") and not chosen("auto", "cpu") and chosen("on", "cpu") and not chosen("off", "cuda")


def test_an_evaluation_with_its_runs_together_scores_as_one_by_one_and_keeps_the_runs(blob_data, tmp_path):
    from dataclasses import replace

    from ltdistill.evaluate.protocol import EvalConfig, evaluate_synthetic
    from ltdistill.synthetic import SyntheticSet

    index = torch.cat([blob_data.indices_of(c)[:3] for c in range(4)])
    synthetic = SyntheticSet(blob_data.train_x[index], blob_data.train_y[index], meta={"method": "random", "ipc": 3})
    config = EvalConfig(model_options=(("width", 8), ("depth", 2)), runs=3, epochs=6, runs_together="off")
    alone = evaluate_synthetic(synthetic, blob_data, config, progress=False)
    runs_dir = tmp_path / "runs"
    together = evaluate_synthetic(synthetic, blob_data, replace(config, runs_together="on"), progress=False,
                                  runs_dir=runs_dir)
    assert alone["runs_trained_together"] == 0 and together["runs_trained_together"] == 3
    for a, b in zip(alone["per_run"], together["per_run"], strict=True):
        assert abs(a["balanced_acc"] - b["balanced_acc"]) < 0.02  # the same runs, to float rounding
    again = evaluate_synthetic(synthetic, blob_data, replace(config, runs_together="on"), progress=False,
                               runs_dir=runs_dir)  # the runs are kept like any other: read back, not trained
    assert again["runs_read_back"] == 3 and again["runs_trained_together"] == 0
    bn = replace(config, model="convnet_bn", runs=2, runs_together="on")  # not covered: one by one
    assert evaluate_synthetic(synthetic, blob_data, bn, progress=False)["runs_trained_together"] == 0


def test_standard_experts_trained_together_follow_the_trajectories_of_one_by_one(blob_data, tmp_path):
    from ltdistill.experts.train import ExpertConfig, train_experts

    config = ExpertConfig(num_experts=3, epochs=2, width=4, depth=1)
    alone = train_experts(blob_data, config, tmp_path / "alone", progress=False, together="off")
    stack = train_experts(blob_data, config, tmp_path / "together", progress=False, together="on")
    for i in range(3):
        torch.testing.assert_close(stack.load("standard", i), alone.load("standard", i), atol=2e-5, rtol=1e-4)
    assert not torch.allclose(stack.load("standard", 0)[-1], stack.load("standard", 1)[-1])
    assert list(stack.finished("standard")) == [0, 1, 2] and stack.load_partial("standard", 0) is None


@pytest.mark.parametrize("model, options", [("convnet", {"depth": 3}), ("convnet_nn", {}),
                                            ("convnet", {"stem": "pad1"}), ("convnet_d4", {})])
def test_a_grouped_stack_gives_each_models_own_logits(model, options):
    nets = []
    for seed in range(3):
        torch.manual_seed(seed)
        nets.append(models.create(model, channels=1, num_classes=4, im_size=(28, 28), width=6, **options))
    assert groupable(nets[0])
    params, _ = stack_module_state(nets)
    x = torch.randn(3, 5, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    got = grouped_forward(nets[0], params, x)
    torch.testing.assert_close(got, torch.stack([net(x[k]) for k, net in enumerate(nets)]), atol=1e-5, rtol=1e-4)


def test_grouped_stacking_is_for_convnets_without_batchnorm():
    mlp = [models.create("mlp", channels=1, num_classes=3, im_size=(8, 8)) for _ in range(2)]
    assert not groupable(_nets(1, "convnet_bn")[0]) and not groupable(mlp[0])
    with pytest.raises(ValueError, match="grouped stacking takes ConvNets"):
        train_together(mlp, *_data(), TrainConfig(epochs=1), stacking="grouped",
                       generators=[torch.Generator(), torch.Generator()])
    with pytest.raises(ValueError, match="unknown stacking"):
        train_together(_nets(2), *_data(), TrainConfig(epochs=1), stacking="loop",
                       generators=[torch.Generator(), torch.Generator()])
