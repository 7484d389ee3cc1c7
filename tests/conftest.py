import gzip
import os
import pickle
import struct

import numpy as np
import pytest
import torch

from ltdistill.data.longtail import build_longtail
from ltdistill.data.raw import RawDataset, RawSplit

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs a worker per core. One thread per worker, and per `ltdistill` command a worker starts, keeps
    # them from oversubscribing the cores (torch otherwise takes a thread per core in every process).
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_and_clean_env(monkeypatch):
    torch.manual_seed(0)
    monkeypatch.delenv("LTDISTILL_DATA", raising=False)


def write_idx(path, array: np.ndarray, compress: bool = False) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def write_mnist_dir(root, n_train=40, n_test=20, classes=10, compress=False, seed=0):
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        write_idx(root / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), compress)
        write_idx(root / f"{split}-labels-idx1-ubyte", np.arange(n) % classes, compress)
    return root


def write_cifar_batch(path, n, label_key=b"labels", classes=10, seed=0):
    rng = np.random.default_rng(seed)
    batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), label_key: list(np.arange(n) % classes)}
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)


def write_cifar10_dir(parent, sizes, test_n, seed=0, names=None):
    """A CIFAR-10 folder as the python version unpacks (parent/cifar-10-batches-py): five training batches of
    `sizes` images, a test batch of `test_n`, the class names; returns the folder."""
    root = parent / "cifar-10-batches-py"
    root.mkdir(parents=True)
    for i, n in enumerate(sizes, 1):
        write_cifar_batch(root / f"data_batch_{i}", n, seed=seed + i)
    write_cifar_batch(root / "test_batch", test_n, seed=seed)
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": names or [f"n{i}".encode() for i in range(10)]}, f, protocol=2)
    return root


def blob_raw(num_classes=4, per_class=60, test_per_class=20, size=8, channels=1, seed=0) -> RawDataset:
    """An easy synthetic source: each class is a distinct bright square position plus noise."""
    rng = np.random.default_rng(seed)

    def make(n):
        labels = np.repeat(np.arange(num_classes), n)
        images = rng.integers(0, 60, (len(labels), channels, size, size))
        for i, c in enumerate(labels):
            r, col = divmod(int(c), 2)
            images[i, :, r * size // 2:(r + 1) * size // 2, col * size // 2:(col + 1) * size // 2] += 190
        return RawSplit(images.clip(0, 255).astype(np.uint8), labels)

    return RawDataset("blobs", make(per_class), make(test_per_class), [f"c{i}" for i in range(num_classes)])


@pytest.fixture
def blob_data():
    return build_longtail(blob_raw(), imbalance_factor=5, seed=0)


class Crash(Exception):
    pass


def crash_after(calls: int, fn):
    """Wrap fn so that its (calls+1)-th call raises: a process dying mid-run, after its last checkpoint."""
    count = {"n": 0}

    def wrapped(*args, **kwargs):
        count["n"] += 1
        if count["n"] > calls:
            raise Crash
        return fn(*args, **kwargs)

    return wrapped


@pytest.fixture
def float64_default():
    """torch's default dtype float64 for the test (the parity tests compare to official numbers at 1e-6)."""
    saved = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(saved)


def parity_close(actual, expected, rtol: float, what: str = "") -> None:
    """max |actual - expected| <= rtol * max |expected| (entries ~0 on both sides do not inflate a ratio)."""
    a = torch.as_tensor(actual, dtype=torch.float64).detach()
    e = torch.as_tensor(expected, dtype=torch.float64)
    assert a.shape == e.shape, (what, a.shape, e.shape)
    err = float((a - e).abs().max() / e.abs().max().clamp_min(1e-300))
    assert err <= rtol, f"{what}: max relative error {err:.3g} > {rtol:g}"
