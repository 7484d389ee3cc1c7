"""CIFAR-10 / CIFAR-100 python-pickle batches, read with a restricted unpickler.

Loading never executes code: the unpickler resolves only the globals numpy needs to rebuild an ndarray
(and the bytes codec Python 3 pickles use); anything else, e.g. os.system, is refused with BadInput.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from ltdistill.data.raw import RawDataset, RawSplit
from ltdistill.errors import BadInput

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return super().find_class(module, name)


def safe_unpickle(path: Path) -> dict:
    """Load a CIFAR batch file: plain containers and numpy arrays only."""
    try:
        with open(path, "rb") as f:
            obj = RestrictedUnpickler(f, encoding="bytes").load()
    except pickle.UnpicklingError as e:
        raise BadInput(f"{path}: unsafe or corrupt pickle ({e})") from None
    except (OSError, EOFError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise BadInput(f"{path}: cannot read CIFAR batch ({type(e).__name__}: {e})") from None
    if not isinstance(obj, dict):
        raise BadInput(f"{path}: expected a dict batch, got {type(obj).__name__}")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _decode_names(names) -> list[str]:
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def _read_batches(paths: list[Path], label_key: str) -> RawSplit:
    images, labels = [], []
    for path in paths:
        batch = safe_unpickle(path)
        if "data" not in batch or label_key not in batch:
            raise BadInput(f"{path}: CIFAR batch lacks 'data' or '{label_key}'")
        data = np.asarray(batch["data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3072:
            raise BadInput(f"{path}: CIFAR data must be (N, 3072), got {data.shape}")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(np.asarray(batch[label_key], dtype=np.int64))
        if len(labels[-1]) != len(images[-1]):
            raise BadInput(f"{path}: {len(images[-1])} images but {len(labels[-1])} labels")
    return RawSplit(np.concatenate(images), np.concatenate(labels))


def _locate(dirs: list[Path], folder: str, files: list[str], name: str) -> Path:
    for d in dirs:
        for root in (d / folder, d):
            if all((root / f).is_file() for f in files):
                return root
    looked = ", ".join(str(d) for d in dirs) or "(no directory)"
    raise BadInput(f"{name}: {folder}/{{{','.join(files)}}} not found; looked in {looked}")


def load_cifar10(dirs: list[Path]) -> RawDataset:
    train_files = [f"data_batch_{i}" for i in range(1, 6)]
    root = _locate(dirs, "cifar-10-batches-py", [*train_files, "test_batch", "batches.meta"], "cifar10")
    names = _decode_names(safe_unpickle(root / "batches.meta").get("label_names", []))
    return RawDataset("cifar10", _read_batches([root / f for f in train_files], "labels"),
                      _read_batches([root / "test_batch"], "labels"), names or [str(i) for i in range(10)])


def load_cifar100(dirs: list[Path]) -> RawDataset:
    root = _locate(dirs, "cifar-100-python", ["train", "test", "meta"], "cifar100")
    names = _decode_names(safe_unpickle(root / "meta").get("fine_label_names", []))
    return RawDataset("cifar100", _read_batches([root / "train"], "fine_labels"),
                      _read_batches([root / "test"], "fine_labels"), names or [str(i) for i in range(100)])
