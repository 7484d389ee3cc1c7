"""Many small models trained at once: K models of one architecture stacked (torch.func.stack_module_state) and
trained through one vmapped forward and backward, so a wide device runs the N evaluation runs of a set as one
job instead of N small ones that leave it mostly idle.

Each model keeps its own generator and draws exactly what `train.train_model` draws for it, in the same order (its
epoch order, then its augmentation batch by batch), so K models trained together are the K sequential runs up to
float rounding (batched convolutions sum in another order). The optimizer is the sequential one over the stacked
tensors: SGD with momentum and weight decay, and AdamW, act element by element, so one optimizer over a stack
equals K optimizers. A model whose loss turns non-finite is reported with that epoch, as its sequential run stops
there (its weights are no longer numbers, and training it on changes nothing that scores); the others go on.

What this path does not cover (`unsupported` names it, and the caller trains one after another): models with
BatchNorm running statistics (an in-place buffer update per model, which vmap does not batch), GSAM, a relabeling
teacher or mixup, compiled training and per-run checkpoints. The choice (`runs_together`): "auto" trains together
on a CUDA device and one by one on a CPU, where a stack of small models was not measured faster than a loop.
"""

from __future__ import annotations

import copy
import time

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from tqdm import tqdm

from ltdistill.data.augment import DSA
from ltdistill.train import TrainConfig, augmented, classification_loss, epoch_order, make_optimizer, set_epoch_lr

CHOICES = ("auto", "on", "off")


def chosen(runs_together: str, device: str) -> bool:
    """Whether `runs_together` ("auto" | "on" | "off") trains together on `device`: auto means a CUDA device."""
    return runs_together == "on" or (runs_together == "auto" and torch.device(device).type == "cuda")


def unsupported(model: nn.Module, config: TrainConfig) -> str | None:
    """Why models like `model` cannot train together under `config`, or None when they can."""
    if any(getattr(m, "track_running_stats", False) for m in model.modules()):
        return "its BatchNorm keeps running statistics"
    for field, why in (("gsam_rho", "GSAM"), ("mixup", "mixup"), ("cutmix", "CutMix"),
                       ("compile", "compiled training")):
        if getattr(config, field):
            return f"{why} is not batched"
    return None


def train_together(models: list[nn.Module], images: torch.Tensor, targets: torch.Tensor, config: TrainConfig, *,
                   generators: list[torch.Generator], dsa: DSA | None = None, progress: bool = False,
                   desc: str = "train together", on_epoch=None) -> list[int | None]:
    """Train `models` (one architecture, on one device) in place on (images, targets), model k drawing through
    generators[k] as train_model would; returns, per model, the epoch (1-based) its training diverged in, or None.
    `on_epoch(epochs_done, seconds)` runs after each epoch (the pace behind the long-run warning)."""
    reason = unsupported(models[0], config)
    if reason is not None:
        raise ValueError(f"these models cannot train together: {reason}")
    if len(generators) != len(models):
        raise ValueError(f"{len(models)} models need as many generators, got {len(generators)}")
    device = next(models[0].parameters()).device
    images, targets = images.to(device), targets.to(device)
    dsa = dsa or DSA()
    for model in models:
        model.train()
    params, buffers = stack_module_state(models)  # type: ignore[arg-type]
    template = copy.deepcopy(models[0]).to("meta")

    def forward(p, b, x):
        return functional_call(template, (p, b), (x,))

    batched = vmap(forward)
    optimizer = make_optimizer(list(params.values()), config)
    diverged: list[int | None] = [None] * len(models)
    for epoch in tqdm(range(config.epochs), desc=desc, disable=not progress, leave=False):
        started = time.perf_counter()
        set_epoch_lr(optimizer, config, epoch)
        orders = [epoch_order(targets.cpu(), config, g).to(device) for g in generators]
        last = None
        for start in range(0, len(orders[0]), config.batch_size):
            picks = [order[start:start + config.batch_size] for order in orders]
            batches = []
            for idx, generator in zip(picks, generators, strict=True):
                x = images[idx]
                if config.augment:
                    x = augmented(x, config, dsa, generator)
                batches.append(x)
            logits = batched(params, buffers, torch.stack(batches))
            last = torch.stack([classification_loss(logits[k], targets[idx], config.temperature)
                                for k, idx in enumerate(picks)])
            optimizer.zero_grad(set_to_none=True)
            last.sum().backward()
            optimizer.step()
        if last is not None:
            for k in torch.nonzero(~torch.isfinite(last.detach())).flatten().tolist():
                diverged[k] = diverged[k] or epoch + 1
        if on_epoch is not None:
            on_epoch(epoch + 1, time.perf_counter() - started)
    for k, model in enumerate(models):
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(params[name][k])
            for name, b in model.named_buffers():
                b.copy_(buffers[name][k])
        if diverged[k] is None and not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
            diverged[k] = config.epochs
    return diverged
