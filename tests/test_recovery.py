"""The uni-level family (SRe2L, unilevel): BN recalibration, group-wise BN matching, multi-round initialization,
relabeling, and the artifact's teacher."""

import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ltdistill import methods
from ltdistill.errors import BadInput, Diverged
from ltdistill.evaluate import EvalConfig, evaluate_synthetic
from ltdistill.families.recovery import GroupBNLoss, RecoveryConfig, recalibrate_bn, recover, remedy_loss
from ltdistill.families.statmatch import recover_matched
from ltdistill.methods.unilevel import multi_round_select, random_resized_crops
from ltdistill.synthetic import SyntheticSet

TINY = {"width": 8, "depth": 2, "epochs": 60, "iterations": 30}
EVAL = EvalConfig(model_options=(("width", 8), ("depth", 2)), runs=1, epochs=40)


def two_class_images():
    """Class 0: 90 images of value 0 +- 1; class 1: 10 images of value 10 +- 1 (one channel, 2x2)."""
    torch.manual_seed(0)
    images = torch.cat([torch.randn(90, 1, 2, 2), 10 + torch.randn(10, 1, 2, 2)])
    return images, torch.cat([torch.zeros(90), torch.ones(10)]).long()


def test_class_balanced_recalibration_weights_every_class_equally():
    images, labels = two_class_images()
    model = nn.Sequential(nn.BatchNorm2d(1))
    recalibrate_bn(model, images, labels, 2, mode="instance", batch_size=7)
    assert model[0].running_mean.item() == pytest.approx(images.mean().item(), abs=1e-4)
    assert model[0].running_var.item() == pytest.approx(images.var(unbiased=False).item(), rel=1e-4)
    recalibrate_bn(model, images, labels, 2, mode="class_balanced", batch_size=7)
    means = torch.stack([images[labels == c].mean() for c in (0, 1)])
    within = torch.stack([images[labels == c].var(unbiased=False) for c in (0, 1)]).mean()
    assert model[0].running_mean.item() == pytest.approx(means.mean().item(), abs=1e-4)  # about 5, not about 1
    assert model[0].running_var.item() == pytest.approx((within + ((means - means.mean()) ** 2).mean()).item(),
                                                        rel=1e-4)
    with pytest.raises(BadInput, match="recalibration mode"):
        recalibrate_bn(model, images, labels, 2, mode="ema")


def test_group_bn_loss_is_zero_when_each_group_matches_the_running_statistics():
    bn = nn.BatchNorm2d(2).eval()
    x = torch.randn(6, 2, 3, 3)
    groups = torch.tensor([0, 0, 0, 1, 1, 1])
    bn.running_mean.copy_(x[:3].mean((0, 2, 3)))
    bn.running_var.copy_(x[:3].var((0, 2, 3), unbiased=False))
    loss = GroupBNLoss(nn.Sequential(bn), groups, first_multiplier=1.0)
    bn(x[:3].repeat(2, 1, 1, 1))  # both groups hold the same images: both match exactly
    assert loss.pop().item() == pytest.approx(0.0, abs=1e-5)
    bn(x)
    assert loss.pop().item() > 0.01


def test_recovery_lowers_the_bn_loss_and_keeps_pixels_in_range(blob_data):
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 64, 4))
    model.train()
    with torch.no_grad():
        for _ in range(20):
            model(blob_data.train_x)  # running statistics of real data
    history = []
    low, high = torch.tensor([-1.0]), torch.tensor([2.0])
    start = torch.randn(8, 1, 8, 8) * 3
    out = recover(model, start, torch.arange(4).repeat(2), torch.arange(2).repeat_interleave(4),
                  RecoveryConfig(iterations=100, lr_img=0.2, r_bn=1.0), pixel_range=(low, high),
                  generator=torch.Generator().manual_seed(0), progress=False, history=history)
    assert sum(history[-5:]) < 0.5 * sum(history[:5])
    assert out.min() >= -1.0 and out.max() <= 2.0 and out.shape == start.shape


def test_recovery_skips_a_non_finite_step():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2 * 16, 2)).eval()
    calls = []

    def poison_second_call(module, inputs, output):
        calls.append(1)
        return output * float("nan") if len(calls) == 2 else output

    model[3].register_forward_hook(poison_second_call)
    counters, history = {}, []
    out = recover(model, torch.randn(2, 1, 4, 4), torch.arange(2), torch.zeros(2, dtype=torch.long),
                  RecoveryConfig(iterations=5, lr_img=0.1), pixel_range=(torch.tensor([-3.0]), torch.tensor([3.0])),
                  generator=torch.Generator().manual_seed(0), progress=False, history=history, counters=counters)
    assert counters["skipped_nonfinite"] == 1 and len(history) == 4 and torch.isfinite(out).all()


class NoMatching:
    """A stand-in for EDC's StatisticMatcher that adds nothing to the loss."""
    labels = None

    def pop(self, first_multiplier):
        return torch.zeros(())


@pytest.mark.parametrize("family", ["recover", "recover_matched"])
def test_a_recovery_that_skips_more_than_a_fifth_of_its_steps_stops_there_as_diverged(family):
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2 * 16, 2)).eval()
    calls = []

    def poison(module, inputs, output):
        calls.append(1)
        return output * float("nan")

    model[3].register_forward_hook(poison)
    images, classes, bounds = torch.randn(2, 1, 4, 4), torch.arange(2), (torch.tensor([-3.0]), torch.tensor([3.0]))
    with pytest.raises(Diverged, match=r"skipped 3 of its 10 image steps .*lower lr_img \(now 0.1\)"):
        if family == "recover":
            recover(model, images, classes, torch.zeros(2, dtype=torch.long), RecoveryConfig(iterations=10, lr_img=0.1),
                    pixel_range=bounds, generator=torch.Generator().manual_seed(0), progress=False)
        else:
            recover_matched([model], [NoMatching()], images, classes, batch_size=1, iterations=5, lr=0.1, r_loss=1.0,
                            first_multiplier=1.0, pixel_range=bounds, generator=torch.Generator().manual_seed(0),
                            augment=False)
    assert len(calls) == 3  # stopped as soon as the share was out of reach, not after all 10 steps


def test_remedies_reduce_to_cross_entropy_where_they_should():
    logits, y = torch.randn(16, 3), torch.randint(3, (16,))
    assert remedy_loss("none", [5, 5, 5], 10) is None
    balanced = remedy_loss("balanced_softmax", [5, 5, 5], 10)
    assert balanced(logits, y, 0).item() == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-5)
    curriculum = remedy_loss("debias_curriculum", [100, 10, 1], 10)
    assert curriculum(logits, y, 0).item() == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-5)
    w = torch.tensor([0.01, 0.1, 1.0])
    weighted = F.cross_entropy(logits, y, weight=w / w.mean())
    assert curriculum(logits, y, 10).item() == pytest.approx(weighted.item(), rel=1e-5)
    with pytest.raises(BadInput, match="remedy must be"):
        remedy_loss("focal", [1, 2], 3)


def test_view_zero_of_the_crops_is_the_image_itself():
    x = torch.randn(3, 1, 8, 8)
    views = random_resized_crops(x, 4, 0.5, torch.Generator().manual_seed(0))
    assert views.shape == (3, 4, 1, 8, 8)
    assert torch.allclose(views[:, 0], x, atol=1e-5)


def test_multi_round_selection_covers_a_tail_class_and_spreads_a_head_class():
    k = 3
    # tail: 2 images, ipc 5 -> 5 distinct views, at most 3 from one image
    views = torch.arange(2 * k).float().view(2, k, 1)
    scores, feats = torch.randn(2, k), F.normalize(torch.randn(2, k, 4), dim=2)
    picked, distinct = multi_round_select(views, scores, feats, 5, 0.5)
    assert distinct == 5 and len(set(picked.flatten().tolist())) == 5
    # head: 20 images, ipc 5 -> one view each from 5 different images, each image's most confident view
    views = torch.arange(20 * k).float().view(20, k, 1)
    scores, feats = torch.randn(20, k), F.normalize(torch.randn(20, k, 4), dim=2)
    picked, distinct = multi_round_select(views, scores, feats, 5, 0.5)
    sources = {int(v) // k for v in picked.flatten()}
    assert distinct == 5 and len(sources) == 5
    assert all(int(v) % k == int(scores[int(v) // k].argmax()) for v in picked.flatten())
    # the least confident offers are never candidates in the first round
    assert not sources & set(scores.max(1).values.argsort()[:5].tolist())


@pytest.mark.parametrize("name", ["sre2l", "unilevel"])
def test_recovery_methods_write_a_relabeling_teacher_and_beat_chance(name, blob_data, tmp_path):
    s = methods.create(name, **TINY).distill(blob_data, 3, seed=0, progress=False)
    assert s.images.shape == (12, 1, 8, 8) and s.soft and s.hard_labels.tolist() == sum([[c] * 3 for c in range(4)], [])
    assert len(s.meta["iteration_seconds"]) == TINY["iterations"] and s.meta["models_seconds"] > 0  # cost records
    s.save(tmp_path / "set")
    loaded = SyntheticSet.load(tmp_path / "set")
    assert loaded.teacher is not None and set(loaded.teacher) == set(s.teacher)
    result = evaluate_synthetic(loaded, blob_data, EVAL, progress=False)
    assert result["label_regime"].startswith("relabel") and result["balanced_acc"]["mean"] > 0.4  # chance: 0.25
    hard = evaluate_synthetic(loaded, blob_data, EvalConfig(**{**EVAL.__dict__, "labels": "hard"}), progress=False)
    assert hard["label_regime"] == "hard"


def test_sre2l_from_real_images_records_how_many_are_distinct(blob_data, tmp_path):
    """IPC 16 over classes of 60/35/20/12 images: the 12-image class starts from its real images repeated."""
    quick = {**TINY, "iterations": 0, "model_cache": str(tmp_path)}  # one squeezed model serves both runs
    s = methods.create("sre2l", init="real", **quick).distill(blob_data, 16, seed=0, progress=False)
    assert s.meta["distinct_per_class"] == [16, 16, 16, 12]
    noise = methods.create("sre2l", **quick).distill(blob_data, 2, seed=0, progress=False)
    assert noise.meta["distinct_per_class"] is None


def test_unilevel_switches_are_checked_and_its_models_resume(blob_data, tmp_path):
    with pytest.raises(BadInput, match="unilevel.init must be one of 'multi_round', 'real', 'noise'"):
        methods.create("unilevel", init="zeros", **TINY)  # refused when it is built, before any run
    first = methods.create("unilevel", **TINY).distill(blob_data, 2, seed=3, progress=False, workdir=tmp_path)
    assert (tmp_path / ".checkpoint" / "observer.safetensors").exists()
    again = methods.create("unilevel", **TINY).distill(blob_data, 2, seed=3, progress=False, workdir=tmp_path)
    assert torch.equal(first.images, again.images) and torch.equal(first.labels, again.labels)


def test_a_shared_model_cache_serves_other_runs_without_retraining(blob_data, tmp_path, monkeypatch):
    import ltdistill.families.recovery as recovery

    cache = str(tmp_path / "models")
    first = methods.create("unilevel", model_cache=cache, **TINY).distill(blob_data, 2, seed=3, progress=False)
    assert len(list((tmp_path / "models").glob("*.safetensors"))) == 2  # observer and teacher
    monkeypatch.setattr(recovery, "train_classifier", lambda *a, **k: pytest.fail("retrained"))
    # another IPC, and sre2l, whose squeezed model is the unilevel observer without a remedy: no new training
    other = methods.create("unilevel", model_cache=cache, **TINY).distill(blob_data, 3, seed=3, progress=False)
    assert torch.equal(other.teacher["classifier.weight"], first.teacher["classifier.weight"])
    monkeypatch.undo()
    methods.create("unilevel", model_cache=cache, remedy="none", **TINY).distill(blob_data, 2, seed=3,
                                                                                  progress=False)
    monkeypatch.setattr(recovery, "train_classifier", lambda *a, **k: pytest.fail("retrained"))
    methods.create("sre2l", model_cache=cache, **TINY).distill(blob_data, 2, seed=3, progress=False)
    # other training settings (epochs) are never served from the cache
    with pytest.raises(pytest.fail.Exception, match="retrained"):
        methods.create("unilevel", model_cache=cache, **{**TINY, "epochs": 5}).distill(blob_data, 2, seed=3,
                                                                                         progress=False)


def test_runs_side_by_side_asking_for_one_shared_model_train_it_once(tmp_path):
    """Two runs (bench cells side by side) ask the model_cache for the same model at once: one trains it while the
    other waits on the lock, then loads what the first wrote."""
    import threading

    from ltdistill.families.recovery import cached_classifier

    trained, entered = [], threading.Barrier(2)

    def train(checkpoint):
        trained.append(threading.current_thread().name)
        time.sleep(0.3)  # long enough that the other run asks while this one trains
        return nn.Linear(3, 2)

    nets = {}

    def run(name):
        entered.wait()
        nets[name] = cached_classifier(None, "observer", {"model": "linear"}, lambda: nn.Linear(3, 2), train,
                                       shared=str(tmp_path / "models"))

    threads = [threading.Thread(target=run, args=(n,), name=n) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(trained) == 1
    assert torch.equal(nets["a"].weight, nets["b"].weight)


def test_every_recovery_evaluation_reports_the_accuracy_of_the_models_that_label_it(blob_data):
    """The ceiling relabeling puts on a set is in its meta (observer and teacher as trained) and in its evaluation
    (the teacher as evaluated), on the balanced test set."""
    s = methods.create("unilevel", **TINY).distill(blob_data, 2, seed=0, progress=False)
    assert set(s.meta["models_accuracy"]) == {"observer", "teacher"}
    teacher = s.meta["models_accuracy"]["teacher"]
    assert len(teacher["per_class_acc"]) == 4 and 0 <= teacher["balanced_acc"] <= 1
    result = evaluate_synthetic(s, blob_data, EVAL, progress=False)
    assert result["models_accuracy"]["teacher (as evaluated)"]["balanced_acc"] == pytest.approx(
        teacher["balanced_acc"])  # the stored teacher is the trained one
    assert "observer" in result["models_accuracy"]


def test_the_debias_curriculum_weighted_term_divides_by_the_weight_sum_or_as_glmc_by_the_batch():
    from ltdistill.families.recovery import remedy_loss

    counts, epochs = [100, 30, 10, 3, 1], 10
    y = torch.tensor([0] * 20 + [1] * 6 + [2] * 2 + [3])
    logits = torch.randn(len(y), 5, generator=torch.Generator().manual_seed(0))
    w = torch.tensor(counts, dtype=torch.float).pow(-1)
    w = w / w.mean()  # mean-one class weights (GLMC)
    per_sample = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    at_end = epochs  # a = 1: the weighted term alone
    glmc = remedy_loss("debias_curriculum", counts, epochs, scaling="batch")(logits, y, at_end)
    assert torch.allclose(glmc, (w[y] * per_sample).sum() / len(y))
    ours = remedy_loss("debias_curriculum", counts, epochs)(logits, y, at_end)
    assert torch.allclose(ours, (w[y] * per_sample).sum() / w[y].sum()) and ours > 5 * glmc  # head-heavy batch
    assert methods.create("unilevel", remedy_scaling="batch").config.remedy_scaling == "batch"


@pytest.mark.parametrize("remedy", ["none", "glmc"])
def test_an_observer_training_stopped_part_way_resumes_at_its_last_saved_epoch(blob_data, tmp_path, monkeypatch,
                                                                               remedy):
    """A wide observer trains for hours on a CPU: stopped after epoch 3 of 6, the rerun restores epoch 3 from the
    partial file beside the kept model, and ends with the weights of an unbroken training; the partial file goes.
    GLMC's heads and its draws (second views, partner batches, lambda, boxes) resume too."""
    from ltdistill.evaluate.runstore import PartialRun
    from ltdistill.families import recovery

    cfg = methods.create("sre2l", **{**TINY, "epochs": 6}).config
    kwargs = {"model": cfg.model, "remedy": remedy, "seed": 0, "role": "squeezed", "device": "cpu",
              "progress": False}
    unbroken = recovery.trained_classifier(blob_data, cfg, workdir=None, **kwargs)

    class Stopped(Exception):
        pass

    save, restore, restored = PartialRun.save, PartialRun.restore, []

    def save_then_stop(self, epochs_done, *args):
        self.every_s = 0.0  # save at every epoch's end
        save(self, epochs_done, *args)
        if epochs_done == 3:
            raise Stopped

    monkeypatch.setattr(PartialRun, "save", save_then_stop)
    with pytest.raises(Stopped):
        recovery.trained_classifier(blob_data, cfg, workdir=tmp_path, **kwargs)
    assert len(list((tmp_path / ".checkpoint").glob("squeezed.*.partial.pt"))) == 1
    monkeypatch.setattr(PartialRun, "save", save)
    monkeypatch.setattr(PartialRun, "restore", lambda self, *a: restored.append(restore(self, *a)) or restored[-1])
    resumed = recovery.trained_classifier(blob_data, cfg, workdir=tmp_path, **kwargs)
    assert restored == [3]
    for name, value in unbroken.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], value), name
    assert not list((tmp_path / ".checkpoint").glob("*.partial.pt"))
    assert (tmp_path / ".checkpoint" / "squeezed.safetensors").exists()


def test_the_glmc_remedy_trains_its_heads_with_the_model_and_hands_back_the_model_predicting_with_fc_cb(blob_data,
                                                                                                      monkeypatch):
    """Remedy "glmc" (families/glmc.py): GLMC's heads train beside the model under the trainer's optimizer, the
    model handed back is an ordinary one of its kind (no heads left on it) whose classifier is the trained fc_cb, as
    GLMC predicts with fc_cb; the same seed gives the same model, and it differs from the debias curriculum's."""
    from ltdistill.families import glmc, recovery

    cfg = methods.create("unilevel", **{**TINY, "epochs": 4}).config
    heads, finish, losses, initial = [], glmc.GLMCObjective.finish, [], []
    call, init = glmc.GLMCObjective.__call__, glmc.GLMCObjective.__init__

    def keep_initial(self, model, *args):
        init(self, model, *args)
        initial.append({k: v.clone() for k, v in model.glmc_heads.state_dict().items()})

    def keep_heads(self):
        heads.append({k: v.clone() for k, v in self.model.glmc_heads.state_dict().items()})
        finish(self)

    monkeypatch.setattr(glmc.GLMCObjective, "finish", keep_heads)
    monkeypatch.setattr(glmc.GLMCObjective, "__init__", keep_initial)
    monkeypatch.setattr(glmc.GLMCObjective, "__call__", lambda self, *a: losses.append(call(self, *a)) or losses[-1])
    kwargs = {"model": cfg.model, "seed": 0, "role": "observer", "device": "cpu", "progress": False, "workdir": None}
    trained = recovery.trained_classifier(blob_data, cfg, remedy="glmc", **kwargs)
    assert not hasattr(trained, "glmc_heads") and len(losses) == 4 * 1  # 127 images: one batch an epoch
    plain = recovery.trained_classifier(blob_data, cfg, remedy="debias_curriculum", **kwargs)
    assert set(trained.state_dict()) == set(plain.state_dict())
    assert torch.equal(trained.classifier.weight, heads[0]["fc_cb.weight"])
    assert torch.equal(trained.classifier.bias, heads[0]["fc_cb.bias"])
    again = recovery.trained_classifier(blob_data, cfg, remedy="glmc", **kwargs)
    assert all(torch.equal(again.state_dict()[k], v) for k, v in trained.state_dict().items())
    assert torch.equal(heads[1]["projection_head.weight"], heads[0]["projection_head.weight"])
    assert all(not torch.equal(heads[0][k], initial[0][k]) for k in initial[0])  # every head trained
    assert not torch.equal(trained.classifier.weight, plain.classifier.weight)
    with pytest.raises(ValueError, match="objective"):
        from ltdistill.train import TrainConfig, train_model
        train_model(plain, blob_data.train_x, blob_data.train_y, TrainConfig(epochs=1, gsam_rho=0.01),
                    generator=torch.Generator(), objective=lambda x, idx, epoch: x.sum())
