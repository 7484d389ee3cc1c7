"""Herding (Welling 2009; the coreset baseline of DC/MTT/LTDD): per class, greedily pick the real image whose
embedding brings the running mean of the picked embeddings closest to the class mean.

The embedding is that of a ConvNet trained on the long-tailed train set itself (the DC benchmark uses a trained
ConvNet's penultimate features); its training budget is a config field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from ltdistill import models
from ltdistill.data.subset import per_class_quota
from ltdistill.engine.method import Method
from ltdistill.params import Count, ModelName, Rate
from ltdistill.synthetic import SyntheticSet
from ltdistill.train import TrainConfig, embed, train_model


@dataclass(frozen=True)
class HerdingConfig:
    model: ModelName = "convnet"  # feature extractor architecture
    width: Count = 128  # ConvNet width of the feature extractor (the cpu protocol sets 32)
    depth: Count = 3  # ConvNet depth of the feature extractor
    epochs: Count = 20  # training epochs of the feature extractor on the LT set
    lr: Rate = 0.01
    compile: bool = False  # the feature extractor's training through torch.compile (train.compiled_model)
    short_class: Literal["error", "all"] = "error"  # as random.py


def herd(features: torch.Tensor, k: int) -> list[int]:
    """Greedy herding: indices (into features) of k picks whose running mean tracks the mean feature."""
    mean = features.mean(0)
    picked: list[int] = []
    running = torch.zeros_like(mean)
    available = torch.ones(len(features), dtype=torch.bool)
    for step in range(k):
        candidate_means = (running + features) / (step + 1)
        dist = (candidate_means - mean).norm(dim=1)
        dist[~available] = float("inf")
        i = int(dist.argmin())
        picked.append(i)
        available[i] = False
        running += features[i]
    return picked


class Herding(Method):
    name = "herding"
    labels = "hard"
    Config = HerdingConfig

    def _distill(self, data, ipc, *, experts, seed, progress, device, workdir):
        cfg = self.config
        quota = per_class_quota(data, ipc, cfg.short_class)
        net = models.create(cfg.model, channels=data.channels, num_classes=data.num_classes, im_size=data.im_size,
                            **models.options_for(cfg.model, width=cfg.width, depth=cfg.depth)).to(device)
        train_model(net, data.train_x, data.train_y, TrainConfig(epochs=cfg.epochs, lr=cfg.lr, compile=cfg.compile),
                    generator=torch.Generator().manual_seed(seed), progress=progress, desc="herding features")
        features = embed(net, data.train_x)
        chosen = []
        for c, n in enumerate(quota):
            pool = data.indices_of(c)
            chosen.append(pool[herd(features[pool], n)])
        index = torch.cat(chosen)
        return SyntheticSet(data.train_x[index].clone(), data.train_y[index].clone(),
                            meta={"images_per_class": quota})
