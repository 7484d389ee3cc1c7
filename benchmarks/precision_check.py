"""Mixed precision (`--precision bfloat16`, train.PRECISIONS) against float32 on Fashion-MNIST-LT: how much faster an
evaluation run trains, and whether its scores stay within float32's seed-to-seed spread.

Speed: an epoch of evaluation training (the cpu protocol's ConvNet, width 32) on a distilled set of IPC 10 (100
images, one batch) and on the whole beta-100 set, float32 and bfloat16, each eager and through torch.compile; the
median epoch after the first (which pays a compilation), one thread. Scores: each given artifact evaluated as the
benchmark suites do (cpu protocol, 3 runs, its own label regime), float32 eager against bfloat16 compiled, the
faster path; the change in balanced accuracy beside float32's spread over the runs.

    OMP_NUM_THREADS=1 python benchmarks/precision_check.py --out docs/data/precision/cpu.json \
        ARTIFACT [ARTIFACT ...]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from compile_speed import seconds, training_sets

from ltdistill.runtime import host
from ltdistill.safe_io import write_json

PATHS = {"float32 eager": ("float32", False), "float32 compiled": ("float32", True),
         "bfloat16 eager": ("bfloat16", False), "bfloat16 compiled": ("bfloat16", True)}


def speed(epochs_small: int, epochs_full: int) -> dict:
    rows = {}
    for name, (x, y, epochs) in training_sets(epochs_small, epochs_full).items():
        row: dict = {"epochs": epochs}
        for path, (precision, compile) in PATHS.items():
            row[path] = seconds(x, y, compile, epochs, precision=precision)
        base = row["float32 eager"]["epoch_s"]
        row["speedup"] = {path: base / row[path]["epoch_s"] for path in PATHS}
        rows[name] = row
        print(name, json.dumps(row["speedup"]), flush=True)
    return rows


def scores(artifact: str, runs: int) -> dict:
    """The artifact evaluated float32 eager and bfloat16 compiled (seeds 0..runs-1 each)."""
    from ltdistill.cli import load_artifact_data
    from ltdistill.evaluate.protocol import EvalConfig, evaluate_synthetic

    synthetic, data = load_artifact_data(artifact, None)
    row: dict = {"artifact": artifact, "method": synthetic.meta.get("method"), "ipc": synthetic.meta.get("ipc"),
                 "beta": synthetic.meta.get("imbalance_factor"), "seed": synthetic.meta.get("seed"),
                 "class_order": synthetic.meta.get("class_order", "natural")}
    for path in ("float32 eager", "bfloat16 compiled"):
        precision, compile = PATHS[path]
        start = time.perf_counter()
        result = evaluate_synthetic(synthetic, data, EvalConfig(runs=runs, precision=precision, compile=compile),
                                    progress=False)
        row[path] = {**result["balanced_acc"], "runs": result["balanced_acc_runs"],
                     "few": result["few"],
                     "seconds_per_run": (time.perf_counter() - start) / runs}
    full, half = row["float32 eager"], row["bfloat16 compiled"]
    row["change"] = half["mean"] - full["mean"]
    row["within_spread"] = abs(row["change"]) <= max(full["std"], half["std"])
    row["speedup"] = full["seconds_per_run"] / half["seconds_per_run"]
    print(json.dumps({k: v for k, v in row.items() if not isinstance(v, dict)}), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("artifacts", nargs="*", help="distilled sets to evaluate under both precisions")
    parser.add_argument("--out", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--epochs-small", type=int, default=40)
    parser.add_argument("--epochs-full", type=int, default=2)
    parser.add_argument("--no-speed", action="store_true", help="skip the epoch timings")
    args = parser.parse_args()
    torch.set_num_threads(1)
    report: dict = {}
    if not args.no_speed:
        report["speed"] = speed(args.epochs_small, args.epochs_full)
    report["scores"] = [scores(a, args.runs) for a in args.artifacts]
    report.update(host=host(), torch=torch.__version__, device="cpu",
                  note="one thread; measured beside other jobs on the same machine", time=time.strftime("%Y-%m-%d"))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, report)


if __name__ == "__main__":
    main()
