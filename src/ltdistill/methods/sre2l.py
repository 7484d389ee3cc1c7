"""SRe2L: Squeeze, Recover and Relabel (Yin, Xing & Shen, NeurIPS 2023), the baseline of the uni-level family.

1. Squeeze: train a BN model (ConvNet-BN here; ResNet-18 in the paper) on the training set with plain CE; on
   long-tailed data its BN running statistics are the EMA the biased training left behind.
2. Recover: from Gaussian noise (N(0, 1) in normalized space, as the reference), optimize IPC groups of one image per
   class against the model's BN statistics plus CE to the class (recovery.recover).
3. Relabel: the same model is the teacher; the artifact stores its logits on the final images (soft labels) and its
   weights, so the evaluator relabels every augmented batch with it (SRe2L-CIFAR's online relabeling).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import torch

from ltdistill.engine.method import Method
from ltdistill.evaluate.metrics import model_accuracy
from ltdistill.families.init import real_per_class
from ltdistill.families.recovery import (
    RecoveryConfig,
    class_major_layout,
    logits_of,
    network_options,
    pixel_range,
    recover_recorded,
    teacher_meta,
    trained_classifier,
)
from ltdistill.synthetic import SyntheticSet


@dataclass(frozen=True)
class SRe2LConfig(RecoveryConfig):
    init: Literal["noise", "real"] = "noise"  # "noise" (the reference) or "real" (random real images of the class)


class SRe2L(Method):
    name = "sre2l"
    labels = "soft"
    Config = SRe2LConfig

    def _distill(self, data, ipc, *, experts, seed, progress, device, workdir):
        cfg = self.config
        started = time.perf_counter()
        model = trained_classifier(data, cfg, model=cfg.model, remedy="none", seed=seed, role="squeezed",
                                   device=device, progress=progress, workdir=workdir)
        models_seconds = time.perf_counter() - started
        generator = torch.Generator().manual_seed(seed)
        classes, groups = class_major_layout(data.num_classes, ipc)
        distinct = None  # noise has no real images to repeat
        if cfg.init == "noise":
            start = torch.randn((len(classes), *data.train_x.shape[1:]), generator=generator)
        else:
            start, _, distinct = real_per_class(data, ipc, generator)
        images, record = recover_recorded(model, start, classes, groups, cfg, pixel_range=pixel_range(data),
                                          generator=generator, progress=progress)
        options = network_options(cfg.model, cfg.width, cfg.depth)
        return SyntheticSet(images, logits_of(model, images), meta={
            "classes": classes.tolist(), "distinct_per_class": distinct, **record, "models_seconds": models_seconds,
            "label_regime": "relabel",
            "teacher": teacher_meta(cfg.model, options, cfg.temperature),
            "models_accuracy": {"squeezed model (observer and teacher)": model_accuracy(model, data)}},
            teacher=model.state_dict())
