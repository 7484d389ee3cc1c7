"""Parameter constraints, declared where a parameter is and checked once at the boundary (scikit-learn's
`_parameter_constraints`, written as the annotation): a config dataclass says

    iterations: Annotated[int, AtLeast(1)] = 5000
    label_init: Literal["decoupled", "biased", "onehot"] = "decoupled"
    model: Annotated[str, MODEL] = "convnet"

and `check_fields` refuses anything else with one BadInput line that says what was expected and what was got, before
a run starts (methods.create, the CLI's --set and TOML presets alike). Floats must be finite everywhere: a NaN
learning rate is a typo, not a setting. bool is never taken for int or float (TOML `ipc = true`)."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from ltdistill.errors import BadInput

__all__ = ["BN_MODEL", "MAX_SEED", "MODEL", "AtLeast", "BNModelName", "Between", "Count", "ModelName", "Momentum",
           "NonNegative", "OneOf", "Positive", "Rate", "Seed", "Share", "Weight", "check_device", "check_fields",
           "check_own_fields", "check_value", "describe", "fits"]


@dataclass(frozen=True)
class AtLeast:
    low: float

    def ok(self, value) -> bool:
        return value >= self.low

    def __str__(self) -> str:
        return f">= {self.low:g}"


@dataclass(frozen=True)
class Positive:
    def ok(self, value) -> bool:
        return value > 0

    def __str__(self) -> str:
        return "> 0"


@dataclass(frozen=True)
class Between:
    """low <= value <= high, or low < value when low_open."""
    low: float
    high: float
    low_open: bool = False

    def ok(self, value) -> bool:
        return (value > self.low if self.low_open else value >= self.low) and value <= self.high

    def __str__(self) -> str:
        return f"in {'(' if self.low_open else '['}{_shown(self.low)}, {_shown(self.high)}]"


def _shown(bound: float) -> str:
    """A bound as a user typed it: an integer in full (a seed's 4294967295, not 4.29497e+09), a float short."""
    return str(bound) if isinstance(bound, int) else f"{bound:g}"


@dataclass(frozen=True)
class OneOf:
    """A text field with a fixed set of values that callers pass as plain str (Literal would make them cast)."""
    choices: tuple[str, ...]

    def ok(self, value) -> bool:
        return value in self.choices

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)


@dataclass(frozen=True)
class RegisteredModel:
    batchnorm: bool = False  # only models with BatchNorm layers (recovery's observers)

    def ok(self, value) -> bool:  # builds the one model named, not every model (has_batchnorm reads an instance)
        from ltdistill.models import has_batchnorm, names

        return value in names() and (not self.batchnorm or has_batchnorm(value))

    def choices(self) -> list[str]:
        from ltdistill.models import names

        return [name for name in names() if self.ok(name)]

    def __str__(self) -> str:
        return f"a registered model{' with BatchNorm layers' if self.batchnorm else ''} ({', '.join(self.choices())})"


MODEL = RegisteredModel()
BN_MODEL = RegisteredModel(batchnorm=True)

# the constrained types method configs use
Count = Annotated[int, AtLeast(1)]  # iterations, steps, epochs, sizes
NonNegative = Annotated[int, AtLeast(0)]  # start epochs, pixel shifts, iterations that may be 0
# one rule for every seed: numpy's generators refuse negative ones, torch's above 2**64 - 1, and the seeds derived
# from one (an expert's seed * 100_003 + its index, an evaluation run's seed + its index) must stay in torch's range
MAX_SEED = 2**32 - 1
Seed = Annotated[int, Between(0, MAX_SEED)]
Rate = Annotated[float, Positive()]  # learning rates, temperatures
Weight = Annotated[float, AtLeast(0)]  # loss weights; a learning rate that may be 0 (frozen)
Momentum = Annotated[float, Between(0, 1)]
Share = Annotated[float, Between(0, 1, low_open=True)]  # a fraction that must keep something
ModelName = Annotated[str, MODEL]
BNModelName = Annotated[str, BN_MODEL]
_KINDS = {int: "an integer", float: "a number", bool: "true or false", str: "text", type(None): "none"}


def describe(hint) -> str:
    """What a hint accepts, in words."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        if all(isinstance(c, RegisteredModel | OneOf) for c in args[1:]):  # they name every value
            return str(args[1])
        return f"{describe(args[0])} " + " and ".join(map(str, args[1:]))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in args)
    if origin is tuple:
        return f"a non-empty list, each item {describe(args[0])}"
    return _KINDS.get(hint, getattr(hint, "__name__", str(hint)))


def check_device(device: Any, name: str = "device") -> str:
    """`device` if it is "cpu", or "cuda" / "cuda:N" on a machine with CUDA; else one BadInput line."""
    import torch

    text = str(device) if isinstance(device, str | torch.device) else ""
    kind, _, index = text.partition(":")
    if kind == "cuda" and (index == "" or index.isdigit()):
        if not torch.cuda.is_available():
            raise BadInput(f"{name} {text}: CUDA is not available on this machine")
        return text
    if text != "cpu":
        raise BadInput(f"{name} must be cpu or cuda[:N], got {device!r}")
    return text


def check_value(name: str, value: Any, hint) -> Any:
    """`value` if it fits `hint` (an int given for a float becomes a float), else BadInput."""
    ok, checked = _fits(value, hint)
    if not ok:
        raise BadInput(f"{name} must be {describe(hint)}, got {value!r}")
    return checked


def fits(value, hint) -> bool:
    """Whether `value` fits `hint`, as check_value would take it."""
    return _fits(value, hint)[0]


def _fits(value, hint) -> tuple[bool, Any]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        ok, checked = _fits(value, args[0])
        return (ok and all(c.ok(checked) for c in args[1:] if checked is not None), checked)
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in args), value
    if origin in (Union, types.UnionType):
        for option in args:
            ok, checked = _fits(value, option)
            if ok:
                return True, checked
        return False, value
    if origin is tuple:  # tuple[X, ...]: a non-empty list (TOML, --set) or tuple of X
        if not isinstance(value, list | tuple) or not value:
            return False, value
        items = [_fits(item, args[0]) for item in value]
        return all(ok for ok, _ in items), tuple(checked for _, checked in items)
    if hint is type(None):
        return value is None, value
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is float:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return number and math.isfinite(value), float(value) if number else value
    if hint is str:
        return isinstance(value, str), value
    return isinstance(value, hint), value


def check_fields(cls: type, values: dict[str, Any], name: str, kind: str = "method") -> dict[str, Any]:
    """`values` checked against the fields of dataclass `cls`, the config of `kind` `name` (unknown names and
    misfits are BadInput: "method 'ltdd' has no config key(s) ...", "ltdd.lr_img must be a number > 0, got nan")."""
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise BadInput(f"{kind} {name!r} has no config key(s) {unknown}; it has {sorted(fields)}")
    return {k: check_value(f"{name}.{k}", v, hints[k]) for k, v in values.items()}


def check_own_fields(config: Any, name: str, kind: str, skip: tuple[str, ...] = ()) -> None:
    """check_fields for a frozen dataclass instance's own fields (less `skip`), from its __post_init__: the checked
    values are written back, so an int given for a float becomes the float."""
    values = {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.name not in skip}
    for field, value in check_fields(type(config), values, name, kind).items():
        object.__setattr__(config, field, value)
