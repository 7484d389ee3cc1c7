"""The method protocol (design.md): configuration in the constructor, the work in one `distill` call.

Every method is a `Method` subclass with a frozen `Config` dataclass whose fields are its hyperparameters; the
constructor checks names, types, ranges and choices at the boundary, as the fields declare them (params.py;
unknown key or misfit: BadInput).
"""

from __future__ import annotations

import dataclasses
import resource
import time
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch

from ltdistill import models, protocols
from ltdistill.data.longtail import LTDataset, check_dataset
from ltdistill.errors import BadInput
from ltdistill.params import Seed, check_device, check_fields, check_value
from ltdistill.runtime import host
from ltdistill.safe_io import why_not_a_directory
from ltdistill.synthetic import SyntheticSet


class Distiller(Protocol):
    name: str

    def distill(self, data: LTDataset, ipc: int, *, experts=None, seed: int = 0, progress: bool = True,
                device: str = "cpu", workdir=None) -> SyntheticSet: ...


@dataclasses.dataclass(frozen=True)
class NoConfig:
    pass


class Method:
    name: ClassVar[str]
    Config: ClassVar[type] = NoConfig

    def __init__(self, protocol: str | None = "cpu", **config: Any):
        """Every value checked against its field's declared type and constraint (ltdistill/params.py).
        `protocol` (protocols.py): the scale of the networks the method trains, "cpu" (width 32) or "paper" (width
        128), given to its `width` and `depth` fields at distill time, when the image size is known, unless they are
        set here; None keeps the config's own defaults."""
        if protocol is not None and protocol not in protocols.PROTOCOLS:
            raise BadInput(f"protocol must be one of {protocols.PROTOCOLS}, got {protocol!r}")
        self.config = self.Config(**check_fields(self.Config, config, self.name))
        self.protocol, self.explicit = protocol, set(config)

    def scaled(self, im_size: tuple[int, int]):
        """The config with the protocol's network width and depth for this image size where none was given."""
        if self.protocol is None:
            return self.config
        fields = {f.name for f in dataclasses.fields(self.Config)}
        network = {k: v for k, v in protocols.network(self.protocol, im_size).items()
                   if k in fields and k not in self.explicit}
        return dataclasses.replace(self.config, **network) if network else self.config

    # the expert buffer it matches (`ltdistill experts`, `--decoupled` for "decoupled"); None: it needs none
    buffer_kind: ClassVar[str | None] = None
    # what its sets carry: "soft" (soft labels or a relabeling teacher), "hard" (class labels only); None: not
    # declared (known once it has run)
    labels: ClassVar[str | None] = None
    keep_every: int | None = None  # keep the set every so many iterations in workdir/snapshots (loop.Snapshots)
    run_meta: dict = {}  # what every set of the run records (the final one, and the snapshots)

    def makes_soft_labels(self) -> bool | None:
        """Whether its sets will carry soft labels or a relabeling teacher, under this config: what `distill
        --labels adsa` calibrates, so that a run whose set could not be calibrated is refused before it starts;
        None where the method does not say."""
        return None if self.labels is None else self.labels == "soft"

    def distill(self, data: LTDataset, ipc: int, *, experts=None, seed: int = 0, progress: bool = True,
                device: str = "cpu", workdir=None, keep_every: int | None = None) -> SyntheticSet:
        """Validate, time and seed the run, then call the method's `_distill`; `keep_every`: snapshots of an
        optimized set every so many iterations (iteration 0 too) in workdir/snapshots, for evaluate --snapshots."""
        check_dataset(data)
        if not isinstance(ipc, int) or ipc < 1:
            raise BadInput(f"ipc must be an integer >= 1, got {ipc!r}")
        if ipc > max(data.counts):  # also keeps a mistyped IPC from filling memory before anything says so
            raise BadInput(f"ipc {ipc} is more images per class than the largest class of the training set holds "
                           f"({max(data.counts)}): a set that size distills nothing (the whole set is `evaluate "
                           "--full`)")
        if keep_every is not None and (not isinstance(keep_every, int) or keep_every < 1):
            raise BadInput(f"keep_every must be an integer >= 1, got {keep_every!r}")
        check_value("seed", seed, Seed)
        device = check_device(device)
        if workdir is not None and (taken := why_not_a_directory(Path(workdir))):  # not at the first checkpoint
            raise BadInput(f"workdir {workdir}: {taken}")
        self.keep_every = keep_every
        self.config = self.scaled(data.im_size)
        self.run_meta = {"method": self.name, "ipc": ipc, "seed": seed, "config": dataclasses.asdict(self.config),
                         **data.describe(), "stem": models.convnet_stem(), "class_order": data.class_order}
        torch.manual_seed(seed)
        if str(device).startswith("cuda"):
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        synthetic = self._distill(data, ipc, experts=experts, seed=seed, progress=progress, device=device,
                                  workdir=workdir)
        synthetic.meta = {
            **self.run_meta, "wall_time_s": time.perf_counter() - start,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "cuda_peak_mb": torch.cuda.max_memory_allocated(device) / 2**20 if str(device).startswith("cuda") else None,
            "host": host(), **synthetic.meta,
        }
        return synthetic

    def _distill(self, data: LTDataset, ipc: int, *, experts, seed: int, progress: bool, device: str,
                 workdir) -> SyntheticSet:
        raise NotImplementedError


def with_meta(synthetic: SyntheticSet, meta: dict) -> SyntheticSet:
    """The set with the run's metadata (loss history, timings, counters) added to its own."""
    synthetic.meta.update(meta)
    return synthetic
