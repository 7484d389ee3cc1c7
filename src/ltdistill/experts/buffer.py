"""The expert trajectory buffer: a directory with `index.json` and one safetensors file per finished trajectory.

Each trajectory file holds `trajectory`, a float32 (epochs + 1, P) tensor: the expert's parameters, flattened in
`model.named_parameters()` order, at initialization and after every epoch (MTT buffer.py). Decoupled buffers
(LTDD Expert Decoupling) hold `rep_XXX` (representation experts) and `cls_XXX` (classifier experts, whose
trajectory starts at the matching representation expert's final parameters and moves only the head).

A trajectory file appears only by atomic rename (safe_io: a fresh temporary file, removed when the write fails), so
a file present is complete; unfinished experts live in `.partial/` with their optimizer-free training state (experts
use momentum-free SGD) and RNG state. A write that fails (a full disk) is one line of BadInput, and the experts
finished before it stay: the same command rerun resumes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open

from ltdistill.errors import BadInput
from ltdistill.safe_io import atomic_save_tensors, cannot_write, read_json_object, write_json

INDEX = "index.json"
KINDS = ("standard", "rep", "cls")


def trajectory_file(directory: Path, kind: str, i: int) -> Path:
    return directory / f"{kind}_{i:03d}.safetensors"


@dataclass
class ExpertBuffer:
    directory: Path
    index: dict

    # -- creation -------------------------------------------------------------------------------------------
    @classmethod
    def create_or_open(cls, directory: str | Path, index: dict, comparable=None) -> ExpertBuffer:
        """Open a buffer for writing; a second run with the same settings resumes, other settings are refused.
        `comparable(index)`: what of an index must be equal (default: all of it, less the version)."""
        path = Path(directory)
        if (path / INDEX).exists():
            existing = read_json_object(path / INDEX)
            ours, theirs = (comparable(index), comparable(existing)) if comparable is not None else (index, existing)
            keys = [k for k in ours if k not in ("version",)]
            differing = [k for k in keys if theirs.get(k) != ours[k]]
            if differing:
                raise BadInput(f"{path} holds an expert buffer made with other settings ({', '.join(differing)}); "
                               "choose a new --out")
            return cls(path, existing)
        try:
            path.mkdir(parents=True, exist_ok=True)
            write_json(path / INDEX, index)
        except OSError as e:
            raise cannot_write(path, e) from None
        return cls(path, index)

    @classmethod
    def open(cls, directory: str | Path) -> ExpertBuffer:
        if not isinstance(directory, str | os.PathLike):
            raise BadInput(f"experts must be an expert buffer's directory, got {type(directory).__name__}")
        path = Path(directory)
        if not (path / INDEX).is_file():
            raise BadInput(f"{path} is not an expert buffer (no {INDEX}); make one with `ltdistill experts`")
        index = read_json_object(path / INDEX)
        check_index(path / INDEX, index)
        buffer = cls(path, index)
        if not buffer.finished("rep" if index.get("decoupled") else "standard"):
            raise BadInput(f"{path} holds no finished expert yet; run `ltdistill experts` to fill it")
        return buffer

    # -- reading --------------------------------------------------------------------------------------------
    @property
    def param_shapes(self) -> list[tuple[str, list[int]]]:
        return [(name, shape) for name, shape in self.index["param_shapes"]]

    def finished(self, kind: str) -> list[int]:
        return sorted(int(p.stem.split("_")[1]) for p in self.directory.glob(f"{kind}_*.safetensors"))

    def load(self, kind: str, i: int) -> torch.Tensor:
        path = trajectory_file(self.directory, kind, i)
        try:
            trajectory = load_file(str(path))["trajectory"]
        except (SafetensorError, OSError, KeyError) as e:
            raise BadInput(f"corrupt expert file {path}: {type(e).__name__}: {e}") from None
        num_params = sum(int(torch.tensor(s).prod()) for _, s in self.param_shapes)
        if trajectory.ndim != 2 or trajectory.shape[1] != num_params:
            raise BadInput(f"{path}: trajectory of shape {tuple(trajectory.shape)}, expected (*, {num_params})")
        if not torch.isfinite(trajectory).all():
            raise BadInput(f"{path}: trajectory holds NaN/Inf")
        return trajectory

    def epoch_seconds(self, kind: str, i: int) -> list[float] | None:
        """Wall seconds of each epoch of a finished expert; None when its trajectory predates timing (an epoch
        resumed from an untimed partial state is not counted)."""
        with safe_open(str(trajectory_file(self.directory, kind, i)), "pt") as f:
            return f.get_tensor("epoch_seconds").tolist() if "epoch_seconds" in f.keys() else None

    def train_seconds(self, kind: str) -> float | None:
        """Wall seconds spent training the finished experts of one kind (summed over their epochs); None when a
        trajectory predates timing."""
        total = 0.0
        for i in self.finished(kind):
            seconds = self.epoch_seconds(kind, i)
            if seconds is None:
                return None
            total += sum(seconds)
        return total

    def save(self, kind: str, i: int, trajectory: torch.Tensor, epoch_seconds: list[float] | None = None) -> None:
        tensors = {"trajectory": trajectory}
        if epoch_seconds is not None:
            tensors["epoch_seconds"] = torch.tensor(epoch_seconds, dtype=torch.float64)
        write_tensors(tensors, trajectory_file(self.directory, kind, i))

    def check_matches(self, data_description: dict) -> None:
        """Refuse a buffer trained on another dataset, beta, profile, subsample, holdout, whitening or class order
        (data.longtail.record_difference)."""
        from ltdistill.data.longtail import record_difference

        difference = record_difference(self.index, data_description)
        if difference is not None:
            key, made, given = difference
            raise BadInput(f"expert buffer {self.directory} was trained on {key}={made!r}, not {given!r}")

    # -- partial (resumable) state --------------------------------------------------------------------------
    def partial_path(self, kind: str, i: int) -> Path:
        return self.directory / ".partial" / f"{kind}_{i:03d}.safetensors"

    def save_partial(self, kind: str, i: int, tensors: dict[str, torch.Tensor]) -> None:
        path = self.partial_path(kind, i)
        path.parent.mkdir(exist_ok=True)
        write_tensors(tensors, path)

    def load_partial(self, kind: str, i: int) -> dict[str, torch.Tensor] | None:
        path = self.partial_path(kind, i)
        if not path.exists():
            return None
        try:
            return load_file(str(path))
        except (SafetensorError, OSError):
            return None  # a broken partial state is recomputed, never trusted

    def drop_partial(self, kind: str, i: int) -> None:
        self.partial_path(kind, i).unlink(missing_ok=True)


def write_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """atomic_save_tensors; a failure (a full disk) is one line that says what is kept and how to go on."""
    try:
        atomic_save_tensors(tensors, path)
    except OSError as e:
        raise BadInput(f"cannot write {path}: {e.strerror or e}; the experts finished before it are kept, "
                       "rerun the same command to resume") from None


def check_index(where: Path, index: dict) -> None:
    """The fields of a buffer's index that build its students and data, each of the kind `experts` writes (a hand
    edit of another kind reached torch or dict errors): the model's name and options, the whitening, the layout."""
    from ltdistill.params import Rate, check_value

    fine = (isinstance(index.get("model"), str) and isinstance(index.get("model_options", {}), dict)
            and isinstance(index.get("decoupled", False), bool))
    if not fine:
        raise BadInput(f"{where} is corrupt: model (text), model_options (a table) or decoupled (true/false) is of "
                       "another kind")
    check_value(f"{where} zca_eps", index.get("zca_eps"), Rate | None)
