"""The small cross-architecture models of the DC line (networks.py of VICO-UoE/DatasetCondensation): MLP, LeNet,
AlexNet, VGG11. Pooling is skipped once a map is 1 pixel, so every net accepts every dataset's size."""

from __future__ import annotations

import torch
from torch import nn

from ltdistill.models.registry import Classifier, make_norm, pool_if_possible, register


class MLP(Classifier):
    def __init__(self, channels, num_classes, im_size, width: int = 128):
        super().__init__()
        d = channels * im_size[0] * im_size[1]
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(d, width), nn.ReLU(inplace=True), nn.Linear(width, width),
                                  nn.ReLU(inplace=True))
        self.classifier = nn.Linear(width, num_classes)

    def embed(self, x):
        return self.body(x)


class PooledConvStack(Classifier):
    """Conv layers with pooling after the marked ones, then an MLP trunk, then the head."""

    def __init__(self, channels, num_classes, im_size, spec, trunk: list[int], norm: str, pool: str = "max"):
        super().__init__()
        self.convs = nn.ModuleList()
        self.pool_after = []
        in_ch = channels
        for out_ch, kernel, padding, pool_here in spec:
            self.convs.append(nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel, padding=padding),
                                            make_norm(norm, out_ch), nn.ReLU(inplace=True)))
            self.pool_after.append(pool_here)
            in_ch = out_ch
        self.pool = nn.MaxPool2d(2) if pool == "max" else nn.AvgPool2d(2)
        with torch.no_grad():
            flat = self._conv_features(torch.zeros(1, channels, *im_size)).shape[1]
        dims = [flat, *trunk]
        self.trunk = nn.Sequential(*[m for a, b in zip(dims[:-1], dims[1:], strict=True)
                                     for m in (nn.Linear(a, b), nn.ReLU(inplace=True))])
        self.classifier = nn.Linear(dims[-1], num_classes)

    def _conv_features(self, x):
        last = len(self.convs) - 1
        for i, (conv, pool_here) in enumerate(zip(self.convs, self.pool_after, strict=True)):
            x = conv(x)
            if pool_here:
                x = pool_if_possible(x, self.pool, last=i == last)
        return x.flatten(1)

    def embed(self, x):
        return self.trunk(self._conv_features(x))


@register
def mlp(channels, num_classes, im_size, width: int = 128):
    return MLP(channels, num_classes, im_size, width=width)


@register
def lenet(channels, num_classes, im_size):
    pad = 2 if im_size[0] <= 28 else 0
    spec = [(6, 5, pad, True), (16, 5, 0, True)]
    if im_size[0] + 2 * pad < 14:  # a 5x5 conv needs room: small inputs keep their size
        spec = [(6, 5, 2, True), (16, 5, 2, True)]
    return PooledConvStack(channels, num_classes, im_size, spec, [120, 84], norm="none")


@register
def alexnet(channels, num_classes, im_size):
    pad = 4 if im_size[0] <= 28 else 2
    spec = [(128, 5, pad, True), (192, 5, 2, True), (256, 3, 1, False), (192, 3, 1, False), (192, 3, 1, True)]
    return PooledConvStack(channels, num_classes, im_size, spec, [], norm="none")


def _vgg11(channels, num_classes, im_size, norm):
    cfg = [(64, True), (128, True), (256, False), (256, True), (512, False), (512, True), (512, False), (512, True)]
    spec = [(c, 3, 3 if (i == 0 and channels == 1) else 1, p) for i, (c, p) in enumerate(cfg)]
    return PooledConvStack(channels, num_classes, im_size, spec, [], norm=norm)


@register
def vgg11(channels, num_classes, im_size):
    return _vgg11(channels, num_classes, im_size, "instance")


@register
def vgg11_bn(channels, num_classes, im_size):
    return _vgg11(channels, num_classes, im_size, "batch")
