"""DATM: difficulty-aligned trajectory matching (Guo et al., ICLR 2024; NUS-HPC-AI-Lab/DATM distill/DATM.py).

MTT plus:
- the start-epoch window [min_start_epoch, upper) with upper growing linearly from current_max_start_epoch to
  max_start_epoch over expansion_end_epoch iterations (Sequential Generation; fixed at max_start_epoch when off);
- soft labels: images are real images an expert classifies correctly; their labels are the mean logits of the
  experts right on them, then learned (SGD lr_y, momentum 0.9) and used as softmax targets;
- iterations whose matching loss exceeds `threshold` are skipped (no update).
Defaults are DATM's CIFAR-10 IPC10 config (research notes, section 3).
"""

from __future__ import annotations

from dataclasses import dataclass

from ltdistill.data.augment import DSA
from ltdistill.engine.loop import Learnable, SynthesisState
from ltdistill.engine.method import Method, with_meta
from ltdistill.families.init import correct_per_class, expert_soft_labels
from ltdistill.families.trajectory import Matching, check_start_window, pixels_and_lr, start_window_upper
from ltdistill.methods.mtt import MTTConfig
from ltdistill.params import Count, Momentum, NonNegative, Rate, Weight
from ltdistill.synthetic import SyntheticSet


@dataclass(frozen=True)
class DATMConfig(MTTConfig):
    iterations: NonNegative = 10000
    syn_steps: Count = 80
    expert_epochs: Count = 2
    max_start_epoch: Count = 20  # T+
    min_start_epoch: NonNegative = 0  # T-
    current_max_start_epoch: Count = 10  # T: initial upper bound of the window
    expansion_end_epoch: Count = 1000  # iteration at which the upper bound reaches T+
    sequential_generation: bool = True
    lr_img: Weight = 100.0
    lr_y: Weight = 2.0  # SGD lr of the soft-label logits
    momentum_y: Momentum = 0.9
    threshold: Rate | None = 1.0  # skip an iteration whose matching loss exceeds this; None: never
    soft_labels: bool = True
    label_experts: Count | None = None  # experts used for label initialization; None: all

    def __post_init__(self):
        check_start_window("datm", "min_start_epoch", "current_max_start_epoch", "max_start_epoch", vars(self),
                           self.sequential_generation)


def window_upper(cfg: DATMConfig, it: int) -> int:
    return start_window_upper(cfg.current_max_start_epoch, cfg.max_start_epoch, it, cfg.sequential_generation,
                              cfg.expansion_end_epoch)


class DATM(Method):
    name = "datm"
    labels = "soft"
    buffer_kind = "standard"
    Config = DATMConfig

    def makes_soft_labels(self) -> bool:
        return self.config.soft_labels  # soft_labels = false: the corrected real images' class labels

    def _distill(self, data, ipc, *, experts, seed, progress, device, workdir):
        cfg = self.config
        m = Matching(experts, data, seed, device, compile=cfg.compile, precision=cfg.precision)
        sampler = m.sampler("standard", "datm", cfg.max_start_epoch, cfg.expert_epochs)
        finals = sampler.finals(cfg.label_experts)
        images, classes, distinct = correct_per_class(m.data, ipc, m.flat_model, finals, m.generator)
        learnables = pixels_and_lr(images, cfg, device)
        unlabeled = 0
        if cfg.soft_labels:
            logits, unlabeled = expert_soft_labels(images, classes, m.flat_model, finals)
            learnables["labels"] = Learnable(logits.to(device), cfg.lr_y, cfg.momentum_y)
        state = SynthesisState(learnables, m.generator)
        labels = state["labels"] if cfg.soft_labels else classes.to(device)
        dsa = DSA() if cfg.dsa else None

        def step(it):
            start, target = sampler.sample(cfg.min_start_epoch, window_upper(cfg, it), cfg.expert_epochs)
            loss = m.match(state, labels, start, target, cfg, dsa, syn_steps=cfg.syn_steps, skip_above=cfg.threshold)
            return None if cfg.threshold is not None and loss > cfg.threshold else loss

        def make_set():
            final_labels = state["labels"].detach().cpu() if cfg.soft_labels else classes
            return SyntheticSet(state["images"].detach().cpu(), final_labels, lr=state["lr"].item(),
                                meta={"distinct_per_class": distinct, "classes": classes.tolist(),
                                      "labels_without_correct_expert": unlabeled})

        meta = m.run(self, state, step, ipc=ipc, seed=seed, workdir=workdir, progress=progress, make_set=make_set)
        return with_meta(make_set(), meta)
