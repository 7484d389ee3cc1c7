"""Finished evaluation runs kept on disk, so that a long evaluation resumes at the run it was stopped in.

The full-set reference of the `fmnist` suite trains 300 epochs on up to 25k images, about an hour per run on one
CPU thread; three runs do not fit in one sitting. `ltdistill evaluate --runs-dir DIR` (and `bench`, which always
gives one) writes each finished run to DIR as one JSON file and reads it back on a rerun instead of training again.

A file is named by the run's seed and a fingerprint of everything else that decides its result: the training images
and targets, the test sets and training counts, the evaluation config, the lr, the teacher's weights and temperature,
and the device type; not the number of runs, so a rerun with more runs reuses the first ones. train_and_score
reseeds torch with the run's seed, so a run read back equals the run a rerun would compute (on the same device).
A file of another fingerprint is never read, and never overwritten; a damaged file is trained again and replaced.
The code's version is not in the fingerprint (as with a bench directory's cells): after a change to training or
metrics, give a fresh directory.

A run in progress is kept too (PartialRun): every `every_s` seconds, at the end of an epoch, its model, optimizer
(momentum, the lr after its decay), sampling generator and global RNG state go to partial-seed<S>-<fingerprint>.pt
beside the finished runs, so a run stopped after 50 minutes of an hour resumes at its last saved epoch, not at
epoch 0, and ends where an unbroken run ends. The file goes when the run is kept.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import time
from pathlib import Path

import torch

from ltdistill.errors import BadInput
from ltdistill.safe_io import atomic_write_bytes, json_bytes


def tensor_digest(tensor: torch.Tensor) -> str:
    """sha256 of a tensor's dtype, shape and bytes: how a tensor enters loop.fingerprint's settings."""
    t = tensor.detach().cpu().contiguous()
    data = f"{t.dtype}{tuple(t.shape)}".encode() + t.reshape(-1).view(torch.uint8).numpy().tobytes()
    return hashlib.sha256(data).hexdigest()


class RunStore:
    """Runs of one evaluation (`key`: loop.fingerprint of its settings) in `directory`; with directory None it keeps
    nothing; with `writes` False it reads what is kept and writes nothing (the ranks of a data-parallel run but
    rank 0)."""

    def __init__(self, directory: Path | None, key: str, writes: bool = True):
        self.directory, self.key, self.writes = directory, key, writes

    def path(self, seed: int) -> Path:
        """Where the run of this seed is kept (a store without a directory keeps nothing)."""
        if self.directory is None:
            raise RuntimeError("this run store keeps no runs")
        return self.directory / f"run-seed{seed}-{self.key}.json"

    def read(self, seed: int) -> dict | None:
        if self.directory is None:
            return None
        try:
            return json.loads(self.path(seed).read_text())
        except (OSError, ValueError):  # missing, not JSON or not UTF-8: no run kept
            return None

    def get(self, seed: int) -> dict | None:
        """The stored record of the run with this seed, or None: none kept, a damaged file, or (a name clash) a file
        of another fingerprint."""
        record = self.read(seed)
        ok = isinstance(record, dict) and record.get("fingerprint") == self.key and record.get("seed") == seed
        return record if ok else None

    def put(self, seed: int, metrics: dict, seconds: float) -> dict:
        """Keep a finished run (replacing a damaged file of this name; never another evaluation's run)."""
        record = {"fingerprint": self.key, "seed": seed, "seconds": seconds, "metrics": metrics}
        existing = self.read(seed)
        if self.directory is not None and self.writes and not (isinstance(existing, dict)
                                                               and existing.get("fingerprint") != self.key):
            self.directory.mkdir(parents=True, exist_ok=True)
            keep_or_warn(self.path(seed), json_bytes(record, indent=None))
        self.partial(seed).discard()
        return record

    def partial(self, seed: int, every_s: float = 120.0) -> PartialRun:
        """The in-progress state of the run with this seed (a PartialRun that keeps nothing without a directory)."""
        path = None if self.directory is None else self.directory / f"partial-seed{seed}-{self.key}.pt"
        return PartialRun(path, every_s, writes=self.writes)


class PartialRun:
    """train_model's `checkpoint`: the state of one evaluation run, saved at an epoch's end when `every_s` seconds
    have passed since the last save, loaded with torch.load(weights_only=True). `seconds`: the training time the
    saved epochs took, so a resumed run reports the time of the whole run. With `writes` False it restores what is
    kept and never saves or discards (its store's)."""

    def __init__(self, path: Path | None, every_s: float = 120.0, writes: bool = True):
        self.path, self.every_s, self.writes = path, every_s, writes
        self.seconds, self.epochs_done = 0.0, 0
        self.last_save = self.started = time.perf_counter()

    def restore(self, model, optimizer, generator) -> int:
        if self.path is None or not self.path.exists():
            return 0
        try:
            state = torch.load(self.path, map_location=next(model.parameters()).device, weights_only=True)
        except Exception:  # a damaged file (its name holds the run's fingerprint): train from the start
            return 0
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"].cpu())
        torch.set_rng_state(state["torch_rng"].cpu())
        self.seconds, self.epochs_done = float(state["seconds"]), int(state["epoch"])
        return self.epochs_done

    def save(self, epochs_done: int, model, optimizer, generator) -> None:
        now = time.perf_counter()
        if self.path is None or not self.writes or now - self.last_save < self.every_s:
            return
        state = {"epoch": epochs_done, "seconds": self.elapsed(), "model": model.state_dict(),
                 "optimizer": optimizer.state_dict(), "generator": generator.get_state(),
                 "torch_rng": torch.get_rng_state()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        serialized = io.BytesIO()  # torch.save writes by name; safe_io writes through no planted link
        torch.save(state, serialized)
        keep_or_warn(self.path, serialized.getvalue())
        self.last_save = now

    def elapsed(self) -> float:
        """Seconds of training in this run so far: the saved epochs' time plus this sitting's."""
        return self.seconds + time.perf_counter() - self.started

    def discard(self) -> None:
        if self.path is not None and self.writes:
            self.path.unlink(missing_ok=True)


def keep_or_warn(path: Path, data: bytes) -> None:
    """Keep a file a rerun would read back; when it cannot be written (a full disk, a link at its name), say so on
    stderr and go on: the run in memory is whole (an evaluation's, or an observer's training), only its
    resumability is lost."""
    try:
        atomic_write_bytes(path, data)
    except (OSError, BadInput) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        print(f"warning: cannot keep {path} ({reason}); the run goes on without it", file=sys.stderr)
