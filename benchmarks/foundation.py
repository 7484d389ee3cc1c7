"""Foundation table: full-LT training vs Random vs Herding on digits-LT (beta 10, 50) and Fashion-MNIST-LT
(beta 100, 10, 50) at IPC 10 and 50, 3 evaluation runs each, cpu protocol.

    python benchmarks/foundation.py --out runs/foundation      # resumable; writes runs/foundation/table.md
    python benchmarks/foundation.py --cells fashion-mnist-b50-full,fashion-mnist-b10-full   # only these
"""

from __future__ import annotations

import argparse
from pathlib import Path

from runner import Cell, finish, run_cells

FULL_EPOCHS = {"digits": 100, "fashion-mnist": 30}


def cells(out: Path, runs: int) -> list[Cell]:
    todo = []
    for dataset, beta in (("digits", 10), ("digits", 50), ("fashion-mnist", 100), ("fashion-mnist", 10),
                          ("fashion-mnist", 50)):
        todo.append(Cell(f"{dataset}-b{beta}-full", evaluate=[
            "ltdistill", "evaluate", "--full", "--dataset", dataset, "--imbalance", str(beta),
            "--epochs", str(FULL_EPOCHS[dataset]), "--runs", str(runs), "--no-progress"]))
        for ipc in (10, 50):
            for method in ("random", "herding"):
                name = f"{dataset}-b{beta}-{method}-ipc{ipc}"
                art = out / "artifacts" / name
                todo.append(Cell(name, prepare=[[
                    "ltdistill", "distill", "--method", method, "--dataset", dataset, "--imbalance", str(beta),
                    "--ipc", str(ipc), "--out", str(art), "--no-progress"]],
                    evaluate=["ltdistill", "evaluate", str(art), "--runs", str(runs), "--no-progress"],
                    done_marker=art / "meta.json"))
    return todo


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="runs/foundation")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cells", default=None, help="comma-separated cell names to run, in this order "
                        "(default: all, in table order)")
    args = parser.parse_args()
    todo = cells(Path(args.out), args.runs)
    if args.cells:
        by_name = {c.name: c for c in todo}
        unknown = [n for n in args.cells.split(",") if n not in by_name]
        if unknown:
            parser.error(f"unknown cells: {', '.join(unknown)}")
        todo = [by_name[n] for n in args.cells.split(",")]
    run_cells(todo, Path(args.out))
    finish(Path(args.out))
