"""Subsets of real images per class: how many each class gives (an IPC, or all of a shorter class) and a seeded
uniform draw of them. Random selection (methods/random.py) and DD-Ranking's random baseline, redrawn for every
evaluation run (evaluate/protocol.py), are the same draw."""

from __future__ import annotations

import torch

from ltdistill.data.longtail import LTDataset
from ltdistill.errors import BadInput


def per_class_quota(data: LTDataset, ipc: int, short_class: str) -> list[int]:
    """How many real images each class contributes: ipc, or all of a tail class that has fewer
    (short_class 'all'), or BadInput (short_class 'error')."""
    counts = data.counts
    short = [c for c, n in enumerate(counts) if n < ipc]
    if short and short_class == "error":
        raise BadInput(f"ipc {ipc} exceeds the real images of class(es) {short} "
                       f"(counts {[counts[c] for c in short]}); lower ipc or set short_class = 'all'")
    return [min(ipc, n) for n in counts]


def random_per_class(data: LTDataset, quota: list[int], seed: int) -> torch.Tensor:
    """Indices of quota[c] images of each class c, drawn uniformly without replacement by one seeded generator,
    class after class."""
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for c, n in enumerate(quota):
        pool = data.indices_of(c)
        chosen.append(pool[torch.randperm(len(pool), generator=generator)[:n]])
    return torch.cat(chosen)
