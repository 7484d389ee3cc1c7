"""`ltdistill bench --suite NAME --out DIR`: every method x dataset x beta x IPC x seed of a suite file, each cell
run through the CLI itself (so a cell is exactly the commands printed beside its numbers), cached by a hash of its
settings, resumable, with a progress bar over cells (its postfix: where each running cell stands, e.g. its checkpoint).

Suite files: benchmarks/suites/NAME.toml (or a path). Keys:
    description, full (bool: evaluate the whole long-tailed set as the reference; default true), protocol,
    runs (evaluation runs), epochs (evaluation epochs; default: the
    protocol's), seeds, eval_models (the first is the main evaluation model, the rest give cross-architecture
    accuracy; all are part of a cell's key), cross_arch (more cross-architecture models, outside the key: one added
    after cells finished is evaluated on their artifacts at the next run, nothing else reruns; `bench --cross-arch`
    adds more for one run, e.g. the costly ones on a GPU), ddranking (bool), ranking ("ltdistill" | "ddranking"),
    convnet_stem, calibrations = ["adsa"] (every soft-label cell also with calibrated labels), recipes = ["sre2l"]
    (every relabeling cell also under that relabel recipe; both outside the key, added later they evaluate the
    finished cells alone), compile (bool: evaluations, experts and the methods' own first-order loops through
    torch.compile) and precision ("float32" | "bfloat16": evaluation training), both in the keys where taken
    (`bench --compile`, `--precision`, `--convnet-stem` set them for one run),
    anatomy = [{before = LABEL, after = LABEL}] (what the `after` cells' iterations changed: hybrids of the two
    sets, bench/anatomy.py),
    [data] dataset, imbalance = [..], ipc = [..], class_order (a name or a list: one cell per order), holdout (V
    validation images per class held out: every cell scored on that split, a tuning; bench/tuning.py)
    [experts.<kind>] num, epochs (+ cls_epochs for kind "decoupled"): buffers shared by the cells that name them
    [[method]] name, label (default: name), preset (a TOML of configs/, may use {ipc} {imbalance}), set = ["k=v"],
               experts (an experts kind), ipc = [..] / imbalance = [..] (run the method only at those IPCs / betas),
               seeds = [..] (its own seeds instead of the suite's; a second entry of the same label with other
               seeds, ipc and imbalance adds seeds to some settings only), grid = {key = [v1, v2], ...} (one cell
               per point, labelled <label>@key=v1+...; needs [data] holdout; DIR/tuning.json names the best)
Layout of DIR: suite.json (the suite as run), experts/<kind>-<hash>/, models/ (observers, teachers and squeezed
models of the recovery family, shared by the cells that train them alike), cells/<label>-<hash>/{artifact, eval-*.json},
results/<label>_<dataset>_b<beta>_ipc<k>_s<seed>.json (one evaluation JSON per finished cell, plus its
commands, cross-architecture accuracies, DD-Ranking metrics and costs), anatomy/ and tuning.json (suites that ask
for them), table.md, log.txt (every command in order,
and their output while one runs at a time; with --jobs N each cell's output is in its own log.txt). A killed suite
is rerun with the same command: finished cells are skipped, a half-distilled cell resumes from its checkpoint. A
suite file may grow between reruns (its new cells run); a finished cell whose settings changed is refused, never
silently reused. Pieces run side by side on one DIR (`--only`) wait for each other at a shared expert buffer, cell or
evaluation (file locks) instead of running it twice.
DD-Ranking's HLR / IOR / LRS per cell: bench/ranking.py.

Modules: suite (suite files -> cells, keys, directories), commands (running a cell's commands), status (`--plan`, the
progress bar's postfix), ranking (DD-Ranking), anatomy (before/after hybrids), tuning (grids on a holdout), run
(run_suite).
"""

from ltdistill.bench.commands import exclusive, run_cell, runs_dir
from ltdistill.bench.graph import dependencies
from ltdistill.bench.ranking import ddranking
from ltdistill.bench.run import run_suite
from ltdistill.bench.schedule import Task, in_parallel, run_tasks
from ltdistill.bench.status import RunningCells, buffers_needed, cell_status, suite_plan
from ltdistill.bench.suite import (
    CLI,
    SUITE_DIRS,
    Cell,
    cell_directory,
    check_finished_cells,
    command_flags,
    comparable_key,
    cross_arch_left,
    digest,
    find_suite,
    load_suite,
    plan,
    plan_suite,
    result_json,
)

__all__ = ["CLI", "SUITE_DIRS", "Cell", "RunningCells", "Task", "buffers_needed", "cell_directory", "cell_status",
           "check_finished_cells", "dependencies", "command_flags", "comparable_key", "cross_arch_left", "ddranking",
           "digest", "exclusive", "find_suite", "in_parallel", "load_suite", "plan", "plan_suite",
           "result_json", "run_cell", "run_suite", "run_tasks", "runs_dir", "suite_plan"]
