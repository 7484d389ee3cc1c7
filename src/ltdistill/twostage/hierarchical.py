"""Two-stage hierarchical classification (two-stage paper, Sec. 3.4): a group classifier f_group (trained on
stage-1 data, by default the whole long-tailed set: the groups' sizes are independent of the class frequencies),
then one intra-group classifier per group (trained on stage-2 data, by default the distilled set, restricted to
the group's classes). Prediction: the group from f_group, then the class from that group's classifier.
Training: the shared trainer with the paper's SGD lr 0.01, momentum 0.9, weight decay 5e-4 (plus DSA and the lr
step of the protocol). Every run reports the metrics of evaluate/metrics.py plus the group accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ltdistill import models
from ltdistill.data.longtail import check_dataset
from ltdistill.errors import check
from ltdistill.evaluate.metrics import aggregate, run_metrics
from ltdistill.params import Count, Seed, check_device, check_value, fits
from ltdistill.train import TrainConfig, predict, train_model


@dataclass
class TwoStageResult:
    metrics: dict
    group_acc: float


def _targets_in_group(labels: torch.Tensor, classes: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of labels (hard (N,) or soft (N, C)) whose class is in `classes`, relabeled to 0..len(classes)-1."""
    hard = labels if labels.ndim == 1 else labels.argmax(1)
    keep = torch.isin(hard, torch.tensor(classes))
    if labels.ndim == 1:
        remap = torch.full((int(hard.max()) + 1,), -1, dtype=torch.long)
        remap[torch.tensor(classes)] = torch.arange(len(classes))
        return keep, remap[hard[keep]]
    return keep, labels[keep][:, classes]


def _fit(images, targets, num_classes, data, model: str, options: dict, epochs: int, seed: int, device: str):
    torch.manual_seed(seed)
    net = models.create(model, channels=data.channels, num_classes=num_classes, im_size=data.im_size,
                        **options).to(device)
    train_model(net, images, targets, TrainConfig(epochs=epochs, lr=0.01),
                generator=torch.Generator().manual_seed(seed))
    return net


def predict_two_stage(group_net, class_nets, groups: list[list[int]], images: torch.Tensor):
    group_pred = predict(group_net, images)
    pred = torch.empty_like(group_pred)
    for g, classes in enumerate(groups):
        rows = group_pred == g
        if rows.any():
            pred[rows] = torch.tensor(classes)[predict(class_nets[g], images[rows])]
    return group_pred, pred


def check_groups(groups, num_classes: int) -> None:
    """One BadInput line unless `groups` splits the classes 0..C-1 into non-empty groups, each class in exactly one
    (a class in no group was sent to an arbitrary group, one in two to the last)."""
    ok = isinstance(groups, list | tuple) and all(isinstance(g, list | tuple) and g for g in groups)
    flat = [c for g in groups for c in g] if ok else []
    ok = ok and all(fits(c, int) for c in flat)
    check(ok and sorted(flat) == list(range(num_classes)),
          f"groups must split the classes 0..{num_classes - 1} into non-empty groups, each class in exactly one; "
          f"got {groups!r:.200}")


def evaluate_two_stage(data, groups: list[list[int]], stage1: tuple[torch.Tensor, torch.Tensor],
                       stage2: tuple[torch.Tensor, torch.Tensor], *, model: str = "convnet",
                       options: dict | None = None, epochs1: int = 50, epochs2: int = 300, runs: int = 3, seed: int = 0,
                       device: str = "cpu") -> dict:
    """Train and score the two-stage classifier `runs` times; stage data are (images, labels) pairs."""
    check_dataset(data)
    check_groups(groups, data.num_classes)
    for name, stage in (("stage1", stage1), ("stage2", stage2)):
        x, y = stage if isinstance(stage, tuple | list) and len(stage) == 2 else (None, None)
        fits = (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and x.ndim == 4 and len(x) == len(y) > 0
                and (y.ndim == 1 or (y.ndim == 2 and y.shape[1] == data.num_classes)))
        check(fits, f"{name} must be (images N x C x H x W, labels N or N x {data.num_classes}) for one N >= 1")
    for name, value in (("epochs1", epochs1), ("epochs2", epochs2), ("runs", runs)):
        check_value(name, value, Count)
    check_value("seed", seed, Seed)
    device = check_device(device)
    options = options or {}
    group_of = torch.empty(data.num_classes, dtype=torch.long)
    for g, classes in enumerate(groups):
        group_of[torch.tensor(classes)] = g
    x1, y1 = stage1
    x2, y2 = stage2
    hard1 = y1 if y1.ndim == 1 else y1.argmax(1)
    per_run, group_accs = [], []
    for r in range(runs):
        group_net = _fit(x1, group_of[hard1], len(groups), data, model, options, epochs1, seed + r, device)
        class_nets = []
        for classes in groups:
            keep, targets = _targets_in_group(y2, classes)
            class_nets.append(_fit(x2[keep], targets, len(classes), data, model, options, epochs2, seed + r, device))
        group_pred, pred = predict_two_stage(group_net, class_nets, groups, data.test_x)
        _, pred_lt = predict_two_stage(group_net, class_nets, groups, data.test_lt_x)
        per_run.append(run_metrics(data.test_y.numpy(), pred.numpy(), data.test_lt_y.numpy(), pred_lt.numpy(),
                                   data.counts))
        group_accs.append(float((group_pred == group_of[data.test_y]).float().mean()))
    result = aggregate(per_run)
    result.update(groups=groups, group_acc={"mean": float(np.mean(group_accs)), "std": float(np.std(group_accs))},
                  runs=runs, model=model, model_options=options, epochs=[epochs1, epochs2])
    return result
