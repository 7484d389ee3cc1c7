"""The shared core of trajectory matching (MTT, DATM, LTDD): one unrolled student, one outer loop.

Matching loss (MTT, Cazenavette et al. 2022, Eq. 2):
    L = || w_N - theta*_{t+M} ||^2 / || theta*_t - theta*_{t+M} ||^2,
    w_0 = theta*_t,  w_{i+1} = w_i - alpha * grad l(w_i; A(X_{b_i}), Y_{b_i})
with alpha the learnable student lr and A the DSA augmentation. The student is the registry's model evaluated at
a flat parameter vector through torch.func.functional_call (no hand-flattened copy of each model: experts/student.py,
beside the experts it replays).

Two ways to get dL/dX (option `gradient`):
- "full_bptt": back-propagation through the whole unroll (MTT, DATM.py); memory grows with syn_steps.
- "tesla_frozen_weights": the constant-memory gradient of the LTDD reference (TESLA-style, DAM-ED_tesla.py):
  the unroll runs without a graph; afterwards each step's gradient g_i is recomputed at the stored w_i with a
  graph to (X_{b_i}, Y_{b_i}) and back-propagated with dL/dg_i = -2 alpha (w_N - theta*_{t+M}) / D. The w_i are
  held constant, i.e. paths through earlier steps' weights (Hessian terms) are dropped; exact for syn_steps = 1.
  The lr gradient is exact given the recorded gradients.
Masks: `trainable` restricts which parameters the student moves (LTDD classifier phase: head only), `matched`
which enter the distance (LTDD representation phase: backbone only).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ltdistill import distributed
from ltdistill.data.augment import DSA, image_shape
from ltdistill.engine.loop import Learnable, run_synthesis
from ltdistill.errors import BadInput
from ltdistill.experts.student import FlatModel, open_experts, student_model
from ltdistill.train import forward_precision

GRADIENT_MODES = ("full_bptt", "tesla_frozen_weights")


def student_loss(logits: torch.Tensor, targets: torch.Tensor, class_weights: torch.Tensor | None = None):
    """Cross-entropy of the student on synthetic data: hard labels, or soft labels as logits (softmax targets);
    with class_weights w_k each class term is scaled (LTDD WeightedSoftCrossEntropy, w_k = n_k / N)."""
    if targets.ndim == 1 and class_weights is None:
        return F.cross_entropy(logits, targets)
    probs = F.one_hot(targets, logits.shape[1]).float() if targets.ndim == 1 else F.softmax(targets, dim=1)
    if class_weights is not None:
        probs = probs * class_weights
    return -(probs * F.log_softmax(logits, dim=1)).sum(1).mean()


class Batches:
    """Synthetic minibatches: chunks of a random permutation, re-drawn when used up (MTT distill.py)."""

    def __init__(self, n: int, batch_size: int | None, generator: torch.Generator):
        self.n, self.size, self.generator = n, batch_size or n, generator
        self.order: list[torch.Tensor] = []

    def next(self) -> torch.Tensor:
        if not self.order:
            self.order = list(torch.randperm(self.n, generator=self.generator).split(self.size))
        return self.order.pop(0)


def match_trajectory(flat_model: FlatModel, start: torch.Tensor, target: torch.Tensor, images: torch.Tensor,
                     labels: torch.Tensor, syn_lr: torch.Tensor, *, syn_steps: int, batch_syn: int | None,
                     dsa: DSA | None, generator: torch.Generator, class_weights: torch.Tensor | None = None,
                     trainable: torch.Tensor | None = None, matched: torch.Tensor | None = None,
                     gradient: str = "full_bptt", weight: float = 1.0, skip_above: float | None = None) -> float:
    """Unroll the student from `start` and accumulate weight * dL/d(images, labels, syn_lr) into their .grad.
    Returns the matching loss; when it exceeds skip_above nothing is accumulated (DATM's threshold).

    Only the `trainable` entries are variables of the unroll, so a head-only student (LTDD's classifier phase)
    differentiates with respect to the head alone and never computes backbone weight gradients."""
    if gradient not in GRADIENT_MODES:
        raise ValueError(f"gradient must be one of {GRADIENT_MODES}, got {gradient!r}")
    batches = Batches(len(images), batch_syn, generator)
    steps = []
    for _ in range(syn_steps):
        idx = batches.next()
        aug = dsa.sample(len(idx), image_shape(images), generator, images.device) if dsa else None
        steps.append((idx, aug))

    start = start.detach()
    moving = None if trainable is None else torch.nonzero(trainable.bool()).squeeze(1)
    # The parameters that do not move enter the student as constants (not as slices of a vector that depends on v),
    # so autograd never computes their weight gradients: the head-only phase costs a backbone forward (plus the
    # backward to the images when the graph is kept), not a full training step.
    fixed = None
    if trainable is not None:
        masks = flat_model.views(trainable)
        fixed = {n: t for n, t in flat_model.views(start).items() if not bool(masks[n].all())}
        if any(bool(masks[n].any()) for n in fixed):
            raise ValueError("trainable must cover whole parameters (FlatModel.mask)")

    def assemble(v):  # the full parameter vector with the moving entries replaced by v (differentiable in v)
        return v if moving is None else start.index_put((moving,), v)

    here = distributed.joined()  # under torchrun each rank computes its share of every minibatch (rows r::size)

    def local_gradient(v, idx, aug, create_graph):
        x = images[idx]
        x = dsa.apply(x, aug) if dsa else x
        if here.size == 1:
            loss = student_loss(flat_model(v, x, fixed), labels[idx], class_weights)
            return torch.autograd.grad(loss, v, create_graph=create_graph)[0]
        rows = torch.arange(len(idx), device=x.device)[here.rank::here.size]
        if len(rows) == 0:  # a minibatch smaller than the world: this rank adds nothing, in a graph like the others'
            return v * 0
        loss = student_loss(flat_model(v, x[rows], fixed), labels[idx][rows], class_weights) * len(rows) / len(idx)
        return torch.autograd.grad(loss, v, create_graph=create_graph)[0]

    def step_gradient(v, idx, aug, create_graph):  # the whole minibatch's gradient, on every rank
        return distributed.summed(local_gradient(v, idx, aug, create_graph), differentiable=create_graph)

    diff0 = start - target
    denom = (diff0.square() * matched).sum() if matched is not None else diff0.square().sum()
    v0 = start if moving is None else start[moving]

    def distance(residual):
        sq = residual.square()
        return (sq * matched).sum() / denom if matched is not None else sq.sum() / denom

    leaves = [t for t in (images, labels, syn_lr) if t.requires_grad]
    # every rank holds the whole loss: each backpropagates 1/size of it and the leaves' gradients are summed
    share = weight / here.size
    if gradient == "full_bptt":
        v = v0.clone().requires_grad_(True)
        for idx, aug in steps:
            v = v - syn_lr * step_gradient(v, idx, aug, create_graph=True)
        loss = distance(assemble(v) - target)
        if skip_above is None or loss.item() <= skip_above:
            with distributed.reduced_gradients(leaves):
                (share * loss).backward()
        return loss.item()

    v = v0.clone()
    weights_at_step, total = [], torch.zeros_like(v)
    for idx, aug in steps:
        weights_at_step.append(v)
        g = step_gradient(v.requires_grad_(True), idx, aug, create_graph=False)
        total += g
        v = (v - syn_lr.detach() * g).detach()
    # w_N - target with the recorded gradients fixed: exact as a function of syn_lr
    residual = diff0 - syn_lr * (total if moving is None else torch.zeros_like(start).index_put((moving,), total))
    loss = distance(residual)
    if skip_above is not None and loss.item() > skip_above:
        return loss.item()
    with distributed.reduced_gradients(leaves):
        (share * loss).backward(inputs=[syn_lr])
        d_loss_d_w = -2 * syn_lr.detach() * residual.detach() / denom * weight
        if matched is not None:
            d_loss_d_w = d_loss_d_w * matched
        d_loss_d_g = d_loss_d_w if moving is None else d_loss_d_w[moving]
        pixels = [t for t in (images, labels) if t.requires_grad]
        if pixels:  # none when the pixels are frozen and the labels hard: only syn_lr learns
            for v_i, (idx, aug) in zip(weights_at_step, steps, strict=True):  # each rank: its rows' share
                g = local_gradient(v_i.detach().requires_grad_(True), idx, aug, create_graph=True)
                (g * d_loss_d_g).sum().backward(inputs=pixels)
    return loss.item()


def pixels_and_lr(images: torch.Tensor, cfg, device: str) -> dict[str, Learnable]:
    """The learnables every trajectory method has: the pixels (SGD, momentum 0.5, as MTT) and the student lr alpha
    (initialized at lr_teacher). At lr_img 0 the pixels are frozen: the unroll then never differentiates with
    respect to the images (LTDD's head-only phase skips the backward through the backbone), same set, less work."""
    return {"images": Learnable(images.to(device), cfg.lr_img, 0.5, frozen=cfg.lr_img == 0),
            "lr": Learnable(torch.tensor(cfg.lr_teacher, device=device), cfg.lr_lr, 0.5)}


def start_window_upper(initial: int, final: int, it: int, sequential: bool, expansion_end: int) -> int:
    """The exclusive upper bound of the start-epoch window at iteration `it`: with Sequential Generation it grows
    linearly from `initial` to `final` over `expansion_end` iterations, else it is `final` (DATM distill/DATM.py,
    LTDD distill/DAM-ED_tesla.py l.681-684: Upper_Bound)."""
    if not sequential:
        return final
    return min(initial + int((final - initial) * it / expansion_end), final)


def check_start_window(method: str, low: str, initial: str, final: str, values: dict, sequential: bool) -> None:
    """The window [low, upper) must hold a start epoch from the first iteration on: the references draw
    randint(low, Upper_Bound), which fails when low >= Upper_Bound; a config that would draw none is refused by
    name. The fields are named as the method's config names them; `values` maps those names to their values."""
    first = min(values[initial], values[final]) if sequential else values[final]
    bound = f"min({initial}, {final}) = {first}" if sequential else f"{final} = {first}"
    if values[low] >= first:
        raise BadInput(f"{method}.{low} = {values[low]} must be below the start window's upper bound {bound} "
                       f"(start epochs are drawn from [{low}, upper))")


class TrajectorySampler:
    """Draws (expert, start epoch) pairs and caches loaded trajectories."""

    def __init__(self, buffer, kind: str, generator: torch.Generator, device: str, cache_size: int = 64):
        self.buffer, self.kind, self.generator, self.device = buffer, kind, generator, device
        self.ids = buffer.finished(kind)
        self.cache: dict[int, torch.Tensor] = {}
        self.cache_size = cache_size

    def trajectory(self, i: int) -> torch.Tensor:
        if i not in self.cache:
            if len(self.cache) >= self.cache_size:
                self.cache.pop(next(iter(self.cache)))
            self.cache[i] = self.buffer.load(self.kind, i).to(self.device)
        return self.cache[i]

    @property
    def epochs(self) -> int:
        return self.trajectory(self.ids[0]).shape[0] - 1

    def sample(self, low: int, high: int, span: int) -> tuple[torch.Tensor, torch.Tensor]:
        """start = trajectory[t], target = trajectory[t + span], t uniform in [low, high) (high exclusive, as
        randint in the references)."""
        i = self.ids[int(torch.randint(len(self.ids), (1,), generator=self.generator))]
        t = int(torch.randint(low, high, (1,), generator=self.generator))
        traj = self.trajectory(i)
        return traj[t], traj[t + span]

    def finals(self, limit: int | None = None) -> list[torch.Tensor]:
        return [self.trajectory(i)[-1] for i in self.ids[:limit]]


class Matching:
    """What every trajectory method sets up and runs: the checked expert buffer, the data as the experts saw it,
    one RNG for everything random (so a resumed run repeats an uninterrupted one), the student model, and the
    checkpointed outer loop."""

    def __init__(self, experts, data, seed: int, device: str, kind: str | None = "standard", *,
                 compile: bool = False, precision: str = "float32"):
        self.buffer, self.data = open_experts(experts, data, kind)
        self.generator = torch.Generator().manual_seed(seed)
        self.flat_model = student_model(self.buffer, self.data, device, compile=compile)
        self.device, self.precision = device, precision

    def sampler(self, kind: str, name: str, high: int, span: int) -> TrajectorySampler:
        sampler = TrajectorySampler(self.buffer, kind, self.generator, self.device)
        check_window(name, high, span, sampler.epochs)
        return sampler

    def match(self, state, labels, start, target, cfg, dsa, *, syn_steps: int, **options) -> float:
        """match_trajectory on the state's images and lr, with the config's student settings (batch_syn, gradient)
        and this run's generator; options are match_trajectory's keywords (class_weights, matched, ...). Under
        `precision` bfloat16 the whole unroll, its backward passes included, runs in autocast."""
        with forward_precision(self.device, self.precision):
            return match_trajectory(self.flat_model, start, target, state["images"], labels, state["lr"],
                                    syn_steps=syn_steps, batch_syn=cfg.batch_syn, dsa=dsa, generator=self.generator,
                                    gradient=cfg.gradient, **options)

    def run(self, method, state, step, *, ipc: int, seed: int, workdir, progress: bool, make_set=None) -> dict:
        """Optimize with checkpoints in workdir; return the metadata every trajectory artifact records."""
        settings = {"ipc": ipc, "seed": seed, "data": self.data.describe(), "experts": str(self.buffer.directory)}
        meta = run_synthesis(method, state, step, settings=settings, workdir=workdir, progress=progress,
                             make_set=make_set)
        return {"zca_eps": self.data.zca_eps, **meta}


def check_window(name: str, high: int, span: int, epochs: int) -> None:
    if high - 1 + span > epochs:
        raise BadInput(f"{name}: start epochs up to {high - 1} plus expert_epochs {span} exceed the experts' "
                       f"{epochs} epochs")
