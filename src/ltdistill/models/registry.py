"""One registry of models (timm style): `create("convnet", channels=1, num_classes=10, im_size=(28, 28), width=32)`.

Every model is a `Classifier`: `embed(x)` gives the flat feature vector, `classifier` is the final nn.Linear,
so decoupled training (backbone vs head), herding features and t-SNE work the same on every architecture.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch import nn

from ltdistill.errors import BadInput

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    _REGISTRY[fn.__name__] = fn
    return fn


def names() -> list[str]:
    return sorted(_REGISTRY)


def create(name: str, *, channels: int, num_classes: int, im_size: tuple[int, int], **kwargs) -> Classifier:
    if name not in _REGISTRY:
        raise BadInput(f"unknown model {name!r}; known: {', '.join(names())}")
    factory = _REGISTRY[name]
    accepted = inspect.signature(factory).parameters
    unknown = [k for k in kwargs if k not in accepted]
    if unknown:
        raise BadInput(f"model {name!r} takes no option(s) {unknown}; it takes {[p for p in accepted][3:]}")
    return factory(channels, num_classes, tuple(im_size), **kwargs)


class Classifier(nn.Module):
    """A backbone producing flat features plus a linear head named `classifier`."""

    classifier: nn.Linear

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))

    def _make_head(self, channels: int, im_size: tuple[int, int], num_classes: int) -> None:
        """Size the head by running the backbone once on a dummy input: any input size works."""
        with torch.no_grad():
            was_training = self.training
            self.eval()
            dim = self.embed(torch.zeros(1, channels, *im_size)).shape[1]
            self.train(was_training)
        self.classifier = nn.Linear(dim, num_classes)


def make_norm(kind: str, channels: int) -> nn.Module:
    """'instance' is GroupNorm with one group per channel (the DC/MTT 'instancenorm', affine)."""
    if kind == "instance":
        return nn.GroupNorm(channels, channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise BadInput(f"unknown norm {kind!r}; known: instance, batch, none")


def pool_if_possible(x: torch.Tensor, pool: nn.Module, last: bool) -> torch.Tensor:
    """2x2 pooling that never hands a following layer a 1-pixel map (instance norm needs > 1 value per channel),
    so deep nets accept small images (digits 16x16, ConvNetD4 on 28x28). The last pool may reach 1 pixel."""
    return pool(x) if min(x.shape[-2:]) >= (2 if last else 4) else x
