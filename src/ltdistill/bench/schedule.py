"""What runs when, `jobs` at a time (`command_slots` resolves `bench --jobs`): `in_parallel` for independent pieces
of work, `run_tasks` for tasks that wait on others (graph.py: an expert buffer before the cells that replay it, the
first recovery-family cell of a beta before the cells that load its models). Of the tasks ready to start, the one
with the longest estimated path to the end of the run starts first (critical-path list scheduling): a long task
started late would otherwise run alone at the end while the other cores idle. A task starts beside the running ones
only while their estimated peak memory and its own fit in the memory given (a trajectory cell at IPC 50 can hold half
of a small machine's memory: two at once would be killed for it); alone, a task starts whatever it needs.
`simulated_seconds` plays the same schedule over the estimates (`bench --plan`)."""

from __future__ import annotations

import heapq
import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from ltdistill.errors import check


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
    memory_mb: float = 0.0  # its peak memory, estimated (0: unknown)


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


class Ready:
    """The tasks ready to start, for `run_tasks` and `simulated_seconds` alike: `take` the one with the longest path
    to the end (then the one listed first), `finished` releases what waited on a task."""

    def __init__(self, tasks: list[Task]):
        self.tasks, self.lengths = tasks, path_seconds(tasks)
        self.listed = {t.name: i for i, t in enumerate(tasks)}
        self.waits = {t.name: set(t.after) & set(self.listed) for t in tasks}
        self.ready = [t for t in tasks if not self.waits[t.name]]

    def __bool__(self) -> bool:
        return bool(self.ready)

    def take(self, room_mb: float = math.inf) -> Task | None:
        """The ready task to start of those whose memory fits in `room_mb`; None where none fits."""
        fitting = [t for t in self.ready if t.memory_mb <= room_mb]
        if not fitting:
            return None
        task = min(fitting, key=lambda t: (-self.lengths[t.name], self.listed[t.name]))
        self.ready.remove(task)
        return task

    def finished(self, task: Task) -> None:
        for other in self.tasks:
            if task.name in self.waits[other.name]:
                self.waits[other.name].discard(task.name)
                if not self.waits[other.name]:
                    self.ready.append(other)


def run_tasks(tasks: list[Task], jobs: int, memory_mb: float = math.inf) -> None:
    """Every task once the tasks it waits on have finished, `jobs` at a time and within `memory_mb` of estimated
    peak memory (room_left); of those ready, the longest path first, then the one listed first. On a failure no new
    task starts; the running ones finish (their commands are not killed half-way), then the error is raised."""
    ready = Ready(tasks)
    changed = threading.Condition()
    state: dict = {"running": 0, "left": len(tasks), "error": None, "memory": 0.0}

    def take() -> Task | None:
        with changed:
            while state["error"] is None and state["left"]:
                task = ready.take(room_left(memory_mb, state["memory"], state["running"])) if ready else None
                if task is not None:
                    state["running"] += 1
                    state["memory"] += task.memory_mb
                    return task
                assert state["running"], "tasks wait on each other"
                changed.wait()
            return None

    def done(task: Task, error: BaseException | None) -> None:
        with changed:
            state["running"] -= 1
            state["memory"] -= task.memory_mb
            state["left"] -= 1
            if error is not None:
                state["error"] = state["error"] or error
            ready.finished(task)
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


def room_left(memory_mb: float, running_mb: float, running: int) -> float:
    """The memory a task may need to start beside `running` tasks whose estimates sum to `running_mb`: all of it
    where none runs, so that a task larger than the machine still runs, alone."""
    return memory_mb - running_mb if running else math.inf


def simulated_seconds(tasks: list[Task], jobs: int, memory_mb: float = math.inf) -> float:
    """The wall time of `run_tasks(tasks, jobs, memory_mb)` were every task to take its estimated seconds (an
    unknown one: no time, so this is a lower bound where some are unknown): the same choice of what starts when a
    slot frees."""
    ready = Ready(tasks)
    running: list[tuple[float, int, Task]] = []  # (end, listed, task)
    now = 0.0
    while ready or running:
        while ready and len(running) < jobs:
            task = ready.take(room_left(memory_mb, sum(t.memory_mb for *_, t in running), len(running)))
            if task is None:
                break
            seconds = task.seconds if math.isfinite(task.seconds) else 0.0
            heapq.heappush(running, (now + seconds, ready.listed[task.name], task))
        now, _, task = heapq.heappop(running)
        ready.finished(task)
    return now
