"""Trajectory-matching table (issue: MTT and DATM vs Random and full-LT) on Fashion-MNIST-LT beta 100, IPC 10 and
50, with the presets in configs/ and one expert buffer; 3 evaluation runs each, cpu protocol.

    python benchmarks/trajectory.py --out runs/trajectory [--device cuda] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from runner import Cell, finish, run, run_cells

EXPERTS = ["--dataset", "fashion-mnist", "--imbalance", "100", "--num", "8", "--epochs", "20"]


def cells(out: Path, runs: int, common: list[str]) -> list[Cell]:
    experts = out / "experts" / "fm-b100"
    todo = []
    for ipc in (10, 50):
        for method in ("mtt", "datm"):
            name = f"fashion-mnist-b100-{method}-ipc{ipc}"
            art = out / "artifacts" / name
            todo.append(Cell(name, prepare=[[
                "ltdistill", "distill", "--config", f"configs/{method}/fmnist-lt-b100-ipc{ipc}.toml",
                "--experts", str(experts), "--out", str(art), "--no-progress", *common]],
                evaluate=["ltdistill", "evaluate", str(art), "--runs", str(runs), "--no-progress", *common],
                done_marker=art / "meta.json"))
    return todo


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="runs/trajectory")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--ltdistill", default="ltdistill",
                        help="how to call the CLI (e.g. 'python3 -m ltdistill.cli')")
    args = parser.parse_args()
    out = Path(args.out)
    common = ["--device", args.device] + (["--data-dir", args.data_dir] if args.data_dir else [])
    out.mkdir(parents=True, exist_ok=True)
    prefix = args.ltdistill.split()
    run([*prefix, "experts", *EXPERTS, "--out", str(out / "experts" / "fm-b100"), "--no-progress", *common],
        out / "log.txt")
    todo = cells(out, args.runs, common)
    for cell in todo:
        cell.prepare = [[*prefix, *c[1:]] for c in cell.prepare]
        cell.evaluate = [*prefix, *cell.evaluate[1:]]
    run_cells(todo, out)
    finish(out)
