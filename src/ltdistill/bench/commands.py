"""Running a cell: its commands as processes of their own (each listed in the log, killed with the bench, started
warm: warm.py), file locks so pieces side by side never run one command twice, and evaluation JSONs that appear
only when whole."""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ltdistill.bench.suite import CLI, Cell, read_result
from ltdistill.bench.warm import AVAILABLE, die_with_parent, started_warm
from ltdistill.errors import BadInput
from ltdistill.safe_io import exclusive, open_append


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


@dataclass(frozen=True)
class Log:
    """Where bench commands are listed in order (`index`: DIR/log.txt) and where one's output goes (`output`: the
    same file when cells run one at a time, the cell's own log.txt when several run at once)."""
    index: Path
    output: Path

    def of(self, output: Path, jobs: int) -> Log:
        """This log, or with several jobs one whose output goes to `output`."""
        return self if jobs == 1 else Log(self.index, output)


def launched(cmd: list[str], nproc: int) -> list[str]:
    """`cmd` under torchrun with `nproc` processes where it splits its work over them (experts, evaluate, distill
    of the methods in distributed.SPLITTING_METHODS), else as it is: each gives the one-process result (to float
    rounding), so where a command ran is not part of any key."""
    from ltdistill.distributed import SPLITTING_COMMANDS, SPLITTING_METHODS

    if nproc <= 1 or cmd[:len(CLI)] != CLI or cmd[len(CLI)] not in SPLITTING_COMMANDS:
        return cmd
    if cmd[len(CLI)] == "distill" and cmd[cmd.index("--method") + 1] not in SPLITTING_METHODS:
        return cmd
    launcher = ["--standalone", "--nproc_per_node", str(nproc), "-m", "ltdistill.cli"]
    check_torchrun_passes(launcher, cmd[len(CLI):])
    return [sys.executable, "-m", "torch.distributed.run", *launcher, *cmd[len(CLI):]]


def check_torchrun_passes(launcher: list[str], args: list[str]) -> None:
    """torchrun parses the whole line with abbreviations allowed: an argument of ours that begins one of its own
    options and spells two of them (`--num` for --numa-binding / --numa_binding) ends the launch with "ambiguous
    option" before any rank starts. Its own parser says here, before the command runs, whether it hands `args` to
    the ranks unchanged."""
    import torch.distributed.run as torchrun

    def refuse(message: str):
        raise BadInput(message)

    parser = torchrun.get_args_parser()
    parser.exit_on_error = False
    parser.error = refuse  # type: ignore[method-assign]  # argparse would print its usage and exit
    try:
        passed = parser.parse_args([*launcher, *args]).training_script_args
    except (BadInput, argparse.ArgumentError) as e:
        raise BadInput(f"torchrun would not pass this command to its ranks ({e}): spell its options in full: "
                       f"{shlex.join(args)}") from None
    if passed != args:
        raise BadInput(f"torchrun would pass {shlex.join(passed)} to its ranks, not {shlex.join(args)}")


COMMAND_THREADS: int | None = None  # torch threads of every command the running bench starts (None: torch's default)


@contextlib.contextmanager
def threads_per_command(threads: int | None):
    """Within the block every command runs with `threads` torch threads (OMP_NUM_THREADS)."""
    global COMMAND_THREADS
    before, COMMAND_THREADS = COMMAND_THREADS, threads
    try:
        yield
    finally:
        COMMAND_THREADS = before


def run_command(cmd: list[str], log: Log, nproc: int = 1) -> float:
    """Run `cmd` (under torchrun with `nproc` processes where it splits its work: launched), its output to the log,
    with the bench's COMMAND_THREADS; returns its wall seconds."""
    cmd = launched(cmd, nproc)
    start = time.perf_counter()
    line = "$ " + shlex.join(cmd) + "\n"
    if log.output != log.index:
        with open_append(log.index) as f:
            f.write(line)
    log.output.parent.mkdir(parents=True, exist_ok=True)
    with open_append(log.output) as f:
        f.write(line)
        f.flush()
        code = started_warm(cmd, f.fileno(), COMMAND_THREADS)
        if code is None:
            env = None if COMMAND_THREADS is None else {**os.environ, "OMP_NUM_THREADS": str(COMMAND_THREADS)}
            code = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env,
                                  preexec_fn=die_with_parent if AVAILABLE else None).returncode
    if code != 0:
        how = "died without an exit status" if code == -1 else f"failed (exit {code})"
        raise BadInput(f"bench: command {how}, see {log.output}: {shlex.join(cmd)}")
    return time.perf_counter() - start


def evaluation_json(cmd: list[str], path: Path, log: Log, nproc: int = 1) -> dict:
    """The evaluation JSON at `path`, running `cmd --json` first when it is missing; the file appears only by
    rename, so a killed evaluation never leaves a half-written result that a rerun would trust. The runs finished
    before a kill stay in a runs directory beside it (evaluate --runs-dir), so the rerun trains only the rest; it
    goes once the JSON, which holds every run, is there."""
    with exclusive(lock_beside(path)):
        if not path.exists():
            tmp = path.with_name(f".{path.name}")
            tmp.unlink(missing_ok=True)
            run_command([*cmd, "--json", str(tmp), "--runs-dir", str(runs_dir(path))], log, nproc)
            tmp.rename(path)
            shutil.rmtree(runs_dir(path), ignore_errors=True)
    return read_result(path)


def lock_beside(path: Path) -> Path:
    """The lock (`exclusive`) held while `path` is made (an evaluation JSON, an expert buffer); `bench --plan`
    probes it to tell what is running now."""
    return path.with_name(f".{path.name}.lock")


def distill_lock(cell_dir: Path) -> Path:
    """The lock held while a cell's set is distilled."""
    return cell_dir / ".distill.lock"


def runs_dir(eval_json: Path) -> Path:
    """Where the finished runs of an evaluation, and its run in progress, wait while its JSON is missing (evaluate
    --runs-dir)."""
    return eval_json.with_name(f".{eval_json.stem}-runs")


def evals_left(cell: Cell, meta: dict) -> dict[str, int]:
    """The evaluations of a made set still to finish (needless ones skipped), each with how many of its runs are
    kept in its runs directory (a resumed evaluation reads them back)."""
    return {name: len(list(runs_dir(cell.eval_json(name)).glob("run-*.json"))) for name in cell.evals
            if not cell.eval_json(name).exists() and not needless_eval(name, meta)}


def needless_eval(name: str, meta: dict) -> bool:
    """The hard-label evaluation of a set that has hard labels only (its main evaluation already is Acc_syn-hard),
    a label calibration of such a set (nothing to calibrate), and a teacher recipe of a set without a teacher."""
    if name.startswith("recipe-"):
        return "teacher" not in meta
    return (name == "hard" or name.startswith("labels-")) and not meta.get("soft_labels") and "teacher" not in meta


def variant_summary(result: dict | None) -> dict | None:
    """What a table shows of an evaluation under a label calibration or another recipe (None: not applicable to
    the set)."""
    if result is None:
        return None
    return {"balanced_acc": result["balanced_acc"], "few": result.get("few"), "many": result.get("many"),
            "per_class_acc": result.get("per_class_acc"), "label_regime": result.get("label_regime"),
            "calibration": result.get("label_calibration")}


def run_cell(cell: Cell, log: Log, nproc: int = 1) -> dict:
    cell_dir = cell.directory
    cell_dir.mkdir(parents=True, exist_ok=True)
    with exclusive(distill_lock(cell_dir)):
        if cell.set_to_make:
            run_command(cell.distill, log, nproc)
    evals: dict[str, dict] = {}
    meta = cell.artifact_meta()
    for name, cmd in cell.evals.items():
        if needless_eval(name, meta):
            if name == "hard":
                evals[name] = evals[next(iter(evals))]  # hard labels already: Acc_syn-hard is the main accuracy
            continue
        evals[name] = evaluation_json(cmd, cell.eval_json(name), log, nproc)
    main = evals.get("main") or next(iter(evals.values()))
    result = dict(main)
    commands = ([cell.distill] if cell.distill else []) + [on_device(cmd, evals[name].get("device"))
                                                           for name, cmd in cell.evals.items() if name in evals]
    result.update(label=cell.label, cell=cell_dir.name, key=cell.key, commands=[shown(c) for c in commands])
    result["cross_arch"] = {k.removeprefix("model-"): v["balanced_acc"] for k, v in evals.items()
                            if k.startswith("model-")}
    for field, prefix in (("calibrated", "labels-"), ("recipes", "recipe-")):
        variants = {name.removeprefix(prefix): variant_summary(evals.get(name)) for name in cell.evals
                    if name.startswith(prefix)}
        if variants:
            result[field] = variants
    if "hard" in evals:
        result["syn_hard"] = evals["hard"]["balanced_acc"]
        result["syn_hard_runs"] = evals["hard"].get("balanced_acc_runs")
    return result
