"""`ltdistill bench --suite NAME --out DIR`: plan the suite, train the expert buffers its cells need, run the cells
(`jobs` at a time), then DD-Ranking over every finished cell and the table."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tqdm import tqdm

from ltdistill.bench.anatomy import run_anatomy
from ltdistill.bench.commands import (
    Log,
    evaluation_json,
    exclusive,
    lock_beside,
    run_cell,
    run_command,
    threads_per_command,
)
from ltdistill.bench.estimate import stored_costs
from ltdistill.bench.graph import suite_tasks
from ltdistill.bench.ranking import (
    ddranking,
    random_with_teachers,
    rank_recipes,
    relabeled_baselines,
    unrelabeled_warning,
)
from ltdistill.bench.schedule import command_slots, run_tasks
from ltdistill.bench.status import RunningCells, finished_results, left_to_run, warn_if_long
from ltdistill.bench.suite import (
    Cell,
    Experts,
    check_finished_cells,
    plan_suite,
    ranks,
    result_json,
)
from ltdistill.bench.tuning import write_tuning
from ltdistill.bench.warm import commands_served
from ltdistill.engine.loop import device_here
from ltdistill.errors import check
from ltdistill.runtime import available_memory_mb, processes
from ltdistill.safe_io import atomic_write_bytes, check_writable, write_json


def run_suite(name: str, out: str | Path, *, fresh_interpreters: bool = False, device: str = "cpu",
              jobs: int | str = "auto", threads: int | str = "auto", **options) -> Path:
    """Run (or resume) a suite (`run_cells` says how), `jobs` commands at once with `threads` torch threads each
    (command_slots); its commands start warm from a command server (warm.py) unless `fresh_interpreters`, or the
    platform has no fork: then each is a new interpreter."""
    jobs, command_threads = command_slots(jobs, threads, device)
    with commands_served(str(Path(out).absolute()), enabled=not fresh_interpreters), \
            threads_per_command(command_threads):
        return run_cells(name, out, device=device, jobs=jobs, **options)


def run_cells(name: str, out: str | Path, *, device: str = "cpu", data_dir: str | None = None,
              progress: bool = True, only: list[str] | None = None, jobs: int = 1,
              cross_arch: list[str] | None = None, overrides: dict | None = None, nproc: int = 1,
              figures: bool = True) -> Path:
    """Run (or resume) a suite; `only`: run just these cells (see `select`). The table, and DD-Ranking, cover every
    finished cell of the suite in `out`, so pieces run one after another add up. `jobs`: how many commands run at
    once (graph.py says what waits for what, `run_tasks` which ready one starts first). `cross_arch`: models
    added to the suite's cross_arch for this run; a finished cell whose artifact is here gets the evaluations it
    lacks. `nproc`: the commands that split their work run under torchrun with that many processes each
    (commands.launched). `figures`: draw the report's figures of every finished cell (report/)."""
    check(jobs >= 1, f"--jobs must be at least 1, got {jobs}")  # (an API call of run_cells itself)
    check(nproc >= 1, f"--nproc must be at least 1, got {nproc}")
    out = Path(out)
    planned = plan_suite(name, out, only=only, device=device, data_dir=data_dir, cross_arch=cross_arch,
                         overrides=overrides)
    path, suite, common, cells = planned.path, planned.suite, planned.common, planned.selected
    check_writable(out)  # made, and found writable (a full disk, a read-only mount), before any cell starts
    check_finished_cells(planned.cells, out)
    write_json(out / "suite.json", {"suite": suite, "file": str(path)})
    log = Log(out / "log.txt", out / "log.txt")

    def train(experts: Experts) -> None:
        with exclusive(lock_beside(experts.directory)):
            if (experts.directory / "accuracy.json").exists():  # another piece trained it while this one waited
                return
            seconds = run_command(experts.command, log.of(out / "experts" / f"{experts.directory.name}.log", jobs),
                                  nproc)
            write_json(experts.directory / "bench_time.json", {"seconds": seconds, "processes": nproc})

    (out / "results").mkdir(exist_ok=True)
    results = finished_results(planned.cells, out)
    todo, buffers = left_to_run(planned, results)
    warn_if_long(planned, out, device, jobs, nproc)
    bar = tqdm(total=len(cells), initial=len(cells) - len(todo), desc=f"suite {path.stem}", disable=not progress)

    running = RunningCells(bar, out)

    def run_one(cell: Cell) -> None:
        running.started(cell)
        result = run_cell(cell, log.of(cell.directory / "log.txt", jobs), nproc)
        running.finished(cell)
        if cell.experts is not None:
            timing = cell.experts / "bench_time.json"  # absent where a finished cell came with its result alone
            spent = json.loads(timing.read_text()) if timing.exists() else {}
            result["experts_seconds"] = spent.get("seconds", results.get(cell.name, {}).get("experts_seconds"))
            if processes(spent) > 1:  # torchrun's ranks shared the buffer: not a one-process time
                result["experts_processes"] = processes(spent)
            result["experts_epochs"] = next((e.epochs for e in planned.experts.values()
                                             if e.directory == cell.experts), None)
        with exclusive(results_lock(out)):
            write_json(result_json(out, cell.name), result)
        bar.update()

    def make_baselines(cell: Cell) -> None:
        """A relabeling cell's relabeled-random baselines, made as soon as it and its random cell are done rather
        than all at the end (DD-Ranking's pass below then finds them made)."""
        finished = finished_results(planned.cells, out)
        if cell.name in finished:
            for _, _, cmd, where in relabeled_baselines(cell.name, finished[cell.name], finished, out, common, suite):
                evaluation_json(cmd, where, log.of(where.parent / "log.txt", jobs))

    # one at a time, the order is the suite's (buffers first); side by side, the longest path first (schedule.py)
    costs, buffer_costs = stored_costs(out, device)[:2] if jobs > 1 else ({}, {})
    tasks = suite_tasks(todo, buffers, planned.cells, ranked=ranks(suite), costs=costs, buffer_costs=buffer_costs,
                        here=device_here(device), train=train, run_cell=run_one, make_baselines=make_baselines)
    try:
        run_tasks(tasks, jobs, available_memory_mb())
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
            for cell, random_stem in ddranking(results, teacher_evals):
                print(unrelabeled_warning(cell, random_stem), file=sys.stderr)
            rank_recipes(results, recipe_evals)
            for stem, r in results.items():
                write_json(result_json(out, stem), r)
    run_anatomy(suite, planned.cells, results, out, log)  # suites with `anatomy` pairs: the hybrids' evaluations
    write_tuning(path, suite, planned.cells, results, out)  # suites with method grids: the points, best first
    from ltdistill.report.tables import bench_table

    atomic_write_bytes(out / "table.md", bench_table([results[s] for s in sorted(results)]).encode())
    if results and figures:  # every finished cell's per-class bars, image grids, loss curves (report/build.py)
        from ltdistill.report.build import build_report

        build_report(out)
    return out / "table.md"


def results_lock(out: Path) -> Path:
    """Held while a piece writes results/*.json, so one piece's DD-Ranking pass never interleaves with another's."""
    return out / "results" / ".lock"
