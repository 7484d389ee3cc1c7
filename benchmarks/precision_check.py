"""Mixed precision (`--precision bfloat16`, train.PRECISIONS) against float32 on Fashion-MNIST-LT: whether an
evaluation's scores stay within float32's seed-to-seed spread. Each given artifact is evaluated as the benchmark
suites do (cpu protocol, 3 runs, its own label regime), float32 eager against bfloat16 compiled, the faster path;
the change in balanced accuracy beside float32's spread over the runs, and each whole run's seconds. The epoch
timings of both precisions are compile_speed.py's (its default mode times eager, compiled and bfloat16 compiled on
the same sets), so they are taken once, with the machine's other jobs paused; files written before this split also
hold a `speed` section of their own, timed beside other jobs, which nothing reads.

    OMP_NUM_THREADS=1 python benchmarks/precision_check.py --out docs/data/precision/cpu.json \
        ARTIFACT [ARTIFACT ...]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ltdistill.runtime import host
from ltdistill.safe_io import write_json

PATHS = {"float32 eager": ("float32", False), "bfloat16 compiled": ("bfloat16", True)}  # (precision, compile)


def scores(artifact: str, runs: int) -> dict:
    """The artifact evaluated float32 eager and bfloat16 compiled (seeds 0..runs-1 each)."""
    from ltdistill.cli import load_artifact_data
    from ltdistill.evaluate.protocol import EvalConfig, evaluate_synthetic

    synthetic, data = load_artifact_data(artifact, None)
    row: dict = {"artifact": artifact, "method": synthetic.meta.get("method"), "ipc": synthetic.meta.get("ipc"),
                 "beta": synthetic.meta.get("imbalance_factor"), "seed": synthetic.meta.get("seed"),
                 "class_order": synthetic.meta.get("class_order", "natural")}
    for path, (precision, compile) in PATHS.items():
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
    args = parser.parse_args()
    torch.set_num_threads(1)
    report: dict = {"scores": [scores(a, args.runs) for a in args.artifacts]}
    report.update(host=host(), torch=torch.__version__, device="cpu",
                  note="one thread; measured beside other jobs on the same machine", time=time.strftime("%Y-%m-%d"))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, report)


if __name__ == "__main__":
    main()
