"""The one trainer: evaluation, experts, herding's feature net and the two-stage classifiers all train through it.

SGD with momentum and weight decay, DSA on every batch, lr x0.1 at half the epochs (the evaluation protocol of
DC/DSA/DM/MTT/DATM/LTDD: utils.evaluate_synset), hard cross-entropy or soft cross-entropy against
softmax(label logits / T) (DATM/LTDD's SoftCrossEntropy), instance-balanced or class-balanced sampling.

The pieces of SRe2L's relabel recipe (VILA-Lab/SRe2L small_dataset/relabel_cifar.py) are options of the same loop:
AdamW and a per-epoch cosine schedule (CosineAnnealingLR, T_max = epochs), RandomCrop(pad 4) + horizontal flip,
mixup with lambda ~ Beta(0.8, 0.8) and the teacher run on the mixed batch, KL(batchmean) between
log_softmax(student / T) and softmax(teacher / T) without the T^2 factor, and a teacher in training mode (the
script never calls .eval(): batch statistics). evaluate/protocol.py's `recipe="sre2l"` sets them together; its
`recipe="edc"` sets EDC's (shaoshitong/EDC train/direct_train.py): AdamW over get_parameters' two groups, x0.5
steps, RandomResizedCrop + flip and CutMix, MSE to the teacher's logits + CE, and the parameter EMA scored.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ltdistill import distributed, watch
from ltdistill.data.augment import DSA, resized_crop_flip
from ltdistill.errors import Diverged
from ltdistill.models import Classifier

# "float32": every pass in float32 (the official code's); "bfloat16": mixed precision, the model's and the teacher's
# forward passes under torch.autocast in bfloat16 (convolutions and matrix products), the weights, their gradients,
# the optimizer and the loss in float32. Not bit-compatible with float32: its scores are compared with float32's
# seed-to-seed spread in benchmarks/precision_check.py.
PRECISIONS = ("float32", "bfloat16")


def forward_precision(device: torch.device | str, precision: str):
    """The context of a forward pass under `precision` (PRECISIONS): bfloat16 autocast, or nothing."""
    if precision == "float32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    lr: float = 0.01
    batch_size: int = 256
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_decay_at_half: bool = True  # x0.1 at epochs // 2 (MTT/DATM/LTDD evaluate_synset)
    augment: bool = True  # DSA on every batch
    class_balanced: bool = False  # sample classes uniformly (for long-tailed training sets)
    class_aware_runs: int | None = None  # class-aware sampling instead (class_aware_order): runs of this many
    temperature: float = 1.0  # soft labels: targets are softmax(logits / T)
    optimizer: str = "sgd"  # "sgd" (momentum, weight_decay) | "adamw" (weight_decay; SRe2L's relabel)
    schedule: str = "step"  # "step": lr_decay_at_half | "cosine": CosineAnnealingLR over the epochs, per epoch |
    #                         "multistep": x0.5 at epochs 800, 900 and 950 (EDC's CIFAR-10 train.sh) |
    #                         "smoothed_cosine": EDC's smoothed schedule with `smoothing` (set_epoch_lr)
    smoothing: float = 2.0  # beta_s of "smoothed_cosine" (EDC --st)
    augmentation: str = "dsa"  # "dsa" | "crop_flip": RandomCrop(pad 4, padded with crop_fill) + horizontal flip |
    #                            "resized_crop_flip": RandomResizedCrop(scale 0.08-1) + flip, per image
    crop_fill: tuple[float, ...] = (0.0,)  # per channel: a black pixel in normalized units (-mean / std)
    mixup: float | None = None  # alpha of lambda ~ Beta(alpha, alpha) (SRe2L: 0.8); teacher runs only
    relabel: str = "t2_soft_ce"  # teacher loss: "t2_soft_ce" (relabel_loss) | "kl" (KL batchmean, no T^2) |
    #                              "mse_gt" (mse_gt_loss: EDC's MSE to the teacher's logits + ce_weight x CE)
    ce_weight: float = 0.025  # the weight of the class-label CE in "mse_gt" (EDC --ce-weight)
    cutmix: bool = False  # teacher runs: CutMix on every batch before the teacher labels it (EDC)
    teacher_batch_stats: bool = False  # relabel with the teacher in training mode (SRe2L's script)
    gsam_rho: float = 0.0  # > 0: GSAM steps (gsam_step) with this perturbation radius; 0 is plain SGD
    gsam_alpha: float = 0.0  # GSAM's weight on the gradient component orthogonal to the perturbed one
    compile: bool = False  # the model's forward and backward through torch.compile (compiled_model)
    precision: str = "float32"  # "bfloat16": the forward passes in bfloat16 (forward_precision); see PRECISIONS
    ema_decay: float | None = None  # the model trained is scored with an EMA of its parameters (ParameterEMA; EDC)
    decay_matrices_only: bool = False  # weight decay on weight matrices and kernels alone (parameter_groups; EDC)


def soft_cross_entropy(logits: torch.Tensor, target_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """mean_b sum_k softmax(y_b / T)_k * -log softmax(x_b)_k (DATM/LTDD SoftCrossEntropy at T = 1), over the last
    two dimensions (a leading one: several models' batches, one loss each)."""
    return -(F.softmax(target_logits / temperature, dim=-1) * F.log_softmax(logits, dim=-1)).sum(-1).mean(-1)


def classification_loss(logits: torch.Tensor, targets: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Cross-entropy against class indices or soft target logits: the batch mean of logits [B, classes], or one
    batch mean per model of logits [K, B, classes] (K models trained together, together.py)."""
    if targets.ndim == logits.ndim:
        return soft_cross_entropy(logits, targets, temperature)
    if logits.ndim == 3:
        return F.cross_entropy(logits.transpose(1, 2), targets, reduction="none").mean(-1)
    return F.cross_entropy(logits, targets)


def relabel_loss(logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * soft CE between softmax(teacher / T) and log_softmax(student / T): the gradient of Hinton's KD term
    (SRe2L/RDED use KL(batchmean), which differs by the teacher's entropy, a constant). The T^2 factor keeps the
    gradient scale of plain CE, so the SGD lr of the protocol stays right."""
    target = F.softmax(teacher_logits / temperature, dim=1)
    return -(target * F.log_softmax(logits / temperature, dim=1)).sum(1).mean() * temperature**2


def kl_relabel_loss(logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """SRe2L's relabel loss: KLDivLoss(batchmean)(log_softmax(student / T), softmax(teacher / T)), no T^2
    (relabel_cifar.py; equals relabel_loss / T^2 minus the teacher's entropy)."""
    target = F.softmax(teacher_logits / temperature, dim=1)
    return F.kl_div(F.log_softmax(logits / temperature, dim=1), target, reduction="batchmean")


def mse_gt_loss(logits: torch.Tensor, teacher_logits: torch.Tensor, classes: torch.Tensor,
                ce_weight: float) -> torch.Tensor:
    """EDC's student loss (shaoshitong/EDC Branch_CIFAR_10 train/direct_train.py:421-422, --loss-type mse_gt):
    mean squared error between the student's and the teacher's logits plus ce_weight x cross-entropy to each image's
    own class (unmixed, also under CutMix)."""
    return F.mse_loss(logits, teacher_logits) + ce_weight * F.cross_entropy(logits, classes)


def cutmix(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """CutMix as EDC applies it to every batch (relabel/utils_fkd.py:195-228, mode fkd_save): lambda ~ Beta(1, 1),
    one box of side sqrt(1 - lambda) with a uniform centre (clipped at the border) for the whole batch, filled from a
    random permutation of the batch; lambda is not used for labels (the teacher labels the mixed batch). Drawn
    through `generator` (the reference draws through numpy and the global torch generator)."""
    lam = float(torch.rand((), generator=generator, dtype=torch.float64))  # Beta(1, 1) is uniform
    perm = torch.randperm(len(x), generator=generator)
    height, width = x.shape[2:]
    cut_w, cut_h = int(height * math.sqrt(1 - lam)), int(width * math.sqrt(1 - lam))  # (EDC's W is dim 2)
    cx, cy = (int(torch.randint(0, n, (1,), generator=generator)) for n in (height, width))
    box = (max(cx - cut_w // 2, 0), max(cy - cut_h // 2, 0), min(cx + cut_w // 2, height), min(cy + cut_h // 2, width))
    return paste_box(x, perm.to(x.device), box)


def paste_box(x: torch.Tensor, perm: torch.Tensor, box: tuple[int, int, int, int]) -> torch.Tensor:
    """x with the box (x1, y1, x2, y2) over dims (2, 3) of every image taken from image perm[i] (CutMix's paste)."""
    x1, y1, x2, y2 = box
    out = x.clone()
    out[:, :, x1:x2, y1:y2] = x[perm, :, x1:x2, y1:y2]
    return out


def crop_flip(x: torch.Tensor, fill: tuple[float, ...], generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """RandomCrop(size, padding=pad) + RandomHorizontalFlip, each image its own draw; the padding is `fill` per
    channel (torchvision pads the uint8 image with 0 before normalizing: a black pixel)."""
    n, c, h, w = x.shape
    padded = x.new_empty(n, c, h + 2 * pad, w + 2 * pad)
    padded[:] = torch.tensor(fill if len(fill) == c else fill[:1] * c, dtype=x.dtype, device=x.device)[None, :, None,
                                                                                                      None]
    padded[:, :, pad:pad + h, pad:pad + w] = x
    dy, dx = (torch.randint(0, 2 * pad + 1, (n,), generator=generator) for _ in range(2))
    flip = torch.rand(n, generator=generator) < 0.5
    rows = (dy[:, None] + torch.arange(h)).to(x.device)
    cols = (dx[:, None] + torch.arange(w)).to(x.device)
    cols = torch.where(flip.to(x.device)[:, None], cols.flip(1), cols)
    return padded[torch.arange(n, device=x.device)[:, None, None, None], torch.arange(c, device=x.device)[None, :, None,
                  None], rows[:, None, :, None], cols[:, None, None, :]]


def mixup(x: torch.Tensor, alpha: float, generator: torch.Generator) -> torch.Tensor:
    """lambda x + (1 - lambda) x[perm], lambda ~ Beta(alpha, alpha) once per batch (relabel_cifar.py mixup_data);
    drawn through `generator`, so a run is seeded and resumable."""
    lam = np.random.default_rng(int(torch.randint(2**62, (1,), generator=generator))).beta(alpha, alpha)
    perm = torch.randperm(len(x), generator=generator).to(x.device)
    return lam * x + (1 - lam) * x[perm]


def parameter_groups(model: nn.Module, config: TrainConfig) -> list[dict]:
    """The optimizer's parameter groups: one, or with `decay_matrices_only` EDC's two (train/utils.py:58-72
    get_parameters): parameters named "weight" of two or more dimensions under the config's weight decay, biases and
    norm weights without it."""
    if not config.decay_matrices_only:
        return [{"params": list(model.parameters())}]
    decayed: list[nn.Parameter] = []
    spared: list[nn.Parameter] = []
    for name, p in model.named_parameters():
        (decayed if "weight" in name and p.ndim > 1 else spared).append(p)
    return [{"params": decayed}, {"params": spared, "weight_decay": 0.0}]


class ParameterEMA:
    """An exponential moving average of the trained parameters, the weights a run is scored with (EDC's EMAMODEL,
    direct_train.py:79-98): made from the weights before the first step (:259), after every step
    ema <- decay ema + (1 - decay) p (ema_step, :86-89), and swapped in for scoring (ema_swap, :350-354: the
    parameters only; BatchNorm's running statistics stay the trained model's). Each average lives in its parameter's
    optimizer state under "ema", so it is saved and resumed with the optimizer (evaluate's kept runs)."""

    def __init__(self, optimizer: torch.optim.Optimizer, decay: float):
        self.optimizer, self.decay = optimizer, decay
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        # a fresh run (no average in the state yet): the weights before the first step start the average
        self.start = {i: p.detach().clone() for i, p in enumerate(self.params) if "ema" not in optimizer.state[p]}

    @torch.no_grad()
    def step(self) -> None:
        for i, p in enumerate(self.params):
            state = self.optimizer.state[p]
            if "ema" not in state:
                if p.grad is None:  # not stepped yet: still its start, which is its average (Adam's state stays empty)
                    continue
                state["ema"] = self.start.pop(i)  # after the optimizer filled its state on the first step
            state["ema"].mul_(self.decay).add_(p, alpha=1 - self.decay)

    def averaged(self) -> list[torch.Tensor]:
        """The parameters with an average (none before the first step)."""
        return [p for p in self.params if "ema" in self.optimizer.state[p]]

    @torch.no_grad()
    def swap(self) -> None:
        """Exchange the parameters and their averages (twice: back as they were); a parameter never stepped is its
        own average."""
        for p in self.averaged():
            average = self.optimizer.state[p]["ema"]
            kept = p.detach().clone()
            p.copy_(average)
            average.copy_(kept)

    @contextlib.contextmanager
    def swapped(self):
        self.swap()
        try:
            yield
        finally:
            self.swap()


def make_optimizer(params, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def epoch_lr(config: TrainConfig, epoch: int) -> float | None:
    """The lr of `epoch` under a schedule that sets it from scratch, None under "step" (it scales the current lr):
    cosine 0.5 lr (1 + cos(pi e / E)); EDC's (direct_train.py:317-335, stepped once per epoch) multistep lr x 0.5^k
    after k of its fixed milestones 800, 900, 950 (of train.sh's 1000 epochs; fewer epochs reach fewer), and
    smoothed cosine 0.5 lr (1 + cos(pi e / (beta_s E))) while e <= beta_s E, else 0 (the paper's smoothed
    schedule, --ls-type cos)."""
    if config.schedule == "cosine":
        return 0.5 * config.lr * (1 + math.cos(math.pi * epoch / config.epochs))
    if config.schedule == "multistep":
        return config.lr * 0.5 ** sum(epoch >= milestone for milestone in (800, 900, 950))
    if config.schedule == "smoothed_cosine":
        span = config.smoothing * config.epochs
        return 0.5 * config.lr * (1 + math.cos(math.pi * epoch / span)) if epoch <= span else 0.0
    return None


def set_epoch_lr(optimizer: torch.optim.Optimizer, config: TrainConfig, epoch: int) -> None:
    """The schedule at the start of `epoch`: x0.1 from epochs // 2 (step), else epoch_lr."""
    lr = epoch_lr(config, epoch)
    if lr is not None:
        for group in optimizer.param_groups:
            group["lr"] = lr
    elif config.lr_decay_at_half and epoch == config.epochs // 2 and config.epochs > 1:
        for group in optimizer.param_groups:
            group["lr"] *= 0.1


class TrainingDiverged(Diverged):
    """The training loss became inf or NaN in `epoch` (1-based): the weights are no longer numbers, and no later
    epoch brings them back. Uncaught, the CLI prints it as one line (exit 1); the evaluation catches it per run."""

    def __init__(self, epoch: int):
        super().__init__(f"non-finite training loss in epoch {epoch}")
        self.epoch = epoch


def class_aware_order(labels: torch.Tensor, runs: int, generator: torch.Generator) -> torch.Tensor:
    """One epoch of the ClassAwareSampler of LTDD's classifier experts (class_aware_sampler.py, num_samples_cls 4 in
    buffer_FTD.py): max_count x C samples, in runs of `runs` from one class; classes taken in a shuffled cycle and
    each class's images in a shuffled cycle, reshuffled at every pass (RandomCycleIter). Departure: the cycles start
    afresh every epoch (the reference's iterators live across epochs); the draws are the same in distribution."""
    classes = labels if labels.ndim == 1 else labels.argmax(1)
    num_classes = int(classes.max()) + 1
    pools = [torch.nonzero(classes == c).flatten() for c in range(num_classes)]
    present = [c for c in range(num_classes) if len(pools[c])]
    total = max(len(p) for p in pools) * num_classes

    def cycle(items: torch.Tensor):
        while True:
            yield from items[torch.randperm(len(items), generator=generator)].tolist()

    class_cycle, image_cycles = cycle(torch.tensor(present)), {c: cycle(pools[c]) for c in present}
    order: list[int] = []
    while len(order) < total:
        c = next(class_cycle)
        order += [next(image_cycles[c]) for _ in range(runs)]
    return torch.tensor(order[:total])


def epoch_order(labels: torch.Tensor, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """One epoch's sample order under the config's sampling: class-aware runs, class-balanced draws, or a
    permutation."""
    if config.class_aware_runs:
        return class_aware_order(labels, config.class_aware_runs, generator)
    return batch_order(labels, config.class_balanced, generator)


def batch_order(labels: torch.Tensor, class_balanced: bool, generator: torch.Generator) -> torch.Tensor:
    """One epoch's sample order: a permutation, or len(labels) draws with every class equally likely."""
    n = len(labels)
    if not class_balanced:
        return torch.randperm(n, generator=generator)
    classes = labels if labels.ndim == 1 else labels.argmax(1)
    counts = torch.bincount(classes).float()
    weights = 1.0 / counts[classes]
    return torch.multinomial(weights, n, replacement=True, generator=generator)


def train_model(model: nn.Module, images: torch.Tensor, targets: torch.Tensor, config: TrainConfig, *,
                generator: torch.Generator, dsa: DSA | None = None, params=None, progress: bool = False,
                desc: str = "train", after_step=None, optimizer: torch.optim.Optimizer | None = None,
                loss_fn=None, teacher: nn.Module | None = None, checkpoint=None,
                watch_as: str | None = None, watch_from: int = 0, on_epoch=None,
                classes: torch.Tensor | None = None, data_parallel: bool = False, objective=None) -> nn.Module:
    """Train `model` in place on (images, targets); `params` restricts which parameters move (e.g. the head only);
    `after_step(model)` runs after each optimizer step (e.g. MaxNorm); `optimizer` continues a caller's optimizer
    (DC's network keeps its momentum across outer loops) instead of a fresh SGD from the config;
    `loss_fn(logits, targets, epoch)` replaces the classification loss (long-tail remedies of observer/teacher models);
    `objective(x, idx, epoch)` replaces the whole batch loss, for a loss that needs more than the batch's logits (it
    gets the augmented batch and its rows; families/glmc.py);
    `teacher`: relabeling (SRe2L/RDED, DD-Ranking soft_label_mode 'M'): each augmented batch's targets are the
    teacher's logits on that very batch, learned with the temperature-T soft cross-entropy of `relabel_loss` (or
    the config's other teacher loss; "mse_gt" also needs `classes`, each image's own class).
    `checkpoint`: resumable training (evaluate/runstore.py PartialRun): `restore(model, optimizer, generator)` returns
    the epochs already done (their state loaded), `save(epochs_done, model, optimizer, generator)` runs after each
    epoch and writes when it chooses; every random draw goes through `generator`, so a resumed run equals an
    unbroken one. `watch_as`: with `--log-dir`, each epoch's mean loss and lr go to TensorBoard under this tag
    (watch.py), at step watch_from + epoch; `on_epoch(epochs_done, seconds)` runs after each epoch with its wall
    time (evaluate: the pace behind the long-run warning). Raises TrainingDiverged at the end of an epoch whose last
    loss is inf or NaN, and after the last epoch when its final step left a weight non-finite (a loss is computed
    before its step: with lr NaN every loss of a one-epoch run is finite and every weight after it NaN).
    `data_parallel`: under torchrun every rank trains the same model on its rows of each batch
    (distributed.BatchSplit: the one-process steps to float rounding); which rank saves is the checkpoint's
    choice (evaluate's run store: rank 0)."""
    split = distributed.BatchSplit(model) if data_parallel and distributed.joined().size > 1 else None
    if split is not None and (config.gsam_rho > 0 or teacher is not None or objective is not None):
        raise ValueError("data-parallel training takes neither a GSAM step, a teacher nor an objective")
    if objective is not None and (config.gsam_rho > 0 or teacher is not None):
        raise ValueError("an objective draws its own batch: it takes neither a GSAM step nor a teacher")
    device = next(model.parameters()).device
    images, targets = images.to(device), targets.to(device)
    if teacher is not None and config.relabel == "mse_gt":
        if classes is None:
            raise ValueError("the mse_gt teacher loss needs each image's class (classes=)")
        classes = classes.to(device)
    dsa = dsa or DSA()
    optimizer = optimizer or make_optimizer(params if params is not None else parameter_groups(model, config), config)
    start = checkpoint.restore(model, optimizer, generator) if checkpoint is not None else 0
    ema = ParameterEMA(optimizer, config.ema_decay) if config.ema_decay is not None else None
    model.train()
    network = compiled_model(model) if config.compile else model
    if teacher is not None and config.teacher_batch_stats:
        teacher.train()
    teacher_loss = kl_relabel_loss if config.relabel == "kl" else relabel_loss
    loss = None
    watching = watch_as is not None and watch.active()
    trained = [p for group in optimizer.param_groups for p in group["params"]]
    with split.synced_norms() if split is not None else contextlib.nullcontext():
        for epoch in tqdm(range(start, config.epochs), desc=desc, disable=not progress, leave=False, initial=start,
                          total=config.epochs):
            set_epoch_lr(optimizer, config, epoch)
            epoch_loss = torch.zeros((), device=device) if watching else None
            epoch_started = time.perf_counter()
            order = epoch_order(targets.cpu(), config, generator).to(device)
            for first in range(0, len(order), config.batch_size):
                idx = order[first:first + config.batch_size]
                x = images[idx]
                if config.augment:
                    x = augmented(x, config, dsa, generator)
                rows = split.rows(len(idx)) if split is not None else None
                share = 1.0
                if rows is not None:  # this rank's rows of the batch every rank drew alike
                    share = len(idx[rows]) / len(idx)
                    x, idx = x[rows], idx[rows]
                teacher_logits = None
                if teacher is not None:
                    if config.mixup is not None:
                        x = mixup(x, config.mixup, generator)
                    if config.cutmix:
                        x = cutmix(x, generator)
                    with torch.no_grad(), forward_precision(device, config.precision):
                        teacher_logits = teacher(x).float()

                def batch_loss(x=x, idx=idx, teacher_logits=teacher_logits, epoch=epoch) -> torch.Tensor:
                    if objective is not None:
                        return objective(x, idx, epoch)
                    with forward_precision(device, config.precision):
                        logits = network(x).float()
                    if teacher_logits is not None and classes is not None and config.relabel == "mse_gt":
                        return mse_gt_loss(logits, teacher_logits, classes[idx], config.ce_weight)
                    if teacher_logits is not None:
                        return teacher_loss(logits, teacher_logits, config.temperature)
                    if loss_fn is not None:
                        return loss_fn(logits, targets[idx], epoch)
                    return classification_loss(logits, targets[idx], config.temperature)

                optimizer.zero_grad(set_to_none=True)
                loss = batch_loss() * share if rows is not None else batch_loss()
                loss.backward()
                if split is not None:
                    loss = split.reduce(trained, loss)
                if config.gsam_rho > 0:
                    gsam_gradient(model, optimizer, batch_loss, config.gsam_rho, config.gsam_alpha)
                optimizer.step()
                if ema is not None:
                    ema.step()
                if after_step is not None:
                    after_step(model)
                if epoch_loss is not None:
                    epoch_loss += loss.detach() * (len(idx) / share)
            if epoch_loss is not None and watch_as is not None:
                watch.scalars(watch_as, {"loss": float(epoch_loss) / len(order),
                                         "lr": optimizer.param_groups[0]["lr"]}, watch_from + epoch + 1)
            if loss is not None and not torch.isfinite(loss):  # one check (a device sync) an epoch: NaN weights stay
                raise TrainingDiverged(epoch + 1)
            if checkpoint is not None:
                checkpoint.save(epoch + 1, model, optimizer, generator)
            if on_epoch is not None:  # (a scoring callback scores the averaged weights, as EDC validates them)
                with ema.swapped() if ema is not None else contextlib.nullcontext():
                    on_epoch(epoch + 1, time.perf_counter() - epoch_started)
    if ema is not None:
        ema.swap()  # the model returned holds the averaged weights (the average, the last trained ones)
    if not all_finite(model.parameters()):
        raise TrainingDiverged(config.epochs)
    return model


def augmented(x: torch.Tensor, config: TrainConfig, dsa: DSA, generator: torch.Generator) -> torch.Tensor:
    """One batch under the config's augmentation, drawn through `generator`."""
    if config.augmentation == "dsa":
        return dsa(x, generator)
    if config.augmentation == "resized_crop_flip":
        return resized_crop_flip(x, generator)
    return crop_flip(x, config.crop_fill, generator)


def canonical_strides(x: torch.Tensor) -> torch.Tensor:
    """x, contiguous, with the strides a new tensor of its shape has: a size-1 dimension's stride depends on the op
    that made x (DSA's transforms of a one-channel batch leave either), and a compiled model compiles once more for
    every stride it meets."""
    x = x.contiguous()
    strides: list[int] = []
    step = 1
    for size in reversed(x.shape):
        strides.insert(0, step)
        step *= max(size, 1)
    return x if x.stride() == tuple(strides) else x.as_strided(x.shape, strides, x.storage_offset())


def compiled_model(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model's forward (and, through AOTAutograd, its backward) compiled by torch.compile: first-order training
    only (a double backward, as full trajectory unrolling needs, is not supported by compile). Its parameters are
    graph inputs (torch._dynamo inlines nn.Modules), so every model of one architecture and input shape reuses the
    first compilation in the process: the N runs of an evaluation compile once. The first call pays the compilation
    (tens of seconds on a CPU); each batch size compiles once more (inputs take canonical_strides first)."""
    compiled = torch.compile(model)
    return lambda x: compiled(canonical_strides(x))


def _embed(net: Classifier, x: torch.Tensor) -> torch.Tensor:
    return net.embed(x)


_compiled_embed = None


def embedding(net: Classifier, compile: bool = False):
    """`net.embed`, or the same through torch.compile: one compilation serves every network of the architecture
    (DM draws a fresh one every iteration), each input shape compiling once."""
    global _compiled_embed
    if not compile:
        return net.embed
    if _compiled_embed is None:
        _compiled_embed = torch.compile(_embed)
    return lambda x: _compiled_embed(net, canonical_strides(x))


def gsam_gradient(model: nn.Module, optimizer: torch.optim.Optimizer, batch_loss, rho: float, alpha: float,
                  eps: float = 1e-12) -> None:
    """Replace the gradients in the parameters' .grad (those of batch_loss at w) by GSAM's update direction
    (Zhuang et al., "Surrogate Gap Guided Sharpness-Aware Minimization", ICLR 2022, Alg. 1), as the FTD expert
    buffers of DATM and LTDD train (ichbill/LTDD buffer/gsam/gsam.py GSAM.step, non-adaptive, constant rho):
    climb to w + rho g / ||g||, take the gradient g_p of the same batch there (BatchNorm running statistics
    untouched), subtract alpha times the part of g orthogonal to g_p, g_v = g - cos(g, g_p) ||g|| g_p / ||g_p||,
    and step from w with g_p - alpha g_v."""
    params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    old = [p.grad.detach().clone() for p in params]
    old_norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in old]))
    climb = [g * (rho / (old_norm + eps)) for g in old]
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    with torch.no_grad():
        for p, e in zip(params, climb, strict=True):
            p.add_(e)
    for m in norms:  # momentum 0: the perturbed pass leaves the running statistics as they are
        m.momentum = 0.0
    optimizer.zero_grad(set_to_none=False)
    batch_loss().backward()
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    with torch.no_grad():
        new = [p.grad for p in params]
        new_norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in new]))
        cosine = sum((a * b).sum() for a, b in zip(old, new, strict=True)) / (new_norm * old_norm + eps)
        for p, g_old, g_new, e in zip(params, old, new, climb, strict=True):
            g_new.add_(g_old - cosine * old_norm * g_new / (new_norm + eps), alpha=-alpha)
            p.sub_(e)


def all_finite(tensors) -> bool:
    """Whether every value of the tensors is finite, in one device sync."""
    checks = [torch.isfinite(t).all() for t in tensors]
    return bool(torch.stack(checks).all()) if checks else True


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    device = next(model.parameters()).device
    model.eval()
    out = [model(images[i:i + batch_size].to(device)).argmax(1).cpu() for i in range(0, len(images), batch_size)]
    return torch.cat(out)


@torch.no_grad()
def embed(model: Classifier, images: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    device = next(model.parameters()).device
    model.eval()
    chunks = range(0, len(images), batch_size)
    return torch.cat([model.embed(images[i:i + batch_size].to(device)).cpu() for i in chunks])
