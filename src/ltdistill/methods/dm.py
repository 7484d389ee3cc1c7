"""DM: Dataset Condensation with Distribution Matching (Zhao & Bilen, WACV 2023).

Per iteration a fresh randomly initialized network (no training, parameters frozen) embeds a real batch and the
synthetic images of each class under the same DSA draw; the loss is
    sum_c || mean_i psi(A(x^real_{c,i})) - mean_j psi(A(s_{c,j})) ||^2
with psi the network's feature map before the linear head (the reference's `embed`). Only the images learn, by
SGD with momentum 0.5. DSA draws one transform for the whole real batch and the same for the synthetic one, as the
official seeded DiffAugment does (`dsa_siamese='batch'`; 'per_image' pairs draws image by image). Defaults are the
reference's (VICO-UoE/DatasetCondensation main_DM.py): 20000 iterations,
lr_img 1.0, batch_real 256, initialization from real images.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ltdistill import distributed
from ltdistill.families.randomnet import RandomNetConfig, RandomNetMethod
from ltdistill.params import NonNegative, Rate
from ltdistill.train import embedding


@dataclass(frozen=True)
class DMConfig(RandomNetConfig):
    iterations: NonNegative = 20000
    lr_img: Rate = 1.0


class DM(RandomNetMethod):
    name = "dm"
    Config = DMConfig

    def make_step(self, ctx, state):
        def step(it: int) -> float:
            net = ctx.network().requires_grad_(False)
            embed = embedding(net, self.config.compile)
            loss = torch.zeros((), device=ctx.device)
            for c in range(ctx.data.num_classes):
                real, syn = ctx.augment_pair(ctx.real(c, self.config.batch_real), state["images"][ctx.rows(c)],
                                             apply=ctx.mine(c))
                if not ctx.mine(c):  # another rank's class (torchrun): drawn above, computed there
                    continue
                with torch.no_grad():
                    real_mean = embed(real).mean(0)
                loss = loss + ((real_mean - embed(syn).mean(0)) ** 2).sum()
            if loss.requires_grad:
                loss.backward()
            else:  # no class of this rank: its share of the gradient is zero
                state["images"].grad = torch.zeros_like(state["images"])
            return distributed.sum_gradients([state["images"]], loss.item())

        return step
