"""A suite's run as tasks for schedule.run_tasks: the expert buffers still to train, the cells to run and the
relabeled-random baselines of the relabeling cells; what each waits for; what each costs by the stored costs of the
same pieces (estimate.py). `bench` runs them; `bench --plan` plays the same schedule with the estimates to say how
long the run takes at --jobs."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path

from ltdistill.bench.estimate import buffer_estimate, estimate, memory_estimate
from ltdistill.bench.ranking import random_for
from ltdistill.bench.schedule import Task
from ltdistill.bench.suite import Cell, Experts, shares_models


def buffer_task(directory: Path) -> str:
    return f"experts {directory.name}"


def random_of(cell: Cell, cells: list[Cell]) -> Cell | None:
    """The suite's cell that is the random baseline of `cell` (ranking.random_for)."""
    return next((c for c in cells if random_for(c.key, cell.key)), None)


def dependencies(cells: list[Cell], buffers: set[Path]) -> dict[str, tuple[str, ...]]:
    """What each cell waits for: the expert buffer it replays while that is still to train (`buffers`), and the
    first cell in the recovery family of the same training data and seed (dataset, beta, class order: they share
    the models of the suite's model_cache, whose keys hold the data and the seed; the first trains the observer the
    others load, instead of each training it at once, while cells of other seeds or orders, whose models differ,
    start at once). The later ones of a group do not wait for each other; a model only they need is trained once by
    whichever asks first (cached_classifier locks it)."""
    first: dict[object, str] = {}
    waits: dict[str, tuple[str, ...]] = {}
    for cell in cells:
        after = [buffer_task(cell.experts)] if cell.experts in buffers else []
        if shares_models(cell.key.get("method", "")):
            models_of = tuple(cell.key.get(k) for k in ("dataset", "beta", "class_order", "seed"))
            group = first.setdefault(models_of, cell.name)
            after += [group] if group != cell.name else []
        waits[cell.name] = tuple(after)
    return waits


def nothing(_) -> None:
    """The work of a task that is only planned (`bench --plan`)."""


def suite_tasks(todo: list[Cell], buffers: list[Experts], cells: list[Cell], *, ranked: bool, costs: dict,
                buffer_costs: dict, here: str | None = None, train: Callable[[Experts], None] = nothing,
                run_cell: Callable[[Cell], None] = nothing,
                make_baselines: Callable[[Cell], None] = nothing) -> list[Task]:
    """The tasks of a run that has `todo` cells and `buffers` to train, of the suite's `cells`; `ranked`: the suite
    ranks its cells (DD-Ranking), so each relabeling cell gets its baselines made once it and its random cell are
    done. Listed buffers first, then cells in the suite's order, then baselines: the order one at a time. `here`:
    the device_name the cells run on, where a resumed distillation's own pace counts (estimate.own_pace)."""
    waits = dependencies(todo, {e.directory for e in buffers})
    tasks = [Task(buffer_task(e.directory), functools.partial(train, e),
                  buffer_estimate(e, cells, buffer_costs) or math.inf) for e in buffers]
    tasks += [Task(c.name, functools.partial(run_cell, c), estimate(c, costs, here) or math.inf, waits[c.name],
                   memory_estimate(c, costs)) for c in todo]
    for cell in todo if ranked else []:
        random = random_of(cell, cells)
        if random is not None and shares_models(cell.key.get("method", "")):  # the recovery family relabels
            tasks.append(Task(f"baselines {cell.name}", functools.partial(make_baselines, cell),
                              estimate(random, costs) or math.inf, (cell.name, random.name)))
    return tasks
