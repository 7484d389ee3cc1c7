"""The SyntheticSet artifact: a directory with `synthetic.safetensors` (images float32 NCHW; labels int64 hard or
float32 soft-label logits; optional learned lr) and `meta.json` (how it was made). Never pickle.

Writing is atomic (temporary file + rename through safe_io, meta.json last: its presence marks a complete artifact),
refuses a directory that already holds a result (a link at an artifact's name counts as one), and refuses NaN/Inf
content; loading refuses NaN/Inf too, so a broken set is never trained on and scored.
"""

from __future__ import annotations

import json
import os
import subprocess
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch.utils.data import TensorDataset

from ltdistill import __version__
from ltdistill.errors import BadInput, Diverged, check
from ltdistill.params import AtLeast, NonNegative, Rate, check_value, fits
from ltdistill.safe_io import atomic_save_tensors, atomic_write_bytes, cannot_write, json_bytes

__all__ = ["SyntheticSet", "atomic_save_tensors", "atomic_write_bytes", "holds_result", "git_revision"]

TENSORS = "synthetic.safetensors"
META = "meta.json"
TEACHER = "teacher.safetensors"
IMAGE_DTYPES = (torch.float32, torch.float64)  # what a set's images may be (check_tensors, the constructor)


def git_revision() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def holds_result(directory: Path) -> bool:
    """Whether an artifact's file is there; a link at its name counts (lexists), so a planted link is refused up front
    as a result would be, before any work."""
    return any(os.path.lexists(directory / name) for name in (META, TENSORS))


@dataclass
class SyntheticSet:
    images: torch.Tensor  # float32 (N, C, H, W), in the dataset's normalized (and ZCA, if meta says so) space
    labels: torch.Tensor  # int64 (N,) hard labels, or float32 (N, K) soft-label logits
    lr: float | None = None  # learned student lr of trajectory methods, used by the evaluator
    meta: dict = field(default_factory=dict)
    # relabeling methods (SRe2L, unilevel): the teacher's state dict, saved as teacher.safetensors; meta["teacher"]
    # names its model, options and temperature, and the evaluator relabels every augmented batch with it
    teacher: dict[str, torch.Tensor] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.images, torch.Tensor) or not isinstance(self.labels, torch.Tensor):
            raise BadInput(f"a SyntheticSet's images and labels are tensors, got {type(self.images).__name__} and "
                           f"{type(self.labels).__name__}")
        if self.images.ndim != 4:
            raise BadInput(f"synthetic images must be (N, C, H, W), got shape {tuple(self.images.shape)}")
        if self.images.dtype not in IMAGE_DTYPES:  # as load refuses them (check_tensors)
            raise BadInput(f"synthetic images must be float32/float64, got {self.images.dtype}")
        if self.lr is not None and (not isinstance(self.lr, int | float) or isinstance(self.lr, bool)):
            raise BadInput(f"a SyntheticSet's learned lr must be a number, got {self.lr!r}")  # (its value: save's)
        if self.labels.shape[0] != self.images.shape[0] or self.labels.ndim not in (1, 2):
            raise BadInput(f"{self.images.shape[0]} synthetic images but labels of shape {tuple(self.labels.shape)}")
        if self.labels.ndim == 1 and (self.labels.is_floating_point() or self.labels.is_complex()
                                      or bool((self.labels < 0).any())):
            raise BadInput(f"hard labels must be class indices (integers >= 0), got {self.labels.dtype} "
                           f"{self.labels[:4].tolist()}")
        if self.images.shape[0] == 0:  # as load refuses (check_tensors): a set no model can train on
            raise BadInput("a SyntheticSet needs at least one image")
        if not isinstance(self.meta, dict):
            raise BadInput(f"a SyntheticSet's meta must be a dict (what meta.json holds), got "
                           f"{type(self.meta).__name__}")

    @property
    def soft(self) -> bool:
        return self.labels.ndim == 2

    @property
    def hard_labels(self) -> torch.Tensor:
        """The class each image stands for (argmax of soft logits, or the hard label)."""
        if not self.soft:
            return self.labels
        return torch.as_tensor(self.meta["classes"]) if "classes" in self.meta else self.labels.argmax(1)

    def label_stats(self) -> dict | None:
        """How much class signal stored soft labels carry (targets are softmax(logits), T = 1): per class the mean
        target probability of the image's own class, and the share of images whose label argmax is their class.
        Flat labels (own-class probability near 1/C) or labels drifted to another class weaken training on the set;
        None for hard labels."""
        if not self.soft:
            return None
        probs, classes = self.labels.float().softmax(1), self.hard_labels
        own = probs[torch.arange(len(probs)), classes]
        per_class = [float(own[classes == c].mean()) for c in range(self.labels.shape[1]) if (classes == c).any()]
        return {"own_class_prob": float(own.mean()), "own_class_prob_per_class": per_class,
                "argmax_is_class": float((probs.argmax(1) == classes).float().mean())}

    def as_dataset(self) -> TensorDataset:
        return TensorDataset(self.images, self.labels)

    def save(self, directory: str | os.PathLike) -> Path:
        out = Path(directory)
        if holds_result(out):
            raise BadInput(f"{out} already holds a result; choose a new --out (nothing was overwritten)")
        finite = [torch.isfinite(self.images).all(), torch.isfinite(self.labels.float()).all()]
        if self.lr is not None:
            finite.append(torch.isfinite(torch.tensor(self.lr)))
        if not all(bool(f) for f in finite):
            raise Diverged("refusing to write a SyntheticSet holding NaN/Inf (the run diverged)")
        if self.lr is not None and not self.lr > 0:  # what load refuses is never written
            raise Diverged(f"the learned student lr ended at {self.lr:.4g}, and a model cannot train at an lr <= 0 "
                           "(the run went astray): lower lr_lr or lr_img and rerun with --restart; no set was written")
        meta = {"format": "ltdistill.SyntheticSet/1", "version": __version__, "git_revision": git_revision(),
                **self.meta, "num_images": int(self.images.shape[0]), "soft_labels": self.soft}
        try:  # before anything is written: a meta that JSON cannot hold leaves no files
            meta_bytes = json_bytes(meta)
        except (TypeError, ValueError) as e:
            raise BadInput(f"a SyntheticSet's meta must hold JSON values only ({e}); nothing was written") from None
        try:
            out.mkdir(parents=True, exist_ok=True)
            tensors = {"images": self.images.float(), "labels": self.labels}
            if self.lr is not None:
                tensors["lr"] = torch.tensor([float(self.lr)])
            atomic_save_tensors(tensors, out / TENSORS)
            if self.teacher is not None:
                atomic_save_tensors({k: v.detach().cpu().contiguous() for k, v in self.teacher.items()},
                                    out / TEACHER)
            atomic_write_bytes(out / META, meta_bytes)
        except OSError as e:
            raise cannot_write(out, e) from None
        return out

    @classmethod
    def load(cls, directory: str | os.PathLike) -> SyntheticSet:
        path = Path(directory)
        if not (path / META).is_file() or not (path / TENSORS).is_file():
            raise BadInput(f"{path} is not a SyntheticSet directory (expected {META} and {TENSORS})")
        try:
            meta = json.loads((path / META).read_text())
            tensors = load_file(str(path / TENSORS))
        except (ValueError, SafetensorError, OSError) as e:  # ValueError: not JSON, not UTF-8
            raise BadInput(f"{path}: corrupt SyntheticSet ({type(e).__name__}: {e})") from None
        if "images" not in tensors or "labels" not in tensors:
            raise BadInput(f"{path / TENSORS} lacks 'images' or 'labels'")
        if not isinstance(meta, dict):
            raise BadInput(f"{path / META} must hold a JSON object")
        teacher = None
        if "teacher" in meta:
            try:
                teacher = load_file(str(path / TEACHER))
            except (SafetensorError, OSError) as e:
                raise BadInput(f"{path}: its meta.json names a teacher but {TEACHER} is unreadable ({e})") from None
        check_tensors(path, tensors)
        check_label_records(path / META, meta, tensors["labels"])
        refuse_non_finite(path, {**tensors, **{f"teacher {k}": v for k, v in (teacher or {}).items()}})
        return cls(tensors["images"], tensors["labels"], float(tensors["lr"][0]) if "lr" in tensors else None, meta,
                   teacher)


@dataclass(frozen=True)
class DataRecord:
    """What a set's meta.json says of the data it was distilled from, as evaluation rebuilds that data from it."""
    dataset: str
    imbalance_factor: Annotated[float, AtLeast(1)] | None
    profile: str
    data_seed: int
    holdout: NonNegative
    zca_eps: Rate | None
    class_order: str


def check_data_meta(path: Path, meta: dict) -> None:
    """meta.json's data fields checked before the data is rebuilt from them (params.py; one BadInput line)."""
    hints = typing.get_type_hints(DataRecord, include_extras=True)
    for key, hint in hints.items():
        if key in meta:
            check_value(f"{path / META}: {key}", meta[key], hint)
    if "class_order" in meta:
        from ltdistill.data.order import check_order

        check_order(meta["class_order"])


def check_fits(synthetic: SyntheticSet, data, where: str = "this set") -> None:
    """That `synthetic` can be evaluated on `data` (an LTDataset): images of its shape, labels within its classes,
    and the data its meta.json records the same (data.longtail.record_difference), so that the shot groups, the
    class prior ADSA calibrates with and a relabeling teacher's classes are those the set was made for."""
    check(isinstance(synthetic, SyntheticSet), f"a SyntheticSet is needed (a method's distill or SyntheticSet.load), "
          f"got {type(synthetic).__name__}")
    from ltdistill.data.longtail import check_dataset, record_difference

    check_dataset(data)
    record = data.describe()
    shape, data_shape = tuple(synthetic.images.shape[1:]), tuple(record["image_shape"])
    check(shape == data_shape, f"{where}: images {shape} do not match {record['dataset']} images {data_shape}")
    num_classes, labels = record["num_classes"], synthetic.labels
    if synthetic.soft:
        check(labels.shape[1] == num_classes,
              f"{where}: soft labels have {labels.shape[1]} classes, the dataset has {num_classes}")
    else:
        check(int(labels.min()) >= 0 and int(labels.max()) < num_classes,
              f"{where}: labels outside [0, {num_classes}) for a {num_classes}-class dataset")
    # a set made by hand records no data; every distill records it
    difference = record_difference(synthetic.meta, record) if "dataset" in synthetic.meta else None
    if difference is not None:
        key, made, given = difference
        raise BadInput(f"{where} was distilled with {key} {made!r}, the data given has {given!r}: evaluate it on the "
                       f"data it was made from (its meta.json's settings)")


def check_label_records(where: Path, meta: dict, labels: torch.Tensor) -> None:
    """What meta.json records of a set's labels, of the kinds its makers write: `classes`, each image's class (a list
    of class indices, one per image), and `teacher`, the relabeling model: {model, options, temperature} or an
    ensemble's {members, temperature}, with an optional ADSA `calibration` table. (A hand edit of another kind
    reached tensor, dict and float errors.)"""
    classes = meta.get("classes")
    count = labels.shape[1] if labels.ndim == 2 else None
    if classes is not None and not (isinstance(classes, list) and len(classes) == len(labels) and all(
            fits(c, NonNegative) and (count is None or c < count) for c in classes)):
        raise BadInput(f"{where}: classes must list one class index per image ({len(labels)}), got {classes!r:.80}")
    if "teacher" not in meta:
        return
    info = meta["teacher"]
    fine = isinstance(info, dict) and (isinstance(info.get("members"), list) or isinstance(info.get("model"), str))
    fine = fine and isinstance(info.get("options", {}), dict) and isinstance(info.get("calibration", {}), dict)
    if not (fine and fits(info.get("temperature", 1.0), Rate)):
        raise BadInput(f"{where}: teacher must be {{model, options, temperature > 0}} or {{members, temperature}}, "
                       f"got {info!r:.120}")


def check_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """What a set's tensors must be, checked before anything uses them: images float32/float64 (N, C, H, W) with
    N >= 1; labels int64 (N,) class indices, or float (N, K) soft-label logits; lr, when stored, one number > 0."""
    images, labels = tensors["images"], tensors["labels"]
    if images.dtype not in IMAGE_DTYPES or images.ndim != 4 or len(images) == 0:
        raise BadInput(f"{path / TENSORS}: images must be float32/float64 (N, C, H, W) with N >= 1, got "
                       f"{images.dtype} {tuple(images.shape)}")
    hard = labels.dtype == torch.int64 and labels.ndim == 1
    soft = labels.dtype in (torch.float32, torch.float64) and labels.ndim == 2
    if not (hard or soft) or len(labels) != len(images):
        raise BadInput(f"{path / TENSORS}: labels must be int64 (N,) or float (N, K) for N = {len(images)} images, "
                       f"got {labels.dtype} {tuple(labels.shape)}")
    if hard and (labels.min() < 0):
        raise BadInput(f"{path / TENSORS}: labels must be class indices >= 0")
    lr = tensors.get("lr")
    if lr is not None and (tuple(lr.shape) != (1,) or not lr.is_floating_point() or not float(lr[0]) > 0):
        raise BadInput(f"{path / TENSORS}: lr must be one number > 0, got {lr.tolist()}")


def refuse_non_finite(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """A set holding NaN/Inf (images, labels, lr or teacher weights) trains a model to NaN that then scores as one
    class: refused where it is read, never evaluated with a warning."""
    bad = [name for name, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        names = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise BadInput(f"{path}: its {names} hold NaN/Inf (the run that made it diverged); distill it again")
