"""CIFAR-10 / CIFAR-100 python-pickle batches, read with a restricted unpickler.

Loading never executes code and never allocates more than the file holds. The unpickler resolves only stand-ins for
what numpy's pickles name, none of which takes a size: an array begins empty and is filled from its byte payload
alone (numpy's own `ndarray(shape)` and `_reconstruct(cls, shape, dtype)` allocate whatever shape a 100-byte file
asks for), a dtype is a plain numeric type code and a byte order, and the bytes codec is latin-1 only. Anything else,
e.g. os.system, is refused with BadInput. Before unpickling, every opcode is read once from the file's bytes
(pickletools.genops): a declared length beyond the file's end, or a memo index beyond the opcodes before it, is
refused there, since the unpickler reserves memory for both before it reads anything.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import pickletools
from pathlib import Path

import numpy as np

from ltdistill.data.raw import RawDataset, RawSplit
from ltdistill.errors import BadInput

MAX_PICKLE_BYTES = 2**30  # one batch file (CIFAR-100's train file: 155 MB)
NUMERIC_DTYPES = frozenset({"b1", "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f2", "f4", "f8"})
MEMO_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})


def _text(value) -> str | None:
    """A pickled str: bytes when it came from Python 2 (encoding='bytes'), str from Python 3."""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value if isinstance(value, str) else None


class PickledDtype:
    """numpy.dtype as a pickle names it: a plain numeric type code and its byte order, nothing that sets a size."""

    def __init__(self, code, align=False, copy=True):
        self.code, self.byteorder = _text(code), "="
        if self.code not in NUMERIC_DTYPES:
            raise pickle.UnpicklingError(f"refusing dtype {code!r} (plain numeric types only)")

    def __setstate__(self, state) -> None:
        # (version, byteorder, subarray, names, fields, elsize, alignment, flags): only the byte order is taken
        byteorder = _text(state[1]) if isinstance(state, tuple) and len(state) >= 5 else None
        if byteorder not in ("<", ">", "|", "=") or state[2:5] != (None, None, None):
            raise pickle.UnpicklingError(f"refusing dtype state {state!r}")
        self.byteorder = byteorder

    def numpy(self) -> np.dtype:
        return np.dtype(self.byteorder + self.code)


class PickledArray(np.ndarray):
    """An ndarray as its pickle rebuilds it: begun empty, then filled from its byte payload, whose length must be
    what the shape and dtype say."""

    def __setstate__(self, state) -> None:
        if not (isinstance(state, tuple) and len(state) == 5):
            raise pickle.UnpicklingError("refusing an ndarray state that is not (version, shape, dtype, order, bytes)")
        version, shape, dtype, fortran, payload = state
        ok = (isinstance(shape, tuple) and len(shape) <= 4 and all(isinstance(n, int) and n >= 0 for n in shape)
              and isinstance(dtype, PickledDtype) and isinstance(payload, bytes))
        if not ok or math.prod(shape) * dtype.numpy().itemsize != len(payload):
            raise pickle.UnpicklingError(f"refusing an ndarray of shape {shape!r} whose bytes do not fill it")
        super().__setstate__((version, shape, dtype.numpy(), bool(fortran), payload))  # type: ignore[arg-type]


class _NdarrayName:
    """What `numpy.ndarray` resolves to: the class _reconstruct is told to build; calling it (an allocation of any
    shape) is refused."""

    def __call__(self, *args, **kwargs):
        raise pickle.UnpicklingError("refusing numpy.ndarray(...): it allocates from a size, not from data")


NDARRAY = _NdarrayName()


def empty_array(cls, shape, dtype) -> PickledArray:
    """numpy's _reconstruct, without its allocation: numpy's pickles begin every array empty, shape (0,), and give
    the real shape with the payload (PickledArray.__setstate__)."""
    if cls is not NDARRAY or shape != (0,):
        raise pickle.UnpicklingError(f"refusing _reconstruct({cls!r}, {shape!r}): only an empty ndarray begins one")
    return np.ndarray.__new__(PickledArray, (0,), np.uint8)


def pickled_scalar(dtype, payload) -> np.generic:
    if not (isinstance(dtype, PickledDtype) and isinstance(payload, bytes)
            and len(payload) == dtype.numpy().itemsize):
        raise pickle.UnpicklingError("refusing a numpy scalar that is not its dtype's bytes")
    return np.frombuffer(payload, dtype.numpy())[0]


def latin1_encode(text, encoding="utf-8") -> bytes:
    """_codecs.encode as Python 3 pickles bytes at protocol 2 (text, 'latin1'); other codecs are refused."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refusing _codecs.encode(..., {encoding!r})")
    return text.encode("latin-1")


_RESOLVED = {
    ("numpy.core.multiarray", "_reconstruct"): empty_array,
    ("numpy._core.multiarray", "_reconstruct"): empty_array,
    ("numpy.core.multiarray", "scalar"): pickled_scalar,
    ("numpy._core.multiarray", "scalar"): pickled_scalar,
    ("numpy", "ndarray"): NDARRAY,
    ("numpy", "dtype"): PickledDtype,
    ("_codecs", "encode"): latin1_encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _RESOLVED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return _RESOLVED[module, name]


def check_opcodes(data: bytes) -> None:
    """Read every opcode and its argument from the bytes (no allocation beyond them): a counted string longer than
    what is left raises ValueError, and so does a memo index beyond the opcodes before it (pickles number their memo
    from 0; the unpickler sizes its memo table by the largest index, 16 GB for a 9-byte file)."""
    for count, (opcode, arg, _) in enumerate(pickletools.genops(io.BytesIO(data))):
        if opcode.name in MEMO_PUTS and isinstance(arg, int) and arg > count:
            raise ValueError(f"memo index {arg} at opcode {count}")


def safe_unpickle(path: Path) -> dict:
    """Load a CIFAR batch file: plain containers and numpy arrays only."""
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size > MAX_PICKLE_BYTES:  # f.read(n) reserves n bytes: ask its size first
                raise BadInput(f"{path}: larger than the {MAX_PICKLE_BYTES} bytes a CIFAR batch may hold")
            data = f.read()
    except OSError as e:
        raise BadInput(f"{path}: cannot read CIFAR batch ({e.strerror or e})") from None
    try:
        check_opcodes(data)
        obj = RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except pickle.UnpicklingError as e:
        raise BadInput(f"{path}: unsafe or corrupt pickle ({e})") from None
    except (OSError, EOFError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise BadInput(f"{path}: cannot read CIFAR batch ({type(e).__name__}: {e})") from None
    if not isinstance(obj, dict):
        raise BadInput(f"{path}: expected a dict batch, got {type(obj).__name__}")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _decode_names(names, path: Path) -> list[str]:
    """Class names as text; anything but a list of strings is refused (str() of a nested list the memo shares can
    be gigabytes)."""
    if not isinstance(names, list) or not all(isinstance(n, bytes | str) for n in names):
        raise BadInput(f"{path}: class names must be a list of strings")
    return [n.decode() if isinstance(n, bytes) else n for n in names]


def _pixels(batch: dict, path: Path) -> np.ndarray:
    """The batch's images, (N, 3, 32, 32) uint8: only an array is taken (np.asarray of nested lists that share their
    rows through the pickle memo would allocate their product)."""
    data = batch["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8:
        got = f"a {data.dtype} array" if isinstance(data, np.ndarray) else type(data).__name__
        raise BadInput(f"{path}: CIFAR data must be a uint8 array, got {got}")
    if data.ndim != 2 or data.shape[1] != 3072:
        raise BadInput(f"{path}: CIFAR data must be (N, 3072), got {data.shape}")
    return np.asarray(data).reshape(-1, 3, 32, 32)


def _labels(batch: dict, key: str, path: Path) -> np.ndarray:
    """The batch's labels: a list or 1-d array of integers (bools, floats, strings and nested lists refused)."""
    labels = batch[key]
    if isinstance(labels, np.ndarray):
        ok = labels.ndim == 1 and labels.dtype.kind in "iu"
    else:
        ok = isinstance(labels, list) and all(isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)
                                              for v in labels)
    if not ok:
        raise BadInput(f"{path}: CIFAR labels must be integers ('{key}' holds {type(labels).__name__} of other values)")
    return np.asarray(labels, dtype=np.int64)


def _read_batches(paths: list[Path], label_key: str) -> RawSplit:
    images, labels = [], []
    for path in paths:
        batch = safe_unpickle(path)
        if "data" not in batch or label_key not in batch:
            raise BadInput(f"{path}: CIFAR batch lacks 'data' or '{label_key}'")
        images.append(_pixels(batch, path))
        labels.append(_labels(batch, label_key, path))
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
    names = _decode_names(safe_unpickle(root / "batches.meta").get("label_names", []), root / "batches.meta")
    return RawDataset("cifar10", _read_batches([root / f for f in train_files], "labels"),
                      _read_batches([root / "test_batch"], "labels"), names or [str(i) for i in range(10)])


def load_cifar100(dirs: list[Path]) -> RawDataset:
    root = _locate(dirs, "cifar-100-python", ["train", "test", "meta"], "cifar100")
    names = _decode_names(safe_unpickle(root / "meta").get("fine_label_names", []), root / "meta")
    return RawDataset("cifar100", _read_batches([root / "train"], "fine_labels"),
                      _read_batches([root / "test"], "fine_labels"), names or [str(i) for i in range(100)])
