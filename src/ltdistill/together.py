"""Many small models trained at once: K models of one architecture stacked (torch.func.stack_module_state) and
trained through one vmapped forward and backward, so a wide device runs the N evaluation runs of a set as one
job instead of N small ones that leave it mostly idle.

Each model keeps its own generator and draws exactly what `train.train_model` draws for it, in the same order (its
epoch order, then its augmentation batch by batch), so K models trained together are the K sequential runs up to
float rounding (batched convolutions sum in another order). The optimizer is the sequential one over the stacked
tensors: SGD with momentum and weight decay, and AdamW, act element by element, so one optimizer over a stack
equals K optimizers. A model whose loss turns non-finite is reported with that epoch, as its sequential run stops
there (its weights are no longer numbers, and training it on changes nothing that scores); the others go on.

A ConvNet (instance norm or none) runs its stack as one network of grouped convolutions (`grouped_forward`): the
K models' batches side by side along the channels, every layer one kernel for all K, the same arithmetic as K
separate networks. On a GPU, where a small model's step is bound by kernel launches, each layer then launches once
for the K models instead of K times; other architectures go through torch.func.vmap, which batches the same way but
pays its dispatch per operation. `stacking` picks the path ("auto": grouped where it applies).

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
from torch.nn import functional as F
from tqdm import tqdm

from ltdistill.data.augment import DSA, image_shape
from ltdistill.models.convnet import ConvNet
from ltdistill.models.registry import pool_if_possible
from ltdistill.train import TrainConfig, augmented, classification_loss, epoch_order, make_optimizer, set_epoch_lr

CHOICES = ("auto", "on", "off")
STACKINGS = ("auto", "grouped", "vmap")


def chosen(runs_together: str, device: str) -> bool:
    """Whether `runs_together` ("auto" | "on" | "off") trains together on `device`: auto means a CUDA device."""
    return runs_together == "on" or (runs_together == "auto" and torch.device(device).type == "cuda")


def unsupported(model: nn.Module, config: TrainConfig) -> str | None:
    """Why models like `model` cannot train together under `config`, or None when they can."""
    if any(getattr(m, "track_running_stats", False) for m in model.modules()):
        return "its BatchNorm keeps running statistics"
    for field, why in (("gsam_rho", "GSAM"), ("mixup", "mixup"), ("cutmix", "CutMix"),
                       ("compile", "compiled training"), ("ema_decay", "a parameter EMA"),
                       ("decay_matrices_only", "a weight decay by parameter group")):
        if getattr(config, field):
            return f"{why} is not batched"
    if config.precision != "float32":
        return f"{config.precision} training is not batched"
    return None


def groupable(model: nn.Module) -> bool:
    """Whether a stack of `model`s runs as one network of grouped convolutions: a ConvNet whose norm is GroupNorm
    (instance norm) or none."""
    if not isinstance(model, ConvNet):
        return False
    layers = [list(block.children()) for block in model.blocks]
    return all(isinstance(conv, nn.Conv2d) and conv.groups == 1 and isinstance(norm, (nn.GroupNorm, nn.Identity))
               for conv, norm, *_ in layers)


def grouped_forward(template: ConvNet, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Logits [K, B, classes] of K stacked ConvNets (`params` as stack_module_state gives them) on their own batches
    x [K, B, C, H, W], as one network: model k's images are channel group k, each convolution has groups=K and
    each model's GroupNorm groups become K times as many, so every layer is one kernel for the K models."""
    k, b = x.shape[:2]
    h = x.transpose(0, 1).reshape(b, -1, *x.shape[3:])
    last = len(template.blocks) - 1
    for i, block in enumerate(template.blocks):
        conv, norm, *_ = block.children()
        assert isinstance(conv, nn.Conv2d)  # groupable() checked it
        h = F.conv2d(h, params[f"blocks.{i}.0.weight"].flatten(0, 1), _flat(params.get(f"blocks.{i}.0.bias")),
                     conv.stride, conv.padding, conv.dilation, groups=k)  # type: ignore[arg-type]
        if isinstance(norm, nn.GroupNorm):
            h = F.group_norm(h, k * norm.num_groups, _flat(params.get(f"blocks.{i}.1.weight")),
                             _flat(params.get(f"blocks.{i}.1.bias")), norm.eps)
        h = pool_if_possible(F.relu(h), template.pool, last=i == last)
    features = h.reshape(b, k, -1).transpose(0, 1)  # [K, B, C*h*w], each model's flatten(1)
    return torch.baddbmm(params["classifier.bias"].unsqueeze(1), features, params["classifier.weight"].transpose(1, 2))


def augment_each(x: torch.Tensor, config: TrainConfig, dsa: DSA, generators: list[torch.Generator]) -> torch.Tensor:
    """Model k's batch x[k] under its own draw through generators[k], as train.augmented draws it. DSA's draws (one
    op a batch, its parameters per image) are taken on the host in model order, then each op is applied once to
    the batches of every model that drew it: a few kernels a step for all K models, not a few per model."""
    if config.augmentation != "dsa":
        return torch.stack([augmented(batch, config, dsa, g) for batch, g in zip(x, generators, strict=True)])
    draws = [dsa.sample(x.shape[1], image_shape(x[0]), g) for g in generators]
    out: list[torch.Tensor | None] = [None] * len(draws)
    for op in dict.fromkeys(d["op"] for d in draws):
        ks = [k for k, d in enumerate(draws) if d["op"] == op]
        merged = {key: torch.cat([draws[k][key] for k in ks]).to(x.device) if isinstance(value, torch.Tensor)
                  else value for key, value in draws[ks[0]].items()}
        rows = torch.tensor(ks, device=x.device)
        for k, y in zip(ks, dsa.apply(x[rows].flatten(0, 1), merged).unflatten(0, (len(ks), -1)), strict=True):
            out[k] = y
    return torch.stack(out)  # type: ignore[arg-type]


def _flat(stacked: torch.Tensor | None) -> torch.Tensor | None:
    return None if stacked is None else stacked.flatten()


def train_together(models: list[nn.Module], images: torch.Tensor, targets: torch.Tensor, config: TrainConfig, *,
                   generators: list[torch.Generator], dsa: DSA | None = None, progress: bool = False,
                   desc: str = "train together", on_epoch=None, stacking: str = "auto") -> list[int | None]:
    """Train `models` (one architecture, on one device) in place on (images, targets), model k drawing through
    generators[k] as train_model would; returns, per model, the epoch (1-based) its training diverged in, or None.
    `on_epoch(epochs_done, seconds)` runs after each epoch (the pace behind the long-run warning). `stacking`:
    "grouped" (one network of grouped convolutions, ConvNets only), "vmap", or "auto" (grouped where it applies)."""
    reason = unsupported(models[0], config)
    if reason is not None:
        raise ValueError(f"these models cannot train together: {reason}")
    if len(generators) != len(models):
        raise ValueError(f"{len(models)} models need as many generators, got {len(generators)}")
    if stacking not in STACKINGS:
        raise ValueError(f"unknown stacking {stacking!r}; known: {', '.join(STACKINGS)}")
    grouped = groupable(models[0]) if stacking == "auto" else stacking == "grouped"
    if grouped and not groupable(models[0]):
        raise ValueError("grouped stacking takes ConvNets with instance norm or none")
    device = next(models[0].parameters()).device
    images, targets = images.to(device), targets.to(device)
    dsa = dsa or DSA()
    for model in models:
        model.train()
    params, buffers = stack_module_state(models)  # type: ignore[arg-type]
    template = copy.deepcopy(models[0]).to("meta")

    def forward(p, b, x):
        if grouped:
            return grouped_forward(template, p, x)
        return functional_call(template, (p, b), (x,))

    batched = forward if grouped else vmap(forward)
    optimizer = make_optimizer(list(params.values()), config)
    diverged: list[int | None] = [None] * len(models)
    for epoch in tqdm(range(config.epochs), desc=desc, disable=not progress, leave=False):
        started = time.perf_counter()
        set_epoch_lr(optimizer, config, epoch)
        orders = torch.stack([epoch_order(targets.cpu(), config, g) for g in generators]).to(device)
        last = None
        for start in range(0, orders.shape[1], config.batch_size):
            picks = orders[:, start:start + config.batch_size]  # [K, B]: each model's batch
            x = images[picks]
            if config.augment:
                x = augment_each(x, config, dsa, generators)
            last = classification_loss(batched(params, buffers, x), targets[picks], config.temperature)
            optimizer.zero_grad(set_to_none=True)
            last.sum().backward()
            optimizer.step()
        if last is not None:
            for k in torch.nonzero(~torch.isfinite(last.detach())).flatten().tolist():
                diverged[k] = diverged[k] or epoch + 1
        if on_epoch is not None:
            on_epoch(epoch + 1, time.perf_counter() - started)
    # every model's weights finite, read back in one transfer (not one per model and tensor)
    finite = torch.stack([torch.isfinite(p.detach()).flatten(1).all(1) for p in params.values()]).all(0).tolist()
    for k, model in enumerate(models):
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(params[name][k])
            for name, b in model.named_buffers():
                b.copy_(buffers[name][k])
        if diverged[k] is None and not finite[k]:
            diverged[k] = config.epochs
    return diverged
