"""Every file ltdistill writes goes through here: atomic, never through a link, JSON always valid.

A write creates a temporary file with O_CREAT|O_EXCL|O_NOFOLLOW under a random name in the target directory (at a
predictable name such as `.meta.json.tmp-<pid>`, a link planted in advance would redirect the write to its target),
writes and fsyncs it, and renames it over the final name. A final name that exists as anything but a regular file (a
symlink, a directory, a fifo) is refused with BadInput and nothing is written: we never create links, so one at our
name is not ours, and replacing it would hide what was planted. The name is checked before the temporary file is
made and again just before the rename; a link planted between the second check and the rename is replaced, not
followed (rename acts on the name), so no write ever reaches a link's target. Any failure (a full disk) removes the
temporary file before the error goes on.

JSON: non-finite floats become null and the encoder runs with allow_nan=False, so no file holds a bare NaN.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import numbers
import os
import secrets
import stat
from pathlib import Path

import torch
from safetensors.torch import save as serialize_tensors

from ltdistill.errors import BadInput

_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` by a fresh temporary file and a rename (see the module docstring)."""
    path = Path(path)
    refuse_non_regular(path)
    fd, tmp = create_temp(path.parent, f".{path.name}.")
    try:
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        refuse_non_regular(path)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def open_append(path: str | os.PathLike):
    """A log or lock file opened for appending, created if missing, never through a link (O_NOFOLLOW: a link
    planted at the name is refused by the kernel, ELOOP, and reported as BadInput)."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.fdopen(os.open(path, flags, 0o644), "a")
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise BadInput(f"{path} is a symbolic link; ltdistill does not write through links") from None
        raise


@contextlib.contextmanager
def exclusive(lock: Path):
    """Hold an advisory lock (flock) on the file `lock` for the block. Processes that may write one shared place
    (bench pieces side by side on one --out: an expert buffer, a cell's artifact, an evaluation JSON; runs sharing a
    model_cache: a trained model) take it first, so a second one waits for the first and then finds the work done,
    instead of doing it again; the kernel drops the lock when its holder dies."""
    import fcntl  # Unix; imported here so that the rest of this module loads anywhere

    lock.parent.mkdir(parents=True, exist_ok=True)
    with open_append(lock) as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def read_json_object(path: str | os.PathLike, remedy: str = "") -> dict:
    """The JSON object in the file at `path`; one BadInput line (its path, what is wrong, then `remedy`) where it is
    unreadable, not JSON or not an object."""
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:  # ValueError: not JSON, or bytes that are not UTF-8
        raise BadInput(f"{path} is corrupt: {e}{remedy}") from None
    if not isinstance(value, dict):
        raise BadInput(f"{path} is corrupt: it holds {type(value).__name__}, not an object{remedy}")
    return value


def held(lock: Path) -> bool:
    """Whether another process holds `lock` (exclusive's flock) now: read from disk without taking it, and without
    creating the file where it is missing (nothing has held it then)."""
    import fcntl

    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(lock, flags)
    except OSError:  # missing, or a link that exclusive would refuse too
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a lock this probe took
    return False


def save_figure(fig, path: str | os.PathLike, **options) -> None:
    """A matplotlib figure written as PNG through atomic_write_bytes (savefig alone opens the name itself)."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", **options)
    atomic_write_bytes(path, buffer.getvalue())


def atomic_save_tensors(tensors: dict[str, torch.Tensor], path: str | os.PathLike,
                        metadata: dict[str, str] | None = None) -> None:
    """A safetensors file written through atomic_write_bytes: safetensors' save_file opens a path by name, so the
    tensors are serialized in memory first (one extra copy of their bytes while writing)."""
    data = serialize_tensors({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata=metadata)
    atomic_write_bytes(path, data)


def json_bytes(obj, indent: int | None = 2) -> bytes:
    """`obj` as JSON that every parser reads: NaN/Inf (floats, numpy or torch scalars) become null."""
    return json.dumps(finite_or_null(obj), indent=indent, allow_nan=False, default=_plain_number).encode()


def write_json(path: str | os.PathLike, obj, indent: int | None = 2) -> None:
    atomic_write_bytes(path, json_bytes(obj, indent))


def check_writable(directory: str | os.PathLike) -> None:
    """Fail before hours of work, not after: create the directory and write, fsync and remove a small file in it
    (os.access cannot tell for root, a read-only mount, a full disk or a path through a regular file)."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = create_temp(directory, ".ltdistill-probe-")
        try:
            write_all(fd, b"\0" * 4096)
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as e:
        raise cannot_write(directory, e) from None


def cannot_write(directory: Path, error: OSError) -> BadInput:
    """The one line for an output directory that could not be made or written, saying why in words where mkdir's
    error would not (a dangling link or a file at its name: "File exists")."""
    return BadInput(f"cannot write to {directory}: {why_not_a_directory(directory) or error.strerror or error}")


def why_not_a_directory(path: Path) -> str | None:
    """Why mkdir(exist_ok=True) found `path` taken, in words; None when it is a directory or absent."""
    if path.is_symlink() and not path.exists():
        return f"it is a link to {os.readlink(path)}, which does not exist"
    if os.path.lexists(path) and not path.is_dir():
        return "it exists and is not a directory"
    return None


def refuse_non_regular(path: Path) -> None:
    """BadInput when `path` exists as anything but a regular file (it is absent or a file we may replace)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        kind = "a symlink" if stat.S_ISLNK(mode) else "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise BadInput(f"{path} is {kind}; refusing to write through or over it (nothing was written)")


def create_temp(directory: Path, prefix: str) -> tuple[int, Path]:
    """A new file under an unpredictable name, opened by this call alone (O_EXCL|O_NOFOLLOW: a link or a file
    already there is never opened); mode 0o666 less the umask, like any file the user creates."""
    for _ in range(16):
        tmp = directory / f"{prefix}{secrets.token_hex(8)}.tmp"
        try:
            return os.open(tmp, _CREATE_FLAGS, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(directory))


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def finite_or_null(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite_or_null(v) for v in obj]
    return obj


def _plain_number(obj):
    """json's `default` for what it cannot encode itself: numpy integers as ints, other numbers of numpy and torch
    as floats (non-finite: null)."""
    if isinstance(obj, numbers.Integral):
        return int(obj)
    try:
        value = float(obj)
    except (TypeError, ValueError):
        raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable") from None
    return value if math.isfinite(value) else None
