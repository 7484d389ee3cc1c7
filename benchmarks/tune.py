"""Tune a distillation preset on the validation holdout, never on the test set.

    python benchmarks/tune.py --preset configs/ltdd/digits-lt-b10-ipc10.toml --holdout 20 \
        --experts-args "--num 5 --epochs 60 --decoupled --cls-epochs 20" \
        --grid lr_y=0,2 --grid lr_img=100,1000 --out runs/tune-digits-ltdd

Procedure (the one docs/results.md and the tuned presets cite):
1. Hold V images per class of the source train split out (`--holdout V`, balanced); the long-tailed training set is
   built from the rest, so neither the experts nor the distillation see them. `--imbalance B` tunes a preset at
   another beta than its [run] one (experts and distillation both), so one preset serves every beta.
2. Train the experts on that data (`--experts-args`; omitted for methods without experts). `ltdistill experts`
   then prints their accuracy on the holdout, not on the test set. `--experts-dir` points at the buffer of an
   earlier tuning on the same holdout, so a second grid does not train it again.
3. For every point of the grid (the product of the `--grid key=v1,v2,...` lists), distill with the preset plus
   those `--set` overrides and evaluate on the holdout (`evaluate --split val`, `--runs` runs).
4. The winner is the point with the best mean validation balanced accuracy; out/tuning.json lists every point.
Then the winner goes into the preset, and the trajectory benchmark measures it on the test set with experts trained
on the standard data (holdout 0). Every cell is cached as a JSON (runner.py), so a killed tuning run resumes.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shlex
from pathlib import Path

from runner import Cell, run, run_cells

from ltdistill.cli import imbalance
from ltdistill.config import load_preset


def grid_points(grid: list[str]) -> list[dict[str, str]]:
    axes = []
    for text in grid:
        key, sep, values = text.partition("=")
        if not sep or not values:
            raise SystemExit(f"--grid wants key=v1,v2,..., got {text!r}")
        axes.append([(key, v) for v in values.split(",")])
    return [dict(point) for point in itertools.product(*axes)]


def point_name(point: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in point.items()) or "preset"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", required=True)
    parser.add_argument("--holdout", type=int, required=True, help="validation images per class")
    parser.add_argument("--imbalance", default=None,
                        help="imbalance factor beta for experts and distillation (default: the preset's [run] one)")
    parser.add_argument("--experts-args", default=None, help="flags of `ltdistill experts` besides the data")
    parser.add_argument("--experts-dir", default=None,
                        help="where the buffer lives (default OUT/experts); a finished buffer of an earlier tuning "
                             "with the same --holdout is reused as it is (distill checks the holdout)")
    parser.add_argument("--grid", action="append", default=[], help="key=v1,v2,... (repeatable)")
    parser.add_argument("--set", action="append", default=[], dest="fixed",
                        help="key=value applied to every point, not tuned (e.g. model_cache='DIR'); repeatable")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--eval-epochs", type=int, default=None, help="default: the protocol's")
    parser.add_argument("--out", required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--ltdistill", default="ltdistill", help="how to call the CLI")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cli = args.ltdistill.split()
    common = ["--device", args.device, "--no-progress"] + (["--data-dir", args.data_dir] if args.data_dir else [])
    _, preset_run = load_preset(args.preset)
    given = args.imbalance if args.imbalance is not None else preset_run.get("imbalance")
    if given is None:
        raise SystemExit(f"tuning needs beta: --imbalance, or [run] imbalance in {args.preset}")
    try:  # the CLI's own check, for the flag and the preset alike
        beta = imbalance(str(given))
    except argparse.ArgumentTypeError as e:
        raise SystemExit(f"tuning: {e}") from None
    data = ["--imbalance", f"{beta:g}", "--holdout", str(args.holdout)]  # experts and distillation on one beta
    experts = []
    if args.experts_args:  # `ltdistill experts` skips the experts a buffer already holds, so a rerun costs nothing
        buffer = Path(args.experts_dir or out / "experts")
        experts = ["--experts", str(buffer)]
        run([*cli, "experts", "--dataset", preset_run["dataset"], *data, *shlex.split(args.experts_args),
             "--out", str(buffer), *common], out / "log.txt")
    points = grid_points(args.grid)
    epochs = ["--epochs", str(args.eval_epochs)] if args.eval_epochs else []
    cells = []
    for point in points:
        name = point_name(point)
        art = out / "artifacts" / name
        overrides = [a for text in [*args.fixed, *(f"{k}={v}" for k, v in point.items())] for a in ("--set", text)]
        cells.append(Cell(name, prepare=[[*cli, "distill", "--config", args.preset, *data, *experts, *overrides,
                                          "--out", str(art), *common]],
                          evaluate=[*cli, "evaluate", str(art), "--split", "val", "--runs", str(args.runs), *epochs,
                                    *common],
                          done_marker=art / "meta.json"))
    run_cells(cells, out)
    scores = {}
    for point in points:
        result = json.loads((out / "json" / f"{point_name(point)}.json").read_text())
        scores[point_name(point)] = {"point": point, "val_balanced_acc": result["balanced_acc"]["mean"],
                                     "val_std_over_runs": result["balanced_acc"]["std"],
                                     "val_per_class_acc": result["per_class_acc"], "lr": result["lr"]}
    best = max(scores, key=lambda k: scores[k]["val_balanced_acc"])
    summary = {"preset": args.preset, "imbalance": beta, "holdout": args.holdout, "experts_args": args.experts_args,
               "experts_dir": args.experts_dir, "runs": args.runs, "grid": args.grid, "fixed": args.fixed,
               "points": scores, "best": best}
    (out / "tuning.json").write_text(json.dumps(summary, indent=2))
    for name, s in sorted(scores.items(), key=lambda kv: -kv[1]["val_balanced_acc"]):
        print(f"{100 * s['val_balanced_acc']:6.2f} +- {100 * s['val_std_over_runs']:.2f}  {name}")
    print(f"best: {best}")


if __name__ == "__main__":
    main()
