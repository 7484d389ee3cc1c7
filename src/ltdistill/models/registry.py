"""One registry of models (timm style): `create("convnet", channels=1, num_classes=10, im_size=(28, 28), width=32)`.

Every model is a `Classifier`: `embed(x)` gives the flat feature vector, `classifier` is the final nn.Linear,
so decoupled training (backbone vs head), herding features and t-SNE work the same on every architecture.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator

import torch
from torch import nn

from ltdistill.errors import BadInput
from ltdistill.params import Count, check_value, fits

_REGISTRY: dict[str, Callable[..., Classifier]] = {}
_PROCESS_DEFAULTS: dict[str, object] = {}  # option defaults of this process (the CLI's --convnet-stem)


def register(fn: Callable[..., Classifier]) -> Callable[..., Classifier]:
    _REGISTRY[fn.__name__] = fn
    return fn


def names() -> list[str]:
    return sorted(_REGISTRY)


@functools.cache
def has_batchnorm(name: str) -> bool:
    """Whether model `name` has BatchNorm layers (what recovery aligns to), read off a small instance."""
    model = _REGISTRY[name](1, 2, (16, 16), **resolved_options(name))
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def _options_of(name: str) -> dict[str, inspect.Parameter]:
    """A factory's options: its parameters after (channels, num_classes, im_size)."""
    if name not in _REGISTRY:
        raise BadInput(f"unknown model {name!r}; known: {', '.join(names())}")
    return dict(list(inspect.signature(_REGISTRY[name]).parameters.items())[3:])


def resolved_options(name: str, options: dict | None = None) -> dict:
    """Every option the model is built with: the factory's defaults, this process's defaults (option_defaults),
    then `options`. Records (expert buffers, teachers, evaluations) and cache keys hold these, so a network is
    named in full and a later change of a default never passes an old record off as the new network."""
    accepted = _options_of(name)
    unknown = [k for k in options or {} if k not in accepted]
    if unknown:
        raise BadInput(f"model {name!r} takes no option(s) {unknown}; it takes {list(accepted)}")
    resolved = {k: p.default for k, p in accepted.items() if p.default is not inspect.Parameter.empty}
    resolved.update({k: v for k, v in _PROCESS_DEFAULTS.items() if k in accepted})
    for key, value in (options or {}).items():  # the sizes (width, depth): counts, as the CLI's flags
        if isinstance(resolved.get(key), int):
            check_value(f"model {name!r}: option {key}", value, Count)
    return {**resolved, **(options or {})}


def identity(name: str, options: dict | None = None) -> dict:
    """The registered name and every option: what a cache key holds of a network."""
    return {"model": name, **resolved_options(name, options)}


def recorded_options(name: str, options: dict) -> dict:
    """The options a record means: one written before the ConvNet family had `stem` was made with the pad1
    network, so a ConvNet record without a stem reads as stem='pad1' (convnet.py)."""
    if "stem" in _options_of(name) and "stem" not in options:
        return {**options, "stem": "pad1"}
    return dict(options)


def options_for(name: str, **candidates) -> dict:
    """The candidate options (e.g. a protocol's width and depth) that model `name` takes."""
    accepted = _options_of(name)
    return {k: v for k, v in candidates.items() if k in accepted}


def convnet_stem() -> str:
    """The ConvNet family's first-layer rule in effect in this process (convnet.py): part of every key whose
    networks are built from defaults (distillation checkpoints, bench cells)."""
    return str(resolved_options("convnet")["stem"])


@contextlib.contextmanager
def option_defaults(**defaults) -> Iterator[None]:
    """Within the block, models that take an option get `defaults` for it unless it is given (the CLI's
    --convnet-stem). Values are checked as the models are built."""
    saved = dict(_PROCESS_DEFAULTS)
    _PROCESS_DEFAULTS.update({k: v for k, v in defaults.items() if v is not None})
    try:
        yield
    finally:
        _PROCESS_DEFAULTS.clear()
        _PROCESS_DEFAULTS.update(saved)


def create(name: str, *, channels: int, num_classes: int, im_size: tuple[int, int], **kwargs) -> Classifier:
    options = resolved_options(name, kwargs)  # checks the name and the options
    check_value("channels", channels, Count)
    check_value("num_classes", num_classes, Count)
    if not (fits(im_size, tuple[Count, ...]) and len(im_size) == 2):
        raise BadInput(f"im_size must be (height, width), two integers >= 1, got {im_size!r}")
    return _REGISTRY[name](channels, num_classes, tuple(im_size), **options)


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


def check_choice(option: str, value, choices: tuple) -> None:
    if value not in choices:
        raise BadInput(f"unknown {option} {value!r}; known: {', '.join(map(str, choices))}")


def make_norm(kind: str, channels: int) -> nn.Module:
    """'instance' is GroupNorm with one group per channel (the DC/MTT 'instancenorm', affine)."""
    if kind == "instance":
        return nn.GroupNorm(channels, channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise BadInput(f"unknown norm {kind!r}; known: instance, batch, none")


def pool_if_possible(x: torch.Tensor, pool: Callable[[torch.Tensor], torch.Tensor], last: bool) -> torch.Tensor:
    """2x2 pooling that never hands a following layer a 1-pixel map (instance norm needs > 1 value per channel),
    so deep nets accept small images (digits 16x16, ConvNetD4 on 28x28). The last pool may reach 1 pixel."""
    return pool(x) if min(x.shape[-2:]) >= (2 if last else 4) else x
