"""`ltdistill bench --suite NAME --out DIR`: every method x dataset x beta x IPC x seed of a suite file, each cell
run through the CLI itself (so a cell is exactly the commands printed beside its numbers), cached by a hash of its
settings, resumable, with a progress bar over cells (its postfix: where each running cell stands, e.g. its checkpoint).

Suite files: benchmarks/suites/NAME.toml (or a path). Keys:
    description, full (bool: evaluate the whole long-tailed set as the reference; default true), protocol,
    runs (evaluation runs), epochs (evaluation epochs; default: the
    protocol's), seeds, eval_models (the first is the main evaluation model, the rest give cross-architecture
    accuracy; all are part of a cell's key), cross_arch (more cross-architecture models, outside the key: one added
    after cells finished is evaluated on their artifacts at the next run, nothing else reruns; `bench --cross-arch`
    adds more for one run, e.g. the costly ones on a GPU), ddranking (bool),
    [data] dataset, imbalance = [..], ipc = [..]
    [experts.<kind>] num, epochs (+ cls_epochs for kind "decoupled"): buffers shared by the cells that name them
    [[method]] name, label (default: name), preset (a TOML of configs/, may use {ipc} {imbalance}), set = ["k=v"],
               experts (an experts kind), ipc = [..] / imbalance = [..] (run the method only at those IPCs / betas)
Layout of DIR: suite.json (the suite as run), experts/<kind>-<hash>/, models/ (observers, teachers and squeezed
models of the recovery family, shared by the cells that train them alike), cells/<label>-<hash>/{artifact, eval-*.json},
results/<label>_<dataset>_b<beta>_ipc<k>_s<seed>.json (one evaluation JSON per finished cell, plus its
commands, cross-architecture accuracies, DD-Ranking metrics and costs), table.md, log.txt (every command in order,
and their output while one runs at a time; with --jobs N each cell's output is in its own log.txt). A killed suite
is rerun with the same command: finished cells are skipped, a half-distilled cell resumes from its checkpoint. A
suite file may grow between reruns (its new cells run); a finished cell whose settings changed is refused, never
silently reused. Pieces run side by side on one DIR (`--only`) wait for each other at a shared expert buffer, cell or
evaluation (file locks) instead of running it twice.

DD-Ranking (NUS-HPC-AI-Lab/DD-Ranking; Li et al. arXiv 2505.13300), per cell and evaluation seed-averaged:
    HLR = Acc_real-hard - Acc_syn-hard   (full long-tailed set vs the set with its class labels only; lower is better)
    IOR = Acc_syn-any - Acc_rdm-any      (the set under its own recipe vs the `random` cell of the same IPC under the
                                          same recipe: with the set's teacher when it relabels; higher is better)
    LRS = (e^a - e^-1) / (e - e^-1), a = w IOR - (1 - w) HLR, w = 0.5, accuracies as fractions.
Decision (DD-Ranking assumes balanced data): Acc_real-hard trains on the whole long-tailed set; the random subset takes
IPC images per class (all of a shorter class). For sets with learned stored soft labels (DATM, LTDD) there is no
teacher to relabel random images with, so their Acc_rdm-any uses hard labels: their IOR includes the soft labels'
gain, which is what DD-Ranking warns of; HLR shows the hard-label view.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import fcntl
import json
import math
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from ltdistill.errors import BadInput, check
from ltdistill.methods.loop import checkpoint_iteration, fingerprint
from ltdistill.synthetic import atomic_write_bytes

SUITE_DIRS = (Path.cwd() / "benchmarks" / "suites", Path(__file__).resolve().parents[2] / "benchmarks" / "suites")
SUITE_KEYS = {"description", "protocol", "runs", "epochs", "seeds", "eval_models", "cross_arch", "ddranking", "full",
              "data", "experts", "method"}
METHOD_KEYS = {"name", "label", "preset", "set", "experts", "ipc", "imbalance"}
CLI = [sys.executable, "-m", "ltdistill.cli"]  # cells run through the CLI of this very interpreter


def shown(cmd: list[str]) -> str:
    """A cell's command as a user types it: `ltdistill ...` rather than this machine's interpreter path."""
    return shlex.join(["ltdistill", *cmd[len(CLI):]] if cmd[:len(CLI)] == CLI else cmd)


def on_device(cmd: list[str], device: str | None) -> list[str]:
    """`cmd` with the --device its evaluation JSON records: an evaluation made elsewhere (a lent GPU's cross-arch
    models for a CPU cell, see benchmarks/fmnist_gpu_xarch.sh) is shown as it was run, not as this run would."""
    if device is None or "--device" not in cmd:
        return cmd
    at = cmd.index("--device") + 1
    return cmd if cmd[at] == device else [*cmd[:at], device, *cmd[at + 1:]]


@dataclass
class Cell:
    name: str  # results/<name>.json
    label: str  # the method variant, e.g. ltdd-no-dam; "full" for the whole long-tailed set
    key: dict  # everything that determines the result; hashed into the directory name
    directory: Path
    distill: list[str]
    evals: dict[str, list[str]] = field(default_factory=dict)  # eval name -> evaluate command (without --json)
    experts: Path | None = None

    @property
    def artifact(self) -> Path:
        return self.directory / "artifact"

    def artifact_meta(self) -> dict:
        """The finished artifact's metadata, {} while it is not made yet."""
        path = self.artifact / "meta.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def eval_json(self, name: str) -> Path:
        return self.directory / f"eval-{name}.json"


def result_json(out: Path, name: str) -> Path:
    """Where a finished cell's collected result lives; its existence is what "done" means."""
    return out / "results" / f"{name}.json"


def cell_directory(out: Path, name: str) -> Path:
    """A cell's working directory; a collected result names it by its "cell" field."""
    return out / "cells" / name


def cell_home(out: Path, name: str, directory: str, older: str | None) -> Path:
    """A cell's directory, cells/`directory`; for a trajectory cell made under the older key (see current_key), the
    one it has: the directory its stored result names, or, while it is half made, the one the older key gives for
    this run's --out spelling and device (`older`), so its checkpoint is resumed where it is."""
    home = cell_directory(out, directory)
    if older is None or home.exists():
        return home
    stored = result_json(out, name)
    named = json.loads(stored.read_text()).get("cell") if stored.exists() else None
    candidates = [cell_directory(out, d) for d in (named, older) if d]
    return next((d for d in candidates if d.exists()), home)


def needless_eval(name: str, meta: dict) -> bool:
    """The hard-label evaluation of a set that has hard labels only: its main evaluation already is Acc_syn-hard."""
    return name == "hard" and not meta.get("soft_labels") and "teacher" not in meta


@dataclass
class Experts:
    command: list[str]
    directory: Path


def find_suite(name: str) -> Path:
    path = Path(name)
    if path.suffix == ".toml" and path.is_file():
        return path
    for folder in SUITE_DIRS:
        if (folder / f"{name}.toml").is_file():
            return folder / f"{name}.toml"
    known = sorted({p.stem for d in SUITE_DIRS if d.is_dir() for p in d.glob("*.toml")})
    raise BadInput(f"unknown suite {name!r}; known: {', '.join(known) or 'none'} (or give a .toml path)")


def load_suite(path: Path) -> dict:
    try:
        suite = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise BadInput(f"{path}: not a readable suite file ({e})") from None
    unknown = sorted(set(suite) - SUITE_KEYS)
    check(not unknown, f"{path}: unknown suite key(s) {unknown}; known: {sorted(SUITE_KEYS)}")
    check("data" in suite and "method" in suite, f"{path}: a suite needs [data] and [[method]] entries")
    for m in suite["method"]:
        bad = sorted(set(m) - METHOD_KEYS)
        check(not bad and "name" in m, f"{path}: [[method]] {m.get('name')!r}: unknown key(s) {bad} or no name")
        check(m.get("experts") is None or m["experts"] in suite.get("experts", {}),
              f"{path}: method {m['name']!r} names experts {m.get('experts')!r}, not defined under [experts]")
    for key in ("eval_models", "cross_arch"):
        check(isinstance(suite.get(key, []), list) and all(isinstance(m, str) for m in suite.get(key, [])),
              f"{path}: {key} must be a list of model names")
    return suite


def with_cross_arch(suite: dict, models: list[str] | None) -> dict:
    """The suite with `models` (bench --cross-arch) added to its cross_arch list; they do not enter any cell's key."""
    if not models:
        return suite
    have = suite.get("cross_arch", [])
    return {**suite, "cross_arch": have + [m for m in models if m not in have]}


def cross_arch_left(cell: Cell, result: dict) -> list[str]:
    """The evaluation models of a cell that its finished result has no accuracy for: models added to the suite's
    cross_arch after the cell finished."""
    have = result.get("cross_arch", {})
    return [name for name in (k.removeprefix("model-") for k in cell.evals if k.startswith("model-"))
            if name not in have]


def digest(obj) -> str:
    """A cell's or expert buffer's directory suffix: the first 10 hex digits of loop.fingerprint."""
    return fingerprint(obj)[:10]


def plan(suite: dict, out: Path, common: list[str]) -> tuple[list[Cell], dict[str, Experts]]:
    """The cells of a suite and the expert commands they need."""
    data = suite["data"]
    protocol, runs = suite.get("protocol", "cpu"), suite.get("runs", 3)
    models = suite.get("eval_models", ["convnet"])
    later = [m for m in suite.get("cross_arch", []) if m not in models]
    from ltdistill.models import names as model_names

    unknown = sorted(set(models + later) - set(model_names()))
    check(not unknown, f"unknown evaluation model(s) {unknown}; known: {', '.join(model_names())}")
    hard = [("hard", [models[0], "--labels", "hard"])] if suite.get("ddranking", True) else []
    eval_flags = [(f"model-{m}", [m]) for m in models] + hard + [(f"model-{m}", [m]) for m in later]  # in run order
    dataset = data["dataset"]
    experts_cmds, cells = {}, []
    for beta in data.get("imbalance", [1]):
        base = ["--dataset", dataset, "--imbalance", str(beta), "--protocol", protocol]
        for kind, spec in suite.get("experts", {}).items():
            key = {"dataset": dataset, "beta": beta, "protocol": protocol, **spec}
            where = out / "experts" / f"{kind}-b{beta}-{digest(key)}"
            cmd = [*CLI, "experts", *base, "--num", str(spec["num"]), "--epochs", str(spec["epochs"]),
                   "--out", str(where), *common]
            if kind == "decoupled":
                cmd[len(CLI) + 1:len(CLI) + 1] = ["--decoupled", "--cls-epochs", str(spec.get("cls_epochs", 5))]
            experts_cmds[f"{kind}-b{beta}"] = Experts(cmd, where)
        eval_tail = ["--runs", str(runs), "--protocol", protocol, *common]
        eval_tail += ["--epochs", str(suite["epochs"])] if "epochs" in suite else []
        full_key = {"full": dataset, "beta": beta, "protocol": protocol, "runs": runs, "model": models[0],
                    "epochs": suite.get("epochs")}
        full_eval = [*CLI, "evaluate", "--full", *base[:4], "--model", models[0], *eval_tail]
        if suite.get("full", True):
            cells.append(Cell(f"full_{dataset}_b{beta}", "full", full_key,
                              cell_directory(out, f"full-b{beta}-{digest(full_key)}"), [], {"main": full_eval}))
        for ipc in data.get("ipc", [10]):
            for seed in suite.get("seeds", [0]):
                for m in suite["method"]:
                    if ipc not in m.get("ipc", [ipc]) or beta not in m.get("imbalance", [beta]):
                        continue
                    label = m.get("label", m["name"])
                    preset = m.get("preset", "").format(ipc=ipc, imbalance=beta) or None
                    preset_text = Path(preset).read_text() if preset and Path(preset).is_file() else None
                    check(preset is None or preset_text is not None, f"suite preset {preset} does not exist")
                    experts = experts_cmds[f"{m['experts']}-b{beta}"] if m.get("experts") else None
                    key = {"dataset": dataset, "beta": beta, "ipc": ipc, "seed": seed, "method": m["name"],
                           "preset": preset_text, "set": m.get("set", []), "protocol": protocol, "runs": runs,
                           "epochs": suite.get("epochs"), "models": models,
                           "experts": experts and experts.directory.name}
                    cell_name = f"{label}_{dataset}_b{beta}_ipc{ipc}_s{seed}"
                    older = experts and {**key, "experts": experts.command[len(CLI):]}
                    cell_dir = cell_home(out, cell_name, f"{label}-{digest(key)}",
                                         older and f"{label}-{digest(older)}")
                    distill = [*CLI, "distill", "--method", m["name"], *base, "--ipc", str(ipc), "--seed", str(seed)]
                    distill += ["--config", preset] if preset else []
                    for text in m.get("set", []):
                        distill += ["--set", text]
                    if experts is not None:
                        distill += ["--experts", str(experts.directory)]
                    if shares_models(m["name"]):  # one observer/teacher training per beta, not per cell
                        distill += ["--set", f"model_cache={str(out / 'models')!r}"]
                    art = str(cell_dir / "artifact")
                    distill += ["--out", art, *common]
                    evals = {name: [*CLI, "evaluate", art, "--model", *flags, *eval_tail] for name, flags in eval_flags}
                    cells.append(Cell(cell_name, label, key, cell_dir, distill, evals,
                                      experts and experts.directory))
    names = [c.name for c in cells]
    twice = sorted({n for n in names if names.count(n) > 1})
    check(not twice, f"suite names cell(s) {twice} twice: give one of the [[method]] entries a label, or split "
                     "their ipc/imbalance lists")
    return cells, experts_cmds


def shares_models(method: str) -> bool:
    """Whether a method trains models on the data that cells can share (the recovery family's model_cache)."""
    from ltdistill import methods

    cls = methods.METHODS.get(method)
    return cls is not None and "model_cache" in {f.name for f in dataclasses.fields(cls.Config)}


def die_with_parent() -> None:
    """Runs in the child before exec (Linux): PR_SET_PDEATHSIG, so a bench killed with SIGKILL takes its running
    command with it; otherwise the orphan would go on writing into a cell that the rerun resumes at the same time."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


@dataclass(frozen=True)
class Log:
    """Where bench commands are listed in order (`index`: DIR/log.txt) and where one's output goes (`output`: the
    same file when cells run one at a time, the cell's own log.txt when several run at once)."""
    index: Path
    output: Path

    def of(self, output: Path, jobs: int) -> Log:
        """This log, or with several jobs one whose output goes to `output`."""
        return self if jobs == 1 else Log(self.index, output)


def run_command(cmd: list[str], log: Log) -> float:
    start = time.perf_counter()
    line = "$ " + shlex.join(cmd) + "\n"
    if log.output != log.index:
        with open(log.index, "a") as f:
            f.write(line)
    log.output.parent.mkdir(parents=True, exist_ok=True)
    with open(log.output, "a") as f:
        f.write(line)
        f.flush()
        done = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT,
                              preexec_fn=die_with_parent if sys.platform == "linux" else None)
    if done.returncode != 0:
        raise BadInput(f"bench: command failed (exit {done.returncode}), see {log.output}: {shlex.join(cmd)}")
    return time.perf_counter() - start


@contextlib.contextmanager
def exclusive(lock: Path):
    """Hold an advisory lock (flock) on the file `lock` for the block. Bench pieces run side by side on one --out
    take it before a command that writes a shared place (an expert buffer, a cell's artifact, an evaluation JSON),
    so a second piece waits for the first and then finds the work done, instead of running it again into the same
    directory; the kernel drops the lock when its holder dies."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def evaluation_json(cmd: list[str], path: Path, log: Log) -> dict:
    """The evaluation JSON at `path`, running `cmd --json` first when it is missing; the file appears only by
    rename, so a killed evaluation never leaves a half-written result that a rerun would trust. The runs finished
    before a kill stay in a runs directory beside it (evaluate --runs-dir), so the rerun trains only the rest; it
    goes once the JSON, which holds every run, is there."""
    with exclusive(path.with_name(f".{path.name}.lock")):
        if not path.exists():
            tmp = path.with_name(f".{path.name}")
            tmp.unlink(missing_ok=True)
            run_command([*cmd, "--json", str(tmp), "--runs-dir", str(runs_dir(path))], log)
            tmp.rename(path)
            shutil.rmtree(runs_dir(path), ignore_errors=True)
    return json.loads(path.read_text())


def runs_dir(eval_json: Path) -> Path:
    """Where the finished runs of an evaluation, and its run in progress, wait while its JSON is missing (evaluate
    --runs-dir)."""
    return eval_json.with_name(f".{eval_json.stem}-runs")


def run_cell(cell: Cell, log: Log) -> dict:
    cell_dir = cell.directory
    cell_dir.mkdir(parents=True, exist_ok=True)
    with exclusive(cell_dir / ".distill.lock"):
        if cell.distill and not (cell.artifact / "meta.json").exists():
            run_command(cell.distill, log)
    evals = {}
    meta = cell.artifact_meta()
    for name, cmd in cell.evals.items():
        if needless_eval(name, meta):
            evals[name] = evals[next(iter(evals))]  # hard labels already: Acc_syn-hard is the main accuracy
            continue
        evals[name] = evaluation_json(cmd, cell.eval_json(name), log)
    main = evals.get("main") or next(iter(evals.values()))
    result = dict(main)
    commands = ([cell.distill] if cell.distill else []) + [on_device(cmd, evals[name].get("device"))
                                                           for name, cmd in cell.evals.items()]
    result.update(label=cell.label, cell=cell_dir.name, key=cell.key, commands=[shown(c) for c in commands])
    result["cross_arch"] = {k.removeprefix("model-"): v["balanced_acc"] for k, v in evals.items()
                            if k.startswith("model-")}
    if "hard" in evals:
        result["syn_hard"] = evals["hard"]["balanced_acc"]
    return result


def random_cell(results: dict[str, dict], key: dict) -> dict | None:
    """The `random` cell of the same beta, IPC and seed: DD-Ranking's random baseline of a cell."""
    return next((x for x in results.values() if x.get("key", {}).get("method") == "random"
                 and all(x["key"].get(k) == key[k] for k in ("beta", "ipc", "seed"))), None)


def ddranking(results: dict[str, dict], teacher_evals: dict[str, dict]) -> None:
    """Add HLR / IOR / LRS to every distilled cell (see the module docstring). A cell whose full-set reference is
    not run yet gets IOR only, one whose random cell is missing HLR only; LRS needs both. A relabeling cell's
    baseline is the random set relabeled by its teacher (`teacher_evals`); where that evaluation cannot be made now
    (an --out holding results copied without their artifacts), the relabeled baseline the cell already stored is
    kept rather than replaced by the hard-label random set."""
    for name, r in results.items():
        if r.get("label") == "full" or "syn_hard" not in r:
            continue
        k = r["key"]
        full = next((x for x in results.values() if x.get("label") == "full" and x["key"]["beta"] == k["beta"]), None)
        stored = r.get("ddranking", {})
        if name in teacher_evals:
            relabeled = teacher_evals[name]
            baseline = relabeled["balanced_acc"]["mean"], relabeled.get("label_regime", "relabel")
        elif str(stored.get("rdm_regime", "")).startswith("relabel"):
            baseline = stored["acc_rdm_any"], stored["rdm_regime"]
        else:
            random = random_cell(results, k)
            baseline = None if random is None else (random["balanced_acc"]["mean"], random.get("label_regime", "hard"))
        dd = {}
        if full is not None:
            dd.update(hlr=full["balanced_acc"]["mean"] - r["syn_hard"]["mean"],
                      acc_real_hard=full["balanced_acc"]["mean"], acc_syn_hard=r["syn_hard"]["mean"])
        if baseline is not None:
            dd.update(ior=r["balanced_acc"]["mean"] - baseline[0], acc_syn_any=r["balanced_acc"]["mean"],
                      acc_rdm_any=baseline[0], rdm_regime=baseline[1])
        if full is not None and baseline is not None:
            a = 0.5 * dd["ior"] - 0.5 * dd["hlr"]
            dd["lrs"] = (math.exp(a) - math.exp(-1)) / (math.e - math.exp(-1))
        if dd:
            r["ddranking"] = dd


def current_key(key: dict) -> dict:
    """A stored cell key as this version writes it. Until 2026-11 a trajectory cell's key held its expert command,
    whose --out and --device tied the cell to one spelling of its run directory and to one device (a run could
    not be moved, or resumed on a GPU, without redoing its trajectory cells); the key now holds the buffer's
    directory name, which is that command's --out without its parents and is itself a hash of the buffer's
    settings. Results stored the old way are read through this; `plan` resumes their half-made cells."""
    command = key.get("experts")
    if isinstance(command, list) and "--out" in command:
        return {**key, "experts": Path(command[command.index("--out") + 1]).name}
    return key


def check_finished_cells(cells: list[Cell], out: Path) -> None:
    """A suite may grow (new methods, betas, IPCs: their cells just run), but a finished cell is reused by name, so
    one whose settings changed since (runs, protocol, a method's overrides, ...) is refused rather than reused."""
    for cell in cells:
        target = result_json(out, cell.name)
        if target.exists():
            stored = current_key(json.loads(target.read_text()).get("key") or {})
            changed = sorted(k for k in set(cell.key) | set(stored) if stored.get(k) != cell.key.get(k))
            check(not changed, f"{out}: finished cell {cell.name} was made with other settings than the suite now "
                               f"asks ({', '.join(changed)} differ); choose a new --out")


def cell_status(cell: Cell, out: Path) -> str:
    """Where a cell stands, read from disk only: done, evaluating, distilling (checkpoint), or to run."""
    if result_json(out, cell.name).exists():
        left = cross_arch_left(cell, json.loads(result_json(out, cell.name).read_text()))
        if not left:
            return "done"
        here = "" if cell.artifact_meta() else " (its artifact is not in this directory)"
        return f"done; cross-arch {', '.join(left)} left{here}"
    if cell.distill and not (cell.artifact / "meta.json").exists():
        it = checkpoint_iteration(cell.artifact)
        if it is not None:
            return f"distilling (checkpoint at iteration {it})"
        return "started (no checkpoint yet)" if cell.artifact.exists() else "to run"
    meta = cell.artifact_meta()
    left = [name for name in cell.evals if not cell.eval_json(name).exists() and not needless_eval(name, meta)]
    folders = [runs_dir(cell.eval_json(name)) for name in left]
    kept = sum(len(list(folder.glob("run-*.json"))) for folder in folders)
    partial = sum(len(list(folder.glob("partial-*.pt"))) for folder in folders)
    if not cell.distill and len(left) == len(cell.evals) and not kept and not partial:
        return "to run"
    runs = f"; {kept} run{'s' * (kept != 1)} kept" if kept else ""
    runs += f"; {partial} run{'s' * (partial != 1)} in progress kept" if partial else ""
    return f"evaluating ({', '.join(left)} left{runs})" if left else "evaluated, not yet collected"


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


def select(cells: list[Cell], only: list[str] | None) -> list[Cell]:
    """`--only`: the cells whose label (a method variant, or "full" for the whole-set references) or cell name (as
    `--plan` lists them) is named; every cell when nothing is named."""
    if not only:
        return cells
    unknown = sorted(set(only) - {c.label for c in cells} - {c.name for c in cells})
    check(not unknown, f"--only: no cell has label or name {unknown}; labels: {sorted({c.label for c in cells})} "
                       "(cell names: see --plan)")
    return [c for c in cells if c.label in only or c.name in only]


def buffers_needed(cells: list[Cell], finished) -> set[Path]:
    """The expert buffers a run trains for `cells`: only a cell still to distill needs its buffer; a finished one
    (in `finished`, names) that just lacks a cross-arch evaluation does not. `--plan` says what the run will do."""
    return {c.experts for c in cells if c.experts is not None and c.name not in finished}


def command_flags(device: str, data_dir: str | None) -> list[str]:
    """The flags every command of a bench run ends with. Outside every cell's key; `--plan` builds them as the run
    does all the same, to find the directories of trajectory cells begun under the older key (see current_key)."""
    return ["--device", device, "--no-progress"] + (["--data-dir", data_dir] if data_dir else [])


def suite_plan(name: str, out: str | Path, *, only: list[str] | None = None, device: str = "cpu",
               data_dir: str | None = None, cross_arch: list[str] | None = None) -> str:
    """`bench --plan`: every cell of the suite and where it stands in `out` for a run with this device, data
    directory and added cross-architecture models; runs nothing."""
    out = Path(out)
    suite = with_cross_arch(load_suite(find_suite(name)), cross_arch)
    cells, experts_cmds = plan(suite, out, command_flags(device, data_dir))
    cells = select(cells, only)
    rows = [("cell", "status")]
    statuses = [cell_status(c, out) for c in cells]
    needed = buffers_needed(cells, {c.name for c in cells if result_json(out, c.name).exists()})
    for experts in experts_cmds.values():
        if any(c.experts == experts.directory for c in cells):
            done = (experts.directory / "accuracy.json").exists()
            rows.append((f"experts {experts.directory.name}", "done" if done else (
                "to train" if experts.directory in needed else "not needed (its cells are finished)")))
    rows += [(c.name, status) for c, status in zip(cells, statuses, strict=True)]
    width = max(len(name) for name, _ in rows) + 2
    lines = [f"{name:<{width}}{status}" for name, status in rows]
    return "\n".join(lines + [f"{statuses.count('done')} of {len(cells)} cells done in {out}"]) + "\n"


def run_suite(name: str, out: str | Path, *, device: str = "cpu", data_dir: str | None = None,
              progress: bool = True, only: list[str] | None = None, jobs: int = 1,
              cross_arch: list[str] | None = None) -> Path:
    """Run (or resume) a suite; `only`: run just these cells (see `select`). The table, and DD-Ranking, cover every
    finished cell of the suite in `out`, so pieces run one after another add up. `jobs`: how many commands run at
    once (expert buffers first, then cells; the recovery-family cells of one beta run one after another, since
    the first trains the models the others load from the shared model_cache). `cross_arch`: models added to the
    suite's cross_arch for this run; a finished cell whose artifact is here gets the evaluations it lacks."""
    check(jobs >= 1, f"--jobs must be at least 1, got {jobs}")
    path = find_suite(name)
    suite = with_cross_arch(load_suite(path), cross_arch)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    common = command_flags(device, data_dir)
    planned, experts_cmds = plan(suite, out, common)
    cells = select(planned, only)
    check_finished_cells(planned, out)
    atomic_write_bytes(out / "suite.json", json.dumps({"suite": suite, "file": str(path)}, indent=2).encode())
    log = Log(out / "log.txt", out / "log.txt")

    def train(experts: Experts) -> None:
        with exclusive(out / "experts" / f".{experts.directory.name}.lock"):
            if (experts.directory / "accuracy.json").exists():  # another piece trained it while this one waited
                return
            seconds = run_command(experts.command, log.of(out / "experts" / f"{experts.directory.name}.log", jobs))
            atomic_write_bytes(experts.directory / "bench_time.json", json.dumps({"seconds": seconds}).encode())

    (out / "results").mkdir(exist_ok=True)
    results = finished_results(planned, out)
    todo = [c for c in cells if c.name not in results
            or (cross_arch_left(c, results[c.name]) and c.artifact_meta())]  # a finished cell lacking a cross-arch
    needed = buffers_needed(todo, results)
    in_parallel(train, [e for e in experts_cmds.values()
                        if e.directory in needed and not (e.directory / "accuracy.json").exists()], jobs)
    bar = tqdm(total=len(cells), initial=len(cells) - len(todo), desc=f"suite {path.stem}", disable=not progress)

    running = RunningCells(bar, out)

    def run_chain(chain: list[Cell]) -> None:
        for cell in chain:
            running.started(cell)
            result = run_cell(cell, log.of(cell.directory / "log.txt", jobs))
            running.finished(cell)
            if cell.experts is not None:
                timing = cell.experts / "bench_time.json"  # absent where a finished cell came with its result alone
                result["experts_seconds"] = (json.loads(timing.read_text())["seconds"] if timing.exists()
                                             else results.get(cell.name, {}).get("experts_seconds"))
            with exclusive(results_lock(out)):
                atomic_write_bytes(result_json(out, cell.name), json.dumps(result, indent=2).encode())
            bar.update()

    try:
        in_parallel(run_chain, chains(todo), jobs)
    finally:
        running.stopped.set()
        bar.close()
    # read back from disk, not kept from this piece's start: other pieces finish cells (or add cross-arch
    # accuracies to finished ones) meanwhile, and a stale copy written back here would undo their work
    teacher_evals = (random_with_teachers(finished_results(planned, out), out, common, suite, log, jobs)
                     if suite.get("ddranking", True) else {})
    with exclusive(results_lock(out)):
        results = finished_results(planned, out)
        if suite.get("ddranking", True):
            ddranking(results, teacher_evals)
            for stem, r in results.items():
                atomic_write_bytes(result_json(out, stem), json.dumps(r, indent=2).encode())
    from ltdistill.report.tables import bench_table

    (out / "table.md").write_text(bench_table([results[s] for s in sorted(results)]))
    return out / "table.md"


def results_lock(out: Path) -> Path:
    """Held while a piece writes results/*.json, so one piece's DD-Ranking pass never interleaves with another's."""
    return out / "results" / ".lock"


def finished_results(cells: list[Cell], out: Path) -> dict[str, dict]:
    """The collected results of the cells finished in `out`, by cell name. Read again after a piece's own cells,
    since pieces run side by side (`--only`) finish cells in the same directory meanwhile."""
    return {c.name: json.loads(p.read_text()) for c, p in ((c, result_json(out, c.name)) for c in cells)
            if p.exists()}


def chains(cells: list[Cell]) -> list[list[Cell]]:
    """Cells grouped into what must run in order: the recovery-family cells of one beta (they share the models of
    the suite's model_cache; running them side by side would train the same observer twice), every other cell
    alone. Order is kept: a chain sits where its first cell was."""
    groups: dict[object, list[Cell]] = {}
    for cell in cells:
        shared = shares_models(cell.key.get("method", ""))
        groups.setdefault(("models", cell.key["beta"]) if shared else cell.name, []).append(cell)
    return list(groups.values())


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
            raise failed.exception()


def random_with_teachers(results: dict, out: Path, common, suite, log: Log, jobs: int) -> dict[str, dict]:
    """Acc_rdm-any for relabeling sets: the random cell's images relabeled by that set's teacher."""
    evals = {}
    for name, r in results.items():
        if not str(r.get("label_regime", "")).startswith("relabel"):
            continue
        random = random_cell(results, r["key"])
        dirs = [cell_directory(out, x["cell"]) for x in (r, random or {}) if "cell" in x]
        if random is None or len(dirs) < 2 or not all((d / "artifact" / "meta.json").exists() for d in dirs):
            continue  # an artifact is gone (results copied without cells): ddranking keeps the stored baseline
        set_dir, random_dir = dirs
        cmd = [*CLI, "evaluate", str(random_dir / "artifact"), "--teacher-from", str(set_dir / "artifact"),
               "--runs", str(suite.get("runs", 3)), "--protocol", suite.get("protocol", "cpu"), *common]
        evals[name] = evaluation_json(cmd, set_dir / "eval-random-relabeled.json", log.of(set_dir / "log.txt", jobs))
    return evals
