"""ConvNet of the DC/DSA/DM/MTT/DATM/LTDD line (Gidaris & Komodakis 2018; networks.py of VICO-UoE/DatasetCondensation):
depth x [conv3x3(width) -> norm -> ReLU -> 2x2 avg pool], then a linear head. Width 128, depth 3 (depth 4 for
64x64), instance norm by default."""

from __future__ import annotations

import torch
from torch import nn

from ltdistill.models.registry import Classifier, make_norm, pool_if_possible, register


class ConvNet(Classifier):
    def __init__(self, channels: int, num_classes: int, im_size: tuple[int, int], width: int = 128, depth: int = 3,
                 norm: str = "instance", pooling: str = "avg"):
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = channels
        for _ in range(depth):
            layers += [nn.Conv2d(in_ch, width, 3, padding=1), make_norm(norm, width), nn.ReLU(inplace=True)]
            in_ch = width
        self.blocks = nn.ModuleList(nn.Sequential(*layers[i:i + 3]) for i in range(0, len(layers), 3))
        self.pool = nn.AvgPool2d(2) if pooling == "avg" else nn.MaxPool2d(2)
        self._make_head(channels, im_size, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            x = pool_if_possible(block(x), self.pool, last=i == last)
        return x.flatten(1)


@register
def convnet(channels, num_classes, im_size, width: int = 128, depth: int = 3, norm: str = "instance"):
    return ConvNet(channels, num_classes, im_size, width=width, depth=depth, norm=norm)


@register
def convnet_d4(channels, num_classes, im_size, width: int = 128, norm: str = "instance"):
    return ConvNet(channels, num_classes, im_size, width=width, depth=4, norm=norm)


@register
def convnet_bn(channels, num_classes, im_size, width: int = 128, depth: int = 3):
    return ConvNet(channels, num_classes, im_size, width=width, depth=depth, norm="batch")


@register
def convnet_nn(channels, num_classes, im_size, width: int = 128, depth: int = 3):
    return ConvNet(channels, num_classes, im_size, width=width, depth=depth, norm="none")
