"""The long-tailed builder: imbalance profiles, seeded subsampling, balanced and long-tailed test sets.

Exponential profile (Cui et al. 2019; the CIFAR-LT convention of LTDD's utils/dataset_cifar10imbalance.py):
    n_i = floor(n_max * beta^(-i/(C-1))),  class 0 the head, beta = n_max / n_min (beta = 1: balanced).
Step profile (Cao et al. 2019, LDAM): the first C//2 classes keep n_max, the rest floor(n_max / beta).
n_max is the smallest per-class count of the source split, so every class can supply its quota exactly.
The long-tailed test set applies the same profile to the balanced test split (LTDD supplement Sec. 7.1:
CIFAR10-LT beta=200 on 1000/class gives 1000,555,308,170,94,52,29,16,9,5).

Validation holdout (for tuning presets without looking at the test set): `holdout = V` first draws V images per
class from the source train split (seeded, apart from the subsampling's stream) as a balanced validation set, then
builds the long-tailed set from the rest, so n_max drops by V. The test sets are unchanged. Decision: the papers
tune on the test set (their repos select by test accuracy); we keep a separate split so a tuned preset's test number
is not selected on test data. holdout = 0 is the standard benchmark.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Annotated

import numpy as np
import torch

from ltdistill.data.order import check_order, class_rank, counts_in_order
from ltdistill.data.raw import RawDataset, RawSplit
from ltdistill.errors import BadInput
from ltdistill.params import AtLeast, Count, NonNegative, OneOf, Rate, Seed, check_value

PROFILES = ("exp", "step")
# floor() of a product that is an integer in exact arithmetic must not drop to the integer below (50.0 -> 49).
_FLOOR_SLACK = 1e-9


def class_counts(n_max: int, num_classes: int, imbalance_factor: float, profile: str = "exp") -> list[int]:
    """Per-class image counts of a long-tailed profile (pure function)."""
    check_value("num_classes", num_classes, Count)
    check_value("n_max", n_max, Count)
    if profile not in PROFILES:
        raise BadInput(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    if not imbalance_factor >= 1:
        raise BadInput(f"imbalance factor (beta = n_max/n_min) must be >= 1, got {imbalance_factor}")
    if imbalance_factor > n_max:
        raise BadInput(f"imbalance factor {imbalance_factor} leaves the tail with no image (n_max is {n_max})")
    if num_classes == 1:
        return [n_max]
    if profile == "exp":
        raw = [n_max * imbalance_factor ** (-i / (num_classes - 1)) for i in range(num_classes)]
    else:
        raw = [n_max if i < num_classes // 2 else n_max / imbalance_factor for i in range(num_classes)]
    return [max(1, math.floor(x * (1 + _FLOOR_SLACK))) for x in raw]


def subsample(labels: np.ndarray, counts: list[int], rng: np.random.Generator) -> np.ndarray:
    """Indices taking counts[c] images of class c without replacement, in the source's order."""
    chosen = []
    for c, n in enumerate(counts):
        pool = np.flatnonzero(labels == c)
        if len(pool) < n:
            raise BadInput(f"class {c} has {len(pool)} images, the profile asks for {n}")
        chosen.append(np.sort(rng.choice(pool, size=n, replace=False)))
    return np.concatenate(chosen)


@dataclass
class LTDataset:
    """A long-tailed train set with its balanced and long-tailed test sets, as normalized float tensors."""

    name: str
    imbalance_factor: float
    profile: str
    seed: int
    class_names: list[str]
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    test_lt_x: torch.Tensor
    test_lt_y: torch.Tensor
    mean: list[float]
    std: list[float]
    zca_eps: float | None = None
    holdout: int = 0  # validation images per class held out of the source train split (0: none)
    class_order: str = "natural"  # which class gets the profile's i-th count (data/order.py)
    val_x: torch.Tensor | None = None
    val_y: torch.Tensor | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def channels(self) -> int:
        return self.train_x.shape[1]

    @property
    def im_size(self) -> tuple[int, int]:
        _, _, h, w = self.train_x.shape
        return h, w

    @property
    def counts(self) -> list[int]:
        return torch.bincount(self.train_y, minlength=self.num_classes).tolist()

    def indices_of(self, c: int) -> torch.Tensor:
        return torch.nonzero(self.train_y == c).flatten()

    def whitened(self, eps: float = 0.1) -> LTDataset:
        """The same data ZCA-whitened, fitted on the long-tailed train set (as MTT/DATM/LTDD with --zca)."""
        from ltdistill.data.zca import ZCA

        if self.zca_eps is not None:
            raise ValueError("dataset is already ZCA-whitened")
        zca = ZCA(eps).fit(self.train_x)
        return replace(self, train_x=zca(self.train_x), test_x=zca(self.test_x), test_lt_x=zca(self.test_lt_x),
                       val_x=None if self.val_x is None else zca(self.val_x), zca_eps=eps)

    def validation(self) -> LTDataset:
        """The same training data scored on the held-out validation set (balanced; it also stands in for the
        long-tailed test set, so LT-test metrics of a validation run are balanced ones)."""
        if self.val_x is None or self.val_y is None:
            raise BadInput("this dataset has no validation split: build it with a holdout (--holdout V)")
        return replace(self, test_x=self.val_x, test_y=self.val_y, test_lt_x=self.val_x, test_lt_y=self.val_y)

    def describe(self) -> dict:
        return {"dataset": self.name, "imbalance_factor": self.imbalance_factor, "profile": self.profile,
                "data_seed": self.seed, "train_counts": self.counts, "num_classes": self.num_classes,
                "image_shape": list(self.train_x.shape[1:]), "mean": self.mean, "std": self.std,
                "zca_eps": self.zca_eps, **({"holdout": self.holdout} if self.holdout else {}),
                **({"class_order": self.class_order} if self.class_order != "natural" else {})}


def _to_float(split: RawSplit, mean: np.ndarray, std: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(split.images).float().div_(255.0)
    x = (x - torch.tensor(mean, dtype=torch.float32)[None, :, None, None]) / torch.tensor(std, dtype=torch.float32)[
        None, :, None, None]
    return x.contiguous(), torch.from_numpy(split.labels).long()


def _split(split: RawSplit, index: np.ndarray) -> RawSplit:
    return RawSplit(split.images[index], split.labels[index])


def build_longtail(raw: RawDataset, imbalance_factor: float | None, profile: str = "exp", seed: int = 0,
                   holdout: int = 0, class_order: str = "natural") -> LTDataset:
    """Build the LT train set and its test sets from a raw source (seeded: same seed, same images); with
    holdout V, V images per class of the source train split become the validation set first; `class_order`
    says which class gets the profile's i-th count (data/order.py; the long-tailed test set follows it too)."""
    if not isinstance(raw, RawDataset):
        raise BadInput(f"a raw dataset is needed (data.load_source), got {type(raw).__name__}")
    check_longtail_args(imbalance_factor, profile, seed, holdout, class_order)
    C = raw.num_classes
    rank = class_rank(class_order, raw.name, C)
    source_train, val = raw.train, None
    if holdout:
        if holdout < 0 or raw.native_longtail:
            raise BadInput("--holdout must be >= 0 and needs a balanced source (not a native long-tailed one)")
        rng_val = np.random.default_rng([seed, 2])
        smallest = int(np.bincount(raw.train.labels, minlength=C).min())
        if holdout >= smallest:
            raise BadInput(f"--holdout {holdout} leaves no training image in the smallest class ({smallest} images)")
        val_index = subsample(raw.train.labels, [holdout] * C, rng_val)
        keep = np.ones(len(raw.train.labels), dtype=bool)
        keep[val_index] = False
        val, raw = _split(raw.train, val_index), replace(raw, train=_split(raw.train, np.flatnonzero(keep)))
    train_per_class = np.bincount(raw.train.labels, minlength=C)
    test_per_class = np.bincount(raw.test.labels, minlength=C)
    if train_per_class.min() == 0:
        raise BadInput(f"{raw.name}: class {int(train_per_class.argmin())} has no training image")
    rng_train, rng_test = (np.random.default_rng([seed, k]) for k in range(2))

    if raw.native_longtail:
        native = float(train_per_class.max() / train_per_class.min())
        if imbalance_factor not in (None, native):
            raise BadInput(f"{raw.name} is long-tailed by construction (beta {native:.0f}); omit --imbalance")
        if class_order != "natural":
            raise BadInput(f"{raw.name} is long-tailed by construction: its class order is its own")
        imbalance_factor, profile = native, "native"
        train_index = np.arange(len(raw.train.labels))
        lt_test_counts = [max(1, int(test_per_class.min() * n / train_per_class.max())) for n in train_per_class]
    else:
        if imbalance_factor is None:
            raise BadInput(f"{raw.name} is balanced: give an imbalance factor (--imbalance, 1 = balanced)")
        counts = counts_in_order(class_counts(int(train_per_class.min()), C, imbalance_factor, profile), rank)
        train_index = subsample(raw.train.labels, counts, rng_train)
        lt_test_counts = counts_in_order(class_counts(int(test_per_class.min()), C,
                                                      min(imbalance_factor, test_per_class.min()), profile), rank)
    lt_test_index = subsample(raw.test.labels, lt_test_counts, rng_test)

    # Per-channel statistics of the whole source train split: fixed per dataset, independent of beta and holdout.
    pixels = source_train.images.transpose(1, 0, 2, 3).reshape(source_train.images.shape[1], -1)
    mean = np.array([p.mean(dtype=np.float64) for p in pixels]) / 255.0
    std = np.array([p.std(dtype=np.float64) for p in pixels]) / 255.0
    std = np.where(std > 0, std, 1.0)
    train_x, train_y = _to_float(_split(raw.train, train_index), mean, std)
    test_x, test_y = _to_float(raw.test, mean, std)
    test_lt_x, test_lt_y = _to_float(_split(raw.test, lt_test_index), mean, std)
    val_x, val_y = _to_float(val, mean, std) if val is not None else (None, None)
    return LTDataset(raw.name, float(imbalance_factor), profile, seed, list(raw.class_names), train_x, train_y,
                     test_x, test_y, test_lt_x, test_lt_y, mean.tolist(), std.tolist(), holdout=holdout,
                     val_x=val_x, val_y=val_y, class_order=class_order)


# the fields that say which long-tailed set a set or an expert buffer was made from, as describe() records them,
# and what each reads where a record leaves it out: describe() omits a holdout of 0 and the natural order, and
# records made before a field existed were made at these
RECORD_DEFAULTS = {"dataset": None, "imbalance_factor": None, "profile": "exp", "data_seed": 0, "holdout": 0,
                   "zca_eps": None, "class_order": "natural"}


def record_difference(recorded: dict, given: dict) -> tuple[str, object, object] | None:
    """The first of RECORD_DEFAULTS' fields in which the data a set or buffer was made from (`recorded`) and the
    data given (`given`, both as describe() writes them) differ, with both values; None where they agree."""
    for key, default in RECORD_DEFAULTS.items():
        made, now = recorded.get(key, default), given.get(key, default)
        if made != now:
            return key, made, now
    return None


def check_dataset(data) -> None:
    """One BadInput line where an API call is given something other than a dataset (an LTDataset, or anything that
    describes itself as one) for its data."""
    if not callable(getattr(data, "describe", None)):
        raise BadInput(f"an LTDataset is needed (data.longtail.load_longtail), got {type(data).__name__}")


def check_longtail_args(imbalance_factor, profile, seed, holdout, class_order) -> None:
    """One BadInput line for a long-tailed set's settings that build_longtail could not take (profile "native":
    what an artifact of a long-tailed source records; build_longtail keeps its own counts then)."""
    for arg, value, hint in (("imbalance_factor", imbalance_factor, Annotated[float, AtLeast(1)] | None),
                             ("profile", profile, Annotated[str, OneOf((*PROFILES, "native"))]),
                             ("seed", seed, Seed), ("holdout", holdout, NonNegative),
                             ("class_order", class_order, str)):
        check_value(arg, value, hint)
    check_order(class_order)


def load_longtail(name: str, imbalance_factor: float | None, profile: str = "exp", seed: int = 0,
                  data_dir=None, zca_eps: float | None = None, holdout: int = 0,
                  class_order: str = "natural") -> LTDataset:
    """One call from a dataset name to the (optionally ZCA-whitened) long-tailed dataset."""
    from ltdistill.data.sources import load_source

    check_longtail_args(imbalance_factor, profile, seed, holdout, class_order)  # before reading any file
    check_value("zca_eps", zca_eps, Rate | None)
    data = build_longtail(load_source(name, data_dir), imbalance_factor, profile, seed, holdout, class_order)
    return data.whitened(zca_eps) if zca_eps is not None else data
