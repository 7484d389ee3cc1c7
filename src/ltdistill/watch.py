"""Watching a run while it goes: optional TensorBoard event files (`--log-dir DIR` on distill, experts, evaluate),
and a warning when the work ahead, measured at the pace of its first steps, will take more than an hour.

What the reference scripts send to wandb, written where `tensorboard --logdir DIR` reads it:
- distill: the matching loss of every iteration, every scalar learnable (the student lr of MTT/DATM/LTDD) and the
  skip/rollback counters (`distill/<method>/...`);
- experts: each expert's mean training loss per epoch (`experts/<kind>_<i>/loss`);
- evaluate: each run's mean training loss and lr per epoch, then its balanced and per-class test accuracy
  (`evaluate/run<k>/...`).

Nothing is created until the first value arrives, so a command refused at its settings leaves no directory. The
event file's name ends in a random suffix, and a log directory that is a link is refused, so the writer never
follows a link it did not make. Under torchrun rank 0 writes to DIR and rank k to DIR/rank<k>. TensorBoard is an
optional dependency (`pip install 'ltdistill[watch]'`); without it `--log-dir` is refused as one line.
"""

from __future__ import annotations

import contextlib
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

from ltdistill.errors import BadInput

_log_dir: Path | None = None
_writer = None
_prefix: list[str] = []
LONG_RUN_S = 3600.0  # a run expected to take longer than this is announced before it goes on
_warned: set[str] = set()


def check_available() -> None:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise BadInput("--log-dir writes TensorBoard event files and needs the tensorboard package: "
                       "pip install 'ltdistill[watch]' (or pip install tensorboard)") from None


@contextlib.contextmanager
def logging_to(log_dir: str | Path | None, rank: int = 0) -> Iterator[None]:
    """Within the block, `scalar` writes to log_dir (rank > 0: log_dir/rank<k>); None: it does nothing."""
    global _log_dir, _writer
    if log_dir is None:
        yield
        return
    check_available()
    directory = Path(log_dir) if rank == 0 else Path(log_dir) / f"rank{rank}"
    if any(p.is_symlink() for p in (directory, *directory.parents)):
        raise BadInput(f"--log-dir {log_dir} is (or lies under) a symbolic link; give a plain directory")
    _log_dir, _writer = directory, None
    try:
        yield
    finally:
        if _writer is not None:
            _writer.close()
        _log_dir, _writer = None, None


def active() -> bool:
    return _log_dir is not None


@contextlib.contextmanager
def under(name: str) -> Iterator[None]:
    """Tags written within the block go under `name/` (evaluate --snapshots: one folder per kept set)."""
    _prefix.append(name)
    try:
        yield
    finally:
        _prefix.pop()


def scalar(tag: str, value: float | None, step: int) -> None:
    """One point of the curve `tag`; None (a skipped iteration) and no log directory write nothing."""
    global _writer
    if _log_dir is None or value is None:
        return
    tag = "/".join([*_prefix, tag])
    if _writer is None:
        from torch.utils.tensorboard import SummaryWriter

        _log_dir.mkdir(parents=True, exist_ok=True)
        _writer = SummaryWriter(str(_log_dir), filename_suffix=f".{secrets.token_hex(8)}")
    _writer.add_scalar(tag, float(value), step)


def scalars(prefix: str, values: dict[str, float | None], step: int) -> None:
    for name, value in values.items():
        scalar(f"{prefix}/{name}", value, step)


def flush() -> None:
    if _writer is not None:
        _writer.flush()


def warn_if_long(what: str, seconds_each: float, left: int, unit: str, resume: str) -> bool:
    """Warn once per `what` and process (on stderr, rank 0) when `left` more units at `seconds_each` exceed
    LONG_RUN_S: the pace measured on this device, so the estimate is this machine's. Returns whether it warned."""
    from ltdistill import distributed

    seconds = seconds_each * left
    if seconds <= LONG_RUN_S or what in _warned or not distributed.joined().main:
        return False
    _warned.add(what)
    hours, rest = divmod(int(seconds), 3600)
    print(f"warning: {what}: at the pace of its first {unit}s here, the {left} {unit}s left take ~{hours} h "
          f"{rest // 60:02d} min; {resume}", file=sys.stderr)
    return True
