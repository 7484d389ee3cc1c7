"""GLMC (Du et al., "Global and Local Mixture Consistency Cumulative Learning for Long-tailed Visual Recognitions",
CVPR 2023; ynu-yangpeng/GLMC at 2c0261c, GLMC-2023/Trainer.py, utils/util.py, model/ResNet_cifar.py): the whole
loss the uni-level paper trains its observer and teacher with, L = gamma_1 L_robust + gamma_2 L_debias, as GLMC
trains it. The recovery family's remedy "glmc" (families/recovery.py; `debias_curriculum` is its L_debias alone).
Each batch of the trainer (two augmented views x1, x2 of the same images):

- a partner batch of the same size, drawn with replacement with each image's probability proportional to
  n_c^-0.2 (main.py:141-146, `resample_weighting`; Trainer.py:68-75), also seen in two augmented views p1, p2;
- lambda ~ Beta(1, 1) (util.py:189, GLMC_mixed's own draw: the Beta(0.5, 0.5) of Trainer.py:97 goes unused); the
  mixup view lambda x1 + (1 - lambda) p1, and the cutmix view: x2 with a box of side ceil(side sqrt(1 - lambda)) and
  a uniform centre, clipped at the border, taken from p2 (util.py:60-76, 188-204);
- targets y = lambda onehot(y_x) + (1 - lambda) onehot(y_p) for both views, and w * y with the class weights
  w_c = n_c^-1 at mean one (Trainer.py:42-45, 77-81; `label_weighting` 1);
- on the backbone's features f: the model's own classifier (GLMC's fc), a second linear head fc_cb, a projection
  z = Linear(f, 128) and a predictor p = Linear(z, 128) (ResNet_cifar.py:67-77, 89-102);
- loss = alpha (softCE(fc(f_mix), y_mix) + softCE(fc(f_cut), y_cut))
         + (1 - alpha) (softCE(fc_cb(f_mix), w y_mix) + softCE(fc_cb(f_cut), w y_cut))
         + 10 (-cos(p_mix, sg(z_cut)) - cos(p_cut, sg(z_mix))),   alpha = 1 - (epoch / epochs)^2
  (Trainer.py:49, 108-120, SimSiamLoss 221-231; `contrast_weight` 10).
GLMC predicts with fc_cb (ResNet_cifar.py:103-106), so the trained model's classifier takes fc_cb's weights and the
observer or teacher is an ordinary model of its kind. Departures: the views are the trainer's own augmentation
(GLMC's RandomCrop + flip on CIFAR), and the optimizer, schedule, batch and epochs stay the recovery family's
observer settings (GLMC: SGD wd 5e-3, cosine, batch 64, 200 epochs). It runs eager (the model's `compile` does not
reach it), and under torchrun every rank trains the whole model alike rather than a share of each batch.
tests/test_parity_recovery.py checks the mixing, the weights and the loss with its gradient against GLMC's own code.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ltdistill.data.augment import DSA

HIDDEN = 128  # of the projection and predictor (ResNet_cifar.py:69)
RESAMPLE_WEIGHTING = 0.2  # partner draws proportional to n_c^-q (main.py:171)
LABEL_WEIGHTING = 1.0  # the reweighted targets' w_c proportional to n_c^-q (main.py:172)
CONTRAST_WEIGHT = 10.0  # of the consistency term (main.py:173)


def class_weights(counts, q: float) -> torch.Tensor:
    """n_c^-q scaled to mean one over the classes (Trainer.update_weight; main.py's sampler weights likewise)."""
    weights = torch.tensor(counts, dtype=torch.float).clamp_min(1).pow(-q)
    return weights / weights.mean()


class GLMCHeads(nn.Module):
    """GLMC's heads beside the model's classifier: fc_cb, the projection z and the predictor p."""

    def __init__(self, features: int, num_classes: int, hidden: int = HIDDEN):
        super().__init__()
        self.fc_cb = nn.Linear(features, num_classes)
        self.projection_head = nn.Linear(features, hidden)
        self.contrast_head = nn.Linear(hidden, hidden)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z = self.projection_head(features)
        return self.fc_cb(features), z, self.contrast_head(z)


def cutmix_box(height: int, width: int, lam: float, cx: int, cy: int) -> tuple[int, int, int, int]:
    """util.rand_bbox over dims (2, 3) (its W is dim 2): sides ceil(side sqrt(1 - lam)), centre (cx, cy), clipped."""
    cut_h, cut_w = (math.ceil(side * math.sqrt(1 - lam)) for side in (height, width))
    return (min(max(cx - cut_h // 2, 0), height), min(max(cy - cut_w // 2, 0), width),
            min(max(cx + cut_h // 2, 0), height), min(max(cy + cut_w // 2, 0), width))


def mixed_views(x1, x2, p1, p2, lam: float, box: tuple[int, int, int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """GLMC_mixed's images: the mixup view of (x1, p1) and the cutmix view of x2 with `box` from p2."""
    top, left, bottom, right = box
    cut = x2.clone()
    cut[:, :, top:bottom, left:right] = p2[:, :, top:bottom, left:right]
    return lam * x1 + (1 - lam) * p1, cut


def soft_ce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return -(F.log_softmax(logits, dim=1) * targets).sum(dim=1).mean()


def glmc_loss(model, heads: GLMCHeads, mix: torch.Tensor, cut: torch.Tensor, targets: torch.Tensor,
              label_weights: torch.Tensor, alpha: float, contrast_weight: float = CONTRAST_WEIGHT) -> torch.Tensor:
    """Trainer.py:108-120 for the two views and their (mixed, one-hot) `targets`; `model` has embed and classifier."""
    f_mix, f_cut = model.embed(mix), model.embed(cut)
    (cb_mix, z_mix, p_mix), (cb_cut, z_cut, p_cut) = heads(f_mix), heads(f_cut)
    weighted = label_weights.to(targets)[None, :] * targets
    balance = soft_ce(model.classifier(f_mix), targets) + soft_ce(model.classifier(f_cut), targets)
    rebalance = soft_ce(cb_mix, weighted) + soft_ce(cb_cut, weighted)
    consistency = (-F.cosine_similarity(p_mix, z_cut.detach(), dim=-1).mean()
                   - F.cosine_similarity(p_cut, z_mix.detach(), dim=-1).mean())
    return alpha * balance + (1 - alpha) * rebalance + contrast_weight * consistency


class GLMCObjective:
    """The batch loss train.train_model takes as `objective`: it draws the second view, the partner batch, lambda
    and the box through the trainer's generator (a run is seeded and resumes as it would have gone on), and trains
    the heads, attached to the model as `glmc_heads` so that the trainer's optimizer and checkpoints hold them.
    `finish()` moves fc_cb into the model's classifier and takes the heads off."""

    def __init__(self, model, images: torch.Tensor, targets: torch.Tensor, counts, epochs: int, augment,
                 generator: torch.Generator):
        device = next(model.parameters()).device
        features = model.classifier.in_features
        self.model, self.epochs, self.augment, self.generator = model, epochs, augment, generator
        self.images, self.targets = images.to(device), targets.to(device)
        self.num_classes = len(counts)
        self.draw_weights = class_weights(counts, RESAMPLE_WEIGHTING)[targets.cpu()].double()
        self.label_weights = class_weights(counts, LABEL_WEIGHTING).to(device)
        model.add_module("glmc_heads", GLMCHeads(features, self.num_classes).to(device))

    def __call__(self, x1: torch.Tensor, idx: torch.Tensor, epoch: int) -> torch.Tensor:
        g = self.generator
        x2 = self.augment(self.images[idx])
        partner = torch.multinomial(self.draw_weights, len(idx), replacement=True, generator=g).to(idx.device)
        p1, p2 = self.augment(self.images[partner]), self.augment(self.images[partner])
        lam = float(torch.rand((), generator=g, dtype=torch.float64))  # Beta(1, 1) is uniform
        height, width = x1.shape[2:]
        cx, cy = (int(torch.randint(0, n, (1,), generator=g)) for n in (height, width))
        mix, cut = mixed_views(x1, x2, p1, p2, lam, cutmix_box(height, width, lam, cx, cy))
        onehot = F.one_hot(self.targets[idx], self.num_classes).float()
        targets = lam * onehot + (1 - lam) * F.one_hot(self.targets[partner], self.num_classes).float()
        return glmc_loss(self.model, self.model.glmc_heads, mix, cut, targets, self.label_weights,
                         alpha=1 - (epoch / self.epochs) ** 2)

    def finish(self) -> None:
        heads = self.model.glmc_heads
        with torch.no_grad():
            self.model.classifier.weight.copy_(heads.fc_cb.weight)
            self.model.classifier.bias.copy_(heads.fc_cb.bias)
        del self.model.glmc_heads


def trainer_augment(config, generator: torch.Generator):
    """One batch under the trainer's augmentation (train.augmented), drawn through `generator`."""
    from ltdistill.train import augmented

    dsa = DSA()
    return lambda x: augmented(x, config, dsa, generator) if config.augment else x
