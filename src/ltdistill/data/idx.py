"""IDX readers for MNIST and Fashion-MNIST (gzipped or not). Format: yann.lecun.com/exdb/mnist (magic 0x00 0x00
dtype ndim, big-endian int32 dims, then the data)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from ltdistill.data.raw import RawDataset, RawSplit
from ltdistill.errors import BadInput

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file of unsigned bytes; a truncated or foreign file raises BadInput naming it."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise BadInput(f"cannot read IDX file {path}: {e}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise BadInput(f"{path} is not an IDX file of unsigned bytes (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise BadInput(f"{path} is truncated (header cut short)")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    expected = int(np.prod(dims)) if dims else 0
    if len(data) - header != expected:
        raise BadInput(f"{path} is truncated or corrupt: {len(data) - header} data bytes, "
                       f"expected {expected} for {dims}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def find_idx_file(dirs: list[Path], stem: str) -> Path | None:
    for d in dirs:
        for name in (stem, stem + ".gz"):
            if (d / name).is_file():
                return d / name
    return None


def load_idx_dataset(name: str, dirs: list[Path], class_names: list[str]) -> RawDataset:
    paths = {}
    for key, stem in IDX_FILES.items():
        path = find_idx_file(dirs, stem)
        if path is None:
            looked = ", ".join(str(d) for d in dirs) or "(no directory)"
            raise BadInput(f"{name}: {stem}[.gz] not found; looked in {looked}")
        paths[key] = path
    arrays = {key: read_idx(path) for key, path in paths.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise BadInput(f"{name}: {split} images {images.shape} and labels {labels.shape} do not match")
        if labels.max(initial=0) >= len(class_names):
            raise BadInput(f"{name}: {split} labels go up to {labels.max()}, expected < {len(class_names)}")
    return RawDataset(
        name=name,
        train=RawSplit(arrays["train_images"][:, None], arrays["train_labels"]),
        test=RawSplit(arrays["test_images"][:, None], arrays["test_labels"]),
        class_names=class_names,
    )
