"""DM: Dataset Condensation with Distribution Matching (Zhao & Bilen, WACV 2023).

Per iteration a fresh randomly initialized network (no training, parameters frozen) embeds a real batch and the
synthetic images of each class under the same DSA draw; the loss is
    sum_c || mean_i psi(A(x^real_{c,i})) - mean_j psi(A(s_{c,j})) ||^2
with psi the network's feature map before the linear head (the reference's `embed`). Only the images learn, by
SGD with momentum 0.5. DSA draws one transform for the whole real batch and the same for the synthetic one, as the
official seeded DiffAugment does (`dsa_siamese='batch'`; 'per_image' pairs draws image by image). A BatchNorm
network embeds the real batches of all classes in one forward and the synthetic images in another, so its
statistics span the classes (main_DM.py:165-187, the ConvNetBN branch); other networks embed class by class,
which for them is the same. Defaults are the
reference's (VICO-UoE/DatasetCondensation main_DM.py): 20000 iterations,
lr_img 1.0, batch_real 256, initialization from real images.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ltdistill import distributed, models
from ltdistill.families.randomnet import RandomNetConfig, RandomNetMethod
from ltdistill.params import NonNegative, Rate
from ltdistill.train import embedding


@dataclass(frozen=True)
class DMConfig(RandomNetConfig):
    iterations: NonNegative = 20000
    lr_img: Rate = 1.0


class DM(RandomNetMethod):
    name = "dm"
    labels = "hard"
    Config = DMConfig

    def make_step(self, ctx, state):
        # main_DM.py:165-187: a BatchNorm network embeds every class's batch at once (statistics over classes), so
        # every rank computes every class, each with 1/size of the loss; others embed class by class
        joint = models.has_batchnorm(self.config.model)

        def step(it: int) -> float:
            net = ctx.network().requires_grad_(False)
            embed = embedding(net, self.config.compile)
            loss, pairs = torch.zeros((), device=ctx.device), []
            for c in range(ctx.data.num_classes):
                computed = joint or ctx.mine(c)  # else another rank's class (torchrun): drawn here, computed there
                real, syn = ctx.augment_pair(ctx.real(c, self.config.batch_real), state["images"][ctx.rows(c)],
                                             apply=computed)
                if joint:
                    pairs.append((real, syn))
                elif computed:  # class by class: one real batch held at a time
                    with torch.no_grad():
                        real_embedded = embed(real)
                    loss = loss + mean_gap(real_embedded, embed(syn))
            if joint:
                loss = joint_gaps(embed, pairs) / distributed.joined().size
            if loss.requires_grad:
                loss.backward()
            else:  # no class of this rank: its share of the gradient is zero
                state["images"].grad = torch.zeros_like(state["images"])
            return distributed.sum_gradients([state["images"]], loss.item())

        return step


def mean_gap(real_embedded: torch.Tensor, syn_embedded: torch.Tensor) -> torch.Tensor:
    """A class's term: the squared distance between its mean real and mean synthetic embedding."""
    return ((real_embedded.mean(0) - syn_embedded.mean(0)) ** 2).sum()


def joint_gaps(embed, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """The sum of every class's term, all real batches embedded in one forward (without a graph) and all synthetic
    images in another, as main_DM.py's ConvNetBN branch does."""
    with torch.no_grad():
        real_embedded = embed(torch.cat([real for real, _ in pairs])).split([len(real) for real, _ in pairs])
    syn_embedded = embed(torch.cat([syn for _, syn in pairs])).split([len(syn) for _, syn in pairs])
    return sum((mean_gap(r, s) for r, s in zip(real_embedded, syn_embedded, strict=True)),
               start=torch.zeros((), device=pairs[0][1].device))
