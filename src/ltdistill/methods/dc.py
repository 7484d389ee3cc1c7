"""DC with DSA: Dataset Condensation with Gradient Matching (Zhao, Mopuri & Bilen, ICLR 2021) and its
Differentiable Siamese Augmentation (Zhao & Bilen, ICML 2021). The name `dc` runs the DSA variant by default
(`dsa = true`); `dsa = false` is plain DC.

One iteration (reference VICO-UoE/DatasetCondensation main.py):
  a fresh random network theta; repeat outer_loop times:
    loss = sum_c D(grad_theta CE(theta; A(real_c)), grad_theta CE(theta; A(syn_c)))   (same DSA draw A per class)
    one SGD step on the images (lr_img, momentum 0.5);
    then (not after the last) inner_loop epochs of training theta on the synthetic set (lr_net, net_momentum 0:
    main.py:150 `SGD(net.parameters(), lr=lr_net)`; 0.5, the image optimizer's, is an option), augmented when DSA
    is on, so later matches happen along a training trajectory.
D is the layer-wise distance "ours": for every weight (biases and norm parameters are skipped), reshape to
(out, -1) and sum over output units of 1 - cos(g_real, g_syn), the cosine divided by ||g_real|| ||g_syn|| + 1e-6
as utils.py:233 distance_wb does (`cosine_denominator = "norms_plus_eps"`); "clamped" is torch's cosine_similarity
(the norms clamped at 1e-6), ltdistill's earlier default. The two differ where the norm product is not far above
1e-6, as it often is for the gradient rows of a small ConvNet (docs/fidelity.md).
(outer_loop, inner_loop) by IPC follow the reference's get_loops: 1 -> (1, 1), 10 -> (10, 50), 20 -> (20, 25),
30 -> (30, 20), 40 -> (40, 15), 50 -> (50, 10); other IPCs take the nearest of these (the reference has none).
BatchNorm networks get the reference's treatment: running statistics set from a real batch of 16 per class, then
frozen during matching.
Decision: initialization from real images (the reference's default is noise; its README says both reach similar
accuracy, and real images converge within the scaled-down CPU budgets).
`compile = true` trains the network through torch.compile, runs the matching's real pass (first-order) through it
too, and, for an instance-norm ConvNet, the synthetic pass, whose gradient the loss differentiates again, through
models/unroll_ops.py (the norm's closed-form passes compiled): the same set to float tolerance, after a compilation
per shape (benchmarks/notes/compile-families.md).
The last image update of an iteration goes through the shared loop (NaN guard, checkpoint); the earlier ones are
skipped when their gradient is not finite.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ltdistill import distributed
from ltdistill.families.randomnet import RandomNetConfig, RandomNetMethod
from ltdistill.models.convnet import unroll_ops_where_taken
from ltdistill.params import Count, Momentum, NonNegative, Rate
from ltdistill.train import TrainConfig, compiled_model, train_model

LOOPS_BY_IPC = {1: (1, 1), 10: (10, 50), 20: (20, 25), 30: (30, 20), 40: (40, 15), 50: (50, 10)}


@dataclass(frozen=True)
class DCConfig(RandomNetConfig):
    iterations: NonNegative = 1000
    lr_img: Rate = 0.1
    lr_net: Rate = 0.01  # SGD lr of the network's inner training
    net_momentum: Momentum = 0.0  # of the inner training's SGD (official main.py:150: none; before: 0.5)
    batch_train: Count = 256  # synthetic minibatch of the inner training
    outer_loop: Count | None = None  # image updates per network; None: by IPC (reference get_loops)
    inner_loop: Count | None = None  # network epochs on the synthetic set between image updates; None: by IPC
    cosine_denominator: Literal["norms_plus_eps", "clamped"] = "norms_plus_eps"  # of D's cosine (docstring)


def default_loops(ipc: int) -> tuple[int, int]:
    nearest = min(LOOPS_BY_IPC, key=lambda k: (abs(k - ipc), k))
    return LOOPS_BY_IPC[nearest]


COSINE_EPS = 1e-6  # utils.py:233


def row_cosine(a: torch.Tensor, b: torch.Tensor, denominator: str) -> torch.Tensor:
    """Cosine of each row of a with the same row of b, divided by the norms' product + eps ("norms_plus_eps",
    distance_wb) or by the product of the norms clamped at eps ("clamped", F.cosine_similarity)."""
    if denominator == "clamped":
        return F.cosine_similarity(a, b, dim=1, eps=COSINE_EPS)
    return (a * b).sum(dim=1) / (a.norm(dim=1) * b.norm(dim=1) + COSINE_EPS)


def gradient_distance(grads_syn, grads_real, cosine_denominator: str = "norms_plus_eps") -> torch.Tensor:
    """DC's layer-wise distance: sum over weights and output units of 1 - cos(real, syn); 1-D tensors skipped."""
    total = grads_syn[0].new_zeros(())
    for gs, gr in zip(grads_syn, grads_real, strict=True):
        if gs.ndim == 1:
            continue
        gs, gr = gs.reshape(gs.shape[0], -1), gr.reshape(gr.shape[0], -1)
        total = total + (1 - row_cosine(gs, gr, cosine_denominator)).sum()
    return total


def freeze_batchnorm(net: nn.Module, ctx) -> None:
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    net.train()
    with torch.no_grad():
        net(torch.cat([ctx.real(c, 16) for c in range(ctx.data.num_classes)]))
    for m in norms:
        m.eval()


class DC(RandomNetMethod):
    name = "dc"
    labels = "hard"
    Config = DCConfig

    def matching_loss(self, ctx, net, images: torch.Tensor) -> torch.Tensor:
        """sum over classes of D(grad CE on the augmented real batch, grad CE on the augmented synthetic rows), the
        latter differentiable in `images`; with compile, the real pass (first-order) runs through torch.compile and
        the synthetic one (differentiated twice) through the unroll ops where the network takes them."""
        cfg = self.config
        params = [p for p in net.parameters() if p.requires_grad]
        real_net = compiled_model(net) if cfg.compile else net
        loss = torch.zeros((), device=ctx.device)
        for c in range(ctx.data.num_classes):
            real, syn = ctx.augment_pair(ctx.real(c, cfg.batch_real), images[ctx.rows(c)], apply=ctx.mine(c))
            if not ctx.mine(c):  # another rank's class (torchrun): drawn above, computed there
                continue
            labels = ctx.labels[ctx.rows(c)]
            g_real = torch.autograd.grad(F.cross_entropy(real_net(real), labels[:1].expand(len(real))), params)
            with unroll_ops_where_taken(net, "compiled" if cfg.compile else None):
                g_syn = torch.autograd.grad(F.cross_entropy(net(syn), labels), params, create_graph=True)
            loss = loss + gradient_distance(g_syn, [g.detach() for g in g_real], cfg.cosine_denominator)
        return loss

    def make_step(self, ctx, state):
        cfg = self.config
        outer, inner = default_loops(ctx.ipc)
        outer, inner = cfg.outer_loop or outer, cfg.inner_loop or inner
        images = state.learnables["images"]
        net_config = TrainConfig(epochs=inner, lr=cfg.lr_net, batch_size=cfg.batch_train, momentum=cfg.net_momentum,
                                 weight_decay=0.0, lr_decay_at_half=False, augment=cfg.dsa, compile=cfg.compile)

        def step(it: int) -> float:
            net = ctx.network()
            net_optimizer = torch.optim.SGD(net.parameters(), lr=cfg.lr_net, momentum=cfg.net_momentum)
            total = 0.0
            for ol in range(outer):
                freeze_batchnorm(net, ctx)
                images.optimizer.zero_grad(set_to_none=True)
                loss = self.matching_loss(ctx, net, images.tensor)
                if loss.requires_grad:
                    loss.backward(inputs=[images.tensor])
                else:  # no class of this rank: its share of the gradient is zero
                    images.tensor.grad = torch.zeros_like(images.tensor)
                # every rank then holds the summed gradient, steps alike, and trains the same network below
                total += distributed.sum_gradients([images.tensor], loss.item())
                if ol == outer - 1:
                    break  # the shared loop takes this last step
                if torch.isfinite(images.tensor.grad).all():
                    images.optimizer.step()
                train_model(net, images.tensor.detach(), ctx.labels, net_config, generator=ctx.generator,
                            dsa=ctx.dsa, optimizer=net_optimizer)
            return total / outer

        return step
