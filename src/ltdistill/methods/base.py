"""The method protocol (design.md): configuration in the constructor, the work in one `distill` call.

Every method is a `Method` subclass with a frozen `Config` dataclass whose fields are its hyperparameters; the
constructor checks names, types, ranges and choices at the boundary, as the fields declare them (params.py;
unknown key or misfit: BadInput).
"""

from __future__ import annotations

import dataclasses
import resource
import time
from typing import Any, ClassVar, Protocol

import torch

from ltdistill import models
from ltdistill.data.longtail import LTDataset
from ltdistill.errors import BadInput
from ltdistill.params import check_fields
from ltdistill.runtime import host
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

    def __init__(self, **config: Any):
        """Every value checked against its field's declared type and constraint (ltdistill/params.py)."""
        self.config = self.Config(**check_fields(self.Config, config, self.name))

    def distill(self, data: LTDataset, ipc: int, *, experts=None, seed: int = 0, progress: bool = True,
                device: str = "cpu", workdir=None) -> SyntheticSet:
        """Validate, time and seed the run, then call the method's `_distill`."""
        if not isinstance(ipc, int) or ipc < 1:
            raise BadInput(f"ipc must be an integer >= 1, got {ipc!r}")
        torch.manual_seed(seed)
        if str(device).startswith("cuda"):
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        synthetic = self._distill(data, ipc, experts=experts, seed=seed, progress=progress, device=device,
                                  workdir=workdir)
        synthetic.meta = {
            "method": self.name, "ipc": ipc, "seed": seed, "config": dataclasses.asdict(self.config),
            **data.describe(), "wall_time_s": time.perf_counter() - start,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "cuda_peak_mb": torch.cuda.max_memory_allocated(device) / 2**20 if str(device).startswith("cuda") else None,
            "host": host(), "stem": models.convnet_stem(), "class_order": data.class_order, **synthetic.meta,
        }
        return synthetic

    def _distill(self, data: LTDataset, ipc: int, *, experts, seed: int, progress: bool, device: str,
                 workdir) -> SyntheticSet:
        raise NotImplementedError


def per_class_quota(data: LTDataset, ipc: int, short_class: str) -> list[int]:
    """How many real images each class contributes: ipc, or all of a tail class that has fewer
    (short_class 'all'), or BadInput (short_class 'error')."""
    counts = data.counts
    short = [c for c, n in enumerate(counts) if n < ipc]
    if short and short_class == "error":
        raise BadInput(f"ipc {ipc} exceeds the real images of class(es) {short} "
                       f"(counts {[counts[c] for c in short]}); lower ipc or set short_class = 'all'")
    return [min(ipc, n) for n in counts]
