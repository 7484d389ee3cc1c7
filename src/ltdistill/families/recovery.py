"""The statistics-alignment core of the uni-level family (SRe2L, Yin et al. NeurIPS 2023; the unbiased long-tailed
framework of Cui et al., arXiv 2511.18858): train a BatchNorm model on the real data, recover synthetic images
whose per-layer BN batch statistics match the model's, and relabel them with a teacher.

- `train_classifier`: a ConvNet-BN trained on the long-tailed set, optionally with a long-tail remedy (REMEDIES).
- `recalibrate_bn`: BN running statistics recomputed from the training data (the uni-level paper's calibration).
- `recover`: SRe2L's recovery loss
  CE(f(A(x)), y) + r_bn * sum_l w_l (||mu_l(x) - mu*_l||_2 + ||var_l(x) - var*_l||_2)
  (w_1 = first_bn_multiplier, others 1; plain L2 norms; mu/var of the BN layer's *input* over (N, H, W), biased),
  Adam (betas 0.5, 0.9), lr cosine-decayed to 0, a random roll jitter per iteration with offsets in [0, j] and no
  flip, pixels clipped to the valid range (VILA-Lab/SRe2L small_dataset/recover_cifar.py:66-111); the Tiny-ImageNet
  script's symmetric offsets and flip (recover_tiny.py:49-57, without its RandomResizedCrop) are options. The images
  are optimized as independent groups holding one image per class (SRe2L optimizes one batch per ipc index):
  statistics are per group, so the result is that of IPC separate SRe2L batches, computed in one pass.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ltdistill import distributed, models
from ltdistill.engine.loop import MAX_SKIPPED_SHARE
from ltdistill.errors import BadInput, Diverged
from ltdistill.families.glmc import GLMCObjective, class_weights, trainer_augment
from ltdistill.params import BNModelName, Count, NonNegative, Rate, Weight
from ltdistill.train import TrainConfig, train_model

REMEDIES = ("none", "balanced_softmax", "debias_curriculum", "glmc")


@dataclass(frozen=True)
class RecoveryConfig:
    model: BNModelName = "convnet_bn"  # observer / squeezed model: BN is what recovery aligns to
    width: Count = 128  # (the cpu protocol sets 32)
    depth: Count = 3  # (the cpu protocol sets 2 for 16x16 images)
    epochs: Count = 50  # training epochs of the observer and teacher on the long-tailed set
    lr: Rate = 0.01  # their SGD lr (momentum 0.9, weight decay 5e-4, x0.1 at half: the shared trainer)
    iterations: NonNegative = 1000  # recovery iterations (SRe2L CIFAR: 1000)
    lr_img: Rate = 0.25  # Adam lr of the pixels, cosine-decayed to 0 (SRe2L CIFAR: 0.25)
    r_bn: Weight = 0.01  # weight of the BN-statistics term (SRe2L CIFAR script: 0.01)
    first_bn_multiplier: Weight = 10.0  # w_1 (SRe2L)
    jitter: NonNegative | None = None  # max roll in pixels; None: side / 8 (SRe2L CIFAR: 4 at 32 px)
    jitter_range: Literal["nonnegative", "symmetric"] = "nonnegative"  # each roll offset from [0, jitter]
    #   (recover_cifar.py:79-80) | [-jitter, jitter] (recover_tiny.py:56-57; ltdistill before)
    flip: bool = False  # random horizontal flip of the batch per iteration (recover_cifar.py has none; Tiny's has)
    temperature: Rate = 4.0  # relabeling temperature T of the evaluator (RDED: 4 with mixup)
    model_cache: str | None = None  # a directory where trained observers / teachers / squeezed models are kept and
    #                                 shared between runs (the recovery family's analogue of an expert buffer: IPC
    #                                 10 and 50 and the ablations of one beta reuse one training); None: the run's
    #                                 own checkpoint directory only. Results do not depend on it.
    compile: bool = False  # observer / teacher training through torch.compile (train.compiled_model; the same
    #                        models to float tolerance, kept apart from eager ones in the model cache)


def remedy_loss(remedy: str, counts: list[int], epochs: int, q: float = 1.0, scaling: str = "weight_sum"):
    """The training loss of observer/teacher on long-tailed data, or None for plain CE.
    - balanced_softmax (Ren et al., NeurIPS 2020): CE(logits + log prior), i.e. logit adjustment at training;
    - debias_curriculum (the uni-level paper's L_debias, from GLMC): (1 - a) CE + a CE weighted by n_c^-q, with
      a = (epoch / epochs)^2, so training starts instance-balanced and ends tail-weighted. The weights have mean 1
      over classes; `scaling` says what the weighted term divides by: "weight_sum", sum_i w_{y_i} over the batch
      (F.cross_entropy(weight=w)'s mean), or "batch", the batch size, as GLMC does (ynu-yangpeng/GLMC Trainer.py:
      mean-one weights, loss summed and divided by the batch size). A head-heavy batch has a small weight sum, so
      "weight_sum" makes the term several times larger than GLMC's (fidelity audit: ~6x at beta 100, ~1.7x at 10);
    - glmc: GLMC's whole loss (families/glmc.py: the uni-level paper's L_robust + L_debias, two mixed views, a
      class-reweighted partner batch, a second head and a consistency term), which needs more than the logits:
      train_classifier gives it to the trainer as its objective, and this returns None for it, as for "none"."""
    if remedy not in REMEDIES:
        raise BadInput(f"remedy must be one of {REMEDIES}, got {remedy!r}")
    if remedy in ("none", "glmc"):  # glmc: a whole objective of its own (train_classifier)
        return None
    if remedy == "balanced_softmax":
        n = torch.tensor(counts, dtype=torch.float).clamp_min(1)
        log_prior = (n / n.sum()).log()
        return lambda logits, y, epoch: F.cross_entropy(logits + log_prior.to(logits.device), y)
    weights = class_weights(counts, q)

    def weighted(logits, y):
        if scaling == "batch":
            return (weights.to(logits.device)[y] * F.cross_entropy(logits, y, reduction="none")).mean()
        return F.cross_entropy(logits, y, weight=weights.to(logits.device))

    def curriculum(logits, y, epoch):
        a = (epoch / max(epochs, 1)) ** 2
        return (1 - a) * F.cross_entropy(logits, y) + a * weighted(logits, y)

    return curriculum


def network_options(model: str, width: int, depth: int) -> dict:
    """Every option of an observer/teacher network: its cache key and the teacher record hold them all."""
    return models.resolved_options(model, models.options_for(model, width=width, depth=depth))


def train_classifier(data, *, model: str, options: dict, epochs: int, lr: float, remedy: str, seed: int,
                     device: str, progress: bool, desc: str, scaling: str = "weight_sum",
                     compile: bool = False, checkpoint=None) -> nn.Module:
    """`checkpoint`: train_model's (a PartialRun), so that a long training stopped part way resumes at its last
    saved epoch and ends where an unbroken one ends."""
    torch.manual_seed(seed)
    net = models.create(model, channels=data.channels, num_classes=data.num_classes, im_size=data.im_size,
                        **options).to(device)
    config, generator = TrainConfig(epochs=epochs, lr=lr, compile=compile), torch.Generator().manual_seed(seed)
    objective = GLMCObjective(net, data.train_x, data.train_y, data.counts, epochs, trainer_augment(config, generator),
                              generator) if remedy == "glmc" else None
    train_model(net, data.train_x, data.train_y, config, generator=generator, progress=progress, desc=desc,
                loss_fn=remedy_loss(remedy, data.counts, epochs, scaling=scaling), data_parallel=objective is None,
                checkpoint=checkpoint, objective=objective)
    if objective is not None:
        objective.finish()
    return net.eval()


def batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        raise BadInput(f"{type(model).__name__} has no BatchNorm layer: recovery needs a BN model (e.g. convnet_bn)")
    return norms


@torch.no_grad()
def recalibrate_bn(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, num_classes: int,
                   mode: str = "class_balanced", batch_size: int = 1024) -> None:
    """Recompute every BN layer's running mean/var from one pass over (images, labels) with the weights frozen.

    The paper's dynamic momentum alpha_t = B_t / (N_{t-1} + B_t) makes the running value the exact average of
    everything seen; we accumulate the sums directly (same result, order-independent).
    - mode 'instance': the exact average over all images (what a cumulative-average BN pass gives);
    - mode 'class_balanced' (the paper): per-class means mu_c and variances var_c, then mu = mean_c mu_c and
      var = mean_c var_c + mean_c (mu_c - mu)^2, the variance of the class-balanced mixture. Decision: the paper
      averages the class variances only (its notes leave the between-class term unstated); we add it because a
      recovered batch holds one image per class, and its batch variance includes the spread between classes.
    Decision: one pass per BN layer, front to back, so a layer's statistics are those of inputs normalized by the
    already recalibrated layers before it (a single pass would measure deeper layers under stale statistics).
    """
    if mode not in ("class_balanced", "instance"):
        raise BadInput(f"BN recalibration mode must be 'class_balanced' or 'instance', got {mode!r}")
    model.eval()
    for bn in batchnorms(model):
        sums, squares, counts = _class_sums(model, bn, images, labels, num_classes, batch_size)
        seen = counts > 0
        if mode == "instance":
            mean = sums[seen].sum(0) / counts[seen].sum()
            var = squares[seen].sum(0) / counts[seen].sum() - mean**2
        else:
            class_mean = sums[seen] / counts[seen, None]
            class_var = squares[seen] / counts[seen, None] - class_mean**2
            mean = class_mean.mean(0)
            var = class_var.mean(0) + ((class_mean - mean) ** 2).mean(0)
        assert bn.running_mean is not None and bn.running_var is not None  # batchnorms() keeps tracking ones
        bn.running_mean.copy_(mean.float())
        bn.running_var.copy_(var.clamp_min(0).float())


@torch.no_grad()
def _class_sums(model, bn, images, labels, num_classes: int, batch_size: int):
    """Per-class sums of a BN layer's input, of its square, and pixel counts, over one pass of the data."""
    device = next(model.parameters()).device
    sums = torch.zeros(num_classes, bn.num_features, device=device, dtype=torch.float64)
    squares, counts = torch.zeros_like(sums), torch.zeros(num_classes, device=device, dtype=torch.float64)
    current: list[torch.Tensor] = []

    def hook(module, inputs, output):
        x, y = inputs[0].double(), current[0]
        sums.index_add_(0, y, x.sum((2, 3)))
        squares.index_add_(0, y, (x * x).sum((2, 3)))
        counts.index_add_(0, y, torch.full((len(y),), float(x[0, 0].numel()), device=device, dtype=torch.float64))

    handle = bn.register_forward_hook(hook)
    try:
        for start in range(0, len(images), batch_size):
            current[:] = [labels[start:start + batch_size].to(device)]
            model(images[start:start + batch_size].to(device))
    finally:
        handle.remove()
    return sums, squares, counts


class GroupBNLoss:
    """Forward hooks on every BN layer adding sum_g w_l (||mu_gl - mu*_l|| + ||var_gl - var*_l||) for groups g."""

    def __init__(self, model: nn.Module, groups: torch.Tensor, first_multiplier: float):
        self.groups, self.num_groups = groups, int(groups.max()) + 1
        self.group_sizes = torch.bincount(groups, minlength=self.num_groups)  # images per group, fixed for the run
        self.terms: list[torch.Tensor] = []
        norms = batchnorms(model)
        self.handles = [bn.register_forward_hook(self._hook(first_multiplier if i == 0 else 1.0))
                        for i, bn in enumerate(norms)]

    def _hook(self, weight: float):
        def hook(module, inputs, output):
            x = inputs[0]
            pixels = x[0, 0].numel()
            size = self.group_sizes.to(x.dtype)[:, None] * pixels
            mean = torch.zeros(self.num_groups, x.shape[1], device=x.device).index_add(0, self.groups,
                                                                                       x.sum((2, 3))) / size
            square = torch.zeros_like(mean).index_add(0, self.groups, (x * x).sum((2, 3))) / size
            var = square - mean**2
            term = (mean - module.running_mean).norm(dim=1) + (var - module.running_var).norm(dim=1)
            self.terms.append(weight * term.sum())

        return hook

    def pop(self) -> torch.Tensor:
        total = torch.stack(self.terms).sum()
        self.terms = []
        return total

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def recover(observer: nn.Module, images: torch.Tensor, classes: torch.Tensor, groups: torch.Tensor,
            cfg: RecoveryConfig, *, pixel_range: tuple[torch.Tensor, torch.Tensor], generator: torch.Generator,
            progress: bool = True, history: list | None = None, counters: dict | None = None,
            seconds: list | None = None) -> torch.Tensor:
    """Optimize images (N, C, H, W) of the given classes against the observer's BN statistics; returns the result.
    A step whose loss or image gradient is NaN/Inf is skipped (no update; counted in counters["skipped_nonfinite"]),
    as in the trajectory loop (engine/loop.py). `seconds` receives the wall time of every iteration that updated."""
    counters = counters if counters is not None else {}
    counters.setdefault("skipped_nonfinite", 0)
    observer.eval().requires_grad_(False)
    device = next(observer.parameters()).device
    x = images.clone().to(device).requires_grad_(True)
    classes, groups = classes.to(device), groups.to(device)
    low, high = (t.to(device).view(1, -1, 1, 1) for t in pixel_range)
    optimizer = torch.optim.Adam([x], lr=cfg.lr_img, betas=(0.5, 0.9), eps=1e-8)
    jitter = cfg.jitter if cfg.jitter is not None else max(1, min(x.shape[2:]) // 8)
    least = 0 if cfg.jitter_range == "nonnegative" else -jitter  # the smallest roll offset
    bn_loss = GroupBNLoss(observer, groups, cfg.first_bn_multiplier)
    try:
        for it in tqdm(range(cfg.iterations), desc="recover", disable=not progress, leave=False):
            started = time.perf_counter()
            for group in optimizer.param_groups:
                group["lr"] = 0.5 * cfg.lr_img * (1 + math.cos(math.pi * it / cfg.iterations))
            dx, dy = (int(v) for v in torch.randint(least, jitter + 1, (2,), generator=generator))
            view = torch.roll(x, shifts=(dx, dy), dims=(2, 3))
            if cfg.flip and bool(torch.rand(1, generator=generator) < 0.5):
                view = view.flip(3)
            logits = observer(view)
            per_image = F.cross_entropy(logits, classes, reduction="none")
            ce = torch.zeros(bn_loss.num_groups, device=device).index_add(0, groups, per_image)
            ce = (ce / bn_loss.group_sizes).sum()
            loss = ce + cfg.r_bn * bn_loss.pop()
            if not image_step(optimizer, loss, x, (low, high), counters,
                              budget=(cfg.iterations, f"lr_img (now {cfg.lr_img}) or r_bn (now {cfg.r_bn})")):
                tqdm.write(f"recover: iteration {it}: non-finite loss or gradient, step skipped")
                continue
            if history is not None:
                history.append(loss.item())
            if seconds is not None:
                seconds.append(round(time.perf_counter() - started, 4))
    finally:
        bn_loss.remove()
    return x.detach().cpu()


def image_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, x: torch.Tensor,
               bounds: tuple[torch.Tensor, torch.Tensor], counters: dict,
               budget: tuple[int, str] | None = None) -> bool:
    """One optimizer step of recovered pixels x: backward, step, clip to [low, high]. A non-finite loss or image
    gradient skips the step (counted in counters["skipped_nonfinite"]); returns whether it stepped. `budget`: the
    optimization's number of steps and what to lower when it blows up; once more than MAX_SKIPPED_SHARE of those
    steps were skipped, the recovery did not do what its settings say (the synthesis loop's rule, engine/loop.py),
    and Diverged stops it there instead of writing images that were hardly optimized."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if not (torch.isfinite(loss) and x.grad is not None and torch.isfinite(x.grad).all()):
        counters["skipped_nonfinite"] += 1
        if budget is not None and counters["skipped_nonfinite"] > MAX_SKIPPED_SHARE * budget[0]:
            raise Diverged(f"recovery skipped {counters['skipped_nonfinite']} of its {budget[0]} image steps as "
                           f"non-finite (more than {MAX_SKIPPED_SHARE:.0%}): lower {budget[1]} and rerun (no "
                           f"artifact was written)")
        return False
    optimizer.step()
    with torch.no_grad():
        x.copy_(torch.maximum(torch.minimum(x, bounds[1]), bounds[0]))
    return True


def pixel_range(data) -> tuple[torch.Tensor, torch.Tensor]:
    """Valid pixel range [0, 1] in the dataset's normalized space."""
    mean, std = torch.tensor(data.mean), torch.tensor(data.std)
    return (0 - mean) / std, (1 - mean) / std


@torch.no_grad()
def logits_of(model: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    device = next(model.parameters()).device
    model.eval()
    return torch.cat([model(images[i:i + batch_size].to(device)).cpu() for i in range(0, len(images), batch_size)])


def recover_recorded(observer: nn.Module, images: torch.Tensor, classes: torch.Tensor, groups: torch.Tensor,
                     cfg: RecoveryConfig, **options) -> tuple[torch.Tensor, dict]:
    """recover() (none with cfg.iterations 0) and its record for the artifact's meta: loss history, seconds per
    iteration, skipped steps. `options`: recover's keyword arguments (pixel_range, generator, progress)."""
    history: list[float] = []
    seconds: list[float] = []
    counters: dict[str, int] = {"skipped_nonfinite": 0}
    if cfg.iterations == 0:
        return images, {"loss_history": history, "iteration_seconds": seconds, **counters}
    here = distributed.joined()
    if here.size == 1:
        images = recover(observer, images, classes, groups, cfg, history=history, counters=counters, seconds=seconds,
                         **options)
        return images, {"loss_history": history, "iteration_seconds": seconds, **counters}
    # under torchrun each rank recovers its share of the groups (independent batches: their own statistics, the same
    # augmentation draws), and every rank gathers the whole set; the loss of an iteration is the sum over ranks
    mine = torch.isin(groups, torch.unique(groups)[here.rank::here.size])
    local_groups = torch.unique(groups[mine], return_inverse=True)[1]
    part = recover(observer, images[mine], classes[mine], local_groups, cfg, history=history, counters=counters,
                   seconds=seconds, **options) if bool(mine.any()) else images[mine]
    images = images.clone()
    shares = distributed.gather((torch.nonzero(mine).squeeze(1), part, history, seconds, counters))
    for index, recovered, *_ in shares:
        images[index] = recovered
    histories = [share[2] for share in shares if share[2]]
    return images, {"loss_history": [sum(values) for values in zip(*histories, strict=False)],
                    "iteration_seconds": [max(values) for values in zip(*(s[3] for s in shares if s[3]), strict=False)],
                    "skipped_nonfinite": sum(share[4]["skipped_nonfinite"] for share in shares),
                    "ranks": here.size}


class TrainsClassifiers(Protocol):
    """What of a method's config trains its observers/teachers (RecoveryConfig's fields of the same names)."""
    width: int
    depth: int
    epochs: int
    lr: float
    model_cache: str | None


def trained_classifier(data, cfg: TrainsClassifiers, *, model: str, remedy: str, seed: int, role: str, device: str,
                       progress: bool, workdir) -> nn.Module:
    """Observer, teacher or squeezed model: trained on the long-tailed set (with `remedy`), kept in the run's
    checkpoint directory so a rerun skips the training."""
    options = network_options(model, cfg.width, cfg.depth)
    scaling = getattr(cfg, "remedy_scaling", "weight_sum")
    compiled = bool(getattr(cfg, "compile", False))
    settings = {"model": model, "options": options, "epochs": cfg.epochs, "lr": cfg.lr, "seed": seed,
                "remedy": remedy, "data": data.describe(),
                **({"remedy_scaling": scaling} if scaling != "weight_sum" and remedy == "debias_curriculum" else {}),
                **({"compile": True} if compiled else {})}
    # (scaling only changes debias_curriculum; keys made before it existed, weight_sum's, stay as they were)

    def build():
        return models.create(model, channels=data.channels, num_classes=data.num_classes, im_size=data.im_size,
                             **options).to(device)

    def train(checkpoint):
        return train_classifier(data, model=model, options=options, epochs=cfg.epochs, lr=cfg.lr, remedy=remedy,
                                seed=seed, device=device, progress=progress, desc=role, scaling=scaling,
                                compile=compiled, checkpoint=checkpoint)

    return cached_classifier(workdir, role, settings, build, train, shared=cfg.model_cache)


def class_major_layout(num_classes: int, ipc: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(class, group) of every synthetic image in class-major order; group g holds image g of every class, so a
    group is one SRe2L batch with one image per class."""
    return torch.arange(num_classes).repeat_interleave(ipc), torch.arange(ipc).repeat(num_classes)


def teacher_meta(model: str, options: dict, temperature: float) -> dict:
    return {"model": model, "options": options, "temperature": temperature}


def cached_classifier(workdir, name: str, settings: dict, build, train, shared=None) -> nn.Module:
    """A trained observer/teacher, kept in <workdir>/.checkpoint/<name>.safetensors so that a rerun after a crash
    skips its training, and, with `shared`, in <shared>/<fingerprint>.safetensors so that other runs with the same
    training settings (model, width, epochs, lr, seed, remedy, data) load it instead of training again: sre2l's
    squeezed model is unilevel's observer with remedy 'none'. A file made with other settings is never loaded. Runs
    side by side that ask for the same shared model wait for the one that trains it (a file lock beside it). Under
    torchrun the ranks train it together (data-parallel, train_model), rank 0's look decides whether a kept
    file is loaded, and rank 0 alone writes. `train(checkpoint)` gets a PartialRun beside the first kept path
    (<name>.<fingerprint>.partial.pt): a training stopped part way (a wide observer trains for hours on a CPU)
    resumes at its last saved epoch; the file goes once the model is kept."""
    from safetensors.torch import load_file, safe_open

    from ltdistill.engine.loop import CHECKPOINT_DIR
    from ltdistill.evaluate.runstore import PartialRun
    from ltdistill.keys import fingerprint
    from ltdistill.safe_io import exclusive
    from ltdistill.synthetic import atomic_save_tensors

    key = fingerprint(settings)
    paths = [] if workdir is None else [Path(workdir) / CHECKPOINT_DIR / f"{name}.safetensors"]
    paths += [] if shared is None else [Path(shared) / f"{key}.safetensors"]

    def kept(path: Path) -> bool:
        if not path.exists():
            return False
        with safe_open(str(path), "pt") as f:
            return f.metadata().get("fingerprint") == key

    def made(directory: Path) -> Path:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise BadInput(f"cannot write the trained {name} to {directory}: {e.strerror or e}") from None
        return directory

    main = distributed.joined().main
    # runs side by side (bench cells) that ask for one shared model: the first trains it, the others wait, then load
    # (a cache this process cannot write to is only read: no lock to take)
    locked = shared is not None and main and os.access(made(Path(shared)), os.W_OK)
    with exclusive(Path(shared) / f".{key}.lock") if locked else contextlib.nullcontext():
        found = distributed.from_main(next((str(p) for p in paths if kept(p)), None))
        if found is not None:
            net = build()
            net.load_state_dict(load_file(found, device=str(next(net.parameters()).device)))
            return net.eval()
        partial = PartialRun(paths[0].with_name(f"{name}.{key}.partial.pt") if paths else None, writes=main)
        net = train(partial)
        state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
        metadata = {"fingerprint": key, "role": name, "settings": json.dumps(settings, default=str)}
        for path in paths if main else []:
            atomic_save_tensors(state, made(path.parent) / path.name, metadata=metadata)
        partial.discard()
    return net
