"""ConvNet of the DC/DSA/DM/MTT/DATM/LTDD line (Gidaris & Komodakis 2018; networks.py of VICO-UoE/DatasetCondensation
and GeorgeCazenavette/mtt-distillation, `ConvNet._make_layers`): depth x [conv3x3(width) -> norm -> ReLU -> 2x2 avg
pool], then a linear head. Width 128, depth 3 (depth 4 for 64x64), instance norm by default.

The first layer (`stem`) follows the official rule by default: `padding=3 if channel == 1 and d == 0 else 1`, so a
one-channel 28x28 image (MNIST, Fashion-MNIST) works on 32x32 maps and the head sees 4x4 features, as in every
published Fashion-MNIST number of the line. `stem="pad1"` pads every layer by 1 (28 -> 14 -> 7 -> 3): the network
ltdistill built before it followed the rule; results recorded without a stem were made with it (see
registry.recorded_options). Three-channel inputs are the same under both."""

from __future__ import annotations

import contextlib
from typing import cast

import torch
from torch import nn

from ltdistill.errors import BadInput
from ltdistill.models.registry import Classifier, check_choice, make_norm, pool_if_possible, register
from ltdistill.models.unroll_ops import avg_pool2x2, norm_relu

STEMS = ("official", "pad1")


def first_padding(stem: str, channels: int) -> int:
    check_choice("stem", stem, STEMS)
    return 3 if stem == "official" and channels == 1 else 1


class ConvNet(Classifier):
    def __init__(self, channels: int, num_classes: int, im_size: tuple[int, int], width: int = 128, depth: int = 3,
                 norm: str = "instance", pooling: str = "avg", stem: str = "official"):
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = channels
        for d in range(depth):
            padding = first_padding(stem, channels) if d == 0 else 1
            layers += [nn.Conv2d(in_ch, width, 3, padding=padding), make_norm(norm, width), nn.ReLU(inplace=True)]
            in_ch = width
        self.blocks = nn.ModuleList(nn.Sequential(*layers[i:i + 3]) for i in range(0, len(layers), 3))
        self.pool = nn.AvgPool2d(2) if pooling == "avg" else nn.MaxPool2d(2)
        self.kinds = (norm, pooling)
        self.unroll_ops: str | None = None  # use_unroll_ops
        self._make_head(channels, im_size, num_classes)

    def use_unroll_ops(self, kernels: str | None) -> ConvNet:
        """Run each block's instance norm and ReLU, and the pooling, as unroll_ops.py's functions, written out to
        the second order, the norm's passes "compiled" or "eager" (None: the modules): for trajectory unrolls, which
        differentiate twice. The parameters stay the same."""
        if kernels is not None:
            check_choice("unroll kernels", kernels, ("compiled", "eager"))
            if not self.takes_unroll_ops():
                raise BadInput("the unroll ops need a ConvNet with instance norm and average pooling")
        self.unroll_ops = kernels
        return self

    def takes_unroll_ops(self) -> bool:
        return self.kinds == ("instance", "avg")

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.blocks) - 1
        if self.unroll_ops is not None:
            x = standard_layout(x)
        for i, block in enumerate(self.blocks):
            if self.unroll_ops is None:
                x = pool_if_possible(block(x), self.pool, last=i == last)
                continue
            conv, norm, _ = cast(nn.Sequential, block)  # the ReLU is norm_relu's
            assert isinstance(norm, nn.GroupNorm)  # use_unroll_ops takes instance norm only
            x = norm_relu(conv(x), norm.weight, norm.bias, norm.eps, compiled=self.unroll_ops == "compiled")
            x = pool_if_possible(x, avg_pool2x2, last=i == last)
        return x.flatten(1)


def standard_layout(x: torch.Tensor) -> torch.Tensor:
    """x with NCHW strides. A one-channel batch whose strides also read as channels-last (DSA's crop returns one, as
    the reference's does) makes the first convolution's output channels-last, which each unroll pass, taking
    contiguous tensors, and each convolution backward would copy back; the view copies nothing."""
    return x.reshape(len(x), -1).view(x.shape) if x.is_contiguous() else x.contiguous()


@contextlib.contextmanager
def unroll_ops_where_taken(net: nn.Module, kernels: str | None = "compiled"):
    """`net` through the unroll ops for the block's duration where it is a ConvNet that takes them (instance norm,
    average pooling); any other network, or kernels None, as it is. For methods that differentiate a network's
    gradient once inside other, first-order work (DC's matching between its network's training epochs)."""
    if kernels is None or not isinstance(net, ConvNet) or not net.takes_unroll_ops():
        yield net
        return
    before = net.unroll_ops
    net.use_unroll_ops(kernels)
    try:
        yield net
    finally:
        net.use_unroll_ops(before)


@register
def convnet(channels, num_classes, im_size, width: int = 128, depth: int = 3, norm: str = "instance",
            stem: str = "official"):
    return ConvNet(channels, num_classes, im_size, width=width, depth=depth, norm=norm, stem=stem)


@register
def convnet_d4(channels, num_classes, im_size, width: int = 128, norm: str = "instance", stem: str = "official"):
    return ConvNet(channels, num_classes, im_size, width=width, depth=4, norm=norm, stem=stem)


@register
def convnet_bn(channels, num_classes, im_size, width: int = 128, depth: int = 3, stem: str = "official"):
    return ConvNet(channels, num_classes, im_size, width=width, depth=depth, norm="batch", stem=stem)


@register
def convnet_nn(channels, num_classes, im_size, width: int = 128, depth: int = 3, stem: str = "official"):
    return ConvNet(channels, num_classes, im_size, width=width, depth=depth, norm="none", stem=stem)
