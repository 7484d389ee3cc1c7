"""The registry of raw sources: name -> reader, where it looks for files, and how to get them.

Directory resolution, first hit wins: --data-dir (and its <name>/ subfolder), $LTDISTILL_DATA (and its <name>/
subfolder), then the places system packages install to (Debian's dataset-fashion-mnist).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ltdistill.data import cifar, folders, idx
from ltdistill.data.digits import load_digits_dataset
from ltdistill.data.raw import RawDataset, RawSplit
from ltdistill.errors import BadInput


@dataclass(frozen=True)
class Source:
    name: str
    reader: Callable[[list[Path]], RawDataset]
    how_to_get: str
    subdirs: tuple[str, ...] = ()
    system_dirs: tuple[str, ...] = ()
    needs_files: bool = True
    probe_files: tuple[str, ...] = field(default=())  # relative paths whose presence means "available"


SOURCES: dict[str, Source] = {
    s.name: s
    for s in [
        Source("digits", lambda dirs: load_digits_dataset(),
               "bundled with scikit-learn (8x8 digits upsampled to 16x16); nothing to get", needs_files=False),
        Source("fashion-mnist", lambda dirs: idx.load_idx_dataset("fashion-mnist", dirs, idx.FASHION_CLASSES),
               "apt-get install dataset-fashion-mnist (Debian), or put the four IDX files in --data-dir",
               subdirs=("fashion-mnist", "FashionMNIST/raw"), system_dirs=("/usr/share/datasets/fashion-mnist",),
               probe_files=("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte")),
        Source("mnist", lambda dirs: idx.load_idx_dataset("mnist", dirs, [str(i) for i in range(10)]),
               "put train/t10k-{images-idx3,labels-idx1}-ubyte[.gz] in --data-dir or $LTDISTILL_DATA/mnist",
               subdirs=("mnist", "MNIST/raw"), probe_files=("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte")),
        Source("cifar10", cifar.load_cifar10,
               "unpack cifar-10-python.tar.gz (the python version) into --data-dir or $LTDISTILL_DATA",
               probe_files=("cifar-10-batches-py/data_batch_1", "data_batch_1")),
        Source("cifar100", cifar.load_cifar100,
               "unpack cifar-100-python.tar.gz into --data-dir or $LTDISTILL_DATA",
               probe_files=("cifar-100-python/train", "train")),
        Source("tiny-imagenet", folders.load_tiny_imagenet,
               "unzip tiny-imagenet-200.zip into --data-dir or $LTDISTILL_DATA",
               probe_files=("tiny-imagenet-200/wnids.txt", "wnids.txt")),
        Source("imagenet-lt", folders.load_imagenet_lt,
               "an ImageNet root (train/, val/) holding ImageNet_LT_{train,test}.txt from Liu et al. 2019",
               subdirs=("imagenet", "imagenet-lt"), probe_files=("ImageNet_LT_train.txt",)),
    ]
}


def candidate_dirs(source: Source, data_dir: str | os.PathLike | None = None) -> list[Path]:
    roots = [Path(data_dir)] if data_dir else []
    if os.environ.get("LTDISTILL_DATA"):
        roots.append(Path(os.environ["LTDISTILL_DATA"]))
    dirs = []
    for root in roots:
        dirs += [root / sub for sub in source.subdirs] + [root / source.name, root]
    dirs += [Path(p) for p in source.system_dirs]
    return list(dict.fromkeys(dirs))


# names users type for a dataset, answered with its one spelling (one name per dataset keeps keys and records one)
ALSO_CALLED = {"fmnist": "fashion-mnist", "fashionmnist": "fashion-mnist", "fashion_mnist": "fashion-mnist",
               "cifar-10": "cifar10", "cifar-100": "cifar100", "tinyimagenet": "tiny-imagenet",
               "tiny_imagenet": "tiny-imagenet", "imagenet_lt": "imagenet-lt", "sklearn-digits": "digits"}


def get_source(name: str) -> Source:
    if name not in SOURCES:
        import difflib

        close = difflib.get_close_matches(str(name), SOURCES, n=1)
        guess = ALSO_CALLED.get(str(name).lower()) or (close[0] if close else None)
        hint = f" (did you mean {guess!r}?)" if guess else ""
        raise BadInput(f"unknown dataset {name!r}{hint}; known: {', '.join(SOURCES)}")
    return SOURCES[name]


def is_available(name: str, data_dir: str | os.PathLike | None = None) -> bool:
    source = get_source(name)
    if not source.needs_files:
        return True
    return any((d / f).exists() for d in candidate_dirs(source, data_dir) for f in source.probe_files)


def load_source(name: str, data_dir: str | os.PathLike | None = None) -> RawDataset:
    """Read a raw dataset by name; BadInput names the files it looked for when they are missing or broken."""
    source = get_source(name)
    raw = source.reader(candidate_dirs(source, data_dir))
    for split_name, split in (("train", raw.train), ("test", raw.test)):
        if len(split.labels) == 0:
            raise BadInput(f"{name}: the {split_name} split is empty")
        if split.labels.min() < 0 or split.labels.max() >= raw.num_classes:
            raise BadInput(f"{name}: {split_name} labels outside [0, {raw.num_classes})")
    return raw


__all__ = ["SOURCES", "Source", "RawDataset", "RawSplit", "load_source", "is_available", "get_source"]
