"""The outer loop every optimization-based method shares (MTT, DATM, LTDD, DC, DM): learnable synthetic tensors,
their SGD optimizers, a NaN/Inf guard, and resumable checkpoints.

Checkpoint: one safetensors file `<workdir>/.checkpoint/state.safetensors` written atomically every
`checkpoint_every` iterations, and after any iteration that ends CHECKPOINT_SECONDS or more after the last write (so
a run of slow iterations loses minutes when stopped, not `checkpoint_every` iterations, as an evaluation run keeps
its state, evaluate/runstore.py), holding the tensors, the optimizers' momentum buffers and the RNG state, with the
iteration, loss history, seconds per iteration and a fingerprint of the run's settings in its metadata. A rerun
with the same settings resumes from it and reaches the same result as an uninterrupted run on CPU (all randomness
flows through one torch.Generator whose state is saved); a checkpoint made with other settings is refused.
Divergence: an iteration whose loss or gradients are not finite is skipped (nothing updated, counted in
`skipped_nonfinite`); an update that makes a tensor non-finite is rolled back (`rolled_back`). A run that skipped or
rolled back more than MAX_SKIPPED_SHARE of its iterations did not distill what its settings say: it stops as soon
as the share is out of reach (checkpoint kept) and ends with Diverged. A method's deliberate skips (DATM's loss
threshold, `skipped_threshold`) do not count.
Timing: the wall seconds of every iteration (the step and the update, not the checkpoint write) go into
`iteration_seconds`, so a cost table can tell a steady per-iteration cost from a run that slows down; iterations
restored from a checkpoint written before timing was recorded read None. A run begun on one device and resumed on
another (e.g. a GPU's checkpoint finished on the CPU, or a CPU run taken up on another host) records where each
stretch ran in `iteration_devices`: [[first iteration, device], ...] (device_name: the GPU's name, the CPU's
processor), a new entry whenever a process elsewhere takes the run up (None for the stretch a checkpoint written
before devices were recorded holds; bare 'cpu' for one written before processors were), so its cost is never read
as one device's.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open
from tqdm import tqdm

from ltdistill import distributed, models, watch
from ltdistill.errors import BadInput, Diverged
from ltdistill.keys import fingerprint, keyed_config
from ltdistill.runtime import processor
from ltdistill.synthetic import SyntheticSet, atomic_save_tensors

CHECKPOINT_DIR = ".checkpoint"
MAX_SKIPPED_SHARE = 0.2  # of a run's iterations, skipped as non-finite or rolled back, before it counts as diverged
PACE_ITERATIONS = 3  # the iterations whose median time predicts the rest (watch.warn_if_long)
CHECKPOINT_SECONDS = 120.0  # a checkpoint is also written once this long has passed since the last one
STEP_SIZE_FIELDS = ("lr_img", "lr_lr", "lr_y", "max_start_epoch", "syn_steps")  # what to lower when a run blows up


@dataclass
class Learnable:
    """One learnable synthetic tensor (images, soft labels, student lr) and its SGD optimizer. `frozen`: the tensor
    takes no gradient at all (trajectory pixels at lr_img 0), so no backward pass runs to it."""

    tensor: torch.Tensor
    lr: float
    momentum: float
    frozen: bool = False

    def __post_init__(self) -> None:
        self.tensor = self.tensor.detach().clone().requires_grad_(not self.frozen)
        self.optimizer = torch.optim.SGD([self.tensor], lr=self.lr, momentum=self.momentum)


@dataclass
class SynthesisState:
    learnables: dict[str, Learnable]
    generator: torch.Generator
    iteration: int = 0
    history: list[float | None] = field(default_factory=list)
    seconds: list[float | None] = field(default_factory=list)
    resumed_from: int = 0  # the iteration this process started at (the artifact's wall_time_s covers only the rest)
    devices: list[list] = field(default_factory=list)  # [[first iteration, device], ...]: where each stretch ran
    counters: dict[str, int] = field(default_factory=lambda: {"skipped_nonfinite": 0, "skipped_threshold": 0,
                                                               "rolled_back": 0})

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.learnables[name].tensor

    # -- checkpoint -----------------------------------------------------------------------------------------
    def to_tensors(self) -> dict[str, torch.Tensor]:
        out = {"generator": self.generator.get_state()}
        for name, item in self.learnables.items():
            out[f"tensor.{name}"] = item.tensor.detach()
            buf = item.optimizer.state.get(item.tensor, {}).get("momentum_buffer")
            if buf is not None:
                out[f"momentum.{name}"] = buf
        return out

    def load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.generator.set_state(tensors["generator"])
        for name, item in self.learnables.items():
            with torch.no_grad():
                item.tensor.copy_(tensors[f"tensor.{name}"])
            if f"momentum.{name}" in tensors:  # a checkpoint loads on the CPU; the optimizer steps where the tensor is
                buffer = tensors[f"momentum.{name}"].to(item.tensor.device, item.tensor.dtype, copy=True)
                item.optimizer.state[item.tensor]["momentum_buffer"] = buffer


class Checkpointer:
    def __init__(self, workdir: str | Path | None, settings: dict, every: int, every_s: float | None = None):
        self.path = Path(workdir) / CHECKPOINT_DIR / "state.safetensors" if workdir is not None else None
        self.fingerprint = fingerprint(settings)
        self.every, self.every_s = every, every_s
        self.last_save = time.perf_counter()

    def due(self, iteration: int, last: int) -> bool:
        """Whether to save after `iteration` (the iterations done) of a run of `last`: every `every` iterations, at the
        end, and once `every_s` seconds have passed since the last save. Where a run saves never changes its result: a
        resume restores every tensor and the generator whatever the iteration."""
        return (iteration % self.every == 0 or iteration == last
                or (self.every_s is not None and time.perf_counter() - self.last_save >= self.every_s))

    def save(self, state: SynthesisState) -> None:
        if self.path is None or not distributed.joined().main:  # under torchrun rank 0 writes, every rank resumes
            return
        meta = {"fingerprint": self.fingerprint, "iteration": str(state.iteration),
                "history": json.dumps(state.history),
                "seconds": json.dumps(state.seconds), "counters": json.dumps(state.counters),
                "devices": json.dumps(state.devices)}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_save_tensors(state.to_tensors(), self.path, metadata=meta)
            self.last_save = time.perf_counter()
        except OSError as e:  # a full disk: one line, and the last checkpoint that was written still resumes
            raise BadInput(f"cannot write the checkpoint at iteration {state.iteration} to {self.path.parent}: "
                           f"{e.strerror or e}; the previous checkpoint is kept: free space and rerun the same "
                           "command to resume") from None

    def restore(self, state: SynthesisState) -> bool:
        """Load the newest checkpoint into state; False when there is none."""
        if self.path is None or not self.path.exists():
            return False
        try:
            with safe_open(str(self.path), "pt") as f:
                meta = f.metadata()
            tensors = load_file(str(self.path))
        except (SafetensorError, OSError) as e:
            raise BadInput(f"corrupt checkpoint {self.path} ({e}); rerun with --restart") from None
        if meta.get("fingerprint") != self.fingerprint:
            raise BadInput(f"{self.path.parent} holds a checkpoint of a run with other settings; "
                           "rerun with the same arguments, or --restart to discard it")
        state.load_tensors(tensors)
        state.iteration = int(meta["iteration"])
        state.history = json.loads(meta["history"])
        seconds = json.loads(meta.get("seconds", "[]"))
        state.seconds = [None] * (len(state.history) - len(seconds)) + seconds
        state.counters.update(json.loads(meta["counters"]))
        state.devices = json.loads(meta.get("devices", "null")) or [[0, None]]  # None: not recorded then
        return True


def checkpoint_meta(workdir: str | Path) -> dict[str, str] | None:
    """The metadata of the checkpoint in workdir, as written (JSON in strings); None when it has no readable one."""
    try:
        with safe_open(str(Path(workdir) / CHECKPOINT_DIR / "state.safetensors"), "pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError):
        return None


def checkpoint_iteration(workdir: str | Path) -> int | None:
    """The iteration a run in workdir would resume from; None when it has no readable checkpoint."""
    try:
        return int((checkpoint_meta(workdir) or {})["iteration"])
    except (KeyError, ValueError, TypeError):
        return None


def checkpoint_seconds(workdir: str | Path, device: str) -> list[float]:
    """The loop seconds of the iterations the checkpoint in workdir timed on `device` (device_name), oldest first;
    [] where it holds none (no checkpoint, no timings, or none made there)."""
    meta = checkpoint_meta(workdir) or {}
    try:
        iteration = int(meta["iteration"])
        seconds = list(json.loads(meta.get("seconds", "[]")))
        stretches = [(int(start), where) for start, where in json.loads(meta.get("devices", "null")) or [[0, None]]]
    except (KeyError, ValueError, TypeError):  # not written by this loop: no timings to read
        return []
    first = iteration - len(seconds)  # the untimed iterations of an older checkpoint are not in the list
    ends = [start for start, _ in stretches[1:]] + [iteration]
    return [t for (start, where), end in zip(stretches, ends, strict=True) if where == device
            for t in seconds[max(start - first, 0):max(end - first, 0)] if isinstance(t, int | float)]


def clear_checkpoint(workdir: str | Path) -> None:
    shutil.rmtree(Path(workdir) / CHECKPOINT_DIR, ignore_errors=True)


SNAPSHOT_DIR = "snapshots"


class Snapshots:
    """The set every `every` iterations, iteration 0 included, as SyntheticSet directories
    <workdir>/snapshots/iteration_NNNNNN: what the reference code evaluates during a run (LTDD DAM-ED_tesla.py,
    DATM.py and MTT distill.py evaluate the set every eval_it iterations and report the best), for
    `evaluate --snapshots`. Written as the run passes them, kept across a resume."""

    def __init__(self, workdir, every: int | None, make_set: Callable[[], SyntheticSet] | None, meta: dict):
        self.folder = Path(workdir) / SNAPSHOT_DIR if workdir is not None and every and make_set else None
        self.every, self.make_set, self.meta = every or 1, make_set, meta

    def __call__(self, iteration: int) -> None:
        if self.folder is None or self.make_set is None or iteration % self.every or not distributed.joined().main:
            return
        target = self.folder / f"iteration_{iteration:06d}"
        if (target / "meta.json").exists():
            return
        snapshot = self.make_set()
        snapshot.meta = {**self.meta, **snapshot.meta, "snapshot_iteration": iteration}
        snapshot.save(target)


def optimize(state: SynthesisState, iterations: int, step: Callable[[int], float | None],
             checkpointer: Checkpointer | None = None, *, progress: bool = True, desc: str = "distill",
             max_unusable: float | None = None, after=None) -> None:
    """Run iterations state.iteration..iterations-1. `step(it)` accumulates gradients into the learnables and
    returns the loss, or None when the method chose to skip this iteration (e.g. DATM's loss threshold).
    `max_unusable`: stop early (after a checkpoint) once more iterations than this were skipped as non-finite or
    rolled back; the caller decides what that means (run_synthesis: Diverged). `after(iteration)` runs before the
    first iteration and after each one (Snapshots)."""
    if checkpointer is not None and checkpointer.restore(state):
        state.resumed_from = state.iteration
        if progress:
            tqdm.write(f"resumed from {checkpointer.path} at iteration {state.iteration}")
    first = next(iter(state.learnables.values()), None)
    here = device_name(first.tensor.device if first is not None else torch.device("cpu"))
    if not state.devices or state.devices[-1][1] != here:
        state.devices.append([state.iteration, here])
    if after is not None:
        after(state.iteration)  # iteration 0: the initial set, as the reference evaluates it
    bar = tqdm(range(state.iteration, iterations), desc=desc, disable=not progress, initial=state.iteration,
               total=iterations)
    for it in bar:
        if max_unusable is not None and unusable_iterations(state) > max_unusable:
            if checkpointer is not None:
                checkpointer.save(state)
            break
        started = time.perf_counter()
        for item in state.learnables.values():
            item.optimizer.zero_grad(set_to_none=True)
        loss = step(it)
        if loss is None:
            state.counters["skipped_threshold"] += 1
        elif not _finite(loss, state):
            state.counters["skipped_nonfinite"] += 1
            tqdm.write(f"iteration {it}: non-finite loss or gradient, update skipped")
        else:
            backup = {n: i.tensor.detach().clone() for n, i in state.learnables.items()}
            for item in state.learnables.values():
                item.optimizer.step()
            if not all(torch.isfinite(i.tensor).all() for i in state.learnables.values()):
                with torch.no_grad():
                    for name, item in state.learnables.items():
                        item.tensor.copy_(backup[name])
                state.counters["rolled_back"] += 1
                tqdm.write(f"iteration {it}: update produced NaN/Inf, rolled back")
        state.history.append(None if loss is None else float(loss))
        state.seconds.append(round(time.perf_counter() - started, 4))
        state.iteration = it + 1
        if loss is not None:
            bar.set_postfix(loss=f"{loss:.4f}")
        if watch.active():
            watch_iteration(state, desc, loss)
        if progress and it == state.resumed_from + PACE_ITERATIONS - 1 and it + 1 < iterations:
            warn_if_long(state, iterations, desc, checkpointer)
        if checkpointer is not None and checkpointer.due(state.iteration, iterations):
            checkpointer.save(state)
        if after is not None:
            after(state.iteration)


def run_synthesis(method, state: SynthesisState, step: Callable[[int], float | None], *, settings: dict,
                  workdir, progress: bool, make_set: Callable[[], SyntheticSet] | None = None) -> dict:
    """Optimize `method.config.iterations` iterations with checkpoints in workdir (resumed when settings match);
    return the metadata every optimization-based artifact records. With `make_set` (the set as the state stands)
    and the method's `keep_every` (distill --keep-every), snapshots of the set are kept along the way."""
    full = {"method": method.name, "config": keyed_config(method.config), "stem": models.convnet_stem(),
            **settings}
    checkpointer = Checkpointer(workdir, full, method.config.checkpoint_every, every_s=CHECKPOINT_SECONDS)
    iterations = method.config.iterations
    # the record of the data optimized on (`settings["data"]`, where given): the trajectory methods whiten the data
    # as their experts saw it after the run's meta was taken, and a snapshot is read back against that data
    snapshots = Snapshots(workdir, getattr(method, "keep_every", None), make_set,
                          {**getattr(method, "run_meta", {}), **settings.get("data", {})})
    optimize(state, iterations, step, checkpointer, progress=progress, desc=method.name,
             max_unusable=MAX_SKIPPED_SHARE * iterations, after=snapshots)
    check_skipped_share(method, state, iterations, workdir)
    return {"loss_history": state.history, "iteration_seconds": state.seconds, "resumed_from": state.resumed_from,
            "iteration_devices": state.devices, **state.counters}


def warn_if_long(state: SynthesisState, iterations: int, desc: str, checkpointer: Checkpointer | None) -> None:
    """After this process's first PACE_ITERATIONS iterations: warn when the rest, at their median time, exceeds
    watch.LONG_RUN_S."""
    resume = (f"it checkpoints every {checkpointer.every} iterations{every_seconds(checkpointer)}: stop it at any "
              "time and rerun the same command to resume" if checkpointer is not None and checkpointer.path is not None
              else "it keeps no checkpoint")
    measured = sorted(s for s in state.seconds[-PACE_ITERATIONS:] if s is not None)
    if measured:
        watch.warn_if_long(desc, measured[len(measured) // 2], iterations - state.iteration, "iteration", resume)


def every_seconds(checkpointer: Checkpointer) -> str:
    return "" if checkpointer.every_s is None else f" and every {checkpointer.every_s:g} s"


def watch_iteration(state: SynthesisState, desc: str, loss: float | None) -> None:
    """--log-dir: the iteration's loss, every scalar learnable (the student lr) and the skip counters."""
    values = {"loss": loss, **{name: float(item.tensor.detach()) for name, item in state.learnables.items()
                               if item.tensor.numel() == 1}, **state.counters}
    watch.scalars(f"distill/{desc}", values, state.iteration)


def unusable_iterations(state: SynthesisState) -> int:
    """Iterations that changed nothing because the numbers broke (not a method's deliberate skips)."""
    return state.counters["skipped_nonfinite"] + state.counters["rolled_back"]


def check_skipped_share(method, state: SynthesisState, iterations: int, workdir) -> None:
    """Diverged when more than MAX_SKIPPED_SHARE of the run's iterations were skipped as non-finite or rolled back,
    with what to change; the checkpoint stays (a rerun with the same settings says the same at once)."""
    unusable = unusable_iterations(state)
    if unusable <= MAX_SKIPPED_SHARE * iterations:
        return
    cfg = method.config
    knobs = ", ".join(f"{f} (now {getattr(cfg, f)})" for f in STEP_SIZE_FIELDS if hasattr(cfg, f))
    kept = f"its checkpoint is kept in {Path(workdir) / CHECKPOINT_DIR}; " if workdir is not None else ""
    raise Diverged(f"{method.name} skipped {unusable} of the {state.iteration} iterations it ran as non-finite or "
                   f"rolled back ({state.counters['skipped_nonfinite']} non-finite, {state.counters['rolled_back']} "
                   f"rolled back; more than {MAX_SKIPPED_SHARE:.0%} of {iterations}): lower {knobs or 'its step sizes'}"
                   f" and rerun with --restart ({kept}no artifact was written)")


def device_name(device: torch.device) -> str:
    """Where a stretch of iterations runs: the accelerator's kind and name, e.g. 'cuda (NVIDIA H200)', or the
    processor, e.g. 'cpu (AMD EPYC (family 26, model 2), AVX512)': hosts of one brand differ in speed, so a run
    resumed on another host starts a new stretch as one resumed on another device does."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({processor()})" if device.type == "cpu" else device.type


def device_here(device: str) -> str | None:
    """device_name of this host's `device` ('cpu', 'cuda', 'cuda:1'), None where it has no such device."""
    try:
        return device_name(torch.device(device))
    except (RuntimeError, AssertionError):  # no CUDA here, or not that many devices
        return None


def _finite(loss: float, state: SynthesisState) -> bool:
    if not torch.isfinite(torch.tensor(loss)):
        return False
    return all(i.tensor.grad is None or torch.isfinite(i.tensor.grad).all() for i in state.learnables.values())
