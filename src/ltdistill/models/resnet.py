"""ResNet-18 for small images (the DC/MTT networks.py variant: 3x3 stem, no max pool, BasicBlocks [2,2,2,2],
global average pooling), with instance norm (GroupNorm per channel, the distillation default) or batch norm; and
ResNet-18-BN at a quarter of its width (16 base channels instead of 64): as deep, about a sixteenth of the
computation, near the width-128 ConvNet-BN's, so a CPU can train it as a deep BN observer."""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from ltdistill.models.registry import Classifier, make_norm, register


class BasicBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int, norm: str):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.norm1 = make_norm(norm, out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.norm2 = make_norm(norm, out_ch)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), make_norm(norm, out_ch))

    def forward(self, x):
        out = F.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(Classifier):
    def __init__(self, channels, num_classes, im_size, blocks=(2, 2, 2, 2), norm: str = "instance",
                 base_width: int = 64):
        super().__init__()
        widths = tuple(base_width * k for k in (1, 2, 4, 8))
        self.stem = nn.Sequential(nn.Conv2d(channels, base_width, 3, 1, 1, bias=False), make_norm(norm, base_width),
                                  nn.ReLU(True))
        layers, in_ch = [], base_width
        for i, (n, out_ch) in enumerate(zip(blocks, widths, strict=True)):
            for j in range(n):
                layers.append(BasicBlock(in_ch, out_ch, 2 if (i > 0 and j == 0) else 1, norm))
                in_ch = out_ch
        self.layers = nn.Sequential(*layers)
        self.classifier = nn.Linear(widths[-1], num_classes)

    def embed(self, x):
        return F.adaptive_avg_pool2d(self.layers(self.stem(x)), 1).flatten(1)


@register
def resnet18(channels, num_classes, im_size):
    return ResNet(channels, num_classes, im_size, norm="instance")


@register
def resnet18_bn(channels, num_classes, im_size):
    return ResNet(channels, num_classes, im_size, norm="batch")


@register
def resnet18_bn_w16(channels, num_classes, im_size):
    return ResNet(channels, num_classes, im_size, norm="batch", base_width=16)
