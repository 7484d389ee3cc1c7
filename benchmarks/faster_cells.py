"""A bench cell made again on its faster paths, scored against the eager float32 cell they would replace: the same
preset, seed, class order and evaluation, with the method's loops compiled (`--set compile=true`: for trajectory
matching the unroll's ops, float32 or with `--set precision='bfloat16'`; for DC the network's training and the
matching) or, for trajectory matching, the expert buffer trained compiled in bfloat16 (`experts --compile
--precision bfloat16`). Each row gives the set's balanced accuracy over its evaluation runs, the change against the
float32 cell beside the larger of the two spreads (the rule of precision_check.py), and the measured seconds of its
distillation per iteration and of its buffer where it has one, as ratios to the float32 cell's made in the same
conditions, and whether both were timed on one processor (`same_host`: False where their distillations' last
stretches name two, None where one does not name its processor). It reads what the commands wrote (bench's result
of the float32 cell, each variant's evaluation JSON, which carries its distillation's timing, and each buffer's
accuracy.json); it runs nothing.

    python benchmarks/faster_cells.py --baseline RESULT.json --baseline-experts EXPERTS \
        --variant "bfloat16 experts" EVAL.json EXPERTS ... --out docs/data/faster-cells/mtt-random1-cpu.json
    python benchmarks/faster_cells.py --baseline RESULT.json --variant "float32 compiled" EVAL.json \
        --out docs/data/faster-cells/dc-random2-cpu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from ltdistill.safe_io import write_json

# the paths a variant may take, by the names benchmarks/grid_cost.py looks them up by: a trajectory method's
# (its buffer, its unroll) and any other method's loops compiled
EXPERTS_BFLOAT16, UNROLL_COMPILED, UNROLL_BFLOAT16 = "bfloat16 experts", "float32 compiled unroll", "bfloat16 unroll"
COMPILED = "float32 compiled"


def buffer_seconds(experts: Path) -> float:
    """A buffer's training seconds, as its accuracy.json records them."""
    return float(json.loads((experts / "accuracy.json").read_text())[0]["train_seconds"])


def scored(runs: list[float]) -> dict:
    """Mean and population std of the runs' balanced accuracies, in %."""
    return {"runs": [round(100 * r, 2) for r in runs], "mean": 100 * statistics.fmean(runs),
            "std": 100 * statistics.pstdev(runs)}


def timed_on(distill: dict) -> str | None:
    """Where the iterations a distillation's timings speak of ran (the finishing stretch: evaluate.distill_timing),
    None where that is not known: not recorded, or a bare 'cpu' recorded before the processor was."""
    stretches = distill.get("iteration_devices") or []
    where = stretches[-1][1] if stretches else None
    return None if where in (None, "cpu") else where


def same_host(row: dict, baseline: dict) -> bool | None:
    """Whether a variant and the float32 cell were timed on one processor (None: not known for one of them). A
    speedup between two hosts of one brand is a comparison of hosts as much as of paths."""
    if row["timed_on"] is None or baseline["timed_on"] is None:
        return None
    return row["timed_on"] == baseline["timed_on"]


def row_of(label: str, runs: list[float], distill: dict, experts: Path | None, baseline: dict | None) -> dict:
    """`distill`: the evaluation JSON's timing of the set's distillation (wall seconds per iteration, the first
    iterations' compilation included, and the median iteration); `experts`: its buffer, None for a method without
    one."""
    row = {"variant": label, **scored(runs), "s_per_iteration": distill["s_per_iteration"],
           "s_per_iteration_median": distill["s_per_iteration_median"], "timed_on": timed_on(distill)}
    if experts is not None:
        row.update(buffer=experts.name, buffer_seconds=buffer_seconds(experts))
    if baseline is not None:
        row["change"] = row["mean"] - baseline["mean"]
        row["within_spread"] = abs(row["change"]) <= max(row["std"], baseline["std"])
        row["same_host"] = same_host(row, baseline)
        row["distill_speedup"] = baseline["s_per_iteration"] / row["s_per_iteration"]
        row["median_iteration_speedup"] = baseline["s_per_iteration_median"] / row["s_per_iteration_median"]
        if "buffer_seconds" in row and "buffer_seconds" in baseline:
            row["buffer_speedup"] = baseline["buffer_seconds"] / row["buffer_seconds"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="bench's result JSON of the float32 cell")
    parser.add_argument("--baseline-experts", type=Path, default=None,
                        help="the float32 cell's expert buffer (a trajectory cell)")
    parser.add_argument("--variant", nargs="+", action="append", default=[], metavar="LABEL EVAL_JSON [EXPERTS]",
                        help="a variant's path, its evaluation JSON and, for a trajectory cell, its expert buffer")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    known = (EXPERTS_BFLOAT16, UNROLL_COMPILED, UNROLL_BFLOAT16, COMPILED)
    for label, *rest in args.variant:
        if label not in known:
            parser.error(f"--variant {label!r}: the label names its path, one of {list(known)}")
        if len(rest) != 1 + (args.baseline_experts is not None):
            parser.error(f"--variant {label!r}: give its evaluation JSON"
                         + (" and its expert buffer" if args.baseline_experts is not None else
                            " only (no --baseline-experts: a cell without a buffer)"))
    cell = json.loads(args.baseline.read_text())
    baseline = row_of("float32 eager (the suite's cell)", cell["balanced_acc_runs"], cell["distill"],
                      args.baseline_experts, None)
    rows = [baseline]
    for label, evaluation, *experts in args.variant:
        result = json.loads(Path(evaluation).read_text())
        rows.append(row_of(label, result["balanced_acc_runs"], result["distill"],
                           Path(experts[0]) if experts else None, baseline))
    variants = " ".join(f'--variant "{label}" {" ".join(paths)}' for label, *paths in args.variant)
    buffer = f" --baseline-experts {args.baseline_experts}" if args.baseline_experts is not None else ""
    write_json(args.out, {
        "method": cell.get("method"), "cell": cell.get("cell"), "class_order": cell.get("class_order"),
        "ipc": cell.get("ipc"), "beta": cell.get("imbalance_factor"), "device": cell.get("device"), "rows": rows,
        "command": f"python benchmarks/faster_cells.py --baseline {args.baseline}{buffer} {variants} "
                   f"--out {args.out}"})
    for row in rows:
        print(json.dumps({k: v for k, v in row.items() if k != "runs"}))
        if row.get("same_host") is False:
            print(f"warning: {row['variant']} was timed on {row['timed_on']}, the float32 cell on "
                  f"{baseline['timed_on']}: grid_cost.py does not take its speedup")


if __name__ == "__main__":
    main()
