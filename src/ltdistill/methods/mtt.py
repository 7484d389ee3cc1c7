"""MTT: Matching Training Trajectories (Cazenavette et al., CVPR 2022).

Per iteration: pick an expert and t ~ U[0, max_start_epoch); the student starts at theta*_t, takes syn_steps
SGD steps on the synthetic set with the learnable lr alpha, and the loss is
||w_N - theta*_{t+M}||^2 / ||theta*_t - theta*_{t+M}||^2 (M = expert_epochs). Images and alpha are updated by
SGD with momentum 0.5. Hard labels, initialization from random real images.
Defaults are MTT distill.py's; presets carry the per-setting values (configs/).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from ltdistill.data.augment import DSA
from ltdistill.engine.loop import SynthesisState
from ltdistill.engine.method import Method, with_meta
from ltdistill.families.init import real_per_class
from ltdistill.families.trajectory import Matching, pixels_and_lr
from ltdistill.params import Count, NonNegative, OneOf, Rate, Weight
from ltdistill.synthetic import SyntheticSet
from ltdistill.train import PRECISIONS


@dataclass(frozen=True)
class MTTConfig:
    iterations: NonNegative = 5000
    syn_steps: Count = 20  # N: student steps per iteration
    expert_epochs: Count = 3  # M: target is M expert epochs after the start
    max_start_epoch: Count = 25  # T+: start epoch drawn from [0, T+)
    lr_img: Weight = 1000.0  # SGD lr of the pixels
    lr_lr: Weight = 1e-5  # SGD lr of the student lr alpha
    lr_teacher: Rate = 0.01  # initial alpha
    batch_syn: Count | None = None  # synthetic minibatch per student step; None: all images
    # back-propagation through the unroll, or the constant-memory gradient (trajectory.py)
    gradient: Literal["full_bptt", "tesla_frozen_weights"] = "full_bptt"
    dsa: bool = True
    checkpoint_every: Count = 50
    # the student's instance norms (their double backward in closed form, compiled) and pooling through
    # models/unroll_ops.py: the same set to float tolerance, faster unrolls after a compilation per shape
    compile: bool = False
    # "bfloat16": the student's unroll under bfloat16 autocast (train.PRECISIONS), weights, pixels and lr float32:
    # its meta-gradients within float rounding of bfloat16, a different set (one MTT cell scored: off by default)
    precision: Annotated[str, OneOf(PRECISIONS)] = "float32"


class MTT(Method):
    name = "mtt"
    labels = "hard"
    buffer_kind = "standard"
    Config = MTTConfig

    def _distill(self, data, ipc, *, experts, seed, progress, device, workdir):
        cfg = self.config
        m = Matching(experts, data, seed, device, compile=cfg.compile, precision=cfg.precision)
        sampler = m.sampler("standard", "mtt", cfg.max_start_epoch, cfg.expert_epochs)
        images, labels, distinct = real_per_class(m.data, ipc, m.generator)
        state = SynthesisState(pixels_and_lr(images, cfg, device), m.generator)
        labels = labels.to(device)
        dsa = DSA() if cfg.dsa else None

        def step(it):
            start, target = sampler.sample(0, cfg.max_start_epoch, cfg.expert_epochs)
            return m.match(state, labels, start, target, cfg, dsa, syn_steps=cfg.syn_steps)

        def make_set():
            return SyntheticSet(state["images"].detach().cpu(), labels.cpu(), lr=state["lr"].item(),
                                meta={"distinct_per_class": distinct})

        meta = m.run(self, state, step, ipc=ipc, seed=seed, workdir=workdir, progress=progress, make_set=make_set)
        return with_meta(make_set(), meta)
