"""Reference parity of SRe2L recovery/relabeling, DC, DM, uni-level's remedy (GLMC's loss) and DD-Ranking's scores
with the official code (issue 42).

tests/parity/recovery/official_*.json hold numbers that the official repositories' own code produced on the tiny
fixed inputs in inputs.safetensors / inputs.json (3 classes, 2 synthetic images per class, 3x8x8 images, real counts
4/3/2, ConvNet width 8 depth 2: instance norm for DC/DM, batch norm for SRe2L); tests/parity/recovery/README.md says
which file, commit and lines made each number, how they were called, and which mutations of ltdistill these tests
were checked to catch. Here the same inputs go through ltdistill's own functions, in float64 where the official
code allows it, and must agree to RTOL relative to the largest entry. The official random draws (jitter offsets,
real-image picks) are recorded there and replayed here, so the computation is compared, not the random streams.
Where ltdistill knowingly differs, the test states the official behaviour and is a strict xfail."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

import ltdistill.families.recovery as recovery
from conftest import parity_close
from ltdistill import methods, models
from ltdistill.bench.ranking import ddranking
from ltdistill.engine.loop import Learnable, SynthesisState, optimize
from ltdistill.evaluate.protocol import load_teacher
from ltdistill.families.randomnet import Context
from ltdistill.methods.dc import DC, gradient_distance, row_cosine
from ltdistill.methods.dm import DM
from ltdistill.train import relabel_loss

HERE = Path(__file__).parent / "parity" / "recovery"
RTOL = 1e-6
RTOL_FLOAT32 = 2e-5  # DC with inner network training: the official epoch() casts images to float32
INPUTS = load_file(str(HERE / "inputs.safetensors"))
SETUP = json.loads((HERE / "inputs.json").read_text())
C, IPC, CH, IM = SETUP["num_classes"], SETUP["ipc"], SETUP["channels"], tuple(SETUP["im_size"])


pytestmark = pytest.mark.usefixtures("float64_default")


def official(name: str) -> dict:
    return json.loads((HERE / f"official_{name}.json").read_text())


def close(actual, expected, rtol: float = RTOL, what: str = "") -> None:
    parity_close(actual, expected, rtol, what)


def network(name: str, prefix: str, dtype=torch.float64) -> models.Classifier:
    """ltdistill's ConvNet (width 8, depth 2) holding the weights the official ConvNet was loaded with."""
    net = models.create(name, channels=CH, num_classes=C, im_size=IM, width=SETUP["width"], depth=SETUP["depth"])
    net.load_state_dict({k: INPUTS[f"{prefix}.{k}"] for k in net.state_dict()})
    return net.to(dtype)


def class_major(per_group: list) -> torch.Tensor:
    """Official recovery batches (group g = image g of every class) -> ltdistill's class-major rows."""
    groups = torch.tensor(per_group)  # (IPC, C, ...)
    return groups.transpose(0, 1).reshape(C * IPC, *groups.shape[2:])


# ------------------------------------------------------------------------------------------- (a) SRe2L recovery

def test_group_bn_loss_is_the_sum_of_the_official_bnfeaturehook_loss_of_every_recovery_batch():
    model = network("convnet_bn", "bn").eval()
    _, groups = recovery.class_major_layout(C, IPC)
    loss = recovery.GroupBNLoss(model, groups, first_multiplier=SETUP["recovery"]["first_bn_multiplier"])
    with torch.no_grad():
        model(INPUTS["recover_start"])
    close(loss.pop(), official("recovery")["bn_loss"]["total"], what="sum_l w_l (||mu - mu*|| + ||var - var*||)")
    loss.remove()


class ReplayJitter:
    """Stands in for `torch` inside recovery.py: randint returns the official jitter offsets in order."""

    def __init__(self, offsets: list[list[int]], jitter: int):
        self.queue, self.jitter = [list(o) for o in offsets], jitter

    def __getattr__(self, name):
        return getattr(torch, name)

    def randint(self, low, high, size, generator=None):
        offsets = self.queue.pop(0)
        assert tuple(size) == (2,) and all(low <= o < high for o in offsets), (low, high, offsets)
        assert (low, high) == (0, self.jitter + 1), "the official offsets are drawn from [0, jitter]"
        return torch.tensor(offsets)


@pytest.mark.parametrize("iterations", SETUP["recovery"]["iterations"])
def test_recovery_equals_the_official_recover_cifar_loop(monkeypatch, iterations):
    """recover() with the CIFAR script's settings (Adam (0.5, 0.9), cosine lr from 0.25, r_bn 0.01, first BN x10,
    roll jitter from [0, j], no flip: the defaults; clip to [0, 1] in CIFAR-normalized space) equals IPC separate
    official batches."""
    rec, ref = SETUP["recovery"], official("recovery")[f"run_{iterations}"]
    replay = ReplayJitter(ref["offsets"], rec["jitter"])
    monkeypatch.setattr(recovery, "torch", replay)
    cfg = recovery.RecoveryConfig(iterations=iterations, lr_img=rec["lr"], r_bn=rec["r_bn"],
                                  first_bn_multiplier=rec["first_bn_multiplier"], jitter=rec["jitter"])
    classes, groups = recovery.class_major_layout(C, IPC)
    history: list[float] = []
    images = recovery.recover(network("convnet_bn", "bn"), INPUTS["recover_start"], classes, groups, cfg,
                              pixel_range=recovery.pixel_range(SimpleNamespace(mean=rec["cifar_mean"],
                                                                               std=rec["cifar_std"])),
                              generator=torch.Generator().manual_seed(0), progress=False, history=history)
    assert replay.queue == []
    close(history, ref["loss_total"], what="loss per iteration (CE + r_bn * BN term, summed over batches)")
    close(images, class_major(ref["images_per_group"]), what="recovered images")


# ------------------------------------------------------------------------------------------- (b) SRe2L relabel

def official_kl_batchmean_relation(student: torch.Tensor, teacher: torch.Tensor, temperature: float):
    """ltdistill's relabel_loss expressed as the official loss: loss / T^2 - mean teacher entropy (train.py:45-50)."""
    target = F.softmax(teacher / temperature, dim=1)
    entropy = -(target * target.log()).sum(1).mean()
    return relabel_loss(student, teacher, temperature) / temperature**2 - entropy


def test_relabel_loss_as_the_official_recipe_calls_it_equals_the_official_kl_batchmean():
    """evaluate --recipe sre2l trains with train.kl_relabel_loss at T = 30 (relabel_cifar.py:107-108,139-142)."""
    from ltdistill.evaluate.protocol import SRE2L_RECIPE
    from ltdistill.train import kl_relabel_loss

    ref = official("relabel")
    assert SRE2L_RECIPE["temperature"] == ref["temperature"] and SRE2L_RECIPE["relabel"] == "kl"
    student = INPUTS["student_logits"].clone().requires_grad_(True)
    loss = kl_relabel_loss(student, INPUTS["teacher_logits"], ref["temperature"])
    close(loss, ref["logits"]["loss"], what="relabel loss at T=30")
    grad, = torch.autograd.grad(loss, student)
    close(grad, ref["logits"]["grad_student_logits"], what="d relabel loss / d student")


def test_relabel_loss_is_t_squared_times_the_official_kl_plus_the_teacher_entropy():
    """The relation train.py's docstring states: same gradient up to T^2, value up to the teacher's entropy."""
    ref, temperature = official("relabel"), official("relabel")["temperature"]
    student = INPUTS["student_logits"].clone().requires_grad_(True)
    close(official_kl_batchmean_relation(student, INPUTS["teacher_logits"], temperature), ref["logits"]["loss"],
          what="relabel_loss / T^2 - H(teacher)")
    grad, = torch.autograd.grad(relabel_loss(student, INPUTS["teacher_logits"], temperature), student)
    close(grad / temperature**2, ref["logits"]["grad_student_logits"], what="d relabel_loss / d student / T^2")
    nets = ref["networks"]  # the script's statements on the networks' logits (student, train-mode teacher)
    close(official_kl_batchmean_relation(torch.tensor(nets["student_logits"]),
                                         torch.tensor(nets["teacher_logits_train_mode"]), temperature),
          nets["loss"], what="relabel_loss / T^2 - H(teacher), network logits")


def test_relabel_networks_reproduce_the_official_student_and_train_mode_teacher_logits():
    ref = official("relabel")["networks"]
    x = INPUTS["relabel_x"]
    close(network("convnet", "in").train()(x), ref["student_logits"], what="student logits")
    close(network("convnet_bn", "bn").train()(x), ref["teacher_logits_train_mode"], what="teacher, train mode")
    close(network("convnet_bn", "bn").eval()(x), ref["teacher_logits_eval_mode"], what="teacher, eval mode")


def evaluation_teacher() -> torch.nn.Module:
    options = {"width": SETUP["width"], "depth": SETUP["depth"], "stem": "official"}
    synthetic = SimpleNamespace(meta={"teacher": {"model": "convnet_bn", "options": options, "temperature": 30}},
                                teacher={k: v for k, v in network("convnet_bn", "bn").state_dict().items()})
    teacher, temperature = load_teacher(synthetic, SimpleNamespace(channels=CH, num_classes=C, im_size=IM), "cpu")
    assert temperature == 30
    return teacher


def test_the_evaluation_teacher_equals_the_official_network_in_eval_mode():
    close(evaluation_teacher()(INPUTS["relabel_x"]), official("relabel")["networks"]["teacher_logits_eval_mode"],
          what="load_teacher logits")


@pytest.mark.xfail(strict=True, reason="SRe2L relabel_cifar.py:85-92,138 never puts model_teacher in eval(): its soft "
                   "labels use the batch's own BN statistics (and update the running ones); ltdistill "
                   "evaluate/protocol.py:189 load_teacher returns the teacher in eval mode")
def test_the_evaluation_teacher_labels_a_batch_as_the_official_relabel_script_does():
    close(evaluation_teacher()(INPUTS["relabel_x"]), official("relabel")["networks"]["teacher_logits_train_mode"],
          what="teacher logits on the relabel batch")


def test_under_the_sre2l_recipe_the_teacher_labels_a_batch_as_the_official_relabel_script_does():
    from ltdistill.train import TrainConfig, train_model

    teacher = evaluation_teacher()
    student = network("convnet", "in")
    x = INPUTS["relabel_x"]
    config = TrainConfig(epochs=1, lr=1e-12, batch_size=len(x), augment=False, optimizer="adamw", relabel="kl",
                         temperature=30.0, teacher_batch_stats=True)  # the recipe's teacher mode (SRE2L_RECIPE)
    train_model(student, x, torch.zeros(len(x), dtype=torch.long), config, generator=torch.Generator(),
                teacher=teacher)
    assert teacher.training
    fresh = evaluation_teacher().train()
    close(fresh(x), official("relabel")["networks"]["teacher_logits_train_mode"], what="train-mode teacher logits")


# ------------------------------------------------------------------------------------------- (c) DC, (d) DM

def real_data(dtype=torch.float64) -> SimpleNamespace:
    y = INPUTS["real_y"]
    return SimpleNamespace(num_classes=C, channels=CH, im_size=IM, train_x=INPUTS["real_x"].to(dtype),
                           indices_of=lambda c: (y == c).nonzero().flatten())


def one_iteration(method, net, dtype=torch.float64, real=None) -> SynthesisState:
    """One iteration of ltdistill's own synthesis loop with the given network as the iteration's random network."""
    generator = torch.Generator().manual_seed(0)
    state = SynthesisState({"images": Learnable(INPUTS["syn_x"].to(dtype), method.config.lr_img, 0.5)}, generator)
    ctx = Context(method, real_data(dtype), IPC, torch.arange(C).repeat_interleave(IPC), generator, "cpu")
    ctx.network = lambda: net
    if real is not None:
        ctx.real = real
    optimize(state, 1, method.make_step(ctx, state), None, progress=False)
    return state


def ltdistill_dc_distances(cosine_denominator: str = "norms_plus_eps") -> torch.Tensor:
    net = network("convnet", "in")
    params = list(net.parameters())
    x, y, syn = INPUTS["real_x"], INPUTS["real_y"], INPUTS["syn_x"]
    distances = []
    for c in range(C):
        g_real = torch.autograd.grad(F.cross_entropy(net(x[y == c]), y[y == c]), params)
        g_syn = torch.autograd.grad(F.cross_entropy(net(syn[c * IPC:(c + 1) * IPC]), torch.full((IPC,), c)), params)
        distances.append(gradient_distance(g_syn, g_real, cosine_denominator))
    return torch.stack(distances)


def test_dc_gradient_distance_of_every_class_equals_the_official_match_loss():
    close(ltdistill_dc_distances(), official("dc")["per_class_distance"], what="per-class DC distance ('ours')")


def test_dc_clamped_cosine_option_is_torchs_cosine_and_leaves_the_official_match_loss():
    """`cosine_denominator = "clamped"` (ltdistill's earlier default) is F.cosine_similarity(eps=1e-6); where rows
    have small norm products, as the second conv layer's do on these inputs (tests/parity/recovery/README.md), its
    per-class distance moves off DatasetCondensation utils.py:233, which adds 1e-6 to the product."""
    clamped = ltdistill_dc_distances("clamped")
    a, b = torch.randn(5, 7, dtype=torch.float64), torch.randn(5, 7, dtype=torch.float64)
    close(row_cosine(a, b, "clamped"), F.cosine_similarity(a, b, dim=1, eps=1e-6), what="clamped cosine")
    with pytest.raises(AssertionError):
        close(clamped, official("dc")["per_class_distance"], what="per-class DC distance, clamped cosine")


def test_dc_iteration_equals_the_official_outer_loop():
    """A DC iteration: labels, gradients, the layer-wise sum over classes, the image step (SGD lr_img, momentum
    0.5) through ltdistill's own loop."""
    ref = official("dc")["one_outer"]
    dc = SETUP["dc"]
    method = DC(dsa=False, outer_loop=1, inner_loop=1, lr_img=dc["lr_img"], batch_real=dc["batch_real"])
    state = one_iteration(method, network("convnet", "in"))
    close(state.history, [ref["loss"]], what="sum over classes of the DC distance")
    close(state["images"].grad, ref["image_grad"], what="image gradient")
    close(state["images"], ref["images_after"], what="images after the SGD step")
    clamped = one_iteration(DC(dsa=False, outer_loop=1, inner_loop=1, lr_img=dc["lr_img"], batch_real=dc["batch_real"],
                               cosine_denominator="clamped"), network("convnet", "in"))
    with pytest.raises(AssertionError):
        close(clamped.history, [ref["loss"]], what="sum over classes of the DC distance, clamped cosine")


def test_dc_iteration_with_inner_training_equals_the_official_outer_loop():
    """DatasetCondensation main.py:150 trains the inner network with SGD(net.parameters(), lr=lr_net), no
    momentum: DC's default net_momentum; 0.5 (the default before) leaves the official outer loop."""
    torch.set_default_dtype(torch.float32)
    ref, dc = official("dc")["two_outer"], SETUP["dc"]
    two = dc["two_outer"]
    settings = dict(dsa=False, outer_loop=two["outer_loop"], inner_loop=two["inner_loop"], lr_img=dc["lr_img"],
                    lr_net=dc["lr_net"], batch_real=dc["batch_real"], batch_train=dc["batch_train"])
    state = one_iteration(DC(**settings), network("convnet", "in", torch.float32), torch.float32)
    close(state.history, [ref["loss_avg_sum"] / two["outer_loop"]], RTOL_FLOAT32, what="mean DC distance")
    close(state["images"].grad, ref["image_grad_last"], RTOL_FLOAT32, what="image gradient of the last outer loop")
    close(state["images"], ref["images_after"], RTOL_FLOAT32, what="images after the iteration")
    earlier = one_iteration(DC(**settings, net_momentum=0.5), network("convnet", "in", torch.float32), torch.float32)
    with pytest.raises(AssertionError):
        close(earlier["images"], ref["images_after"], RTOL_FLOAT32, what="images after the iteration, momentum 0.5")


def test_dm_iteration_equals_the_official_embedding_mean_loss():
    ref = official("dm")
    method = DM(dsa=False, lr_img=SETUP["dm"]["lr_img"], batch_real=SETUP["dm"]["batch_real"])
    state = one_iteration(method, network("convnet", "in"))
    close(state.history, [sum(ref["per_class_loss"])], what="sum over classes of the per-class DM losses")
    close(state.history, [ref["convnet"]["loss"]], what="DM loss")
    close(state["images"].grad, ref["convnet"]["image_grad"], what="image gradient (rows of class c: class c's term)")
    close(state["images"], ref["convnet"]["images_after"], what="images after the SGD step")


def test_dm_iteration_with_a_batchnorm_network_equals_the_official_convnetbn_branch():
    """main_DM.py:165-187 embeds the real (and the synthetic) images of all classes in one batch for a BatchNorm
    network, so BN's statistics span the classes; ltdistill's DM does the same for such a network."""
    ref = official("dm")["convnet_bn"]
    picks = [torch.tensor(p) for p in ref["real_indices_per_class"]]
    method = DM(dsa=False, model="convnet_bn", lr_img=SETUP["dm"]["lr_img"], batch_real=SETUP["dm"]["bn_batch_real"])
    state = one_iteration(method, network("convnet_bn", "bn").train(),
                          real=lambda c, n: INPUTS["real_x"][picks[c][:n]])
    close(state.history, [ref["loss"]], what="DM loss")
    close(state["images"].grad, ref["image_grad"], what="image gradient")


# ------------------------------------------------------------------------------- (e) uni-level's remedy (GLMC)

def test_the_debias_curriculum_is_glmcs_balance_and_rebalance_loss_on_one_view():
    """Uni-level's remedy `debias_curriculum` with `remedy_scaling="batch"` (its default) against GLMC's own
    Trainer.update_weight and the loss lines of Trainer.train (Trainer.py:42-45, 77-120, with alpha as line 49 sets
    it), run with the class-reweighted loader's batch set to the batch itself, so that GLMC_mixed's mixup and cutmix
    leave both views as they are: GLMC's loss is then the one-view loss counted twice (its two views), at every
    epoch of the curriculum, and its class weights are the n_c^-q weights at mean one that the remedy uses. GLMC's
    consistency term and second head are not in the remedy (methods/unilevel.py), so contrast_weight was 0 there."""
    glmc = official("glmc")
    inputs = glmc["inputs"]
    logits, labels = torch.tensor(inputs["logits"]), torch.tensor(inputs["labels"])
    loss = recovery.remedy_loss("debias_curriculum", inputs["counts"], inputs["epochs"], q=inputs["label_weighting"],
                                scaling="batch")
    for row in glmc["losses"]:
        assert row["mixed_views_equal_the_batch"]
        close(2 * loss(logits, labels, row["epoch"]), row["loss"], RTOL_FLOAT32, f"GLMC's loss at epoch {row['epoch']}")
    # at the curriculum's end the loss of one image of class c is w_c CE: the weights themselves
    one = [int(torch.nonzero(labels == c)[0]) for c in range(len(inputs["counts"]))]
    weights = [loss(logits[i:i + 1], labels[i:i + 1], inputs["epochs"])
               / F.cross_entropy(logits[i:i + 1], labels[i:i + 1]) for i in one]
    close(torch.stack(weights), glmc["per_cls_weights"], RTOL_FLOAT32, "GLMC's per_cls_weights")
    unilevel = methods.create("unilevel").config
    assert unilevel.remedy == "debias_curriculum" and unilevel.remedy_scaling == "batch"


def test_the_glmc_remedy_mixes_weights_and_scores_a_batch_as_glmcs_trainer_does():
    """Remedy "glmc" (families/glmc.py) against GLMC's own GLMC_mixed (with its recorded draws: the Beta(1, 1) lambda
    and the box centre; Trainer.py:97's unused draw comes first), update_weight, SimSiamLoss and the loss lines of
    Trainer.train, on a stand-in backbone f = tanh(flat(x) A) with given heads: the mixup and cutmix views (on
    6x7 images, so the box's rows and columns cannot be swapped), the mixed targets and their class weights, the
    loss and its gradient with respect to every parameter (the consistency term's stop-gradient included), at
    epochs 0 and 6 of 10."""
    from ltdistill.families import glmc

    ref = official("glmc_mixed")
    inputs = {k: torch.tensor(v) for k, v in ref["inputs"].items()}
    counts = ref["inputs"]["counts"]
    weights = glmc.class_weights(counts, glmc.LABEL_WEIGHTING).double()
    close(weights, ref["per_cls_weights"], RTOL_FLOAT32, "per_cls_weights")

    class Backbone(nn.Module):
        def __init__(self):
            super().__init__()
            self.A = nn.Parameter(inputs["A"].clone())
            self.classifier = nn.Linear(*inputs["fc.weight"].T.shape)

        def embed(self, x):
            return torch.tanh(x.flatten(1) @ self.A)

    for step in ref["steps"]:
        hidden = len(inputs["projection.bias"])
        model, heads = Backbone(), glmc.GLMCHeads(*inputs["fc_cb.weight"].T.shape, hidden=hidden)
        named = ((model.classifier, "fc"), (heads.fc_cb, "fc_cb"), (heads.projection_head, "projection"),
                 (heads.contrast_head, "predictor"))
        with torch.no_grad():
            for module, name in named:
                module.weight.copy_(inputs[f"{name}.weight"])
                module.bias.copy_(inputs[f"{name}.bias"])
        (_, unused), (_, lam), (_, cx), (_, cy) = step["draws"]
        height, width = inputs["org1"].shape[2:]
        mix, cut = glmc.mixed_views(inputs["org1"], inputs["org2"], inputs["invs1"], inputs["invs2"], lam,
                                    glmc.cutmix_box(height, width, lam, cx, cy))
        close(mix, step["mix_x"], RTOL_FLOAT32, "mixup view")
        close(cut, step["cut_x"], RTOL_FLOAT32, "cutmix view")
        targets = lam * F.one_hot(inputs["labels"], len(counts)) + (1 - lam) * F.one_hot(inputs["partner_labels"],
                                                                                         len(counts))
        for name in ("mixup_y", "mixcut_y"):
            close(targets, step[name], RTOL_FLOAT32, name)
        for name in ("mixup_y_w", "cutmix_y_w"):
            close(weights[None, :] * targets, step[name], RTOL_FLOAT32, name)
        loss = glmc.glmc_loss(model, heads, mix, cut, targets, weights, alpha=1 - (step["epoch"] / step["epochs"]) ** 2)
        close(loss, step["loss"], RTOL_FLOAT32, f"loss at epoch {step['epoch']}")
        loss.backward()
        grads = {"A": model.A, "fc": model.classifier, "fc_cb": heads.fc_cb, "projection": heads.projection_head,
                 "predictor": heads.contrast_head}
        for name, expected in step["grad"].items():
            owner = grads[name.split(".")[0]]
            got = owner.grad if name == "A" else getattr(owner, name.split(".")[1]).grad
            close(got, expected, RTOL_FLOAT32, f"gradient of {name} at epoch {step['epoch']}")


# ------------------------------------------------------------------------------------------- (f) DD-Ranking

def ltdistill_scores(accs: dict, scale: float = 1.0) -> dict:
    """ltdistill's ddranking() on one relabeling cell whose runs had these accuracies (means over runs)."""
    def mean(name):
        return sum(accs[name]) / len(accs[name]) * scale

    key = {"method": "sre2l", "beta": 10, "ipc": IPC, "seed": 0}
    results = {"cell": {"key": key, "label_regime": "relabel", "syn_hard": {"mean": mean("syn_hard")},
                        "balanced_acc": {"mean": mean("syn_soft")}},
               "full": {"label": "full", "key": {"beta": 10}, "balanced_acc": {"mean": mean("full_hard")}}}
    ddranking(results, {"cell": {"balanced_acc": {"mean": mean("rdm_soft")}, "label_regime": "relabel"}})
    return results["cell"]["ddranking"]


def test_ddranking_scores_from_one_evaluation_run_equal_the_official_ones_on_fractions():
    """ltdistill takes accuracies as fractions; DD-Ranking's pipeline passes percentages (meter.py:168). HLR and IOR
    are the official ones / 100; LRS is the official formula on fractions (soft_label.py:561-564)."""
    pct, ref = SETUP["ddranking"]["one_run_pct"], official("ddranking")
    ours = ltdistill_scores(pct, scale=0.01)
    close(ours["hlr"], ref["one_run_pct"]["hard_label_recovery_mean"] / 100, what="HLR = official % / 100")
    close(ours["ior"], ref["one_run_pct"]["improvement_over_random_mean"] / 100, what="IOR = official % / 100")
    close(ours["hlr"], ref["one_run_frac"]["hard_label_recovery_mean"], what="HLR on fractions")
    close(ours["ior"], ref["one_run_frac"]["improvement_over_random_mean"], what="IOR on fractions")
    close(ours["lrs"], ref["one_run_frac"]["label_robust_score_mean"], what="LRS on fractions")


def test_ddranking_lrs_on_percentages_is_the_saturated_official_value():
    """Fed percentages, as DD-Ranking's own pipeline does, the same formula gives the official number: alpha is
    100x larger and LRS sits near -e^-1 / (e - e^-1) = -0.1565 whatever the set. ltdistill feeds fractions."""
    pct, ref = SETUP["ddranking"]["one_run_pct"], official("ddranking")["one_run_pct"]
    ours = ltdistill_scores(pct, scale=1.0)
    close(ours["lrs"], ref["label_robust_score_mean"], what="LRS on percentages")
    assert abs(ref["label_robust_score_mean"] + math.exp(-1) / (math.e - math.exp(-1))) < 1e-3


def test_ddranking_hlr_and_ior_over_several_runs_are_the_official_means():
    three, ref = SETUP["ddranking"]["three_runs_pct"], official("ddranking")["three_runs_frac"]
    ours = ltdistill_scores(three, scale=0.01)
    close(ours["hlr"], ref["hard_label_recovery_mean"], what="HLR mean over runs")
    close(ours["ior"], ref["improvement_over_random_mean"], what="IOR mean over runs")


@pytest.mark.xfail(strict=True, reason="DD-Ranking soft_label.py:561-568,595 computes LRS per evaluation run and "
                   "averages the LRS values; ltdistill bench/ranking.py:302-309 computes LRS once from the "
                   "run-averaged accuracies (exp is convex: the two differ when runs differ)")
def test_ddranking_lrs_over_several_runs_is_the_official_mean_of_per_run_scores():
    three, ref = SETUP["ddranking"]["three_runs_pct"], official("ddranking")["three_runs_frac"]
    close(ltdistill_scores(three, scale=0.01)["lrs"], ref["label_robust_score_mean"], what="LRS over runs")


def test_ddranking_protocol_scores_over_several_runs_are_the_official_per_run_means():
    """Under a suite's ranking = "ddranking" the scores are DD-Ranking's own (soft_label.py:561-568,595): per run,
    then averaged; LRS on fractions equals the official run on fractions, and `lrs_percent` the official pipeline's
    percentages."""
    from ltdistill.bench.ranking import ddranking

    three = SETUP["ddranking"]["three_runs_pct"]
    runs = {name: [v / 100 for v in values] for name, values in three.items()}
    key = {"method": "sre2l", "beta": 10, "ipc": IPC, "seed": 0, "ranking": "ddranking"}
    results = {"cell": {"key": key, "label_regime": "relabel", "syn_hard": {"mean": sum(runs["syn_hard"]) / 3},
                        "syn_hard_runs": runs["syn_hard"], "balanced_acc": {"mean": sum(runs["syn_soft"]) / 3},
                        "balanced_acc_runs": runs["syn_soft"]},
               "full": {"label": "full", "key": {"beta": 10}, "balanced_acc": {"mean": sum(runs["full_hard"]) / 3},
                        "balanced_acc_runs": runs["full_hard"]}}
    relabeled = {"balanced_acc": {"mean": sum(runs["rdm_soft"]) / 3}, "label_regime": "relabel",
                 "balanced_acc_runs": runs["rdm_soft"]}
    ddranking(results, {"cell": relabeled})
    ours, frac = results["cell"]["ddranking"], official("ddranking")["three_runs_frac"]
    assert ours["protocol"] == "ddranking"
    close(ours["lrs"], frac["label_robust_score_mean"], what="LRS: mean of per-run scores")
    close(ours["hlr_runs"], frac["per_run"]["hard_label_recovery"], what="per-run HLR")
    close(ours["ior_runs"], frac["per_run"]["improvement_over_random"], what="per-run IOR")
    close(ours["lrs_percent"], official("ddranking")["three_runs_pct"]["label_robust_score_mean"],
          what="LRS on percentages, as the official pipeline reports it")
