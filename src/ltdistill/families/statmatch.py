"""EDC's statistic matching (Shao et al., "Elucidating the Design Space of Dataset Condensation", NeurIPS 2024;
shaoshitong/EDC Branch_CIFAR_10 at 80116a7, recover/recover.py and recover/utils.py): the recovery loss of SRe2L
widened to every Conv2d input as well as every BatchNorm input, with patch statistics, a running mean of the
synthetic statistics, and a category-aware half.

Statistics of a hooked input a (B x C x H x W) of one observer (utils.py:194-206, 384-414):
- per channel: mean and biased variance over (b, h, w) of the batch;
- patches (Conv inputs only): a resized bilinearly to the next multiple of 4 in each side and cut into 4x4 patches;
  per patch, mean and biased variance over (b, c, 4, 4);
- targets from the real training set: a BatchNorm's own running mean/var (global) and, for each class, the mean
  over the class's images of each image's channel statistics over (h, w); a Conv input's global statistics are the
  size-weighted mean of the per-batch statistics of a pass over the real set (batches of 64, RandomCrop pad 4 +
  flip, recover.py:155-168), its class ones the class means of each image's channel and patch statistics.
Per layer, the synthetic statistic s enters as EMA + s - s.detach() (its value the running mean with momentum 0.8,
started at 0 as the reference's float 0. starts it; its gradient that of s), and (utils.py:208-230, 475-516)
  r_l = 1/2 sum ||G - s|| + 1/2 sum ||C(y) - s||     (plain L2 norms over the statistic's entries)
G the global targets, C(y) the class targets averaged over the batch's labels (its label frequencies). The
recovery loss of an iteration is CE(observer(x), y) + r_loss sum_l w_l r_l, w = 10 for the first hooked module
(the image itself), 1 elsewhere (recover.py:252-277). The "soft category-aware matching" of the paper is this
fixed half-and-half mix of the global and the class term (`category_mix`).
Official quirk kept by default: the class patch statistics are written with mean and variance swapped
(utils.py:370-373) and read back by name, so the class patch-variance target is the class patch mean and the other
way round (`class_patch_targets="swapped"`; "as_named" gives each its own).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

PATCH = 4
CLASS_PATCH_TARGETS = ("swapped", "as_named")


def hooked_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every BatchNorm2d and Conv2d of the model in named_modules order (recover.py:109-133)."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, (nn.BatchNorm2d, nn.Conv2d))]


def _resized(a: torch.Tensor) -> torch.Tensor:
    """a resized to sides rounded up to a multiple of 4 (utils.py:30-33 div_four_mul), bilinear."""
    h, w = a.shape[2:]
    size = (-(-h // PATCH) * PATCH, -(-w // PATCH) * PATCH)
    return a if size == (h, w) else F.interpolate(a, size=size, mode="bilinear", align_corners=False)


def batch_patches(a: torch.Tensor) -> torch.Tensor:
    """(patches, b * c * 16): the entries of each 4x4 patch over the whole batch ("b c (u h) (v w) -> (u v)
    (b c h w)")."""
    a = _resized(a)
    b, c, h, w = a.shape
    return a.reshape(b, c, h // PATCH, PATCH, w // PATCH, PATCH).permute(2, 4, 0, 1, 3, 5).reshape(
        (h // PATCH) * (w // PATCH), -1)


def image_patches(a: torch.Tensor) -> torch.Tensor:
    """(b, patches, c * 16): the entries of each image's 4x4 patches ("b c (u h) (v w) -> b (u v) (c h w)")."""
    a = _resized(a)
    b, c, h, w = a.shape
    return a.reshape(b, c, h // PATCH, PATCH, w // PATCH, PATCH).permute(0, 2, 4, 1, 3, 5).reshape(
        b, (h // PATCH) * (w // PATCH), -1)


def batch_statistics(a: torch.Tensor, conv: bool) -> dict[str, torch.Tensor]:
    """The synthetic batch's statistics of one hooked input: channel mean/var, and patch mean/var for a Conv."""
    stats = {"mean": a.mean((0, 2, 3)), "var": a.transpose(0, 1).flatten(1).var(1, unbiased=False)}
    if conv:
        patches = batch_patches(a)
        stats.update(patch_mean=patches.mean(1), patch_var=patches.var(1, unbiased=False))
    return stats


@dataclass
class LayerTargets:
    """One hooked layer's targets: global (C,) / (P,) tensors and per-class (K, C) / (K, P) ones, by statistic."""
    conv: bool
    global_: dict[str, torch.Tensor]
    per_class: dict[str, torch.Tensor]


@torch.no_grad()
def real_statistics(model: nn.Module, batches, num_classes: int, total: int) -> dict[str, LayerTargets]:
    """The targets of every hooked layer from one pass of (images, labels) batches of the real set through `model`
    (eval mode): `total` is the number of real images (the weight of a batch in a global Conv statistic is its
    share of them)."""
    model.eval()
    layers = hooked_layers(model)
    sums: dict[str, dict[str, torch.Tensor]] = {name: {} for name, _ in layers}
    counts = torch.zeros(num_classes, dtype=torch.float64)
    current: dict[str, torch.Tensor] = {}

    def accumulate(name: str, key: str, value: torch.Tensor) -> None:
        sums[name][key] = sums[name][key] + value if key in sums[name] else value.clone()

    def hook(name: str, module: nn.Module):
        conv = isinstance(module, nn.Conv2d)

        def capture(_, inputs):
            a, labels = inputs[0], current["labels"]
            onehot = F.one_hot(labels, num_classes).to(a.dtype)  # (B, K): per-class sums of per-image statistics
            per_image = {"mean": a.mean((2, 3)), "var": a.flatten(2).var(2, unbiased=False)}
            if conv:
                patches = image_patches(a)
                per_image.update(patch_mean=patches.mean(2), patch_var=patches.var(2, unbiased=False))
                for key, value in batch_statistics(a, conv=True).items():
                    accumulate(name, f"global_{key}", value * len(a) / total)
            for key, value in per_image.items():
                accumulate(name, f"class_{key}", onehot.T @ value)
        return capture

    handles = [m.register_forward_pre_hook(hook(name, m)) for name, m in layers]
    try:
        for x, y in batches:
            current["labels"] = y
            model(x)
            counts += torch.bincount(y.cpu(), minlength=num_classes).double()
    finally:
        for h in handles:
            h.remove()
    targets = {}
    for name, module in layers:
        conv = isinstance(module, nn.Conv2d)
        found = sums[name]
        per_class = {k.removeprefix("class_"): v / counts.clamp_min(1).to(v)[:, None] for k, v in found.items()
                     if k.startswith("class_")}
        if conv:
            global_ = {k.removeprefix("global_"): v for k, v in found.items() if k.startswith("global_")}
        else:
            global_ = {"mean": module.running_mean.clone(), "var": module.running_var.clone()}  # type: ignore[union-attr, operator]
        targets[name] = LayerTargets(conv, global_, per_class)
    return targets


class StatisticMatcher:
    """The recovery hooks of one observer: after each forward, `terms` holds r_l of every hooked layer (module
    docstring) for the labels set in `labels`. The running means persist across forwards (and image batches), as
    the reference's hooks do."""

    def __init__(self, model: nn.Module, targets: dict[str, LayerTargets], *, momentum: float = 0.8,
                 category_mix: float = 0.5, class_patch_targets: str = "swapped"):
        self.targets, self.momentum, self.category_mix = targets, momentum, category_mix
        self.swap = class_patch_targets == "swapped"
        self.running: dict[tuple[str, str], torch.Tensor] = {}
        self.labels: torch.Tensor | None = None
        self.terms: list[torch.Tensor] = []
        self.handles = [m.register_forward_pre_hook(self._hook(name)) for name, m in hooked_layers(model)]

    def _hook(self, name: str):
        def match(_, inputs):
            assert self.labels is not None, "set StatisticMatcher.labels before the forward"
            target = self.targets[name]
            stats = batch_statistics(inputs[0], target.conv)
            class_keys = dict(zip(stats, stats, strict=True))
            if self.swap and target.conv:
                class_keys.update(patch_mean="patch_var", patch_var="patch_mean")
            global_term = class_term = inputs[0].new_zeros(())
            for key, value in stats.items():
                with torch.no_grad():
                    previous = self.running.get((name, key), 0.0)
                    self.running[name, key] = self.momentum * previous + (1 - self.momentum) * value
                blended = self.running[name, key] + value - value.detach()
                global_term = global_term + torch.norm(target.global_[key].to(value) - blended, 2)
                wanted = target.per_class[class_keys[key]].to(value)[self.labels].mean(0)
                class_term = class_term + torch.norm(wanted - blended, 2)
            self.terms.append((1 - self.category_mix) * global_term + self.category_mix * class_term)
        return match

    def pop(self, first_multiplier: float) -> torch.Tensor:
        """sum_l w_l r_l of the last forward (w = first_multiplier for the first hooked layer), and clear."""
        terms, self.terms = self.terms, []
        return sum((first_multiplier if i == 0 else 1.0) * t for i, t in enumerate(terms))  # type: ignore[return-value]

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def recover_matched(observers: list[nn.Module], matchers: list[StatisticMatcher], images: torch.Tensor,
                    classes: torch.Tensor, *, batch_size: int, iterations: int, lr: float, r_loss: float,
                    first_multiplier: float, pixel_range: tuple[torch.Tensor, torch.Tensor],
                    generator: torch.Generator, augment: bool = True, progress: bool = False,
                    history: list | None = None, counters: dict | None = None, features: list | None = None,
                    snapshots: list | None = None) -> torch.Tensor:
    """EDC's recovery (recover.py:192-303): the images, class-major, in consecutive batches of `batch_size`, each
    optimized for `iterations` steps by Adam (betas 0.5, 0.9) at lr 0.5 lr (1 + cos(pi t / iterations)); step t
    of the whole run (counted across batches) asks observer t mod K, on the batch under one RandomResizedCrop
    (0.08-1) + flip for all its images (augment), for CE + r_loss sum_l w_l r_l; pixels clipped to `pixel_range`
    after every step. A step with a non-finite loss or gradient is skipped and counted
    (counters["skipped_nonfinite"]). `history`, `features` and `snapshots` receive every step's loss, its
    statistic-matching term (before r_loss) and the batch after it. Returns the optimized images (CPU)."""
    from tqdm import tqdm

    from ltdistill.data.augment import resized_crop_flip
    from ltdistill.families.recovery import image_step

    counters = counters if counters is not None else {}
    counters.setdefault("skipped_nonfinite", 0)
    device = next(observers[0].parameters()).device
    low, high = (t.to(device, images.dtype).view(1, -1, 1, 1) for t in pixel_range)
    result = images.clone()
    turn = 0
    starts = range(0, len(images), batch_size)
    for start in tqdm(starts, desc="recover batches", disable=not progress, leave=False):
        x = images[start:start + batch_size].clone().to(device).requires_grad_(True)
        y = classes[start:start + batch_size].to(device)
        optimizer = torch.optim.Adam([x], lr=lr, betas=(0.5, 0.9), eps=1e-8)
        for it in range(iterations):
            for group in optimizer.param_groups:
                group["lr"] = 0.5 * lr * (1 + math.cos(math.pi * it / iterations))
            k, turn = turn % len(observers), turn + 1
            matchers[k].labels = y
            view = resized_crop_flip(x, generator, shared=True) if augment else x
            logits = observers[k](view)
            matched = matchers[k].pop(first_multiplier)
            loss = F.cross_entropy(logits, y) + r_loss * matched
            if not image_step(optimizer, loss, x, (low, high), counters, budget=(
                    iterations * len(starts), f"lr_img (now {lr}) or r_loss (now {r_loss})")):
                continue
            if history is not None:
                history.append(loss.item())
            if features is not None:
                features.append(matched.item())
            if snapshots is not None:
                snapshots.append(x.detach().cpu().clone())
        result[start:start + batch_size] = x.detach().cpu()
    return result
