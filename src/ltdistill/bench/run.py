"""`ltdistill bench --suite NAME --out DIR`: plan the suite, train the expert buffers its cells need, run the cells
(`jobs` at a time), then DD-Ranking over every finished cell and the table."""

from __future__ import annotations

import functools
import json
import math
import os
from pathlib import Path

from tqdm import tqdm

from ltdistill.bench.anatomy import run_anatomy
from ltdistill.bench.commands import Log, evaluation_json, exclusive, run_cell, run_command, threads_per_command
from ltdistill.bench.estimate import buffer_estimate, estimate, stored_costs
from ltdistill.bench.ranking import ddranking, random_with_teachers, rank_recipes, relabeled_baselines
from ltdistill.bench.schedule import Task, run_tasks
from ltdistill.bench.status import RunningCells, buffers_needed, warn_if_long
from ltdistill.bench.suite import (
    Cell,
    Experts,
    check_finished_cells,
    cross_arch_left,
    plan_suite,
    ranks,
    result_json,
    shares_models,
)
from ltdistill.bench.tuning import write_tuning
from ltdistill.bench.warm import commands_served
from ltdistill.errors import check
from ltdistill.synthetic import atomic_write_bytes


def run_suite(name: str, out: str | Path, *, fresh_interpreters: bool = False, device: str = "cpu",
              jobs: int | str = "auto", threads: int | str = "auto", **options) -> Path:
    """Run (or resume) a suite (`run_cells` says how), `jobs` commands at once with `threads` torch threads each
    (command_slots); its commands start warm from a command server (warm.py) unless `fresh_interpreters`, or the
    platform has no fork: then each is a new interpreter."""
    jobs, command_threads = command_slots(jobs, threads, device)
    with commands_served(str(Path(out).absolute()), enabled=not fresh_interpreters), \
            threads_per_command(command_threads):
        return run_cells(name, out, device=device, jobs=jobs, **options)


def command_slots(jobs: int | str, threads: int | str, device: str) -> tuple[int, int | None]:
    """`bench --jobs` and `--threads` resolved to (commands at once, torch threads of each; None: torch's default).
    On a CPU "auto" runs as many commands at once as this process may use cores, on one thread each: a cell's
    numbers then do not depend on how many commands ran beside it (torch's CPU kernels sum in another order on
    another thread count, and training carries the difference on), and they match cells made one at a time at the
    default. On a GPU "auto" runs one command at a time with torch's own thread count."""
    for name, value in (("jobs", jobs), ("threads", threads)):
        check(value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1),
              f"--{name} must be a whole number of at least 1 or 'auto', got {value!r}")
    on_cpu = device == "cpu"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    slots = jobs if isinstance(jobs, int) else (cores if on_cpu else 1)
    return slots, threads if isinstance(threads, int) else (1 if on_cpu else None)


def run_cells(name: str, out: str | Path, *, device: str = "cpu", data_dir: str | None = None,
              progress: bool = True, only: list[str] | None = None, jobs: int = 1,
              cross_arch: list[str] | None = None, convnet_stem: str | None = None, nproc: int = 1) -> Path:
    """Run (or resume) a suite; `only`: run just these cells (see `select`). The table, and DD-Ranking, cover every
    finished cell of the suite in `out`, so pieces run one after another add up. `jobs`: how many commands run at
    once (`dependencies` says what waits for what, `run_tasks` which ready one starts first). `cross_arch`: models
    added to the suite's cross_arch for this run; a finished cell whose artifact is here gets the evaluations it
    lacks. `nproc`: the commands that split their work run under torchrun with that many processes each
    (commands.launched)."""
    check(jobs >= 1, f"--jobs must be at least 1, got {jobs}")
    check(nproc >= 1, f"--nproc must be at least 1, got {nproc}")
    out = Path(out)
    planned = plan_suite(name, out, only=only, device=device, data_dir=data_dir, cross_arch=cross_arch,
                         convnet_stem=convnet_stem)
    path, suite, common, cells = planned.path, planned.suite, planned.common, planned.selected
    out.mkdir(parents=True, exist_ok=True)
    check_finished_cells(planned.cells, out)
    atomic_write_bytes(out / "suite.json", json.dumps({"suite": suite, "file": str(path)}, indent=2).encode())
    log = Log(out / "log.txt", out / "log.txt")

    def train(experts: Experts) -> None:
        with exclusive(out / "experts" / f".{experts.directory.name}.lock"):
            if (experts.directory / "accuracy.json").exists():  # another piece trained it while this one waited
                return
            seconds = run_command(experts.command, log.of(out / "experts" / f"{experts.directory.name}.log", jobs),
                                  nproc)
            atomic_write_bytes(experts.directory / "bench_time.json", json.dumps({"seconds": seconds}).encode())

    (out / "results").mkdir(exist_ok=True)
    results = finished_results(planned.cells, out)
    todo = [c for c in cells if c.name not in results
            or (cross_arch_left(c, results[c.name]) and c.artifact_meta())]  # a finished cell lacking a cross-arch
    warn_if_long(planned, out, device, jobs)
    needed = buffers_needed(todo, results)
    buffers = [e for e in planned.experts.values()
               if e.directory in needed and not (e.directory / "accuracy.json").exists()]
    bar = tqdm(total=len(cells), initial=len(cells) - len(todo), desc=f"suite {path.stem}", disable=not progress)

    running = RunningCells(bar, out)

    def run_one(cell: Cell) -> None:
        running.started(cell)
        result = run_cell(cell, log.of(cell.directory / "log.txt", jobs), nproc)
        running.finished(cell)
        if cell.experts is not None:
            timing = cell.experts / "bench_time.json"  # absent where a finished cell came with its result alone
            result["experts_seconds"] = (json.loads(timing.read_text())["seconds"] if timing.exists()
                                         else results.get(cell.name, {}).get("experts_seconds"))
        with exclusive(results_lock(out)):
            atomic_write_bytes(result_json(out, cell.name), json.dumps(result, indent=2).encode())
        bar.update()

    # one at a time, the order is the suite's (buffers first); side by side, the longest path first (schedule.py)
    costs, buffer_costs = stored_costs(out, device) if jobs > 1 else ({}, {})
    waits = dependencies(todo, {e.directory for e in buffers})
    tasks = [Task(buffer_task(e.directory), functools.partial(train, e),
                  buffer_estimate(e.directory, cells, buffer_costs) or math.inf) for e in buffers]
    tasks += [Task(c.name, functools.partial(run_one, c), estimate(c, costs) or math.inf, waits[c.name])
              for c in todo]

    def make_baselines(cell: Cell) -> None:
        """A relabeling cell's relabeled-random baselines, made as soon as it and its random cell are done rather
        than all at the end (DD-Ranking's pass below then finds them made)."""
        finished = finished_results(planned.cells, out)
        if cell.name in finished:
            for _, _, cmd, where in relabeled_baselines(cell.name, finished[cell.name], finished, out, common, suite):
                evaluation_json(cmd, where, log.of(where.parent / "log.txt", jobs))

    for cell in todo if ranks(suite) else []:
        random = random_of(cell, planned.cells)
        if random is not None and shares_models(cell.key.get("method", "")):  # the recovery family relabels
            tasks.append(Task(f"baselines {cell.name}", functools.partial(make_baselines, cell),
                              estimate(random, costs) or math.inf, (cell.name, random.name)))
    try:
        run_tasks(tasks, jobs)
    finally:
        running.stopped.set()
        bar.close()
    # read back from disk, not kept from this piece's start: other pieces finish cells (or add cross-arch
    # accuracies to finished ones) meanwhile, and a stale copy written back here would undo their work
    teacher_evals, recipe_evals = (random_with_teachers(finished_results(planned.cells, out), out, common, suite,
                                                        log, jobs) if ranks(suite) else ({}, {}))
    with exclusive(results_lock(out)):
        results = finished_results(planned.cells, out)
        if ranks(suite):
            ddranking(results, teacher_evals)
            rank_recipes(results, recipe_evals)
            for stem, r in results.items():
                atomic_write_bytes(result_json(out, stem), json.dumps(r, indent=2).encode())
    run_anatomy(suite, planned.cells, results, out, log)  # suites with `anatomy` pairs: the hybrids' evaluations
    write_tuning(path, suite, planned.cells, results, out)  # suites with method grids: the points, best first
    from ltdistill.report.tables import bench_table

    atomic_write_bytes(out / "table.md", bench_table([results[s] for s in sorted(results)]).encode())
    if results:  # the figures of every finished cell: per-class bars, image grids, loss curves (report/build.py)
        from ltdistill.report.build import build_report

        build_report(out)
    return out / "table.md"


def results_lock(out: Path) -> Path:
    """Held while a piece writes results/*.json, so one piece's DD-Ranking pass never interleaves with another's."""
    return out / "results" / ".lock"


def finished_results(cells: list[Cell], out: Path) -> dict[str, dict]:
    """The collected results of the cells finished in `out`, by cell name. Read again after a piece's own cells,
    since pieces run side by side (`--only`) finish cells in the same directory meanwhile."""
    return {c.name: json.loads(p.read_text()) for c, p in ((c, result_json(out, c.name)) for c in cells)
            if p.exists()}


def random_of(cell: Cell, cells: list[Cell]) -> Cell | None:
    """The suite's random cell of the same beta, IPC and seed (DD-Ranking's random baseline, ranking.random_cell)."""
    return next((c for c in cells if c.key.get("method") == "random"
                 and all(c.key.get(k) == cell.key.get(k) for k in ("beta", "ipc", "seed"))), None)


def buffer_task(directory: Path) -> str:
    return f"experts {directory.name}"


def dependencies(cells: list[Cell], buffers: set[Path]) -> dict[str, tuple[str, ...]]:
    """What each cell waits for: the expert buffer it replays while that is still to train (`buffers`), and the
    first cell of its beta in the recovery family (they share the models of the suite's model_cache: the first
    trains the observer the others load, instead of each training it at once). The later ones of a beta do not
    wait for each other; a model only they need is trained once by whichever asks first (cached_classifier locks
    it)."""
    first: dict[object, str] = {}
    waits: dict[str, tuple[str, ...]] = {}
    for cell in cells:
        after = [buffer_task(cell.experts)] if cell.experts in buffers else []
        if shares_models(cell.key.get("method", "")):
            group = first.setdefault(cell.key["beta"], cell.name)
            after += [group] if group != cell.name else []
        waits[cell.name] = tuple(after)
    return waits
