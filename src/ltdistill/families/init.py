"""Initial synthetic sets of the trajectory methods.

- `real_per_class` (MTT pix_init 'real'): ipc random real images per class; a class with fewer repeats its
  images cyclically (the LTDD reference's `duplicate` option), recorded as `distinct_per_class`.
- `correct_per_class` (DATM/LTDD 'samples_predicted_correctly'): real images that an expert's final parameters
  classify correctly, scanning experts in order until ipc are found; then cyclic repetition (LTDD) of what was
  found, or of random real images when no expert is right on any image of the class.
- `expert_soft_labels` (DATM/LTDD): the mean logits of the experts that classify each image correctly.
  Decision: where no expert is right the reference leaves a zero vector (a uniform label, erasing the class); we
  use the image's class with the mean confidence of the other images instead, and count those images in the
  metadata (`labels_without_correct_expert`).
"""

from __future__ import annotations

import torch

from ltdistill.data.longtail import LTDataset


def _cycle(pool: torch.Tensor, n: int) -> torch.Tensor:
    return pool[torch.arange(n) % len(pool)]


def real_per_class(data: LTDataset, ipc: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, list]:
    chosen, distinct = [], []
    for c in range(data.num_classes):
        pool = data.indices_of(c)
        pool = pool[torch.randperm(len(pool), generator=generator)]
        chosen.append(_cycle(pool[:ipc], ipc))
        distinct.append(min(ipc, len(pool)))
    index = torch.cat(chosen)
    return data.train_x[index].clone(), data.train_y[index].clone(), distinct


@torch.no_grad()
def correct_per_class(data: LTDataset, ipc: int, flat_model, finals: list[torch.Tensor], generator: torch.Generator,
                      batch_size: int = 512) -> tuple[torch.Tensor, torch.Tensor, list]:
    device = finals[0].device
    chosen, distinct = [], []
    for c in range(data.num_classes):
        pool = data.indices_of(c)
        pool = pool[torch.randperm(len(pool), generator=generator)]
        found: list[int] = []
        for final in finals:
            for start in range(0, len(pool), batch_size):
                idx = pool[start:start + batch_size]
                pred = flat_model(final, data.train_x[idx].to(device)).argmax(1).cpu()
                found += [int(i) for i in idx[pred == c] if int(i) not in found]
                if len(found) >= ipc:
                    break
            if len(found) >= ipc:
                break
        picked = torch.tensor(found[:ipc]) if found else pool[:ipc]
        chosen.append(_cycle(picked, ipc))
        distinct.append(len(picked))
    index = torch.cat(chosen)
    return data.train_x[index].clone(), data.train_y[index].clone(), distinct


@torch.no_grad()
def expert_soft_labels(images: torch.Tensor, classes: torch.Tensor, flat_model, finals: list[torch.Tensor]):
    """Mean logits of the experts right on each image; returns (logits, number of images no expert got right)."""
    device = finals[0].device
    sums: torch.Tensor | float = 0.0
    counts = torch.zeros(len(images))
    for final in finals:
        logits = torch.cat([flat_model(final, images[i:i + 512].to(device)).cpu() for i in range(0, len(images), 512)])
        right = (logits.argmax(1) == classes).float()
        sums = sums + logits * right[:, None]
        counts += right
    labels = sums / counts.clamp_min(1)[:, None]
    missing = counts == 0
    if missing.any():
        confident = labels[~missing]
        margin = float((confident.max(1).values - confident.mean(1)).mean()) if len(confident) else 10.0
        labels[missing] = 0.0
        labels[missing, classes[missing]] = margin
    return labels, int(missing.sum())
