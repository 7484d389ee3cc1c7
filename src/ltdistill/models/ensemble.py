"""Several trained classifiers answering as one: the mean of their logits. EDC relabels with all its observers at
once (shaoshitong/EDC Branch_CIFAR_10 train/direct_train.py:404-408: the plain mean of the raw logits of every
teacher, no temperature); a set keeps such a teacher as one state dict ("members.<i>.<key>") and a record naming
each member (`members_meta`), so it loads like any one-model teacher."""

from __future__ import annotations

import torch
from torch import nn

from ltdistill.errors import BadInput
from ltdistill.models.registry import create, recorded_options


class Ensemble(nn.Module):
    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(x) for member in self.members]).mean(0)


def members_meta(names: list[str], options: list[dict]) -> list[dict]:
    """The record of an ensemble's members, in order: each one's registered name and options in full."""
    return [{"model": name, "options": dict(opts)} for name, opts in zip(names, options, strict=True)]


def from_meta(members: list, *, channels: int, num_classes: int, im_size: tuple[int, int]) -> Ensemble:
    """The untrained ensemble a record describes (its members checked as any model's options are)."""
    if not isinstance(members, list) or not members or not all(
            isinstance(m, dict) and isinstance(m.get("model"), str) and isinstance(m.get("options", {}), dict)
            for m in members):
        raise BadInput("an ensemble teacher's record must list its members as {model, options} objects")
    return Ensemble([create(m["model"], channels=channels, num_classes=num_classes, im_size=im_size,
                            **recorded_options(m["model"], m.get("options", {}))) for m in members])
