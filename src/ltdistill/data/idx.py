"""IDX readers for MNIST and Fashion-MNIST (gzipped or not). Format: yann.lecun.com/exdb/mnist (magic 0x00 0x00
dtype ndim, big-endian int32 dims, then the data)."""

from __future__ import annotations

import gzip
import math
import zlib
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
MAX_IDX_BYTES = 2**30  # data bytes one IDX file may declare (MNIST's training images: 47 MB)
MAX_IDX_DIMS = 4  # MNIST-style images (N, H, W) and labels (N,); 4 leaves room for a channel axis
READ_CHUNK = 2**20
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file of unsigned bytes; a truncated, oversized or foreign file raises BadInput naming it.

    The header is read from the stream first and the data after it incrementally, up to the size the header declares
    plus one byte: a gzip bomb (1 MB inflating to gigabytes) costs at most the declared size, which is capped."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            dims = read_idx_header(f, path)
            size = math.prod(dims)
            if size > MAX_IDX_BYTES:
                raise BadInput(f"{path} declares {dims} = {size} bytes, more than the {MAX_IDX_BYTES} an IDX file "
                               "may hold here (a corrupt header)")
            data = read_at_most(f, size + 1)
    except (OSError, EOFError, zlib.error) as e:
        raise BadInput(f"cannot read IDX file {path}: {e}") from None
    if len(data) > size:
        raise BadInput(f"{path} holds more data than its header declares ({size} bytes for {dims})")
    if len(data) < size:
        raise BadInput(f"{path} is truncated or corrupt: {len(data)} data bytes, expected {size} for {dims}")
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def read_idx_header(f, path: Path) -> list[int]:
    """The dimensions an IDX header declares, read from the stream (magic 0x00 0x00 0x08 ndim, big-endian dims)."""
    magic = f.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] != 0x08:
        raise BadInput(f"{path} is not an IDX file of unsigned bytes (bad magic number)")
    ndim = magic[3]
    if not 1 <= ndim <= MAX_IDX_DIMS:
        raise BadInput(f"{path} declares {ndim} dimensions; IDX images and labels have 1 to {MAX_IDX_DIMS}")
    header = f.read(4 * ndim)
    if len(header) < 4 * ndim:
        raise BadInput(f"{path} is truncated (header cut short)")
    return [int.from_bytes(header[4 * i: 4 * i + 4], "big") for i in range(ndim)]


def read_at_most(f, limit: int) -> bytearray:
    """Up to `limit` bytes of a stream, read a chunk at a time, so memory follows what the stream yields."""
    data = bytearray()
    while len(data) < limit:
        chunk = f.read(min(READ_CHUNK, limit - len(data)))
        if not chunk:
            break
        data += chunk
    return data


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
