"""The raw split every reader returns: uint8 images (N, C, H, W) and int64 labels, before any long-tail subsampling."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class RawSplit:
    images: np.ndarray  # uint8 (N, C, H, W)
    labels: np.ndarray  # int64 (N,)

    def __post_init__(self) -> None:
        self.images = np.require(self.images, dtype=np.uint8, requirements=["C", "W"])  # writable: torch wants it
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.images.ndim != 4 or len(self.images) != len(self.labels):
            raise ValueError(f"RawSplit wants images (N,C,H,W) and N labels, "
                             f"got {self.images.shape} and {self.labels.shape}")


@dataclass
class RawDataset:
    name: str
    train: RawSplit
    test: RawSplit
    class_names: list[str]
    # Long-tailed by construction (ImageNet-LT): the builder keeps the train split as it is.
    native_longtail: bool = False

    @property
    def num_classes(self) -> int:
        return len(self.class_names)
