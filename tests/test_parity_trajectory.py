"""Reference parity of trajectory matching (MTT, DATM, LTDD) with the official code (issue 41).

tests/parity/trajectory/official_*.json hold numbers that the official repositories' own code produced on the
tiny fixed inputs in inputs.safetensors / inputs.json (3 classes x 2 images of 3x8x8, ConvNet width 8 depth 2 with
instance norm, 3-epoch expert trajectories); tests/parity/trajectory/README.md says which file, commit and lines
made each number, how they were called, and which mutations of ltdistill these tests were checked to catch.
Here the same inputs go through ltdistill's own functions, in float64 where the official code allows it, and must
agree to RTOL relative to the largest entry. The official random draws (minibatch indices, DSA parameters, sample
order) are recorded there and replayed here, so the computation is compared, not the random streams.
Where ltdistill knowingly differs, the test states the official behaviour and is a strict xfail."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import ltdistill.experts.train as expert_train
import ltdistill.methods.datm as datm_module
import ltdistill.methods.ltdd as ltdd_module
import ltdistill.methods.mtt as mtt_module
import ltdistill.train as trainer
from conftest import parity_close
from ltdistill import models
from ltdistill.data.augment import DSA
from ltdistill.engine.loop import run_synthesis
from ltdistill.experts.student import FlatModel
from ltdistill.experts.train import ExpertConfig
from ltdistill.families import trajectory as T
from ltdistill.families.init import expert_soft_labels
from ltdistill.methods.datm import DATM, DATMConfig, window_upper
from ltdistill.methods.ltdd import LTDD, LTDDConfig, dam_class_weights
from ltdistill.methods.ltdd import upper as ltdd_upper
from ltdistill.methods.mtt import MTT

HERE = Path(__file__).parent / "parity" / "trajectory"
RTOL = 1e-6
INPUTS = load_file(str(HERE / "inputs.safetensors"))
SETUP = json.loads((HERE / "inputs.json").read_text())


pytestmark = pytest.mark.usefixtures("float64_default")


def official(name: str) -> dict:
    return json.loads((HERE / f"official_{name}.json").read_text())


def close(actual, expected, rtol: float = RTOL, what: str = "") -> None:
    parity_close(actual, expected, rtol, what)


def flat_model() -> FlatModel:
    model = models.create("convnet", channels=SETUP["channels"], num_classes=SETUP["num_classes"],
                          im_size=tuple(SETUP["im_size"]), width=SETUP["width"], depth=SETUP["depth"]).double()
    return FlatModel(model)


def replay_batches(monkeypatch, batches: list[list[int]]) -> list[torch.Tensor]:
    """match_trajectory draws exactly the official minibatches, in order; returns the queue (empty when all used)."""
    queue = [torch.tensor(b) for b in batches]

    class Replay:
        def __init__(self, n, batch_size, generator):
            pass

        def next(self):
            return queue.pop(0)

    monkeypatch.setattr(T, "Batches", Replay)
    return queue


class ReplayDSA:
    """DSA whose parameters for each call are drawn by DSA.sample from the torch RNG state the official
    DiffAugment call started from (DSA.sample draws in the official order: test_dsa_draw_and_apply)."""

    def __init__(self, calls: list[dict], strategy: str):
        self.real = DSA(strategy=strategy)
        self.states = [torch.from_numpy(np.frombuffer(base64.b64decode(c["rng_state"]), dtype=np.uint8).copy())
                       for c in calls]
        self.sizes = [c["n"] for c in calls]

    def sample(self, n, shape, generator=None, device="cpu"):
        assert n == self.sizes.pop(0)
        g = torch.Generator()
        g.set_state(self.states.pop(0))
        return self.real.sample(n, shape, g, device)

    def apply(self, x, p):
        return self.real.apply(x, p)

    def __call__(self, x, generator=None):  # training: fresh parameters for every batch
        return self.apply(x, self.sample(len(x), tuple(x.shape[1:]), generator, x.device))


class FakeSampler:
    """A trajectory sampler over one fixed trajectory; records the windows it was asked for."""

    def __init__(self, trajectory: torch.Tensor):
        self.trajectory, self.calls = trajectory, []

    def sample(self, low, high, span):
        self.calls.append((low, high, span))
        return self.trajectory[low], self.trajectory[low + span]

    def finals(self, limit=None):
        return [self.trajectory[-1]]


def fake_matching(monkeypatch, module, samplers: dict, data) -> None:
    """Replace a method module's Matching: fixed trajectories, the test's model, no files, no checkpoints."""

    class FakeMatching(T.Matching):
        def __init__(self, experts, data_, seed, device, kind="standard", *, compile=False, precision="float32"):
            self.buffer = SimpleNamespace(index={"decoupled": "rep" in samplers}, directory="(fake)")
            self.data, self.device, self.precision = data, device, precision
            self.generator = torch.Generator().manual_seed(seed)
            self.flat_model = flat_model()

        def sampler(self, kind, name, high, span):
            return samplers[kind]

        def run(self, method, state, step, *, ipc, seed, workdir, progress, make_set=None):
            return run_synthesis(method, state, step, settings={}, workdir=None, progress=False)

    monkeypatch.setattr(module, "Matching", FakeMatching)


def fixed_init(monkeypatch, module, soft: bool) -> None:
    """The initial synthetic set (and soft labels) of a method: the fixed inputs (their own tests are below)."""
    images = lambda *a, **k: (INPUTS["images"].clone(), INPUTS["hard_labels"], [2, 2, 2])  # noqa: E731
    if soft:
        monkeypatch.setattr(module, "correct_per_class", images)
        monkeypatch.setattr(module, "expert_soft_labels", lambda *a, **k: (INPUTS["soft_logits"].clone(), 0))
    else:
        monkeypatch.setattr(module, "real_per_class", images)


def run_method(method, data=None):
    return method._distill(data, SETUP["ipc"], experts=None, seed=0, progress=False, device="cpu", workdir=None)


# --------------------------------------------------------------------------------------------------- layout
def test_parameter_layout_matches_official_convnet():
    """FlatModel's order and shapes are the official ReparamModule flattening of ConvNet(3, C, 8, 2, 'relu',
    'instancenorm', 'avgpooling', (8, 8)): features.<4i+j> (conv j=0, GroupNorm j=1) <-> blocks.<i>.<j>."""
    ref = official("mtt")
    fm = flat_model()
    assert [list(s) for s in fm.shapes] == ref["param_shapes"] == SETUP["param_shapes"]
    expect = []
    for name in ref["param_names"]:
        if name.startswith("features."):
            _, k, leaf = name.split(".")
            name = f"blocks.{int(k) // 4}.{int(k) % 4}.{leaf}"
        expect.append(name)
    assert fm.names == expect


# ------------------------------------------------------------------------------------------------------ MTT
def test_mtt_loss_and_gradients(monkeypatch):
    """distill.py:292-393: full-BPTT matching loss and d/d(images, syn_lr), each iteration from the official
    state (hard labels, 3 student steps on minibatches of 4 of the 6 images)."""
    ref = official("mtt")
    s = ref["settings"]
    traj = INPUTS["traj_standard"]
    images, lr = INPUTS["images"].clone(), torch.tensor(s["lr_teacher"])
    for it, rec in enumerate(ref["iterations"]):
        replay_batches(monkeypatch, rec["batches"])
        x, alpha = images.clone().requires_grad_(True), lr.clone().requires_grad_(True)
        loss = T.match_trajectory(flat_model(), traj[0], traj[s["expert_epochs"]], x, INPUTS["hard_labels"], alpha,
                                  syn_steps=s["syn_steps"], batch_syn=s["batch_syn"], dsa=None,
                                  generator=torch.Generator())
        close(loss, rec["loss"], what=f"loss it{it}")
        close(x.grad, rec["grad_images"], what=f"d/dimages it{it}")
        close(alpha.grad, rec["grad_lr"], what=f"d/dlr it{it}")
        images, lr = torch.tensor(rec["images_after"]), torch.tensor(rec["lr_after"])


def test_mtt_method_two_iterations(monkeypatch):
    """MTT._distill over two iterations (distill.py:292-396): window, student settings, and the updates of the
    images (SGD lr_img, momentum 0.5) and the lr (SGD lr_lr, momentum 0.5)."""
    ref = official("mtt")
    s = ref["settings"]
    queue = replay_batches(monkeypatch, [b for rec in ref["iterations"] for b in rec["batches"]])
    sampler = FakeSampler(INPUTS["traj_standard"])
    fake_matching(monkeypatch, mtt_module, {"standard": sampler}, data=None)
    fixed_init(monkeypatch, mtt_module, soft=False)
    out = run_method(MTT(iterations=s["iterations"], syn_steps=s["syn_steps"], expert_epochs=s["expert_epochs"],
                         max_start_epoch=s["max_start_epoch"], lr_img=s["lr_img"], lr_lr=s["lr_lr"],
                         lr_teacher=s["lr_teacher"], batch_syn=s["batch_syn"], dsa=False))
    assert not queue and sampler.calls == [(0, s["max_start_epoch"], s["expert_epochs"])] * s["iterations"]
    close(out.meta["loss_history"], [r["loss"] for r in ref["iterations"]], what="losses")
    close(out.images, ref["iterations"][-1]["images_after"], what="images after 2 iterations")
    close(out.lr, ref["iterations"][-1]["lr_after"], what="lr after 2 iterations")


@pytest.mark.xfail(strict=True, reason="minibatch order: ltdistill's Batches.next takes the first chunk of each "
                   "permutation (families/trajectory.py Batches), the references the last (indices_chunks.pop(): "
                   "distill.py:348, DATM.py:514, DAM-ED_tesla.py:718); when batch_syn does not divide the set, the "
                   "short chunk comes first there and last here, so an unroll sees other batch sizes")
def test_minibatch_sizes_follow_official_order():
    s = official("mtt")["settings"]
    batches = T.Batches(len(INPUTS["images"]), s["batch_syn"], torch.Generator().manual_seed(0))
    sizes = [len(batches.next()) for _ in range(s["syn_steps"])]
    assert sizes == [len(b) for b in official("mtt")["iterations"][0]["batches"]]


# ----------------------------------------------------------------------------------------------------- LTDD
def ltdd_phase(rec: dict, phase: str, monkeypatch, ref: dict, dsa=None):
    """One LTDD phase through match_trajectory with the options LTDD._distill gives it; (loss, x, y, alpha)."""
    s = ref["settings"]
    fm = flat_model()
    head = fm.mask("classifier.", "cpu")
    replay_batches(monkeypatch, rec["phases"][phase]["batches"])
    x = torch.tensor(rec["before"]["images"]).requires_grad_(True)
    y = torch.tensor(rec["before"]["labels"]).requires_grad_(True)
    alpha = torch.tensor(rec["before"]["lr"]).requires_grad_(True)
    if phase == "rep":
        traj, steps = INPUTS["traj_rep"], s["syn_steps"]
        options = {"class_weights": dam_class_weights(s["counts"], "frequency"), "matched": 1 - head}
    else:
        traj, steps = INPUTS["traj_cls"], s["syn_steps_second"]
        options = {"trainable": head}
    loss = T.match_trajectory(fm, traj[0], traj[s["expert_epochs"]], x, y, alpha, syn_steps=steps,
                              batch_syn=s["batch_syn"], dsa=dsa, generator=torch.Generator(),
                              gradient="tesla_frozen_weights", **options)
    return loss, x, y, alpha


def test_ltdd_dam_class_weights():
    """DAM-ED_tesla.py:435-447 (weighted_loss, first_weight_factor 0): w_k = n_k / N in float32, bit for bit."""
    ref = official("ltdd")
    w = dam_class_weights(ref["settings"]["counts"], "frequency")
    assert w.dtype == torch.float32 and w.tolist() == ref["first_weights"]


@pytest.mark.parametrize("phase", ["rep", "cls"])
@pytest.mark.parametrize("it", [0, 1])
def test_ltdd_phase_loss_and_gradients(monkeypatch, phase, it):
    """DAM-ED_tesla.py:622-851, one phase: loss and the constant-memory gradients of images, soft-label logits and
    lr. rep: DAM-weighted soft CE, all parameters move, distance over the backbone [:classifier_start];
    cls: only the head moves (grad[:classifier_start] = 0), plain soft CE, distance over the full vector."""
    ref = official("ltdd")
    rec = ref["iterations"][it]
    loss, x, y, alpha = ltdd_phase(rec, phase, monkeypatch, ref)
    want = rec["phases"][phase]
    close(loss, want["loss"], what=f"{phase} loss")
    close(x.grad, want["grad_images"], what=f"{phase} d/dimages")
    close(y.grad, want["grad_labels"], what=f"{phase} d/dlabels")
    close(alpha.grad, want["grad_lr"], what=f"{phase} d/dlr")


def test_ltdd_method_two_iterations(monkeypatch):
    """LTDD._distill over two iterations (DAM-ED_tesla.py:616-859): both phases with their options, the sum
    lambda_rep * grad L_rep + lambda_cls * grad L_cls, one SGD step of images (lr_img, momentum 0.5), label logits
    (lr_y, Momentum_y 0.9) and lr (lr_lr, 0.5); the loss record is the lambda-weighted sum of the phase losses."""
    ref = official("ltdd")
    s = ref["settings"]
    queue = replay_batches(monkeypatch, [b for rec in ref["iterations"] for p in ("rep", "cls")
                                         for b in rec["phases"][p]["batches"]])
    samplers = {"rep": FakeSampler(INPUTS["traj_rep"]), "cls": FakeSampler(INPUTS["traj_cls"])}
    data = SimpleNamespace(counts=s["counts"], num_classes=SETUP["num_classes"])
    fake_matching(monkeypatch, ltdd_module, samplers, data)
    fixed_init(monkeypatch, ltdd_module, soft=True)
    assert not s["Sequential_Generation"]  # so the windows are [min, max) and the initial bounds T are unused
    method = LTDD(iterations=s["iterations"], n_rep=s["syn_steps"], n_cls=s["syn_steps_second"],
                  t_rep_min=s["min_start_epoch"], t_rep=s["max_start_epoch"], t_rep_max=s["max_start_epoch"],
                  t_cls_min=s["second_min_start_epoch"], t_cls=s["second_max_start_epoch"],
                  t_cls_max=s["second_max_start_epoch"], lambda_rep=s["first_stage_lambda"],
                  lambda_cls=s["second_stage_lambda"], expert_epochs=s["expert_epochs"],
                  sequential_generation=s["Sequential_Generation"], lr_img=s["lr_img"], lr_lr=s["lr_lr"],
                  lr_teacher=s["lr_teacher"], lr_y=s["lr_y"], momentum_y=s["Momentum_y"], batch_syn=s["batch_syn"],
                  dsa=False)
    assert method.config.gradient == "tesla_frozen_weights" and method.config.dam_weights == "frequency"
    out = run_method(method, data)
    assert not queue
    assert samplers["rep"].calls == [(0, s["max_start_epoch"], s["expert_epochs"])] * s["iterations"]
    assert samplers["cls"].calls == [(0, s["second_max_start_epoch"], s["expert_epochs"])] * s["iterations"]
    close(out.meta["loss_history"], [r["first_grand_loss"] + r["second_grand_loss"] for r in ref["iterations"]],
          what="lambda-weighted losses")
    last = ref["iterations"][-1]
    close(out.images, last["images_after"], what="images after 2 iterations")
    close(out.labels, last["labels_after"], what="label logits after 2 iterations")
    close(out.lr, last["lr_after"], what="lr after 2 iterations")


def test_ltdd_start_window():
    """DAM-ED_tesla.py:680-684: the Sequential-Generation upper bound of the start epoch."""
    ref = official("ltdd")["window"]
    w = ref["settings"]
    cfg = LTDDConfig(sequential_generation=True, expansion_end_epoch=w["expansion_end_epoch"])
    got = [[it, ltdd_upper(w["current_max_start_epoch"], w["max_start_epoch"], it, cfg)]
           for it, _ in ref["upper_bounds"]]
    assert got == ref["upper_bounds"]


# ----------------------------------------------------------------------------------------------------- DATM
@pytest.mark.parametrize("it", [0, 1, 2])
def test_datm_loss_and_gradients(monkeypatch, it):
    """DATM.py:452-554: full-BPTT loss and d/d(images, soft-label logits, lr), each from the official state."""
    ref = official("datm")
    s, rec = ref["settings"], ref["iterations"][it]
    replay_batches(monkeypatch, rec["batches"])
    x = torch.tensor(rec["before"]["images"]).requires_grad_(True)
    y = torch.tensor(rec["before"]["labels"]).requires_grad_(True)
    alpha = torch.tensor(rec["before"]["lr"]).requires_grad_(True)
    traj = INPUTS["traj_standard"]
    loss = T.match_trajectory(flat_model(), traj[0], traj[s["expert_epochs"]], x, y, alpha,
                              syn_steps=s["syn_steps"], batch_syn=s["batch_syn"], dsa=None,
                              generator=torch.Generator())
    close(loss, rec["loss"], what="loss")
    close(x.grad, rec["grad_images"], what="d/dimages")
    close(y.grad, rec["grad_labels"], what="d/dlabels")
    close(alpha.grad, rec["grad_lr"], what="d/dlr")


def test_datm_method_threshold_skip(monkeypatch):
    """DATM._distill over three iterations at threshold 0.95: the official skips iteration 0 (loss 0.9530: no step
    of images, labels or lr) and steps on 1 and 2 (DATM.py:556-561); final tensors and the loss record agree."""
    ref = official("datm")
    s = ref["settings"]
    assert [r["stepped"] for r in ref["iterations"]] == [False, True, True]
    queue = replay_batches(monkeypatch, [b for rec in ref["iterations"] for b in rec["batches"]])
    fake_matching(monkeypatch, datm_module, {"standard": FakeSampler(INPUTS["traj_standard"])}, data=None)
    fixed_init(monkeypatch, datm_module, soft=True)
    out = run_method(DATM(iterations=s["iterations"], syn_steps=s["syn_steps"], expert_epochs=s["expert_epochs"],
                          max_start_epoch=s["max_start_epoch"], min_start_epoch=s["min_start_epoch"],
                          current_max_start_epoch=s["current_max_start_epoch"], sequential_generation=False,
                          lr_img=s["lr_img"], lr_lr=s["lr_lr"], lr_teacher=s["lr_teacher"], lr_y=s["lr_y"],
                          momentum_y=s["Momentum_y"], batch_syn=s["batch_syn"], threshold=s["threshold"], dsa=False))
    assert not queue
    assert out.meta["skipped_threshold"] == 1 and out.meta["loss_history"][0] is None
    close(out.meta["loss_history"][1:], [r["loss"] for r in ref["iterations"][1:]], what="losses")
    last = ref["iterations"][-1]
    close(out.images, last["images_after"], what="images after 3 iterations")
    close(out.labels, last["labels_after"], what="label logits after 3 iterations")
    close(out.lr, last["lr_after"], what="lr after 3 iterations")


def test_datm_start_window():
    """DATM.py:485-489: the upper bound of the start epoch grows from current_max to max over
    expansion_end_epoch iterations (CIFAR-10 IPC10 settings 10 / 20 / 1000)."""
    ref = official("datm")["window"]
    w = ref["settings"]
    cfg = DATMConfig(sequential_generation=True, current_max_start_epoch=w["current_max_start_epoch"],
                     max_start_epoch=w["max_start_epoch"], expansion_end_epoch=w["expansion_end_epoch"])
    assert [[it, window_upper(cfg, it)] for it, _ in ref["upper_bounds"]] == ref["upper_bounds"]


# ------------------------------------------------------------------------------------------------------ DSA
ROTATE_MIRRORED = pytest.mark.xfail(strict=True, reason="for the same uniform draw, ltdistill rotates by the "
                                    "opposite angle: augment.py DSA.sample builds [[cos, sin], [-sin, cos]], the "
                                    "official rand_rotate [[cos, sin(-a)], [sin, cos]] (LTDD utils/utils_baseline.py:"
                                    "1307-1318, MTT utils.py:568-579); a is uniform in [-15, 15] degrees, so the "
                                    "distribution of augmentations is the same")


@pytest.mark.parametrize("op", ["color", "crop", "cutout", "flip", "scale",
                                pytest.param("rotate", marks=ROTATE_MIRRORED)])
def test_dsa_draw_and_apply(op):
    """Official DiffAugment ('S' mode, ParamDiffAug defaults) at a torch seed whose op draw picks `op`, against
    DSA.sample from a generator with that seed, then DSA.apply (float32: the official scale/rotate build their
    matrices in float32)."""
    torch.set_default_dtype(torch.float32)
    case = official("dsa")["cases"][op]
    dsa = DSA()
    params = dsa.sample(4, (3, 8, 8), torch.Generator().manual_seed(case["seed"]))
    assert params["op"] == op
    close(dsa.apply(INPUTS["dsa_images"], params), case["output"], what=op)


@pytest.mark.parametrize("op", ["scale", "rotate"])
def test_dsa_apply_with_official_matrix(op):
    """DSA.apply of the affine ops with the matrix the official rand_scale / rand_rotate gave F.affine_grid."""
    torch.set_default_dtype(torch.float32)
    case = official("dsa")["cases"][op]
    out = DSA().apply(INPUTS["dsa_images"], {"op": op, "theta": torch.tensor(case["theta"])})
    close(out, case["output"], what=op)


def test_mtt_with_dsa(monkeypatch):
    """distill.py:292-393 with DSA on (strategy color_crop_cutout_flip): BPTT through the augmentation."""
    ref = official("mtt_dsa")
    s, rec = ref["settings"], ref["iterations"][0]
    replay_batches(monkeypatch, rec["batches"])
    dsa = ReplayDSA(ref["dsa_calls"], s["dsa_strategy"])
    traj = INPUTS["traj_standard"]
    x = INPUTS["images"].clone().requires_grad_(True)
    alpha = torch.tensor(s["lr_teacher"]).requires_grad_(True)
    loss = T.match_trajectory(flat_model(), traj[0], traj[s["expert_epochs"]], x, INPUTS["hard_labels"], alpha,
                              syn_steps=s["syn_steps"], batch_syn=s["batch_syn"], dsa=dsa,
                              generator=torch.Generator())
    assert not dsa.states
    close(loss, rec["loss"], what="loss")
    close(x.grad, rec["grad_images"], what="d/dimages")
    close(alpha.grad, rec["grad_lr"], what="d/dlr")


@pytest.mark.parametrize("phase", ["rep", "cls"])
def test_ltdd_with_dsa(monkeypatch, phase):
    """DAM-ED_tesla.py:622-851 with DSA on: the constant-memory gradient reaches the images before augmentation
    through the same augmentation (x_list / original_x_list there, dsa.apply on images[idx] here)."""
    ref = official("ltdd_dsa")
    s, rec = ref["settings"], ref["iterations"][0]
    calls = ref["dsa_calls"][:s["syn_steps"]] if phase == "rep" else ref["dsa_calls"][s["syn_steps"]:]
    dsa = ReplayDSA(calls, s["dsa_strategy"])
    loss, x, y, alpha = ltdd_phase(rec, phase, monkeypatch, ref, dsa=dsa)
    assert not dsa.states
    want = rec["phases"][phase]
    close(loss, want["loss"], what=f"{phase} loss")
    close(x.grad, want["grad_images"], what=f"{phase} d/dimages")
    close(y.grad, want["grad_labels"], what=f"{phase} d/dlabels")
    close(alpha.grad, want["grad_lr"], what=f"{phase} d/dlr")


# ------------------------------------------------------------------------------------------- soft-label init
@pytest.mark.parametrize("repo", ["ltdd", "datm"])
def test_soft_label_init(repo):
    """DAM-ED_tesla.py:360-399 / DATM.py:270-307: an image's initial label logits are the mean logits of the label
    experts (final parameters) that classify it correctly; here every image has one or more such experts."""
    ref = official("labels")["cases"]["all"]
    experts = [INPUTS["label_experts"][i] for i in ref["experts"]]
    logits, missing = expert_soft_labels(INPUTS["images"], INPUTS["hard_labels"], flat_model(), experts)
    assert missing == 0
    close(logits, ref[repo], what=f"{repo} initial label logits")


@pytest.mark.xfail(strict=True, reason="deliberate (families/init.py docstring): an image no label expert gets right "
                   "keeps its class with the mean margin; LTDD leaves a zero vector, i.e. a uniform label "
                   "(DAM-ED_tesla.py:396-398, 1e-4 guard), DATM divides 0/0 into NaN (DATM.py:306)")
def test_soft_label_init_without_a_correct_expert():
    ref = official("labels")["cases"]["missing"]
    experts = [INPUTS["label_experts"][i] for i in ref["experts"]]
    logits, missing = expert_soft_labels(INPUTS["images"], INPUTS["hard_labels"], flat_model(), experts)
    assert missing == 2
    close(logits, ref["ltdd"], what="ltdd initial label logits")


# --------------------------------------------------------------------------------------------------- experts
def train_expert(monkeypatch, tmp_path, run: dict, config: ExpertConfig, init: torch.Tensor, rep=None):
    """experts.train.train_experts on the 15 real images (float32, as the official epoch casts images to float),
    replaying the official sample order and DSA draws, the network started at `init`. With `rep` (decoupled) the
    representation trajectory is in the buffer already, so only the classifier expert trains."""
    torch.set_default_dtype(torch.float32)
    order = torch.tensor(run["order"])
    monkeypatch.setattr(trainer, "epoch_order", lambda labels, config, generator: order.clone())
    replay = ReplayDSA(run["dsa_calls"], run["settings"]["dsa_strategy"])
    monkeypatch.setattr(trainer, "DSA", lambda: replay)

    def make_model(config, data, device):
        model = models.create("convnet", channels=3, num_classes=SETUP["num_classes"], im_size=(8, 8),
                              width=config.width, depth=config.depth)
        torch.nn.utils.vector_to_parameters(init.clone(), model.parameters())
        return model

    monkeypatch.setattr(expert_train, "make_model", make_model)
    data = SimpleNamespace(train_x=INPUTS["real_x"].float(), train_y=INPUTS["real_y"], channels=3,
                           num_classes=SETUP["num_classes"], im_size=(8, 8), zca_eps=None,
                           describe=lambda: {"dataset": "tiny parity set"})
    out = tmp_path / "experts"
    if rep is not None:
        index = expert_train.buffer_index(config, data, make_model(config, data, "cpu"))
        expert_train.ExpertBuffer.create_or_open(out, index).save("rep", 0, rep.float().contiguous())
    buffer = expert_train.train_experts(data, config, out, progress=False)
    assert not replay.states
    return buffer


def test_standard_expert_one_epoch(monkeypatch, tmp_path):
    """mtt-distillation buffer.py:55-92 with utils.epoch: one epoch of SGD (lr 0.01, momentum 0, no weight decay,
    batch 4, DSA on every batch) from the same init, in the official shuffled order and DSA draws."""
    run = official("expert")
    s = run["settings"]
    init = INPUTS["traj_standard"][0].float()
    config = ExpertConfig(num_experts=1, epochs=s["train_epochs"], lr=s["lr_teacher"], batch_size=s["batch_train"],
                          weight_decay=s["l2"], width=SETUP["width"], depth=SETUP["depth"], augment=True)
    trajectory = train_expert(monkeypatch, tmp_path, run, config, init).load("standard", 0)
    assert torch.equal(trajectory[0], init)
    close(trajectory[1], run["params_after"], what="expert parameters after one epoch")


def classifier_expert(monkeypatch, tmp_path, run: dict, maxnorm, **options) -> torch.Tensor:
    s = run["settings"]
    rep = INPUTS["traj_rep"]
    config = ExpertConfig(num_experts=1, epochs=len(rep) - 1, decoupled=True, cls_epochs=s["train_epochs"],
                          cls_lr=s["lr_teacher"], batch_size=s["batch_train"], maxnorm=maxnorm,
                          width=SETUP["width"], depth=SETUP["depth"], augment=True, **options)
    trajectory = train_expert(monkeypatch, tmp_path, run, config, rep[0].float(), rep=rep).load("cls", 0)
    assert torch.equal(trajectory[0], INPUTS["traj_cls"][0].float())
    return trajectory[1]


def test_classifier_expert_one_epoch(monkeypatch, tmp_path):
    """LTDD buffer_FTD.py:178-262 (second_stage_expert): the representation expert's final parameters, all but
    classifier.weight/bias frozen, class-aware batches, lr 0.01, momentum 0, no weight decay, DSA, GSAM at rho 0
    (where it is plain SGD), against ltdistill's classifier expert with MaxNorm off, in the official order."""
    run = official("cls_expert")["runs"]["rho0"]
    close(classifier_expert(monkeypatch, tmp_path, run, maxnorm=None, gsam_rho=0.0), run["params_after"],
          what="classifier expert after one epoch")


def test_classifier_expert_one_epoch_released_gsam(monkeypatch, tmp_path):
    """LTDD's released buffer configs train experts with GSAM, rho 0.01, alpha 0.3 (buffer_FTD.py:226-235,
    utils_gsam.py:520-537): the default decoupled experts give the same classifier expert; plain SGD does not."""
    run = official("cls_expert")["runs"]["released"]
    s = run["settings"]
    assert (ExpertConfig(decoupled=True).gsam_rho, ExpertConfig().gsam_alpha) == (s["rho_max"], s["alpha"])
    close(classifier_expert(monkeypatch, tmp_path, run, maxnorm=None), run["params_after"],
          what="the default classifier expert after one epoch (GSAM rho 0.01)")
    with pytest.raises(AssertionError):
        close(classifier_expert(monkeypatch, tmp_path / "sgd", run, maxnorm=None, gsam_rho=0.0), run["params_after"],
              what="classifier expert after one epoch, plain SGD")
    with pytest.raises(AssertionError):  # alpha matters: GSAM without the decomposition is SAM
        close(classifier_expert(monkeypatch, tmp_path / "sam", run, maxnorm=None, gsam_rho=s["rho_max"],
                                gsam_alpha=0.0), run["params_after"], what="classifier expert after one epoch, SAM")


def test_classifier_expert_one_epoch_default_maxnorm(monkeypatch, tmp_path):
    """The default classifier expert applies no MaxNorm, as the official GSAM path (buffer_FTD.py:246-248 ->
    utils_gsam.py epoch) never calls MaxNorm_via_PGD; the paper's MaxNorm (maxnorm=0.1) moves the head away."""
    run = official("cls_expert")["runs"]["rho0"]
    close(classifier_expert(monkeypatch, tmp_path, run, maxnorm=ExpertConfig().maxnorm, gsam_rho=0.0),
          run["params_after"], what="classifier expert after one epoch (ltdistill's default MaxNorm)")
    with pytest.raises(AssertionError):
        close(classifier_expert(monkeypatch, tmp_path / "paper", run, maxnorm=0.1, gsam_rho=0.0), run["params_after"],
              what="classifier expert under the paper's MaxNorm")


def test_classifier_expert_epoch_length():
    """The default classifier-expert epoch is LTDD's ClassAwareSampler's: max class count x C samples
    (class_aware_sampler.py:74), not N class-balanced draws."""
    run = official("cls_expert")["runs"]["rho0"]
    cls_config = expert_train.classifier_config(ExpertConfig())
    order = trainer.epoch_order(INPUTS["real_y"], cls_config, torch.Generator().manual_seed(0))
    assert len(order) == len(run["order"])
    draws = expert_train.classifier_config(ExpertConfig(cls_sampler="draws"))
    assert len(trainer.epoch_order(INPUTS["real_y"], draws, torch.Generator().manual_seed(0))) != len(run["order"])
