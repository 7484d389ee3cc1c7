"""EDC against numbers its official code produced (tests/parity/edc/README.md says which file, commit and lines):
the real-data statistics, the recovery loss and image gradient of one observer, three recovery steps over two
observers, the conv-hook patch statistics of a resized input, the mse_gt student loss, the student's weight-decay
groups and parameter EMA over three steps, and the lr schedules."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from ltdistill import models
from ltdistill.families import statmatch
from ltdistill.families.statmatch import StatisticMatcher, real_statistics, recover_matched
from ltdistill.train import TrainConfig, epoch_lr, mse_gt_loss

HERE = Path(__file__).parent / "parity"
OFFICIAL = json.loads((HERE / "edc" / "official_edc.json").read_text())
SHARED = load_file(str(HERE / "recovery" / "inputs.safetensors"))  # the recovery folder's nets and images
EDC_INPUTS = load_file(str(HERE / "edc" / "inputs.safetensors"))
LAYERS = {"blocks.0.0": "features.0", "blocks.0.1": "features.1", "blocks.1.0": "features.4",
          "blocks.1.1": "features.5"}  # ours -> the official ConvNet's module names
NETS = {"bn": ("convnet_bn", "ConvNet_ConvNetBN"), "in": ("convnet", "ConvNet_ConvNetIN")}


def observer(kind: str) -> torch.nn.Module:
    net = models.create(NETS[kind][0], channels=3, num_classes=3, im_size=(8, 8), width=8, depth=2).double()
    net.load_state_dict({k[len(kind) + 1:]: v for k, v in SHARED.items() if k.startswith(kind + ".")})
    return net.eval().requires_grad_(False)


def targets(net: torch.nn.Module):
    """The statistics pass of the official run: real_x in stored order, batches of rows 0-3, 4-7, 8."""
    x, y = SHARED["real_x"], SHARED["real_y"]
    return real_statistics(net, [(x[0:4], y[0:4]), (x[4:8], y[4:8]), (x[8:9], y[8:9])], 3, 9)


def start_images() -> torch.Tensor:
    return torch.tensor(OFFICIAL["a_inputs"]["start_images"], dtype=torch.float64).reshape(3, 3, 8, 8)


def close(got, want, tol=1e-10):
    torch.testing.assert_close(torch.as_tensor(got, dtype=torch.float64).flatten(),
                               torch.tensor(want, dtype=torch.float64).flatten(), rtol=tol, atol=tol)


@pytest.mark.parametrize("kind", ["bn", "in"])
def test_real_statistics_equal_the_official_statistic_files(kind):
    files = OFFICIAL["statistic_files"]["files"]
    prefix = NETS[kind][1]
    found = targets(observer(kind))
    for ours, theirs in LAYERS.items():
        if ours not in found:
            continue
        layer = found[ours]
        hook = "ConvFeatureHook" if layer.conv else "BNFeatureHook"
        if layer.conv:
            glob = files[f"ConvFeatureHook/{prefix}={theirs}/running.npz"]
            for key in ("mean", "var", "patch_mean", "patch_var"):
                close(layer.global_[key], glob[f"running_{key.replace('mean', 'dd_mean').replace('var', 'dd_var')}"
                                             if not key.startswith("patch") else f"running_{key}"])
        for c in range(3):
            stored = files[f"{hook}/class_{c}/{prefix}={theirs}/running.npz"]
            close(layer.per_class["mean"][c], stored["running_dd_mean"])
            close(layer.per_class["var"][c], stored["running_dd_var"])
            if layer.conv:  # the official files hold the class patch statistics under each other's name
                close(layer.per_class["patch_mean"][c], stored["running_patch_var"])
                close(layer.per_class["patch_var"][c], stored["running_patch_mean"])


@pytest.mark.parametrize("kind,key", [("bn", "a_recovery_loss_bn_observer"), ("in", "a_recovery_loss_in_observer")])
def test_the_recovery_loss_and_its_image_gradient_equal_the_official(kind, key):
    want = OFFICIAL[key]
    net = observer(kind)
    matcher = StatisticMatcher(net, targets(net))
    matcher.labels = torch.tensor(OFFICIAL["a_inputs"]["targets"])
    x = start_images().requires_grad_(True)
    ce = F.cross_entropy(net(x), matcher.labels)
    feature = matcher.pop(10.0)
    (ce + 0.01 * feature).backward()
    close(ce.item(), want["loss_ce"])
    close(feature.item(), want["loss_r_feature"])
    close(x.grad, want["grad"], tol=1e-12)
    per_layer_hooks = [h["r_feature"] for h in want["per_hook"]]
    assert len(per_layer_hooks) == len(statmatch.hooked_layers(net))


def test_three_recovery_steps_over_two_observers_equal_the_official_loop():
    """Observers [BN, IN] in turn, Adam (0.5, 0.9), cosine lr over 3 steps, clip; augmentation off as in the
    official run (its crop was stubbed). The official run's extra display forward moves observer 0's running
    statistics at step 0 (not made here): steps 0 and 1 equal that run, step 2 equals the run without it."""
    nets = [observer("bn"), observer("in")]
    matchers = [StatisticMatcher(net, targets(net)) for net in nets]
    bounds = OFFICIAL["d_clip_bounds"]
    history: list[float] = []
    features: list[float] = []
    snapshots: list[torch.Tensor] = []
    recover_matched(nets, matchers, start_images(), torch.tensor([0, 1, 2]), batch_size=10, iterations=3, lr=0.05,
                    r_loss=0.01, first_multiplier=10.0,
                    pixel_range=(torch.tensor(bounds["lo"]), torch.tensor(bounds["hi"])), generator=torch.Generator(),
                    augment=False, history=history, features=features, snapshots=snapshots)
    official = OFFICIAL["recovery_loop_3_iterations"]["history"]
    # (pixels at the clip bound: the official bounds are rounded to float32 there, 1e-7 apart, so later steps
    # agree to 1e-8)
    for step in (0, 1):
        close(history[step], official[step]["loss_ce_plus_r_loss_times_r_feature_float64"], tol=1e-8)
        close(features[step], official[step]["loss_r_feature"], tol=1e-8)
        close(snapshots[step], official[step]["images_after"], tol=2e-7)
    without_display = OFFICIAL["recovery_loop_without_display_forward"]["history"]
    close(features[2], without_display[2]["loss_r_feature"], tol=1e-8)
    assert abs(features[2] - official[2]["loss_r_feature"]) > 1  # what the display forward moves


def test_conv_patch_statistics_of_a_resized_input_equal_the_official_hook():
    """A 6x6 input is resized to 8x8 and cut into four 4x4 patches (utils.py:384-414, data_number 2)."""
    x = EDC_INPUTS["conv6x6_x"]
    conv = torch.nn.Sequential(torch.nn.Conv2d(2, 1, 1)).double()
    layer = real_statistics(conv, [(x, torch.tensor([0, 1]))], 2, 2)["0"]
    want = OFFICIAL["d_conv_hook_stats_6x6"]
    for key in ("mean", "var", "patch_mean", "patch_var"):
        name = f"running_{'dd_' if not key.startswith('patch') else ''}{key}"
        close(layer.global_[key], want[name])
    close(layer.per_class["patch_mean"][0], want["class0_patch_mean"])
    close(layer.per_class["patch_var"][0], want["class0_patch_var"])
    close(layer.per_class["mean"][1], want["class1_dd_mean"])
    close(layer.per_class["var"][1], want["class1_dd_var"])


def test_the_mse_gt_student_loss_and_gradient_equal_the_official():
    want = OFFICIAL["b_student_loss"]["mse_gt"]
    student = SHARED["student_logits"].clone().requires_grad_(True)
    loss = mse_gt_loss(student, SHARED["teacher_logits"], torch.tensor([0, 1, 2, 0]), 0.025)
    loss.backward()
    close(loss.item(), want["loss"])
    close(student.grad, want["grad_wrt_student_logits"])


def test_the_smoothed_and_multistep_schedules_equal_the_official():
    schedules = OFFICIAL["c_lr_schedules"]["student"]
    base = TrainConfig(epochs=10, lr=0.01, schedule="smoothed_cosine")
    for key, config in (("cos_E10_lr0.01_st2", replace(base, smoothing=2.0)),
                        ("cos_E10_lr0.01_st1.5(default)", replace(base, smoothing=1.5)),
                        ("multisteplr_E10_lr0.01_st2", replace(base, schedule="multistep")),
                        ("cifar10_train.sh_multisteplr_E1000_adamw0.001",
                         TrainConfig(epochs=1000, lr=0.001, schedule="multistep")),
                        ("cos_E1000_lr0.001_st2_sampled", TrainConfig(epochs=1000, lr=0.001,
                                                                      schedule="smoothed_cosine"))):
        for epoch, lr in schedules[key].items():
            assert epoch_lr(config, int(epoch)) == pytest.approx(lr, rel=1e-12), (key, epoch)


def test_the_recovery_batches_are_the_official_class_major_layout():
    for key, (ipc, batch) in {"ipc2_batch10": (2, 10), "ipc10_batch10": (10, 10), "ipc3_batch4": (3, 4)}.items():
        classes = torch.arange(10).repeat_interleave(ipc)
        ours = [chunk.tolist() for chunk in classes.split(batch)]
        assert ours == [b["targets"] for b in OFFICIAL["d_batch_layout"][key]]


EMA_STEPS = json.loads((HERE / "edc" / "official_ema.json").read_text())
OURS = {theirs: ours for ours, theirs in OFFICIAL["state_dict_mapping"]["in"]}  # official name -> ours


def student_after_recipe_steps(config: TrainConfig):
    """Three epochs of one batch (relabel_x, targets [0,1,2,0]) of evaluate's recipe-"edc" trainer, without its
    augmentation and CutMix: the IN ConvNet student, the BN ConvNet teacher; the model (its scored weights) and the
    optimizer whose state holds the other set (the trained weights, after the end-of-run swap)."""
    from ltdistill.train import make_optimizer, parameter_groups, train_model

    student = observer("in").train().requires_grad_(True)
    optimizer = make_optimizer(parameter_groups(student, config), config)
    y = torch.tensor([0, 1, 2, 0])
    train_model(student, SHARED["relabel_x"], y, config, generator=torch.Generator().manual_seed(0),
                teacher=observer("bn"), classes=y, optimizer=optimizer)
    return student, optimizer


EDC_STEP = TrainConfig(epochs=3, lr=1e-3, batch_size=4, weight_decay=0.01, optimizer="adamw", schedule="multistep",
                       augment=False, relabel="mse_gt", ce_weight=0.025, ema_decay=0.99, decay_matrices_only=True)


def test_the_weight_decay_groups_are_the_official_get_parameters_groups():
    from ltdistill.train import parameter_groups

    student = observer("in")
    names = {id(p): name for name, p in student.named_parameters()}
    decayed, spared = parameter_groups(student, EDC_STEP)
    assert sorted(names[id(p)] for p in decayed["params"]) == sorted(OURS[n] for n in EMA_STEPS["weight_decay_group"])
    assert spared["weight_decay"] == 0.0 and len(decayed["params"]) + len(spared["params"]) == len(names)


def test_the_edc_recipe_scores_the_official_parameter_ema_after_three_steps():
    """direct_train.py's student step three times (AdamW over get_parameters' groups, mse_gt, EMAMODEL 0.99 from the
    weights before training), then ema_swap: the weights the official run scores. The official loss is float32
    (.float() on the logits), ours float64: the tolerance covers that rounding only."""
    student, optimizer = student_after_recipe_steps(EDC_STEP)
    params = dict(student.named_parameters())
    for theirs, want in EMA_STEPS["after_swap"].items():
        close(params[OURS[theirs]], want, tol=1e-9)
    for theirs, want in EMA_STEPS["epochs"][-1]["live"].items():  # the trained weights, now in the state
        close(optimizer.state[params[OURS[theirs]]]["ema"], want, tol=1e-7)
