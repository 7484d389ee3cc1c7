"""MTT: Matching Training Trajectories (Cazenavette et al., CVPR 2022).

Per iteration: pick an expert and t ~ U[0, max_start_epoch); the student starts at theta*_t, takes syn_steps
SGD steps on the synthetic set with the learnable lr alpha, and the loss is
||w_N - theta*_{t+M}||^2 / ||theta*_t - theta*_{t+M}||^2 (M = expert_epochs). Images and alpha are updated by
SGD with momentum 0.5. Hard labels, initialization from random real images.
Defaults are MTT distill.py's; presets carry the per-setting values (configs/).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from ltdistill.data.augment import DSA
from ltdistill.methods.base import Method
from ltdistill.methods.init import real_per_class
from ltdistill.methods.loop import Checkpointer, Learnable, SynthesisState, optimize
from ltdistill.methods.trajectory import TrajectorySampler, check_window, match_trajectory, open_experts, student_model
from ltdistill.synthetic import SyntheticSet


@dataclass(frozen=True)
class MTTConfig:
    iterations: int = 5000
    syn_steps: int = 20  # N: student steps per iteration
    expert_epochs: int = 3  # M: target is M expert epochs after the start
    max_start_epoch: int = 25  # T+: start epoch drawn from [0, T+)
    lr_img: float = 1000.0  # SGD lr of the pixels
    lr_lr: float = 1e-5  # SGD lr of the student lr alpha
    lr_teacher: float = 0.01  # initial alpha
    batch_syn: int | None = None  # synthetic minibatch per student step; None: all images
    gradient: str = "full_bptt"  # or "tesla_frozen_weights" (constant memory, see trajectory.py)
    dsa: bool = True
    checkpoint_every: int = 50


def run_settings(method: Method, data, ipc: int, seed: int, buffer) -> dict:
    return {"method": method.name, "config": dataclasses.asdict(method.config), "ipc": ipc, "seed": seed,
            "data": data.describe(), "experts": str(buffer.directory)}


class MTT(Method):
    name = "mtt"
    Config = MTTConfig

    def _distill(self, data, ipc, *, experts, seed, progress, device, workdir):
        cfg = self.config
        buffer, data = open_experts(experts, data)
        generator = torch.Generator().manual_seed(seed)
        flat_model = student_model(buffer, data, device)
        sampler = TrajectorySampler(buffer, "standard", generator, device)
        check_window("mtt", cfg.max_start_epoch, cfg.expert_epochs, sampler.epochs)
        images, labels, distinct = real_per_class(data, ipc, generator)
        state = SynthesisState({"images": Learnable(images.to(device), cfg.lr_img, 0.5),
                                "lr": Learnable(torch.tensor(cfg.lr_teacher, device=device), cfg.lr_lr, 0.5)},
                               generator)
        labels = labels.to(device)
        dsa = DSA() if cfg.dsa else None

        def step(it):
            start, target = sampler.sample(0, cfg.max_start_epoch, cfg.expert_epochs)
            return match_trajectory(flat_model, start, target, state["images"], labels, state["lr"],
                                    syn_steps=cfg.syn_steps, batch_syn=cfg.batch_syn, dsa=dsa, generator=generator,
                                    gradient=cfg.gradient)

        checkpointer = Checkpointer(workdir, run_settings(self, data, ipc, seed, buffer), cfg.checkpoint_every)
        optimize(state, cfg.iterations, step, checkpointer, progress=progress, desc="mtt")
        return SyntheticSet(state["images"].detach().cpu(), labels.cpu(), lr=state["lr"].item(),
                            meta={"zca_eps": data.zca_eps, "distinct_per_class": distinct,
                                  "loss_history": state.history, **state.counters})
