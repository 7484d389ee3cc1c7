"""Where cells stand, read from disk alone: `bench --plan`, and the suite bar's postfix while cells run."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from tqdm import tqdm

from ltdistill.bench.commands import distill_lock, evals_left, lock_beside, runs_dir
from ltdistill.bench.estimate import (
    buffer_estimate,
    duration,
    estimate_basis,
    memory_estimate,
    own_pace,
    share_left,
    stored_costs,
)
from ltdistill.bench.graph import suite_tasks
from ltdistill.bench.ranking import random_cell
from ltdistill.bench.schedule import command_slots, simulated_seconds
from ltdistill.bench.suite import (
    Cell,
    Experts,
    cross_arch_left,
    plan_suite,
    ranks,
    read_result,
    result_json,
    settings_changed,
)
from ltdistill.engine.loop import CHECKPOINT_DIR, checkpoint_iteration, device_here
from ltdistill.runtime import available_memory_mb
from ltdistill.safe_io import held

LARGE_PEAK_MB = 4096.0  # a cell whose distillation peaks above this says so in the plan (bench --jobs weighs it)


def cell_status(cell: Cell, out: Path) -> str:
    """Where a cell stands, read from disk only: done, evaluating, distilling (its checkpoint, or the models a
    recovery run has kept), or to run."""
    if result_json(out, cell.name).exists():
        result = read_result(result_json(out, cell.name))
        if result.get("key") and (changed := settings_changed(cell, result["key"], detail=False)):
            return f"made with other settings ({changed}): a run refuses this --out"
        left = cross_arch_left(cell, result)
        if not left:
            return "done"
        here = "" if cell.artifact_meta() else " (its artifact is not in this directory)"
        return f"done; cross-arch {', '.join(left)} left{here}"
    if cell.set_to_make:
        it = checkpoint_iteration(cell.artifact)
        if it is not None:
            return f"distilling (checkpoint at iteration {it})"
        models = models_kept(cell.artifact)
        if models:
            return f"distilling ({models})"
        return "started (no checkpoint yet)" if cell.artifact.exists() else "to run"
    runs_kept = evals_left(cell, cell.artifact_meta())
    left, kept = list(runs_kept), sum(runs_kept.values())
    partial = sum(len(list(runs_dir(cell.eval_json(name)).glob("partial-*.pt"))) for name in left)
    if not cell.distill and len(left) == len(cell.evals) and not kept and not partial:
        return "to run"
    runs = f"; {kept} run{'s' * (kept != 1)} kept" if kept else ""
    runs += f"; {partial} run{'s' * (partial != 1)} in progress kept" if partial else ""
    return f"evaluating ({', '.join(left)} left{runs})" if left else "evaluated, not yet collected"


def models_kept(workdir: Path) -> str:
    """What a recovery-family run (SRe2L, uni-level, EDC) has kept of its models before its images: the observers
    and teachers trained (families/recovery.cached_classifier) and those part-trained (their PartialRun); "" where
    there are none."""
    where = workdir / CHECKPOINT_DIR
    trained = sorted(p.stem for p in where.glob("*.safetensors") if p.name != "state.safetensors")
    partial = sorted(p.name.split(".")[0] for p in where.glob("*.partial.pt"))
    said = [f"trained: {', '.join(trained)}"] * bool(trained) + [f"part-trained: {', '.join(partial)}"] * bool(partial)
    return "; ".join(said)


class RunningCells:
    """The suite bar's postfix: where each running cell stands (`cell_status`, read from disk), refreshed every
    `every` seconds by a daemon thread while the bar is shown, since the cells' commands run without bars of their
    own (their output goes to the logs)."""

    def __init__(self, bar: tqdm, out: Path, every: float = 20.0):
        self.bar, self.out, self.every = bar, out, every
        self.cells: dict[str, Cell] = {}
        self.lock, self.stopped = threading.Lock(), threading.Event()
        if not bar.disable:
            threading.Thread(target=self.refresh_until_stopped, daemon=True).start()

    def refresh_until_stopped(self) -> None:
        while not self.stopped.wait(self.every):
            self.refresh()

    def refresh(self) -> None:
        if self.bar.disable:  # no bar to show it on: no statuses to read from disk
            return
        with self.lock:
            cells = list(self.cells.values())
        self.bar.set_postfix_str("; ".join(f"{c.name}: {self.status(c)}" for c in cells))

    def status(self, cell: Cell) -> str:
        """cell_status, but a running cell with nothing on disk yet is started, not to run."""
        status = cell_status(cell, self.out)
        return "started (nothing on disk yet)" if status == "to run" else status

    def started(self, cell: Cell) -> None:
        with self.lock:
            self.cells[cell.name] = cell
        self.refresh()

    def finished(self, cell: Cell) -> None:
        with self.lock:
            self.cells.pop(cell.name, None)
        self.refresh()


def buffers_needed(cells: list[Cell], finished) -> set[Path]:
    """The expert buffers a run trains for `cells`: only a cell still to distill needs its buffer; a finished one
    (in `finished`, names) that just lacks a cross-arch evaluation does not. `--plan` says what the run will do."""
    return {c.experts for c in cells if c.experts is not None and c.name not in finished}


def finished_results(cells: list[Cell], out: Path) -> dict[str, dict]:
    """The collected results of the cells finished in `out`, by cell name. Read again after a piece's own cells,
    since pieces run side by side (`--only`) finish cells in the same directory meanwhile."""
    return {c.name: read_result(p) for c, p in ((c, result_json(out, c.name)) for c in cells) if p.exists()}


def left_to_run(planned, results: dict[str, dict]) -> tuple[list[Cell], list[Experts]]:
    """(the selected cells a run would run, the expert buffers it would train first) given the finished `results`:
    a finished cell runs again only for a cross-arch evaluation it lacks, where its artifact is here."""
    todo = [c for c in planned.selected if c.name not in results
            or (cross_arch_left(c, results[c.name]) and c.artifact_meta())]
    needed = buffers_needed(todo, results)
    return todo, [e for e in planned.experts.values()
                  if e.directory in needed and not (e.directory / "accuracy.json").exists()]


def wall_left(planned, out: Path, device: str, jobs: int) -> float:
    """What is left of a suite in wall time at `jobs` commands at once: the bench's own schedule (graph.py,
    schedule.py) played over the stored costs; a piece without an estimate counts no time."""
    todo, buffers = left_to_run(planned, finished_results(planned.cells, out))
    costs, buffer_costs, _ = stored_costs(out, device)
    tasks = suite_tasks(todo, buffers, planned.cells, ranked=ranks(planned.suite), costs=costs,
                        buffer_costs=buffer_costs, here=device_here(device))
    return simulated_seconds(tasks, jobs, available_memory_mb())


def suite_plan(name: str, out: str | Path, *, only: list[str] | None = None, device: str = "cpu",
               data_dir: str | None = None, cross_arch: list[str] | None = None,
               overrides: dict | None = None, jobs: int | str = "auto") -> str:
    """`bench --plan`: every cell of the suite and where it stands in `out` for a run with this device, data
    directory and added cross-architecture models, and how long what is left takes at `jobs` commands at once (as
    `bench --jobs`); runs nothing."""
    out = Path(out)
    planned = plan_suite(name, out, only=only, device=device, data_dir=data_dir, cross_arch=cross_arch,
                         overrides=overrides)
    rows, left, (factor, count) = plan_rows(planned, out, device)
    width = max(len(name) for name, *_ in rows) + 2
    second = max(len(status) for _, status, _ in rows) + 2
    lines = [f"{name:<{width}}{status:<{second}}{cost}".rstrip() for name, status, cost in rows]
    known = [s for s in left if s is not None]
    done = sum(1 for name, status, _ in rows[1:] if status == "done" and not name.startswith("experts "))
    slots = command_slots(jobs, "auto", device)[0]
    wall = f"; {duration(wall_left(planned, out, device, slots))} of wall time at --jobs {slots}" * (slots > 1)
    unknown = f"{len(left) - len(known)} without an estimate"
    if not left:
        total = ""
    elif not known:  # nothing stored matches: a sum or a schedule of zeros would read as minutes
        total = f"; what is left has no stored cost of the same cells here ({unknown})"
    else:
        scaled = (f" (those made elsewhere x{factor:.2f}: the pace of the {count} cell{'s' * (count > 1)} timed on "
                  "this processor against the same cells timed on others)") * (count > 0)
        total = (f"; what is left: {duration(sum(known))} on one {device.split(':')[0]} thread per job from the "
                 f"stored costs of the same cells{scaled}" + (f", {unknown}" if len(known) < len(left) else "") + wall)
    return "\n".join(lines + [f"{done} of {len(planned.selected)} cells done in {out}{total}"]) + "\n"


def plan_rows(planned, out: Path, device: str) -> tuple[list[tuple[str, str, str]], list[float | None],
                                                          tuple[float, int]]:
    """([(name, status, estimate)] for the buffers and cells of a planned suite, with a header row; the estimated
    seconds of each piece left, None where nothing stored matches it; the pace the stored costs were scaled by)."""
    cells = planned.selected
    rows = [("cell", "status", "estimate")]
    statuses = [cell_status(c, out) for c in cells]
    if ranks(planned.suite):
        results = finished_results(planned.cells, out)
        statuses = [status + ranking_left(results.get(c.name), results) if status.startswith("done") else status
                    for c, status in zip(cells, statuses, strict=True)]
    needed = buffers_needed(cells, {c.name for c in cells if result_json(out, c.name).exists()})
    costs, buffer_costs, pace = stored_costs(out, device)
    here = device_here(device)
    left: list[float | None] = []
    for experts in planned.experts.values():
        if any(c.experts == experts.directory for c in cells):
            done = (experts.directory / "accuracy.json").exists()
            to_train = not done and experts.directory in needed
            status = "done" if done else "to train" if to_train else "not needed (its cells are finished)"
            made = 1.0 - share_left(experts.directory)
            status += f" (resumes, {made:.0%} of its epochs made)" * (to_train and made > 0)
            status += "; training now" * (to_train and held(lock_beside(experts.directory)))
            if to_train:
                left.append(buffer_estimate(experts, cells, buffer_costs))
            rows.append((f"experts {experts.directory.name}", status, duration(left[-1]) if to_train else ""))
    for c, status in zip(cells, statuses, strict=True):
        finished = status.startswith("done")  # a cross-arch evaluation left is minutes: no estimate of its own
        cost, basis = (None, None) if finished else estimate_basis(c, costs, here)
        left += [] if finished else [cost]
        stand_in = ""
        if basis is not None and str(basis) != c.label:
            from_method = basis.label == c.key.get("method") and not basis.other_ranking  # at its IPC or scaled
            lacks = own_settings(c, planned.cells) if from_method else []
            stand_in = f" (as {basis}" + (f"; not in it: {', '.join(lacks)}" if lacks else "") + ")"
        measured = own_pace(c, here) if cost is not None and c.set_to_make else None
        at_own_pace = f" (its iterations at the {measured:.1f} s each it has taken here)" if measured else ""
        peak = memory_estimate(c, costs) if not finished else 0.0
        large = f"; {peak / 1024:.1f} GB at its peak" if peak >= LARGE_PEAK_MB else ""
        status += "; running now" * (status != "done" and running_now(c))
        rows.append((c.name, status, "" if finished else duration(cost) + stand_in + at_own_pace + large))
    return rows, left, pace


def running_now(cell: Cell) -> bool:
    """Whether a bench process (this one or another on the same --out) is distilling or evaluating the cell now:
    the locks it holds while it does (commands.run_cell, evaluation_json), probed without taking them."""
    return held(distill_lock(cell.directory)) or any(held(lock_beside(cell.eval_json(name))) for name in cell.evals)


def ranking_left(result: dict | None, results: dict[str, dict]) -> str:
    """What a finished cell still lacks of DD-Ranking's scores, which a suite makes in a closing pass once the cells
    of a run are done (its relabeled-random baseline first): a run stopped between the cell's result and that pass
    leaves them unmade, and running the suite again makes them. Said only where its Random cell is finished here,
    so that the pass would score it."""
    if result is None or result.get("label") in ("full", "random") or result.get("ddranking"):
        return ""
    if random_cell(results, result.get("key", {})) is None:
        return ""
    relabels = str(result.get("label_regime", "")).startswith("relabel")
    return "; DD-Ranking scores left: a rerun makes them" + ", its relabeled-random baseline first" * relabels


def own_settings(cell: Cell, cells: list[Cell]) -> list[str]:
    """A preset's `--set` overrides that its method's own cell of the same setting in the suite lacks (all of them
    where the suite has none): what the cost of the method standing in for it does not account for."""
    def setting(c: Cell) -> tuple:
        return tuple(c.key.get(k) for k in ("dataset", "beta", "ipc", "class_order"))

    method = cell.key.get("method")
    own = next((c for c in cells if c.label == method == c.key.get("method") and setting(c) == setting(cell)), None)
    return [s for s in cell.key.get("set") or [] if own is None or s not in (own.key.get("set") or [])]


def warn_if_long(planned, out: Path, device: str, jobs: int, nproc: int = 1) -> bool:
    """Before a run: warn (stderr) when the stored costs put what is left of the selected cells (the suite's, or
    `--only`'s) over watch.LONG_RUN_S of wall time at `jobs` commands at once (wall_left), one process a command
    (estimate.result_seconds): under `nproc` processes the commands that split their work take less, and the
    warning says so. Returns whether it warned."""
    from ltdistill.watch import LONG_RUN_S

    wall = wall_left(planned, out, device, jobs)
    if wall <= LONG_RUN_S:
        return False
    scope = "this suite" if len(planned.selected) == len(planned.cells) else "the cells --only selects"
    print(f"warning: what is left of {scope} takes {duration(wall)} here at --jobs {jobs}, from the stored "
          f"costs of the same cells (bench --plan lists them)"
          + (f", one process a command: under --nproc {nproc} the commands that split their work take less"
             if nproc > 1 else "") + "; it resumes where it stops: rerun the same command", file=sys.stderr)
    return True
