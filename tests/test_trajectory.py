"""Trajectory matching: the claims of MTT/DATM/TESLA as tests on tiny nets."""

import dataclasses

import pytest
import torch
from torch.nn.utils import parameters_to_vector

from conftest import Crash, crash_after
from ltdistill import methods, models
from ltdistill.data.augment import DSA
from ltdistill.errors import BadInput
from ltdistill.experts.buffer import ExpertBuffer
from ltdistill.experts.student import FlatModel
from ltdistill.experts.train import ExpertConfig, MaxNorm, train_experts
from ltdistill.families.trajectory import match_trajectory, student_loss
from ltdistill.methods.datm import DATMConfig, window_upper

TINY = {"width": 4, "depth": 2}


def tiny_flat_model(classes=4):
    return FlatModel(models.create("convnet", channels=1, num_classes=classes, im_size=(8, 8), **TINY))


def run_match(flat, start, target, images0, labels0, mode, steps, lr0=0.05):
    images = images0.clone().requires_grad_(True)
    labels = labels0.clone().requires_grad_(labels0.is_floating_point())
    lr = torch.tensor(lr0, requires_grad=True)
    loss = match_trajectory(flat, start, target, images, labels, lr, syn_steps=steps, batch_syn=3, dsa=DSA(),
                            generator=torch.Generator().manual_seed(1), gradient=mode)
    return loss, images.grad, labels.grad, lr.grad


def matching_problem():
    """A tiny student, its start parameters, and a target a small random step away."""
    flat = tiny_flat_model()
    start = parameters_to_vector(flat.model.parameters()).detach()
    return flat, start, start + 0.05 * torch.randn_like(start)


def test_matching_loss_is_zero_when_the_student_reaches_the_target():
    flat = tiny_flat_model()
    start = parameters_to_vector(flat.model.parameters()).detach()
    images, labels = torch.randn(6, 1, 8, 8), torch.arange(6) % 4
    # target = where the student lands: unroll once with lr 0 -> start itself; so use the student's own endpoint
    lr = torch.tensor(0.05)
    w = start.clone().requires_grad_(True)
    g = torch.autograd.grad(student_loss(flat(w, images), labels), w)[0]
    target = (start - lr * g).detach()
    imgs = images.clone().requires_grad_(True)
    loss = match_trajectory(flat, start, target, imgs, labels, lr.clone().requires_grad_(True), syn_steps=1,
                            batch_syn=None, dsa=None, generator=torch.Generator().manual_seed(0))
    assert loss == pytest.approx(0.0, abs=1e-10)


def test_image_gradients_are_finite_and_nonzero():
    flat, start, target = matching_problem()
    loss, g_img, g_lab, g_lr = run_match(flat, start, target, torch.randn(6, 1, 8, 8), torch.randn(6, 4),
                                         "full_bptt", 3)
    assert torch.isfinite(g_img).all() and g_img.abs().sum() > 0
    assert g_lab.abs().sum() > 0 and torch.isfinite(g_lr)


def test_constant_memory_gradient_equals_full_bptt_for_one_step():
    flat, start, target = matching_problem()
    images, labels = torch.randn(6, 1, 8, 8), torch.randn(6, 4)
    full = run_match(flat, start, target, images, labels, "full_bptt", 1)
    tesla = run_match(flat, start, target, images, labels, "tesla_frozen_weights", 1)
    assert full[0] == pytest.approx(tesla[0])
    for a, b in zip(full[1:], tesla[1:], strict=True):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-8)


def test_constant_memory_gradient_equals_autograd_with_frozen_weights():
    """For N steps it is the exact gradient of the unroll with each w_i detached (TESLA's approximation)."""
    flat, start, target = matching_problem()
    images0, labels0 = torch.randn(6, 1, 8, 8), torch.randn(6, 4)
    tesla = run_match(flat, start, target, images0, labels0, "tesla_frozen_weights", 4)

    # the same sampling order as match_trajectory: batches, then DSA params, from one generator
    from ltdistill.families.trajectory import Batches

    gen = torch.Generator().manual_seed(1)
    batches, dsa = Batches(6, 3, gen), DSA()
    plan = []
    for _ in range(4):
        idx = batches.next()
        plan.append((idx, dsa.sample(len(idx), (1, 8, 8), gen)))
    images, labels = images0.clone().requires_grad_(True), labels0.clone().requires_grad_(True)
    lr = torch.tensor(0.05, requires_grad=True)
    w, total = start.clone(), 0
    for idx, aug in plan:
        w_i = w.detach().requires_grad_(True)
        g = torch.autograd.grad(student_loss(flat(w_i, dsa.apply(images[idx], aug)), labels[idx]), w_i,
                                create_graph=True)[0]
        total = total + g
        w = w_i.detach() - lr.detach() * g.detach()
    loss = ((start - lr * total - target).square().sum()) / (start - target).square().sum()
    loss.backward()
    assert loss.item() == pytest.approx(tesla[0], rel=1e-5)
    assert torch.allclose(images.grad, tesla[1], rtol=1e-3, atol=1e-9)
    assert torch.allclose(labels.grad, tesla[2], rtol=1e-3, atol=1e-9)


def test_masks_restrict_what_moves_and_what_is_matched():
    flat = tiny_flat_model()
    start = parameters_to_vector(flat.model.parameters()).detach()
    head = flat.mask("classifier.", "cpu")
    assert 0 < head.sum() < len(head)
    target = start + 0.05 * torch.randn_like(start) * head  # only the head differs
    images = torch.randn(6, 1, 8, 8, requires_grad=True)
    lr = torch.tensor(0.05, requires_grad=True)
    loss = match_trajectory(flat, start, target, images, torch.arange(6) % 4, lr, syn_steps=2, batch_syn=None,
                            dsa=None, generator=torch.Generator().manual_seed(0), trainable=head, matched=head)
    assert loss > 0 and images.grad.abs().sum() > 0


def test_datm_window_grows_linearly_to_max():
    cfg = DATMConfig(current_max_start_epoch=10, max_start_epoch=20, expansion_end_epoch=100)
    assert [window_upper(cfg, it) for it in (0, 50, 100, 500)] == [10, 15, 20, 20]
    assert window_upper(DATMConfig(sequential_generation=False, max_start_epoch=20), 0) == 20


def test_a_start_window_without_an_epoch_is_refused_by_name():
    # with Sequential Generation the first window is [min, min(current, max)); without it [min, max)
    with pytest.raises(BadInput, match=r"datm.min_start_epoch = 5 must be below .* = 5 "):
        DATMConfig(min_start_epoch=5, current_max_start_epoch=5, max_start_epoch=20)
    assert window_upper(DATMConfig(min_start_epoch=5, current_max_start_epoch=5, max_start_epoch=20,
                                   sequential_generation=False), 0) == 20
    with pytest.raises(BadInput, match=r"max_start_epoch = 20"):
        DATMConfig(min_start_epoch=20, max_start_epoch=20, sequential_generation=False)
    with pytest.raises(BadInput, match=r"ltdd.t_rep_min = 12 must be below .*min\(t_rep, t_rep_max\) = 10"):
        methods.create("ltdd", t_rep_min=12, t_rep=10, t_rep_max=20, sequential_generation=True)
    assert methods.create("ltdd", t_rep_min=12, t_rep=10, t_rep_max=20).config.t_rep_min == 12


def test_maxnorm_caps_every_head_row_at_the_threshold():
    model = models.create("convnet", channels=1, num_classes=5, im_size=(8, 8), **TINY)
    with torch.no_grad():
        model.classifier.weight.mul_(torch.arange(1, 6.0)[:, None])
    cap = MaxNorm(0.1)
    cap(model)
    norms = model.classifier.weight.norm(dim=1)
    assert norms.max() <= cap.threshold + 1e-6 and norms.min() > 0


@pytest.fixture(scope="module")
def tiny_buffer(tmp_path_factory):
    from conftest import blob_raw
    from ltdistill.data.longtail import build_longtail

    data = build_longtail(blob_raw(), imbalance_factor=5, seed=0)
    out = tmp_path_factory.mktemp("experts")
    config = ExpertConfig(num_experts=2, epochs=4, width=8, depth=2, decoupled=True, cls_epochs=2, batch_size=32)
    train_experts(data, config, out, progress=False)
    return data, out, config


def test_experts_save_init_and_every_epoch_and_decouple(tiny_buffer):
    data, out, config = tiny_buffer
    buffer = ExpertBuffer.open(out)
    assert buffer.finished("rep") == [0, 1] and buffer.finished("cls") == [0, 1]
    rep, cls = buffer.load("rep", 0), buffer.load("cls", 0)
    assert rep.shape[0] == 5 and cls.shape[0] == 3
    head = FlatModel(models.create("convnet", channels=1, num_classes=4, im_size=(8, 8), width=8, depth=2)).mask(
        "classifier.", "cpu").bool()
    assert torch.equal(cls[0], rep[-1])  # the classifier expert starts where its representation expert ended
    assert torch.equal(cls[-1][~head], rep[-1][~head])  # backbone frozen
    assert not torch.equal(cls[-1][head], rep[-1][head])  # head moved


def test_experts_resume_after_a_crash_to_the_same_trajectories(tiny_buffer, tmp_path, monkeypatch):
    import ltdistill.experts.train as expert_train

    data, out, config = tiny_buffer
    one = ExpertConfig(**{**config.__dict__, "num_experts": 1})
    train_experts(data, one, tmp_path / "whole", progress=False)
    # train_model runs one epoch per call: crash in the 3rd epoch of the representation expert
    monkeypatch.setattr(expert_train, "train_model", crash_after(2, expert_train.train_model))
    with pytest.raises(Crash):
        train_experts(data, one, tmp_path / "crashed", progress=False)
    monkeypatch.undo()
    assert not (tmp_path / "crashed" / "rep_000.safetensors").exists()  # nothing half-written counts as done
    train_experts(data, one, tmp_path / "crashed", progress=False)
    for kind in ("rep", "cls"):
        assert torch.equal(ExpertBuffer.open(tmp_path / "crashed").load(kind, 0),
                           ExpertBuffer.open(tmp_path / "whole").load(kind, 0))
    # the epochs before the crash keep their timing through the partial state: 4 + 2 epochs timed in all
    from safetensors.torch import load_file

    crashed = ExpertBuffer.open(tmp_path / "crashed")
    epochs = [load_file(str(crashed.directory / f"{k}_000.safetensors"))["epoch_seconds"] for k in ("rep", "cls")]
    assert [len(e) for e in epochs] == [config.epochs, config.cls_epochs] and all((e > 0).all() for e in epochs)
    assert crashed.train_seconds("rep") == pytest.approx(float(epochs[0].sum()))


def test_a_corrupted_buffer_file_gives_a_clear_error(tiny_buffer, tmp_path):
    import shutil

    data, out, _ = tiny_buffer
    shutil.copytree(out, tmp_path / "x")
    (tmp_path / "x" / "rep_001.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(BadInput, match="corrupt expert file"):
        ExpertBuffer.open(tmp_path / "x").load("rep", 1)


def test_a_buffer_from_another_dataset_is_refused(tiny_buffer):
    from conftest import blob_raw
    from ltdistill.data.longtail import build_longtail

    _, out, _ = tiny_buffer
    other = build_longtail(blob_raw(), imbalance_factor=2, seed=0)
    with pytest.raises(BadInput, match="imbalance_factor"):
        methods.create("mtt", iterations=1).distill(other, 2, experts=out, progress=False)


def standard_buffer(tmp_path_factory):
    from conftest import blob_raw
    from ltdistill.data.longtail import build_longtail

    data = build_longtail(blob_raw(), imbalance_factor=5, seed=0)
    out = tmp_path_factory.mktemp("std")
    train_experts(data, ExpertConfig(num_experts=2, epochs=4, width=8, depth=2, batch_size=32), out, progress=False)
    return data, out


@pytest.fixture(scope="module")
def std_buffer(tmp_path_factory):
    return standard_buffer(tmp_path_factory)


MTT_TINY = {"syn_steps": 5, "expert_epochs": 2, "max_start_epoch": 2, "lr_img": 100.0, "checkpoint_every": 3}


def test_mtt_iterations_reduce_the_matching_loss(std_buffer):
    data, out = std_buffer
    s = methods.create("mtt", iterations=30, **MTT_TINY).distill(data, 3, experts=out, progress=False)
    history = s.meta["loss_history"]
    assert sum(history[-8:]) / 8 < sum(history[:8]) / 8
    assert s.images.shape == (12, 1, 8, 8) and torch.isfinite(s.images).all() and s.lr is not None


def test_mtt_resume_after_a_crash_gives_the_same_result(std_buffer, tmp_path, monkeypatch):
    import ltdistill.families.trajectory as trajectory

    data, out = std_buffer
    whole = methods.create("mtt", iterations=7, **MTT_TINY).distill(data, 2, experts=out, progress=False)
    monkeypatch.setattr(trajectory, "match_trajectory", crash_after(4, trajectory.match_trajectory))
    with pytest.raises(Crash):  # dies in iteration 5; the checkpoint holds iteration 3
        methods.create("mtt", iterations=7, **MTT_TINY).distill(data, 2, experts=out, progress=False,
                                                                workdir=tmp_path)
    monkeypatch.undo()
    resumed = methods.create("mtt", iterations=7, **MTT_TINY).distill(data, 2, experts=out, progress=False,
                                                                       workdir=tmp_path)
    assert torch.equal(whole.images, resumed.images) and whole.lr == resumed.lr
    assert resumed.meta["loss_history"] == whole.meta["loss_history"]
    with pytest.raises(BadInput, match="other settings"):  # a checkpoint of other settings is refused
        methods.create("mtt", iterations=8, **MTT_TINY).distill(data, 2, experts=out, progress=False,
                                                                workdir=tmp_path)


def test_datm_soft_labels_start_from_experts_and_are_learned(std_buffer):
    data, out = std_buffer
    s = methods.create("datm", iterations=5, threshold=None, current_max_start_epoch=1, min_start_epoch=0,
                       expansion_end_epoch=5, **MTT_TINY).distill(data, 2, experts=out, progress=False)
    assert s.soft and s.labels.shape == (8, 4)
    assert (s.labels.argmax(1) == torch.tensor(s.meta["classes"])).float().mean() >= 0.75


def test_head_only_student_equals_a_masked_full_vector_student():
    """Differentiating w.r.t. the head alone is the same unroll as masking the full gradient (reference code)."""
    flat = tiny_flat_model()
    start = parameters_to_vector(flat.model.parameters()).detach()
    head = flat.mask("classifier.", "cpu")
    target = start + 0.05 * torch.randn_like(start) * head
    images0, labels = torch.randn(6, 1, 8, 8), torch.arange(6) % 4
    images = images0.clone().requires_grad_(True)
    lr = torch.tensor(0.05, requires_grad=True)
    loss = match_trajectory(flat, start, target, images, labels, lr, syn_steps=3, batch_syn=None, dsa=None,
                            generator=torch.Generator().manual_seed(0), trainable=head)
    ref_images = images0.clone().requires_grad_(True)
    w = start.clone().requires_grad_(True)
    for _ in range(3):
        g = torch.autograd.grad(student_loss(flat(w, ref_images), labels), w, create_graph=True)[0]
        w = w - 0.05 * g * head
    ref = ((w - target).square().sum() / (start - target).square().sum())
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-5)
    assert torch.allclose(images.grad, ref_images.grad, rtol=1e-4, atol=1e-7)  # float reordering: ~1e-9 here
    grads = {}
    for mode in ("full_bptt", "tesla_frozen_weights"):  # head-only, one step: the two gradients must agree
        x, alpha = images0.clone().requires_grad_(True), torch.tensor(0.05, requires_grad=True)
        match_trajectory(flat, start, target, x, labels, alpha, syn_steps=1, batch_syn=None, dsa=None,
                         generator=torch.Generator().manual_seed(0), trainable=head, gradient=mode)
        grads[mode] = (x.grad, alpha.grad)
    assert torch.allclose(grads["full_bptt"][0], grads["tesla_frozen_weights"][0], rtol=1e-4, atol=1e-7)
    assert torch.allclose(grads["full_bptt"][1], grads["tesla_frozen_weights"][1], rtol=1e-4)


@pytest.mark.parametrize("mode", ["full_bptt", "tesla_frozen_weights"])
@pytest.mark.parametrize("head_only", [False, True])
def test_frozen_images_leave_the_label_and_lr_gradients_unchanged(mode, head_only):
    """lr_img 0 freezes the pixels (no backward to them); the labels and the lr must get the same gradients."""
    flat, start, target = matching_problem()
    trainable = flat.mask("classifier.", "cpu") if head_only else None
    images0, labels0 = torch.randn(6, 1, 8, 8), torch.randn(6, 4)
    grads = []
    for learn_images in (True, False):
        images = images0.clone().requires_grad_(learn_images)
        labels, lr = labels0.clone().requires_grad_(True), torch.tensor(0.05, requires_grad=True)
        loss = match_trajectory(flat, start, target, images, labels, lr, syn_steps=3, batch_syn=3, dsa=DSA(),
                                generator=torch.Generator().manual_seed(1), gradient=mode, trainable=trainable)
        assert (images.grad is not None) == learn_images
        grads.append((loss, labels.grad, lr.grad))
    (loss_a, labels_a, lr_a), (loss_b, labels_b, lr_b) = grads
    assert loss_a == pytest.approx(loss_b, rel=1e-6) and labels_a.abs().sum() > 0
    assert torch.allclose(labels_a, labels_b, rtol=1e-5, atol=1e-8) and torch.allclose(lr_a, lr_b, rtol=1e-5)


LTDD_TINY = {"n_rep": 3, "n_cls": 3, "t_rep_min": 0, "t_rep": 2, "t_rep_max": 2, "t_cls_max": 1,
             "expert_epochs": 2, "lr_img": 100.0, "checkpoint_every": 3}


def test_ltdd_matches_both_phases_and_initializes_from_decoupled_experts(tiny_buffer):
    data, out, _ = tiny_buffer
    s = methods.create("ltdd", iterations=6, **LTDD_TINY).distill(data, 2, experts=out, progress=False)
    assert s.soft and s.labels.shape == (8, 4) and torch.isfinite(s.images).all()
    assert (s.labels.argmax(1) == torch.tensor(s.meta["classes"])).float().mean() >= 0.75
    assert all(loss is not None and loss > 0 for loss in s.meta["loss_history"])


def test_ltdd_at_lr_img_0_keeps_its_initial_pixels_and_learns_labels(tiny_buffer):
    data, out, _ = tiny_buffer
    fixed = methods.create("ltdd", iterations=0, **LTDD_TINY).distill(data, 2, experts=out, progress=False)
    s = methods.create("ltdd", iterations=4, **{**LTDD_TINY, "lr_img": 0.0, "lr_y": 10.0}).distill(
        data, 2, experts=out, progress=False)
    assert torch.equal(s.images, fixed.images) and not torch.allclose(s.labels, fixed.labels)
    assert s.lr != pytest.approx(fixed.lr)
    from ltdistill.families.trajectory import pixels_and_lr
    from ltdistill.methods.ltdd import LTDDConfig

    assert not pixels_and_lr(fixed.images, LTDDConfig(lr_img=0.0), "cpu")["images"].tensor.requires_grad
    assert pixels_and_lr(fixed.images, LTDDConfig(lr_img=1.0), "cpu")["images"].tensor.requires_grad


@pytest.mark.parametrize("ablation", [{"dam": False}, {"expert_decoupling": False}, {"label_init": "onehot"},
                                      {"label_init": "biased"}, {"gradient": "full_bptt"},
                                      {"dam_weights": "mean_one"}])
def test_ltdd_ablations_run(tiny_buffer, ablation):
    data, out, _ = tiny_buffer
    s = methods.create("ltdd", iterations=2, **{**LTDD_TINY, **ablation}).distill(data, 2, experts=out,
                                                                                 progress=False)
    assert torch.isfinite(s.images).all() and s.meta["config"][next(iter(ablation))] == next(iter(ablation.values()))


def test_dam_weights_keep_the_class_ratios_and_set_the_scale():
    from ltdistill.families.trajectory import student_loss
    from ltdistill.methods.ltdd import dam_class_weights

    counts = [400, 100, 40, 4]
    freq, mean_one = dam_class_weights(counts, "frequency"), dam_class_weights(counts, "mean_one")
    assert freq.sum() == pytest.approx(1.0) and mean_one.mean() == pytest.approx(1.0)
    assert torch.allclose(mean_one / mean_one[0], freq / freq[0]) and freq[0] / freq[3] == pytest.approx(100)
    logits, classes = torch.randn(8, 4), torch.arange(4).repeat(2)  # a balanced batch
    assert student_loss(logits, classes, mean_one) == pytest.approx(4 * student_loss(logits, classes, freq).item())
    with pytest.raises(BadInput, match="dam_weights"):
        dam_class_weights(counts, "uniform")


def test_ltdd_refuses_a_standard_buffer(std_buffer):
    data, out = std_buffer
    with pytest.raises(BadInput, match="decoupled"):
        methods.create("ltdd", iterations=1, **LTDD_TINY).distill(data, 2, experts=out, progress=False)


def test_shards_fill_one_buffer_identical_to_a_single_process(tiny_buffer, tmp_path):
    data, _, _ = tiny_buffer
    config = ExpertConfig(num_experts=3, epochs=2, width=8, depth=2, batch_size=32)
    train_experts(data, config, tmp_path / "single", progress=False)
    for k in (1, 0):  # shards may run in any order, even as separate processes
        train_experts(data, config, tmp_path / "sharded", shard=(k, 2), progress=False)
    single, sharded = ExpertBuffer.open(tmp_path / "single"), ExpertBuffer.open(tmp_path / "sharded")
    assert sharded.finished("standard") == [0, 1, 2]
    for i in range(3):
        assert torch.equal(single.load("standard", i), sharded.load("standard", i))
    with pytest.raises(BadInput, match="shard"):
        train_experts(data, config, tmp_path / "bad", shard=(2, 2), progress=False)


def test_the_class_aware_sampler_draws_max_count_times_classes_in_runs_of_four_from_one_class():
    from ltdistill.train import class_aware_order

    labels = torch.tensor([0] * 9 + [1] * 3 + [2] * 1)
    order = class_aware_order(labels, 4, torch.Generator().manual_seed(0))
    assert len(order) == 9 * 3  # max class count x C (class_aware_sampler.py num_samples)
    runs = labels[order].tolist()
    blocks = [runs[i:i + 4] for i in range(0, len(runs) - len(runs) % 4, 4)]
    assert all(len(set(b)) == 1 for b in blocks)  # every run of 4 comes from one class
    counts = torch.bincount(labels[order], minlength=3).tolist()
    assert max(counts) - min(counts) <= 4  # classes equally often, up to the last run
    assert set(order[labels[order] == 2].tolist()) == {12}  # the one tail image, cycled


def test_classifier_experts_can_use_the_reference_class_aware_epochs(tmp_path):
    from conftest import blob_raw
    from ltdistill.data.longtail import build_longtail

    data = build_longtail(blob_raw(), imbalance_factor=5, seed=0)
    config = ExpertConfig(num_experts=1, epochs=1, width=4, depth=2, decoupled=True, cls_epochs=1, batch_size=32,
                          cls_sampler="class_aware", maxnorm=None)
    buffer = train_experts(data, config, tmp_path / "aware", progress=False)
    assert buffer.index["config"]["cls_sampler"] == "class_aware" and buffer.finished("cls")
    plain = train_experts(data, ExpertConfig(**{**config.__dict__, "cls_sampler": "draws"}), tmp_path / "draws",
                          progress=False)
    assert "cls_sampler" not in plain.index["config"]  # buffers made before the option still match
    assert not torch.equal(buffer.load("cls", 0), plain.load("cls", 0))


def test_a_buffer_made_before_the_classifier_defaults_changed_resumes_if_standard_and_is_refused_if_decoupled(
        tmp_path):
    """A standard buffer trains no classifier expert, so the classifier fields of its index (MaxNorm 0.1 and no
    sampler, as indexes held them before both followed LTDD's buffer path) do not stop a rerun from resuming it; a
    decoupled buffer made under them was trained otherwise and is refused."""
    from ltdistill.experts.train import comparable_index

    for decoupled in (False, True):
        today = {"decoupled": decoupled, "config": {**dataclasses.asdict(ExpertConfig(decoupled=decoupled))}}
        earlier = {**today, "config": {k: v for k, v in today["config"].items() if k != "cls_sampler"} | {
            "maxnorm": 0.1}}
        folder = tmp_path / f"decoupled-{decoupled}"
        ExpertBuffer.create_or_open(folder, earlier, comparable=comparable_index)
        if decoupled:
            with pytest.raises(BadInput, match="other settings"):
                ExpertBuffer.create_or_open(folder, today, comparable=comparable_index)
        else:
            ExpertBuffer.create_or_open(folder, today, comparable=comparable_index)
    # a field missing from an index means its earlier value: a decoupled buffer of the "draws" sampler made before
    # the field existed is not taken for a class-aware one, and is resumed by a run that asks for draws
    draws = {"decoupled": True, "config": dataclasses.asdict(ExpertConfig(decoupled=True, cls_sampler="draws"))}
    legacy = {**draws, "config": {k: v for k, v in draws["config"].items() if k != "cls_sampler"}}
    ExpertBuffer.create_or_open(tmp_path / "legacy", legacy, comparable=comparable_index)
    ExpertBuffer.create_or_open(tmp_path / "legacy", draws, comparable=comparable_index)
