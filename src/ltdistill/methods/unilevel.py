"""The uni-level long-tailed framework (Cui et al., "Rethinking Long-tailed Dataset Distillation: A Uni-Level
Framework with Unbiased Recovery and Relabeling", arXiv 2511.18858): SRe2L-style recovery and relabeling made
unbiased on long-tailed data. Every component is a switch, so the ablation is a rerun:

1. `remedy`: observer (recovery) and teacher (relabeling) trained with a long-tail remedy. Default
   'debias_curriculum', the paper's L_debias (CE blended into n_c^-q-weighted CE by (t/T)^2). 'glmc' is the paper's
   whole loss L = gamma_1 L_robust + gamma_2 L_debias (its Section 3.1) as GLMC trains it (families/glmc.py: mixup and
   cutmix views with a class-reweighted partner batch, a second head, the mixed-view consistency term); the paper
   gives no gammas and no code, so it is an option beside the default the stored results were made with.
   'balanced_softmax' is the cheap standard alternative; 'none' is SRe2L's squeeze. The tail-weighted term is
   divided by the batch size, as GLMC's Trainer.py:43-44,112-120 does (`remedy_scaling='batch'`, default; equal to
   GLMC's loss on one unmixed view: tests/test_parity_recovery.py);
   'weight_sum' divides it by the batch's weight sum (F.cross_entropy(weight=w)), several times larger on a
   head-heavy batch.
2. `recalibration`: BN statistics recomputed from one frozen pass over the long-tailed set with the paper's
   class-balanced dynamic momentum ('class_balanced'), or the plain exact average ('instance'), or 'off' (keep the
   training EMA). See recovery.recalibrate_bn.
3. `init`: 'multi_round' (the paper): per class, `crops` augmented views (random resized square crops of scale
   [crop_scale_min, 1] and flips; the unaugmented image is view 0) of up to `max_real_per_class` real images are
   scored by the teacher's confidence -CE(teacher(view), c). Each round, every real image offers its best unused
   view; of those, the most confident `confident_fraction` (at least as many as slots remain) are candidates, and
   picks are added greedily farthest (in the teacher's normalized features) from what is already chosen, until
   the round's offers or the slots run out. Head classes thus get one view per distinct image; a tail class with
   fewer than IPC images gets several different views per image over rounds. Decision: the farthest-point step is
   our reading of "high-confidence and diverse" (the paper's notes rank by confidence alone within a round).
   'real' (random real images) and 'noise' are the ablations.
4. Recovery against the (recalibrated) observer from that initialization (`iterations`, 0 = none), then soft
   relabeling with the teacher (its logits stored, its weights saved for per-batch relabeling at evaluation).
The component ablations on Fashion-MNIST-LT are in docs/results.md (suite fmnist-unilevel-cpu); the defaults stay
the paper's until a change wins on the validation holdout.
The paper's student loss (kappa1 CE + kappa2 MSE to the teacher's probabilities) has unknown kappas; the evaluator
uses the temperature-T KD loss of SRe2L/RDED for both methods so they are compared under one recipe.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from ltdistill.engine.method import Method
from ltdistill.evaluate.metrics import model_accuracy
from ltdistill.families.init import real_per_class
from ltdistill.families.recovery import (
    RecoveryConfig,
    class_major_layout,
    logits_of,
    network_options,
    pixel_range,
    recalibrate_bn,
    recover_recorded,
    teacher_meta,
    trained_classifier,
)
from ltdistill.params import Count, ModelName, NonNegative, Rate, Share
from ltdistill.synthetic import SyntheticSet
from ltdistill.train import embed


@dataclass(frozen=True)
class UnilevelConfig(RecoveryConfig):
    iterations: NonNegative = 500  # fewer than SRe2L's 1000: recovery starts from selected real views, not noise
    lr_img: Rate = 0.01  # from real views: SRe2L's 0.25 is made for noise and wipes out the selected views
    remedy: Literal["debias_curriculum", "none", "balanced_softmax", "glmc"] = "debias_curriculum"
    # what the tail-weighted term of debias_curriculum divides by (recovery.remedy_loss): the batch size, as GLMC's
    # Trainer.py:43-44,112-120 does (default), or the batch's weight sum (the default before it followed GLMC)
    remedy_scaling: Literal["batch", "weight_sum"] = "batch"
    recalibration: Literal["class_balanced", "instance", "off"] = "class_balanced"  # class_balanced | instance | off
    init: Literal["multi_round", "real", "noise"] = "multi_round"  # multi_round | real | noise
    crops: Count = 5  # augmented views per real image (RDED scripts: 5)
    crop_scale_min: Share = 0.5  # smallest crop area fraction (small images keep most of the object)
    confident_fraction: Share = 0.5  # share of a round's offers that are confident enough to be candidates
    max_real_per_class: Count = 300  # real images scored per class (RDED CIFAR-10: 300)
    teacher_model: ModelName = "convnet_bn"


def random_resized_crops(x: torch.Tensor, k: int, scale_min: float, generator: torch.Generator) -> torch.Tensor:
    """(N, C, H, W) -> (N, k, C, H, W): view 0 the image itself, the others square crops of area fraction in
    [scale_min, 1] at a random position, resized back, flipped with probability 1/2."""
    n = len(x)
    side = torch.sqrt(torch.empty(n, k).uniform_(scale_min, 1.0, generator=generator))
    side[:, 0] = 1.0
    shift = (torch.rand(n, k, 2, generator=generator) * 2 - 1) * (1 - side)[..., None]
    flip = torch.where(torch.rand(n, k, generator=generator) < 0.5, -1.0, 1.0)
    flip[:, 0] = 1.0
    zero = torch.zeros(n, k)
    theta = torch.stack([torch.stack([side * flip, zero, shift[..., 0]], -1),
                         torch.stack([zero, side, shift[..., 1]], -1)], -2).view(n * k, 2, 3)
    repeated = x.to(theta.device).repeat_interleave(k, 0)
    grid = F.affine_grid(theta.to(x.dtype), list(repeated.shape), align_corners=False)
    views = F.grid_sample(repeated, grid, align_corners=False, padding_mode="border")
    return views.view(n, k, *x.shape[1:])


@torch.no_grad()
def multi_round_select(views: torch.Tensor, scores: torch.Tensor, features: torch.Tensor, ipc: int,
                       confident_fraction: float) -> tuple[torch.Tensor, int]:
    """Pick ipc views of one class. views (n, k, ...), scores (n, k) confidences, features (n, k, d) normalized.
    Returns (picked views (ipc, ...), distinct views picked); repeats cyclically only if all n*k views are used."""
    n, k = scores.shape
    used = torch.zeros(n, k, dtype=torch.bool)
    picked: list[tuple[int, int]] = []
    while len(picked) < ipc and not used.all():
        masked = scores.masked_fill(used, float("-inf"))
        best = masked.argmax(1)
        offer_rows = torch.nonzero(~used.all(1)).flatten()
        offer_scores = masked[offer_rows, best[offer_rows]]
        remaining = ipc - len(picked)
        keep = max(remaining, int(round(confident_fraction * len(offer_rows))))
        order = offer_scores.argsort(descending=True)[:keep]
        candidates = [(int(offer_rows[i]), int(best[offer_rows[i]])) for i in order]
        chosen_feats = [features[i, j] for i, j in picked]
        while candidates and len(picked) < ipc:
            if chosen_feats:
                bank = torch.stack(chosen_feats)
                dist = torch.stack([(bank - features[i, j]).norm(dim=1).min() for i, j in candidates])
                pos = int(dist.argmax())
            else:
                pos = 0  # the most confident view starts the set
            i, j = candidates.pop(pos)
            picked.append((i, j))
            chosen_feats.append(features[i, j])
            used[i, j] = True
        for i in offer_rows.tolist():  # an image's offered view is spent for this round either way
            used[i, int(best[i])] = True
    distinct = len(picked)
    picked = [picked[t % distinct] for t in range(ipc)]
    return torch.stack([views[i, j] for i, j in picked]), distinct


class Unilevel(Method):
    name = "unilevel"
    labels = "soft"
    Config = UnilevelConfig

    def _distill(self, data, ipc, *, experts, seed, progress, device, workdir):
        cfg = self.config
        common = {"remedy": cfg.remedy, "device": device, "progress": progress, "workdir": workdir}
        started = time.perf_counter()
        observer = trained_classifier(data, cfg, model=cfg.model, seed=seed, role="observer", **common)
        teacher = trained_classifier(data, cfg, model=cfg.teacher_model, seed=seed + 1, role="teacher", **common)
        models_seconds = time.perf_counter() - started  # trained here, or loaded from a checkpoint / model_cache
        accuracy = {"observer": model_accuracy(observer, data), "teacher": model_accuracy(teacher, data)}
        if cfg.recalibration != "off":
            recalibrate_bn(observer, data.train_x, data.train_y, data.num_classes, mode=cfg.recalibration)
        generator = torch.Generator().manual_seed(seed)
        start, distinct = self._initial_images(data, ipc, teacher, generator, device)
        classes, groups = class_major_layout(data.num_classes, ipc)
        images, record = recover_recorded(observer, start, classes, groups, cfg, pixel_range=pixel_range(data),
                                          generator=generator, progress=progress)
        options = network_options(cfg.teacher_model, cfg.width, cfg.depth)
        return SyntheticSet(images, logits_of(teacher, images), meta={
            "classes": classes.tolist(), **record, "models_seconds": models_seconds, "label_regime": "relabel",
            "distinct_per_class": distinct, "teacher": teacher_meta(cfg.teacher_model, options, cfg.temperature),
            "models_accuracy": accuracy},
            teacher=teacher.state_dict())

    def _initial_images(self, data, ipc, teacher, generator, device):
        cfg = self.config
        if cfg.init == "real":
            images, _, distinct = real_per_class(data, ipc, generator)
            return images, distinct
        if cfg.init == "noise":
            return torch.randn((ipc * data.num_classes, *data.train_x.shape[1:]), generator=generator), None
        chosen, distinct = [], []
        for c in range(data.num_classes):
            pool = data.indices_of(c)
            pool = pool[torch.randperm(len(pool), generator=generator)[:cfg.max_real_per_class]]
            views = random_resized_crops(data.train_x[pool], cfg.crops, cfg.crop_scale_min, generator)
            flat = views.flatten(0, 1)
            logits = logits_of(teacher, flat)
            scores = -F.cross_entropy(logits, torch.full((len(flat),), c), reduction="none")
            feats = F.normalize(embed(teacher, flat), dim=1).view(len(pool), cfg.crops, -1)
            picked, n = multi_round_select(views, scores.view(len(pool), cfg.crops), feats, ipc,
                                           cfg.confident_fraction)
            chosen.append(picked)
            distinct.append(n)
        return torch.cat(chosen), distinct
