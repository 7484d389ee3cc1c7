"""What runs when, `jobs` at a time: `in_parallel` for independent pieces of work, `run_tasks` for tasks that wait
on others (an expert buffer before the cells that replay it, the first recovery-family cell of a beta before the
cells that load its models). Of the tasks ready to start, the one with the longest estimated path to the end of the
run starts first (critical-path list scheduling): a long task started late would otherwise run alone at the end
while the other cores idle."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass


def in_parallel(work, items: list, jobs: int) -> None:
    """`work(item)` for every item, `jobs` at a time (threads: each waits on its subprocess). On a failure no new
    item starts; those already running finish (their commands are not killed half-way), then the error is raised."""
    if jobs == 1:
        for item in items:
            work(item)
        return
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(work, item) for item in items]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in done if f.exception() is not None), None)
        if failed is not None:
            pool.shutdown(cancel_futures=True)
            error = failed.exception()
            assert error is not None
            raise error


@dataclass(frozen=True)
class Task:
    name: str
    work: Callable[[], None]
    seconds: float = math.inf  # estimated; unknown: as long as can be, so that it is not left for the end
    after: tuple[str, ...] = ()  # tasks that must finish first (names not among the tasks are already done)


def path_seconds(tasks: list[Task]) -> dict[str, float]:
    """Each task's estimated seconds from its start to the end of its longest chain of dependents."""
    dependents: dict[str, list[str]] = {t.name: [] for t in tasks}
    for task in tasks:
        for name in task.after:
            if name in dependents:
                dependents[name].append(task.name)
    seconds = {t.name: t.seconds for t in tasks}
    lengths: dict[str, float] = {}

    def length(name: str) -> float:
        if name not in lengths:
            lengths[name] = seconds[name] + max((length(d) for d in dependents[name]), default=0.0)
        return lengths[name]

    return {t.name: length(t.name) for t in tasks}


def run_tasks(tasks: list[Task], jobs: int) -> None:
    """Every task once the tasks it waits on have finished, `jobs` at a time; of those ready, the longest path
    first, then the one listed first. On a failure no new task starts; the running ones finish (their commands are
    not killed half-way), then the error is raised."""
    lengths = path_seconds(tasks)
    listed = {t.name: i for i, t in enumerate(tasks)}
    waits = {t.name: set(t.after) & set(listed) for t in tasks}
    ready = [t for t in tasks if not waits[t.name]]
    changed = threading.Condition()
    state: dict = {"running": 0, "left": len(tasks), "error": None}

    def take() -> Task | None:
        with changed:
            while state["error"] is None and state["left"]:
                if ready:
                    task = min(ready, key=lambda t: (-lengths[t.name], listed[t.name]))
                    ready.remove(task)
                    state["running"] += 1
                    return task
                assert state["running"], "tasks wait on each other"
                changed.wait()
            return None

    def done(task: Task, error: BaseException | None) -> None:
        with changed:
            state["running"] -= 1
            state["left"] -= 1
            if error is not None:
                state["error"] = state["error"] or error
            for other in tasks:
                if task.name in waits[other.name]:
                    waits[other.name].discard(task.name)
                    if not waits[other.name]:
                        ready.append(other)
            changed.notify_all()

    def worker(_: int) -> None:
        while (task := take()) is not None:
            try:
                task.work()
            except BaseException as error:
                done(task, error)
                return
            done(task, None)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(min(jobs, len(tasks)))]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except BaseException as interrupted:  # Ctrl-C: no new task starts (the running commands get the signal too)
        with changed:
            state["error"] = state["error"] or interrupted
        raise
    if state["error"] is not None:
        raise state["error"]
